package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// partition processes one assigned input partition for one generation.
type partition struct {
	p   *Pipeline
	gen *kafka.Generation
	src Source
	log zerolog.Logger
	// rejLog logs rejected messages (debug), at most 10 a second plus
	// one in 1000 beyond that.
	rejLog zerolog.Logger

	token string
	// committed is the group's committed Kafka offset of the partition
	// at assignment (negative: none).
	committed int64
	// rebuildFrom: the partition is being rebuilt after its checkpoint
	// was lost, and its first message is still to come.
	rebuildFrom bool
	eng         *processor.Engine
	dec         *events.Decoder
	ad          events.Adapter // nil: canonical input
	tr          *tracker

	next        int64 // next offset to read (-1: not known yet)
	flushedNext int64 // next offset as of the last committed flush
	ticks       []Tick
	replay      []Tick // checkpointed ticks still to re-apply
	effOffset   int64  // suppress store effects below this offset
	sharedOff   int64  // suppress effects on shared keys below this offset
	sharedTicks int    // and for this many replayed ticks
	replayed    int    // ticks replayed since the restore
	lastShared  time.Time
	lastSnap    time.Time
	snapNeeded  bool
	lastCommit  time.Time
	hwm         int64 // high watermark of the last fetch; -1 unknown
	lastMsg     time.Time
	lastTick    time.Time
	// The partition's event-time clock: refTS (the largest ts read) was
	// read at wall time refWall; event time is assumed to run on at wall
	// clock speed from there.
	refTS    int64
	refWall  time.Time
	snapBufs [2][]byte // alternate: one may be in flight
	snapIdx  int
	// journaled is the end index of the engine's dedup journal as
	// committed (or sent): each flush carries the entries after it.
	journaled uint64
	queued    int   // fetched messages waiting, as of the last timer tick
	seq       int64 // the last prepared batch's Seq
	// inflight reports the end of the commit in flight (nil: none).
	// At most one batch is in flight while the next one is being built.
	inflight chan error
	// unpublished lists the jobs sent whose records Kafka may not have
	// acknowledged yet, oldest first (pruned at each flush). Publication
	// follows the commits in order but does not hold them up: each
	// batch's outbox carries these jobs' records too, so that the last
	// committed outbox always holds every record not known to be
	// published.
	unpublished []*job
	sentAt      time.Time // when the flush in flight was sent (cfg.Now)
	flushDue    bool      // a tick passed while a flush was in flight
	// stuckAt is when the stuck agents were last looked for; stuck the
	// agents (and the start of their state) reported stuck so far.
	stuckAt time.Time
	stuck   map[string]int64
	// skipped is what the adapter had skipped, by kind, when last
	// reported (see SkipObserver).
	skipped map[string]uint64
	// helpers are the fetch and commit goroutines, joined before run
	// returns.
	helpers sync.WaitGroup
	// commitCtx bounds in-flight commits; it outlives a revocation so
	// that the final flush can wait for them, and is cancelled when the
	// partition's goroutine ends.
	commitCtx context.Context
}

// job is one flush on its way out: the batch to commit, then its derived
// records to publish once the previous job's are.
type job struct {
	b           *Batch
	msgs        []kafka.Message
	kafkaCommit bool // also commit the offset to Kafka (informational)
	// prev is the previous job (nil: none; send clears it); published is
	// closed when this job's records are published or pubErr says why
	// they are not.
	prev      *job
	published chan struct{}
	pubErr    error
	size      int // bytes of the records' keys and values
}

// maxUnpublished and maxUnpublishedBytes bound the records that may await
// Kafka's acknowledgement (flushes, and bytes of keys and values) before
// the partition waits for the oldest: a slow or absent Kafka pauses the
// partition, and the outboxes, which repeat those records in every
// commit, stay small. Live flushes carry tens of kilobytes and go on
// without waiting for Kafka; a backlog's carry megabytes, and each waits
// for the previous one's publication, as copying them into Redis again
// would cost more than the wait.
const (
	maxUnpublished      = 4
	maxUnpublishedBytes = 256 << 10
)

const noOffset = -1

