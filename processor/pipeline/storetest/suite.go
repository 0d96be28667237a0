package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
)

// Harness makes the stores a suite runs against.
type Harness struct {
	// New returns an empty store, of the test's own.
	New func(t *testing.T) pipeline.Store
	// LoseCheckpoint makes s lose src's checkpoint, as a store emptied
	// or failed over to a lagging replica does.
	LoseCheckpoint func(t *testing.T, s pipeline.Store, src pipeline.Source)
}

var (
	src  = pipeline.Source{Topic: "in", Partition: 0}
	src2 = pipeline.Source{Topic: "in", Partition: 1}
)

// RunStore runs the pipeline.Store contract against h's stores (the
// first commit after a claim that found no checkpoint carries a
// snapshot, as a partition's does): what a
// claim returns, fencing on reclaim, the idempotent retry of a commit by
// its sequence, the outbox and the dedup journal, a lost checkpoint, and
// (for a ReleasingStore) a commit after a release.
func RunStore(t *testing.T, h Harness) {
	t.Run("a claim without a checkpoint finds none", func(t *testing.T) {
		s := h.New(t)
		if ck := claim(t, s, src, "a"); ck.Found || ck.Seq != 0 || len(ck.Journal) != 0 || ck.JournalEnd != 0 {
			t.Fatalf("claim of a new partition: %+v", ck)
		}
	})
	t.Run("a claim returns what the commits checkpointed", func(t *testing.T) { checkpointFields(t, h) })
	t.Run("a reclaim fences the earlier owner", func(t *testing.T) {
		s := h.New(t)
		claim(t, s, src, "a")
		commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 1, Offset: 10, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 10})
		if ck := claim(t, s, src, "b"); ck.Seq != 1 || ck.EffOffset != 10 {
			t.Fatalf("reclaim: %+v", ck)
		}
		err := s.Commit(context.Background(), &pipeline.Batch{Source: src, Token: "a", Seq: 2, Offset: 20, WallMS: 1})
		if !errors.Is(err, pipeline.ErrFenced) {
			t.Fatalf("the earlier owner's commit: %v, want ErrFenced", err)
		}
		if ck := claim(t, s, src, "b"); ck.Seq != 1 || ck.EffOffset != 10 {
			t.Fatalf("a fenced commit was applied: %+v", ck)
		}
		commit(t, s, &pipeline.Batch{Source: src, Token: "b", Seq: 2, Offset: 30, WallMS: 1})
		if ck := claim(t, s, src, "b"); ck.Seq != 2 || ck.EffOffset != 30 {
			t.Fatalf("the new owner's commit: %+v", ck)
		}
	})
	t.Run("a retried commit is applied once", func(t *testing.T) {
		s := h.New(t)
		claim(t, s, src, "a")
		b := &pipeline.Batch{Source: src, Token: "a", Seq: 1, Offset: 10, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 10, Dedup: []byte("d1"), DedupEnd: 3,
			Shared: true, SharedLog: teamLog("t1", 0, 1)}
		for range 3 {
			commit(t, s, b)
		}
		if ck := claim(t, s, src, "a"); ck.Seq != 1 || len(ck.Journal) != 1 {
			t.Fatalf("after a retried commit: %+v, want seq 1 and one journal chunk", ck)
		}
		if sh, ok := s.(pipeline.SharedStore); ok {
			if es, _, err := sh.ReadShared(context.Background(), 100); err != nil || len(es) != 1 {
				t.Fatalf("shared log after a retried commit: %d entries (%v), want 1", len(es), err)
			}
		}
	})
	t.Run("each commit's outbox replaces the last", func(t *testing.T) {
		s := h.New(t)
		claim(t, s, src, "a")
		for i, o := range []string{"first", "second", ""} {
			b := &pipeline.Batch{Source: src, Token: "a", Seq: int64(i + 1), Offset: int64(10 * (i + 1)), WallMS: 1, Outbox: []byte(o)}
			if i == 0 {
				b.Snapshot, b.SnapOffset = []byte("s"), 10
			}
			commit(t, s, b)
			if got := string(claim(t, s, src, "a").Outbox); got != o {
				t.Fatalf("outbox after commit %d: %q, want %q", i+1, got, o)
			}
		}
	})
	t.Run("snapshots trim the dedup journal", func(t *testing.T) { dedupJournal(t, h) })
	t.Run("a lost checkpoint is refused, not overwritten", func(t *testing.T) {
		s := h.New(t)
		claim(t, s, src, "a")
		commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 1, Offset: 10, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 10})
		commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 2, Offset: 20, WallMS: 1})
		h.LoseCheckpoint(t, s, src)
		err := s.Commit(context.Background(), &pipeline.Batch{Source: src, Token: "a", Seq: 3, Offset: 30, WallMS: 1})
		if !errors.Is(err, pipeline.ErrCheckpointLost) {
			t.Fatalf("commit after the checkpoint was lost: %v, want ErrCheckpointLost", err)
		}
		if ck := claim(t, s, src, "a"); ck.Found {
			t.Fatalf("the refused commit wrote a checkpoint: %+v", ck)
		}
	})
	t.Run("a released partition commits again", func(t *testing.T) {
		s := h.New(t)
		rs, ok := s.(pipeline.ReleasingStore)
		if !ok {
			t.Skip("not a ReleasingStore")
		}
		claim(t, s, src, "a")
		commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 1, Offset: 10, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 10})
		rs.Release(src)
		commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 2, Offset: 20, WallMS: 1})
		rs.Release(src)
		rs.Release(src) // twice: harmless
		if ck := claim(t, s, src, "b"); ck.Seq != 2 || ck.EffOffset != 20 {
			t.Fatalf("after commits around a release: %+v", ck)
		}
	})
}

