// Package metrics exposes acwd's Prometheus metrics, health and readiness.
//
// Metrics live in their own registry (not the global default) and their
// labels are bounded: outcome, reason, kind, op and the input topic and
// partition — never agent, team or queue ids. Every name starts with
// "acw_". Durations are in seconds, as Prometheus recommends.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
)

// WrapUpBuckets are the wrap-up duration histogram's upper bounds in
// seconds: fine around the usual 20 s warn and 30 s overrun thresholds.
var WrapUpBuckets = []float64{5, 10, 15, 20, 25, 30, 35, 45, 60, 90, 120, 180, 300, 600}

// LatencyBuckets are the event-to-Redis histogram's upper bounds in
// seconds: fine around the default 2 s max_out_of_order, which every
// event waits for.
var LatencyBuckets = []float64{0.25, 0.5, 1, 1.5, 2, 2.1, 2.25, 2.5, 3, 4, 5, 10, 30, 60, 300}

// Metrics is a pipeline.Observer that keeps Prometheus metrics; safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	events     *prometheus.CounterVec
	segments   *prometheus.CounterVec
	wrapUp     prometheus.Histogram
	alerts     *prometheus.CounterVec
	open       *prometheus.GaugeVec
	lag        *prometheus.GaugeVec
	wmLag      *prometheus.GaugeVec
	latency    prometheus.Histogram
	flush      *prometheus.HistogramVec
	errors     *prometheus.CounterVec
	rebalances prometheus.Counter
	assigned   prometheus.Gauge
	redisUp    prometheus.Gauge

	mu        sync.Mutex
	parts     map[pipeline.Source]int // assignments per partition (0 or 1)
	nowFunc   func() time.Time
	assignedN int
}

// New returns Metrics registered in a new registry, with build info
// (version) and the Go and process collectors.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), parts: map[pipeline.Source]int{}, nowFunc: time.Now}
	f := promauto{m.reg}
	m.events = f.counterVec("acw_events_total", "Input messages by outcome: applied, duplicate, or the rejection reason (malformed, invalid, late, oversized); rejected ones go to the DLQ topic.", "outcome")
	m.segments = f.counterVec("acw_segments_total", "Closed wrap-ups by outcome: ok, warn (past the warn threshold) or overrun.", "outcome")
	m.wrapUp = f.histogram("acw_wrapup_duration_seconds", "Duration of closed wrap-ups, seconds.", WrapUpBuckets)
	m.alerts = f.counterVec("acw_alerts_total", "Alerts by kind: overrun (raised) and resolved.", "kind")
	m.open = f.gaugeVec("acw_open_wrapups", "Agents in wrap-up now, per input partition.", "topic", "partition")
	m.lag = f.gaugeVec("acw_consumer_lag_messages", "Messages between a partition's last read offset and its high watermark.", "topic", "partition")
	m.wmLag = f.gaugeVec("acw_watermark_lag_seconds", "Wall-clock time minus a partition's watermark (event time up to which results are final), seconds.", "topic", "partition")
	m.latency = f.histogram("acw_event_to_redis_seconds", "From an agent event's ts until Redis shows the agent's new state, seconds (at least max_out_of_order).", LatencyBuckets)
	m.flush = f.histogramVec("acw_redis_flush_seconds", "Duration of one partition flush to Redis (one atomic script with the checkpoint); kind snapshot carries a full engine snapshot, delta does not.", prometheus.ExponentialBuckets(0.0005, 2, 14), "kind")
	m.errors = f.counterVec("acw_errors_total", "Failed operations that are being retried, by op: redis (flush or checkpoint claim) or kafka (fetching input, publishing derived records).", "op")
	m.rebalances = f.counter("acw_rebalances_total", "Consumer group generations this instance joined.")
	m.assigned = f.gauge("acw_assigned_partitions", "Input partitions this instance processes now.")
	m.redisUp = f.gauge("acw_redis_up", "1 when the last readiness check reached Redis, else 0.")
	info := f.gaugeVec("acw_build_info", "Build information; always 1.", "version", "goversion")
	info.WithLabelValues(version, runtime.Version()).Set(1)
	for _, o := range []string{"applied", "duplicate", events.ReasonMalformed, events.ReasonInvalid, events.ReasonLate, events.ReasonOversized} {
		m.events.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "warn", "overrun"} {
		m.segments.WithLabelValues(o)
	}
	for _, k := range []string{events.AlertOverrun, events.AlertResolved} {
		m.alerts.WithLabelValues(k)
	}
	for _, op := range []string{"redis", "kafka"} {
		m.errors.WithLabelValues(op)
	}
	for _, k := range []string{"delta", "snapshot"} {
		m.flush.WithLabelValues(k)
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AssignedPartitions is how many input partitions this instance
// processes now.
func (m *Metrics) AssignedPartitions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assignedN
}

