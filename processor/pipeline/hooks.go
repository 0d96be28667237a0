package pipeline

import (
	"time"

	"github.com/acwstream/acwstream/events"
)

// hooks are Config.Observer's callbacks, resolved once by New: each is a
// no-op when there is no observer or it lacks that optional extension
// (BlockObserver, StuckObserver, SkipObserver), so the call sites neither
// check for nil nor assert types. (One field per callback: sixteen.)
type hooks struct {
	consumed      func(Source, string)
	segment       func(Source, *events.Segment)
	alert         func(Source, *events.Alert)
	flushed       func(Source, *Batch, time.Duration, time.Time)
	failed        func(Source, string, error)
	progress      func(Source, Progress)
	assigned      func(Source, bool)
	rebalanced    func(int32, int)
	sharedLeader  func(bool)
	sharedApplied func(int, int, time.Duration)
	blocked       func(Source, string, error)
	unblocked     func(Source)
	recovered     func(Source)
	rebuilt       func(Source, int64)
	stuck         func(Source, map[events.State]int)
	skipped       func(Source, string, uint64)
}

func resolveHooks(o Observer) *hooks {
	h := &hooks{
		consumed:      func(Source, string) {},
		segment:       func(Source, *events.Segment) {},
		alert:         func(Source, *events.Alert) {},
		flushed:       func(Source, *Batch, time.Duration, time.Time) {},
		failed:        func(Source, string, error) {},
		progress:      func(Source, Progress) {},
		assigned:      func(Source, bool) {},
		rebalanced:    func(int32, int) {},
		sharedLeader:  func(bool) {},
		sharedApplied: func(int, int, time.Duration) {},
		blocked:       func(Source, string, error) {},
		unblocked:     func(Source) {},
		recovered:     func(Source) {},
		rebuilt:       func(Source, int64) {},
		stuck:         func(Source, map[events.State]int) {},
		skipped:       func(Source, string, uint64) {},
	}
	if o == nil {
		return h
	}
	h.consumed, h.segment, h.alert, h.flushed, h.failed = o.Consumed, o.Segment, o.Alert, o.Flushed, o.Failed
	h.progress, h.assigned, h.rebalanced = o.Progress, o.Assigned, o.Rebalanced
	h.sharedLeader, h.sharedApplied = o.SharedLeader, o.SharedApplied
	if b, ok := o.(BlockObserver); ok {
		h.blocked, h.unblocked, h.recovered, h.rebuilt = b.Blocked, b.Unblocked, b.Recovered, b.Rebuilt
	}
	if s, ok := o.(StuckObserver); ok {
		h.stuck = s.Stuck
	}
	if s, ok := o.(SkipObserver); ok {
		h.skipped = s.AdapterSkipped
	}
	return h
}