// run processes the partition until ctx ends (it then releases it:
// final flush and checkpoint, and returns nil) or it cannot go on: it
// returns ErrFenced, ErrCheckpointLost, a *blockedError, or the error that
// stopped it. Its helper goroutines (fetch, commit) have ended or been
// told to end when it returns; a commit still in flight cannot apply
// after another owner's claim (fencing).
func (pt *partition) run(ctx context.Context) error {
	cfg := &pt.p.cfg
	if rs, ok := cfg.Store.(ReleasingStore); ok {
		defer rs.Release(pt.src)
	}
	// Runs after the fetch and commit contexts are cancelled (deferred
	// below): no helper outlives the partition.
	defer pt.helpers.Wait()
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	pt.token = pt.p.instance + "/" + strconv.Itoa(int(pt.gen.ID)) + "/" + hex.EncodeToString(tok[:])
	pt.dec = new(events.Decoder)
	if cfg.NewAdapter != nil {
		pt.ad = cfg.NewAdapter()
	}
	pt.rejLog = pt.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second, NextSampler: &zerolog.BasicSampler{N: 1000}})
	pt.tr = newTracker(cfg.Derived, cfg.Engine.Window, cfg.Location)
	pt.tr.hooks, pt.tr.src = pt.p.hooks, pt.src
	pt.hwm = noOffset

	if err := pt.restore(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		var b *blockedError
		if errors.As(err, &b) || errors.Is(err, ErrFenced) {
			return err
		}
		return &blockedError{reason: BlockedRestore, err: fmt.Errorf("cannot restore the checkpoint: %w", err)}
	}
	start := pt.next
	if start == noOffset {
		start = cfg.StartOffset
		if pt.rebuildFrom {
			start = kafka.FirstOffset
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   cfg.Brokers,
		Dialer:    cfg.Dialer,
		Topic:     pt.src.Topic,
		Partition: pt.src.Partition,
		MinBytes:  1,
		MaxBytes:  2 * cfg.MaxMessageBytes,
		MaxWait:   500 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return &blockedError{reason: BlockedStart, err: fmt.Errorf("setting the start offset: %w", err)}
	}
	cctx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommits()
	pt.commitCtx = cctx
	fctx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	msgs := make(chan kafka.Message, 1024)
	pt.helpers.Add(1)
	go func() {
		defer pt.helpers.Done()
		defer close(msgs)
		for {
			var m kafka.Message
			if pt.retry(fctx, "kafka", "fetching from Kafka", func(ctx context.Context) (err error) {
				m, err = r.FetchMessage(ctx)
				return err
			}) != nil {
				return // fetching stopped
			}
			select {
			case msgs <- m:
			case <-fctx.Done():
				return
			}
		}
	}()
	pt.log.Info().Int64("offset", pt.next).Int64("effects_from", pt.effOffset).Msg("partition assigned")

	// Partitions flush out of phase with each other (spread over the
	// interval by a low-discrepancy sequence of the partition number), so
	// that their commits do not queue behind each other in Redis.
	phase := time.Duration(float64(cfg.FlushInterval) * phaseOf(pt.src.Partition))
	select {
	case <-ctx.Done():
		pt.release(r)
		return nil
	case <-time.After(phase):
	}
	flushT := time.NewTicker(cfg.FlushInterval)
	defer flushT.Stop()
	for {
		in := msgs
		if pt.batchFull() {
			// The open batch has reached BatchMaxBytes: flush it now, or,
			// while the previous flush is out, apply nothing more until
			// that one is back (then flushDue sends this one).
			if pt.inflight == nil {
				pt.queued = len(msgs)
				if err := pt.flushNow(ctx); err != nil {
					if ctx.Err() != nil {
						pt.release(r)
						return nil
					}
					return err
				}
				continue
			}
			in = nil
			pt.flushDue = true
		}
		select {
		case <-ctx.Done():
			pt.release(r)
			return nil
		case m, ok := <-in:
			if !ok {
				pt.release(r)
				return nil
			}
			pt.handle(&m)
			// Take what is already fetched before looking at the timer.
		drain:
			for i := 0; i < 4096 && !pt.batchFull(); i++ {
				select {
				case m, ok := <-msgs:
					if !ok {
						break drain
					}
					pt.handle(&m)
				default:
					break drain
				}
			}
		case err := <-pt.inflight:
			pt.inflight = nil
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if pt.flushDue {
				// A tick passed while that flush was out: flush now (an
				// unfinal flush only sends the batch on its way).
				pt.queued = len(msgs)
				if pt.awaitPublishing(ctx) == nil { // else released next
					_ = pt.flush(false)
				}
			}
		case <-flushT.C:
			pt.queued = len(msgs)
			pt.wallClock(ctx, r, pt.queued)
			// While the previous flush is out, keep applying messages
			// and flush once it is back, for up to maxFlushWait; after
			// that, wait for it (this is where a slow or absent Redis or
			// Kafka pauses the partition, and its fetching with it).
			if pt.inflight != nil && cfg.Now().Sub(pt.sentAt) < maxFlushWait {
				pt.flushDue = true
				continue
			}
			if err := pt.flushNow(ctx); err != nil {
				if ctx.Err() != nil {
					pt.release(r)
					return nil
				}
				return err
			}
		}
	}
}

