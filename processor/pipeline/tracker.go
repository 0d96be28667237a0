package pipeline

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/segmentio/kafka-go"
)

// Topics names the derived topics.
type Topics struct {
	Segments  string // key agent_id
	Alerts    string // key agent_id
	Intervals string // key scope:key
	DLQ       string // key the input key
}

// DefaultTopics are the derived topics' default names, and
// DefaultInputTopic the input topic's: every command and the development
// broker take them from here.
var DefaultTopics = Topics{Segments: "acw.segments", Alerts: "acw.alerts", Intervals: "acw.intervals", DLQ: "acw.dlq"}

const DefaultInputTopic = "acw.events"

func (t Topics) withDefaults() Topics {
	t.Segments = cmp.Or(t.Segments, DefaultTopics.Segments)
	t.Alerts = cmp.Or(t.Alerts, DefaultTopics.Alerts)
	t.Intervals = cmp.Or(t.Intervals, DefaultTopics.Intervals)
	t.DLQ = cmp.Or(t.DLQ, DefaultTopics.DLQ)
	return t
}

// All lists the topic names.
func (t Topics) All() []string { return []string{t.Segments, t.Alerts, t.Intervals, t.DLQ} }

type scopeKey struct {
	scope events.Scope
	key   string
}

type ivKey struct {
	scopeKey
	start int64
}

type dayKey struct {
	scopeKey
	day string
}

type closedWindow struct {
	start    int64
	counters map[scopeKey]tally
}

// tracker is one partition's processor.Emitter: it turns the engine's
// records into derived messages and, by diffing the open interval between
// flushes, into store deltas. Its state is deterministic given the engine's
// input, which is what lets a recovering partition suppress the effects the
// store already has and resume exactly where the last flush ended.
type tracker struct {
	topics   Topics
	windowMS int64
	loc      *time.Location

	// suppress: replaying offsets whose effects the store already has;
	// only derived messages (at-least-once) are produced. suppressShared:
	// the same for the shared (non-agent) keys, whose effects are written
	// less often (see Batch.Shared) and so end sooner in a replay.
	suppress, suppressShared bool

	// base is what the store holds from this partition for window baseWin.
	base map[scopeKey]tally
	// seeded: base has seen every open counter (collect then diffs only
	// the changed ones).
	seeded  bool
	baseWin int64
	// closed are this partition's final counters of the recent closed
	// windows still inside the last-60-minutes view, oldest first.
	closed []closedWindow

	// Pending shared deltas since the last shared flush: summed per
	// interval (while catching up, one flush spans many intervals), and
	// the last-60-minutes retractions of the windows that left the view.
	// The shared writer derives the day and last-60m deltas from them.
	ivs     map[ivKey]*tally
	retract map[scopeKey]*tally
	// loggedEnd is the open window's end as of the last shared log entry.
	loggedEnd int64
	// agentIvs are the agent interval views to write (whole) at this flush.
	agentIvs []CounterDelta

	// Agent keys have one writer, this partition, which writes their
	// whole values: agentDays holds each agent's closed intervals summed
	// per day (days before the open window's are dropped); dirtyDays and
	// dirty60 are the agent views to rewrite at this flush.
	agentDays map[dayKey]tally
	dirtyDays map[dayKey][2]int64 // the day's bounds, Unix ms
	dirty60   map[scopeKey]bool
	views     []CounterDelta // agent day and last-60m views of this flush
	agents    map[string]events.AgentState
	alerts    []events.Alert
	msgs      []kafka.Message
	msgBytes  int // of msgs' keys and values
	arena     recordArena

	// open holds each agent's open wrap-up (from the engine's live
	// states); prov the segment ids alerted by wall clock ahead of the
	// engine.
	open map[string]events.AgentState
	prov map[string]bool
	// deadlines orders the open wrap-ups by when their overrun threshold
	// passes (event-time ms), so that checkOverruns looks only at those
	// due; an entry whose wrap-up ended or changed is dropped when it
	// comes up.
	deadlines deadlineHeap

	hooks *hooks
	src   Source
	// rebuild, when nonzero, marks every derived record (a header and a
	// "rebuild" field): the partition was recomputed after its checkpoint
	// was lost, and its records may differ from those published before
	// under the same ids.
	rebuild int64
	// inTime holds, per agent, the open wrap-up (segment id) known to end
	// before its overrun threshold: its closing event has arrived and
	// waits for the watermark, so the wall clock must not alert it.
	inTime map[string]string

	// written is what this partition last wrote to each agent key during
	// its current ownership, so that a flush writes only what changed.
	// (Pointers: updated in place, with one lookup, and the maps stay
	// small enough to probe quickly.)
	written       map[viewKey]*writtenView
	writtenAgents map[string]*events.AgentState
	pruned        int64           // wall ms when written was last pruned
	writtenPeak   int             // the most entries of written since it was built
	agentsPeak    int             // the same for writtenAgents
	gone          map[string]bool // agents forgotten since the last collect

	dayCache dayCache
}

