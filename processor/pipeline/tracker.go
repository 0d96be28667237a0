package pipeline

import (
	"cmp"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
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
// store already has and resume exactly where the last flush ended. It
// forwards to parts that each own one output: records (the derived
// topics), agent (the agent keys, written whole), shared (the deltas of
// the shared keys, for the shared writer), overruns (wall-clock alerts
// ahead of the engine) and alerts (the alerts stream); win is what they
// diff against.
type tracker struct {
	windowMS int64
	loc      *time.Location
	dayCache dayCache

	// suppress: replaying offsets whose effects the store already has;
	// only derived messages (at-least-once) are produced. suppressShared:
	// the same for the shared (non-agent) keys, whose effects are written
	// less often (see Batch.Shared) and so end sooner in a replay.
	suppress, suppressShared bool

	win      windowState
	records  derivedRecords
	agent    agentWrites
	shared   sharedDeltas
	overruns overrunWatch
	alerts   []events.Alert // for the alerts stream, at this flush

	hooks *hooks
	src   Source
}

// windowState is what the partition's effects are diffed against: the
// open window's counters as last flushed (what the store holds from this
// partition) and its final counters of the recent closed windows.
type windowState struct {
	// base is what the store holds from this partition for window baseWin.
	base map[scopeKey]tally
	// seeded: base has seen every open counter (collect then diffs only
	// the changed ones).
	seeded  bool
	baseWin int64
	// closed are this partition's final counters of the recent closed
	// windows still inside the last-60-minutes view, oldest first.
	closed []closedWindow
}

// agentWrites are the partition's writes to its agents' keys, which have
// one writer, this partition, and are written whole.
type agentWrites struct {
	// ivs are the agent interval views to write at this flush; views the
	// day and last-60m views.
	ivs, views []CounterDelta
	// days holds each agent's closed intervals summed per day (days before
	// the open window's are dropped); dirtyDays and dirty60 are the views
	// to rewrite at this flush.
	days      map[dayKey]tally
	dirtyDays map[dayKey][2]int64 // the day's bounds, Unix ms
	dirty60   map[scopeKey]bool
	states    map[string]events.AgentState // the agents' latest states
	gone      map[string]bool              // agents forgotten since the last collect
	written   writeCache
}

// sharedDeltas are the partition's pending deltas of the shared keys
// since the last shared flush: summed per interval (while catching up, one
// flush spans many intervals), and the last-60-minutes retractions of the
// windows that left the view. The shared writer derives the day and
// last-60m deltas from them.
type sharedDeltas struct {
	ivs     map[ivKey]*tally
	retract map[scopeKey]*tally
	// loggedEnd is the open window's end as of the last shared log entry.
	loggedEnd int64
}

func newTracker(topics Topics, window time.Duration, loc *time.Location) *tracker {
	return &tracker{
		hooks:    resolveHooks(nil), // the partition gives its pipeline's
		windowMS: window.Milliseconds(),
		loc:      loc,
		win:      windowState{base: map[scopeKey]tally{}},
		records:  derivedRecords{topics: topics.withDefaults()},
		agent: agentWrites{days: map[dayKey]tally{}, dirtyDays: map[dayKey][2]int64{}, dirty60: map[scopeKey]bool{},
			states: map[string]events.AgentState{}, gone: map[string]bool{}, written: newWriteCache()},
		shared:   sharedDeltas{ivs: map[ivKey]*tally{}, retract: map[scopeKey]*tally{}},
		overruns: newOverrunWatch(),
	}
}

// last60Windows is how many windows the last-60-minutes view spans.
func (t *tracker) last60Windows() int64 {
	return max(1, (time.Hour.Milliseconds()+t.windowMS-1)/t.windowMS)
}

func (t *tracker) Segment(s *events.Segment) {
	if !t.suppress {
		t.hooks.segment(t.src, s)
	}
	t.records.segment(s)
	if a := t.overruns.ended(s); a != nil {
		t.emitAlert(a)
	}
}

func (t *tracker) Alert(a *events.Alert) {
	if !t.overruns.raised(a) {
		t.emitAlert(a)
	}
}

func (t *tracker) emitAlert(a *events.Alert) {
	t.records.alert(a)
	if !t.suppress {
		t.alerts = append(t.alerts, *a)
		t.hooks.alert(t.src, a)
	}
}

// checkOverruns raises the overrun alerts the wall clock (now, Unix ms)
// has passed ahead of the engine (see overrunWatch).
func (t *tracker) checkOverruns(now int64, pendingEnds func(ids []string) map[string]int64) {
	for _, a := range t.overruns.due(now, pendingEnds) {
		t.emitAlert(&a)
	}
}

func (t *tracker) Interval(iv *events.Interval) {
	if iv.Scope == events.ScopeAgent {
		// A team, queue or centre interval gets its record from the shared
		// writer, once every partition has closed it: this partition's is
		// only its own part.
		t.records.interval(iv)
	}
	k := scopeKey{iv.Scope, iv.Key}
	if n := len(t.win.closed); n == 0 || t.win.closed[n-1].start != iv.Start {
		t.win.closed = append(t.win.closed, closedWindow{start: iv.Start, counters: map[scopeKey]tally{}})
	}
	cur := tallyOfInterval(iv)
	t.win.closed[len(t.win.closed)-1].counters[k] = cur
	if k.scope == events.ScopeAgent {
		day, _, _ := t.day(iv.Start)
		dk := dayKey{k, day}
		c := t.agent.days[dk]
		c.add(&cur)
		t.agent.days[dk] = c
	}
	if t.suppressed(k.scope) {
		return
	}
	var b tally
	if t.win.baseWin == iv.Start {
		b = t.win.base[k]
		delete(t.win.base, k)
	}
	if k.scope == events.ScopeAgent {
		t.touchAgent(k, iv.Start, &cur)
		return
	}
	t.shared.add(k, iv.Start, tallyDelta(&cur, &b))
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
	t.agent.ivs = append(t.agent.ivs,
		CounterDelta{Scope: k.scope, Key: k.key, View: ViewInterval, Start: ws, End: ws + t.windowMS, Delta: c.c, Reasons: c.r, Full: true})
	day, from, to := t.day(ws)
	t.agent.dirtyDays[dayKey{k, day}] = [2]int64{from, to}
	t.agent.dirty60[k] = true
}

func (t *tracker) Open(*events.OpenSegment) {}

func (t *tracker) AgentState(a *events.AgentState) {
	t.overruns.track(a)
	delete(t.agent.gone, a.AgentID)
	if !t.suppress {
		t.agent.states[a.AgentID] = *a
	}
}

// AgentForgotten drops what the tracker keeps of an agent the engine
// forgot (idle for the agent idle timeout, after its logout was
// reported): a partition's memory follows the live agents, not every
// agent ever seen. Its next write, if it comes back, is whole.
func (t *tracker) AgentForgotten(id string) {
	t.overruns.forget(id)
	t.agent.written.forget(id)
	t.agent.gone[id] = true // its logout, pending, is written but not remembered
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

// add records d for window ws of a shared scope/key.
func (sh *sharedDeltas) add(k scopeKey, ws int64, d tally) {
	if d.isZero() {
		return
	}
	if c := sh.ivs[ivKey{k, ws}]; c != nil {
		c.add(&d)
	} else {
		sh.ivs[ivKey{k, ws}] = &d
	}
}

// retractWindow records that c, k's counters of a closed window, leave
// the last-60m view.
func (sh *sharedDeltas) retractWindow(k scopeKey, c *tally) {
	n := c.negated()
	if r := sh.retract[k]; r != nil {
		r.add(&n)
	} else {
		sh.retract[k] = &n
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
		if shared && !t.suppress && t.shared.loggedEnd == 0 {
			t.shared.loggedEnd = -1
			b.Shared = true
			b.SharedLog = AppendSharedLog(b.SharedLog, 0, 0, nil, nil)
		}
		return
	}
	t.diffOpen(eng, w)
	first := t.retractClosed(w)
	if !t.suppress {
		t.agentViews(b, w, first)
	}
	// Agent days before the open window's are final (and written).
	today, _, _ := t.day(w)
	for dk := range t.agent.days {
		if dk.day < today {
			delete(t.agent.days, dk)
		}
	}
	if t.suppress {
		clear(t.agent.gone) // the store has these effects already
		return
	}
	if shared {
		t.shared.take(b, first, w+t.windowMS, t.windowMS)
	}
	t.agent.take(b)
	b.Alerts = append(b.Alerts, t.alerts...)
	t.alerts = t.alerts[:0]
}

// diffOpen diffs the engine's counters of the open window w against the
// base, records the changes as agent or shared effects, and makes them the
// base.
func (t *tracker) diffOpen(eng *processor.Engine, w int64) {
	if t.win.baseWin != w {
		clear(t.win.base)
		t.win.baseWin = w
	}
	// The base is diffed against the changed counters only, once it holds
	// all of them (the first collect, after a restore, visits all).
	each := eng.EachChangedCounter
	if !t.win.seeded {
		each, t.win.seeded = eng.EachOpenCounter, true
	}
	each(func(scope events.Scope, key string, c *events.Counters, reasons map[string]int64) {
		k := scopeKey{scope, key}
		bc := t.win.base[k]
		if *c == bc.c && maps.Equal(reasons, bc.r) {
			return
		}
		cur := tallyOf(c, reasons)
		t.win.base[k] = cur
		switch {
		case t.suppressed(scope):
		case scope == events.ScopeAgent:
			t.touchAgent(k, w, &cur)
		default:
			t.shared.add(k, w, tallyDelta(&cur, &bc))
		}
	})
}

// retractClosed drops the closed windows older than the last-60m view's
// first (with w the open window), retracting them from the view, and
// returns that first window's start.
func (t *tracker) retractClosed(w int64) (first int64) {
	first = w - (t.last60Windows()-1)*t.windowMS
	n := 0
	for _, cw := range t.win.closed {
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
				t.agent.dirty60[k] = true
			default:
				c := cw.counters[k]
				t.shared.retractWindow(k, &c)
			}
		}
	}
	t.win.closed = slices.Delete(t.win.closed, 0, n)
	return first
}

