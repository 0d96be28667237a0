package pipeline

import "github.com/acwstream/acwstream/events"

// writeCache is what a partition last wrote to each agent key during its
// current ownership (agent keys have one writer, the partition), so that
// a flush writes only what changed. (Pointers: updated in place, with one
// lookup, and the maps stay small enough to probe quickly.)
type writeCache struct {
	views                 map[viewKey]*writtenView
	agents                map[string]*events.AgentState
	pruned                int64 // wall ms when views was last pruned
	viewsPeak, agentsPeak int   // the most entries each map had since it was built
}

func newWriteCache() writeCache {
	return writeCache{views: map[viewKey]*writtenView{}, agents: map[string]*events.AgentState{}}
}

// forget drops what was written to an agent's keys: its next write is
// whole.
func (w *writeCache) forget(id string) {
	delete(w.agents, id)
	for _, v := range [...]View{ViewInterval, ViewDay, ViewLast60m} {
		delete(w.views, viewKey{scopeKey{events.ScopeAgent, id}, v})
	}
}

// viewKey names one agent view: the interval, day or last-60m hash of one
// agent (of whichever window or day is current).
type viewKey struct {
	scopeKey
	view View
}

type writtenView struct {
	start, end int64 // window, day or (last60m) the windows spanned
	c          tally
	at         int64 // wall ms of the last whole write (which sets the TTL)
}

// rewriteAfter is how often (wall ms) an agent view is written whole
// again, refreshing its TTL.
const rewriteAfter = int64(10 * 60 * 1000)

// setPrev fills in the Prev of b's whole-value views and agent writes from
// what this partition wrote before (not those of the agents gone), and
// records what b writes. A view is written whole when it is new (another
// window or day: another key) or was last written whole rewriteAfter ago;
// a last-60m view keeps its key as its windows move on, and is written as
// its changes. A batch is committed or the partition stops, so recording
// at collection is safe.
func (w *writeCache) setPrev(b *Batch, gone map[string]bool) {
	// the Prevs, in one array each (not an allocation per write)
	prevs := make([]events.Counters, 0, len(b.Counters))
	states := make([]events.AgentState, 0, len(b.Agents))
	for i := range b.Counters {
		c := &b.Counters[i]
		if !c.Full {
			continue
		}
		k := viewKey{scopeKey{c.Scope, c.Key}, c.View}
		v := w.views[k]
		switch {
		case v == nil:
			v = &writtenView{at: b.WallMS}
			w.views[k] = v
		case (v.start == c.Start || c.View == ViewLast60m) && b.WallMS-v.at < rewriteAfter:
			prevs = append(prevs, v.c.c)
			c.Prev, c.PrevReasons = &prevs[len(prevs)-1], v.c.r
			c.PrevStart, c.PrevEnd = v.start, v.end
		default:
			*v = writtenView{at: b.WallMS}
		}
		v.start, v.end, v.c = c.Start, c.End, tally{c: c.Delta, r: c.Reasons}
	}
	// Entries older than rewriteAfter would be written whole anyway: drop
	// them, so that the cache holds the agents written lately (the views
	// of agents gone idle would stay forever).
	if b.WallMS-w.pruned >= rewriteAfter {
		w.pruned = b.WallMS
		for k, v := range w.views {
			if b.WallMS-v.at >= rewriteAfter {
				delete(w.views, k)
			}
		}
		// Go maps never give back the room of deleted entries: build
		// them anew once they hold a quarter of their peak.
		w.views, w.viewsPeak = shrunk(w.views, w.viewsPeak)
		w.agents, w.agentsPeak = shrunk(w.agents, w.agentsPeak)
	}
	for i := range b.Agents {
		a := &b.Agents[i]
		if gone[a.State.AgentID] {
			continue // forgotten: written whole, not remembered
		}
		if st := w.agents[a.State.AgentID]; st != nil {
			states = append(states, *st)
			a.Prev = &states[len(states)-1]
			*st = a.State
		} else {
			st := a.State
			w.agents[a.State.AgentID] = &st
		}
	}
}

// shrunk returns m, or a copy of it once it holds less than a quarter of
// peak (the most entries it had), with the new peak.
func shrunk[K comparable, V any](m map[K]V, peak int) (map[K]V, int) {
	n := len(m)
	peak = max(peak, n)
	if peak <= 4096 || n >= peak/4 {
		return m, peak
	}
	c := make(map[K]V, n)
	for k, v := range m {
		c[k] = v
	}
	return c, n
}