func newTracker(topics Topics, window time.Duration, loc *time.Location) *tracker {
	return &tracker{
		hooks:    resolveHooks(nil), // the partition gives its pipeline's
		topics:   topics.withDefaults(),
		windowMS: window.Milliseconds(),
		loc:      loc,
		base:     map[scopeKey]tally{},
		agents:   map[string]events.AgentState{},
		open:     map[string]events.AgentState{},
		ivs:      map[ivKey]*tally{},
		retract:  map[scopeKey]*tally{},

		agentDays: map[dayKey]tally{},
		dirtyDays: map[dayKey][2]int64{},
		dirty60:   map[scopeKey]bool{},
		prov:      map[string]bool{},
		inTime:    map[string]string{},

		written:       map[viewKey]*writtenView{},
		writtenAgents: map[string]*events.AgentState{},
		gone:          map[string]bool{},
	}
}

// viewKey names one agent view: the interval, day or last-60m hash of one
// agent (of whichever window or day is current).
type viewKey struct {
	scopeKey
	view View
}

type writtenView struct {
	start int64 // window, day or (last60m) first window start
	c     tally
	at    int64 // wall ms of the last whole write (which sets the TTL)
}

// rewriteAfter is how often (wall ms) an agent view is written whole
// again, refreshing its TTL.
const rewriteAfter = int64(10 * 60 * 1000)

