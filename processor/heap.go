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
// once the slab has grown to the disorder window. Its heap orders slots by
// bufferedLess with each event's ts and seq held in the heap itself, so
// that a comparison reads the slab only when two events share a ts.
type eventBuffer struct {
	slab []buffered
	free []int32
	heap []bufKey
}

// bufKey is an entry of the buffer's heap: a slot and its event's order.
type bufKey struct {
	ts   int64
	seq  uint64
	slot int32
}

func newEventBuffer() *eventBuffer { return &eventBuffer{} }

func (b *eventBuffer) len() int { return len(b.heap) }

// minTS is the ts of the earliest buffered event; len must be > 0.
func (b *eventBuffer) minTS() int64 { return b.heap[0].ts }

// less is bufferedLess of the slots of x and y (small enough to inline).
func (b *eventBuffer) less(x, y bufKey) bool {
	if x.ts != y.ts {
		return x.ts < y.ts
	}
	return b.tieLess(x, y)
}

// tieLess is less of two events with the same ts.
func (b *eventBuffer) tieLess(x, y bufKey) bool {
	if c := strings.Compare(b.slab[x.slot].ev.AgentID, b.slab[y.slot].ev.AgentID); c != 0 {
		return c < 0
	}
	return x.seq < y.seq
}

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
	k := bufKey{ts: ev.TS, seq: seq, slot: i}
	b.heap = append(b.heap, k)
	h := b.heap
	j := len(h) - 1
	for j > 0 {
		p := (j - 1) / 2
		if !b.less(k, h[p]) {
			break
		}
		h[j] = h[p]
		j = p
	}
	h[j] = k
}

// popSlot removes the earliest event's entry from the heap and returns
// its slot.
func (b *eventBuffer) popSlot() int32 {
	h := b.heap
	top := h[0].slot
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	if cap(h) > 4096 && n < cap(h)/4 {
		h = append(make([]bufKey, 0, 2*n), h...) // give back the room of a past peak
	}
	b.heap = h
	if n == 0 {
		return top
	}
	j := 0
	for {
		l := 2*j + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && b.less(h[r], h[l]) {
			m = r
		}
		if !b.less(h[m], last) {
			break
		}
		h[j] = h[m]
		j = m
	}
	h[j] = last
	return top
}

// pop copies the earliest event into ev and releases its slot.
func (b *eventBuffer) pop(ev *events.Event) {
	i := b.popSlot()
	*ev = b.slab[i].ev
	b.slab[i] = buffered{}
	b.free = append(b.free, i)
}

// sorted returns the buffered events in application order.
func (b *eventBuffer) sorted() []*buffered {
	out := make([]*buffered, 0, b.len())
	for _, k := range b.heap {
		out = append(out, &b.slab[k.slot])
	}
	slices.SortFunc(out, func(x, y *buffered) int {
		if bufferedLess(x, y) {
			return -1
		}
		return 1
	})
	return out
}
