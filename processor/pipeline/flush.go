package pipeline

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// flush prepares the next batch from what was applied since the last one
// and sends it on its way: its derived records are published, then its
// effects are committed with the checkpoint, while the partition goes on
// applying messages. final is the flush of a partition being released: it
// is committed before flush returns. Bookkeeping assumes the batch will
// be committed: a batch that is not makes the partition stop (fenced, or
// its context ended), and the next owner resumes from the last checkpoint.
func (pt *partition) flush(final bool) error {
	now := pt.p.cfg.Now()
	// The wall clock alerts overruns only when the partition is caught up
	// (see position.caughtUp) and its effects are its own.
	effects := pt.rec.phase == live || pt.rec.phase == releasing
	if effects && pt.pos.caughtUp() {
		pt.tr.checkOverruns(pt.clock.at(now), pt.eng.PendingEnds)
	}
	j := &job{msgs: pt.tr.takeMessages()}
	if effects && pt.pos.next != noOffset { // else the store is ahead of us, or nothing was read
		j.b = pt.prepare(now, final)
	}
	if j.b != nil {
		j.kafkaCommit = pt.batch.sent(j.b, now, final)
	}
	if j.b == nil && len(j.msgs) == 0 {
		return nil
	}
	pt.out.enqueue(j)
	if final {
		return pt.out.send(pt.out.ctx, j, nil)
	}
	pt.out.start(j, now)
	return nil
}

// prepare builds the batch of the effects applied since the last flush,
// or returns nil when there is nothing to commit.
func (pt *partition) prepare(now time.Time, final bool) *Batch {
	cfg, bt := &pt.p.cfg, &pt.batch
	b := &Batch{Source: pt.src, Token: pt.token, Seq: bt.seq + 1, Rebuild: pt.tr.records.rebuild, Offset: pt.pos.next, WallMS: now.UnixMilli()}
	// A snapshot goes with a shared flush, so that a replay from it
	// regenerates exactly the shared effects after SharedOffset.
	snap := final || bt.snapNeeded || now.Sub(bt.lastSnap) >= cfg.SnapshotInterval || len(bt.ticks) > 1000
	shared := snap || now.Truncate(cfg.SharedFlushInterval) != bt.lastShared.Truncate(cfg.SharedFlushInterval)
	pt.tr.collect(pt.eng, b, shared)
	b.Provisional = pt.tr.overruns.provisional()
	if pt.pos.next == bt.flushedNext && b.Empty() && len(bt.ticks) == 0 && !bt.snapNeeded {
		return nil
	}
	// The dedup memory goes to its journal once, in the flush after the
	// events were accepted; snapshots refer to it.
	if end := pt.eng.DedupEnd(); end > bt.journaled {
		b.Dedup, b.DedupEnd = pt.eng.AppendDedupJournal(nil, bt.journaled), end
		bt.journaled = end
	}
	if snap {
		bt.snapshot(b, pt.eng, pt.tr, pt.in.ad, now)
	} else {
		b.Ticks = slices.Clone(bt.ticks)
	}
	return b
}

// batcher keeps what a partition's next batch is built against: the
// checkpoint's sequence and offsets as of the last flush, the dedup
// journal's committed end, the wall-clock ticks since the last snapshot,
// and when the last snapshot, shared flush and Kafka offset commit were.
type batcher struct {
	seq         int64 // the last prepared batch's Seq
	flushedNext int64 // next offset as of the last flush
	// journaled is the end index of the engine's dedup journal as
	// committed (or sent): each flush carries the entries after it.
	journaled  uint64
	ticks      []Tick // since the last snapshot
	snapNeeded bool   // the store has no snapshot of this ownership yet
	lastSnap   time.Time
	lastShared time.Time
	lastCommit time.Time // of the offset to Kafka
	snapBufs   [2][]byte // alternate: one may be in flight
	snapIdx    int
}

// restart starts a new ownership from a claimed checkpoint.
func (bt *batcher) restart(seq int64, journaled uint64, flushedNext int64) {
	bt.seq, bt.journaled, bt.flushedNext = seq, journaled, flushedNext
}

// snapshot adds the engine's snapshot, with the tracker's and the
// adapter's state, to b: the ticks before it are no longer needed.
func (bt *batcher) snapshot(b *Batch, eng *processor.Engine, tr *tracker, ad events.Adapter, now time.Time) {
	bt.snapIdx ^= 1
	bt.snapBufs[bt.snapIdx] = eng.AppendSnapshotJournaled(bt.snapBufs[bt.snapIdx][:0])
	b.Snapshot = bt.snapBufs[bt.snapIdx]
	b.DedupStart = eng.DedupStart()
	var adState []byte
	if st, ok := ad.(events.Stateful); ok {
		adState = st.AppendState(nil)
	}
	b.Aux = tr.appendAux(nil, adState)
	b.SnapOffset = b.Offset
	bt.ticks = bt.ticks[:0]
	bt.lastSnap, bt.snapNeeded = now, false
}

