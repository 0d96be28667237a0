package processor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/acwstream/acwstream/events"
)

// snapshotVersion is the first byte of every snapshot. Bump it on any
// change of layout; Restore refuses versions it does not know. Version 1
// (always inline dedup memory, no journal index), 2 (without the
// future and idle counters) and 3 (without the max_acw counter, the
// interval fields after work_ms and the handle and reason state of
// agents) are still read.
const snapshotVersion = 4

// ErrSnapshot is returned (wrapped) by Restore for bytes that are not a
// snapshot this version can read.
var ErrSnapshot = errors.New("bad snapshot")

type snapWriter struct{ b []byte }

func (w *snapWriter) u(v uint64)   { w.b = binary.AppendUvarint(w.b, v) }
func (w *snapWriter) i(v int64)    { w.b = binary.AppendVarint(w.b, v) }
func (w *snapWriter) s(v string)   { w.u(uint64(len(v))); w.b = append(w.b, v...) }
func (w *snapWriter) f64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *snapWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// snapReader reads a snapshot or a dedup journal chunk: the codec's
// Reader, failing with ErrSnapshot, and the engine's own types.
type snapReader struct{ events.Reader }

func newSnapReader(b []byte) snapReader { return snapReader{events.Reader{B: b, Corrupt: ErrSnapshot}} }

func (w *snapWriter) event(ev *events.Event) {
	w.s(ev.AgentID)
	w.u(uint64(ev.State))
	w.i(ev.TS)
	w.s(ev.CallID)
	w.s(ev.EventID)
	w.s(ev.Team)
	w.s(ev.Queue)
	w.s(ev.Channel)
	w.s(ev.Disposition)
	w.s(ev.Reason)
	w.s(ev.AgentName)
}

// event reads a buffered event (one of a snapshot of version < 4 has no
// agent_name).
func (r *snapReader) event(ev *events.Event, version byte) {
	ev.AgentID = r.String()
	ev.State = events.State(r.Uvarint())
	ev.TS = r.Varint()
	ev.CallID = r.String()
	ev.EventID = r.String()
	ev.Team = r.String()
	ev.Queue = r.String()
	ev.Channel = r.String()
	ev.Disposition = r.String()
	ev.Reason = r.String()
	if version >= 4 {
		ev.AgentName = r.String()
	}
	if r.Failed() == nil && ev.Validate() != nil {
		r.Fail("buffered event")
	}
}

func (w *snapWriter) counters(c *events.Counters) {
	for _, p := range c.Fields() {
		w.i(*p)
	}
}

// reasons writes a not-ready breakdown: its size, then each reason and
// its time, by reason.
func (w *snapWriter) reasons(m map[string]int64) {
	w.u(uint64(len(m)))
	for _, r := range slices.Sorted(maps.Keys(m)) {
		w.s(r)
		w.i(m[r])
	}
}

func (r *snapReader) reasons() map[string]int64 {
	n := r.CountOf(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]int64, n)
	for ; n > 0 && r.Failed() == nil; n-- {
		k := r.String()
		m[k] = r.Varint()
	}
	if len(m) > maxReasonsKept {
		r.Fail("reasons")
	}
	return m
}

// counters reads the first n fields of c (a snapshot of version < 4
// holds the first 10).
func (r *snapReader) counters(c *events.Counters, n int) {
	fs := c.Fields()
	for _, p := range fs[:n] {
		*p = r.Varint()
	}
}

// statFields lists the counters in snapshot order; a snapshot of
// version < 3 holds the first 8, of version 3 the first 12.
func statFields(s *Stats) []*int64 {
	return []*int64{&s.Accepted, &s.Applied, &s.Duplicates, &s.Late, &s.Malformed, &s.Invalid, &s.Segments, &s.Alerts,
		&s.Future, &s.IdleLogouts, &s.Forgotten, &s.Ignored, &s.MaxACWClosed}
}

// AppendSnapshot appends the engine's whole state (watermark, buffered
// events, dedup memory, agents, open wrap-ups, the partial interval, pending
// alerts and counters) to b. The encoding is deterministic: two engines in
// the same state give the same bytes. Restore reads it back.
func (e *Engine) AppendSnapshot(b []byte) []byte { return e.appendSnapshot(b, false) }

// AppendSnapshotJournaled is AppendSnapshot without the dedup memory's
// entries: it records only which journal entries (see AppendDedupJournal)
// make it up, and RestoreJournaled needs them back. The dedup memory holds
// every accepted event key for DedupHorizon (10 minutes by default), so on
// a busy partition it is most of a full snapshot (about 22 bytes per
// event: 22 MB at 1 700 events/s); a journal writes each key once instead
// of in every snapshot.
func (e *Engine) AppendSnapshotJournaled(b []byte) []byte { return e.appendSnapshot(b, true) }

// DedupStart and DedupEnd bound the journal indexes of the dedup memory:
// it holds the entries [DedupStart, DedupEnd). Both only grow: an
// accepted event's key gets the next index, and eviction (DedupHorizon
// behind the watermark) raises DedupStart.
func (e *Engine) DedupStart() uint64 { return e.dedupOut }

