// Package pipeline is acwstream's live path: a Kafka consumer group whose
// every assigned partition runs its own processor.Engine, flushes the
// engine's effects with a checkpoint to a Store, and publishes derived
// records.
//
// # Guarantees
//
// Store effects are exactly-once: every flush is one atomic Store commit
// that carries the effects of the offsets read since the last flush and the
// new checkpoint (next offset, and every few seconds a full engine
// snapshot). A partition restored after a crash or rebalance restores the
// snapshot, re-reads from its offset with store effects suppressed up to
// the checkpointed offset (the engine is deterministic, so it reaches the
// same state), and continues; the final store values equal those of an
// uninterrupted run. A fencing token taken on assignment stops an earlier
// owner that still runs from writing.
//
// Derived topics are at-least-once: a flush's records are published after
// its commit, in flush order, without holding up the next commit; every
// committed batch carries (in its outbox) the records not yet known to be
// published, and a restored partition publishes that outbox again, then
// what it re-reads. Every record carries a stable id (segment_id, the alert id
// segment_id:kind, the interval id scope:key:window_start), so consumers
// drop repeats.
//
// # Structure
//
// Pipeline joins the group; each assigned partition runs in a partition
// (one generation, one goroutine) made of parts that each have one job:
// input applies messages to the engine, tracker turns the engine's output
// into derived records and store effects, recovery takes a restored
// partition through its phases (claiming, replaying, live, releasing),
// batcher decides what a flush carries, sender commits and publishes it,
// fetcher reads Kafka, eventClock keeps event time between events, watcher
// reports stuck agents and skipped records, retrier retries Redis and
// Kafka. A partition's goroutines are joined before it returns, so no
// commit of its ownership arrives after its return; and its return ends
// the member's generation (kafka-go ends a generation when one of its
// functions returns), so it returns only when the generation ends. The
// shared writer (one leader per group) applies the partitions' shared
// logs to the team, queue and centre keys.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Config configures a Pipeline. Zero durations take their defaults. (A
// field per setting, as acwd's flags give them: it holds no behaviour.)
type Config struct {
	Brokers []string // Kafka bootstrap addresses (required)
	Topics  []string // input topics, partitioned by agent_id (required)
	Group   string   // consumer group id (required)
	// StartOffset is where a partition without a checkpoint starts:
	// kafka.FirstOffset (default) or kafka.LastOffset.
	StartOffset int64
	Engine      processor.Config
	Derived     Topics
	// Location is the time zone of the daily views; default UTC.
	Location *time.Location
	// FlushInterval is how often a partition flushes its agent keys,
	// alerts and checkpoint; default 100ms.
	FlushInterval time.Duration
	// SharedFlushInterval is how often a partition's flush also logs its
	// updates of the shared keys (team, queue, center) for the shared
	// writer, on wall-clock-aligned boundaries so that the partitions'
	// updates arrive together and are applied in one round; default 1s.
	// The shared writer polls the logs every FlushInterval, so shared keys
	// trail the partitions by at most about SharedFlushInterval plus
	// FlushInterval.
	SharedFlushInterval time.Duration
	// SnapshotInterval is how often a flush carries a full engine snapshot
	// (the point recovery re-reads from); default 5s.
	SnapshotInterval time.Duration
	// MaxMessageBytes: larger input messages go to the DLQ unread;
	// default 1 MiB.
	MaxMessageBytes int
	// BatchMaxBytes bounds the derived records (keys and values) a
	// partition gathers between flushes: a batch that reaches it is
	// flushed at once, or, while the previous flush is still out, the
	// partition applies nothing more until it can be. With the bound on
	// records awaiting Kafka's acknowledgement (maxUnpublishedBytes),
	// this bounds what a partition holds in flight, whatever the backlog
	// (see the README's Scaling model); default DefaultBatchMaxBytes. A
	// live feed's flushes stay far below it.
	BatchMaxBytes int
	// DLQMaxBytes bounds a dead-letter record (key, value and headers):
	// the value of a larger one is cut to fit, with headers saying so
	// (see deadLetter). Set it to the DLQ topic's max.message.bytes less
	// about 100 bytes; default DefaultDLQMaxBytes.
	DLQMaxBytes int
	// NewAdapter, if set, returns the adapter that reads each partition's
	// messages (a platform's records, see events.Adapter); one per
	// partition. nil: messages are canonical JSON events. A stateful
	// adapter (events.Stateful) has its state stored with every snapshot
	// and restored with it; a holder (events.Holder) has its held events
	// released as the watermark moves, wall-clock ticks included.
	NewAdapter func() events.Adapter
	// IdleAfter is how long a caught-up partition must see no message
	// before wall-clock time advances its watermark (checked at each
	// flush); default 50ms. During a pause in a live feed, the watermark
	// then keeps pace with the wall clock instead of waiting for the next
	// event; an event is then late if it arrives more than MaxOutOfOrder
	// behind the partition's event-time clock (see partition.eventNow).
	IdleAfter time.Duration
	// OnLostCheckpoint is what a partition does when the group has a
	// committed Kafka offset for it but the store has no checkpoint (Redis
	// was emptied: FLUSHALL, a restart without persistence):
	// LostCheckpointFail (default) leaves it unprocessed and reports it
	// (BlockObserver); LostCheckpointRebuild recomputes it from the
	// earliest offset Kafka still holds, marking every derived record it
	// publishes (see Checkpoint.Rebuild).
	OnLostCheckpoint string
	// StuckAfter: an agent in one call state (ringing, talking, hold,
	// acw) for longer than this, in event time, is reported as stuck
	// (StuckObserver, a log line): far longer than any real contact, it
	// points at a record the platform or the feed lost. Checked once a
	// minute; default 4h.
	StuckAfter time.Duration
	// FinalFlushTimeout bounds the flush and checkpoint of a partition
	// being released; default 10s.
	FinalFlushTimeout time.Duration
	// MaxBackoff caps the retry delay of failed writes; default 5s.
	MaxBackoff time.Duration
	// Dialer connects to Kafka (TLS, SASL); nil uses kafka-go's default.
	Dialer *kafka.Dialer
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout of the group;
	// defaults 10s, 1s and 10s.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration

	Store     Store     // required
	Publisher Publisher // required
	Log       zerolog.Logger
	// Now is the wall clock; default time.Now.
	Now func() time.Time
	// Observer, when set, is told about the pipeline's progress (metrics).
	Observer Observer
}

