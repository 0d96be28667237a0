package processor

import (
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
)

type discard struct{}

func (discard) Segment(*events.Segment)   {}
func (discard) Alert(*events.Alert)       {}
func (discard) Interval(*events.Interval) {}
func (discard) Open(*events.OpenSegment)  {}

// BenchmarkEngine applies a simulated day (500 agents, 1 s disorder) to a
// fresh engine; ns/op is per event.
func BenchmarkEngine(b *testing.B) {
	evs := jitter(simEvents(b, sim.Config{Seed: 1, Agents: 500, MaxEvents: 200000, DuplicateRate: 0.001}), time.Second, 1)
	b.ReportAllocs()
	b.ResetTimer()
	var e *Engine
	for i := 0; i < b.N; i++ {
		j := i % len(evs)
		if j == 0 {
			if e != nil {
				e.Close()
			}
			e, _ = New(Config{}, discard{})
		}
		e.Apply(&evs[j])
	}
}

// BenchmarkIngest is decode plus engine for one line; ns/op is per event.
func BenchmarkIngest(b *testing.B) {
	g, _ := sim.New(sim.Config{Seed: 1, Agents: 500, MaxEvents: 200000, Disorder: time.Second})
	var lines [][]byte
	for l := g.Next(); l != nil; l = g.Next() {
		lines = append(lines, append([]byte(nil), l...))
	}
	var dec events.Decoder
	b.ReportAllocs()
	b.ResetTimer()
	var e *Engine
	for i := 0; i < b.N; i++ {
		j := i % len(lines)
		if j == 0 {
			e, _ = New(Config{}, discard{})
		}
		e.Ingest(&dec, lines[j])
	}
}

func BenchmarkSnapshot(b *testing.B) {
	evs := simEvents(b, sim.Config{Seed: 1, Agents: 500, MaxEvents: 50000})
	e, _ := New(Config{}, discard{})
	for i := range evs {
		e.Apply(&evs[i])
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendSnapshot(buf[:0])
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}
