package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/acwstream/acwstream/events/sim"
)

const demoUsage = `usage: acwd demo [flags]

Runs acwstream end to end on one machine with nothing installed but Go:
an embedded Kafka-protocol broker (the devbroker) and an embedded
Redis-protocol store (miniredis), unless --brokers / --redis point at real
ones; the simulator producing a live contact centre in real time; the
processor exactly as acwd run runs it; and the wallboard, served on --http
(default http://127.0.0.1:8080/, or a free port when 8080 is taken).
Ctrl-C stops everything cleanly.

Every acwd run setting applies; these have other defaults here:
  --brokers embedded  --redis embedded  --http 127.0.0.1:8080
  --group acwd-demo   --log-level warn  --log-format console

flags:
`

// embedded is the --brokers and --redis value that starts the embedded
// broker or store.
const embedded = "embedded"

// demoFlags are the demo's own settings (flags only).
type demoFlags struct {
	agents, teams, queues, partitions int
	speed                             float64
	seed                              uint64
	warmup                            time.Duration
}

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	var d demoFlags
	fs.IntVar(&d.agents, "agents", 48, "simulated agents")
	fs.IntVar(&d.teams, "teams", 4, "simulated teams")
	fs.IntVar(&d.queues, "queues", 3, "simulated queues (at most 8)")
	fs.IntVar(&d.partitions, "partitions", 4, "partitions of the embedded broker's input topic")
	fs.Float64Var(&d.speed, "speed", 1, "simulated seconds per real second (1: real time; 10 compresses a shift into under an hour)")
	fs.Uint64Var(&d.seed, "seed", 1, "simulator seed (the same seed gives the same day)")
	fs.DurationVar(&d.warmup, "warmup", 10*time.Minute, "simulated time already past when the demo starts, produced at once so the board opens with history")
	var f runFlags
	var ss settings
	f.register(&ss)
	for flag, def := range map[string]string{"brokers": embedded, "redis": embedded, "http": "127.0.0.1:8080",
		"group": "acwd-demo", "log-level": "warn", "log-format": "console"} {
		ss.setDefault(flag, def)
	}
	fs.Usage = func() { fmt.Fprint(fs.Output(), demoUsage); fs.PrintDefaults() }
	if err := parseSettings(fs, &ss, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	switch {
	case d.speed <= 0:
		return fmt.Errorf("%w: --speed must be positive, got %g", errUsage, d.speed)
	case d.warmup < 0:
		return fmt.Errorf("%w: --warmup must not be negative, got %s", errUsage, d.warmup)
	case d.agents < 1 || d.teams < 1 || d.queues < 1:
		return fmt.Errorf("%w: --agents, --teams and --queues must be at least 1", errUsage)
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	// stopping the simulator on a failure stops everything
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var brokerNote, redisNote string
	owner := f.group // what the Redis prefix is bound to (see serve)
	if len(f.brokers) == 1 && f.brokers[0] == embedded {
		c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: d.partitions, Topics: f.topics})
		if err != nil {
			return err
		}
		defer c.Close()
		f.brokers = c.ListenAddrs()
		if ss.sourceOf("group") == "default" {
			// a fresh broker starts its offsets at 0: checkpoints an earlier
			// demo left in a real --redis must not apply to it
			f.group += "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
		brokerNote = fmt.Sprintf("embedded devbroker at %s, topic %s (%d partitions)", f.brokers[0], strings.Join(f.topics, ","), d.partitions)
	} else {
		brokerNote = fmt.Sprintf("%s, topic %s", strings.Join(f.brokers, ","), strings.Join(f.topics, ","))
	}
	if f.redisURL == embedded {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the embedded Redis: %w", err)
		}
		defer mr.Close()
		// miniredis only expires keys when told time has passed
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					mr.FastForward(time.Second)
				}
			}
		}()
		f.redisURL = "redis://" + mr.Addr() + "/0"
		redisNote = fmt.Sprintf("embedded miniredis at %s (redis-cli -p %s --scan --pattern '%s:*')", mr.Addr(), mr.Port(), f.prefix)
	} else {
		redisNote = maskURL(f.redisURL)
	}
	rc, err := f.check()
	if err != nil {
		return err
	}
	if f.httpListen == "127.0.0.1:8080" && ss.sourceOf("http") == "default" {
		if ln, err := net.Listen("tcp", f.httpListen); err != nil {
			f.httpListen = "127.0.0.1:0"
		} else {
			ln.Close()
		}
	}

	// The simulated clock: the shift began --warmup ago; from now on it
	// runs at --speed. The pipeline and the wallboard run on it too, so
	// that timers and alerts keep pace with a sped-up day.
	wall0 := time.Now()
	sim0 := wall0.Add(-d.warmup)
	clock := func() time.Time { return sim0.Add(d.warmup + time.Duration(float64(time.Since(wall0))*d.speed)) }
	if d.speed == 1 {
		clock = time.Now
	}
	g, err := sim.New(sim.Config{Seed: d.seed, Agents: d.agents, Teams: d.teams, Queues: d.queues,
		Start: sim0.UnixMilli(), Duration: 24 * time.Hour, Disorder: time.Second, DuplicateRate: 0.005, BadRate: 0.001})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// the pacer maps simulated ms to wall time: sim0 is due at
	// wall0 - warmup/speed, so the warm-up is produced at once
	pc := &pacer{speed: d.speed, wall0: wall0.Add(-time.Duration(float64(d.warmup) / d.speed)), sim0: sim0.UnixMilli()}

	var wg sync.WaitGroup
	simErr := make(chan error, 1)
	listening := func(addr string) {
		printDemoBanner(stdout, addr, brokerNote, redisNote, &d, rc.engine.Default.Warn, rc.engine.Default.Overrun)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := produceSim(ctx, g, pc, f.brokers, f.topics[0], rc.transport, io.Discard); err != nil {
				simErr <- err
				cancel()
			}
		}()
	}
	if f.httpListen == "" {
		listening("")
	}
	err = serve(ctx, &f, rc, log, service{now: clock, rate: d.speed, listening: listening, owner: owner})
	cancel()
	wg.Wait()
	select {
	case serr := <-simErr:
		return errors.Join(fmt.Errorf("simulator: %w", serr), err)
	default:
	}
	if err == nil {
		fmt.Fprintln(stdout, "acwd demo stopped.")
	}
	return err
}