// Observer receives progress notifications from every partition
// goroutine (metrics); implementations must be safe for concurrent use and
// must not block. Records replayed while a partition recovers from its
// checkpoint are not reported again.
type Observer interface {
	// Consumed reports one input message and what became of it
	// ("applied" accepted, "duplicate", or a rejection reason).
	Consumed(src Source, outcome string)
	// Segment reports a closed wrap-up.
	Segment(src Source, s *events.Segment)
	// Alert reports an alert raised (overrun) or resolved.
	Alert(src Source, a *events.Alert)
	// Flushed reports one committed flush, took being the Redis commit's
	// duration and done the wall-clock time it completed. b is valid
	// during the call only (its buffers are reused).
	Flushed(src Source, b *Batch, took time.Duration, done time.Time)
	// Failed reports a failed attempt that will be retried: op is
	// "redis" (commit or claim) or "kafka" (fetching input or publishing
	// derived records).
	Failed(src Source, op string, err error)
	// Progress reports a partition's state at each flush tick.
	Progress(src Source, p Progress)
	// Assigned reports a partition starting (true) or stopping (false).
	Assigned(src Source, on bool)
	// Rebalanced reports this member joining a new generation of the
	// group with n partitions.
	Rebalanced(generation int32, n int)
	// SharedLeader reports this instance's shared writer taking (true)
	// or losing the lease.
	SharedLeader(on bool)
	// SharedApplied reports one shared-writer round: entries log entries
	// applied as keys shared-key updates, taking took (read, sum and
	// apply). Its failures go to Failed with op "redis" and a zero
	// Source.
	SharedApplied(entries, keys int, took time.Duration)
}

// BlockObserver is an optional extension of Observer: it is told of a
// partition that cannot go on in this generation (its checkpoint cannot
// be restored, or is lost and --on-lost-checkpoint says fail) and stays
// unprocessed until the generation ends, and when that ends. /readyz
// reports such a partition.
type BlockObserver interface {
	Blocked(src Source, reason string, err error)
	Unblocked(src Source)
	// Recovered reports a partition restarted from what the store holds
	// after the store lost acknowledged writes (ErrCheckpointLost).
	Recovered(src Source)
	// Rebuilt reports a partition recomputed from offset from after its
	// checkpoint was lost (OnLostCheckpoint "rebuild"); from > 0 means
	// the history before it is gone from Kafka.
	Rebuilt(src Source, from int64)
}

// Values of Config.OnLostCheckpoint.
const (
	LostCheckpointFail    = "fail"
	LostCheckpointRebuild = "rebuild"
)

// StuckObserver is an optional extension of Observer: once a minute each
// partition reports how many of its agents are stuck in each call state
// (see Config.StuckAfter); a stopping partition reports none.
type StuckObserver interface {
	Stuck(src Source, byState map[events.State]int)
}

