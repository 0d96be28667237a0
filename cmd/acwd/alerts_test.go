package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/sink/redistest"
)

// An overrun alert goes out when the wall clock passes the threshold,
// with no further event on the partition: here the engine's watermark
// (max_out_of_order 5 s behind) could raise it only 5 s later. A wrap-up
// whose closing event, before the threshold, has arrived but waits for the
// watermark is not alerted; one whose close arrives after the threshold
// passed gets the overrun alert, then a resolved one.
func TestRunAlertsOverrunsOnTheWallClock(t *testing.T) {
	c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: []string{runTopic}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := &runHarness{t: t, broker: c, addr: c.ListenAddrs()[0], redis: redistest.Start(t), keyOf: map[string]string{}}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	defer h.rdb.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- mainExit(ctx, []string{"run", "--brokers", h.addr, "--topic", runTopic, "--group", "g", "--redis", h.redis.URL(),
			"--log-level", "warn", "--http", "", "--max-out-of-order", "5s", "--warn", "1s", "--overrun", "2s"}, nil, &bytes.Buffer{}, &errb)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("acwd run exited %d: %s", code, errb.String())
		}
	}()

	line := func(agent, state string, ts int64) []byte {
		return fmt.Appendf(nil, `{"agent_id":%q,"state":%q,"ts":%d,"call_id":"%s-1","team":"t1","queue":"q1"}`, agent, state, ts, agent)
	}
	// Every partition first sees an event, so that each has a clock.
	var warm [][]byte
	t0 := time.Now().UnixMilli()
	for i := range 48 {
		warm = append(warm, line("w"+strconv.Itoa(i), "ready", t0))
	}
	h.produce(warm)
	time.Sleep(2 * time.Second) // the group forms and the partitions are assigned

	t0 = time.Now().UnixMilli()
	var lines [][]byte
	for _, a := range []string{"slow", "quick", "late"} {
		lines = append(lines, line(a, "talking", t0-1000), line(a, "acw", t0))
	}
	lines = append(lines, line("quick", "ready", t0+1000)) // ahead of its wall-clock time: it waits for the watermark
	h.produce(lines)

	type alert struct{ kind, at string }
	read := func() map[string][]alert {
		got := map[string][]alert{}
		for _, m := range h.rdb.XRange(context.Background(), "acw:alerts", "-", "+").Val() {
			got[m.Values["agent_id"].(string)] = append(got[m.Values["agent_id"].(string)], alert{m.Values["kind"].(string), m.Values["at"].(string)})
		}
		return got
	}
	threshold := strconv.FormatInt(t0+2000, 10)
	// The engine would raise the overruns at t0 + 2 s + 5 s at the
	// earliest (t0 + 6 s on quick's partition, whose clock runs 1 s ahead
	// with its close); the wall clock, within 1 s of t0 + 2 s. Allow for a
	// slow machine, not for the watermark.
	for deadline := t0 + 5500; ; time.Sleep(50 * time.Millisecond) {
		got := read()
		if len(got["slow"]) > 0 && len(got["late"]) > 0 {
			if got["slow"][0] != (alert{"overrun", threshold}) || got["late"][0] != (alert{"overrun", threshold}) {
				t.Fatalf("alerts %v, want an overrun at %s for slow and late", got, threshold)
			}
			break
		}
		if time.Now().UnixMilli() > deadline {
			t.Fatalf("no wall-clock overrun alerts by t0+5.5s: %v", got)
		}
	}
	h.produce([][]byte{line("late", "ready", t0+1500)}) // it had ended in time after all
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := read()
		if len(got["late"]) == 2 {
			if got["late"][1] != (alert{"resolved", strconv.FormatInt(t0+1500, 10)}) {
				t.Fatalf("late's alerts %v, want the overrun resolved at its close", got["late"])
			}
			if len(got["quick"]) != 0 || len(got["slow"]) != 1 {
				t.Fatalf("alerts %v: quick ended in time, slow is still open", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no resolved alert for late: %v", got)
		}
	}
}
