package main

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/sink/redistest"
)

// liveAgent is one synthetic agent cycling talking → acw → ready in real
// time; next is when its next event happens (Unix ms).
type liveAgent struct {
	id    string
	team  int
	state events.State
	call  int
	next  int64
}

// The live feed's agents take calls from 20 queues.
const liveQueues = 20

// liveMaxOutOfOrderMS is BenchmarkRunLive's --max-out-of-order (ms). (A
// smaller one in ACWD_LIVE_ARGS would make its prober start late.)
const liveMaxOutOfOrderMS = 2000

// advance moves a to its next state and returns the time (Unix ms) of
// the change.
func (a *liveAgent) advance(rng *rand.Rand) int64 {
	ts := a.next
	switch a.state {
	case events.StateReady:
		a.state, a.call = events.StateTalking, a.call+1
		a.next = ts + 1000 + rng.Int64N(2000)
	case events.StateTalking:
		a.state = events.StateACW
		if rng.IntN(10) == 0 {
			a.next = ts + 3500 + rng.Int64N(2500)
		} else {
			a.next = ts + 1000 + rng.Int64N(1500)
		}
	default:
		a.state = events.StateReady
		a.next = ts + 500 + rng.Int64N(1500)
	}
	return ts
}

// processCPU is this process's user+system CPU time so far, in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// childCPU is the user+system CPU time (seconds) of the process pid so
// far, from /proc; 0 for pid 0 or when it cannot be read.
func childCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name (which ends at the last ')'):
	// utime and stime are the 12th and 13th, in clock ticks (100 a second
	// on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// redisCPU is the server's user+system CPU time so far, in seconds.
