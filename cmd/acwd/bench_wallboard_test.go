package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/sink/redistest"
)

// BenchmarkWallboardClients puts ACWD_WB_CLIENTS (default 200) browsers'
// worth of wallboard streams on acwd run for ACWD_WB_SECONDS (default 60)
// while a simulated centre of ACWD_WB_AGENTS (default 2 000) agents plays
// in real time, plus one client that never reads. acwd run is a process
// of its own, against a real redis-server and the devbroker. It reports
// acwd's CPU (cores, averaged) and largest RSS, the delay from a state's
// read of Redis to its arrival at a client (p50, p99), the messages each
// client got, and whether the client that never read was dropped (its
// buffer is not grown):
//
//	go test -run '^$' -bench WallboardClients -benchtime 1x -timeout 10m ./cmd/acwd/
func BenchmarkWallboardClients(b *testing.B) {
	clients, seconds, agents := envInt("ACWD_WB_CLIENTS", 200), envInt("ACWD_WB_SECONDS", 60), envInt("ACWD_WB_AGENTS", 2000)
	for range b.N {
		broker, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: []string{runTopic}})
		if err != nil {
			b.Fatal(err)
		}
		brokers := broker.ListenAddrs()
		srv := redistest.Start(b)
		addr := freeAddr(b)
		p := startProc(b, "run", "--brokers", brokers[0], "--topic", runTopic, "--group", "wb", "--redis", srv.URL(),
			"--http", addr, "--log-level", "warn")
		waitStatus(b, "http://"+addr+"/healthz", 200, 30*time.Second)

		ctx, cancel := context.WithCancel(context.Background())
		wall0 := time.Now()
		g, err := sim.New(sim.Config{Seed: 3, Agents: agents, Teams: agents / 15, Queues: 20, Start: wall0.Add(-10 * time.Minute).UnixMilli(), Duration: 24 * time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		pc := &pacer{speed: 1, wall0: wall0.Add(-10 * time.Minute), sim0: wall0.Add(-10 * time.Minute).UnixMilli()}
		go produceSim(ctx, g, pc, brokers, runTopic, nil, discard{})
		waitStatus(b, "http://"+addr+"/readyz", 200, 60*time.Second)

		var mu sync.Mutex
		var delays []float64
		var msgs atomic.Int64
		var wg sync.WaitGroup
		dctx, stop := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(dctx, "GET", "http://"+addr+"/api/events", nil)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer res.Body.Close()
				sc := bufio.NewScanner(res.Body)
				sc.Buffer(make([]byte, 1<<20), 64<<20)
				for sc.Scan() {
					data, ok := strings.CutPrefix(sc.Text(), "data: ")
					if !ok {
						continue
					}
					var st struct {
						Now int64 `json:"now"`
					}
					if json.Unmarshal([]byte(data), &st) == nil && st.Now > 0 {
						d := float64(time.Now().UnixMilli() - st.Now)
						mu.Lock()
						delays = append(delays, d)
						mu.Unlock()
						msgs.Add(1)
					}
				}
			}()
		}
		// One client that connects and never reads, on a small receive
		// buffer: once the kernel's buffers are full the server must drop
		// it rather than hold more for it (it keeps at most 64 messages).
		slowDropped := make(chan bool, 1)
		go func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				slowDropped <- false
				return
			}
			defer conn.Close()
			conn.(*net.TCPConn).SetReadBuffer(4096)
			fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			<-dctx.Done()
			// Read what the socket holds: a dropped stream ends.
			_, err = readAllUntil(conn, 5*time.Second)
			slowDropped <- err == nil
		}()
		pid := p.cmd.Process.Pid
		cpu0, t0 := childCPU(pid), time.Now()
		rss := 0.0
		for dctx.Err() == nil {
			rss = max(rss, childRSSMB(pid))
			select {
			case <-dctx.Done():
			case <-time.After(time.Second):
			}
		}
		cpu := (childCPU(pid) - cpu0) / time.Since(t0).Seconds()
		stop()
		wg.Wait()
		dropped := <-slowDropped
		cancel()
		p.term()
		b.ReportMetric(cpu, "acwd-cores")
		b.ReportMetric(rss, "acwd-max-rss-MB")
		b.ReportMetric(percentile(delays, 0.50), "read-to-client-p50-ms")
		b.ReportMetric(percentile(delays, 0.99), "read-to-client-p99-ms")
		b.ReportMetric(float64(msgs.Load())/float64(clients), "msgs/client")
		if dropped {
			b.ReportMetric(1, "slow-client-dropped")
		} else {
			b.ReportMetric(0, "slow-client-dropped")
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// readAllUntil reads r until EOF (nil) or the timeout (an error).
func readAllUntil(r interface{ Read([]byte) (int, error) }, d time.Duration) (int, error) {
	done := make(chan error, 1)
	n := 0
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := r.Read(buf)
			n += k
			if err != nil {
				done <- nil
				return
			}
		}
	}()
	select {
	case err := <-done:
		return n, err
	case <-time.After(d):
		return n, fmt.Errorf("still open after %s", d)
	}
}

// childRSSMB is the resident set of process pid, MB (0 if unknown).
func childRSSMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