// flushNow waits for the flush in flight, if any, and for the records
// awaiting Kafka to be under their bound, then flushes.
func (pt *partition) flushNow(ctx context.Context) error {
	err := pt.await(ctx)
	if err == nil {
		err = pt.awaitPublishing(ctx)
	}
	if err == nil {
		err = pt.flush(false)
	}
	return err
}

// batchFull reports whether the derived records of the open batch have
// reached Config.BatchMaxBytes.
func (pt *partition) batchFull() bool { return pt.tr.pendingBytes() >= pt.p.cfg.BatchMaxBytes }

// phaseOf spreads partitions over [0, 1) by a low-discrepancy sequence of
// their numbers.
func phaseOf(partition int) float64 {
	return math.Mod(float64(partition)*0.6180339887, 1)
}

// maxFlushWait is how long a partition keeps applying messages while its
// previous flush is still being published and committed; past it, the
// partition waits for that flush before applying more.
const maxFlushWait = time.Second

// restore claims the partition and rebuilds its engine from the checkpoint.
func (pt *partition) restore(ctx context.Context) error {
	cfg := &pt.p.cfg
	var ck Checkpoint
	err := pt.retry(ctx, "redis", "claiming the checkpoint", func(ctx context.Context) error {
		var err error
		ck, err = cfg.Store.Claim(ctx, pt.src, pt.token)
		return err
	})
	if err != nil {
		return err
	}
	pt.next, pt.flushedNext = noOffset, noOffset
	pt.seq = ck.Seq
	pt.journaled = ck.JournalEnd
	pt.tr.rebuild = ck.Rebuild
	if !ck.Found && pt.committed > 0 {
		if cfg.OnLostCheckpoint != LostCheckpointRebuild {
			return &blockedError{reason: BlockedLostCheckpoint, err: fmt.Errorf(
				"group %q has Kafka offset %d committed for %s but Redis holds no checkpoint for it: Redis was emptied (FLUSHALL, or a restart without persistence). Recomputing from the start of the topic would be wrong wherever retention has dropped records, so the partition stays unprocessed: restore Redis from its backup (AOF or RDB), or restart with --on-lost-checkpoint rebuild to recompute from the earliest offset Kafka still holds (its derived records are marked \"rebuild\")",
				cfg.Group, pt.committed, pt.src)}
		}
		pt.tr.rebuild = cfg.Now().UnixMilli()
		pt.rebuildFrom = true
		pt.log.Warn().Int64("committed", pt.committed).Int64("rebuild", pt.tr.rebuild).Msg("Redis holds no checkpoint for a partition the group has consumed: rebuilding it from the earliest offset Kafka holds (--on-lost-checkpoint rebuild)")
	}
	if !ck.Found {
		pt.eng, err = processor.New(cfg.Engine, pt.tr)
		pt.snapNeeded = true
		return err
	}
	if pt.eng, err = processor.RestoreJournaled(cfg.Engine, pt.tr, ck.Snapshot, ck.Journal); err != nil {
		return fmt.Errorf("checkpoint of %s: %w", pt.src, err)
	}
	adState, err := pt.tr.restoreAux(ck.Aux, pt.eng)
	if err == nil {
		err = pt.restoreAdapter(adState)
	}
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", pt.src, err)
	}
	pt.next, pt.flushedNext = ck.SnapOffset, ck.EffOffset
	pt.effOffset = ck.EffOffset
	pt.sharedOff, pt.sharedTicks, pt.replayed = ck.SharedOffset, ck.SharedTicks, 0
	if pt.sharedTicks < 0 { // not recorded: the ticks before the next message
		pt.sharedTicks = 0
		for _, t := range ck.Ticks {
			if t.Offset <= ck.SharedOffset {
				pt.sharedTicks++
			}
		}
	}
	// The last committed batch's records may not have been published.
	out, err := decodeOutbox(ck.Outbox)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", pt.src, err)
	}
	if err := pt.publish(ctx, out, "publishing the checkpoint's outbox again"); err != nil {
		return err
	}
	pt.replay = ck.Ticks
	pt.ticks = append([]Tick(nil), ck.Ticks...)
	// Partitions snapshot out of phase with each other (as they flush),
	// so that a process's snapshots, the largest writes, do not all go
	// out at once: the first comes after a fraction of the interval.
	pt.lastSnap = cfg.Now().Add(-time.Duration(float64(cfg.SnapshotInterval) * phaseOf(pt.src.Partition)))
	pt.refTS, _ = pt.eng.MaxTS()
	pt.refWall = cfg.Now()
	pt.tr.suppress, pt.tr.suppressShared = true, true
	pt.eng.EachAgentState(pt.tr.AgentState)
	for _, id := range ck.Provisional {
		pt.tr.prov[id] = true
	}
	pt.catchUp()
	return nil
}

