package events

import (
	"container/heap"
	"encoding/binary"
	"maps"
	"slices"
)

// Holds is the bookkeeping of a Holder adapter: at most one held event per
// agent (the state an implicit wrap-up window ends in), released in ts
// order once event time passes it. The zero value is empty and ready.
// Peek and Due are O(log n); cancelled entries are dropped lazily.
type Holds struct {
	by map[string]Event // agent_id → held event
	q  holdQueue
}

type holdEntry struct {
	ts    int64
	agent string
}

type holdQueue []holdEntry

func (q holdQueue) Len() int { return len(q) }
func (q holdQueue) Less(i, j int) bool {
	if q[i].ts != q[j].ts {
		return q[i].ts < q[j].ts
	}
	return q[i].agent < q[j].agent
}
func (q holdQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *holdQueue) Push(x any)   { *q = append(*q, x.(holdEntry)) }
func (q *holdQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// Set holds ev for its agent, replacing what was held for it.
func (h *Holds) Set(ev Event) {
	if h.by == nil {
		h.by = map[string]Event{}
	}
	h.by[ev.AgentID] = ev
	heap.Push(&h.q, holdEntry{ev.TS, ev.AgentID})
}

// Get returns what is held for agent.
func (h *Holds) Get(agent string) (Event, bool) {
	ev, ok := h.by[agent]
	return ev, ok
}

// Cancel forgets what is held for agent and returns it.
func (h *Holds) Cancel(agent string) (Event, bool) {
	ev, ok := h.by[agent]
	if ok {
		delete(h.by, agent)
	}
	return ev, ok
}

// EndedBy forgets and returns what is held for agent if its ts is at or
// before ts. An adapter calls it with the time of each of the agent's
// records: the window ended before that record, so its end goes first.
// (Event time may already have released it; whether it had depends on
// other agents' records, and what the agent's own records do must not.)
func (h *Holds) EndedBy(agent string, ts int64) (Event, bool) {
	if ev, ok := h.by[agent]; ok && ev.TS <= ts {
		delete(h.by, agent)
		return ev, true
	}
	return Event{}, false
}

// Len is the number of held events.
func (h *Holds) Len() int { return len(h.by) }

// Due appends to out, in (ts, agent_id) order, every held event with
// ts <= w, and forgets them.
func (h *Holds) Due(w int64, out []Event) []Event {
	for len(h.q) > 0 && h.q[0].ts <= w {
		e := heap.Pop(&h.q).(holdEntry)
		if ev, ok := h.by[e.agent]; ok && ev.TS == e.ts {
			delete(h.by, e.agent)
			out = append(out, ev)
		}
	}
	if len(h.q) > 4*len(h.by)+64 { // mostly cancelled entries: rebuild
		h.q = h.q[:0]
		for a, ev := range h.by {
			h.q = append(h.q, holdEntry{ev.TS, a})
		}
		heap.Init(&h.q)
	}
	return out
}

// AppendState appends the held events to b, sorted by agent_id
// (deterministic), for an adapter's AppendState.
func (h *Holds) AppendState(b []byte) []byte {
	ids := slices.Sorted(maps.Keys(h.by))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, a := range ids {
		b = AppendStateEvent(b, h.by[a])
	}
	return b
}

// RestoreState reads what AppendState wrote from r, replacing h.
func (h *Holds) RestoreState(r *StateReader) {
	*h = Holds{}
	for range r.Count() {
		h.Set(r.Event())
	}
}

// AppendStateEvent appends ev in the binary form StateReader.Event reads.
func AppendStateEvent(b []byte, ev Event) []byte {
	b = AppendStateString(b, ev.AgentID)
	b = append(b, byte(ev.State))
	b = binary.AppendVarint(b, ev.TS)
	for _, s := range [...]string{ev.CallID, ev.EventID, ev.Team, ev.Queue, ev.Channel, ev.Disposition, ev.Reason} {
		b = AppendStateString(b, s)
	}
	return b
}

// AppendStateString appends s, length-prefixed.
func AppendStateString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendStateMap appends m sorted by key (deterministic): a count, then
// each key and what put appends for its value.
func AppendStateMap[V any](b []byte, m map[string]V, put func([]byte, V) []byte) []byte {
	keys := slices.Sorted(maps.Keys(m))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = put(AppendStateString(b, k), m[k])
	}
	return b
}

// ReadStateMap reads what AppendStateMap wrote, get reading each value.
func ReadStateMap[V any](r *StateReader, get func(*StateReader) V) map[string]V {
	n := r.Count()
	m := make(map[string]V, n)
	for range n {
		k := r.String()
		m[k] = get(r)
	}
	return m
}

// Last is the canonical state an adapter last emitted for one agent. It
// lets the adapter skip a record that changes nothing canonical (a
// redelivery, an ADDMEMBER for a second queue, an activity update to the
// same activity).
type Last struct {
	State  State
	CallID string
	Reason string
}

// Emit appends ev to out, with agent_id and team set and channel "voice"
// for call-level states, unless ev has the state, call_id and reason l
// holds; l then holds ev's.
func (l *Last) Emit(out []Event, ev Event, agent, team string) []Event {
	if ev.State == l.State && ev.CallID == l.CallID && ev.Reason == l.Reason {
		return out
	}
	ev.AgentID, ev.Team = agent, team
	if ev.State.CallLevel() {
		ev.Channel = "voice"
	}
	l.Set(&ev)
	return append(out, ev)
}

// Set makes l hold ev's state, call_id and reason (an event emitted
// without Emit, such as a released held one).
func (l *Last) Set(ev *Event) { *l = Last{ev.State, ev.CallID, ev.Reason} }

// AppendState appends l in the form StateReader.Last reads.
func (l Last) AppendState(b []byte) []byte {
	b = append(b, byte(l.State))
	return AppendStateString(AppendStateString(b, l.CallID), l.Reason)
}

// Last reads what Last.AppendState wrote.
func (r *StateReader) Last() Last {
	l := Last{State: State(r.Byte()), CallID: r.String(), Reason: r.String()}
	if l.State != StateNone && !l.State.Valid() {
		r.Fail("last state")
	}
	return l
}
