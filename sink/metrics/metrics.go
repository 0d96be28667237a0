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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
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
	outbox     prometheus.Histogram
	batch      prometheus.Histogram
	errors     *prometheus.CounterVec
	rebalances prometheus.Counter
	assigned   prometheus.Gauge
	redisUp    prometheus.Gauge
	leader     prometheus.Gauge
	shared     prometheus.Histogram
	sharedN    *prometheus.CounterVec

	blockedN  *prometheus.GaugeVec
	stuck     *prometheus.GaugeVec
	stuckBy   map[pipeline.Source]map[events.State]int
	recovered prometheus.Counter
	rebuilds  *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	format    string // the input format, label of skipped

	mu      sync.Mutex
	parts   map[pipeline.Source]int // assignments per partition (0 or 1)
	blocked map[pipeline.Source]blockedPart
}

type blockedPart struct {
	reason string
	err    error
}

// New returns Metrics registered in a new registry, with build info
// (version) and the Go and process collectors.
func New(version string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{reg: r, parts: map[pipeline.Source]int{}, blocked: map[pipeline.Source]blockedPart{}, stuckBy: map[pipeline.Source]map[events.State]int{}}
	byPartition := []string{"topic", "partition"}
	m.events = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_events_total",
		Help: "Input messages by outcome: applied, duplicate, ignored (a platform record implying no event, such as a heartbeat), or the rejection reason (malformed, invalid, late, future, oversized); rejected ones go to the DLQ topic."}, []string{"outcome"}))
	m.segments = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_segments_total",
		Help: "Closed wrap-ups by outcome: ok, warn (past the warn threshold) or overrun."}, []string{"outcome"}))
	m.wrapUp = register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "acw_wrapup_duration_seconds",
		Help: "Duration of closed wrap-ups, seconds.", Buckets: WrapUpBuckets}))
	m.alerts = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_alerts_total",
		Help: "Alerts by kind: overrun (raised) and resolved."}, []string{"kind"}))
	m.open = register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "acw_open_wrapups",
		Help: "Agents in wrap-up now, per input partition."}, byPartition))
	m.lag = register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "acw_consumer_lag_messages",
		Help: "Messages between a partition's last read offset and its high watermark."}, byPartition))
	m.wmLag = register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "acw_watermark_lag_seconds",
		Help: "Wall-clock time minus a partition's watermark (event time up to which results are final), seconds; negative when event time runs ahead of this host's clock."}, byPartition))
	m.latency = register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "acw_event_to_redis_seconds",
		Help: "From an agent event's ts until Redis shows the agent's new state, seconds (at least max_out_of_order).", Buckets: LatencyBuckets}))
	m.flush = register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "acw_redis_flush_seconds",
		Help:    "Duration of one partition flush to Redis (one atomic script with the checkpoint); kind snapshot carries a full engine snapshot, delta does not.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"kind"}))
	m.batch = register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "acw_flush_records_bytes",
		Help:    "Derived records (keys and values) of each committed flush, bytes: at most --batch-max-bytes plus the records of the last message it applied.",
		Buckets: prometheus.ExponentialBuckets(1024, 2, 16)}))
	m.outbox = register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "acw_outbox_bytes",
		Help:    "Size of each commit's outbox: the derived records of its flush, and those of earlier flushes Kafka has not acknowledged yet, encoded, bytes. A partition waits for Kafka once 256 KiB of records await it, so this stays under about --batch-max-bytes + 256 KiB.",
		Buckets: prometheus.ExponentialBuckets(1024, 2, 16)}))
	m.errors = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_errors_total",
		Help: "Failed operations that are being retried, by op: redis (flush or checkpoint claim) or kafka (fetching input, publishing derived records)."}, []string{"op"}))
	m.rebalances = register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "acw_rebalances_total",
		Help: "Consumer group generations this instance joined."}))
	m.assigned = register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: "acw_assigned_partitions",
		Help: "Input partitions this instance processes now."}))
	m.redisUp = register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: "acw_redis_up",
		Help: "1 when the last Redis operation (a flush, a checkpoint claim or a readiness check) succeeded, 0 when it failed."}))
	m.leader = register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: "acw_shared_writer_leader",
		Help: "1 while this instance holds the shared writer lease (it alone writes the team, queue and center keys of its consumer group), else 0."}))
	m.shared = register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "acw_shared_apply_seconds",
		Help:    "Duration of one shared-writer round: reading the partitions' shared logs, summing them, and applying them to Redis in one atomic script.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}))
	m.sharedN = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_shared_applied_total",
		Help: "Work of the shared writer: entries (partitions' shared flushes read from their logs) and keys (shared-key updates written)."}, []string{"kind"}))
	m.sharedN.WithLabelValues("entries")
	m.sharedN.WithLabelValues("keys")
	m.blockedN = register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "acw_partitions_blocked",
		Help: "Assigned partitions left unprocessed until the next rebalance or restart, by reason: restore (the checkpoint cannot be restored), lost_checkpoint (Kafka has committed offsets, Redis no checkpoint), start, publish (Kafka refuses the derived records; retried until fixed); /readyz is false while any is."}, []string{"reason"}))
	for _, r := range blockReasons {
		m.blockedN.WithLabelValues(r)
	}
	m.stuck = register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "acw_stuck_states",
		Help: "Agents held in one call state (ringing, talking, hold, acw) longer than --stuck-after (4h) of event time: a record that ends it was probably lost."}, []string{"state"}))
	for _, s := range []events.State{events.StateRinging, events.StateTalking, events.StateHold, events.StateACW} {
		m.stuck.WithLabelValues(s.String())
	}
	m.recovered = register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "acw_checkpoint_rollbacks_total",
		Help: "Partitions that found Redis holding an older checkpoint than their last commit (Redis lost acknowledged writes) and restored from it."}))
	m.rebuilds = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_rebuilds_total",
		Help: "Partitions recomputed after their checkpoint was lost (--on-lost-checkpoint rebuild), by history: complete (from offset 0) or lost (Kafka no longer held the first offsets)."}, []string{"history"}))
	m.rebuilds.WithLabelValues("complete")
	m.rebuilds.WithLabelValues("lost")
	m.skipped = register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acw_adapter_skipped_total",
		Help: "Platform records (or events within them) the input adapter skipped, by format and kind: heartbeat, unchanged, non_voice, stray, ignored (another product's or an unused record type); a growing count shows a feed being ignored (re-read records after a restore count again)."}, []string{"format", "kind"}))
	m.format = "canonical"
	info := register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "acw_build_info",
		Help: "Build information; always 1."}, []string{"version", "goversion"}))
	info.WithLabelValues(version, runtime.Version()).Set(1)
	for _, o := range []string{processor.Accepted.String(), processor.Duplicate.String(), processor.Ignored.String(), events.ReasonMalformed, events.ReasonInvalid, events.ReasonLate, events.ReasonFuture, events.ReasonOversized} {
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
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AssignedPartitions is how many input partitions this instance
// processes now.
func (m *Metrics) AssignedPartitions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.parts)
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
	m.outbox.Observe(float64(len(b.Outbox)))
	m.batch.Observe(float64(b.RecordBytes))
	m.redisUp.Set(1)
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
	if op == "redis" {
		m.redisUp.Set(0)
	}
}

