package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/acwstream/acwstream/events/sim"
)

// floorAgent is all the floor program keeps of an agent.
type floorAgent struct {
	events int
	state  int
}

// floor is the least any processor of this log must do: read it line by
// line, parse each line with a fast JSON parser (valyala/fastjson, reusing
// its parser) and update one entry per agent in a map. No validation,
// ordering, deduplication, wrap-ups, intervals or output. It returns the
// number of agents, so that the work cannot be optimised away.
func floor(log []byte) int {
	var p fastjson.Parser
	m := map[string]*floorAgent{}
	for len(log) > 0 {
		line := log
		if i := bytes.IndexByte(log, '\n'); i >= 0 {
			line, log = log[:i], log[i+1:]
		} else {
			log = nil
		}
		v, err := p.ParseBytes(line)
		if err != nil {
			continue
		}
		id := v.GetStringBytes("agent_id")
		a := m[string(id)]
		if a == nil {
			a = &floorAgent{}
			m[string(id)] = a
		}
		a.events++
		a.state = len(v.GetStringBytes("state"))
	}
	return len(m)
}

// BenchmarkReplayAgainstFloor runs `acwd replay` (in process, all its
// output written to io.Discard) and the floor program above alternately
// over the same simulated log, and reports each one's ns/event and
// replay's speed as a fraction of the floor's (floor-ratio: 1 would be
// as fast as the floor). Run it on one core:
//
//	GOMAXPROCS=1 go test -run '^$' -bench ReplayAgainstFloor -benchtime 3x -timeout 30m ./cmd/acwd/
//
// agents=2000 is a large centre; agents=64000 one whose agents no longer
// fit the processor's caches.
func BenchmarkReplayAgainstFloor(b *testing.B) {
	for _, agents := range []int{2000, 64000} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			const n = 1_000_000
			g, err := sim.New(sim.Config{Seed: 1, Agents: agents, Teams: agents / 50, Queues: 12, MaxEvents: n, Disorder: time.Second,
				DuplicateRate: 0.001, FlatLoad: true})
			if err != nil {
				b.Fatal(err)
			}
			var log bytes.Buffer
			lines := 0
			for l := g.Next(); l != nil; l = g.Next() {
				log.Write(l)
				log.WriteByte('\n')
				lines++
			}
			b.ResetTimer()
			var replayNS, floorNS time.Duration
			for range b.N {
				t0 := time.Now()
				if err := runReplay(context.Background(), nil, bytes.NewReader(log.Bytes()), io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if floor(log.Bytes()) == 0 {
					b.Fatal("the floor saw no agents")
				}
				replayNS += t1.Sub(t0)
				floorNS += time.Since(t1)
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*lines) }
			b.ReportMetric(per(replayNS), "replay-ns/event")
			b.ReportMetric(per(floorNS), "floor-ns/event")
			b.ReportMetric(float64(floorNS)/float64(replayNS), "floor-ratio")
		})
	}
}

// jsonEvent is the canonical event as encoding/json decodes it.
type jsonEvent struct {
	AgentID     string `json:"agent_id"`
	AgentName   string `json:"agent_name"`
	State       string `json:"state"`
	TS          any    `json:"ts"` // RFC 3339 text or Unix ms
	CallID      string `json:"call_id"`
	Team        string `json:"team"`
	Queue       string `json:"queue"`
	Channel     string `json:"channel"`
	Disposition string `json:"disposition"`
	Reason      string `json:"reason"`
	EventID     string `json:"event_id"`
}

// BenchmarkJSONDecode decodes, with encoding/json on one goroutine, the
// log that bench/backlog.sh drains through acwd run (ACWD_BENCH_EVENTS
// events, default 1000000, of the same simulated centre), and reports
// events/s: the rate that drain is compared with.
//
//	GOMAXPROCS=1 go test -run '^$' -bench JSONDecode -benchtime 3x ./cmd/acwd/
func BenchmarkJSONDecode(b *testing.B) {
	n := envInt("ACWD_BENCH_EVENTS", 1_000_000)
	g, err := sim.New(backlogSim(n))
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	for l := g.Next(); l != nil; l = g.Next() {
		lines = append(lines, append([]byte(nil), l...))
	}
	b.ResetTimer()
	for range b.N {
		for _, l := range lines {
			var ev jsonEvent
			if err := json.Unmarshal(l, &ev); err != nil && ev.AgentID == "x" {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "events/s")
}

// backlogSim is the simulated centre of the backlog benchmarks (and of
// bench/backlog.sh's `acwd sim` flags): n events of 2 000 agents.
func backlogSim(n int) sim.Config {
	return sim.Config{Seed: 1, Agents: 2000, Teams: 40, Queues: 12, MaxEvents: n, Disorder: time.Second, DuplicateRate: 0.001}
}
