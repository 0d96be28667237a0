package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/acwstream/acwstream/events"
	"github.com/segmentio/kafka-go"
)

// Source is one input partition.
type Source struct {
	Topic     string
	Partition int
}

func (s Source) String() string { return fmt.Sprintf("%s/%d", s.Topic, s.Partition) }

// Tick records a wall-clock watermark advance of an idle partition:
// AdvanceWatermark(Watermark) was called when the next offset to read was
// Offset. Ticks are logged with the checkpoint so that a recovering
// partition replays them at the same point and reproduces its results.
type Tick struct {
	Offset    int64
	Watermark int64 // Unix ms
}

// Checkpoint is what a Store holds for one partition.
type Checkpoint struct {
	Found     bool
	EffOffset int64 // the effects of every offset < EffOffset are in the store
	// SharedOffset: the effects on shared (team, queue, center) keys of
	// every offset < SharedOffset are in the store (SnapOffset ≤
	// SharedOffset ≤ EffOffset).
	SharedOffset int64
	// SharedTicks: the shared effects of the first SharedTicks of Ticks
	// are in the store too (ticks recorded at SharedOffset, while the
	// partition was idle, may come before or after the shared batch);
	// -1 when not recorded: those at offsets ≤ SharedOffset. A store
	// records len(Ticks) of each Shared batch.
	SharedTicks int
	SnapOffset  int64  // Snapshot and Aux reflect every offset < SnapOffset
	Snapshot    []byte // processor engine snapshot
	Aux         []byte // the pipeline's own state (see tracker.appendAux)
	Ticks       []Tick // wall-clock ticks since SnapOffset, in order
	// Provisional lists the open wrap-ups (segment ids) that got a
	// wall-clock overrun alert before the engine raised one.
	Provisional []string
	// Seq numbers the partition's commits: the last one applied.
	Seq int64
	// Rebuild is nonzero for a partition recomputed after its checkpoint
	// was lost (Config.OnLostCheckpoint "rebuild"): the rebuild's mark,
	// carried by every derived record it publishes.
	Rebuild int64
	// Outbox is the last committed batch's outbox (Batch.Outbox): every
	// derived record not known to be published; a restore publishes them
	// again.
	Outbox []byte
	// Journal is the engine's dedup journal (Batch.Dedup chunks, in
	// order) as kept for Snapshot; JournalEnd is the end index of its
	// last chunk (0: none).
	Journal    [][]byte
	JournalEnd uint64
}

// View is one of the shapes a scope/key's counters are kept in.
type View uint8

const (
	ViewInterval View = iota // one tumbling window [Start, End)
	ViewDay                  // one calendar day in the configured zone [Start, End)
	ViewLast60m              // the last 60 minutes: the open window and the closed ones before it
)

// CounterDelta adds Delta to one view of one scope/key (or, with Full,
// sets it). Every base field is an increment (negative to retract) except
// ACWMaxMS, a candidate maximum (0: unchanged). For ViewLast60m the
// writer recomputes ACWMaxMS from the interval views of the windows it
// spans. Batches carry only Full ones (agent views); the shared writer's
// come from SumShared.
type CounterDelta struct {
	Scope events.Scope
	Key   string
	View  View
	Start int64  // Unix ms: window start, day start, or (last60m) first window's start
	End   int64  // Unix ms, exclusive
	Day   string // YYYY-MM-DD (ViewDay)
	Delta events.Counters
	// Reasons is the not-ready time by reason, like Delta: an increment
	// per reason, or with Full the whole breakdown (every reason the
	// engine kept; the store writes at most events.MaxReasons of them).
	Reasons map[string]int64
	// Full: Delta is the view's whole value, to be written as is (keys
	// with one writer: no read-modify-write in the store).
	Full bool
	// Prev (with Full) is the value this partition last wrote to the same
	// key during its current ownership; the store then writes only the
	// fields that changed and leaves the key's TTL alone. nil: the whole
	// value, and the TTL, are written. (The tracker drops Prev at least
	// every 10 minutes so that TTLs are refreshed.)
	Prev *events.Counters
	// PrevReasons (with Prev) is the breakdown last written: the store
	// rewrites the reasons only when they differ.
	PrevReasons map[string]int64
	// PrevStart and PrevEnd (with Prev) are the bounds last written: a
	// last-60m view keeps its key as its windows move on.
	PrevStart, PrevEnd int64
}

// AgentWrite is one agent hash update: the agent's latest state and, as
// with CounterDelta.Prev, what this partition last wrote to the hash
// (nil: unknown, write every field).
type AgentWrite struct {
	State events.AgentState
	Prev  *events.AgentState
}

