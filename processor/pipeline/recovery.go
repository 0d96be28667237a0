package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

// phase is where a partition stands in one ownership. It moves forward
// only: claiming → replaying → replayingAgents → live → releasing. A
// partition without a checkpoint goes from claiming straight to live; one
// taken away before it is live is released from where it stands, with
// nothing of its own to commit.
type phase uint8

const (
	// claiming: the checkpoint is being claimed and the engine restored
	// from it.
	claiming phase = iota
	// replaying: re-reading offsets whose effects the store already
	// holds; only derived records (at-least-once) are produced.
	replaying
	// replayingAgents: the shared keys' effects have resumed (the shared
	// log is written less often, so it ends sooner in a replay); the
	// agent keys' not yet.
	replayingAgents
	// live: every effect is the partition's own, committed by its
	// flushes.
	live
	// releasing: the partition is being taken away; its final flush is
	// under way and no message is applied any more.
	releasing
)

var phaseNames = [...]string{"claiming", "replaying", "replaying-agents", "live", "releasing"}

func (p phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// recovery takes a restored partition from its checkpoint back to live:
// it re-applies the checkpointed wall-clock ticks at the offsets they were
// taken at, and resumes the store effects, the shared keys' first, as the
// re-read passes what the store holds.
type recovery struct {
	phase phase
	// committed is the group's committed Kafka offset of the partition at
	// assignment (negative: none): with no checkpoint, it tells a new
	// partition from one whose checkpoint Redis lost.
	committed int64
	// rebuilding: the partition is being rebuilt after its checkpoint was
	// lost, and its first message is still to come.
	rebuilding bool
	replay     []Tick // checkpointed ticks still to re-apply
	effOffset  int64  // the store holds the effects of the offsets below this
	sharedOff  int64  // and on shared keys, of those below this
	// sharedTicks is how many of the replayed ticks the shared log holds
	// the effects of; replayed counts the ticks replayed so far.
	sharedTicks, replayed int
}

// replayingAt reports whether the partition, about to read offset next,
// is still replaying.
func (r *recovery) replayingAt() bool { return r.phase == replaying || r.phase == replayingAgents }

// advance re-applies the checkpointed ticks due once next is the next
// offset to read, resumes the shared keys' effects and then every effect
// as next passes what the store holds, and reports whether the partition
// went live.
func (r *recovery) advance(next int64, eng *processor.Engine, ad events.Adapter, tr *tracker) bool {
	if !r.replayingAt() {
		return false
	}
	for r.resumeShared(next, eng, tr); len(r.replay) > 0 && r.replay[0].Offset <= next; r.resumeShared(next, eng, tr) {
		r.replayTick(eng, ad)
	}
	if next < r.effOffset {
		return false
	}
	for len(r.replay) > 0 { // ticks past a gap in the offsets
		r.replayTick(eng, ad)
		r.resumeShared(next, eng, tr)
	}
	r.sharedTicks = min(r.sharedTicks, r.replayed) // all replayed: never wait for more
	r.resumeShared(next, eng, tr)
	tr.resume(eng)
	r.phase = live
	return true
}

// replayTick applies the next checkpointed wall-clock tick.
func (r *recovery) replayTick(eng *processor.Engine, ad events.Adapter) {
	eng.AdvanceWith(ad, r.replay[0].Watermark)
	r.replay = r.replay[1:]
	r.replayed++
}

// resumeShared resumes the effects on shared keys once the replay passes
// what the shared log already holds: the messages before sharedOff and the
// first sharedTicks ticks. (Ticks recorded at sharedOff, while the
// partition was idle, may have come before or after the shared flush.)
func (r *recovery) resumeShared(next int64, eng *processor.Engine, tr *tracker) {
	if r.phase == replaying && next >= r.sharedOff && r.replayed >= r.sharedTicks {
		tr.resumeShared(eng)
		r.phase = replayingAgents
	}
}

// restore claims the partition and rebuilds its engine, tracker and
// adapter from the checkpoint (the claiming phase); it leaves the
// partition replaying, or live when there is nothing to replay.
func (pt *partition) restore(ctx context.Context) error {
	cfg := &pt.p.cfg
	var ck Checkpoint
	err := pt.retry.do(ctx, "redis", "claiming the checkpoint", func(ctx context.Context) error {
		var err error
		ck, err = cfg.Store.Claim(ctx, pt.src, pt.token)
		return err
	})
	if err != nil {
		return err
	}
	pt.pos.next = noOffset
	pt.batch.restart(ck.Seq, ck.JournalEnd, noOffset)
	pt.tr.records.rebuild = ck.Rebuild
	if !ck.Found && pt.rec.committed > 0 {
		if cfg.OnLostCheckpoint != LostCheckpointRebuild {
			return &blockedError{reason: BlockedLostCheckpoint, err: fmt.Errorf(
				"group %q has Kafka offset %d committed for %s but Redis holds no checkpoint for it: Redis was emptied (FLUSHALL, or a restart without persistence). Recomputing from the start of the topic would be wrong wherever retention has dropped records, so the partition stays unprocessed: restore Redis from its backup (AOF or RDB), or restart with --on-lost-checkpoint rebuild to recompute from the earliest offset Kafka still holds (its derived records are marked \"rebuild\")",
				cfg.Group, pt.rec.committed, pt.src)}
		}
		pt.tr.records.rebuild = cfg.Now().UnixMilli()
		pt.rec.rebuilding = true
		pt.log.Warn().Int64("committed", pt.rec.committed).Int64("rebuild", pt.tr.records.rebuild).Msg("Redis holds no checkpoint for a partition the group has consumed: rebuilding it from the earliest offset Kafka holds (--on-lost-checkpoint rebuild)")
	}
	if !ck.Found {
		pt.eng, err = processor.New(cfg.Engine, pt.tr)
		pt.batch.snapNeeded = true
		pt.rec.phase = live
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
	pt.pos.next = ck.SnapOffset
	pt.batch.flushedNext = ck.EffOffset
	pt.rec.effOffset = ck.EffOffset
	pt.rec.sharedOff, pt.rec.sharedTicks, pt.rec.replayed = ck.SharedOffset, ck.SharedTicks, 0
	if pt.rec.sharedTicks < 0 { // not recorded: the ticks before the next message
		pt.rec.sharedTicks = 0
		for _, t := range ck.Ticks {
			if t.Offset <= ck.SharedOffset {
				pt.rec.sharedTicks++
			}
		}
	}
	// The last committed batch's records may not have been published.
	out, err := decodeOutbox(ck.Outbox)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", pt.src, err)
	}
	if err := pt.out.publish(ctx, out, "publishing the checkpoint's outbox again"); err != nil {
		return err
	}
	pt.rec.replay = ck.Ticks
	pt.batch.ticks = append(pt.batch.ticks[:0], ck.Ticks...)
	// Partitions snapshot out of phase with each other (as they flush),
	// so that a process's snapshots, the largest writes, do not all go
	// out at once: the first comes after a fraction of the interval.
	pt.batch.lastSnap = cfg.Now().Add(-time.Duration(float64(cfg.SnapshotInterval) * phaseOf(pt.src.Partition)))
	ts, _ := pt.eng.MaxTS()
	pt.clock.set(ts, cfg.Now())
	pt.tr.suppressAll()
	pt.rec.phase = replaying
	pt.eng.EachAgentState(pt.tr.AgentState)
	for _, id := range ck.Provisional {
		pt.tr.overruns.prov[id] = true
	}
	pt.catchUp()
	return nil
}

// catchUp moves the recovery on to the next offset to read.
func (pt *partition) catchUp() {
	if pt.rec.advance(pt.pos.next, pt.eng, pt.in.ad, pt.tr) {
		pt.log.Info().Int64("offset", pt.pos.next).Msg("caught up with the checkpoint; effects resume")
	}
}

// restoreAdapter gives a stateful adapter the state its checkpoint holds
// (none: the checkpoint was written before the adapter kept state, or
// with another input format; the adapter starts empty).
func (pt *partition) restoreAdapter(state []byte) error {
	st, ok := pt.in.ad.(events.Stateful)
	if !ok || state == nil {
		return nil
	}
	if err := st.RestoreState(state); err != nil {
		return fmt.Errorf("adapter state: %w", err)
	}
	return nil
}
