package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events/sim"
	"github.com/segmentio/kafka-go"
)

// BenchmarkDevbrokerConsume is the ceiling acwd run works under: kafka-go
// readers, one per partition, fetching a 1M-event backlog from a
// 12-partition devbroker topic and doing nothing else. It reports events/s:
//
//	go test -run '^$' -bench DevbrokerConsume -benchtime 1x ./cmd/acwd/
func BenchmarkDevbrokerConsume(b *testing.B) {
	c, _ := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: []string{runTopic}})
	defer c.Close()
	h := &runHarness{t: b, broker: c, addr: c.ListenAddrs()[0]}
	g, _ := sim.New(sim.Config{Seed: 1, Agents: 2000, MaxEvents: 1000000})
	var batch [][]byte
	for l := g.Next(); l != nil; l = g.Next() {
		batch = append(batch, append([]byte(nil), l...))
	}
	h.produce(batch)
	ends := h.endOffsets()
	b.ResetTimer()
	start := time.Now()
	var n atomic.Int64
	var wg sync.WaitGroup
	for p := 0; p < 12; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{h.addr}, Topic: runTopic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			if ends[p] == 0 {
				return
			}
			for {
				m, err := r.FetchMessage(context.Background())
				if err != nil {
					return
				}
				n.Add(1)
				if m.Offset == ends[p]-1 {
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "events/s")
}