// catchUp re-applies checkpointed ticks due at pt.next and ends
// suppression once pt.next reaches the checkpointed effects offset.
func (pt *partition) catchUp() {
	for pt.resumeShared(); len(pt.replay) > 0 && pt.replay[0].Offset <= pt.next; pt.resumeShared() {
		pt.replayTick()
	}
	if pt.tr.suppress && pt.next >= pt.effOffset {
		for len(pt.replay) > 0 { // ticks past a gap in the offsets
			pt.replayTick()
			pt.resumeShared()
		}
		pt.sharedTicks = min(pt.sharedTicks, pt.replayed) // all replayed: never wait for more
		pt.resumeShared()
		pt.tr.resume(pt.eng)
		pt.log.Info().Int64("offset", pt.next).Msg("caught up with the checkpoint; effects resume")
	}
}

// replayTick applies the next checkpointed wall-clock tick.
func (pt *partition) replayTick() {
	pt.eng.AdvanceWith(pt.ad, pt.replay[0].Watermark)
	pt.replay = pt.replay[1:]
	pt.replayed++
}

// resumeShared resumes the effects on shared keys once the replay passes
// what the shared log already holds: the messages before sharedOff and the
// first sharedTicks ticks. (Ticks recorded at sharedOff, while the
// partition was idle, may have come before or after the shared flush.)
func (pt *partition) resumeShared() {
	if pt.tr.suppressShared && pt.next >= pt.sharedOff && pt.replayed >= pt.sharedTicks {
		pt.tr.resumeShared(pt.eng)
	}
}