func printDemoBanner(w io.Writer, addr, brokerNote, redisNote string, d *demoFlags, warn, overrun time.Duration) {
	pace := "in real time"
	if d.speed != 1 {
		pace = fmt.Sprintf("at %g× real time", d.speed)
	}
	fmt.Fprintf(w, "acwd demo: acwstream end to end on this machine\n")
	fmt.Fprintf(w, "  Kafka    %s\n", brokerNote)
	fmt.Fprintf(w, "  Redis    %s\n", redisNote)
	fmt.Fprintf(w, "  Traffic  %d simulated agents in %d teams and %d queues, %s, starting %s into a shift\n",
		d.agents, d.teams, d.queues, pace, d.warmup)
	if addr != "" {
		host, port, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		base := "http://" + net.JoinHostPort(host, port)
		fmt.Fprintf(w, "\n  Wallboard     %s/\n", base)
		fmt.Fprintf(w, "  Large screen  %s/?large\n", base)
		fmt.Fprintf(w, "  Metrics       %s/metrics\n", base)
	}
	fmt.Fprintf(w, `
What to look at: every agent with its state and time in state; a wrap-up
timer turns amber past %s and red past %s, and its overrun alert appears in
the alert feed within a second; "longest wrap-ups now" lists who to help
first; team and queue tiles show this interval and today (average ACW, ACW %%
of work time, overruns, calls handled). Ctrl-C stops everything.
`, warn, overrun)
}