// DedupEnd: see DedupStart.
func (e *Engine) DedupEnd() uint64 { return e.dedupOut + uint64(e.dedupQ.len()) }

// AppendDedupJournal appends to b a journal chunk of the dedup memory's
// entries from index from (or DedupStart, if later) to DedupEnd, and
// returns it. Chunks of successive calls with from = the previous
// DedupEnd, kept until DedupStart passes their end, are what
// RestoreJournaled needs for any later AppendSnapshotJournaled. Entries
// evicted before they were journaled are never needed again.
func (e *Engine) AppendDedupJournal(b []byte, from uint64) []byte {
	from = min(max(from, e.dedupOut), e.DedupEnd())
	w := snapWriter{b: b}
	w.u(from)
	w.u(e.DedupEnd() - from)
	e.dedupQ.each(int(from-e.dedupOut), w.dedup)
	return w.b
}

func (e *Engine) appendSnapshot(b []byte, journaled bool) []byte {
	w := snapWriter{b: b}
	w.b = append(w.b, snapshotVersion)
	w.i(e.windowMS)
	w.bool(e.hasMax)
	w.i(e.maxTS)
	w.u(e.seq)
	for _, p := range statFields(&e.stats) {
		w.i(*p)
	}

	buf := e.buf.sorted()
	w.u(uint64(len(buf)))
	for _, x := range buf {
		w.u(x.seq)
		w.event(&x.ev)
	}

	w.u(e.dedupOut)
	w.bool(journaled)
	if journaled {
		w.u(e.DedupEnd())
	} else {
		w.u(uint64(e.dedupQ.len()))
		e.dedupQ.each(0, w.dedup)
	}

	ids := make([]string, 0, len(e.agents))
	for id := range e.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	w.u(uint64(len(ids)))
	for _, id := range ids {
		a := e.agents[id]
		w.s(a.id)
		w.s(a.team)
		w.u(uint64(a.state))
		w.s(a.call)
		w.i(a.since)
		w.i(a.accrued)
		w.bool(a.talking)
		w.s(a.talkCall)
		s := &a.seg
		w.bool(s.open)
		w.bool(s.alerted)
		w.u(uint64(s.serial))
		w.s(s.id)
		w.s(s.call)
		w.s(s.disposition)
		w.i(s.start)
		w.i(s.warnMS)
		w.i(s.overrunMS)
		for _, c := range a.calls {
			w.s(c.id)
			w.s(c.queue)
		}
		w.u(uint64(a.callNext))
		w.i(a.lastSegStart)
		w.u(uint64(a.segN))
		w.i(a.lastACWMS)
		w.bool(a.lastOverrun)
		w.i(a.talkStart)
		w.s(a.reason)
		w.i(s.handleMS)
		w.s(a.name)
	}

	w.bool(e.started)
	w.i(e.winStart)
	keys := e.sortedKeys()
	w.u(uint64(len(keys)))
	for _, k := range keys {
		w.u(uint64(k.scope))
		w.s(k.key)
		w.counters(&e.acc[k].Counters)
		w.reasons(e.acc[k].reasons)
	}
	return w.b
}

// Snapshot returns AppendSnapshot(nil).
func (e *Engine) Snapshot() []byte { return e.AppendSnapshot(nil) }

// Restore builds an engine from a snapshot taken by AppendSnapshot. Fed the
// same input from that point on, it emits exactly what the original engine
// would have. cfg must use the same Window as the snapshot's engine;
// thresholds may differ (they apply to wrap-ups opened after the restore).
// Corrupt input gives an error wrapping ErrSnapshot, never a panic.
func Restore(cfg Config, out Emitter, snap []byte) (*Engine, error) {
	return RestoreJournaled(cfg, out, snap, nil)
}

