package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/processor/pipeline/storetest"
	"github.com/acwstream/acwstream/sink/keyspace"
	"github.com/acwstream/acwstream/sink/redisstore"
	"github.com/acwstream/acwstream/sink/redistest"
)

func newStore(t *testing.T) (*redisstore.Store, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s, err := redisstore.New(rdb, redisstore.Config{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rdb
}

var src = pipeline.Source{Topic: "in", Partition: 0}

// A commit retried after its reply was lost (same Seq) is not applied
// twice: its shared log entry is appended once, so the shared counters,
// which are increments, count it once.
func TestCommitRetryIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	ck, err := s.Claim(ctx, src, "tok")
	if err != nil || ck.Found || ck.Seq != 0 {
		t.Fatalf("claim: %+v %v", ck, err)
	}
	b := &pipeline.Batch{Source: src, Token: "tok", Seq: 1, Offset: 10, WallMS: 1, Snapshot: []byte("snap"), SnapOffset: 10, Shared: true,
		SharedLog: teamLog("t1", 0, events.Counters{ACWCount: 1, ACWTotalMS: 5000, ACWMaxMS: 5000, CallsHandled: 1})}
	for range 2 {
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.XLen(ctx, s.SharedLogKey(src)).Val(); n != 1 {
		t.Fatalf("shared log holds %d entries after a retried commit, want 1", n)
	}
	applyShared(t, s, "w")
	key := s.IntervalKey(events.ScopeTeam, "t1", 0)
	if got := rdb.HGet(ctx, key, "acw_count").Val(); got != "1" {
		t.Fatalf("acw_count after a retried commit = %s, want 1", got)
	}
	b.Seq = 2
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	applyShared(t, s, "w")
	if got := rdb.HGet(ctx, key, "acw_total_ms").Val(); got != "10000" {
		t.Fatalf("acw_total_ms after a second commit = %s, want 10000", got)
	}
	ck, err = s.Claim(ctx, src, "tok2")
	if err != nil || !ck.Found || ck.Seq != 2 || ck.EffOffset != 10 || string(ck.Snapshot) != "snap" {
		t.Fatalf("reclaim: %+v %v", ck, err)
	}
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: 3, Offset: 11}); !errors.Is(err, pipeline.ErrFenced) {
		t.Fatalf("commit with the old token: %v, want ErrFenced", err)
	}
}

// A partition's commits go through a connection of its own that watches
// its checkpoint between commits. When that connection is lost in between
// (Redis restarted, or closed it as idle), the next commit still goes
// through, once; a claim by another instance in between fences the old
// owner's next commit, which then applies nothing.
func TestCommitThroughALostConnection(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	key := s.IntervalKey(events.ScopeTeam, "t1", 0)
	commit := func(s *redisstore.Store, token string, seq int64) error {
		return s.Commit(ctx, &pipeline.Batch{Source: src, Token: token, Seq: seq, Offset: seq, WallMS: 1, Shared: true,
			Snapshot: []byte("snap"), SnapOffset: seq,
			SharedLog: teamLog("t1", 0, events.Counters{ACWCount: 1, ACWTotalMS: 1000, CallsHandled: 1})})
	}
	for seq := int64(1); seq <= 3; seq++ {
		if err := commit(s, "tok", seq); err != nil {
			t.Fatalf("commit %d: %v", seq, err)
		}
		// Every other client's connection goes, the store's own with them.
		if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.XLen(ctx, s.SharedLogKey(src)).Val(); n != 3 {
		t.Fatalf("shared log holds %d entries after 3 commits, want 3", n)
	}
	if got := rdb.HGet(ctx, s.CheckpointKey(src), "seq").Val(); got != "3" {
		t.Fatalf("checkpoint seq = %s, want 3", got)
	}

	// Another instance takes the partition over and commits; the old
	// owner's connection still watches.
	s2, err := redisstore.New(rdb, redisstore.Config{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Claim(ctx, src, "tok2"); err != nil {
		t.Fatal(err)
	}
	if err := commit(s2, "tok2", 4); err != nil {
		t.Fatal(err)
	}
	if err := commit(s, "tok", 4); !errors.Is(err, pipeline.ErrFenced) {
		t.Fatalf("the old owner's commit: %v, want ErrFenced", err)
	}
	if err := commit(s, "tok", 5); !errors.Is(err, pipeline.ErrFenced) {
		t.Fatalf("the old owner's next commit: %v, want ErrFenced", err)
	}
	if n := rdb.XLen(ctx, s.SharedLogKey(src)).Val(); n != 4 {
		t.Fatalf("shared log holds %d entries, want 4 (the fenced commits applied nothing)", n)
	}
	applyShared(t, s2, "w")
	if got := rdb.HGet(ctx, key, "acw_count").Val(); got != "4" {
		t.Fatalf("acw_count = %s, want 4", got)
	}
}

// A partition that comes back to this process (revoked, then assigned
// again) claims its checkpoint with a new token; its commits go through
// even though the store's connection for it last read the old token.
func TestCommitAfterAReclaimInTheSameProcess(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	for i, token := range []string{"gen1", "gen2", "gen3"} {
		ck, err := s.Claim(ctx, src, token)
		if err != nil {
			t.Fatal(err)
		}
		for seq := ck.Seq + 1; seq <= ck.Seq+2; seq++ {
			if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: token, Seq: seq, Offset: seq, WallMS: 1,
				Snapshot: []byte("snap"), SnapOffset: seq}); err != nil {
				t.Fatalf("owner %d, commit %d: %v", i+1, seq, err)
			}
		}
	}
	if got := rdb.HGet(ctx, s.CheckpointKey(src), "seq").Val(); got != "6" {
		t.Fatalf("checkpoint seq = %s, want 6", got)
	}
	// And the earlier owners stay fenced out.
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "gen2", Seq: 7, Offset: 7}); !errors.Is(err, pipeline.ErrFenced) {
		t.Fatalf("commit with an earlier token: %v, want ErrFenced", err)
	}
}