// setPrev fills in the Prev of b's whole-value views and agent writes from
// what this partition wrote before, and records what b writes. A view is
// written whole when it is new (another window, day or last-60m start) or
// was last written whole rewriteAfter ago. A batch is committed or the
// partition stops, so recording at collection is safe.
func (t *tracker) setPrev(b *Batch) {
	for i := range b.Counters {
		c := &b.Counters[i]
		if !c.Full {
			continue
		}
		k := viewKey{scopeKey{c.Scope, c.Key}, c.View}
		w := t.written[k]
		switch {
		case w == nil:
			w = &writtenView{start: c.Start, at: b.WallMS}
			t.written[k] = w
		case w.start == c.Start && b.WallMS-w.at < rewriteAfter:
			prev := w.c.c
			c.Prev, c.PrevReasons = &prev, w.c.r
		default:
			*w = writtenView{start: c.Start, at: b.WallMS}
		}
		w.c = tally{c: c.Delta, r: c.Reasons}
	}
	// Entries older than rewriteAfter would be written whole anyway: drop
	// them, so that the cache holds the agents written lately (the views
	// of agents gone idle would stay forever).
	if b.WallMS-t.pruned >= rewriteAfter {
		t.pruned = b.WallMS
		for k, w := range t.written {
			if b.WallMS-w.at >= rewriteAfter {
				delete(t.written, k)
			}
		}
		// Go maps never give back the room of deleted entries: build
		// them anew once they hold a quarter of their peak.
		t.written, t.writtenPeak = shrunk(t.written, t.writtenPeak)
		t.writtenAgents, t.agentsPeak = shrunk(t.writtenAgents, t.agentsPeak)
	}
	for i := range b.Agents {
		a := &b.Agents[i]
		if t.gone[a.State.AgentID] {
			continue // forgotten: written whole, not remembered
		}
		if w := t.writtenAgents[a.State.AgentID]; w != nil {
			prev := *w
			a.Prev = &prev
			*w = a.State
		} else {
			st := a.State
			t.writtenAgents[a.State.AgentID] = &st
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

// last60Windows is how many windows the last-60-minutes view spans.
func (t *tracker) last60Windows() int64 {
	return max(1, (time.Hour.Milliseconds()+t.windowMS-1)/t.windowMS)
}

func (t *tracker) Segment(s *events.Segment) {
	if !t.suppress {
		t.hooks.segment(t.src, s)
	}
	t.addMessage(t.mark(kafka.Message{Topic: t.topics.Segments, Key: t.arena.str(s.AgentID), Value: t.arena.take(s.AppendJSON(t.arena.room()))}))
	if t.prov[s.SegmentID] {
		delete(t.prov, s.SegmentID)
		if !s.Overrun {
			// The wall clock raised the alert, but the wrap-up had ended
			// in time: the close arrived after the threshold passed.
			t.emitAlert(&events.Alert{Kind: events.AlertResolved, SegmentID: s.SegmentID, AgentID: s.AgentID,
				CallID: s.CallID, Team: s.Team, Queue: s.Queue, Start: s.Start, At: s.End, ThresholdMS: s.ThresholdMS})
		}
	}
}

func (t *tracker) Alert(a *events.Alert) {
	if a.Kind == events.AlertOverrun && t.prov[a.SegmentID] {
		return // already raised, with the same id, by the wall clock
	}
	t.emitAlert(a)
}

func (t *tracker) emitAlert(a *events.Alert) {
	t.addMessage(t.mark(kafka.Message{Topic: t.topics.Alerts, Key: t.arena.str(a.AgentID), Value: t.arena.take(a.AppendJSON(t.arena.room()))}))
	if !t.suppress {
		t.alerts = append(t.alerts, *a)
		t.hooks.alert(t.src, a)
	}
}

// checkOverruns raises, ahead of the engine, the overrun alert of every
// open wrap-up whose threshold the wall clock (now, Unix ms) has passed.
// The engine raises it only once the watermark passes, max_out_of_order
// later, and only when events arrive. The alert is the one the engine
// would raise (same id and fields); if the wrap-up turns out to have
// closed in time, a resolved alert follows (see Segment).
//
// pendingEnds (Engine.PendingEnds) tells of closing events that have
// arrived but wait for the watermark: a wrap-up one ends in time is not
// alerted.
func (t *tracker) checkOverruns(now int64, pendingEnds func(ids []string) map[string]int64) {
	var due []string
	for len(t.deadlines) > 0 && t.deadlines[0].at <= now {
		d := heap.Pop(&t.deadlines).(deadline)
		if !t.current(d) {
			continue // ended, or its threshold changed (another entry has it)
		}
		st := t.open[d.agent]
		// Each of these stays so for this wrap-up: nothing to come back for.
		if !st.Alerted && !t.prov[st.SegmentID] && t.inTime[d.agent] != st.SegmentID {
			due = append(due, d.agent)
		}
	}
	if len(due) == 0 {
		return
	}
	slices.Sort(due)
	ends := pendingEnds(due)
	for _, id := range due {
		st := t.open[id]
		if end, ok := ends[id]; ok && end <= st.ACWStart+st.OverrunMS {
			t.inTime[id] = st.SegmentID // it stays so: no need to ask again
			continue
		}
		t.prov[st.SegmentID] = true
		t.emitAlert(&events.Alert{Kind: events.AlertOverrun, SegmentID: st.SegmentID, AgentID: st.AgentID,
			CallID: st.CallID, Team: st.Team, Queue: st.Queue, Start: st.ACWStart,
			At: st.ACWStart + st.OverrunMS, ThresholdMS: st.OverrunMS})
	}
}

// current reports whether d is the deadline of a wrap-up still open.
func (t *tracker) current(d deadline) bool {
	st, ok := t.open[d.agent]
	return ok && st.SegmentID == d.segment && st.ACWStart+st.OverrunMS == d.at
}

// compactDeadlines drops the entries of wrap-ups that have ended once
// they outnumber the open ones: checkOverruns drops them as they come
// due, but it runs only on a caught-up partition, and while a backlog
// drains every wrap-up in it would leave its entry behind. The heap so
// follows the open wrap-ups, not the backlog.
func (t *tracker) compactDeadlines() {
	if len(t.deadlines) <= 2*len(t.open)+64 {
		return
	}
	kept := t.deadlines[:0]
	for _, d := range t.deadlines {
		if t.current(d) {
			kept = append(kept, d)
		}
	}
	clear(t.deadlines[len(kept):])
	t.deadlines = kept
	heap.Init(&t.deadlines)
}

// deadline is when (event-time ms) an open wrap-up passes its overrun
// threshold.
type deadline struct {
	at             int64
	agent, segment string
}

// deadlineHeap is a container/heap of deadlines, earliest first.
type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mark adds the rebuild mark, if any, to a derived record: a header
// "rebuild" and a last field "rebuild" (the JSON object's).
func (t *tracker) mark(m kafka.Message) kafka.Message {
	if t.rebuild == 0 {
		return m
	}
	n := strconv.FormatInt(t.rebuild, 10)
	if k := len(m.Value); k > 0 && m.Value[k-1] == '}' {
		m.Value = append(append(m.Value[:k-1], `,"rebuild":`...), n+"}"...)
	}
	m.Headers = append(m.Headers, kafka.Header{Key: "rebuild", Value: []byte(n)})
	return m
}

// provisional lists the provisionally alerted open wrap-ups, sorted.
func (t *tracker) provisional() []string {
	ids := make([]string, 0, len(t.prov))
	for id := range t.prov {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (t *tracker) Interval(iv *events.Interval) {
	if iv.Scope == events.ScopeAgent {
		// A team, queue or centre interval gets its record from the shared
		// writer, once every partition has closed it: this partition's is
		// only its own part.
		t.addMessage(t.mark(kafka.Message{Topic: t.topics.Intervals, Key: t.arena.str(iv.Scope.String(), ":", iv.Key), Value: t.arena.take(iv.AppendJSON(t.arena.room()))}))
	}
	k := scopeKey{iv.Scope, iv.Key}
	if n := len(t.closed); n == 0 || t.closed[n-1].start != iv.Start {
		t.closed = append(t.closed, closedWindow{start: iv.Start, counters: map[scopeKey]tally{}})
	}
	cur := tallyOfInterval(iv)
	t.closed[len(t.closed)-1].counters[k] = cur
	if k.scope == events.ScopeAgent {
		day, _, _ := t.day(iv.Start)
		dk := dayKey{k, day}
		c := t.agentDays[dk]
		c.add(&cur)
		t.agentDays[dk] = c
	}
	if t.suppressed(k.scope) {
		return
	}
	var b tally
	if t.baseWin == iv.Start {
		b = t.base[k]
		delete(t.base, k)
	}
	if k.scope == events.ScopeAgent {
		t.touchAgent(k, iv.Start, &cur)
		return
	}
	t.addDelta(k, iv.Start, tallyDelta(&cur, &b))
}

// suppressed reports whether the store already has the effects on scope's
// keys of the offsets being applied.
func (t *tracker) suppressed(scope events.Scope) bool {
	if scope == events.ScopeAgent {
		return t.suppress
	}
	return t.suppressShared
}

// touchAgent records an agent's interval ws with its whole value c, and
// marks its day and last-60m views for rewriting.
func (t *tracker) touchAgent(k scopeKey, ws int64, c *tally) {
	t.agentIvs = append(t.agentIvs,
		CounterDelta{Scope: k.scope, Key: k.key, View: ViewInterval, Start: ws, End: ws + t.windowMS, Delta: c.c, Reasons: c.r, Full: true})
	day, from, to := t.day(ws)
	t.dirtyDays[dayKey{k, day}] = [2]int64{from, to}
	t.dirty60[k] = true
}

func (t *tracker) Open(*events.OpenSegment) {}

func (t *tracker) AgentState(a *events.AgentState) {
	if a.ACWStart != 0 {
		if was, ok := t.open[a.AgentID]; !ok || was.SegmentID != a.SegmentID || was.ACWStart+was.OverrunMS != a.ACWStart+a.OverrunMS {
			heap.Push(&t.deadlines, deadline{at: a.ACWStart + a.OverrunMS, agent: a.AgentID, segment: a.SegmentID})
		}
		t.open[a.AgentID] = *a
		t.compactDeadlines()
	} else {
		delete(t.open, a.AgentID)
		delete(t.inTime, a.AgentID)
	}
	delete(t.gone, a.AgentID)
	if !t.suppress {
		t.agents[a.AgentID] = *a
	}
}

// AgentForgotten drops what the tracker keeps of an agent the engine
// forgot (idle for the agent idle timeout, after its logout was
// reported): a partition's memory follows the live agents, not every
// agent ever seen. Its next write, if it comes back, is whole.
func (t *tracker) AgentForgotten(id string) {
	delete(t.open, id)
	delete(t.inTime, id)
	delete(t.writtenAgents, id)
	t.gone[id] = true // its logout, pending, is written but not remembered
	for _, v := range [...]View{ViewInterval, ViewDay, ViewLast60m} {
		delete(t.written, viewKey{scopeKey{events.ScopeAgent, id}, v})
	}
}

// delta is c - b for the additive fields; a maximum (events.CounterIsMax)
// is c's when it grew, else 0.
func delta(c, b *events.Counters) events.Counters {
	var d events.Counters
	df, cf, bf := d.Fields(), c.Fields(), b.Fields()
	for i, p := range df {
		switch {
		case !events.CounterIsMax[i]:
			*p = *cf[i] - *bf[i]
		case *cf[i] > *bf[i]:
			*p = *cf[i]
		}
	}
	return d
}

// negate is -c for the additive fields; maxima are 0 (unchanged).
func negate(c *events.Counters) events.Counters {
	var d events.Counters
	df, cf := d.Fields(), c.Fields()
	for i, p := range df {
		if !events.CounterIsMax[i] {
			*p = -*cf[i]
		}
	}
	return d
}

// day returns the calendar day (in t.loc) holding the window starting at
// start, and its bounds in Unix ms.
func (t *tracker) day(start int64) (string, int64, int64) { return t.dayCache.day(t.loc, start) }

// addDelta records d for window ws of a shared scope/key.
func (t *tracker) addDelta(k scopeKey, ws int64, d tally) {
	if d.isZero() {
		return
	}
	if c := t.ivs[ivKey{k, ws}]; c != nil {
		c.add(&d)
	} else {
		t.ivs[ivKey{k, ws}] = &d
	}
}

// collect gathers the effects since the last flush into b: the open
// window's growth against the flushed base, the closed windows leaving the
// last-60-minutes view, and the latest agent states. It resets the base to
// the engine's open counters. The shared keys' deltas are kept pending
// until a collect with shared set (Batch.Shared). With suppress set it
// only updates the tracker's state (the store already has these effects).
func (t *tracker) collect(eng *processor.Engine, b *Batch, shared bool) {
	w, ok := eng.OpenWindow()
	if !ok {
		// Nothing applied yet: the shared writer is told, once, that this
		// partition has no part in any window so far (an entry whose view
		// ends at 0), so that it does not wait for it.
		if shared && !t.suppress && t.loggedEnd == 0 {
			t.loggedEnd = -1
			b.Shared = true
			b.SharedLog = AppendSharedLog(b.SharedLog, 0, 0, nil, nil)
		}
		return
	}
	if t.baseWin != w {
		clear(t.base)
		t.baseWin = w
	}
	// The base is diffed against the changed counters only, once it holds
	// all of them (the first collect, after a restore, visits all).
	each := eng.EachChangedCounter
	if !t.seeded {
		each, t.seeded = eng.EachOpenCounter, true
	}
	each(func(scope events.Scope, key string, c *events.Counters, reasons map[string]int64) {
		k := scopeKey{scope, key}
		bc := t.base[k]
		if *c == bc.c && maps.Equal(reasons, bc.r) {
			return
		}
		cur := tallyOf(c, reasons)
		t.base[k] = cur
		switch {
		case t.suppressed(scope):
		case scope == events.ScopeAgent:
			t.touchAgent(k, w, &cur)
		default:
			t.addDelta(k, w, tallyDelta(&cur, &bc))
		}
	})
	// Windows older than the view's first leave it: retract them.
	first := w - (t.last60Windows()-1)*t.windowMS
	n := 0
	for _, cw := range t.closed {
		if cw.start >= first {
			break
		}
		n++
		keys := make([]scopeKey, 0, len(cw.counters))
		for k := range cw.counters {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, cmpScopeKey)
		for _, k := range keys {
			switch {
			case t.suppressed(k.scope):
			case k.scope == events.ScopeAgent:
				t.dirty60[k] = true
			default:
				c := cw.counters[k]
				n := c.negated()
				if r := t.retract[k]; r != nil {
					r.add(&n)
				} else {
					t.retract[k] = &n
				}
			}
		}
	}
	t.closed = slices.Delete(t.closed, 0, n)
	if !t.suppress {
		t.agentViews(b, w, first)
	}
	// Agent days before the open window's are final (and written).
	today, _, _ := t.day(w)
	for dk := range t.agentDays {
		if dk.day < today {
			delete(t.agentDays, dk)
		}
	}
	if t.suppress {
		clear(t.gone) // the store has these effects already
		return
	}
	if shared {
		t.takeShared(b, first, w+t.windowMS)
	}
	b.Counters = append(b.Counters, t.agentIvs...)
	t.agentIvs = t.agentIvs[:0]
	b.Counters = append(b.Counters, t.views...)
	t.views = t.views[:0]
	ids := make([]string, 0, len(t.agents))
	for id := range t.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b.Agents = append(b.Agents, AgentWrite{State: t.agents[id]})
	}
	clear(t.agents)
	b.Alerts = append(b.Alerts, t.alerts...)
	t.alerts = t.alerts[:0]
	for id := range t.gone {
		b.Forgotten = append(b.Forgotten, id)
	}
	slices.Sort(b.Forgotten)
	t.setPrev(b)
	clear(t.gone)
}

// takeShared moves the pending shared deltas into b's shared log, in key
// order, with the last-60m view's span [first, end).
func (t *tracker) takeShared(b *Batch, first, end int64) {
	b.Shared = true
	if len(t.ivs) == 0 && len(t.retract) == 0 && end == t.loggedEnd {
		return
	}
	// An entry also goes out when only the open window moved: the shared
	// writer learns from it that this partition closed the windows before
	// (see sharedWriter.publishFinal).
	t.loggedEnd = end
	windows := map[int64][]string{}
	for k := range t.ivs {
		windows[k.start] = append(windows[k.start], k.scope.String()+":"+k.key)
	}
	for _, start := range slices.Sorted(maps.Keys(windows)) {
		keys := windows[start]
		slices.Sort(keys)
		b.SharedWindows = append(b.SharedWindows, SharedWindow{Start: start, Keys: keys})
	}
	ivs := make([]CounterDelta, 0, len(t.ivs))
	for k, c := range t.ivs {
		ivs = append(ivs, CounterDelta{Scope: k.scope, Key: k.key, View: ViewInterval, Start: k.start, End: k.start + t.windowMS, Delta: c.c, Reasons: c.r})
	}
	slices.SortFunc(ivs, cmpDelta)
	clear(t.ivs)
	rs := make([]CounterDelta, 0, len(t.retract))
	for k, c := range t.retract {
		rs = append(rs, CounterDelta{Scope: k.scope, Key: k.key, View: ViewLast60m, Delta: c.c, Reasons: c.r})
	}
	slices.SortFunc(rs, cmpDelta)
	clear(t.retract)
	b.SharedLog = AppendSharedLog(b.SharedLog, first, end, ivs, rs)
}

func cmpDelta(x, y CounterDelta) int {
	return cmp.Or(cmpScopeKey(scopeKey{x.Scope, x.Key}, scopeKey{y.Scope, y.Key}), cmp.Compare(x.Start, y.Start))
}

// agentViews adds the whole-value day and last-60m views of the agents
// touched since the last flush, in key order, and clears the marks. The
// base holds the open window w's counters.
func (t *tracker) agentViews(b *Batch, w, first int64) {
	openDay, _, _ := t.day(w)
	dks := make([]dayKey, 0, len(t.dirtyDays))
	for dk := range t.dirtyDays {
		dks = append(dks, dk)
	}
	slices.SortFunc(dks, cmpDayKey)
	for _, dk := range dks {
		c := t.agentDays[dk]
		c.r = maps.Clone(c.r) // add must not change the map agentDays holds
		if dk.day == openDay {
			o := t.base[dk.scopeKey]
			c.add(&o)
		}
		bounds := t.dirtyDays[dk]
		t.views = append(t.views, CounterDelta{Scope: dk.scope, Key: dk.key, View: ViewDay, Start: bounds[0], End: bounds[1], Day: dk.day, Delta: c.c, Reasons: c.r, Full: true})
	}
	clear(t.dirtyDays)
	ks := make([]scopeKey, 0, len(t.dirty60))
	for k := range t.dirty60 {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmpScopeKey)
	for _, k := range ks {
		c := t.base[k]
		c.r = maps.Clone(c.r) // add must not change the map base holds
		for _, cw := range t.closed {
			if x, ok := cw.counters[k]; ok {
				c.add(&x)
			}
		}
		t.views = append(t.views, CounterDelta{Scope: k.scope, Key: k.key, View: ViewLast60m, Start: first, End: w + t.windowMS, Delta: c.c, Reasons: c.r, Full: true})
	}
	clear(t.dirty60)
}

func cmpDayKey(x, y dayKey) int {
	if c := cmpScopeKey(x.scopeKey, y.scopeKey); c != 0 {
		return c
	}
	return strings.Compare(x.day, y.day)
}

func cmpScopeKey(x, y scopeKey) int {
	if x.scope != y.scope {
		return int(x.scope) - int(y.scope)
	}
	return strings.Compare(x.key, y.key)
}

// addMessage adds a derived message to the open batch.
func (t *tracker) addMessage(m kafka.Message) {
	t.msgs = append(t.msgs, m)
	t.msgBytes += len(m.Key) + len(m.Value)
}

// pendingBytes is the size of the keys and values of the derived messages
// produced since the last takeMessages.
func (t *tracker) pendingBytes() int { return t.msgBytes }

// takeMessages returns the derived messages produced since the last call.
func (t *tracker) takeMessages() []kafka.Message {
	m := t.msgs
	t.msgs, t.msgBytes = nil, 0
	return m
}

// suppressAll suppresses every store effect: a restored partition re-reads
// offsets whose effects the store already has.
func (t *tracker) suppressAll() { t.suppress, t.suppressShared = true, true }

// resumeShared ends the suppression of shared effects: the store holds
// this partition's shared effects up to here, so their base becomes the
// engine's open counters.
func (t *tracker) resumeShared(eng *processor.Engine) {
	t.collect(eng, &Batch{}, false) // suppressShared is still set: state only
	t.suppressShared = false
	clear(t.ivs)
	clear(t.retract)
}

// resume ends suppression (of agent effects; shared ones must have resumed
// before): the store holds this partition's effects up to here.
func (t *tracker) resume(eng *processor.Engine) {
	t.collect(eng, &Batch{}, false) // suppress is still set: state only, and shared deltas stay pending
	t.suppress = false
	t.agentIvs, t.alerts, t.views = t.agentIvs[:0], t.alerts[:0], t.views[:0]
	clear(t.dirtyDays)
	clear(t.dirty60)
	clear(t.agents)
}

// auxVersion is the first byte of appendAux's output. Version 2 (without
// an adapter's state) and 3 (with it) hold ten counters per entry; 4
// holds a count of counters first (events.CounterNames: readers take the
// fields they know) and always a stateful adapter's state, maybe empty.
const auxVersion = 4

// appendAux encodes the state a snapshot must carry besides the engine's:
// the recent closed windows, the agents' per-day totals, and the input
// adapter's state (adapterState; nil when it keeps none). (The base is
// not needed: a snapshot is taken right after a flush, when the base
// equals the engine's open counters.)
func (t *tracker) appendAux(b, adapterState []byte) []byte {
	b = append(b, auxVersion)
	b = binary.AppendUvarint(b, uint64(len(t.closed)))
	for _, cw := range t.closed {
		b = binary.AppendVarint(b, cw.start)
		keys := make([]scopeKey, 0, len(cw.counters))
		for k := range cw.counters {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, cmpScopeKey)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			c := cw.counters[k]
			b = appendTally(appendScopeKey(b, k), &c)
		}
	}
	dks := make([]dayKey, 0, len(t.agentDays))
	for dk := range t.agentDays {
		dks = append(dks, dk)
	}
	slices.SortFunc(dks, cmpDayKey)
	b = binary.AppendUvarint(b, uint64(len(dks)))
	for _, dk := range dks {
		c := t.agentDays[dk]
		b = appendScopeKey(b, dk.scopeKey)
		b = binary.AppendUvarint(b, uint64(len(dk.day)))
		b = append(b, dk.day...)
		b = appendTally(b, &c)
	}
	b = binary.AppendUvarint(b, uint64(len(adapterState)))
	return append(b, adapterState...)
}

func appendScopeKey(b []byte, k scopeKey) []byte {
	b = binary.AppendUvarint(b, uint64(k.scope))
	b = binary.AppendUvarint(b, uint64(len(k.key)))
	return append(b, k.key...)
}

// appendCounters encodes c as its number of fields, then each field.
func appendCounters(b []byte, c *events.Counters) []byte {
	b = binary.AppendUvarint(b, events.NumCounters)
	for _, p := range c.Fields() {
		b = binary.AppendVarint(b, *p)
	}
	return b
}

// appendTally encodes t: its counters (appendCounters), then its
// reasons' count and each reason and time, by reason.
func appendTally(b []byte, t *tally) []byte {
	b = appendCounters(b, &t.c)
	return appendReasons(b, t.r)
}

func appendReasons(b []byte, m map[string]int64) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, r := range slices.Sorted(maps.Keys(m)) {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
		b = binary.AppendVarint(b, m[r])
	}
	return b
}

// oldCounters is the number of counters an entry of aux version < 4 and
// shared log version 1 holds, without a count before them.
const oldCounters = 10

var errAux = errors.New("pipeline: corrupt aux checkpoint")

// auxReader decodes appendAux's and AppendSharedLog's output: the
// adapters' state reader, plus scope/keys and counters.
type auxReader struct {
	events.StateReader
	bad bool // a scope out of range
	// uncounted: the entries hold oldCounters counters and no count
	// (aux version < 4, shared log version 1).
	uncounted bool
}

func (r *auxReader) scopeKey() scopeKey {
	scope := events.Scope(r.Uvarint())
	if scope >= events.NumScopes {
		r.bad = true
	}
	return scopeKey{scope, r.String()}
}

// counters reads one appendCounters entry: the fields this version
// knows; a newer writer's further fields are skipped.
func (r *auxReader) counters() events.Counters {
	var c events.Counters
	n := oldCounters
	if !r.uncounted {
		n = r.Count()
	}
	fs := c.Fields()
	for i := range n {
		v := r.Varint()
		if i < len(fs) {
			*fs[i] = v
		}
	}
	return c
}

// tally reads one appendTally entry (counters alone in the old formats).
func (r *auxReader) tally() tally {
	t := tally{c: r.counters()}
	if !r.uncounted {
		t.r = r.reasons()
	}
	return t
}

func (r *auxReader) reasons() map[string]int64 {
	n := r.Count()
	if n == 0 {
		return nil
	}
	m := make(map[string]int64, min(n, 64))
	for range n {
		k := r.String()
		m[k] = r.Varint() // a corrupt input empties r.B: the rest reads zeros
	}
	return m
}

// err reports a truncated or corrupt input, or bytes left over.
func (r *auxReader) err() error {
	if r.bad {
		return events.ErrState
	}
	return r.Err()
}

// restoreAux decodes appendAux's output and sets the base from the engine.
func (t *tracker) restoreAux(b []byte, eng *processor.Engine) (adapterState []byte, err error) {
	if len(b) == 0 || b[0] < 2 || b[0] > auxVersion {
		return nil, errAux
	}
	r := &auxReader{StateReader: events.StateReader{B: b[1:]}, uncounted: b[0] < 4}
	t.closed = t.closed[:0]
	for range r.Count() {
		cw := closedWindow{start: r.Varint(), counters: map[scopeKey]tally{}}
		for range r.Count() {
			k := r.scopeKey()
			cw.counters[k] = r.tally()
		}
		t.closed = append(t.closed, cw)
	}
	clear(t.agentDays)
	for range r.Count() {
		k := r.scopeKey()
		day := r.String()
		t.agentDays[dayKey{k, day}] = r.tally()
	}
	if b[0] >= 3 { // an adapter's state follows (Count is 0 if it does not fit)
		n := r.Count()
		adapterState, r.B = r.B[:n:n], r.B[n:]
	}
	if r.err() != nil {
		return nil, errAux
	}
	clear(t.base)
	t.baseWin, _ = eng.OpenWindow()
	// The base is diffed against the changed counters only, once it holds
	// all of them (the first collect, after a restore, visits all).
	each := eng.EachChangedCounter
	if !t.seeded {
		each, t.seeded = eng.EachOpenCounter, true
	}
	each(func(scope events.Scope, key string, c *events.Counters, reasons map[string]int64) {
		t.base[scopeKey{scope, key}] = tallyOf(c, reasons)
	})
	return adapterState, nil
}