// Batch is one flush of one partition: every store effect since the last
// flush and the checkpoint that goes with them. A Store applies it
// atomically or not at all. (A plain record, one field per part of the
// commit: the checkpoint's fields, the effects, the shared log entry.)
type Batch struct {
	Source Source
	Token  string // the owner's fencing token from Claim
	// Seq is this commit's number: the checkpoint's Seq plus one. A store
	// that already holds Seq (the retry of a commit whose reply was lost)
	// reports success without applying it again.
	Seq      int64
	Rebuild  int64  // the checkpoint's Rebuild mark (0: none)
	Offset   int64  // new EffOffset
	Snapshot []byte // nil: keep the stored snapshot, aux and snap offset
	Aux      []byte
	// SnapOffset is the offset Snapshot reflects (only with Snapshot).
	SnapOffset int64
	// Dedup (nil: none) is a chunk of the engine's dedup journal
	// (processor.Engine.AppendDedupJournal) ending at index DedupEnd,
	// appended to the partition's journal. With Snapshot (a journaled
	// one), DedupStart is the first index it needs: the store drops the
	// chunks that end at or before it.
	Dedup      []byte
	DedupEnd   uint64
	DedupStart uint64
	Ticks      []Tick // every tick since the (new or kept) snapshot
	// Shared: the batch carries every effect on shared keys up to Offset,
	// which becomes the checkpoint's SharedOffset. Other batches carry
	// none: a partition logs its shared deltas less often than it writes
	// its own agent keys.
	Shared bool
	// SharedLog (with Shared; nil when nothing changed) is the
	// partition's shared deltas since its last shared batch, encoded. A
	// SharedStore appends it to the partition's shared log, which the
	// shared writer applies (see SharedStore).
	SharedLog []byte
	// SharedWindows (with SharedLog) names, per window, the shared
	// scope/keys ("scope:key") SharedLog has deltas of: the store keeps
	// them until the shared writer has published the window's final
	// records (see SharedStore.PendingWindows).
	SharedWindows []SharedWindow
	// Provisional replaces the checkpoint's list of provisionally
	// alerted open wrap-ups.
	Provisional []string
	// Counters are the agent views to write (whole values).
	Counters []CounterDelta
	Agents   []AgentWrite // latest state of each agent changed, by agent id
	// Forgotten lists the agents the engine forgot since the last flush
	// (idle for the agent idle timeout), by id: the store drops them from
	// its set of agents and lets their state expire.
	Forgotten []string
	Alerts    []events.Alert
	WallMS    int64 // wall clock at the flush (Unix ms)
	// Outbox is the batch's derived records, preceded by earlier batches'
	// records not yet acknowledged by Kafka, encoded; the store keeps it in
	// the checkpoint in place of the previous batch's (nil clears it).
	// They are published after the commit, in batch order.
	Outbox []byte
	// RecordBytes is the size of this flush's own derived records (keys
	// and values; in Outbox after the earlier ones): at most
	// Config.BatchMaxBytes plus the records of its last message. For
	// metrics.
	RecordBytes int
}

// SharedWindow names the shared scope/keys ("scope:key") of one window
// (Start, Unix ms) that a shared log entry changes.
type SharedWindow struct {
	Start int64
	Keys  []string
}

// Empty reports whether the batch changes nothing but the checkpoint.
func (b *Batch) Empty() bool {
	return len(b.Counters) == 0 && len(b.Agents) == 0 && len(b.Alerts) == 0 && len(b.SharedLog) == 0 && len(b.Forgotten) == 0
}

// ErrFenced is returned by Store.Commit when another owner has claimed the
// partition since Claim: the caller must stop processing it.
var ErrFenced = errors.New("partition fenced: claimed by another owner")

// ErrCheckpointLost is returned (wrapped) by Store.Commit when the
// checkpoint it finds is not the one this owner last committed: its
// sequence number went back, or the checkpoint is gone. The store lost
// writes it had acknowledged (a failover to a lagging replica, a restart
// from an older snapshot, a FLUSHALL). Effects and checkpoint roll back
// together, so the partition recovers exactly by restoring from what the
// store holds now and re-reading from its offset.
var ErrCheckpointLost = errors.New("checkpoint lost: the store no longer holds the last commit")

// Store keeps the live metrics and each partition's checkpoint.
//
// Package storetest holds the contract's suites (RunStore, RunShared),
// which every store must pass, and an in-memory store that passes them.
type Store interface {
	// Claim makes token the partition's owner (fencing out any earlier
	// owner) and returns its checkpoint. The first commit after a claim
	// that found none carries a snapshot.
	Claim(ctx context.Context, src Source, token string) (Checkpoint, error)
	// Commit applies b atomically, or returns ErrFenced (nothing
	// applied), ErrCheckpointLost (nothing applied; the partition must
	// restore again) or another error (nothing applied; retry). b's byte
	// slices are the partition's again once Commit returns: a store
	// that keeps them keeps copies.
	Commit(ctx context.Context, b *Batch) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
}

// ReleasingStore is a Store that holds something per partition (a
// connection, say): a partition calls Release when it stops, however it
// stops (released after its final flush, fenced, or failed).
type ReleasingStore interface {
	Release(src Source)
}

// ErrRefused marks (wrapped) a Publisher error that retrying alone does
// not fix: the broker refuses the records (too large for the topic, no
// authorization for it, the topic cannot exist). The partition keeps
// retrying, so nothing is lost once the cause is fixed, but reports itself
// blocked (BlockObserver, /readyz) with the error until then.
var ErrRefused = errors.New("refused by the broker")

// Publisher writes derived messages to Kafka with at-least-once delivery.
type Publisher interface {
	// Publish returns once every message is acknowledged, or an error
	// (some may have been written; the caller retries them all).
	Publish(ctx context.Context, msgs []kafka.Message) error
}