func (m *Metrics) Progress(src pipeline.Source, p pipeline.Progress) {
	l := []string{src.Topic, strconv.Itoa(src.Partition)}
	m.open.WithLabelValues(l...).Set(float64(p.Open))
	if p.Lag >= 0 {
		m.lag.WithLabelValues(l...).Set(float64(p.Lag))
	}
	if p.Watermark > 0 {
		m.wmLag.WithLabelValues(l...).Set(float64(p.At.UnixMilli()-p.Watermark) / 1000)
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
			delete(m.stuckBy, src)
			m.countStuck()
			l := []string{src.Topic, strconv.Itoa(src.Partition)}
			m.open.DeleteLabelValues(l...)
			m.lag.DeleteLabelValues(l...)
			m.wmLag.DeleteLabelValues(l...)
		}
	}
	m.assigned.Set(float64(len(m.parts)))
}

func (m *Metrics) Rebalanced(int32, int) { m.rebalances.Inc() }

// Blocked implements pipeline.BlockObserver.
func (m *Metrics) Blocked(src pipeline.Source, reason string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocked[src] = blockedPart{reason, err}
	m.countBlocked()
}

// Unblocked implements pipeline.BlockObserver.
func (m *Metrics) Unblocked(src pipeline.Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blocked, src)
	m.countBlocked()
}

