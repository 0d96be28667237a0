package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// partition processes one assigned input partition for one generation of
// the group: it applies the partition's messages to its own engine and
// runs the loop that ties its parts together. Each part has one job:
//   - in applies messages to the engine (decoder or adapter, dead letters);
//   - tr turns the engine's output into derived records and store effects;
//   - pos is where the partition stands in its input;
//   - clock is its event time between events;
//   - rec takes a restored partition from its checkpoint back to live;
//   - batch decides what each flush carries, out sends it (commit, then
//     publish) and bounds what is in flight;
//   - watch reports stuck agents and what the adapter skips;
//   - retry retries calls to Redis and Kafka.
type partition struct {
	p     *Pipeline
	gen   *kafka.Generation
	src   Source
	log   zerolog.Logger
	token string // fences this ownership's commits against a later owner's
	eng   *processor.Engine
	in    input
	tr    *tracker
	pos   position
	clock eventClock
	rec   recovery
	batch batcher
	out   sender
	watch watcher
	retry retrier
}

// position is where a partition stands in its input.
type position struct {
	next   int64 // next offset to read (noOffset: not known yet)
	hwm    int64 // high watermark as of the last fetch (noOffset: unknown)
	queued int   // fetched messages waiting, as of the last timer tick
	// lastMsg is when the last message was applied, lastTick when the
	// broker was last asked for the lag or the idle clock last ticked.
	lastMsg, lastTick time.Time
}

// caughtUp reports whether everything fetched is applied and the last
// fetch saw no more. (After a pause, such as a Redis outage, fetched
// messages are waiting, and the clock must not run ahead of them.)
func (p *position) caughtUp() bool { return p.hwm != noOffset && p.next >= p.hwm && p.queued == 0 }

// lag is how many messages the partition is behind the high watermark (-1:
// unknown).
func (p *position) lag() int64 {
	if p.hwm == noOffset || p.next == noOffset {
		return -1
	}
	return max(0, p.hwm-p.next)
}

const noOffset = -1

// newPartition prepares src's processing for generation gen; committed is
// the group's committed Kafka offset of src (negative: none).
func newPartition(p *Pipeline, gen *kafka.Generation, src Source, committed int64, log zerolog.Logger) *partition {
	cfg := &p.cfg
	pt := &partition{p: p, gen: gen, src: src, log: log,
		in:    newInput(cfg, log),
		tr:    newTracker(cfg.Derived, cfg.Engine.Window, cfg.Location),
		pos:   position{next: noOffset, hwm: noOffset},
		rec:   recovery{phase: claiming, committed: committed},
		batch: batcher{flushedNext: noOffset},
		watch: watcher{src: src, log: log, hooks: p.hooks, stuckAfter: cfg.StuckAfter},
		retry: retrier{src: src, log: log, hooks: p.hooks, maxBackoff: cfg.MaxBackoff},
	}
	pt.tr.hooks, pt.tr.src = p.hooks, src
	pt.out = sender{src: src, log: log, store: cfg.Store, pub: cfg.Publisher, hooks: p.hooks, retry: &pt.retry, now: cfg.Now,
		commitOffset: func(next int64) error { return p.commitOffset(gen, src, next) }}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	genID := 0
	if gen != nil {
		genID = int(gen.ID)
	}
	pt.token = p.instance + "/" + strconv.Itoa(genID) + "/" + hex.EncodeToString(tok[:])
	return pt
}

// run processes the partition until ctx ends (it then releases it:
// final flush and checkpoint, and returns nil) or it cannot go on: it
// returns ErrFenced, ErrCheckpointLost, a *blockedError, or the error that
// stopped it. Its goroutines (fetch, commit) have ended when it returns,
// so no commit of this ownership can apply after it (and fencing stops
// one that an earlier, hung process still has out).
func (pt *partition) run(ctx context.Context) error {
	cfg := &pt.p.cfg
	if rs, ok := cfg.Store.(ReleasingStore); ok {
		defer rs.Release(pt.src)
	}
	// Runs after the commit context is cancelled (deferred below).
	defer pt.out.join()
	cctx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommits()
	pt.out.ctx = cctx

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
	start := pt.pos.next
	if start == noOffset {
		start = cfg.StartOffset
		if pt.rec.rebuilding {
			start = kafka.FirstOffset
		}
	}
	f := newBatchFetcher(cfg, pt.src, start, pt.log)
	defer f.Close()
	fetching := startFetching(ctx, f, &pt.retry)
	defer fetching.close()
	pt.log.Info().Int64("offset", pt.pos.next).Int64("effects_from", pt.rec.effOffset).Msg("partition assigned")

	// Partitions flush out of phase with each other (spread over the
	// interval by a low-discrepancy sequence of the partition number), so
	// that their commits do not queue behind each other in Redis.
	select {
	case <-ctx.Done():
		pt.release()
		return nil
	case <-time.After(time.Duration(float64(cfg.FlushInterval) * phaseOf(pt.src.Partition))):
	}
	release, err := pt.loop(ctx, f, fetching)
	if release {
		pt.release()
	}
	return err
}