// SkipObserver is an optional extension of Observer: it is told what a
// partition's input adapter skipped (events.Skipper: heartbeats, other
// products' records…), by kind, as the counts grow, at the partition's
// flush ticks, so that a feed being ignored shows. A partition that
// re-reads messages after a restore counts their skips again.
type SkipObserver interface {
	AdapterSkipped(src Source, kind string, n uint64)
}

// Block reasons, the label of BlockObserver.Blocked.
const (
	BlockedRestore        = "restore"         // the checkpoint cannot be restored
	BlockedLostCheckpoint = "lost_checkpoint" // Kafka has progress, the store no checkpoint
	BlockedPublish        = "publish"         // Kafka refuses the derived records (ErrRefused)
)

// Progress is a partition's state at a flush tick.
type Progress struct {
	// Lag is how many messages the partition is behind its high
	// watermark as of the last fetch (-1 unknown).
	Lag int64
	// Watermark is the engine's watermark, Unix ms (0 before the first
	// event).
	Watermark int64
	// Open is how many of the partition's agents are in wrap-up.
	Open int
	// At is when the progress was taken (Config.Now): the watermark's lag
	// is At less Watermark, both on the pipeline's clock.
	At time.Time
}

func (c *Config) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("pipeline: no brokers")
	}
	if len(c.Topics) == 0 {
		return errors.New("pipeline: no input topics")
	}
	if c.Group == "" {
		return errors.New("pipeline: no consumer group")
	}
	if c.Store == nil || c.Publisher == nil {
		return errors.New("pipeline: Store and Publisher are required")
	}
	if err := c.Engine.Validate(); err != nil {
		return err
	}
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset {
		return fmt.Errorf("pipeline: StartOffset must be kafka.FirstOffset or kafka.LastOffset, got %d", c.StartOffset)
	}
	c.Derived = c.Derived.withDefaults()
	if c.Location == nil {
		c.Location = time.UTC
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.FlushInterval, DefaultFlushInterval)
	def(&c.SharedFlushInterval, DefaultSharedFlushInterval)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	def(&c.IdleAfter, DefaultIdleAfter)
	def(&c.FinalFlushTimeout, DefaultFinalFlushTimeout)
	def(&c.StuckAfter, DefaultStuckAfter)
	def(&c.MaxBackoff, 5*time.Second)
	def(&c.SessionTimeout, DefaultSessionTimeout)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.RebalanceTimeout, 10*time.Second)
	switch c.OnLostCheckpoint {
	case "":
		c.OnLostCheckpoint = LostCheckpointFail
	case LostCheckpointFail, LostCheckpointRebuild:
	default:
		return fmt.Errorf("pipeline: OnLostCheckpoint must be %q or %q, got %q", LostCheckpointFail, LostCheckpointRebuild, c.OnLostCheckpoint)
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.BatchMaxBytes <= 0 {
		c.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if c.DLQMaxBytes <= 0 {
		c.DLQMaxBytes = DefaultDLQMaxBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Defaults of Config, in one place: acwd's flags show these.
const (
	DefaultFlushInterval       = 100 * time.Millisecond
	DefaultSharedFlushInterval = time.Second
	DefaultSnapshotInterval    = 5 * time.Second
	DefaultIdleAfter           = 50 * time.Millisecond
	DefaultFinalFlushTimeout   = 10 * time.Second
	DefaultStuckAfter          = 4 * time.Hour
	DefaultSessionTimeout      = 10 * time.Second
	DefaultMaxMessageBytes     = 1 << 20
	DefaultBatchMaxBytes       = 256 << 10
)

// Pipeline consumes the input topics as one member of the consumer group.
type Pipeline struct {
	cfg      Config
	instance string
	hooks    *hooks // cfg.Observer's

	commitMu sync.Mutex
	// unflushed counts partitions released without their final
	// checkpoint (Redis unreachable until the final flush timed out).
	unflushed atomic.Int32
}

// New validates cfg and returns a Pipeline; Run starts it.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &Pipeline{cfg: cfg, instance: hex.EncodeToString(id[:]), hooks: resolveHooks(cfg.Observer)}, nil
}

// Run joins the group and processes assigned partitions until ctx is
// cancelled; then every partition flushes and checkpoints, the member
// leaves the group, and Run returns nil. It returns an error when the
// group cannot be created, or when some partitions could not write their
// final checkpoint within FinalFlushTimeout (nothing is lost: their next
// owner resumes from their last checkpoint).
func (p *Pipeline) Run(ctx context.Context) error {
	cfg := &p.cfg
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                cfg.Group,
		Brokers:           cfg.Brokers,
		Dialer:            cfg.Dialer,
		Topics:            cfg.Topics,
		StartOffset:       cfg.StartOffset,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("pipeline: consumer group: %w", err)
	}
	log := cfg.Log.With().Str("group", cfg.Group).Str("instance", p.instance).Logger()
	// Closing the group ends the generation: each partition flushes and
	// checkpoints before Close returns, then the member leaves the group.
	stop := context.AfterFunc(ctx, func() { g.Close() })
	defer stop()
	// The shared writer outlives the partitions, so that its last round
	// applies their final flushes.
	wdone := make(chan struct{})
	wctx, wstop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { wstop(); <-wdone }()
	if st, ok := cfg.Store.(SharedStore); ok {
		w := &sharedWriter{st: st, cfg: cfg, token: p.instance, log: log, hooks: p.hooks}
		go func() { defer close(wdone); w.run(wctx) }()
	} else {
		close(wdone)
	}
	backoff := NewBackoff(cfg.MaxBackoff)
	for {
		gen, err := g.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
			break
		}
		if err != nil {
			log.Warn().Err(err).Msg("joining the consumer group; retrying")
			if !backoff.Wait(ctx) {
				break
			}
			continue
		}
		backoff.Reset()
		n := 0
		for topic, parts := range gen.Assignments {
			for _, pa := range parts {
				n++
				src := Source{Topic: topic, Partition: pa.ID}
				committed := pa.Offset
				gen.Start(func(gctx context.Context) {
					p.runPartition(gctx, gen, src, committed, log.With().Str("partition", src.String()).Int32("generation", gen.ID).Logger())
				})
			}
		}
		log.Info().Int32("generation", gen.ID).Int("partitions", n).Msg("joined generation")
		p.hooks.rebalanced(gen.ID, n)
	}
	err = g.Close() // idempotent; waits for the partitions' final flushes
	wstop()
	<-wdone
	if n := p.unflushed.Load(); n > 0 && err == nil {
		err = fmt.Errorf("%d partition(s) could not write their final checkpoint; their next owner resumes from the last one", n)
	}
	return err
}

