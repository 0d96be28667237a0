package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/acwstream/acwstream/processor/pipeline"
)

// acw_redis_up follows the pipeline's own Redis operations, so that it is
// meaningful where nothing probes /readyz.
func TestRedisUpFollowsFlushesAndFailures(t *testing.T) {
	m := New("test")
	src := pipeline.Source{Topic: "t", Partition: 1}
	steps := []struct {
		do   func()
		want float64
	}{
		{func() { m.Flushed(src, &pipeline.Batch{}, time.Millisecond, time.Now()) }, 1},
		{func() { m.Failed(src, "kafka", nil) }, 1},
		{func() { m.Failed(src, "redis", nil) }, 0},
		{func() { m.Flushed(src, &pipeline.Batch{Snapshot: []byte{1}}, time.Millisecond, time.Now()) }, 1},
	}
	for i, s := range steps {
		s.do()
		if got := testutil.ToFloat64(m.redisUp); got != s.want {
			t.Errorf("step %d: acw_redis_up %v, want %v", i, got, s.want)
		}
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("redis")); got != 1 {
		t.Errorf("redis errors %v, want 1", got)
	}
}

func TestPartitionSeriesGoWithTheAssignment(t *testing.T) {
	m := New("test")
	src := pipeline.Source{Topic: "t", Partition: 3}
	m.Assigned(src, true)
	now := time.Now()
	m.Progress(src, pipeline.Progress{Lag: 5, Watermark: now.UnixMilli() - 2000, Open: 7, At: now})
	if m.AssignedPartitions() != 1 || testutil.ToFloat64(m.open.WithLabelValues("t", "3")) != 7 {
		t.Fatal("progress not recorded")
	}
	if wl := testutil.ToFloat64(m.wmLag.WithLabelValues("t", "3")); wl != 2 {
		t.Errorf("watermark lag %v s, want 2", wl)
	}
	m.Assigned(src, false)
	if m.AssignedPartitions() != 0 || testutil.CollectAndCount(m.open) != 0 || testutil.CollectAndCount(m.lag) != 0 {
		t.Error("a released partition's series remain")
	}
}