// checkpointFields commits every checkpoint field and checks that a claim
// returns each as the contract says (pipeline.Checkpoint).
func checkpointFields(t *testing.T, h Harness) {
	s := h.New(t)
	claim(t, s, src, "a")
	ticks := []pipeline.Tick{{Offset: 10, Watermark: 1000}}
	commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 1, Offset: 10, WallMS: 1, Snapshot: []byte("s1"), SnapOffset: 10,
		Aux: []byte("a1"), Ticks: ticks, Provisional: []string{"x", "y"}, Outbox: []byte("o1"), Rebuild: 7, Shared: true,
		Dedup: []byte("d1"), DedupEnd: 3})
	ck := claim(t, s, src, "a")
	if !ck.Found || ck.Seq != 1 || ck.EffOffset != 10 || ck.SnapOffset != 10 || string(ck.Snapshot) != "s1" || string(ck.Aux) != "a1" ||
		!slices.Equal(ck.Ticks, ticks) || !slices.Equal(ck.Provisional, []string{"x", "y"}) || string(ck.Outbox) != "o1" ||
		ck.Rebuild != 7 || ck.SharedOffset != 10 || ck.SharedTicks != 1 || len(ck.Journal) != 1 || string(ck.Journal[0]) != "d1" || ck.JournalEnd != 3 {
		t.Fatalf("claim after the first commit: %+v", ck)
	}
	// Without a snapshot, a shared flush or a rebuild mark, a commit keeps
	// those fields; the rest it replaces.
	ticks = append(ticks, pipeline.Tick{Offset: 20, Watermark: 2000})
	commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 2, Offset: 20, WallMS: 2, Ticks: ticks})
	ck = claim(t, s, src, "a")
	if ck.Seq != 2 || ck.EffOffset != 20 || ck.SnapOffset != 10 || string(ck.Snapshot) != "s1" || string(ck.Aux) != "a1" ||
		!slices.Equal(ck.Ticks, ticks) || ck.Provisional != nil || ck.Outbox != nil || ck.Rebuild != 7 ||
		ck.SharedOffset != 10 || ck.SharedTicks != 1 || len(ck.Journal) != 1 || ck.JournalEnd != 3 {
		t.Fatalf("claim after the second commit: %+v", ck)
	}
	// A partition that never flushed shared effects: its shared position
	// is its effects' (and every tick's).
	claim(t, s, src2, "a")
	commit(t, s, &pipeline.Batch{Source: src2, Token: "a", Seq: 1, Offset: 5, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 5})
	commit(t, s, &pipeline.Batch{Source: src2, Token: "a", Seq: 2, Offset: 8, WallMS: 1, Ticks: ticks})
	if ck := claim(t, s, src2, "a"); ck.SharedOffset != 8 || ck.SharedTicks != -1 || ck.Rebuild != 0 {
		t.Fatalf("claim of a partition without shared flushes: %+v, want shared offset 8, shared ticks -1", ck)
	}
}

