package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/processor"
)

const demoUsage = `usage: acwd demo [flags]

Runs the simulator in (sped-up) real time through the engine and prints
wrap-ups, overrun alerts and interval summaries as they happen. Needs nothing
but Go. Ctrl-C stops it.

flags:
`

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	agents := fs.Int("agents", 40, "simulated agents")
	speed := fs.Float64("speed", 20, "simulated seconds per real second")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "simulator seed")
	var ef engineFlags
	var ss settings
	ef.register(&ss)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	if err := parseSettings(fs, &ss, args); err != nil {
		return err
	}
	if *speed <= 0 {
		return fmt.Errorf("%w: --speed must be positive", errUsage)
	}
	cfg, err := ef.config()
	if err != nil {
		return err
	}
	wallStart := time.Now()
	simStart := wallStart.Truncate(time.Minute).UnixMilli()
	g, err := sim.New(sim.Config{Seed: *seed, Agents: *agents, Start: simStart, Duration: 10 * time.Hour, Disorder: time.Second, DuplicateRate: 0.005})
	if err != nil {
		return err
	}
	p := &demoPrinter{w: stdout}
	eng, err := processor.New(cfg, p)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "acwd demo: %d agents at %gx speed; overrun after %s. Ctrl-C to stop.\n", *agents, *speed, cfg.Default.Overrun)
	var dec events.Decoder
	var ev events.Event
	for line := g.Next(); line != nil; line = g.Next() {
		if err := dec.Decode(line, &ev); err != nil {
			continue
		}
		due := wallStart.Add(time.Duration(float64(time.Duration(ev.TS-simStart)*time.Millisecond) / *speed))
		select {
		case <-ctx.Done():
			eng.Close()
			s := eng.Stats()
			fmt.Fprintf(stdout, "\nstopped: %d events applied, %d wrap-ups, %d alerts\n", s.Applied, s.Segments, s.Alerts)
			return nil
		case <-time.After(time.Until(due)):
		}
		eng.Apply(&ev)
	}
	eng.Close()
	return nil
}

// demoPrinter prints engine records for people.
type demoPrinter struct{ w io.Writer }

func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05") }

func (d *demoPrinter) Segment(s *events.Segment) {
	flag := "ok     "
	switch {
	case s.Overrun:
		flag = "OVERRUN"
	case s.Warn:
		flag = "warn   "
	}
	fmt.Fprintf(d.w, "%s  wrap-up %s  %-9s %-7s %-9s %5.1fs  %s\n", clock(s.End), flag, s.AgentID, s.Team, s.Queue, float64(s.DurationMS)/1000, s.Disposition)
}

func (d *demoPrinter) Alert(a *events.Alert) {
	if a.Kind == events.AlertOverrun {
		fmt.Fprintf(d.w, "%s  ALERT   %s has been wrapping up call %s for over %ds\n", clock(a.At), a.AgentID, a.CallID, a.ThresholdMS/1000)
	}
}

func (d *demoPrinter) Interval(iv *events.Interval) {
	if iv.Scope != events.ScopeCenter {
		return
	}
	fmt.Fprintf(d.w, "%s  interval %s-%s  calls %d  avg ACW %.1fs  ACW %% of work %s  overruns %d\n",
		clock(iv.End), clock(iv.Start), clock(iv.End), iv.CallsHandled, float64(iv.ACWAvgMS())/1000,
		fmt.Sprintf("%d.%02d", iv.ACWPctOfWork()/100, iv.ACWPctOfWork()%100), iv.OverrunCount)
}

func (d *demoPrinter) Open(*events.OpenSegment) {}