// take moves the agent writes of this flush into b: the views, the
// agents' latest states and the agents forgotten, each write's Prev
// filled in from what was written before.
func (a *agentWrites) take(b *Batch) {
	b.Counters = slices.Grow(b.Counters, len(a.ivs)+len(a.views))
	b.Counters = append(b.Counters, a.ivs...)
	a.ivs = a.ivs[:0]
	b.Counters = append(b.Counters, a.views...)
	a.views = a.views[:0]
	b.Agents = slices.Grow(b.Agents, len(a.states))
	for _, id := range slices.Sorted(maps.Keys(a.states)) {
		b.Agents = append(b.Agents, AgentWrite{State: a.states[id]})
	}
	clear(a.states)
	for id := range a.gone {
		b.Forgotten = append(b.Forgotten, id)
	}
	slices.Sort(b.Forgotten)
	a.written.setPrev(b, a.gone)
	clear(a.gone)
}

// take moves the pending shared deltas into b's shared log, in key
// order, with the last-60m view's span [first, end).
func (sh *sharedDeltas) take(b *Batch, first, end, windowMS int64) {
	b.Shared = true
	if len(sh.ivs) == 0 && len(sh.retract) == 0 && end == sh.loggedEnd {
		return
	}
	// An entry also goes out when only the open window moved: the shared
	// writer learns from it that this partition closed the windows before
	// (see sharedWriter.publishFinal).
	sh.loggedEnd = end
	windows := map[int64][]string{}
	for k := range sh.ivs {
		windows[k.start] = append(windows[k.start], k.scope.String()+":"+k.key)
	}
	for _, start := range slices.Sorted(maps.Keys(windows)) {
		keys := windows[start]
		slices.Sort(keys)
		b.SharedWindows = append(b.SharedWindows, SharedWindow{Start: start, Keys: keys})
	}
	ivs := make([]CounterDelta, 0, len(sh.ivs))
	for k, c := range sh.ivs {
		ivs = append(ivs, CounterDelta{Scope: k.scope, Key: k.key, View: ViewInterval, Start: k.start, End: k.start + windowMS, Delta: c.c, Reasons: c.r})
	}
	slices.SortFunc(ivs, cmpDelta)
	clear(sh.ivs)
	rs := make([]CounterDelta, 0, len(sh.retract))
	for k, c := range sh.retract {
		rs = append(rs, CounterDelta{Scope: k.scope, Key: k.key, View: ViewLast60m, Delta: c.c, Reasons: c.r})
	}
	slices.SortFunc(rs, cmpDelta)
	clear(sh.retract)
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
	dks := make([]dayKey, 0, len(t.agent.dirtyDays))
	for dk := range t.agent.dirtyDays {
		dks = append(dks, dk)
	}
	slices.SortFunc(dks, cmpDayKey)
	for _, dk := range dks {
		c := t.agent.days[dk]
		c.r = maps.Clone(c.r) // add must not change the map agentDays holds
		if dk.day == openDay {
			o := t.win.base[dk.scopeKey]
			c.add(&o)
		}
		bounds := t.agent.dirtyDays[dk]
		t.agent.views = append(t.agent.views, CounterDelta{Scope: dk.scope, Key: dk.key, View: ViewDay, Start: bounds[0], End: bounds[1], Day: dk.day, Delta: c.c, Reasons: c.r, Full: true})
	}
	clear(t.agent.dirtyDays)
	ks := make([]scopeKey, 0, len(t.agent.dirty60))
	for k := range t.agent.dirty60 {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmpScopeKey)
	for _, k := range ks {
		c := t.win.base[k]
		c.r = maps.Clone(c.r) // add must not change the map base holds
		for _, cw := range t.win.closed {
			if x, ok := cw.counters[k]; ok {
				c.add(&x)
			}
		}
		t.agent.views = append(t.agent.views, CounterDelta{Scope: k.scope, Key: k.key, View: ViewLast60m, Start: first, End: w + t.windowMS, Delta: c.c, Reasons: c.r, Full: true})
	}
	clear(t.agent.dirty60)
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

// suppressAll suppresses every store effect: a restored partition re-reads
// offsets whose effects the store already has.
func (t *tracker) suppressAll() { t.suppress, t.suppressShared = true, true }

// addMessage adds a derived message to the open batch.
func (t *tracker) addMessage(m kafka.Message) { t.records.add(m) }

// pendingBytes is the size of the keys and values of the derived messages
// produced since the last takeMessages.
func (t *tracker) pendingBytes() int { return t.records.bytes }

// takeMessages returns the derived messages produced since the last call.
func (t *tracker) takeMessages() []kafka.Message { return t.records.take() }

// resumeShared ends the suppression of shared effects: the store holds
// this partition's shared effects up to here, so their base becomes the
// engine's open counters.
func (t *tracker) resumeShared(eng *processor.Engine) {
	t.collect(eng, &Batch{}, false) // suppressShared is still set: state only
	t.suppressShared = false
	clear(t.shared.ivs)
	clear(t.shared.retract)
}

// resume ends suppression (of agent effects; shared ones must have resumed
// before): the store holds this partition's effects up to here.
func (t *tracker) resume(eng *processor.Engine) {
	t.collect(eng, &Batch{}, false) // suppress is still set: state only, and shared deltas stay pending
	t.suppress = false
	t.agent.ivs, t.alerts, t.agent.views = t.agent.ivs[:0], t.alerts[:0], t.agent.views[:0]
	clear(t.agent.dirtyDays)
	clear(t.agent.dirty60)
	clear(t.agent.states)
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
	b = binary.AppendUvarint(b, uint64(len(t.win.closed)))
	for _, cw := range t.win.closed {
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
	dks := make([]dayKey, 0, len(t.agent.days))
	for dk := range t.agent.days {
		dks = append(dks, dk)
	}
	slices.SortFunc(dks, cmpDayKey)
	b = binary.AppendUvarint(b, uint64(len(dks)))
	for _, dk := range dks {
		c := t.agent.days[dk]
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
	events.Reader
	// uncounted: the entries hold oldCounters counters and no count
	// (aux version < 4, shared log version 1).
	uncounted bool
}

func (r *auxReader) scopeKey() scopeKey {
	scope := events.Scope(r.Uvarint())
	if scope >= events.NumScopes {
		r.Fail("scope")
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

// restoreAux decodes appendAux's output and sets the base from the engine.
func (t *tracker) restoreAux(b []byte, eng *processor.Engine) (adapterState []byte, err error) {
	r := &auxReader{Reader: events.Reader{B: b, Corrupt: errAux}}
	version := r.Version(2, auxVersion)
	r.uncounted = version < 4
	t.win.closed = t.win.closed[:0]
	for range r.Count() {
		cw := closedWindow{start: r.Varint(), counters: map[scopeKey]tally{}}
		for range r.Count() {
			k := r.scopeKey()
			cw.counters[k] = r.tally()
		}
		t.win.closed = append(t.win.closed, cw)
	}
	clear(t.agent.days)
	for range r.Count() {
		k := r.scopeKey()
		day := r.String()
		t.agent.days[dayKey{k, day}] = r.tally()
	}
	if version >= 3 { // an adapter's state follows
		adapterState = r.Bytes()
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	clear(t.win.base)
	t.win.baseWin, _ = eng.OpenWindow()
	// The base is diffed against the changed counters only, once it holds
	// all of them (the first collect, after a restore, visits all).
	each := eng.EachChangedCounter
	if !t.win.seeded {
		each, t.win.seeded = eng.EachOpenCounter, true
	}
	each(func(scope events.Scope, key string, c *events.Counters, reasons map[string]int64) {
		t.win.base[scopeKey{scope, key}] = tallyOf(c, reasons)
	})
	return adapterState, nil
}