// A commit whose transaction hit an error in one command (the others
// were applied: Redis does not roll back) is reported, and its retry
// finds it applied instead of applying it again.
func TestCommitWithAFailedCommandIsNotAppliedTwice(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: 1, Offset: 1, WallMS: 1}); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, s.AgentKey("x"), "not a hash", 0) // its HSET fails with WRONGTYPE
	b := &pipeline.Batch{Source: src, Token: "tok", Seq: 2, Offset: 2, WallMS: 1, Shared: true,
		Agents:    []pipeline.AgentWrite{{State: events.AgentState{AgentID: "x", State: events.StateReady, Since: 1}}},
		SharedLog: teamLog("t1", 0, events.Counters{ACWCount: 1, ACWTotalMS: 1000, CallsHandled: 1})}
	if err := s.Commit(ctx, b); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("commit with a failing command: %v, want the WRONGTYPE error", err)
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := rdb.XLen(ctx, s.SharedLogKey(src)).Val(); n != 1 {
		t.Fatalf("shared log holds %d entries after the retry, want 1", n)
	}
}

// teamLog is a shared log entry adding c to team's window starting at ws.
func teamLog(team string, ws int64, c events.Counters) []byte {
	return pipeline.AppendSharedLog(nil, ws, ws+900000, []pipeline.CounterDelta{
		{Scope: events.ScopeTeam, Key: team, View: pipeline.ViewInterval, Start: ws, End: ws + 900000, Delta: c}}, nil)
}

// applyShared runs one shared-writer round as token.
func applyShared(t *testing.T, s *redisstore.Store, token string) {
	t.Helper()
	storetest.ApplyRound(t, s, token)
}