func (m *Metrics) Consumed(_ pipeline.Source, outcome string) {
	m.events.WithLabelValues(outcome).Inc()
}

func (m *Metrics) Segment(_ pipeline.Source, s *events.Segment) {
	outcome := "ok"
	switch {
	case s.Overrun:
		outcome = "overrun"
	case s.Warn:
		outcome = "warn"
	}
	m.segments.WithLabelValues(outcome).Inc()
	m.wrapUp.Observe(float64(s.DurationMS) / 1000)
}

func (m *Metrics) Alert(_ pipeline.Source, a *events.Alert) {
	m.alerts.WithLabelValues(a.Kind).Inc()
}

func (m *Metrics) Flushed(_ pipeline.Source, b *pipeline.Batch, took time.Duration, done time.Time) {
	kind := "delta"
	if b.Snapshot != nil {
		kind = "snapshot"
	}
	m.flush.WithLabelValues(kind).Observe(took.Seconds())
	now := done.UnixMilli()
	for i := range b.Agents {
		a := &b.Agents[i]
		if a.Prev != nil && a.Prev.Since == a.State.Since {
			continue // no new event of this agent
		}
		m.latency.Observe(float64(now-a.State.Since) / 1000)
	}
}

func (m *Metrics) Failed(_ pipeline.Source, op string, _ error) {
	m.errors.WithLabelValues(op).Inc()
}

func (m *Metrics) Progress(src pipeline.Source, p pipeline.Progress) {
	l := []string{src.Topic, strconv.Itoa(src.Partition)}
	m.open.WithLabelValues(l...).Set(float64(p.Open))
	if p.Lag >= 0 {
		m.lag.WithLabelValues(l...).Set(float64(p.Lag))
	}
	if p.Watermark > 0 {
		m.wmLag.WithLabelValues(l...).Set(float64(m.nowFunc().UnixMilli()-p.Watermark) / 1000)
	}
}

func (m *Metrics) Assigned(src pipeline.Source, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.parts[src]++
	} else {
		m.parts[src]--
		if m.parts[src] <= 0 {
			delete(m.parts, src)
			l := []string{src.Topic, strconv.Itoa(src.Partition)}
			m.open.DeleteLabelValues(l...)
			m.lag.DeleteLabelValues(l...)
			m.wmLag.DeleteLabelValues(l...)
		}
	}
	m.assignedN = len(m.parts)
	m.assigned.Set(float64(m.assignedN))
}

func (m *Metrics) Rebalanced(int32, int) { m.rebalances.Inc() }

// Handler serves /metrics (Prometheus text format), /healthz (200 while
// the process runs) and /readyz: 200 when this instance has partitions
// assigned and ping reaches Redis within 1 s, else 503 with the reason.
// Other paths go to next (nil: 404).
func (m *Metrics) Handler(ping func(context.Context) error, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		err := ping(ctx)
		if err != nil {
			m.redisUp.Set(0)
			http.Error(w, "not ready: Redis unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		m.redisUp.Set(1)
		if m.AssignedPartitions() == 0 {
			http.Error(w, "not ready: no partitions assigned", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if next != nil {
		mux.Handle("/", next)
	}
	return mux
}

// promauto registers new collectors in reg.
type promauto struct{ reg *prometheus.Registry }

func (f promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f promauto) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f promauto) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f promauto) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f promauto) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f promauto) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
