// Package storetest holds the contract suites of pipeline.Store and
// pipeline.SharedStore, which every store must pass (RunStore,
// RunShared), and Mem, an in-memory store that passes them: the
// contract's reference, for tests.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
)

// Mem is a pipeline.Store and pipeline.SharedStore in memory. Each call
// is atomic (a shared round cannot be interrupted halfway); views are
// summed as their deltas say (ACWMaxMS as a maximum), agent states are
// not kept. It is safe for concurrent use.
type Mem struct {
	mu         sync.Mutex
	parts      map[pipeline.Source]*memPartition
	logs       map[string]*memLog
	views      map[memView]*memCounters
	windows    map[int64]map[string]bool // window start → "scope:key"
	lease      string
	leaseUntil time.Time
}

type memPartition struct {
	owner   string
	found   bool
	ck      pipeline.Checkpoint // without Journal
	journal []memChunk
}

type memChunk struct {
	end uint64
	d   []byte
}

type memLog struct {
	entries []memEntry // from the applied one (if any) on
	applied int64      // number of the last applied entry (0: none)
	last    int64      // number of the last entry appended
}

type memEntry struct {
	n    int64
	data []byte
}

type memView struct {
	scope events.Scope
	key   string
	view  pipeline.View
	start int64
	day   string
}

type memCounters struct {
	c       events.Counters
	reasons map[string]int64
}

var (
	_ pipeline.Store       = (*Mem)(nil)
	_ pipeline.SharedStore = (*Mem)(nil)
)

// NewMem returns an empty store.
func NewMem() *Mem {
	return &Mem{parts: map[pipeline.Source]*memPartition{}, logs: map[string]*memLog{},
		views: map[memView]*memCounters{}, windows: map[int64]map[string]bool{}}
}

// LogName names src's shared log.
func LogName(src pipeline.Source) string { return "log:" + src.String() }

func entryID(n int64) string { return strconv.FormatInt(n, 10) }

// Ping implements pipeline.Store.
func (m *Mem) Ping(context.Context) error { return nil }

// Claim implements pipeline.Store.
func (m *Mem) Claim(_ context.Context, src pipeline.Source, token string) (pipeline.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.parts[src]
	if p == nil {
		p = &memPartition{}
		m.parts[src] = p
	}
	p.owner = token
	if !p.found {
		p.journal = nil // a journal without its checkpoint is stale
		return pipeline.Checkpoint{}, nil
	}
	ck := p.ck
	ck.Found = true
	ck.Snapshot, ck.Aux, ck.Outbox = slices.Clone(ck.Snapshot), slices.Clone(ck.Aux), slices.Clone(ck.Outbox)
	ck.Ticks, ck.Provisional = slices.Clone(ck.Ticks), slices.Clone(ck.Provisional)
	for _, c := range p.journal {
		ck.Journal = append(ck.Journal, slices.Clone(c.d))
		ck.JournalEnd = c.end
	}
	return ck, nil
}

// LoseCheckpoint drops src's checkpoint (not its owner's later claim), as
// a store that lost acknowledged writes would.
func (m *Mem) LoseCheckpoint(src pipeline.Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.parts, src)
}