// handle applies one input message.
func (pt *partition) handle(m *kafka.Message) {
	cfg := &pt.p.cfg
	if pt.tr.suppress {
		pt.next = m.Offset
		pt.catchUp()
	}
	if pt.rebuildFrom {
		pt.rebuildFrom = false
		if m.Offset > 0 {
			pt.log.Error().Int64("from", m.Offset).Msg("rebuilding: Kafka no longer holds the offsets before this one (retention): the rebuilt metrics lack that history")
		}
		pt.p.hooks.rebuilt(pt.src, m.Offset)
	}
	outcome := "applied"
	var reason, errMsg string
	if len(m.Value) > cfg.MaxMessageBytes {
		reason = events.ReasonOversized
		errMsg = fmt.Sprintf("message of %d bytes exceeds the %d-byte limit", len(m.Value), cfg.MaxMessageBytes)
	} else {
		var o processor.Outcome
		var err error
		// The record's timestamp is stored with it, so a replay after a
		// crash judges its events against the same arrival time.
		var arrival int64
		if !m.Time.IsZero() && m.Time.UnixMilli() > 0 {
			arrival = m.Time.UnixMilli()
		}
		pt.eng.SetArrival(arrival)
		if pt.ad != nil {
			o, err = pt.eng.TranslateMessage(pt.ad, m.Key, m.Value)
		} else {
			o, err = pt.eng.IngestMessage(pt.dec, m.Key, m.Value)
		}
		if err != nil {
			reason, errMsg = processor.RejectReason(err), err.Error()
		} else {
			outcome = o.String() // applied, duplicate or ignored
		}
	}
	if reason != "" {
		outcome = reason
		pt.tr.addMessage(deadLetter(cfg.Derived.DLQ, m, reason, errMsg, cfg.DLQMaxBytes))
		if pt.log.GetLevel() <= zerolog.DebugLevel {
			pt.rejLog.Debug().Str("reason", reason).Int64("offset", m.Offset).Msg(errMsg)
		}
	}
	if !pt.tr.suppress {
		pt.p.hooks.consumed(pt.src, outcome)
	}
	pt.next = m.Offset + 1
	pt.hwm = m.HighWaterMark
	pt.lastMsg = cfg.Now()
	if ts, ok := pt.eng.MaxTS(); ok && ts > pt.refTS {
		pt.refTS, pt.refWall = ts, pt.lastMsg
	}
	if pt.tr.suppress {
		pt.catchUp()
	}
}

// eventNow is the partition's current event time (Unix ms): its largest ts
// plus the wall-clock time since that event was read. For a live feed this
// is the wall clock (less the delivery delay); for an older log streamed
// now, it keeps that log's own time.
func (pt *partition) eventNow(now time.Time) int64 {
	return pt.refTS + now.Sub(pt.refWall).Milliseconds()
}

// wallClock advances the watermark of a caught-up, idle partition as
// wall-clock time passes, along its event-time clock (eventNow), and logs
// the tick for recovery.
func (pt *partition) wallClock(ctx context.Context, r *kafka.Reader, queued int) {
	cfg := &pt.p.cfg
	now := cfg.Now()
	if pt.eng != nil {
		lag := int64(-1)
		if pt.hwm != noOffset && pt.next != noOffset {
			lag = max(0, pt.hwm-pt.next)
		}
		var wm int64
		if _, ok := pt.eng.MaxTS(); ok {
			wm = pt.eng.Watermark()
		}
		pt.p.hooks.progress(pt.src, Progress{Lag: lag, Watermark: wm, Open: len(pt.tr.open)})
		pt.reportSkipped()
	}
	if !pt.tr.suppress && now.Sub(pt.stuckAt) >= time.Minute {
		pt.stuckAt = now
		pt.reportStuck(now)
	}
	if pt.tr.suppress || queued > 0 || now.Sub(pt.lastMsg) < cfg.IdleAfter {
		return
	}
	if pt.hwm == noOffset || pt.next == noOffset || pt.next < pt.hwm {
		if now.Sub(pt.lastTick) < time.Second {
			return
		}
		// Ask the broker whether we are at the end.
		pt.lastTick = now
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lag, err := r.ReadLag(lctx)
		cancel()
		if err != nil || lag > 0 {
			return
		}
		if pt.next == noOffset {
			return // nothing read yet: nothing to advance
		}
		pt.hwm = pt.next
	}
	if now.Sub(pt.lastTick) < cfg.IdleAfter {
		return
	}
	pt.lastTick = now
	if _, ok := pt.eng.MaxTS(); !ok {
		return // no event yet: no clock
	}
	w := pt.eventNow(now) - cfg.Engine.MaxOutOfOrder.Milliseconds()
	if w <= pt.eng.Watermark() {
		return
	}
	pt.eng.AdvanceWith(pt.ad, w)
	if pt.eng.Watermark() >= w {
		pt.ticks = append(pt.ticks, Tick{Offset: pt.next, Watermark: w})
	}
}

