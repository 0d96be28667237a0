package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/sink/keyspace"
)

// BenchmarkBuildCommit measures building one live flush's transaction
// (per op: 150 agent views changed since the last write, as in a
// partition's 100 ms flush at 20 000 events/s over 12 partitions):
//
//	go test -run '^$' -bench BuildCommit -benchmem ./sink/redisstore/
func BenchmarkBuildCommit(b *testing.B) {
	s := &Store{cfg: Config{Group: "g"}.withDefaults(), k: keyspace.New("", 15*time.Minute)}
	batch := &pipeline.Batch{Source: pipeline.Source{Topic: "in"}, Offset: 1, WallMS: 1}
	for i := range 150 {
		prev := events.Counters{ACWCount: 3, ACWTotalMS: 60000, ACWMaxMS: 30000, CallsHandled: 4, TalkMS: 400000, ACWStateMS: 60000, WorkMS: 460000}
		cur := prev
		cur.ACWCount++
		cur.ACWTotalMS += 21000
		cur.CallsHandled++
		cur.WorkMS += 21000
		for _, v := range []pipeline.View{pipeline.ViewInterval, pipeline.ViewDay, pipeline.ViewLast60m} {
			p := prev
			batch.Counters = append(batch.Counters, pipeline.CounterDelta{Scope: events.ScopeAgent, Key: "a" + strconv.Itoa(i),
				View: v, Start: 1764547200000, End: 1764548100000, Day: "2025-12-01", Delta: cur, Full: true, Prev: &p})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		t := txPool.Get().(*txBuf)
		s.buildCommit(t, batch)
		t.reset()
		txPool.Put(t)
	}
}