// Commit implements pipeline.Store.
func (m *Mem) Commit(_ context.Context, b *pipeline.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.parts[b.Source]
	if p == nil || p.owner == "" || p.ck.Seq < b.Seq-1 {
		var seq int64
		if p != nil {
			seq = p.ck.Seq
		}
		return fmt.Errorf("%w: %s: the store holds commit %d, this owner's last commit was %d", pipeline.ErrCheckpointLost, b.Source, seq, b.Seq-1)
	}
	if p.owner != b.Token {
		return fmt.Errorf("%w: %s is owned by %q", pipeline.ErrFenced, b.Source, p.owner)
	}
	if p.ck.Seq == b.Seq {
		return nil // a retry of the commit applied last
	}
	if !p.found && len(b.Snapshot) == 0 {
		return fmt.Errorf("storetest: the first commit of %s carries no snapshot", b.Source)
	}
	for i := range b.Counters {
		m.addView(&b.Counters[i])
	}
	m.checkpoint(p, b)
	if len(b.Dedup) > 0 {
		p.journal = append(p.journal, memChunk{end: b.DedupEnd, d: slices.Clone(b.Dedup)})
	}
	if len(b.Snapshot) > 0 {
		p.journal = slices.DeleteFunc(p.journal, func(c memChunk) bool { return c.end <= b.DedupStart })
	}
	for _, w := range b.SharedWindows {
		if m.windows[w.Start] == nil {
			m.windows[w.Start] = map[string]bool{}
		}
		for _, k := range w.Keys {
			m.windows[w.Start][k] = true
		}
	}
	if len(b.SharedLog) > 0 {
		l := m.log(LogName(b.Source))
		l.last++
		l.entries = append(l.entries, memEntry{n: l.last, data: slices.Clone(b.SharedLog)})
	}
	return nil
}

// checkpoint writes b's checkpoint fields into p, as the contract says:
// the snapshot's only with a snapshot, the shared position only with a
// shared batch, the rebuild mark only when set.
func (m *Mem) checkpoint(p *memPartition, b *pipeline.Batch) {
	ck := &p.ck
	if !p.found {
		ck.SharedOffset, ck.SharedTicks = -1, -1 // not recorded yet
	}
	p.found = true
	ck.EffOffset, ck.Seq = b.Offset, b.Seq
	if len(b.Snapshot) > 0 {
		ck.SnapOffset, ck.Snapshot, ck.Aux = b.SnapOffset, slices.Clone(b.Snapshot), slices.Clone(b.Aux)
	}
	ck.Ticks, ck.Provisional = slices.Clone(b.Ticks), slices.Clone(b.Provisional)
	if len(ck.Ticks) == 0 {
		ck.Ticks = nil
	}
	if len(ck.Provisional) == 0 {
		ck.Provisional = nil
	}
	if b.Shared {
		ck.SharedOffset, ck.SharedTicks = b.Offset, len(b.Ticks)
	}
	ck.Outbox = nil
	if len(b.Outbox) > 0 {
		ck.Outbox = slices.Clone(b.Outbox)
	}
	if b.Rebuild != 0 {
		ck.Rebuild = b.Rebuild
	}
	if ck.SharedTicks < 0 { // never shared: the effects' offset, every tick
		ck.SharedOffset = ck.EffOffset
	}
}

func (m *Mem) log(name string) *memLog {
	l := m.logs[name]
	if l == nil {
		l = &memLog{}
		m.logs[name] = l
	}
	return l
}

func (m *Mem) addView(d *pipeline.CounterDelta) {
	k := memView{scope: d.Scope, key: d.Key, view: d.View, start: d.Start, day: d.Day}
	if d.View == pipeline.ViewLast60m {
		k.start = 0 // one per scope/key, whatever it spans
	}
	v := m.views[k]
	if v == nil || d.Full {
		v = &memCounters{reasons: map[string]int64{}}
		m.views[k] = v
	}
	v.c.Add(&d.Delta)
	for r, ms := range d.Reasons {
		v.reasons[r] += ms
	}
}

// LeaseShared implements pipeline.SharedStore.
func (m *Mem) LeaseShared(_ context.Context, token string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.lease != "" && m.lease != token && now.Before(m.leaseUntil) {
		return false, nil
	}
	m.lease, m.leaseUntil = token, now.Add(ttl)
	return true, nil
}

// ReleaseShared implements pipeline.SharedStore.
func (m *Mem) ReleaseShared(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lease == token {
		m.lease = ""
	}
	return nil
}

func (m *Mem) holds(token string) bool { return m.lease == token && time.Now().Before(m.leaseUntil) }

