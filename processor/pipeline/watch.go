package pipeline

import (
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
)

// watcher reports what a partition's input shows that no single record
// does: agents stuck in a call state (see Config.StuckAfter) and records
// the adapter skips (see SkipObserver), each logged once and counted for
// the Observer.
type watcher struct {
	src        Source
	log        zerolog.Logger
	hooks      *hooks
	stuckAfter time.Duration
	// stuckAt is when the stuck agents were last looked for; stuck the
	// agents (and the start of their state) reported stuck so far.
	stuckAt time.Time
	stuck   map[string]int64
	// skipped is what the adapter had skipped, by kind, when last
	// reported.
	skipped map[string]uint64
}

// lookForStuck reports the stuck agents at most once a minute.
func (w *watcher) lookForStuck(eng *processor.Engine, clock *eventClock, now time.Time) {
	if now.Sub(w.stuckAt) >= time.Minute {
		w.stuckAt = now
		w.reportStuck(eng, clock.at(now))
	}
}

// reportSkipped reports what the adapter skipped since the last report,
// and logs each kind the first time it appears.
func (w *watcher) reportSkipped(ad events.Adapter) {
	sk, ok := ad.(events.Skipper)
	if !ok {
		return
	}
	now := sk.Skipped()
	if w.skipped == nil {
		w.skipped = map[string]uint64{}
	}
	for kind, n := range now {
		last, seen := w.skipped[kind]
		if n == last {
			continue
		}
		if !seen {
			w.log.Info().Str("kind", kind).Msg("the input adapter skips records of this kind (see acw_adapter_skipped_total and the README's platform section)")
		}
		if n < last {
			last = 0 // a new adapter (the partition restarted): it counts afresh
		}
		w.hooks.skipped(w.src, kind, n-last)
		w.skipped[kind] = n
	}
}

// reportStuck reports the agents stuck in a call state at event time now,
// logging each once per stuck state.
func (w *watcher) reportStuck(eng *processor.Engine, now int64) {
	if _, ok := eng.MaxTS(); !ok {
		return
	}
	before := now - w.stuckAfter.Milliseconds()
	byState := map[events.State]int{}
	seen := map[string]int64{}
	eng.StuckAgents(before, func(st *events.AgentState) {
		byState[st.State]++
		seen[st.AgentID] = st.Since
		if w.stuck[st.AgentID] != st.Since {
			w.log.Warn().Str("agent", st.AgentID).Str("state", st.State.String()).Str("since", events.FormatTime(st.Since)).
				Str("call", st.CallID).Msg("agent stuck in a call state far longer than any real contact: a record that ends it was probably lost")
		}
	})
	w.stuck = seen
	w.hooks.stuck(w.src, byState)
}