// dedupJournal: chunks are appended in commit order (a retried commit
// appends nothing twice), a snapshot drops those ending at or before its
// DedupStart, a claim returns the rest and the last end, and a claim
// without a checkpoint drops a stale journal.
func dedupJournal(t *testing.T, h Harness) {
	s := h.New(t)
	claim(t, s, src, "a")
	add := func(seq int64, chunk string, end uint64, snapStart int64) {
		t.Helper()
		b := &pipeline.Batch{Source: src, Token: "a", Seq: seq, Offset: 10 * seq, WallMS: 1, Dedup: []byte(chunk), DedupEnd: end}
		if snapStart >= 0 {
			b.Snapshot, b.SnapOffset, b.DedupStart = []byte("snap"), 10*seq, uint64(snapStart)
		}
		commit(t, s, b)
		commit(t, s, b) // a retry: applied once
	}
	journal := func() (string, uint64) {
		t.Helper()
		ck := claim(t, s, src, "a")
		got := ""
		for _, c := range ck.Journal {
			got += string(c) + ","
		}
		return got, ck.JournalEnd
	}
	add(1, "a", 3, 0)
	add(2, "b", 5, -1)
	add(3, "", 0, -1) // no events accepted: no chunk
	add(4, "c", 9, -1)
	if got, end := journal(); got != "a,b,c," || end != 9 {
		t.Fatalf("journal %q ending at %d, want a,b,c, ending at 9", got, end)
	}
	add(5, "d", 12, 5) // entries 5 on: a and b (ending at 3 and 5) go
	if got, end := journal(); got != "c,d," || end != 12 {
		t.Fatalf("journal %q ending at %d after a snapshot from entry 5, want c,d, ending at 12", got, end)
	}
	h.LoseCheckpoint(t, s, src)
	if ck := claim(t, s, src, "a"); ck.Found || len(ck.Journal) != 0 || ck.JournalEnd != 0 {
		t.Fatalf("claim without a checkpoint: %+v, want nothing", ck)
	}
	commit(t, s, &pipeline.Batch{Source: src, Token: "a", Seq: 1, Offset: 1, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 1})
	if got, end := journal(); got != "" || end != 0 {
		t.Fatalf("journal %q ending at %d after a new start, want the stale one gone", got, end)
	}
}

