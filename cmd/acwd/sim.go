package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/segmentio/kafka-go"
)

const simUsage = `usage: acwd sim [flags]

Writes a realistic, seeded contact-centre event log in the canonical format,
one JSON object per line, to --out (stdout by default). The same flags always
give the same bytes. With --brokers it produces the events to a Kafka topic
instead, keyed by agent_id (undecodable lines get the key "unparsable"), as
fast as the broker takes them. With --speed the events are paced in real
time instead (--speed 1: as they happen; 10: a simulated day in 2.4 hours),
starting now unless --start is given: a live feed for acwd run.

flags:
`

func runSim(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", stderr)
	var (
		cfg   sim.Config
		start string
		out   string
	)
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.IntVar(&cfg.Agents, "agents", 50, "agents on shift")
	fs.IntVar(&cfg.Teams, "teams", 5, "teams")
	fs.IntVar(&cfg.Queues, "queues", 4, "queues (at most 8 distinct names)")
	fs.StringVar(&start, "start", "2026-11-22T08:00:00Z", "simulated start time (RFC 3339)")
	fs.DurationVar(&cfg.Duration, "duration", 8*time.Hour, "simulated time to cover (one shift)")
	fs.IntVar(&cfg.MaxEvents, "events", 0, "stop after this many lines; shifts repeat on later days until reached (0: one shift)")
	fs.DurationVar(&cfg.Disorder, "disorder", 0, "largest delay of arrival behind ts (keep ≤ the consumer's --max-out-of-order)")
	fs.Float64Var(&cfg.DuplicateRate, "duplicates", 0, "fraction of events delivered twice")
	fs.Float64Var(&cfg.LateRate, "late", 0, "fraction of extra stray events 60s in the past (rejected as late)")
	fs.Float64Var(&cfg.BadRate, "bad", 0, "fraction of extra malformed or invalid lines")
	fs.Float64Var(&cfg.MissRate, "missed", 0, "fraction of offers let ring out without an answer (missed offers; canonical format only)")
	fs.BoolVar(&cfg.Millis, "millis", false, "write ts as integer Unix milliseconds")
	fs.StringVar(&cfg.Format, "format", "canonical", "output format: "+strings.Join(sim.Formats, ", ")+" (a platform's records, for --input-format)")
	fs.StringVar(&out, "out", "-", "output file (- for stdout)")
	brokers := fs.String("brokers", "", "produce to Kafka at these comma-separated addresses instead of writing a file")
	topic := fs.String("topic", pipeline.DefaultInputTopic, "topic to produce to (with --brokers)")
	speed := fs.Float64("speed", 0, "pace events in real time, this many simulated seconds per second (0: as fast as possible)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), simUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *speed < 0 {
		return fmt.Errorf("%w: --speed must not be negative, got %g", errUsage, *speed)
	}
	if cfg.Agents < 1 || cfg.Teams < 1 || cfg.Queues < 1 {
		return fmt.Errorf("%w: --agents, --teams and --queues must be at least 1", errUsage) // as demo's
	}
	startSet := false
	fs.Visit(func(f *flag.Flag) { startSet = startSet || f.Name == "start" })
	st, err := events.ParseRFC3339Millis([]byte(start))
	if err != nil {
		return fmt.Errorf("%w: --start: %q is not an RFC 3339 time", errUsage, start)
	}
	if *speed > 0 && !startSet {
		st = time.Now().UnixMilli()
	}
	cfg.Start = st
	pc := &pacer{speed: *speed, wall0: time.Now(), sim0: st}
	g, err := sim.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *brokers != "" {
		return produceSim(ctx, g, pc, splitList(*brokers), *topic, nil, stdout)
	}
	var w io.Writer = stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	for n := 0; ; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line := g.Next()
		if line == nil {
			break
		}
		if pc.speed > 0 {
			if err := pc.wait(ctx, g.TS(), bw.Flush); err != nil {
				return stopped(ctx, err)
			}
		}
		bw.Write(line)
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && out != "-" {
		return f.Close()
	}
	return nil
}

// produceSim writes the generator's lines to topic, keyed by agent_id, in
// batches, and reports how many it wrote. transport carries TLS and SASL
// (nil: plaintext).
func produceSim(ctx context.Context, g *sim.Generator, pc *pacer, brokers []string, topic string, transport *kafka.Transport, stdout io.Writer) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 5000, BatchBytes: 8 << 20,
		AllowAutoTopicCreation: true}
	if transport != nil {
		w.Transport = transport
	}
	defer w.Close()
	batch := make([]kafka.Message, 0, 50000)
	n := 0
	flush := func() error {
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("producing to %s: %w", topic, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for line := g.Next(); line != nil; line = g.Next() {
		key := g.Key()
		if pc.speed > 0 {
			if err := pc.wait(ctx, g.TS(), flush); err != nil {
				return stopped(ctx, err)
			}
		}
		m := kafka.Message{Key: []byte(key), Value: append([]byte(nil), line...)}
		if pc.speed > 0 {
			// A paced feed plays the platform, whose clock is the
			// simulated one: its records are stamped with it (under demo
			// --speed 10 the event times run ahead of the wall clock, and
			// acwd run holds each event against its record's timestamp).
			m.Time = time.UnixMilli(g.TS())
		}
		batch = append(batch, m)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "produced %d events to %s\n", n, topic)
	return err
}

// pacer holds lines back until their ts is due in real time.
type pacer struct {
	speed float64   // simulated seconds per second; 0: no pacing
	wall0 time.Time // wall time of sim0
	sim0  int64     // simulated start, Unix ms
}

// wait returns once ts (Unix ms) is due, calling flush first if it has to
// sleep.
func (p *pacer) wait(ctx context.Context, ts int64, flush func() error) error {
	due := p.wall0.Add(time.Duration(float64(ts-p.sim0) * float64(time.Millisecond) / p.speed))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	if err := flush(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stopped turns the end of a live feed by a signal into success.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