// RestoreJournaled is Restore for a snapshot of either kind: one taken by
// AppendSnapshotJournaled takes its dedup memory from journal, the chunks
// of AppendDedupJournal in the order they were made (chunks outside the
// snapshot's range are skipped); a gap in the range is an ErrSnapshot.
func RestoreJournaled(cfg Config, out Emitter, snap []byte, journal [][]byte) (*Engine, error) {
	e, err := New(cfg, out)
	if err != nil {
		return nil, err
	}
	if len(snap) == 0 || snap[0] < 1 || snap[0] > snapshotVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrSnapshot)
	}
	version := snap[0]
	nCounters := events.NumCounters
	if version < 4 {
		nCounters = 10
	}
	r := newSnapReader(snap[1:])
	if win := r.Varint(); r.Failed() == nil && win != e.windowMS {
		return nil, fmt.Errorf("%w: taken with window %dms, configured %dms", ErrSnapshot, win, e.windowMS)
	}
	e.hasMax = r.Bool()
	e.maxTS = r.Varint()
	e.seq = r.Uvarint()
	stats := statFields(&e.stats)
	switch version {
	case 1, 2:
		stats = stats[:8]
	case 3:
		stats = stats[:12]
	}
	for _, p := range stats {
		*p = r.Varint()
	}

	for n := r.CountOf(12); n > 0 && r.Failed() == nil; n-- {
		seq := r.Uvarint()
		var ev events.Event
		r.event(&ev, version)
		e.buf.push(&ev, seq)
	}

	journaled := false
	if version > 1 {
		e.dedupOut = r.Uvarint()
		journaled = r.Bool()
	}
	if journaled {
		if end := r.Uvarint(); r.Failed() == nil {
			if err := e.readDedupJournal(journal, end); err != nil {
				return nil, err
			}
		}
	} else {
		for n := r.CountOf(17); n > 0 && r.Failed() == nil; n-- {
			e.pushDedup(r.dedup())
		}
	}

	for n := r.CountOf(20); n > 0 && r.Failed() == nil; n-- {
		a := &agent{id: r.String(), team: r.String(), state: events.State(r.Uvarint()), call: r.String(), since: r.Varint(), accrued: r.Varint(), talking: r.Bool(), talkCall: r.String()}
		s := &a.seg
		s.open = r.Bool()
		s.alerted = r.Bool()
		s.serial = uint32(r.Uvarint())
		s.id = r.String()
		s.call = r.String()
		s.disposition = r.String()
		s.start = r.Varint()
		s.warnMS = r.Varint()
		s.overrunMS = r.Varint()
		for i := range a.calls {
			a.calls[i] = callMemo{id: r.String(), queue: r.String()}
		}
		a.callNext = uint8(r.Uvarint() % recentCalls)
		a.lastSegStart = r.Varint()
		a.segN = uint32(r.Uvarint())
		a.lastACWMS = r.Varint()
		a.lastOverrun = r.Bool()
		if version >= 4 {
			a.talkStart = r.Varint()
			a.reason = r.String()
			s.handleMS = r.Varint()
			a.name = r.String()
		} else {
			// Taken before handles were timed: a call in progress is
			// timed from its last state change, and a wrap-up in progress
			// completes no handle.
			a.talkStart = a.since
			s.handleMS = -1
		}
		if a.state > events.StateACW {
			r.Fail("agent state")
		}
		if r.Failed() != nil {
			break
		}
		if _, dup := e.agents[a.id]; dup || a.id == "" {
			r.Fail("agent id")
			break
		}
		e.agents[a.id] = a
		e.agentsPeak = len(e.agents)
		a.idleQueued = true
		e.idle.push(idleEntry{at: a.since + e.idleMS, agent: a})
		if working(a.state) {
			e.working++
		}
		if s.open && !s.alerted {
			e.alerts.push(alertEntry{at: s.start + s.overrunMS, agent: a, serial: s.serial})
		}
		if s.open && e.maxACWMS > 0 {
			e.acwEnds.push(alertEntry{at: s.start + e.maxACWMS, agent: a, serial: s.serial})
		}
	}

	e.started = r.Bool()
	e.winStart = r.Varint()
	for n := r.CountOf(12); n > 0 && r.Failed() == nil; n-- {
		k := scopeKey{scope: events.Scope(r.Uvarint()), key: r.String()}
		x := &accEntry{key: k}
		r.counters(&x.Counters, nCounters)
		if version >= 4 {
			x.reasons = r.reasons()
		}
		if k.scope >= events.NumScopes {
			r.Fail("scope")
		}
		if e.acc[k] != nil {
			r.Fail("counters given twice")
		}
		e.addEntry(x)
	}
	if err := r.Err(); err != nil { // also bytes after the end
		return nil, err
	}
	return e, nil
}

func (w *snapWriter) dedup(d dedupEntry) {
	w.f64(d.k.a)
	w.f64(d.k.b)
	w.i(d.ts)
}

func (r *snapReader) dedup() dedupEntry {
	return dedupEntry{k: key128{a: r.Uint64LE(), b: r.Uint64LE()}, ts: r.Varint()}
}

// pushDedup adds a restored dedup entry.
func (e *Engine) pushDedup(d dedupEntry) {
	e.dedupQ.push(d)
	e.dedup.insert(d.k)
}

// readDedupJournal rebuilds the dedup memory [e.dedupOut, end) from
// journal chunks.
func (e *Engine) readDedupJournal(journal [][]byte, end uint64) error {
	next := e.dedupOut
	for i, c := range journal {
		r := newSnapReader(c)
		idx := r.Uvarint()
		n := r.CountOf(17)
		if r.Failed() == nil && idx > next && idx < end {
			return fmt.Errorf("%w: dedup journal lacks entries %d to %d (chunk %d starts at %d)", ErrSnapshot, next, min(idx, end)-1, i, idx)
		}
		for ; n > 0 && r.Failed() == nil && idx < end; n, idx = n-1, idx+1 {
			d := r.dedup()
			if idx == next && r.Failed() == nil {
				e.pushDedup(d)
				next++
			}
		}
		if r.Failed() != nil {
			return fmt.Errorf("dedup journal chunk %d: %w", i, r.Failed())
		}
	}
	if next != end {
		return fmt.Errorf("%w: dedup journal ends at entry %d, the snapshot needs up to %d", ErrSnapshot, next, end)
	}
	return nil
}
