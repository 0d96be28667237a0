package pipeline

import (
	"testing"

	"github.com/acwstream/acwstream/events"
)

// A view is written as its changes while its key stays the same: an
// interval or day view until its window or day changes (another key), a
// last-60m view as its windows move on (the same key); each Prev says
// what was written, bounds included.
func TestWriteCachePrevFollowsTheKey(t *testing.T) {
	w := newWriteCache()
	c1 := events.Counters{TalkMS: 1000}
	c2 := events.Counters{TalkMS: 2000}
	delta := func(v View, start int64, c events.Counters) CounterDelta {
		return CounterDelta{Scope: events.ScopeAgent, Key: "a1", View: v, Start: start, End: start + 900000, Delta: c, Full: true}
	}
	b1 := &Batch{WallMS: 1000, Counters: []CounterDelta{delta(ViewInterval, 0, c1), delta(ViewLast60m, 0, c1)}}
	w.setPrev(b1, nil)
	for i := range b1.Counters {
		if b1.Counters[i].Prev != nil {
			t.Fatalf("first write of view %d has a Prev", b1.Counters[i].View)
		}
	}
	b2 := &Batch{WallMS: 2000, Counters: []CounterDelta{delta(ViewInterval, 900000, c2), delta(ViewLast60m, 900000, c2)}}
	w.setPrev(b2, nil)
	if iv := b2.Counters[0]; iv.Prev != nil {
		t.Errorf("an interval view of the next window (another key) has a Prev: %+v", *iv.Prev)
	}
	l := b2.Counters[1]
	if l.Prev == nil || *l.Prev != c1 || l.PrevStart != 0 || l.PrevEnd != 900000 {
		t.Fatalf("last-60m view after its windows moved on: Prev %v [%d, %d), want %v [0, 900000)", l.Prev, l.PrevStart, l.PrevEnd, c1)
	}
	// rewriteAfter later it is written whole again (its TTL refreshed)
	b3 := &Batch{WallMS: 2000 + rewriteAfter, Counters: []CounterDelta{delta(ViewLast60m, 900000, c2)}}
	w.setPrev(b3, nil)
	if b3.Counters[0].Prev != nil {
		t.Errorf("last-60m view %d ms after its whole write has a Prev", rewriteAfter)
	}
}
