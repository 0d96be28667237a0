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

// nopObserver observes nothing: test observers embed it and implement
// what they record.
type nopObserver struct{}

func (nopObserver) Consumed(Source, string)                          {}
func (nopObserver) Segment(Source, *events.Segment)                  {}
func (nopObserver) Alert(Source, *events.Alert)                      {}
func (nopObserver) Flushed(Source, *Batch, time.Duration, time.Time) {}
func (nopObserver) Failed(Source, string, error)                     {}
func (nopObserver) Progress(Source, Progress)                        {}
func (nopObserver) Assigned(Source, bool)                            {}
func (nopObserver) Rebalanced(int32, int)                            {}
func (nopObserver) SharedLeader(bool)                                {}
func (nopObserver) SharedApplied(int, int, time.Duration)            {}

type stuckRecorder struct {
	nopObserver
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
	pt := newPartition(p, nil, Source{Topic: "in"}, -1, zerolog.New(&logs))
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
	pt.clock.set(t0+91*60_000, now)
	pt.watch.lookForStuck(pt.eng, &pt.clock, now)
	pt.watch.lookForStuck(pt.eng, &pt.clock, now.Add(time.Minute))
	if obs.by[events.StateACW] != 1 || len(obs.by) != 1 {
		t.Fatalf("stuck %v, want one agent in acw", obs.by)
	}
	if n := strings.Count(logs.String(), `"agent":"wedged"`); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs.String())
	}
}

type skipRecorder struct {
	nopObserver
	got map[string]uint64
}

func (s *skipRecorder) AdapterSkipped(_ Source, kind string, n uint64) { s.got[kind] += n }

// skippingAdapter skips every record as the kind it names.
type skippingAdapter struct{ skipped map[string]uint64 }

func (a *skippingAdapter) Translate(rec []byte, out []events.Event) ([]events.Event, error) {
	a.skipped[string(rec)]++
	return out, nil
}
func (a *skippingAdapter) Skipped() map[string]uint64 { return a.skipped }

// What the input adapter skips is reported as it grows (a metric), each
// kind logged the first time it shows: a feed being ignored is visible.
func TestWhatTheAdapterSkipsIsReported(t *testing.T) {
	obs := &skipRecorder{got: map[string]uint64{}}
	p, err := New(Config{Brokers: []string{"unused:9092"}, Topics: []string{"in"}, Group: "g", Store: &memStore{}, Publisher: &refusingPublisher{fixed: true},
		Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ad := &skippingAdapter{skipped: map[string]uint64{}}
	pt := newPartition(p, nil, Source{Topic: "in"}, -1, zerolog.New(&logs))
	for _, rec := range []string{"heartbeat", "ignored", "heartbeat"} {
		ad.Translate([]byte(rec), nil)
	}
	pt.watch.reportSkipped(ad)
	pt.watch.reportSkipped(ad)
	ad.Translate([]byte("heartbeat"), nil)
	pt.watch.reportSkipped(ad)
	if obs.got["heartbeat"] != 3 || obs.got["ignored"] != 1 || len(obs.got) != 2 {
		t.Fatalf("reported %v", obs.got)
	}
	if n := strings.Count(logs.String(), `"kind":"heartbeat"`); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs.String())
	}
	// A new adapter (the partition restarted from its checkpoint) counts
	// afresh: its counts are new skips, not a decrease.
	ad.skipped = map[string]uint64{"heartbeat": 1}
	pt.watch.reportSkipped(ad)
	if obs.got["heartbeat"] != 4 {
		t.Fatalf("reported %v after a restart", obs.got)
	}
}