func redisCPU(rdb *redis.Client) float64 {
	info, _ := rdb.Info(context.Background(), "cpu").Result()
	total := 0.0
	for _, l := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// premature tells whether a resolved alert (its acw:alerts entry) closed
// a wrap-up before its threshold: the overrun alert before it was raised
// by the wall clock ahead of a close still on its way. (A resolved alert
// also follows every genuine overrun when the wrap-up ends.)
func premature(v map[string]any) bool {
	n := func(f string) int64 {
		s, _ := v[f].(string)
		x, _ := strconv.ParseInt(s, 10, 64)
		return x
	}
	return n("at") < n("start")+n("threshold_ms")
}

type agentHeap []*liveAgent

func (h agentHeap) Len() int           { return len(h) }
func (h agentHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h agentHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *agentHeap) Push(x any)        { *h = append(*h, x.(*liveAgent)) }
func (h *agentHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func percentile(ms []float64, p float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	slices.Sort(ms)
	return ms[min(len(ms)-1, int(p*float64(len(ms))))]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// BenchmarkRunLive measures acwd run's latency on a live feed: synthetic
// agents produce events in real time at ACWD_LIVE_RATE events/s (default
// 20000) for ACWD_LIVE_SECONDS (default 20) into a 12-partition devbroker
// topic; acwd run (in this process, with a real redis-server,
// max_out_of_order 2s, warn 2s, overrun 3s) processes them. It reports:
//
//   - visible-p50/p99-ms: from an event's ts until Redis shows it (the
//     agent hash's since reaches it), sampled on 1% of the agents, polled
//     every 10 ms; target p99 ≤ max_out_of_order + 250 ms;
//
//   - produced-p99-ms: from an event's ts until the broker acknowledged
//     it (the feed's own delay, included in visible);
//
//   - after-feed-p50/p99-ms: visible less the feed's delay: from when the
//     broker held an event max_out_of_order newer (on any partition; see
//     afterFeed) until Redis shows the sample;
//
//   - alert-p50/p99-ms: from a wrap-up passing its 3 s threshold until its
//     overrun alert is in acw:alerts; target p99 ≤ 1 s.
//
// Agents work in teams of ACWD_LIVE_TEAM_SIZE (default 15) and take calls
// from 20 queues. ACWD_LIVE_ARGS adds acwd run flags; ACWD_LIVE_BROKER=process
// runs the devbroker as a child process instead of in this one, and
// ACWD_LIVE_RUN=process runs acwd run as one.
//
//	go test -run '^$' -bench RunLive -benchtime 1x -timeout 10m ./cmd/acwd/
func BenchmarkRunLive(b *testing.B) {
	rate, secs := envInt("ACWD_LIVE_RATE", 20000), envInt("ACWD_LIVE_SECONDS", 20)
	teamSize := max(1, envInt("ACWD_LIVE_TEAM_SIZE", 15))
	h := &runHarness{t: b, redis: redistest.Start(b)}
	if os.Getenv("ACWD_LIVE_BROKER") != "process" {
		c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: []string{runTopic}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		h.broker, h.addr = c, c.ListenAddrs()[0]
	} else {
		// ACWD_LIVE_BROKER=process: the broker is a process of its own, as
		// Kafka is for users; its scheduling and garbage collection do not
		// stall the processor's, nor the other way round.
		h.addr = startDevBrokerProc(b, 12, runTopic)
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr, PoolSize: 4})
	defer h.rdb.Close()
	// Each agent makes 3 events per cycle of 5.3 s on average (talking
	// 1–3 s, mean 2 s; acw 1–2.5 s or, one time in ten, 3.5–6 s, mean
	// 2.05 s; ready 0.5–2 s, mean 1.25 s).
	nAgents := rate * 5300 / 3000
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		stop := func() {}
		runPID := 0 // acwd run's process, when it has one
		func() {
			// each iteration is a fresh run: its own group, on a fresh
			// prefix (a prefix takes one group)
			h.rdb.FlushAll(ctx)
			// Redis logs every command over 10 ms (logRedisTime reports them)
			h.rdb.ConfigSet(ctx, "slowlog-max-len", "100000")
			h.rdb.Do(ctx, "SLOWLOG", "RESET")
			args := []string{"run", "--brokers", h.addr, "--topic", runTopic, "--group", "live" + strconv.Itoa(i),
				"--redis", h.redis.URL(), "--log-level", "warn", "--max-out-of-order", strconv.Itoa(liveMaxOutOfOrderMS) + "ms", "--warn", "2s", "--overrun", "3s", "--start", "latest", "--http", ""}
			args = append(args, strings.Fields(os.Getenv("ACWD_LIVE_ARGS"))...)
			if os.Getenv("ACWD_LIVE_RUN") == "process" {
				// acwd run is a process of its own, as users run it: the
				// generator and the probes below do not share its
				// scheduler or its garbage collector.
				p := startProc(b, args...)
				runPID = p.cmd.Process.Pid
				stop = func() { p.term() }
				return
			}
			var wg sync.WaitGroup
			wg.Add(1)
			rctx, rcancel := context.WithCancel(ctx)
			go func() { defer wg.Done(); mainExit(rctx, args, nil, io.Discard, io.Discard) }()
			stop = func() { rcancel(); wg.Wait() }
		}()
		time.Sleep(3 * time.Second) // join the group before the feed starts
		// Start the agents 20 s in the past and run them to now without
		// producing, so that the feed starts at its steady rate.
		now := time.Now().UnixMilli()
		agents := make(agentHeap, nAgents)
		for i := range agents {
			agents[i] = &liveAgent{id: fmt.Sprintf("a%06d", i), team: i / teamSize, state: events.StateReady, next: now - 20000 + rng.Int64N(6000)}
		}
		heap.Init(&agents)
		for agents[0].next <= now {
			agents[0].advance(rng)
			heap.Fix(&agents, 0)
		}
		cpu0, redisCPU0, runCPU0 := processCPU(), redisCPU(h.rdb), childCPU(runPID)

		type probe struct {
			agent string
			ts    int64
		}
		probes := make(chan probe, 100000)
		var visible []float64
		var seen [][2]int64   // visibility samples: ts, seen (Unix ms)
		var alerts [][2]int64 // threshold passed, alert read (Unix ms)
		resolved := 0
		var mu sync.Mutex
		var pwg sync.WaitGroup
		pwg.Add(2)
		go func() { // visibility prober
			defer pwg.Done()
			var pending []probe
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case p := <-probes:
					pending = append(pending, p)
					continue
				case <-tick.C:
				case <-ctx.Done():
					return
				}
				if len(pending) == 0 {
					continue
				}
				// An event is held back until the watermark passes it, so
				// it cannot show before ts + max_out_of_order; polling
				// starts a little earlier (a probe already visible then
				// counts as seen at the first poll: never earlier than
				// it was). Polling sooner would only load Redis.
				from := time.Now().UnixMilli() - (liveMaxOutOfOrderMS - 200)
				var polled []probe
				pipe := h.rdb.Pipeline()
				var cmds []*redis.StringCmd
				kept := pending[:0]
				for _, p := range pending {
					if p.ts > from {
						kept = append(kept, p)
						continue
					}
					polled = append(polled, p)
					cmds = append(cmds, pipe.HGet(ctx, "acw:agent:"+p.agent, "since"))
				}
				pending = kept
				if len(polled) == 0 {
					continue
				}
				pipe.Exec(ctx)
				at := time.Now().UnixMilli()
				for j, p := range polled {
					if v, err := cmds[j].Int64(); err == nil && v >= p.ts {
						mu.Lock()
						visible = append(visible, float64(at-p.ts))
						seen = append(seen, [2]int64{p.ts, at})
						mu.Unlock()
					} else {
						pending = append(pending, p)
					}
				}
			}
		}()
		go func() { // alert reader
			defer pwg.Done()
			last := "$"
			for ctx.Err() == nil {
				res, err := h.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{"acw:alerts", last}, Block: 200 * time.Millisecond}).Result()
				if err != nil {
					continue
				}
				at := time.Now().UnixMilli()
				for _, s := range res {
					for _, m := range s.Messages {
						last = m.ID
						if m.Values["kind"] == events.AlertResolved && premature(m.Values) {
							mu.Lock()
							resolved++
							mu.Unlock()
						}
						if m.Values["kind"] == events.AlertOverrun {
							t, _ := strconv.ParseInt(m.Values["at"].(string), 10, 64)
							mu.Lock()
							alerts = append(alerts, [2]int64{t, at})
							mu.Unlock()
						}
					}
				}
			}
		}()

		// kafka-go allocates room for BatchSize messages for every
		// partition batch; a call here carries a few messages per
		// partition, and room for 2000 made the generator spend a
		// quarter of the process's CPU clearing memory and collecting it.
		w := &kafka.Writer{Addr: kafka.TCP(h.addr), Topic: runTopic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 128}
		end := time.Now().Add(time.Duration(secs) * time.Second)
		produced := 0
		var batch []kafka.Message
		var batchTS []int64
		var ackLag []float64  // from each event's ts until its write was acknowledged
		var ackMax []int64    // ACWD_LIVE_TRACE: the largest acknowledgement delay per second
		var sendLag []float64 // from each batch's first ts until it was handed to the writer
		var acks [][2]int64   // each batch's last (largest) ts and when it was acknowledged
		for time.Now().Before(end) {
			nowMS := time.Now().UnixMilli()
			batch, batchTS = batch[:0], batchTS[:0]
			for agents[0].next <= nowMS {
				a := agents[0]
				ts := a.advance(rng)
				heap.Fix(&agents, 0)
				line := fmt.Sprintf(`{"agent_id":%q,"state":%q,"ts":%d,"call_id":"%s-%d","team":"t%d","queue":"q%d"}`,
					a.id, a.state, ts, a.id, a.call, a.team, a.call%liveQueues)
				batch = append(batch, kafka.Message{Key: []byte(a.id), Value: []byte(line)})
				batchTS = append(batchTS, ts)
				if a.id[len(a.id)-2:] == "00" { // 1% of the agents
					select {
					case probes <- probe{a.id, ts}:
					default:
					}
				}
			}
			if len(batch) > 0 {
				sent := time.Now().UnixMilli()
				sendLag = append(sendLag, float64(sent-batchTS[0]))
				if err := w.WriteMessages(ctx, batch...); err != nil {
					b.Fatal(err)
				}
				produced += len(batch)
				acked := time.Now().UnixMilli()
				acks = append(acks, [2]int64{batchTS[len(batchTS)-1], acked})
				if sec := int((acked - now) / 1000); os.Getenv("ACWD_LIVE_TRACE") != "" {
					for len(ackMax) <= sec {
						ackMax = append(ackMax, 0)
					}
					ackMax[sec] = max(ackMax[sec], acked-batchTS[0])
				}
				for j, ts := range batchTS {
					if j%100 == 0 {
						ackLag = append(ackLag, float64(acked-ts))
					}
				}
			} else {
				time.Sleep(time.Millisecond)
			}
		}
		w.Close()
		b.Logf("CPU during the feed: this process %.0f%%, redis-server %.0f%% (of one core)",
			100*(processCPU()-cpu0)/float64(secs), 100*(redisCPU(h.rdb)-redisCPU0)/float64(secs))
		if runPID != 0 {
			b.Logf("CPU during the feed: acwd run %.0f%% (of one core)", 100*(childCPU(runPID)-runCPU0)/float64(secs))
		}
		time.Sleep(3 * time.Second) // let the last events and alerts arrive
		cancel()
		pwg.Wait()
		stop()
		b.ReportMetric(float64(produced)/float64(secs), "events/s")
		b.ReportMetric(percentile(ackLag, 0.99), "produced-p99-ms")
		if len(ackMax) > 0 {
			b.Logf("largest acknowledgement delay per second (ms): %v", ackMax)
		}
		b.Logf("producer: sent p50 %.0f p99 %.0f ms after ts; acknowledged p50 %.0f ms", percentile(sendLag, 0.5), percentile(sendLag, 0.99), percentile(ackLag, 0.5))
		b.ReportMetric(percentile(visible, 0.5), "visible-p50-ms")
		b.ReportMetric(percentile(visible, 0.99), "visible-p99-ms")
		after := afterFeed(seen, acks)
		b.ReportMetric(percentile(after, 0.5), "after-feed-p50-ms")
		b.ReportMetric(percentile(after, 0.99), "after-feed-p99-ms")
		// Once the feed stops, every wrap-up still open overruns: only
		// thresholds passed while it ran are steady-state samples.
		var alertLag []float64
		for _, a := range alerts {
			if a[0] < end.UnixMilli() {
				alertLag = append(alertLag, float64(a[1]-a[0]))
			}
		}
		b.ReportMetric(percentile(alertLag, 0.5), "alert-p50-ms")
		b.ReportMetric(percentile(alertLag, 0.99), "alert-p99-ms")
		b.Logf("%d events, %d visibility samples, %d overrun alerts during the feed (%d more for wrap-ups left open when it stopped), %d resolved as premature",
			produced, len(visible), len(alertLag), len(alerts)-len(alertLag), resolved)
		logRedisTime(b, h.rdb)

	}
}