// reportSkipped reports what the adapter skipped since the last report
// (see SkipObserver), and logs each kind the first time it appears.
func (pt *partition) reportSkipped() {
	sk, ok := pt.ad.(events.Skipper)
	if !ok {
		return
	}
	now := sk.Skipped()
	if pt.skipped == nil {
		pt.skipped = map[string]uint64{}
	}
	for kind, n := range now {
		last, seen := pt.skipped[kind]
		if n == last {
			continue
		}
		if !seen {
			pt.log.Info().Str("kind", kind).Msg("the input adapter skips records of this kind (see acw_adapter_skipped_total and the README's platform section)")
		}
		if n < last {
			last = 0 // a new adapter (the partition restarted): it counts afresh
		}
		pt.p.hooks.skipped(pt.src, kind, n-last)
		pt.skipped[kind] = n
	}
}

// reportStuck reports the agents stuck in a call state (see
// Config.StuckAfter), logging each once per stuck state.
func (pt *partition) reportStuck(now time.Time) {
	cfg := &pt.p.cfg
	if _, ok := pt.eng.MaxTS(); !ok {
		return
	}
	before := pt.eventNow(now) - cfg.StuckAfter.Milliseconds()
	byState := map[events.State]int{}
	seen := map[string]int64{}
	pt.eng.StuckAgents(before, func(st *events.AgentState) {
		byState[st.State]++
		seen[st.AgentID] = st.Since
		if pt.stuck[st.AgentID] != st.Since {
			pt.log.Warn().Str("agent", st.AgentID).Str("state", st.State.String()).Str("since", events.FormatTime(st.Since)).
				Str("call", st.CallID).Msg("agent stuck in a call state far longer than any real contact: a record that ends it was probably lost")
		}
	})
	pt.stuck = seen
	pt.p.hooks.stuck(pt.src, byState)
}

// flush prepares the next batch from what was applied since the last one
// and sends it on its way: its derived records are published, then its
// effects are committed with the checkpoint, while the partition goes on
// applying messages. final is the flush of a partition being released: it
// is committed before flush returns. Bookkeeping assumes the batch will
// be committed: a batch that is not makes the partition stop (fenced, or
// its context ended), and the next owner resumes from the last checkpoint.
func (pt *partition) flush(final bool) error {
	cfg := &pt.p.cfg
	now := cfg.Now()
	// Caught up: everything fetched is applied and the last fetch saw no
	// more. (After a pause, such as a Redis outage, fetched messages are
	// waiting, and the clock must not run ahead of them.)
	caughtUp := pt.hwm != noOffset && pt.next >= pt.hwm && pt.queued == 0
	if !pt.tr.suppress && caughtUp {
		pt.tr.checkOverruns(pt.eventNow(now), pt.eng.PendingEnds)
	}
	j := &job{msgs: pt.tr.takeMessages()}
	snap := false
	if !pt.tr.suppress && pt.next != noOffset { // else the store is ahead of us, or nothing was read
		b := &Batch{Source: pt.src, Token: pt.token, Seq: pt.seq + 1, Rebuild: pt.tr.rebuild, Offset: pt.next, WallMS: now.UnixMilli()}
		// A snapshot goes with a shared flush, so that a replay from it
		// regenerates exactly the shared effects after SharedOffset.
		snap = final || pt.snapNeeded || now.Sub(pt.lastSnap) >= cfg.SnapshotInterval || len(pt.ticks) > 1000
		shared := snap || now.Truncate(cfg.SharedFlushInterval) != pt.lastShared.Truncate(cfg.SharedFlushInterval)
		pt.tr.collect(pt.eng, b, shared)
		b.Provisional = pt.tr.provisional()
		if pt.next != pt.flushedNext || !b.Empty() || len(pt.ticks) > 0 || pt.snapNeeded {
			j.b = b
		}
	}
	if b := j.b; b != nil {
		if b.Shared {
			pt.lastShared = now
		}
		// The dedup memory goes to its journal once, in the flush after
		// the events were accepted; snapshots refer to it.
		if end := pt.eng.DedupEnd(); end > pt.journaled {
			b.Dedup, b.DedupEnd = pt.eng.AppendDedupJournal(nil, pt.journaled), end
			pt.journaled = end
		}
		if snap {
			pt.snapIdx ^= 1
			pt.snapBufs[pt.snapIdx] = pt.eng.AppendSnapshotJournaled(pt.snapBufs[pt.snapIdx][:0])
			b.Snapshot = pt.snapBufs[pt.snapIdx]
			b.DedupStart = pt.eng.DedupStart()
			var adState []byte
			if st, ok := pt.ad.(events.Stateful); ok {
				adState = st.AppendState(nil)
			}
			b.Aux = pt.tr.appendAux(nil, adState)
			b.SnapOffset = pt.next
			pt.ticks = pt.ticks[:0]
			pt.lastSnap = now
			pt.snapNeeded = false
		} else {
			b.Ticks = slices.Clone(pt.ticks)
		}
		pt.flushedNext, pt.seq = pt.next, b.Seq
		if final || now.Sub(pt.lastCommit) >= time.Second {
			pt.lastCommit = now
			j.kafkaCommit = true
		}
	}
	if j.b == nil && len(j.msgs) == 0 {
		return nil
	}
	pt.pruneUnpublished()
	if j.b != nil {
		out := make([][]kafka.Message, 0, len(pt.unpublished)+1)
		for _, u := range pt.unpublished {
			out = append(out, u.msgs)
		}
		j.b.Outbox = appendOutbox(nil, append(out, j.msgs)...)
	}
	j.published = make(chan struct{})
	for i := range j.msgs {
		j.size += len(j.msgs[i].Key) + len(j.msgs[i].Value)
	}
	if j.b != nil {
		j.b.RecordBytes = j.size
	}
	if n := len(pt.unpublished); n > 0 {
		j.prev = pt.unpublished[n-1]
	}
	pt.unpublished = append(pt.unpublished, j)
	if final {
		return pt.send(pt.commitCtx, j, nil)
	}
	done := make(chan error, 1)
	pt.inflight, pt.sentAt, pt.flushDue = done, now, false
	ctx := pt.commitCtx
	pt.helpers.Add(1)
	go func() {
		defer pt.helpers.Done()
		_ = pt.send(ctx, j, done)
	}()
	return nil
}

