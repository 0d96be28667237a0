package pipeline

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

// BenchmarkIdleAgentsAreForgotten measures what a partition's engine and
// tracker keep of a population that comes and goes: 500 000 distinct
// agents log in and out once each (1 M events over 10 hours), then 2 000
// agents stay live for another 13 hours of event time. It reports the
// heap and the snapshot at the peak and after the agent idle timeout
// (12 h) has passed for the 500 000:
//
//	go test -run '^$' -bench IdleAgentsAreForgotten -benchtime 1x ./processor/pipeline/
func BenchmarkIdleAgentsAreForgotten(b *testing.B) {
	const (
		visitors = 500_000
		live     = 2_000
		hour     = int64(time.Hour / time.Millisecond)
	)
	base := int64(1795334400000) // 2026-11-22T08:00:00Z
	heapMB := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapInuse) / (1 << 20)
	}
	// rssMB is the process's resident set once freed memory is returned
	// to the system.
	rssMB := func() float64 {
		debug.FreeOSMemory()
		b, err := os.ReadFile("/proc/self/status")
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
	for range b.N {
		tr := newTracker(Topics{}, 15*time.Minute, time.UTC)
		eng, err := processor.New(processor.Config{}, tr)
		if err != nil {
			b.Fatal(err)
		}
		before := heapMB()
		// A live feed: the wall clock is event time.
		flush := func() {
			ts, _ := eng.MaxTS()
			tr.collect(eng, &Batch{WallMS: ts}, true)
			tr.takeMessages()
		}
		apply := func(id string, st events.State, ts int64) {
			ev := events.Event{AgentID: id, State: st, TS: ts, Team: "t" + id[len(id)-1:]}
			eng.Apply(&ev)
		}
		// 500 000 agents, each logging in and out a minute later, spread
		// over 10 hours, while the live agents send an event a minute.
		step := 10 * hour / visitors
		for i := range visitors {
			ts := base + int64(i)*step
			id := fmt.Sprintf("visitor-%06d", i)
			apply(id, events.StateReady, ts)
			apply(id, events.StateLoggedOut, ts+60000)
			if i%(visitors/600) == 0 {
				for j := range live {
					apply(fmt.Sprintf("live-%04d", j), events.StateReady, ts)
				}
			}
			if i%5000 == 0 {
				flush()
			}
		}
		flush()
		peak, peakSnap, peakRSS := heapMB()-before, len(eng.Snapshot()), rssMB()
		// 13 more hours with only the live agents.
		for m := int64(0); m < 13*60; m++ {
			ts := base + 10*hour + m*60000
			for j := range live {
				apply(fmt.Sprintf("live-%04d", j), events.StateReady, ts)
			}
			flush()
		}
		after, afterSnap, afterRSS := heapMB()-before, len(eng.Snapshot()), rssMB()
		b.ReportMetric(peak, "peak-heap-MB")
		b.ReportMetric(after, "after-heap-MB")
		b.ReportMetric(float64(peakSnap)/(1<<20), "peak-snapshot-MB")
		b.ReportMetric(float64(afterSnap)/(1<<20), "after-snapshot-MB")
		b.ReportMetric(float64(eng.Stats().Forgotten), "forgotten")
		b.ReportMetric(peakRSS, "peak-rss-MB")
		b.ReportMetric(afterRSS, "after-rss-MB")
		runtime.KeepAlive(tr)
	}
}
