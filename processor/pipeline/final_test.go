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
