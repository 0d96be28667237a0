package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/sink/redistest"
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

// BenchmarkRunBacklog measures acwd run draining a backlog: a simulated
// log of ACWD_BENCH_EVENTS events (default 200000; the README's figure
// uses 2000000) from 2000 agents is preloaded into a 12-partition devbroker
// topic, then acwd run (in this process, with a real redis-server) consumes
// it until every partition's Redis checkpoint reaches the end. It reports
// events/s. Broker, Redis and processor share the machine. Set
// ACWD_BENCH_CPUPROFILE=FILE to profile the drain alone.
//
//	ACWD_BENCH_EVENTS=2000000 go test -run '^$' -bench RunBacklog -benchtime 1x -timeout 30m ./cmd/acwd/
func BenchmarkRunBacklog(b *testing.B) {
	n := envInt("ACWD_BENCH_EVENTS", 200000)
	c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: []string{runTopic}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	h := &runHarness{t: b, broker: c, addr: c.ListenAddrs()[0], redis: redistest.Start(b)}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	defer h.rdb.Close()
	g, err := sim.New(backlogSim(n))
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 100000
	batch := make([][]byte, 0, chunk)
	for l := g.Next(); l != nil; l = g.Next() {
		batch = append(batch, append([]byte(nil), l...))
		if len(batch) == chunk {
			h.produce(batch)
			batch = batch[:0]
		}
	}
	h.produce(batch)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		group := "bench" + strconv.Itoa(i)
		b.StopTimer()
		h.rdb.FlushAll(context.Background()) // a prefix takes one group
		b.StartTimer()
		if path := os.Getenv("ACWD_BENCH_CPUPROFILE"); path != "" {
			// Profile the drain only, not the preloading.
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			pprof.StartCPUProfile(f)
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		start := time.Now()
		stop := h.startInProcess(group)
		h.waitCheckpoints(group, 30*time.Minute)
		el := time.Since(start)
		logRedisTime(b, h.rdb)

		stop()
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	}
}
