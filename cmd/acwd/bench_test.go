package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events/sim"
)

// BenchmarkReplay is acwd replay end to end (decode, engine, JSON output)
// over a simulated log of 1000 agents with 1 s disorder; ns/op is per event.
// Run with GOMAXPROCS=1 to measure one core:
//
//	GOMAXPROCS=1 go test -run '^$' -bench Replay -benchmem ./cmd/acwd/
func BenchmarkReplay(b *testing.B) {
	const n = 300000
	g, _ := sim.New(sim.Config{Seed: 1, Agents: 1000, MaxEvents: n, Disorder: time.Second, DuplicateRate: 0.001})
	var log bytes.Buffer
	for l := g.Next(); l != nil; l = g.Next() {
		log.Write(l)
		log.WriteByte('\n')
	}
	b.SetBytes(int64(log.Len()) / n)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += n {
		if err := runReplay(context.Background(), nil, bytes.NewReader(log.Bytes()), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(((b.N+n-1)/n)*n), "ns/event")
}