// RunShared runs the pipeline.SharedStore contract against h's stores
// (New must return a SharedStore): one lease holder at a time, each log
// entry applied once and only by the lease holder, the logs' tails, and
// the registry of windows awaiting their final records.
func RunShared(t *testing.T, h Harness) {
	ctx := context.Background()
	newShared := func(t *testing.T) (pipeline.Store, pipeline.SharedStore) {
		s := h.New(t)
		sh, ok := s.(pipeline.SharedStore)
		if !ok {
			t.Fatal(errNotShared)
		}
		return s, sh
	}
	t.Run("one lease holder at a time", func(t *testing.T) {
		_, sh := newShared(t)
		for _, c := range []struct {
			token string
			want  bool
		}{{"a", true}, {"b", false}, {"a", true}} {
			if ok, err := sh.LeaseShared(ctx, c.token, time.Minute); err != nil || ok != c.want {
				t.Fatalf("lease for %s: %v %v, want %v", c.token, ok, err, c.want)
			}
		}
		if err := sh.ReleaseShared(ctx, "b"); err != nil { // not b's: nothing happens
			t.Fatal(err)
		}
		if ok, _ := sh.LeaseShared(ctx, "b", time.Minute); ok {
			t.Fatal("b took the lease a holds after releasing what it did not hold")
		}
		if err := sh.ReleaseShared(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if ok, err := sh.LeaseShared(ctx, "b", time.Minute); !ok || err != nil {
			t.Fatalf("lease for b after a released it: %v %v", ok, err)
		}
	})
	t.Run("each entry is applied once, by the lease holder", func(t *testing.T) {
		s, sh := newShared(t)
		claim(t, s, src, "p")
		for seq := int64(1); seq <= 2; seq++ {
			commit(t, s, sharedBatch(seq, "t1", 0))
		}
		lease(t, sh, "w")
		first := read(t, sh, 100)
		again := read(t, sh, 100)
		if len(first) != 2 || first[0].Log != first[1].Log || first[0].ID == first[1].ID {
			t.Fatalf("read %+v, want the two entries of one log", first)
		}
		if err := sh.ApplyShared(ctx, "x", first, sum(t, first), 1); !errors.Is(err, pipeline.ErrSharedConflict) {
			t.Fatalf("apply without the lease: %v, want ErrSharedConflict", err)
		}
		apply(t, sh, "w", first)
		if err := sh.ApplyShared(ctx, "w", again, sum(t, again), 1); !errors.Is(err, pipeline.ErrSharedConflict) {
			t.Fatalf("applying entries a second time: %v, want ErrSharedConflict", err)
		}
		if es := read(t, sh, 100); len(es) != 0 {
			t.Fatalf("applied entries read again: %+v", es)
		}
		if got := acwCount(t, sh, 0, "t1"); got != 2 {
			t.Fatalf("team t1 acw_count %d, want 2 (once per entry)", got)
		}
		commit(t, s, sharedBatch(3, "t1", 0))
		es := read(t, sh, 100)
		if len(es) != 1 || es[0].Prev != first[1].ID {
			t.Fatalf("after a third commit, read %+v; want its entry, after the applied %s", es, first[1].ID)
		}
		apply(t, sh, "w", es)
		if got := acwCount(t, sh, 0, "t1"); got != 3 {
			t.Fatalf("team t1 acw_count %d, want 3", got)
		}
	})
	t.Run("a read is paged per log", func(t *testing.T) {
		s, sh := newShared(t)
		claim(t, s, src, "p")
		for seq := int64(1); seq <= 3; seq++ {
			commit(t, s, sharedBatch(seq, "t1", 0))
		}
		lease(t, sh, "w")
		es, more, err := sh.ReadShared(ctx, 2)
		if err != nil || len(es) != 2 || !more {
			t.Fatalf("read 2 of 3: %d entries, more %v, %v", len(es), more, err)
		}
		apply(t, sh, "w", es)
		es, more, err = sh.ReadShared(ctx, 2)
		if err != nil || len(es) != 1 || more {
			t.Fatalf("read the rest: %d entries, more %v, %v", len(es), more, err)
		}
	})
	t.Run("tails hold each log's last applied entry", func(t *testing.T) {
		s, sh := newShared(t)
		claim(t, s, src, "p")
		b := sharedBatch(1, "t1", 0)
		commit(t, s, b)
		if err := sh.RegisterLogs(ctx, []pipeline.Source{src2}); err != nil {
			t.Fatal(err)
		}
		tails, err := sh.SharedTails(ctx)
		if err != nil || len(tails) != 2 {
			t.Fatalf("tails %v (%v), want two logs", tails, err)
		}
		for l, d := range tails {
			if d != nil {
				t.Fatalf("log %s has a tail before any entry was applied", l)
			}
		}
		lease(t, sh, "w")
		apply(t, sh, "w", read(t, sh, 100))
		tails, _ = sh.SharedTails(ctx)
		n := 0
		for _, d := range tails {
			if d != nil {
				n++
				if string(d) != string(b.SharedLog) {
					t.Fatal("the tail is not the entry applied last")
				}
			}
		}
		if n != 1 || len(tails) != 2 {
			t.Fatalf("%d tails of %d logs, want 1 of 2", n, len(tails))
		}
	})
	t.Run("windows wait until published", func(t *testing.T) {
		s, sh := newShared(t)
		claim(t, s, src, "p")
		commit(t, s, sharedBatch(1, "t1", 0))
		commit(t, s, sharedBatch(2, "t2", 900_000))
		lease(t, sh, "w")
		apply(t, sh, "w", read(t, sh, 100))
		for _, c := range []struct {
			before int64
			want   []int64
		}{{0, nil}, {1, []int64{0}}, {900_001, []int64{0, 900_000}}} {
			if got, err := sh.PendingWindows(ctx, c.before); err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("pending before %d: %v (%v), want %v", c.before, got, err, c.want)
			}
		}
		if got := acwCount(t, sh, 900_000, "t2"); got != 1 {
			t.Fatalf("window 900000 team t2 acw_count %d, want 1", got)
		}
		if err := sh.WindowPublished(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if got, _ := sh.PendingWindows(ctx, 900_001); !slices.Equal(got, []int64{900_000}) {
			t.Fatalf("pending after window 0 was published: %v", got)
		}
		if cs, err := sh.WindowCounters(ctx, 0); err != nil || len(cs) != 0 {
			t.Fatalf("a published window's counters: %+v (%v), want none", cs, err)
		}
	})
}

func claim(t *testing.T, s pipeline.Store, src pipeline.Source, token string) pipeline.Checkpoint {
	t.Helper()
	ck, err := s.Claim(context.Background(), src, token)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func commit(t *testing.T, s pipeline.Store, b *pipeline.Batch) {
	t.Helper()
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// teamLog is a shared log entry adding n wrap-ups to team's window ws.
func teamLog(team string, ws int64, n int64) []byte {
	return pipeline.AppendSharedLog(nil, ws, ws+900_000, []pipeline.CounterDelta{{Scope: events.ScopeTeam, Key: team,
		View: pipeline.ViewInterval, Start: ws, End: ws + 900_000, Delta: events.Counters{ACWCount: n, ACWTotalMS: 5000 * n}}}, nil)
}

// sharedBatch is src's commit seq (token "p") of one wrap-up of team in
// window ws.
func sharedBatch(seq int64, team string, ws int64) *pipeline.Batch {
	b := &pipeline.Batch{Source: src, Token: "p", Seq: seq, Offset: 10 * seq, WallMS: 1, Shared: true, SharedLog: teamLog(team, ws, 1),
		SharedWindows: []pipeline.SharedWindow{{Start: ws, Keys: []string{"team:" + team}}}}
	if seq == 1 {
		b.Snapshot, b.SnapOffset = []byte("s"), b.Offset
	}
	return b
}

func lease(t *testing.T, sh pipeline.SharedStore, token string) {
	t.Helper()
	if ok, err := sh.LeaseShared(context.Background(), token, time.Minute); !ok || err != nil {
		t.Fatalf("lease for %s: %v %v", token, ok, err)
	}
}

func read(t *testing.T, sh pipeline.SharedStore, max int) []pipeline.SharedEntry {
	t.Helper()
	es, _, err := sh.ReadShared(context.Background(), max)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func sum(t *testing.T, es []pipeline.SharedEntry) []pipeline.CounterDelta {
	t.Helper()
	data := make([][]byte, len(es))
	for i := range es {
		data[i] = es[i].Data
	}
	cs, err := pipeline.SumShared(data, 15*time.Minute, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func apply(t *testing.T, sh pipeline.SharedStore, token string, es []pipeline.SharedEntry) {
	t.Helper()
	if err := sh.ApplyShared(context.Background(), token, es, sum(t, es), 1); err != nil {
		t.Fatal(err)
	}
}

// acwCount is team's acw_count in the window starting at start, as
// WindowCounters gives it.
func acwCount(t *testing.T, sh pipeline.SharedStore, start int64, team string) int64 {
	t.Helper()
	cs, err := sh.WindowCounters(context.Background(), start)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Scope == events.ScopeTeam && c.Key == team {
			return c.Delta.ACWCount
		}
	}
	return -1
}

// ApplyRound runs one shared-writer round on sh as token: the lease, the
// entries not yet applied (up to 100 per log), their sum applied.
func ApplyRound(t *testing.T, sh pipeline.SharedStore, token string) {
	t.Helper()
	lease(t, sh, token)
	apply(t, sh, token, read(t, sh, 100))
}