// Stuck implements pipeline.StuckObserver.
func (m *Metrics) Stuck(src pipeline.Source, byState map[events.State]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stuckBy[src] = byState
	m.countStuck()
}

// countStuck sums the partitions' stuck agents (m.mu held).
func (m *Metrics) countStuck() {
	total := map[events.State]int{}
	for _, by := range m.stuckBy {
		for s, n := range by {
			total[s] += n
		}
	}
	for _, s := range []events.State{events.StateRinging, events.StateTalking, events.StateHold, events.StateACW} {
		m.stuck.WithLabelValues(s.String()).Set(float64(total[s]))
	}
}

// SetInputFormat names the input format (--input-format), the format
// label of acw_adapter_skipped_total. Call it before the pipeline runs.
func (m *Metrics) SetInputFormat(format string) { m.format = format }

// AdapterSkipped implements pipeline.SkipObserver.
func (m *Metrics) AdapterSkipped(_ pipeline.Source, kind string, n uint64) {
	m.skipped.WithLabelValues(m.format, kind).Add(float64(n))
}

// Recovered implements pipeline.BlockObserver.
func (m *Metrics) Recovered(pipeline.Source) { m.recovered.Inc() }

// Rebuilt implements pipeline.BlockObserver.
func (m *Metrics) Rebuilt(_ pipeline.Source, from int64) {
	if from > 0 {
		m.rebuilds.WithLabelValues("lost").Inc()
	} else {
		m.rebuilds.WithLabelValues("complete").Inc()
	}
}

var blockReasons = []string{pipeline.BlockedRestore, pipeline.BlockedLostCheckpoint, pipeline.BlockedPublish}

func (m *Metrics) countBlocked() {
	n := map[string]int{}
	for _, b := range m.blocked {
		n[b.reason]++
	}
	for _, r := range blockReasons {
		m.blockedN.WithLabelValues(r).Set(float64(n[r]))
	}
}

// BlockedPartitions lists the blocked partitions, one line each, sorted.
func (m *Metrics) BlockedPartitions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.blocked))
	for src, b := range m.blocked {
		out = append(out, src.String()+" ("+b.reason+"): "+b.err.Error())
	}
	slices.Sort(out)
	return out
}

func (m *Metrics) SharedLeader(on bool) {
	if on {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

func (m *Metrics) SharedApplied(entries, keys int, took time.Duration) {
	m.shared.Observe(took.Seconds())
	m.sharedN.WithLabelValues("entries").Add(float64(entries))
	m.sharedN.WithLabelValues("keys").Add(float64(keys))
	m.redisUp.Set(1)
}

// Handler serves /metrics (Prometheus text format), /healthz (200 while
// the process runs) and /readyz: 200 when this instance has partitions
// assigned, none of them blocked, and ping reaches Redis within 1 s, else
// 503 with the reason.
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
		if b := m.BlockedPartitions(); len(b) > 0 {
			http.Error(w, "not ready: partitions blocked, left unprocessed:\n"+strings.Join(b, "\n"), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if next != nil {
		mux.Handle("/", next)
	}
	return mux
}

// register adds c to r and returns it.
func register[C prometheus.Collector](r *prometheus.Registry, c C) C {
	r.MustRegister(c)
	return c
}
