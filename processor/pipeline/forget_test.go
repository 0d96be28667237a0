package pipeline

import (
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

func TestATrackerForgetsWhatTheEngineForgets(t *testing.T) {
	tr := newTracker(Topics{}, 15*time.Minute, time.UTC)
	eng, err := processor.New(processor.Config{AgentIdleTimeout: time.Minute}, tr)
	if err != nil {
		t.Fatal(err)
	}
	at := func(min int) int64 { return 1795341600000 + int64(min)*60000 }
	apply := func(ev events.Event) {
		if o := eng.Apply(&ev); o != processor.Accepted {
			t.Fatalf("%+v: %v", ev, o)
		}
	}
	flush := func() *Batch {
		b := &Batch{WallMS: 1}
		tr.collect(eng, b, true)
		return b
	}
	apply(events.Event{AgentID: "gone", State: events.StateACW, CallID: "c1", TS: at(0)})
	apply(events.Event{AgentID: "stays", State: events.StateReady, TS: at(0)})
	eng.AdvanceWatermark(at(0) + 1)
	flush()
	if tr.agent.written.agents["gone"] == nil || len(tr.overruns.open) != 1 {
		t.Fatal("the tracker did not record the agents it wrote")
	}
	apply(events.Event{AgentID: "stays", State: events.StateReady, TS: at(1)})
	apply(events.Event{AgentID: "stays", State: events.StateReady, TS: at(2)})
	b := flush()
	var last *AgentWrite
	for i := range b.Agents {
		if b.Agents[i].State.AgentID == "gone" {
			last = &b.Agents[i]
		}
	}
	if last == nil || last.State.State != events.StateLoggedOut || last.Prev != nil {
		t.Fatalf("the idle agent's logout is not written whole: %+v", last)
	}
	if _, ok := tr.agent.written.agents["gone"]; ok {
		t.Fatal("the tracker still remembers what it wrote for the forgotten agent")
	}
	if len(tr.overruns.open) != 0 || len(tr.overruns.inTime) != 0 {
		t.Fatalf("open %v", tr.overruns.open)
	}
	// Its views written at that flush are dropped with the cache's other
	// stale entries once they would be rewritten whole anyway.
	tr.collect(eng, &Batch{WallMS: 1 + rewriteAfter}, true)
	for k := range tr.agent.written.views {
		if k.key == "gone" {
			t.Fatalf("written view %v kept", k)
		}
	}
}