// pruneUnpublished drops the jobs whose records are published from the
// front of pt.unpublished.
func (pt *partition) pruneUnpublished() {
	i := 0
	for ; i < len(pt.unpublished); i++ {
		u := pt.unpublished[i]
		select {
		case <-u.published:
			if u.pubErr == nil {
				continue
			}
		default:
		}
		break
	}
	if i > 0 {
		n := copy(pt.unpublished, pt.unpublished[i:])
		clear(pt.unpublished[n:])
		pt.unpublished = pt.unpublished[:n]
	}
}

// awaitPublished waits until j's records are published (and so all
// earlier jobs' records) and returns why they are not, if they are not.
func (pt *partition) awaitPublished(ctx context.Context, j *job) error {
	select {
	case <-j.published:
		return j.pubErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitPublishing waits, while the records awaiting Kafka reach
// maxUnpublished flushes or maxUnpublishedBytes, for the oldest of them
// to be published.
func (pt *partition) awaitPublishing(ctx context.Context) error {
	for {
		pt.pruneUnpublished()
		size := 0
		for _, u := range pt.unpublished {
			size += u.size
		}
		if len(pt.unpublished) < maxUnpublished && size < maxUnpublishedBytes {
			return nil
		}
		if err := pt.awaitPublished(ctx, pt.unpublished[0]); err != nil {
			return err
		}
	}
}

// await waits for the flush in flight, if any, and returns its error.
func (pt *partition) await(ctx context.Context) error {
	if pt.inflight == nil {
		return nil
	}
	select {
	case err := <-pt.inflight:
		pt.inflight = nil
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send commits j's batch, retrying until it succeeds, ctx ends or the
// partition is fenced, and reports the outcome on committed (if not nil);
// then, once the previous job's records are published, it publishes j's,
// retrying until Kafka acknowledges them or ctx ends, and closes
// j.published. The batch's outbox carries the records, so what is
// committed but not yet published is published again by the next owner;
// the store shows the batch's effects without waiting for Kafka, and the
// next commit does not wait for this publication.
func (pt *partition) send(ctx context.Context, j *job, committed chan<- error) error {
	prev := j.prev
	j.prev = nil // a chain of jobs would keep every earlier flush's records
	err := pt.commit(ctx, j)
	if committed != nil {
		committed <- err
	}
	if err == nil && prev != nil {
		err = pt.awaitPublished(ctx, prev)
	}
	if err == nil {
		err = pt.publish(ctx, j.msgs, "publishing derived records")
	}
	if err == nil && j.kafkaCommit {
		if err := pt.p.commitOffset(pt.gen, pt.src, j.b.Offset); err != nil {
			pt.log.Debug().Err(err).Msg("committing the offset to Kafka (informational; the Redis checkpoint is authoritative)")
		}
	}
	j.pubErr = err
	close(j.published)
	return err
}

// commit commits j's batch, if it has one.
func (pt *partition) commit(ctx context.Context, j *job) error {
	cfg := &pt.p.cfg
	b := j.b
	if b == nil {
		return nil
	}
	start := time.Now()
	if err := pt.retry(ctx, "redis", "writing to Redis", func(ctx context.Context) error {
		return cfg.Store.Commit(ctx, b)
	}); err != nil {
		return err
	}
	done := time.Now()
	pt.p.hooks.flushed(pt.src, b, done.Sub(start), done)
	return nil
}

// publish writes msgs to Kafka, retrying until they are acknowledged or
// ctx ends.
func (pt *partition) publish(ctx context.Context, msgs []kafka.Message, what string) error {
	if len(msgs) == 0 {
		return nil
	}
	return pt.retry(ctx, "kafka", what, func(ctx context.Context) error {
		return pt.p.cfg.Publisher.Publish(ctx, msgs)
	})
}

// release flushes and checkpoints a partition being taken away.
func (pt *partition) release(r *kafka.Reader) {
	ctx, cancel := context.WithTimeout(pt.commitCtx, pt.p.cfg.FinalFlushTimeout)
	defer cancel()
	pt.commitCtx = ctx
	err := pt.await(ctx)
	if err == nil {
		err = pt.flush(true)
	}
	if n := len(pt.unpublished); err == nil && n > 0 { // a final flush with nothing to send
		err = pt.awaitPublished(ctx, pt.unpublished[n-1])
	}
	if err != nil {
		pt.log.Warn().Err(err).Msg("final flush failed; the next owner resumes from the last checkpoint")
		pt.p.unflushed.Add(1)
		return
	}
	pt.log.Info().Int64("offset", pt.next).Msg("partition released after its final checkpoint")
}

// retry calls fn until it succeeds, ctx ends or the partition is fenced,
// with capped exponential backoff, logging once per failure run and
// counting every failure under op ("redis" or "kafka") for the Observer.
func (pt *partition) retry(ctx context.Context, op, what string, fn func(context.Context) error) error {
	b := NewBackoff(pt.p.cfg.MaxBackoff)
	failing, refused := false, false
	for {
		err := fn(ctx)
		if err == nil {
			if failing {
				pt.log.Info().Msg(what + ": recovered")
			}
			return nil
		}
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrCheckpointLost) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopped, not failed
		}
		pt.p.hooks.failed(pt.src, op, err)
		if errors.Is(err, ErrRefused) && !refused {
			refused = true
			pt.log.Error().Err(err).Msg(what + ": Kafka refuses the records, and retrying alone will not fix that; the partition waits, reported on /readyz, and retries until the cause is fixed (a topic's max.message.bytes, an ACL, the topic itself)")
			pt.p.hooks.blocked(pt.src, BlockedPublish, err)
			defer pt.p.hooks.unblocked(pt.src)
		}
		if !failing {
			failing = true
			pt.log.Warn().Err(err).Msg(what + " failed; pausing the partition and retrying")
		}
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// restoreAdapter gives a stateful adapter the state its checkpoint holds
// (none: the checkpoint was written before the adapter kept state, or
// with another input format; the adapter starts empty).
func (pt *partition) restoreAdapter(state []byte) error {
	st, ok := pt.ad.(events.Stateful)
	if !ok || state == nil {
		return nil
	}
	if err := st.RestoreState(state); err != nil {
		return fmt.Errorf("adapter state: %w", err)
	}
	return nil
}
