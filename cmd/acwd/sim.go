package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
)

const simUsage = `usage: acwd sim [flags]

Writes a realistic, seeded contact-centre event log in the canonical format,
one JSON object per line, to --out (stdout by default). The same flags always
give the same bytes.

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
	fs.BoolVar(&cfg.Millis, "millis", false, "write ts as integer Unix milliseconds")
	fs.StringVar(&out, "out", "-", "output file (- for stdout)")
	fs.Usage = func() { fmt.Fprint(stderr, simUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	st, err := events.ParseRFC3339Millis([]byte(start))
	if err != nil {
		return fmt.Errorf("%w: --start: %q is not an RFC 3339 time", errUsage, start)
	}
	cfg.Start = st
	g, err := sim.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
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