// loop applies the fetched messages and flushes them until ctx ends (it
// then reports that the partition is to be released), or a flush fails.
func (pt *partition) loop(ctx context.Context, f fetcher, fl *fetchLoop) (release bool, err error) {
	l := &loopState{pt: pt, ctx: ctx, f: f, fl: fl, flushT: time.NewTicker(pt.p.cfg.FlushInterval)}
	defer l.flushT.Stop()
	for {
		if l.batch != nil && l.at == len(l.batch) {
			fl.recycle(l.batch)
			l.batch, l.at = nil, 0
		}
		full := pt.batchFull()
		switch {
		case full && pt.out.inflight == nil:
			// The open batch has reached BatchMaxBytes: flush it now.
			pt.pos.queued = l.queued()
			if err := pt.flushNow(ctx); err != nil {
				if end, rel, err := l.stopped(err); end {
					return rel, err
				}
			}
			continue
		case full:
			// While the previous flush is out, apply nothing more until
			// that one is back (then the due flush sends this one).
			pt.out.due = true
		case l.batch != nil:
			// Apply the next messages, unless the timer or the commit
			// came first.
			var end, rel bool
			var err error
			select {
			case <-ctx.Done():
				return true, nil
			case cerr := <-pt.out.inflight:
				end, rel, err = l.committed(cerr)
			case <-l.flushT.C:
				end, rel, err = l.tick()
			default:
				l.at = pt.apply(l.batch, l.at)
			}
			if end {
				return rel, err
			}
			continue
		}
		in := fl.batches
		if l.batch != nil || full {
			in = nil
		}
		var end, rel bool
		select {
		case <-ctx.Done():
			return true, nil
		case b, ok := <-in:
			if !ok {
				return true, nil // fetching stopped: ctx ended
			}
			l.batch, l.at = b, pt.apply(b, 0)
		case cerr := <-pt.out.inflight:
			end, rel, err = l.committed(cerr)
		case <-l.flushT.C:
			end, rel, err = l.tick()
		}
		if end {
			return rel, err
		}
	}
}

// loopState is what a partition's loop keeps between its steps: the
// fetched batch being applied, from at on, and the flush timer.
type loopState struct {
	pt     *partition
	ctx    context.Context
	f      fetcher
	fl     *fetchLoop
	flushT *time.Ticker
	batch  []kafka.Message
	at     int
}

// queued is positive while fetched messages wait to be applied.
func (l *loopState) queued() int { return len(l.batch) - l.at + len(l.fl.batches) }

// stopped ends the loop after a failed flush: a flush that failed because
// the partition is being taken away releases it.
func (l *loopState) stopped(err error) (end, release bool, _ error) {
	if l.ctx.Err() != nil {
		return true, true, nil
	}
	return true, false, err
}

// committed takes the end of the commit in flight.
func (l *loopState) committed(err error) (end, release bool, _ error) {
	pt := l.pt
	pt.out.inflight = nil
	if err != nil {
		if l.ctx.Err() != nil {
			return true, false, nil // the commit was fenced or lost: nothing to release
		}
		return true, false, err
	}
	if pt.out.due {
		// A tick passed while that flush was out: flush now (an unfinal
		// flush only sends the batch on its way).
		pt.pos.queued = l.queued()
		if pt.out.awaitPublishing(l.ctx) == nil { // else released next
			_ = pt.flush(false)
		}
	}
	return false, false, nil
}

// tick takes the flush timer: the idle clock, then a flush.
func (l *loopState) tick() (end, release bool, _ error) {
	pt := l.pt
	pt.pos.queued = l.queued()
	pt.wallClock(l.ctx, l.f)
	// While the previous flush is out, keep applying messages and flush
	// once it is back, for up to maxFlushWait; after that, wait for it
	// (this is where a slow or absent Redis or Kafka pauses the
	// partition, and its fetching with it).
	if pt.out.inflight != nil && pt.p.cfg.Now().Sub(pt.out.sentAt) < maxFlushWait {
		pt.out.due = true
		return false, false, nil
	}
	if err := pt.flushNow(l.ctx); err != nil {
		return l.stopped(err)
	}
	return false, false, nil
}