// sent records b as sent and reports whether its offset is also to be
// committed to Kafka (informational, at most once a second).
func (bt *batcher) sent(b *Batch, now time.Time, final bool) (kafkaCommit bool) {
	if b.Shared {
		bt.lastShared = now
	}
	bt.flushedNext, bt.seq = b.Offset, b.Seq
	if final || now.Sub(bt.lastCommit) >= time.Second {
		bt.lastCommit = now
		return true
	}
	return false
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

// sender sends a partition's jobs on their way: it commits each job's
// batch to the store, then publishes its records once the previous job's
// are published. One commit is in flight while the next batch is being
// built; the records awaiting Kafka's acknowledgement are bounded by
// awaitPublishing. Its goroutines are joined before the partition's run
// returns, so no commit of this ownership arrives after it.
type sender struct {
	src          Source
	log          zerolog.Logger
	store        Store
	pub          Publisher
	hooks        *hooks
	retry        *retrier
	now          func() time.Time       // Config.Now
	commitOffset func(next int64) error // to Kafka, informational
	// ctx bounds commits and publications; it outlives a revocation so
	// that the final flush can wait for them, and ends with the
	// partition's run.
	ctx context.Context
	// inflight reports the end of the commit in flight (nil: none);
	// sentAt is when it was sent, and due records that a flush came due
	// while it was out.
	inflight chan error
	sentAt   time.Time
	due      bool
	// unpublished lists the jobs sent whose records Kafka may not have
	// acknowledged yet, oldest first (pruned at each flush). Publication
	// follows the commits in order but does not hold them up: each
	// batch's outbox carries these jobs' records too, so that the last
	// committed outbox always holds every record not known to be
	// published.
	unpublished []*job
	wg          sync.WaitGroup
	// outbox is the last batch's Batch.Outbox, reused by the next: a
	// batch is enqueued only once the commit before it is done (the
	// store copies what it keeps), and a backlog flush's outbox is
	// megabytes.
	outbox []byte
}

// enqueue adds j behind the jobs whose records await Kafka, and gives its
// batch an outbox of all their records.
func (s *sender) enqueue(j *job) {
	s.prune()
	if j.b != nil {
		out := make([][]kafka.Message, 0, len(s.unpublished)+1)
		for _, u := range s.unpublished {
			out = append(out, u.msgs)
		}
		j.b.Outbox = appendOutbox(s.outbox[:0], append(out, j.msgs)...)
		s.outbox = j.b.Outbox
	}
	j.published = make(chan struct{})
	for i := range j.msgs {
		j.size += len(j.msgs[i].Key) + len(j.msgs[i].Value)
	}
	if j.b != nil {
		j.b.RecordBytes = j.size
	}
	if n := len(s.unpublished); n > 0 {
		j.prev = s.unpublished[n-1]
	}
	s.unpublished = append(s.unpublished, j)
}

// start sends j in its own goroutine; await reports its commit.
func (s *sender) start(j *job, now time.Time) {
	done := make(chan error, 1)
	s.inflight, s.sentAt, s.due = done, now, false
	ctx := s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.send(ctx, j, done)
	}()
}

// join waits for the goroutines start began.
func (s *sender) join() { s.wg.Wait() }

// prune drops the jobs whose records are published from the front of
// s.unpublished.
func (s *sender) prune() {
	i := 0
	for ; i < len(s.unpublished); i++ {
		u := s.unpublished[i]
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
		n := copy(s.unpublished, s.unpublished[i:])
		clear(s.unpublished[n:])
		s.unpublished = s.unpublished[:n]
	}
}

// awaitPublished waits until j's records are published (and so all
// earlier jobs' records) and returns why they are not, if they are not.
func (s *sender) awaitPublished(ctx context.Context, j *job) error {
	select {
	case <-j.published:
		return j.pubErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitAll waits until every job's records are published.
func (s *sender) awaitAll(ctx context.Context) error {
	if n := len(s.unpublished); n > 0 {
		return s.awaitPublished(ctx, s.unpublished[n-1])
	}
	return nil
}

// awaitPublishing waits, while the records awaiting Kafka reach
// maxUnpublished flushes or maxUnpublishedBytes, for the oldest of them
// to be published.
func (s *sender) awaitPublishing(ctx context.Context) error {
	for {
		s.prune()
		size := 0
		for _, u := range s.unpublished {
			size += u.size
		}
		if len(s.unpublished) < maxUnpublished && size < maxUnpublishedBytes {
			return nil
		}
		if err := s.awaitPublished(ctx, s.unpublished[0]); err != nil {
			return err
		}
	}
}

// await waits for the commit in flight, if any, and returns its error.
func (s *sender) await(ctx context.Context) error {
	if s.inflight == nil {
		return nil
	}
	select {
	case err := <-s.inflight:
		s.inflight = nil
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
func (s *sender) send(ctx context.Context, j *job, committed chan<- error) error {
	prev := j.prev
	j.prev = nil // a chain of jobs would keep every earlier flush's records
	err := s.commit(ctx, j)
	if committed != nil {
		committed <- err
	}
	if err == nil && prev != nil {
		err = s.awaitPublished(ctx, prev)
	}
	if err == nil {
		err = s.publish(ctx, j.msgs, "publishing derived records")
	}
	if err == nil && j.kafkaCommit {
		if err := s.commitOffset(j.b.Offset); err != nil {
			s.log.Debug().Err(err).Msg("committing the offset to Kafka (informational; the Redis checkpoint is authoritative)")
		}
	}
	j.pubErr = err
	close(j.published)
	return err
}

// commit commits j's batch, if it has one.
func (s *sender) commit(ctx context.Context, j *job) error {
	b := j.b
	if b == nil {
		return nil
	}
	start := time.Now() // the commit's duration is real time, whatever Config.Now runs at
	if err := s.retry.do(ctx, "redis", "writing to Redis", func(ctx context.Context) error {
		return s.store.Commit(ctx, b)
	}); err != nil {
		return err
	}
	s.hooks.flushed(s.src, b, time.Since(start), s.now())
	return nil
}

// publish writes msgs to Kafka, retrying until they are acknowledged or
// ctx ends.
func (s *sender) publish(ctx context.Context, msgs []kafka.Message, what string) error {
	if len(msgs) == 0 {
		return nil
	}
	return s.retry.do(ctx, "kafka", what, func(ctx context.Context) error {
		return s.pub.Publish(ctx, msgs)
	})
}