// afterFeed returns, for each visibility sample (ts, seen), the time
// from the moment the feed could first have let acwd run show it until it
// was seen: an event is applied once its partition has an event
// max_out_of_order newer, so that moment is when the broker acknowledged
// the first batch holding an event that new, or ts + max_out_of_order
// if that is later. It takes each batch to span every partition: a batch
// carries the events of one acknowledgement wait (p50 6–8 ms, about 140
// events), so a given partition is missing from one with probability
// (11/12)^140, about 5e-6. It takes the
// feed's own delay out of the visible latency, leaving acwd run's share:
// its fetch, buffering, flush and commit, and the prober's polling. A
// batch acknowledged late makes the sample small, even negative, when an
// idle partition's clock released the event first.
func afterFeed(seen, acks [][2]int64) []float64 {
	out := make([]float64, 0, len(seen))
	for _, s := range seen {
		due := s[0] + liveMaxOutOfOrderMS
		i, _ := slices.BinarySearchFunc(acks, due, func(a [2]int64, t int64) int { return cmp.Compare(a[0], t) })
		if i == len(acks) {
			continue
		}
		out = append(out, float64(s[1]-max(acks[i][1], due)))
	}
	return out
}

// logRedisTime logs the Redis server's time in flush transactions (EXEC,
// the commands inside included) and in scripts (the shared writer's).
func logRedisTime(b *testing.B, rdb *redis.Client) {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		return
	}
	for _, l := range strings.Split(info, "\n") {
		if strings.HasPrefix(l, "cmdstat_exec:") || strings.HasPrefix(l, "cmdstat_evalsha:") {
			b.Log("Redis time: " + strings.TrimSpace(l))
		}
	}
	// Commands over 10 ms (the slow log's default threshold) block every
	// other client for that long: the shared writer's script, snapshot
	// flushes.
	slow, err := rdb.SlowLogGet(context.Background(), -1).Result()
	if err != nil || len(slow) == 0 {
		return
	}
	type stat struct {
		n        int
		sum, max time.Duration
	}
	by := map[string]*stat{}
	for _, e := range slow {
		name := "?"
		if len(e.Args) > 0 {
			name = strings.ToUpper(e.Args[0])
		}
		if name == "EVALSHA" && len(e.Args) > 3 {
			name += " " + e.Args[3] // the shared writer's mode (shared.lua)
		}
		st := by[name]
		if st == nil {
			st = &stat{}
			by[name] = st
		}
		st.n++
		st.sum += e.Duration
		st.max = max(st.max, e.Duration)
	}
	for _, name := range slices.Sorted(maps.Keys(by)) {
		st := by[name]
		b.Logf("Redis commands over 10 ms: %s ×%d, %.0f ms in all, longest %.1f ms", name, st.n,
			st.sum.Seconds()*1000, st.max.Seconds()*1000)
	}
}
