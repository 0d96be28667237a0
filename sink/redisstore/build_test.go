package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/redis/go-redis/v9"
)

// BenchmarkBuildCommit measures building one live flush's transaction
// (per op: 150 agents whose state and views changed since the last
// write, as in a partition's 100 ms flush at 20 000 events/s over 12
// partitions):
//
//	go test -run '^$' -bench BuildCommit -benchmem ./sink/redisstore/
func BenchmarkBuildCommit(b *testing.B) {
	s, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Config{Group: "g", Window: 15 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	batch := &pipeline.Batch{Source: pipeline.Source{Topic: "in"}, Offset: 1, WallMS: 1}
	for i := range 150 {
		prev := events.Counters{ACWCount: 3, ACWTotalMS: 60000, ACWMaxMS: 30000, CallsHandled: 4, TalkMS: 400000, ACWStateMS: 60000, WorkMS: 460000}
		cur := prev
		cur.ACWCount++
		cur.ACWTotalMS += 21000
		cur.CallsHandled++
		cur.WorkMS += 21000
		prevState := events.AgentState{AgentID: events.AgentID("a" + strconv.Itoa(i)), State: events.StateTalking, Since: 1764547230000,
			CallID: "c" + strconv.Itoa(i), Team: "t1", Queue: "q1", LastACWMS: 21000, Name: "Agent " + strconv.Itoa(i)}
		state := prevState
		state.State, state.Since, state.ACWStart, state.SegmentID, state.WarnMS, state.OverrunMS = events.StateACW, 1764547290000, 1764547290000, "s"+strconv.Itoa(i), 20000, 30000
		batch.Agents = append(batch.Agents, pipeline.AgentWrite{State: state, Prev: &prevState})
		for _, v := range []pipeline.View{pipeline.ViewInterval, pipeline.ViewDay, pipeline.ViewLast60m} {
			p := prev
			batch.Counters = append(batch.Counters, pipeline.CounterDelta{Scope: events.ScopeAgent, Key: "a" + strconv.Itoa(i),
				View: v, Start: 1764547200000, End: 1764548100000, Day: "2025-12-01", Delta: cur, Full: true, Prev: &p,
				PrevStart: 1764547200000, PrevEnd: 1764548100000})
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
