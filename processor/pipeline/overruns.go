package pipeline

import (
	"container/heap"
	"slices"

	"github.com/acwstream/acwstream/events"
)

// overrunWatch raises overrun alerts by wall clock, ahead of the engine.
// The engine raises an overrun only once the watermark passes the
// threshold, max_out_of_order later, and only when events arrive; the
// watch follows the open wrap-ups (from the engine's agent states) in the
// order their thresholds pass, and alerts those the wall clock has passed
// (provisionally: if the wrap-up turns out to have ended in time, a
// resolved alert follows).
type overrunWatch struct {
	// open holds each agent's open wrap-up; prov the segment ids alerted
	// by wall clock ahead of the engine.
	open map[string]events.AgentState
	prov map[string]bool
	// inTime holds, per agent, the open wrap-up (segment id) known to end
	// before its overrun threshold: its closing event has arrived and
	// waits for the watermark, so the wall clock must not alert it.
	inTime map[string]string
	// deadlines orders the open wrap-ups by when their overrun threshold
	// passes (event-time ms); an entry whose wrap-up ended or changed is
	// dropped when it comes up.
	deadlines deadlineHeap
}

func newOverrunWatch() overrunWatch {
	return overrunWatch{open: map[string]events.AgentState{}, prov: map[string]bool{}, inTime: map[string]string{}}
}

// track follows an agent's latest state.
func (o *overrunWatch) track(a *events.AgentState) {
	if a.ACWStart == 0 {
		o.forget(a.AgentID)
		return
	}
	if was, ok := o.open[a.AgentID]; !ok || was.SegmentID != a.SegmentID || was.ACWStart+was.OverrunMS != a.ACWStart+a.OverrunMS {
		heap.Push(&o.deadlines, deadline{at: a.ACWStart + a.OverrunMS, agent: a.AgentID, segment: a.SegmentID})
	}
	o.open[a.AgentID] = *a
	o.compact()
}

// forget drops an agent's open wrap-up, if any.
func (o *overrunWatch) forget(id string) {
	delete(o.open, id)
	delete(o.inTime, id)
}

// raised reports whether the engine's alert a was raised already, with
// the same id, by the wall clock.
func (o *overrunWatch) raised(a *events.Alert) bool {
	return a.Kind == events.AlertOverrun && o.prov[a.SegmentID]
}

// ended takes the segment the engine closed, and returns the resolved
// alert that follows a provisional overrun alert of a wrap-up that had
// ended in time (its close arrived after the threshold passed).
func (o *overrunWatch) ended(s *events.Segment) (resolved *events.Alert) {
	if !o.prov[s.SegmentID] {
		return nil
	}
	delete(o.prov, s.SegmentID)
	if s.Overrun {
		return nil
	}
	return &events.Alert{Kind: events.AlertResolved, SegmentID: s.SegmentID, AgentID: s.AgentID,
		CallID: s.CallID, Team: s.Team, Queue: s.Queue, Start: s.Start, At: s.End, ThresholdMS: s.ThresholdMS}
}

// due returns the overrun alerts of the open wrap-ups whose threshold the
// wall clock (now, Unix ms) has passed, as the engine would raise them
// (same id and fields), and records them as raised. pendingEnds
// (Engine.PendingEnds) tells of closing events that have arrived but wait
// for the watermark: a wrap-up one ends in time is not alerted.
func (o *overrunWatch) due(now int64, pendingEnds func(ids []string) map[string]int64) []events.Alert {
	var due []string
	for len(o.deadlines) > 0 && o.deadlines[0].at <= now {
		d := heap.Pop(&o.deadlines).(deadline)
		if !o.current(d) {
			continue // ended, or its threshold changed (another entry has it)
		}
		st := o.open[d.agent]
		// Each of these stays so for this wrap-up: nothing to come back for.
		if !st.Alerted && !o.prov[st.SegmentID] && o.inTime[d.agent] != st.SegmentID {
			due = append(due, d.agent)
		}
	}
	if len(due) == 0 {
		return nil
	}
	slices.Sort(due)
	ends := pendingEnds(due)
	var alerts []events.Alert
	for _, id := range due {
		st := o.open[id]
		if end, ok := ends[id]; ok && end <= st.ACWStart+st.OverrunMS {
			o.inTime[id] = st.SegmentID // it stays so: no need to ask again
			continue
		}
		o.prov[st.SegmentID] = true
		alerts = append(alerts, events.Alert{Kind: events.AlertOverrun, SegmentID: st.SegmentID, AgentID: st.AgentID,
			CallID: st.CallID, Team: st.Team, Queue: st.Queue, Start: st.ACWStart,
			At: st.ACWStart + st.OverrunMS, ThresholdMS: st.OverrunMS})
	}
	return alerts
}

// current reports whether d is the deadline of a wrap-up still open.
func (o *overrunWatch) current(d deadline) bool {
	st, ok := o.open[d.agent]
	return ok && st.SegmentID == d.segment && st.ACWStart+st.OverrunMS == d.at
}

// compact drops the entries of wrap-ups that have ended once they
// outnumber the open ones: due drops them as they come due, but it runs
// only on a caught-up partition, and while a backlog drains every wrap-up
// in it would leave its entry behind. The heap so follows the open
// wrap-ups, not the backlog.
func (o *overrunWatch) compact() {
	if len(o.deadlines) <= 2*len(o.open)+64 {
		return
	}
	kept := o.deadlines[:0]
	for _, d := range o.deadlines {
		if o.current(d) {
			kept = append(kept, d)
		}
	}
	clear(o.deadlines[len(kept):])
	o.deadlines = kept
	heap.Init(&o.deadlines)
}

// provisional lists the provisionally alerted open wrap-ups, sorted.
func (o *overrunWatch) provisional() []string {
	ids := make([]string, 0, len(o.prov))
	for id := range o.prov {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// deadline is when (event-time ms) an open wrap-up passes its overrun
// threshold.
type deadline struct {
	at             int64
	agent, segment string
}

// deadlineHeap is a container/heap of deadlines, earliest first.
type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