// runPartition processes src for one generation of the group. Its return
// ends this member's generation (kafka-go ends a generation as soon as
// one of its partition functions returns, and the group rebalances), so it
// returns only once ctx ends. A partition whose store lost acknowledged
// writes is restored again from what the store holds; one that cannot go
// on (its checkpoint cannot be restored, or is lost) stays unprocessed,
// logged once and reported to the BlockObserver, until the generation
// ends; one fenced by another member waits for the rebalance.
// committed is the group's committed Kafka offset of src (negative: none).
func (p *Pipeline) runPartition(ctx context.Context, gen *kafka.Generation, src Source, committed int64, log zerolog.Logger) {
	p.hooks.assigned(src, true)
	defer p.hooks.assigned(src, false)
	backoff := NewBackoff(p.cfg.MaxBackoff)
	for {
		part := newPartition(p, gen, src, committed, log)
		err := part.run(ctx)
		if ctx.Err() != nil {
			return
		}
		var blocked *blockedError
		switch {
		case errors.Is(err, ErrCheckpointLost):
			log.Error().Err(err).Msg("Redis lost writes it had acknowledged (a failover to a lagging replica, a restart from an older snapshot): dropping the partition's state, restoring from the checkpoint Redis holds now and re-reading from its offset")
			p.hooks.recovered(src)
			if !backoff.Wait(ctx) {
				return
			}
			continue
		case errors.Is(err, ErrFenced):
			log.Info().Err(err).Msg("another member owns the partition now; waiting for the rebalance")
		case errors.As(err, &blocked):
			log.Error().Err(blocked.err).Str("reason", blocked.reason).Msg("partition blocked: left unprocessed until the next rebalance or restart")
			p.hooks.blocked(src, blocked.reason, blocked.err)
			defer p.hooks.unblocked(src)
		case err != nil:
			log.Error().Err(err).Msg("partition stopped until the next rebalance")
		}
		<-ctx.Done()
		return
	}
}

// blockedError is a partition run's end when the partition cannot go on
// in this generation (see BlockObserver).
type blockedError struct {
	reason string
	err    error
}

func (e *blockedError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *blockedError) Unwrap() error { return e.err }

// commitOffset records the next offset of src in Kafka for lag tools.
func (p *Pipeline) commitOffset(gen *kafka.Generation, src Source, next int64) error {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	return gen.CommitOffsets(map[string]map[int]int64{src.Topic: {src.Partition: next}})
}

// Backoff is a capped exponential retry delay: 50 ms, doubling up to
// its cap. The zero value is not ready; use NewBackoff.
type Backoff struct {
	cur, max time.Duration
}

// NewBackoff returns a Backoff capped at max.
func NewBackoff(max time.Duration) *Backoff { return &Backoff{max: max} }

// Reset starts the delays again from 50 ms.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for the next delay; false if ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	if b.cur == 0 {
		b.cur = 50 * time.Millisecond
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
