package pipeline

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/acwstream/acwstream/events"
)

// finalStore is the part of a SharedStore that publishing final intervals
// uses, in memory: the shared logs with their last applied entries, and
// the windows not yet published.
type finalStore struct {
	SharedStore // the rest: unused here
	logs        map[string][]byte
	windows     map[int64][]CounterDelta
}

func logOf(src Source) string { return src.Topic + ":" + strconv.Itoa(src.Partition) }

func (s *finalStore) SharedTails(context.Context) (map[string][]byte, error) {
	return maps.Clone(s.logs), nil
}

func (s *finalStore) RegisterLogs(_ context.Context, srcs []Source) error {
	for _, src := range srcs {
		if _, ok := s.logs[logOf(src)]; !ok {
			s.logs[logOf(src)] = nil
		}
	}
	return nil
}

func (s *finalStore) PendingWindows(_ context.Context, before int64) ([]int64, error) {
	var out []int64
	for _, w := range slices.Sorted(maps.Keys(s.windows)) {
		if w < before {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *finalStore) WindowCounters(_ context.Context, start int64) ([]CounterDelta, error) {
	return s.windows[start], nil
}

func (s *finalStore) WindowPublished(_ context.Context, start int64) error {
	delete(s.windows, start)
	return nil
}

// recordingPublisher keeps what it publishes.
type recordingPublisher struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (p *recordingPublisher) Publish(_ context.Context, msgs []kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}

// The store loses acknowledged writes (Redis restarted from an older
// snapshot): the registration of a partition's shared log is gone with
// its deltas since. The shared writer must not take the partitions left
// for all of them and publish a window short: it lists the input
// partitions again, and the lost one holds every window back until it has
// logged again.
func TestAWindowIsNotPublishedShortAfterTheStoreLostALog(t *testing.T) {
	const win = 15 * 60_000
	w0, w1 := int64(100*win), int64(101*win)
	srcs := []Source{{Topic: "in", Partition: 0}, {Topic: "in", Partition: 1}}
	// the log entry of a partition that has closed every window before end
	tail := func(end int64) []byte { return AppendSharedLog(nil, end-4*win, end, nil, nil) }
	team := func(start int64, calls int64) []CounterDelta {
		return []CounterDelta{{Scope: events.ScopeTeam, Key: "t1", View: ViewInterval, Start: start, Delta: events.Counters{CallsHandled: calls}}}
	}
	st := &finalStore{logs: map[string][]byte{logOf(srcs[0]): tail(w1 + win), logOf(srcs[1]): tail(w1 + win)},
		windows: map[int64][]CounterDelta{w0: team(w0, 7)}}
	pub := &recordingPublisher{}
	cfg := &Config{Publisher: pub, Derived: Topics{Intervals: "acw.intervals"}}
	cfg.Engine.Window = win * time.Millisecond
	w := &sharedWriter{st: st, cfg: cfg, log: zerolog.Nop(), leader: true, hooks: resolveHooks(nil),
		partitions: func(context.Context) ([]Source, error) { return srcs, nil }}
	ctx := context.Background()
	if err := w.publishFinal(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pub.msgs) != 1 || len(st.windows) != 0 {
		t.Fatalf("both partitions had closed window 0: published %d records, %d windows left; want 1 and 0", len(pub.msgs), len(st.windows))
	}

	// Redis goes back in time: partition 1's log and its part of window 1
	// are gone; partition 0's log says it has closed window 1.
	delete(st.logs, logOf(srcs[1]))
	st.logs[logOf(srcs[0])] = tail(w1 + 2*win)
	st.windows[w1] = team(w1, 3)
	for range 2 {
		if err := w.publishFinal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(pub.msgs) != 1 || len(st.windows) != 1 {
		t.Fatalf("after partition 1's log was lost, window 1 was published (%d records) before partition 1 logged again", len(pub.msgs)-1)
	}
	if _, ok := st.logs[logOf(srcs[1])]; !ok {
		t.Fatal("partition 1's log was not registered again")
	}

	// Partition 1 catches up and logs again: window 1 is published, whole.
	st.logs[logOf(srcs[1])] = tail(w1 + 2*win)
	st.windows[w1] = team(w1, 8)
	if err := w.publishFinal(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pub.msgs) != 2 || len(st.windows) != 0 {
		t.Fatalf("once partition 1 logged again: %d records, %d windows left; want 2 and 0", len(pub.msgs), len(st.windows))
	}
}

// leaseStore adds the lease and the logs' entries to finalStore.
type leaseStore struct {
	finalStore
	holder  string
	pending []SharedEntry
	applied []SharedEntry
}

func (s *leaseStore) LeaseShared(_ context.Context, token string, _ time.Duration) (bool, error) {
	if s.holder == "" || s.holder == token {
		s.holder = token
		return true, nil
	}
	return false, nil
}

func (s *leaseStore) ReleaseShared(_ context.Context, token string) error {
	if s.holder == token {
		s.holder = ""
	}
	return nil
}

func (s *leaseStore) ReadShared(context.Context, int) ([]SharedEntry, bool, error) {
	return s.pending, false, nil
}

func (s *leaseStore) ApplyShared(_ context.Context, _ string, es []SharedEntry, _ []CounterDelta, _ int64) error {
	s.applied, s.pending = append(s.applied, es...), nil
	return nil
}

// The last instance of a group to stop drains the logs even if it never
// led: its partitions' final entries come after the leader, stopping
// first, released the lease. While another instance holds the lease, it
// leaves them to that one.
func TestTheLastWriterToStopDrainsTheLogs(t *testing.T) {
	for _, holder := range []string{"", "other"} {
		st := &leaseStore{finalStore: finalStore{logs: map[string][]byte{}, windows: map[int64][]CounterDelta{}}, holder: holder,
			pending: []SharedEntry{{Log: "in:0", ID: "2-0", Prev: "1-0", Data: AppendSharedLog(nil, 0, 15*60_000, nil, nil)}}}
		cfg := &Config{Publisher: &recordingPublisher{}, FlushInterval: 10 * time.Millisecond, FinalFlushTimeout: time.Second, MaxBackoff: time.Millisecond,
			Now: time.Now, Location: time.UTC}
		cfg.Engine.Window = 15 * time.Minute
		w := &sharedWriter{st: st, cfg: cfg, token: "me", log: zerolog.Nop(), hooks: resolveHooks(nil),
			partitions: func(context.Context) ([]Source, error) { return nil, nil }}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // stopping, never having led
		w.run(ctx)
		switch {
		case holder == "" && (len(st.applied) != 1 || st.holder != ""):
			t.Errorf("with the lease free: %d entries applied, lease held by %q; want the final entry applied and the lease given back", len(st.applied), st.holder)
		case holder != "" && (len(st.applied) != 0 || st.holder != holder):
			t.Errorf("with the lease held by %s: %d entries applied, lease held by %q; want them left to it", holder, len(st.applied), st.holder)
		}
	}
}