// ReadShared implements pipeline.SharedStore.
func (m *Mem) ReadShared(_ context.Context, max int) ([]pipeline.SharedEntry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pipeline.SharedEntry
	more := false
	for _, name := range slices.Sorted(maps.Keys(m.logs)) {
		l := m.logs[name]
		prev := ""
		if l.applied > 0 {
			prev = entryID(l.applied)
		}
		n := 0
		for _, e := range l.entries {
			if e.n <= l.applied {
				continue
			}
			if n == max {
				break
			}
			out = append(out, pipeline.SharedEntry{Log: name, ID: entryID(e.n), Prev: prev, Data: slices.Clone(e.data)})
			n++
		}
		more = more || n == max
	}
	return out, more, nil
}

// ApplyShared implements pipeline.SharedStore.
func (m *Mem) ApplyShared(_ context.Context, token string, entries []pipeline.SharedEntry, counters []pipeline.CounterDelta, _ int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(token) {
		return pipeline.ErrSharedConflict
	}
	to := map[string]int64{}
	for _, e := range entries {
		l := m.logs[e.Log]
		if l == nil {
			return fmt.Errorf("storetest: entry of unknown log %q", e.Log)
		}
		if prev := entryID(l.applied); (l.applied == 0 && e.Prev != "") || (l.applied > 0 && e.Prev != prev) {
			return pipeline.ErrSharedConflict // the log moved since it was read
		}
		n, err := strconv.ParseInt(e.ID, 10, 64)
		if err != nil || n <= l.applied || n > l.last {
			return fmt.Errorf("storetest: entry %q of log %q: not an entry to apply", e.ID, e.Log)
		}
		to[e.Log] = max(to[e.Log], n)
	}
	for i := range counters {
		m.addView(&counters[i])
	}
	for name, n := range to {
		l := m.logs[name]
		l.applied = n
		l.entries = slices.DeleteFunc(l.entries, func(e memEntry) bool { return e.n < n }) // the applied one stays: SharedTails
	}
	return nil
}

// SharedTails implements pipeline.SharedStore.
func (m *Mem) SharedTails(context.Context) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for name, l := range m.logs {
		out[name] = nil
		if len(l.entries) > 0 && l.entries[0].n == l.applied {
			out[name] = slices.Clone(l.entries[0].data)
		}
	}
	return out, nil
}

// RegisterLogs implements pipeline.SharedStore.
func (m *Mem) RegisterLogs(_ context.Context, srcs []pipeline.Source) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, src := range srcs {
		m.log(LogName(src))
	}
	return nil
}

// PendingWindows implements pipeline.SharedStore.
func (m *Mem) PendingWindows(_ context.Context, before int64) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for start := range m.windows {
		if start < before {
			out = append(out, start)
		}
	}
	slices.Sort(out)
	return out, nil
}

// WindowCounters implements pipeline.SharedStore.
func (m *Mem) WindowCounters(_ context.Context, start int64) ([]pipeline.CounterDelta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pipeline.CounterDelta
	for sk := range m.windows[start] {
		name, key, _ := strings.Cut(sk, ":")
		scope, ok := events.ParseScope(name)
		if !ok {
			return nil, fmt.Errorf("storetest: window %d holds %q, not scope:key", start, sk)
		}
		d := pipeline.CounterDelta{Scope: scope, Key: key, View: pipeline.ViewInterval, Start: start}
		if v := m.views[memView{scope: scope, key: key, view: pipeline.ViewInterval, start: start}]; v != nil {
			d.Delta, d.Reasons = v.c, maps.Clone(v.reasons)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y pipeline.CounterDelta) int {
		return cmp.Or(cmp.Compare(x.Scope, y.Scope), strings.Compare(x.Key, y.Key))
	})
	return out, nil
}

// WindowPublished implements pipeline.SharedStore.
func (m *Mem) WindowPublished(_ context.Context, start int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.windows, start)
	return nil
}

var errNotShared = errors.New("storetest: the store is not a pipeline.SharedStore")
