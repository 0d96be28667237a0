package pipeline

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
)

type stuckRecorder struct {
	Observer
	by map[events.State]int
}

func (s *stuckRecorder) Stuck(_ Source, by map[events.State]int) { s.by = by }

// An agent held in a call state far longer than any real contact (a lost
// reservation.completed, a lost hangup) is not silent: it is counted for
// the metric and logged once.
func TestAnAgentStuckInACallStateIsReported(t *testing.T) {
	obs := &stuckRecorder{}
	p, err := New(Config{Brokers: []string{"unused:9092"}, Topics: []string{"in"}, Group: "g", Store: &memStore{}, Publisher: &refusingPublisher{fixed: true},
		Observer: obs, StuckAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	pt := &partition{p: p, src: Source{Topic: "in"}, log: zerolog.New(&logs)}
	pt.tr = newTracker(p.cfg.Derived, p.cfg.Engine.Window, p.cfg.Location)
	if pt.eng, err = processor.New(p.cfg.Engine, pt.tr); err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1795341600000)
	for _, ev := range []events.Event{
		{AgentID: "wedged", State: events.StateACW, CallID: "c1", TS: t0},
		{AgentID: "fine", State: events.StateTalking, CallID: "c2", TS: t0},
		{AgentID: "fine", State: events.StateReady, TS: t0 + 60_000},
		{AgentID: "other", State: events.StateTalking, CallID: "c3", TS: t0 + 90*60_000},
	} {
		pt.eng.Apply(&ev)
	}
	pt.eng.AdvanceWatermark(t0 + 91*60_000)
	now := time.Now()
	pt.refTS, pt.refWall = t0+91*60_000, now
	pt.reportStuck(now)
	pt.reportStuck(now.Add(time.Minute))
	if obs.by[events.StateACW] != 1 || len(obs.by) != 1 {
		t.Fatalf("stuck %v, want one agent in acw", obs.by)
	}
	if n := strings.Count(logs.String(), `"agent":"wedged"`); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs.String())
	}
}
