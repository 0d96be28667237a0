package processor

import (
	"slices"
	"strings"

	"github.com/acwstream/acwstream/events"
)

// minHeap is a binary min-heap ordered by less.
type minHeap[T any] struct {
	s    []T
	less func(a, b T) bool
}

func (h *minHeap[T]) len() int { return len(h.s) }
func (h *minHeap[T]) min() T   { return h.s[0] }

func (h *minHeap[T]) push(v T) {
	h.s = append(h.s, v)
	s := h.s
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *minHeap[T]) pop() T {
	s := h.s
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	var zero T
	s[n] = zero
	s = s[:n]
	if cap(s) > 4096 && n < cap(s)/4 {
		s = append(make([]T, 0, 2*n), s...) // give back the room of a past peak
	}
	h.s = s
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(s[r], s[l]) {
			m = r
		}
		if !h.less(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return top
}

// buffered is an accepted event waiting for the watermark.
type buffered struct {
	ev  events.Event
	seq uint64 // arrival order
}

// bufferedLess orders buffered events by (ts, agent_id, arrival). Per agent
// this is the contract's (ts, arrival) order; across agents the agent_id
// tie-break makes output independent of how arrival interleaved agents.
func bufferedLess(a, b *buffered) bool {
	if a.ev.TS != b.ev.TS {
		return a.ev.TS < b.ev.TS
	}
	if c := strings.Compare(a.ev.AgentID, b.ev.AgentID); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

// alertEntry is an overrun deadline of an open wrap-up. Entries go stale
// when the wrap-up closes first; fireAlert skips those.
type alertEntry struct {
	at     int64
	agent  *agent
	serial uint32
}

func alertLess(a, b alertEntry) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if c := strings.Compare(a.agent.id, b.agent.id); c != 0 {
		return c < 0
	}
	return a.serial < b.serial
}

// idleEntry is a time at or before an agent's idle deadline (its last
// event + AgentIdleTimeout); see Engine.fireIdle.
type idleEntry struct {
	at    int64
	agent *agent
}

func idleLess(a, b idleEntry) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.agent.id < b.agent.id
}

// eventBuffer holds accepted events until the watermark passes them. Events
// live in a slab reused through a free list, so buffering allocates nothing
// once the slab has grown to the disorder window.
type eventBuffer struct {
	slab []buffered
	free []int32
	heap minHeap[int32]
}

func newEventBuffer() *eventBuffer {
	b := &eventBuffer{}
	b.heap.less = func(i, j int32) bool { return bufferedLess(&b.slab[i], &b.slab[j]) }
	return b
}

func (b *eventBuffer) len() int { return b.heap.len() }

// minTS is the ts of the earliest buffered event; len must be > 0.
func (b *eventBuffer) minTS() int64 { return b.slab[b.heap.min()].ev.TS }

func (b *eventBuffer) push(ev *events.Event, seq uint64) {
	var i int32
	if n := len(b.free); n > 0 {
		i = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		b.slab = append(b.slab, buffered{})
		i = int32(len(b.slab) - 1)
	}
	b.slab[i] = buffered{ev: *ev, seq: seq}
	// The id has been hashed into the dedup key and is never needed again;
	// dropping it keeps borrowed input memory out of the buffer and
	// snapshots small.
	b.slab[i].ev.EventID = ""
	b.heap.push(i)
}

// pop copies the earliest event into ev and releases its slot.
func (b *eventBuffer) pop(ev *events.Event) {
	i := b.heap.pop()
	*ev = b.slab[i].ev
	b.slab[i] = buffered{}
	b.free = append(b.free, i)
}

// sorted returns the buffered events in application order.
func (b *eventBuffer) sorted() []*buffered {
	out := make([]*buffered, 0, b.len())
	for _, i := range b.heap.s {
		out = append(out, &b.slab[i])
	}
	slices.SortFunc(out, func(x, y *buffered) int {
		if bufferedLess(x, y) {
			return -1
		}
		return 1
	})
	return out
}