// apply applies batch's messages from at on, up to 4096 of them or until
// the open batch is full, and returns where it stopped.
func (pt *partition) apply(batch []kafka.Message, at int) int {
	for stop := min(len(batch), at+4096); at < stop && !pt.batchFull(); at++ {
		pt.handle(&batch[at])
	}
	return at
}

// flushNow waits for the flush in flight, if any, and for the records
// awaiting Kafka to be under their bound, then flushes.
func (pt *partition) flushNow(ctx context.Context) error {
	err := pt.out.await(ctx)
	if err == nil {
		err = pt.out.awaitPublishing(ctx)
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

// handle applies one input message.
func (pt *partition) handle(m *kafka.Message) {
	if pt.rec.replayingAt() {
		pt.pos.next = m.Offset
		pt.catchUp()
	}
	if pt.rec.rebuilding {
		pt.rec.rebuilding = false
		if m.Offset > 0 {
			pt.log.Error().Int64("from", m.Offset).Msg("rebuilding: Kafka no longer holds the offsets before this one (retention): the rebuilt metrics lack that history")
		}
		pt.p.hooks.rebuilt(pt.src, m.Offset)
	}
	outcome, letter, dead := pt.in.apply(pt.eng, m)
	if dead {
		pt.tr.addMessage(letter)
	}
	if pt.rec.phase == live {
		pt.p.hooks.consumed(pt.src, outcome)
	}
	now := pt.p.cfg.Now()
	pt.pos.next, pt.pos.hwm, pt.pos.lastMsg = m.Offset+1, m.HighWaterMark, now
	if ts, ok := pt.eng.MaxTS(); ok {
		pt.clock.observe(ts, now)
	}
	if pt.rec.replayingAt() {
		pt.catchUp()
	}
}

// wallClock advances the watermark of a caught-up, idle partition as
// wall-clock time passes, along its event-time clock, and logs the tick
// for recovery; it also reports the partition's progress.
func (pt *partition) wallClock(ctx context.Context, f fetcher) {
	cfg := &pt.p.cfg
	now := cfg.Now()
	var wm int64
	if _, ok := pt.eng.MaxTS(); ok {
		wm = pt.eng.Watermark()
	}
	pt.p.hooks.progress(pt.src, Progress{Lag: pt.pos.lag(), Watermark: wm, Open: len(pt.tr.overruns.open), At: now})
	pt.watch.reportSkipped(pt.in.ad)
	if pt.rec.phase != live {
		return
	}
	pt.watch.lookForStuck(pt.eng, &pt.clock, now)
	if pt.pos.queued > 0 || now.Sub(pt.pos.lastMsg) < cfg.IdleAfter {
		return
	}
	if pt.pos.hwm == noOffset || pt.pos.next == noOffset || pt.pos.next < pt.pos.hwm {
		if now.Sub(pt.pos.lastTick) < time.Second {
			return
		}
		// Ask the broker whether we are at the end.
		pt.pos.lastTick = now
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		end, err := f.End(lctx)
		cancel()
		if err != nil || pt.pos.next == noOffset || end > pt.pos.next {
			return
		}
		if pt.pos.next == noOffset {
			return // nothing read yet: nothing to advance
		}
		pt.pos.hwm = pt.pos.next
	}
	if now.Sub(pt.pos.lastTick) < cfg.IdleAfter {
		return
	}
	pt.pos.lastTick = now
	if _, ok := pt.eng.MaxTS(); !ok {
		return // no event yet: no clock
	}
	w := pt.clock.at(now) - cfg.Engine.MaxOutOfOrder.Milliseconds()
	if w <= pt.eng.Watermark() {
		return
	}
	pt.eng.AdvanceWith(pt.in.ad, w)
	if pt.eng.Watermark() >= w {
		pt.batch.ticks = append(pt.batch.ticks, Tick{Offset: pt.pos.next, Watermark: w})
	}
}

// release flushes and checkpoints a partition being taken away.
func (pt *partition) release() {
	ctx, cancel := context.WithTimeout(pt.out.ctx, pt.p.cfg.FinalFlushTimeout)
	defer cancel()
	pt.out.ctx = ctx
	if pt.rec.phase == live {
		pt.rec.phase = releasing
	}
	err := pt.out.await(ctx)
	if err == nil {
		err = pt.flush(true)
	}
	if err == nil { // a final flush with nothing to send leaves the earlier ones
		err = pt.out.awaitAll(ctx)
	}
	if err != nil {
		pt.log.Warn().Err(err).Msg("final flush failed; the next owner resumes from the last checkpoint")
		pt.p.unflushed.Add(1)
		return
	}
	pt.log.Info().Int64("offset", pt.pos.next).Msg("partition released after its final checkpoint")
}