// Two shared writers that read the same entries cannot both apply them:
// the second fails as a whole, whether it lost the lease or raced. Only
// the lease holder writes, and what it applies is not read again.
func TestSharedWriterAppliesEachEntryOnce(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	srcs := []pipeline.Source{{Topic: "in", Partition: 0}, {Topic: "in", Partition: 1}}
	for i, p := range srcs {
		if _, err := s.Claim(ctx, p, "tok"); err != nil {
			t.Fatal(err)
		}
		for seq := int64(1); seq <= 3; seq++ {
			b := &pipeline.Batch{Source: p, Token: "tok", Seq: seq, Offset: seq, WallMS: 1, Shared: true,
				SharedLog: teamLog("t1", 0, events.Counters{ACWCount: 1, ACWTotalMS: 1000 * (seq + int64(i)*10), ACWMaxMS: 1000 * (seq + int64(i)*10)})}
			if err := s.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ok, _ := s.LeaseShared(ctx, "a", time.Minute); !ok {
		t.Fatal("a did not get a free lease")
	}
	if ok, _ := s.LeaseShared(ctx, "b", time.Minute); ok {
		t.Fatal("b got the lease a holds")
	}
	es, more, err := s.ReadShared(ctx, 2)
	if err != nil || len(es) != 4 || !more {
		t.Fatalf("read 2 per log: %d entries, more %v, %v; want 4, true", len(es), more, err)
	}
	data := [][]byte{}
	for _, e := range es {
		data = append(data, e.Data)
	}
	cs, err := pipeline.SumShared(data, 15*time.Minute, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyShared(ctx, "b", es, cs, 1); !errors.Is(err, pipeline.ErrSharedConflict) {
		t.Fatalf("apply without the lease: %v, want ErrSharedConflict", err)
	}
	if err := s.ApplyShared(ctx, "a", es, cs, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyShared(ctx, "a", es, cs, 1); !errors.Is(err, pipeline.ErrSharedConflict) {
		t.Fatalf("applying the same entries again: %v, want ErrSharedConflict", err)
	}
	key := s.IntervalKey(events.ScopeTeam, "t1", 0)
	if got := rdb.HMGet(ctx, key, "acw_count", "acw_max_ms").Val(); got[0] != "4" || got[1] != "12000" {
		t.Fatalf("after one round of 2+2 entries: acw_count, acw_max_ms = %v, want 4, 12000", got)
	}
	if err := s.ReleaseShared(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	applyShared(t, s, "b") // the rest: one entry per log
	want := map[string]string{"acw_count": "6", "acw_total_ms": "42000", "acw_max_ms": "13000", "acw_avg_ms": "7000"}
	got := rdb.HGetAll(ctx, key).Val()
	for f, v := range want {
		if got[f] != v {
			t.Errorf("%s = %q, want %q (all %v)", f, got[f], v, got)
		}
	}
	if day := rdb.HGet(ctx, s.DayKey(events.ScopeTeam, "t1", "1970-01-01"), "acw_total_ms").Val(); day != "42000" {
		t.Errorf("day view acw_total_ms = %q, want 42000", day)
	}
	if es, _, _ := s.ReadShared(ctx, 100); len(es) != 0 {
		t.Errorf("%d entries left after both rounds", len(es))
	}
	for _, p := range srcs {
		if n := rdb.XLen(ctx, s.SharedLogKey(p)).Val(); n > 1 {
			t.Errorf("log %s keeps %d entries after they were applied, want at most 1", p, n)
		}
	}
}

// Writes with Prev (only the changed fields) leave the same hashes as
// whole writes, and leave TTLs alone.
func TestCommitWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	seq := int64(0)
	commit := func(b *pipeline.Batch) {
		t.Helper()
		seq++
		b.Source, b.Token, b.Seq, b.Offset, b.WallMS = src, "tok", seq, seq, 1000+seq
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	view := func(c events.Counters, prev *events.Counters) pipeline.CounterDelta {
		return pipeline.CounterDelta{Scope: events.ScopeAgent, Key: "a1", View: pipeline.ViewLast60m,
			Start: 0, End: 900000, Delta: c, Full: true, Prev: prev, PrevStart: 0, PrevEnd: 900000}
	}
	agent := func(st, prev *events.AgentState) pipeline.AgentWrite {
		return pipeline.AgentWrite{State: *st, Prev: prev}
	}
	c1 := events.Counters{TalkMS: 2000, WorkMS: 2000, CallsHandled: 1}
	c2 := events.Counters{TalkMS: 2000, WorkMS: 7000, CallsHandled: 1, ACWCount: 1, ACWTotalMS: 5000, ACWMaxMS: 5000, ACWStateMS: 5000}
	s1 := events.AgentState{AgentID: "a1", State: events.StateTalking, Since: 100, CallID: "c1", Team: "t", Queue: "q"}
	s2 := events.AgentState{AgentID: "a1", State: events.StateACW, Since: 2100, CallID: "c1", Team: "t", Queue: "q",
		ACWStart: 2100, SegmentID: "seg1", WarnMS: 20000, OverrunMS: 30000}
	s3 := events.AgentState{AgentID: "a1", State: events.StateReady, Since: 7100, Team: "t", LastACWMS: 5000}

	commit(&pipeline.Batch{Counters: []pipeline.CounterDelta{view(c1, nil)}, Agents: []pipeline.AgentWrite{agent(&s1, nil)}})
	lkey := s.Last60mKey(events.ScopeAgent, "a1")
	rdb.Expire(ctx, lkey, time.Hour) // a TTL the delta writes must keep
	commit(&pipeline.Batch{Counters: []pipeline.CounterDelta{view(c2, &c1)}, Agents: []pipeline.AgentWrite{agent(&s2, &s1)}})
	if open := rdb.ZScore(ctx, s.OpenKey(), "a1").Val(); open != 2100 {
		t.Fatalf("acw:open score %v, want 2100", open)
	}
	commit(&pipeline.Batch{Counters: []pipeline.CounterDelta{view(c2, &c2)}, Agents: []pipeline.AgentWrite{agent(&s3, &s2)}})
	if ttl := rdb.TTL(ctx, lkey).Val(); ttl > time.Hour || ttl < 59*time.Minute {
		t.Fatalf("TTL after delta writes %v, want the 1h set in between", ttl)
	}
	if n := rdb.ZCard(ctx, s.OpenKey()).Val(); n != 0 {
		t.Fatalf("acw:open holds %d after the wrap-up ended", n)
	}
	gotView := rdb.HGetAll(ctx, lkey).Val()
	gotAgent := rdb.HGetAll(ctx, s.AgentKey("a1")).Val()

	// The same final values written whole on a fresh server.
	s2store, rdb2 := newStore(t)
	s, rdb = s2store, rdb2
	seq = 0
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	commit(&pipeline.Batch{Counters: []pipeline.CounterDelta{view(c2, nil)}, Agents: []pipeline.AgentWrite{agent(&s3, nil)}})
	wantView := rdb.HGetAll(ctx, lkey).Val()
	wantAgent := rdb.HGetAll(ctx, s.AgentKey("a1")).Val()
	wantAgent["updated"] = gotAgent["updated"]
	for _, c := range []struct {
		name      string
		got, want map[string]string
	}{{"view", gotView, wantView}, {"agent", gotAgent, wantAgent}} {
		if len(c.got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
		for k, v := range c.want {
			if c.got[k] != v {
				t.Errorf("%s field %s = %q, want %q", c.name, k, c.got[k], v)
			}
		}
	}
	if wantView["acw_pct_of_work"] != "71.43" {
		t.Errorf("acw_pct_of_work = %s, want 71.43", wantView["acw_pct_of_work"])
	}
}

// A shared writer keeps what it wrote, to write only what changed; when
// another writer has written in between, it must not trust that.
func TestSharedWriterNoticesAnotherWriter(t *testing.T) {
	ctx := context.Background()
	s1, rdb := newStore(t)
	s2, err := redisstore.New(rdb, redisstore.Config{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s1.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	key := s1.IntervalKey(events.ScopeTeam, "t1", 0)
	for seq, w := range []*redisstore.Store{s1, s2, s1, s1} {
		b := &pipeline.Batch{Source: src, Token: "tok", Seq: int64(seq + 1), Offset: int64(seq + 1), WallMS: 1, Shared: true,
			SharedLog: teamLog("t1", 0, events.Counters{ACWCount: 1, ACWTotalMS: 1000, CallsHandled: 1})}
		if err := s1.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		token := fmt.Sprint("w", seq)
		applyShared(t, w, token)
		if err := w.ReleaseShared(ctx, token); err != nil {
			t.Fatal(err)
		}
		if got, want := rdb.HGet(ctx, key, "acw_count").Val(), fmt.Sprint(seq+1); got != want {
			t.Fatalf("round %d: acw_count = %s, want %s", seq+1, got, want)
		}
	}
	if got := rdb.HGet(ctx, key, "acw_avg_ms").Val(); got != "1000" {
		t.Fatalf("acw_avg_ms = %s, want 1000", got)
	}
}

// A prefix belongs to the first consumer group that binds it: the same
// group binds again (a restart, another instance), another is refused
// with an error naming both, and a store with its own prefix is free.
func TestBindRefusesASecondGroupOnAPrefix(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	for range 2 {
		if err := s.Bind(ctx, "g"); err != nil {
			t.Fatal(err)
		}
	}
	other, err := redisstore.New(rdb, redisstore.Config{Group: "h"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = other.Bind(ctx, "h")
	if !errors.Is(err, redisstore.ErrPrefixInUse) || !strings.Contains(err.Error(), `consumer group "g"`) ||
		!strings.Contains(err.Error(), `group "h"`) || !strings.Contains(err.Error(), "--prefix") {
		t.Fatalf("second group on the prefix: %v", err)
	}
	own, err := redisstore.New(rdb, redisstore.Config{Group: "h", Prefix: "acw2"})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if err := own.Bind(ctx, "h"); err != nil {
		t.Fatalf("a group with its own prefix: %v", err)
	}
	rdb.Del(ctx, s.GroupKey())
	if err := other.Bind(ctx, "h"); err != nil {
		t.Fatalf("after the record was deleted: %v", err)
	}
}

// A shared round larger than SharedChunkViews is written in parts. One
// interrupted between parts (its writer crashed or lost Redis) leaves
// some keys written and its positions unmoved; the next lease holder
// completes it from its record before applying anything else, so every
// delta counts exactly once, and the writer that lost the lease cannot
// finish it twice.
func TestSharedWriterCompletesAnInterruptedRound(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	stores := make([]*redisstore.Store, 2)
	for i := range stores {
		s, err := redisstore.New(rdb, redisstore.Config{Group: "g", SharedChunkViews: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	a, b := stores[0], stores[1]
	if _, err := a.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	teams := []string{"t1", "t2", "t3", "t4", "t5"}
	commit := func(seq int64, acw int64) {
		t.Helper()
		var cs []pipeline.CounterDelta
		for _, team := range teams {
			cs = append(cs, pipeline.CounterDelta{Scope: events.ScopeTeam, Key: team, View: pipeline.ViewInterval,
				Start: 0, End: 900000, Delta: events.Counters{ACWCount: 1, ACWTotalMS: acw, ACWMaxMS: acw, CallsHandled: 1}})
		}
		batch := &pipeline.Batch{Source: src, Token: "tok", Seq: seq, Offset: seq, WallMS: 1, Shared: true,
			SharedLog: pipeline.AppendSharedLog(nil, 0, 900000, cs, nil)}
		if err := a.Commit(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	commit(1, 1000)

	// a's round (5 teams × interval, day and last-60m views: 8 parts of
	// 2) stops before its fourth part
	restore := redisstore.SetChunkHook(func(part int) error {
		if part == 3 {
			return errors.New("crash")
		}
		return nil
	})
	if ok, _ := a.LeaseShared(ctx, "a", time.Minute); !ok {
		t.Fatal("a did not get the lease")
	}
	es, _, err := a.ReadShared(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	data := [][]byte{es[0].Data}
	cs, err := pipeline.SumShared(data, 15*time.Minute, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyShared(ctx, "a", es, cs, 1); err == nil || !strings.Contains(err.Error(), "crash") {
		t.Fatalf("interrupted round: %v", err)
	}
	restore()
	written := 0
	for _, team := range teams {
		written += int(rdb.Exists(ctx, a.IntervalKey(events.ScopeTeam, team, 0), a.DayKey(events.ScopeTeam, team, "1970-01-01")).Val())
	}
	if written != 6 || rdb.Exists(ctx, a.PendingKey()).Val() != 1 {
		t.Fatalf("after the interruption: %d of %d team interval and day views written, pending %d; want the first 6 (3 parts of 2), and the round pending",
			written, 2*len(teams), rdb.Exists(ctx, a.PendingKey()).Val())
	}

	// more comes in; a's lease runs out and b takes over
	commit(2, 3000)
	rdb.Del(ctx, "acw:shared:g:lease")
	if ok, _ := b.LeaseShared(ctx, "b", time.Minute); !ok {
		t.Fatal("b did not get the free lease")
	}
	es, _, err = b.ReadShared(ctx, 100)
	if err != nil || len(es) != 2 {
		t.Fatalf("b reads %d entries (%v), want both", len(es), err)
	}
	data = [][]byte{es[0].Data, es[1].Data}
	cs, err = pipeline.SumShared(data, 15*time.Minute, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ApplyShared(ctx, "b", es, cs, 1); !errors.Is(err, pipeline.ErrSharedConflict) {
		t.Fatalf("b's first round, with a's pending: %v, want ErrSharedConflict after completing it", err)
	}
	if rdb.Exists(ctx, a.PendingKey()).Val() != 0 {
		t.Fatal("a's round is still pending after b completed it")
	}
	if err := a.ApplyShared(ctx, "a", es, cs, 1); !errors.Is(err, pipeline.ErrSharedConflict) {
		t.Fatalf("a, without the lease: %v, want ErrSharedConflict", err)
	}
	applyShared(t, b, "b") // reads again: only the second entry is left
	for _, team := range teams {
		for _, key := range []string{a.IntervalKey(events.ScopeTeam, team, 0), a.DayKey(events.ScopeTeam, team, "1970-01-01")} {
			got := rdb.HMGet(ctx, key, "acw_count", "acw_total_ms", "acw_max_ms").Val()
			if got[0] != "2" || got[1] != "4000" || got[2] != "3000" {
				t.Errorf("%s: acw_count, acw_total_ms, acw_max_ms = %v, want 2, 4000, 3000", key, got)
			}
		}
	}
	if es, _, _ := b.ReadShared(ctx, 100); len(es) != 0 {
		t.Errorf("%d entries left", len(es))
	}
	if keys := rdb.Keys(ctx, "acw:shared:g:round:*").Val(); len(keys) > 0 {
		t.Errorf("round records left behind: %v", keys)
	}
}

// Released partitions give their connection back: an instance holds one
// per partition it owns now, not one per partition it ever owned.
func TestReleaseGivesThePartitionsConnectionBack(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	clients := func() int { return strings.Count(rdb.ClientList(ctx).Val(), "\n") }
	before := clients()
	for p := range 3 {
		src := pipeline.Source{Topic: "in", Partition: p}
		if _, err := s.Claim(ctx, src, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: 1, Offset: 1, WallMS: 1}); err != nil {
			t.Fatal(err)
		}
		if n := clients(); n != before+1 {
			t.Fatalf("partition %d: %d clients, want %d: one for the partition held now", p, n, before+1)
		}
		s.Release(src)
	}
}

// The settings a prefix's checkpoints depend on are recorded by the first
// instance; a later one with another value is refused, naming the setting
// and both values, unless it accepts the change, which records it.
func TestCheckSettingsRefusesAChangedSetting(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	first := map[string]string{"engine.window": "15m0s", "engine.thresholds": "warn 20s overrun 30s"}
	for range 2 {
		if err := s.CheckSettings(ctx, first, false); err != nil {
			t.Fatal(err)
		}
	}
	changed := map[string]string{"engine.window": "5m0s", "engine.thresholds": "warn 20s overrun 30s", "engine.max_future": "5m0s"}
	err := s.CheckSettings(ctx, changed, false)
	var se *redisstore.SettingsError
	if !errors.Is(err, redisstore.ErrSettingsChanged) || !errors.As(err, &se) || len(se.Changes) != 1 ||
		!strings.Contains(err.Error(), `engine.window is "5m0s", the checkpoints under prefix "acw" were written with "15m0s"`) {
		t.Fatalf("changed window: %v", err)
	}
	if err := s.CheckSettings(ctx, changed, true); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSettings(ctx, changed, false); err != nil {
		t.Fatalf("after accepting the change: %v", err)
	}
}

// Redis that loses acknowledged writes (restored from an older snapshot,
// a failover to a lagging replica, a FLUSHALL) shows the owner a
// checkpoint older than its last commit, or none: its next commit must
// apply nothing and report ErrCheckpointLost (not be applied on top of
// the older state, nor be taken for another owner's claim).
func TestCommitDetectsACheckpointRolledBack(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	commit := func(seq int64) error {
		return s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: seq, Offset: 10 * seq, WallMS: 1, Snapshot: []byte("s"), SnapOffset: 10 * seq})
	}
	if err := commit(1); err != nil {
		t.Fatal(err)
	}
	saved, err := rdb.Dump(ctx, s.CheckpointKey(src)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(2); seq <= 3; seq++ {
		if err := commit(seq); err != nil {
			t.Fatal(err)
		}
	}
	// Redis goes back to the state after commit 1, with its connections.
	if err := rdb.RestoreReplace(ctx, s.CheckpointKey(src), 0, saved).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes")
	err = commit(4)
	if !errors.Is(err, pipeline.ErrCheckpointLost) || !strings.Contains(err.Error(), "Redis holds commit 1") {
		t.Fatalf("commit after a rollback: %v", err)
	}
	if off := rdb.HGet(ctx, s.CheckpointKey(src), "eff_offset").Val(); off != "10" {
		t.Fatalf("the commit was applied on the older checkpoint: eff_offset %s", off)
	}
	// Restored from what Redis holds, the partition goes on.
	ck, err := s.Claim(ctx, src, "tok2")
	if err != nil || ck.Seq != 1 || ck.EffOffset != 10 {
		t.Fatalf("reclaim: %+v %v", ck, err)
	}
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok2", Seq: 2, Offset: 20, WallMS: 1}); err != nil {
		t.Fatal(err)
	}
	rdb.FlushAll(ctx)
	err = s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok2", Seq: 3, Offset: 30, WallMS: 1})
	if !errors.Is(err, pipeline.ErrCheckpointLost) {
		t.Fatalf("commit after FLUSHALL: %v", err)
	}
	if n := rdb.Exists(ctx, s.CheckpointKey(src)).Val(); n != 0 {
		t.Fatal("the commit after FLUSHALL wrote a checkpoint")
	}
}

// Agent ids that end like another key of the contract (agent-5's views)
// get live-state hashes of their own: agent-5's views keep only their
// fields and their TTLs.
func TestIDsCannotWriteIntoAnotherAgentsKeys(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	const start = 1795341600000
	b := &pipeline.Batch{Source: src, Token: "tok", Seq: 1, Offset: 1, WallMS: 1,
		Counters: []pipeline.CounterDelta{
			{Scope: events.ScopeAgent, Key: "agent-5", View: pipeline.ViewLast60m, Start: start, End: start + 900000, Delta: events.Counters{WorkMS: 1000}, Full: true},
			{Scope: events.ScopeAgent, Key: "agent-5", View: pipeline.ViewInterval, Start: start, End: start + 900000, Delta: events.Counters{WorkMS: 1000}, Full: true},
			{Scope: events.ScopeAgent, Key: "agent-5", View: pipeline.ViewDay, Start: start, End: start + 86400000, Day: "2026-11-22", Delta: events.Counters{WorkMS: 1000}, Full: true},
		}}
	for _, id := range []string{"agent-5", "agent-5:last60m", "agent-5:15m:1795341600000", "agent-5:day:2026-11-22"} {
		b.Agents = append(b.Agents, pipeline.AgentWrite{State: events.AgentState{AgentID: id, State: events.StateReady, Since: start}})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{s.Last60mKey(events.ScopeAgent, "agent-5"), s.IntervalKey(events.ScopeAgent, "agent-5", start), s.DayKey(events.ScopeAgent, "agent-5", "2026-11-22")} {
		h := rdb.HGetAll(ctx, key).Val()
		if h["work_ms"] != "1000" || h["state"] != "" || rdb.TTL(ctx, key).Val() <= 0 {
			t.Errorf("%s = %v (ttl %v): another agent wrote into it", key, h, rdb.TTL(ctx, key).Val())
		}
	}
	if got := rdb.ZCard(ctx, s.AgentsKey()).Val(); got != 4 {
		t.Errorf("%d agents in %s, want 4", got, s.AgentsKey())
	}
	if st := rdb.HGet(ctx, s.AgentKey("agent-5:last60m"), "state").Val(); st != "ready" {
		t.Errorf("agent-5:last60m's state %q", st)
	}
}

// An agent the engine forgot leaves the set of agents, and its live state
// expires; back again, it rejoins the set and its state persists.
func TestAForgottenAgentLeavesTheSetAndExpires(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	write := pipeline.AgentWrite{State: events.AgentState{AgentID: "a", State: events.StateReady, Since: 1}}
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: 1, Offset: 1, WallMS: 1, Agents: []pipeline.AgentWrite{write}}); err != nil {
		t.Fatal(err)
	}
	gone := write
	gone.State.State, gone.Prev = events.StateLoggedOut, &write.State
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: 2, Offset: 2, WallMS: 2, Agents: []pipeline.AgentWrite{gone}, Forgotten: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, s.AgentsKey()).Val(); n != 0 {
		t.Errorf("%d agents in the set after the only one was forgotten", n)
	}
	if ttl := rdb.TTL(ctx, s.AgentKey("a")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("forgotten agent's TTL %v, want up to 1h", ttl)
	}
	if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: 3, Offset: 3, WallMS: 3, Agents: []pipeline.AgentWrite{write}}); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, s.AgentsKey()).Val(); n != 1 || rdb.TTL(ctx, s.AgentKey("a")).Val() != -1 {
		t.Errorf("back again: %d agents, TTL %v", n, rdb.TTL(ctx, s.AgentKey("a")).Val())
	}
}

// A script's error reply is classified by its code; an error that is not
// a Redis reply is not, whatever its text says (it tells nothing of what
// the script did).
func TestScriptRepliesAreClassifiedByType(t *testing.T) {
	_, rdb := newStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want string
	}{
		{rdb.Eval(ctx, `return redis.error_reply("PENDING a round is pending")`, nil).Err(), "PENDING"},
		{rdb.Eval(ctx, `return redis.error_reply("CONFLICT the log moved")`, nil).Err(), "CONFLICT"},
		{rdb.Eval(ctx, `return 1`, nil).Err(), ""},
		{rdb.Get(ctx, "no-such-key").Err(), ""}, // redis.Nil
		{fmt.Errorf("PENDING, said a proxy: %w", context.DeadlineExceeded), ""},
	} {
		if got := redisstore.ReplyCode(c.err); got != c.want {
			t.Errorf("ReplyCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// A breakdown written as changes since the last write (a reason that left
// it deleted) holds what a whole write would, and always has a TTL.
func TestReasonChangesMatchAWholeWrite(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	many := map[string]int64{}
	for i := range events.MaxReasons + 8 {
		many[fmt.Sprintf("r%02d", i)] = int64(1000 + i)
	}
	steps := []map[string]int64{
		{},
		{"lunch": 1000},
		{"lunch": 1000, "break": 500},
		{"break": 700},
		many,
		{"break": 900, events.OtherReason: 5},
		{},
		{"coaching": 1},
	}
	c := events.Counters{NotReadyMS: 1}
	var prev map[string]int64
	key := keyspace.New(keyspace.DefaultPrefix, 15*time.Minute).DayReasons(events.ScopeAgent, "a1", "2025-12-01")
	for i, r := range steps {
		d := pipeline.CounterDelta{Scope: events.ScopeAgent, Key: "a1", View: pipeline.ViewDay, Start: 0, End: 86400000,
			Day: "2025-12-01", Delta: c, Full: true, Reasons: r}
		if i > 0 {
			d.Prev, d.PrevReasons, d.PrevStart, d.PrevEnd = &c, prev, d.Start, d.End
		}
		if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: int64(i + 1), Offset: int64(i + 1), WallMS: 1,
			Counters: []pipeline.CounterDelta{d}}); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, x := range events.CapReasons(events.SortedReasons(r)) {
			want[x.Reason] = strconv.FormatInt(x.MS, 10)
		}
		if got := rdb.HGetAll(ctx, key).Val(); !maps.Equal(got, want) {
			t.Fatalf("step %d: %s holds %v, want %v", i, key, got, want)
		}
		if ttl := rdb.TTL(ctx, key).Val(); len(want) > 0 && ttl <= 0 {
			t.Fatalf("step %d: %s has TTL %v", i, key, ttl)
		}
		prev = r
	}
}

// A last-60m view whose windows moved on keeps its key: written as its
// changes (bounds, counters, the reasons that left), it holds what a whole
// write would, and keeps its TTL.
func TestLast60mWrittenAsChangesAcrossWindows(t *testing.T) {
	ctx := context.Background()
	write := func(s *redisstore.Store, seq int64, d pipeline.CounterDelta) {
		t.Helper()
		if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: seq, Offset: seq, WallMS: 1,
			Counters: []pipeline.CounterDelta{d}}); err != nil {
			t.Fatal(err)
		}
	}
	view := func(start int64, c events.Counters, r map[string]int64) pipeline.CounterDelta {
		return pipeline.CounterDelta{Scope: events.ScopeAgent, Key: "a1", View: pipeline.ViewLast60m,
			Start: start, End: start + 3600000, Delta: c, Reasons: r, Full: true}
	}
	c1 := events.Counters{TalkMS: 2000, WorkMS: 2000, CallsHandled: 1, NotReadyMS: 700}
	c2 := events.Counters{TalkMS: 1000, WorkMS: 6000, CallsHandled: 1, ACWCount: 1, ACWTotalMS: 5000, ACWMaxMS: 5000, ACWStateMS: 5000, NotReadyMS: 300}
	r1, r2 := map[string]int64{"lunch": 400, "break": 300}, map[string]int64{"break": 300}

	s, rdb := newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	write(s, 1, view(0, c1, r1))
	k := keyspace.New(keyspace.DefaultPrefix, 15*time.Minute)
	vkey, rkey := k.Last60m(events.ScopeAgent, "a1"), k.Last60mReasons(events.ScopeAgent, "a1")
	rdb.Expire(ctx, vkey, time.Hour) // TTLs the change must keep
	rdb.Expire(ctx, rkey, time.Hour)
	d := view(900000, c2, r2)
	d.Prev, d.PrevReasons, d.PrevStart, d.PrevEnd = &c1, r1, 0, 3600000
	write(s, 2, d)
	gotView, gotReasons := rdb.HGetAll(ctx, vkey).Val(), rdb.HGetAll(ctx, rkey).Val()
	for _, key := range []string{vkey, rkey} {
		if ttl := rdb.TTL(ctx, key).Val(); ttl > time.Hour || ttl < 59*time.Minute {
			t.Errorf("%s: TTL %v after a change, want the 1h set before it", key, ttl)
		}
	}

	s, rdb = newStore(t)
	if _, err := s.Claim(ctx, src, "tok"); err != nil {
		t.Fatal(err)
	}
	write(s, 1, view(900000, c2, r2))
	if want := rdb.HGetAll(ctx, vkey).Val(); !maps.Equal(gotView, want) {
		t.Errorf("view written as changes:\n%v\nwritten whole:\n%v", gotView, want)
	}
	if want := rdb.HGetAll(ctx, rkey).Val(); !maps.Equal(gotReasons, want) {
		t.Errorf("reasons written as changes: %v, written whole: %v", gotReasons, want)
	}
}
