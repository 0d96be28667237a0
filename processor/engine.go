package processor

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/acwstream/acwstream/events"
)

// Emitter receives the engine's output records, synchronously, in a
// deterministic order. The pointers are only valid during the call: copy
// what you keep.
type Emitter interface {
	Segment(*events.Segment)
	Alert(*events.Alert)
	Interval(*events.Interval)
	Open(*events.OpenSegment)
}

// StateEmitter is an optional extension of Emitter: an Emitter that also
// implements it receives every agent's live state after each applied event
// (the live pipeline writes these to Redis; replay ignores them).
type StateEmitter interface {
	AgentState(*events.AgentState)
}

// IdleEmitter is an optional extension of Emitter: an Emitter that also
// implements it is told when the engine forgets an idle agent (see
// Config.AgentIdleTimeout), after that agent's last records, so that it
// can drop what it keeps per agent.
type IdleEmitter interface {
	AgentForgotten(id string)
}

// Outcome is what Apply, Ingest or Translate did with an input.
type Outcome uint8

const (
	// Accepted: buffered, and applied once the watermark passes it.
	Accepted Outcome = iota
	// Duplicate: a repeat of an earlier accepted event; dropped.
	Duplicate
	// Late: older than the watermark; rejected, never applied.
	Late
	// Rejected (Ingest, Translate): not accepted because it is
	// malformed, invalid, late or in the future; the error says which.
	Rejected
	// Ignored (Translate): a record that implies no event (a heartbeat,
	// a configuration-only change).
	Ignored
	// Future: dated more than Config.MaxFuture ahead of its reference
	// time; rejected, never applied, and it does not move the watermark.
	Future
)

var outcomeNames = [...]string{Accepted: "applied", Duplicate: "duplicate", Late: events.ReasonLate,
	Rejected: "rejected", Ignored: "ignored", Future: events.ReasonFuture}

// String names the outcome as logs and metrics label it: "applied",
// "duplicate", "late", "rejected", "ignored", "future".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Stats are cumulative counters of one engine (they survive snapshots).
type Stats struct {
	Accepted   int64 // events accepted (applied now or later)
	Applied    int64 // events applied so far
	Duplicates int64
	Late       int64
	Malformed  int64 // inputs that were not a JSON object (Ingest only)
	Invalid    int64 // objects that broke the contract (Ingest only)
	Segments   int64 // wrap-ups closed
	Alerts     int64 // alert records emitted (overrun and resolved)
	Future     int64 // events rejected as too far in the future
	// IdleLogouts counts the working agents logged out for having no
	// event for AgentIdleTimeout (Forgotten counts every agent dropped).
	IdleLogouts int64
	Forgotten   int64
	// Ignored counts the platform records that implied no event
	// (Translate's Ignored: heartbeats, other products' events…).
	Ignored int64
	// MaxACWClosed counts the wrap-ups closed by Config.MaxACW.
	MaxACWClosed int64
}

// NoWatermark is Watermark's value before any event was accepted.
const NoWatermark = math.MinInt64

const recentCalls = 4

type callMemo struct {
	id    string
	queue string
}

type openSeg struct {
	open        bool
	alerted     bool
	serial      uint32
	id          string
	call        string
	disposition string
	start       int64
	warnMS      int64
	overrunMS   int64
	// handleMS is the talk/hold run of the same call that led into this
	// wrap-up, whose handle completes with it; -1: none.
	handleMS int64
}

type agent struct {
	id    string
	team  string // last non-empty team
	state events.State
	call  string // call of the current state
	since int64  // when the current state began
	// accrued is the time up to which the current state's duration has been
	// added to interval counters.
	accrued int64

	talking   bool   // last applied event was talking/hold of talkCall
	talkCall  string //
	talkStart int64  // when that talk/hold run began
	reason    string // the reason of the current state (not_ready)
	name      string // last non-empty agent_name
	seg       openSeg
	calls     [recentCalls]callMemo
	callNext  uint8

	idleQueued bool // the agent has its entry in Engine.idle

	lastSegStart int64  // start of the agent's latest segment
	segN         uint32 // segments that started at lastSegStart before it
	lastACWMS    int64  // duration of the last closed segment
	lastOverrun  bool   // whether it overran

	acc    *accEntry // agent-scope counters of window accWin
	accWin int64
	// team-scope counters of window teamWin for team teamKey (a cache)
	teamAcc *accEntry
	teamKey string
	teamWin int64
}

func (a *agent) queueOf(call string) string {
	for i := range a.calls {
		if a.calls[i].id == call {
			return a.calls[i].queue
		}
	}
	return ""
}

func (a *agent) setQueue(call, queue string) {
	for i := range a.calls {
		if a.calls[i].id == call {
			a.calls[i].queue = queue
			return
		}
	}
	a.calls[a.callNext] = callMemo{id: call, queue: queue}
	a.callNext = (a.callNext + 1) % recentCalls
}

func working(s events.State) bool { return s != events.StateNone && s != events.StateLoggedOut }

type scopeKey struct {
	scope events.Scope
	key   string
}

type dedupEntry struct {
	k  key128
	ts int64
}

// Engine is the per-partition ACW engine. See the package doc for its
// guarantees. Create it with New or Restore.
type Engine struct {
	cfg       Config
	out       Emitter
	stateOut  StateEmitter // out, when it implements StateEmitter
	idleOut   IdleEmitter  // out, when it implements IdleEmitter
	windowMS  int64
	oooMS     int64
	horizonMS int64

	hasMax bool
	maxTS  int64
	seq    uint64

	idleMS   int64 // AgentIdleTimeout
	maxACWMS int64 // MaxACW (0: off)
	uncoded  map[string]bool
	futureMS int64 // MaxFuture (0: off)
	arrival  int64 // SetArrival's reference time (0: none)
	// idle holds one entry per agent in memory: a time at or before its
	// idle deadline (last event + idleMS), earliest first.
	idle minHeap[idleEntry]

	buf    *eventBuffer
	dedup  keySet
	dedupQ dedupQueue // in acceptance order
	// dedupOut counts the entries ever evicted from dedupQ: the journal
	// index (see AppendDedupJournal) of its oldest.
	dedupOut uint64

	agents map[string]*agent
	// agentCache finds most agents of agents without a map lookup.
	agentCache agentCache
	// agentsPeak is the most agents since agents was last built: Go maps
	// never give back the room of deleted entries, so a map that has
	// shrunk to a quarter is built anew (see forget).
	agentsPeak int
	working    int // agents whose state is neither none nor logged_out

	started  bool  // winStart is set
	winStart int64 // start of the current (only open) window
	acc      map[scopeKey]*accEntry
	accList  []*accEntry // acc's entries, in no order
	center   *accEntry
	queues   []*accEntry // some of acc's queue entries (a cache: queueCounters)
	dirty    []*accEntry // acc entries changed since the last EachChangedCounter

	alerts minHeap[alertEntry]
	// acwEnds holds the MaxACW deadline of every open wrap-up (when
	// MaxACW is set); entries of wrap-ups closed since are stale.
	acwEnds minHeap[alertEntry]
	// closedBy is what closes a segment now: events.ClosedByEvent but
	// while a deadline applies its event.
	closedBy string
	stats    Stats
	closed   bool

	// scratch, reused to avoid allocation
	scratchEv  events.Event
	scratchEvs []events.Event // Translate's buffer
	scratchRel []events.Event // release's buffer
	applying   events.Event
	seg        events.Segment
	alert      events.Alert
	interval   events.Interval
	agentState events.AgentState
}

// New returns an empty engine. cfg must pass Validate.
func New(cfg Config, out Emitter) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	stateOut, _ := out.(StateEmitter)
	idleOut, _ := out.(IdleEmitter)
	return &Engine{
		cfg:       cfg,
		out:       out,
		stateOut:  stateOut,
		idleOut:   idleOut,
		windowMS:  cfg.Window.Milliseconds(),
		oooMS:     cfg.MaxOutOfOrder.Milliseconds(),
		horizonMS: cfg.DedupHorizon.Milliseconds(),
		idleMS:    cfg.AgentIdleTimeout.Milliseconds(),
		maxACWMS:  cfg.MaxACW.Milliseconds(),
		acwEnds:   minHeap[alertEntry]{less: alertLess},
		closedBy:  events.ClosedByEvent,
		uncoded:   cfg.uncodedSet(),
		futureMS:  cfg.MaxFuture.Milliseconds(),
		idle:      minHeap[idleEntry]{less: idleLess},
		agents:    make(map[string]*agent),
		acc:       make(map[scopeKey]*accEntry),
		buf:       newEventBuffer(),
		alerts:    minHeap[alertEntry]{less: alertLess},
	}, nil
}

// Watermark is W: the largest accepted ts minus MaxOutOfOrder (Unix ms), or
// NoWatermark before the first accepted event. Events with ts < W are late;
// all accepted events with ts < W have been applied.
func (e *Engine) Watermark() int64 {
	if !e.hasMax {
		return NoWatermark
	}
	return e.maxTS - e.oooMS
}

// MaxTS is the largest accepted ts (Unix ms); ok is false before any.
func (e *Engine) MaxTS() (ts int64, ok bool) { return e.maxTS, e.hasMax }

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

// Buffered is the number of accepted events not yet applied.
func (e *Engine) Buffered() int { return e.buf.len() }

// dedupKey is event_id when present, else agent_id+ts+state+call_id;
// always scoped to the agent.
func dedupKey(ev *events.Event) key128 {
	h := newHasher()
	h.str(ev.AgentID)
	if ev.EventID != "" {
		h.word(1)
		h.str(ev.EventID)
	} else {
		h.word(2)
		h.word(uint64(ev.TS))
		h.word(uint64(ev.State))
		h.str(ev.CallID)
	}
	return h.sum()
}

// Apply offers one valid event (it must pass ev.Validate) to the engine in
// arrival order. It returns Duplicate or Late without changing any
// aggregate; otherwise the event is buffered and applied, with any records
// it makes due, when the watermark passes it. Apply must not be called
// after Close.
func (e *Engine) Apply(ev *events.Event) Outcome {
	if ev.TS > e.futureLimit() {
		e.stats.Future++
		return Future
	}
	k := dedupKey(ev)
	// One set operation on the hot path: insert, and see whether it was new.
	if !e.dedup.insert(k) {
		e.stats.Duplicates++
		return Duplicate
	}
	if e.hasMax && ev.TS < e.maxTS-e.oooMS {
		e.dedup.remove(k) // late events are never remembered
		e.stats.Late++
		return Late
	}
	e.stats.Accepted++
	e.dedupQ.push(dedupEntry{k: k, ts: ev.TS})
	e.seq++
	e.buf.push(ev, e.seq)
	if !e.hasMax || ev.TS > e.maxTS {
		e.hasMax = true
		e.maxTS = ev.TS
		w := e.maxTS - e.oooMS
		e.advance(w-1, w, w)
		e.evictDedup(w - e.horizonMS)
	}
	return Accepted
}

// SetArrival gives the arrival time (Unix ms; 0: unknown) of the input
// about to be offered, for Config.MaxFutureByArrival: until the next
// call, events more than MaxFuture ahead of it are rejected as Future.
// The live pipeline gives each Kafka record's timestamp. Translate also
// gives it to an adapter that implements events.Arrival.
func (e *Engine) SetArrival(ms int64) { e.arrival = ms }

// futureLimit is the largest ts an event may have now (see MaxFuture).
func (e *Engine) futureLimit() int64 {
	switch {
	case e.futureMS == 0:
		return math.MaxInt64
	case e.cfg.MaxFutureByArrival:
		if e.arrival == 0 {
			return math.MaxInt64
		}
		return e.arrival + e.futureMS
	case !e.hasMax:
		return math.MaxInt64
	}
	return e.maxTS + e.futureMS
}

// AdvanceWatermark raises the watermark to at least w (Unix ms) without an
// event, exactly as if an event with ts = w + MaxOutOfOrder had been
// accepted: everything the new watermark passes is applied, closed intervals
// are emitted and due overrun alerts fire, and later events with ts < w are
// late. The live pipeline calls it for a caught-up, idle partition as wall
// clock time passes; replay never does. A w at or below the current
// watermark does nothing.
func (e *Engine) AdvanceWatermark(w int64) {
	if e.hasMax && w+e.oooMS <= e.maxTS {
		return
	}
	if !e.started && e.buf.len() == 0 {
		// Nothing has happened yet: there is nothing to advance, and no
		// reason to reject the first events as late.
		return
	}
	e.hasMax = true
	e.maxTS = w + e.oooMS
	e.advance(w-1, w, w)
	e.evictDedup(w - e.horizonMS)
}

func (e *Engine) evictDedup(cutoff int64) {
	for e.dedupQ.len() > 0 && e.dedupQ.oldest().ts < cutoff {
		e.dedup.remove(e.dedupQ.oldest().k)
		e.dedupQ.pop()
		e.dedupOut++
	}
}

// advance runs the timeline in time order: interval boundaries B ≤ bLimit,
// buffered events with ts ≤ evLimit, max_acw and idle deadlines at ≤
// evLimit (they act as events, so they wait for the same watermark), and
// overrun deadlines at < aLimit. At one instant a boundary goes first (the
// interval [.., B) is complete), then events, then max_acw deadlines, then
// idle deadlines, then overrun deadlines (an event exactly at the deadline
// closes the wrap-up at the threshold, which is not an overrun).
func (e *Engine) advance(evLimit, bLimit, aLimit int64) {
	for {
		const none = math.MaxInt64
		evT, bT, iT, aT := int64(none), int64(none), int64(none), int64(none)
		if e.buf.len() > 0 && e.buf.minTS() <= evLimit {
			evT = e.buf.minTS()
		}
		if e.acwEnds.len() > 0 && e.acwEnds.min().at <= evLimit {
			// A max_acw deadline acts as an event: after the events at
			// its instant, before the idle deadlines there.
			if at := e.acwEnds.min().at; at < evT {
				evT = at
			}
		}
		if e.started && e.winStart+e.windowMS <= bLimit {
			bT = e.winStart + e.windowMS
		}
		if e.idle.len() > 0 && e.idle.min().at <= evLimit {
			iT = e.idle.min().at
		}
		if e.alerts.len() > 0 && e.alerts.min().at < aLimit {
			aT = e.alerts.min().at
		}
		switch {
		case bT != none && bT <= evT && bT <= iT && bT <= aT:
			e.fireBoundary(bT, min(bLimit, evT, iT))
		case evT != none && evT <= iT && evT <= aT:
			if e.buf.len() > 0 && e.buf.minTS() == evT {
				e.buf.pop(&e.applying)
				e.stats.Applied++
				e.apply(&e.applying)
			} else {
				e.fireMaxACW(e.acwEnds.pop())
			}
		case iT != none && iT <= aT:
			e.fireIdle(e.idle.pop())
		case aT != none:
			e.fireAlert(e.alerts.pop())
		default:
			return
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// fireBoundary closes the current window at b = winStart+window. When no
// agent is working and nothing was counted, it skips straight to the window
// containing next (the next thing on the timeline).
func (e *Engine) fireBoundary(b, next int64) {
	if e.working == 0 && len(e.acc) == 0 {
		e.winStart = max(b, floorDiv(next, e.windowMS)*e.windowMS)
		return
	}
	if e.working > 0 {
		for _, a := range e.agents {
			if working(a.state) {
				e.accrue(a, b)
			}
		}
	}
	e.emitWindow()
	e.winStart = b
}

func (e *Engine) emitWindow() {
	if len(e.acc) == 0 {
		return
	}
	iv := &e.interval
	slices.SortFunc(e.accList, func(x, y *accEntry) int { return cmpScopeKey(x.key, y.key) })
	for _, x := range e.accList {
		c := &x.Counters
		if c.IsZero() {
			continue
		}
		k := x.key
		*iv = events.Interval{Scope: k.scope, Key: k.key, Window: e.cfg.Window, Start: e.winStart, End: e.winStart + e.windowMS, Counters: *c}
		if k.scope != events.ScopeQueue {
			iv.Reasons = events.SortedReasons(x.reasons)
		}
		e.out.Interval(iv)
	}
	clear(e.acc)
	clear(e.accList)
	e.accList = e.accList[:0]
	e.center = nil
	clear(e.queues)
	e.queues = e.queues[:0]
	e.dirty = e.dirty[:0]
}

// OpenWindow reports the start (Unix ms) of the interval still being
// filled, whose counters EachOpenCounter visits; ok is false before the
// first applied event.
func (e *Engine) OpenWindow() (start int64, ok bool) { return e.winStart, e.started }

// EachOpenCounter calls fn for every scope/key of the open interval with its
// counters so far and its not-ready time by reason (nil for none, all
// the reasons kept, not capped), in scope then key order. The live
// pipeline diffs these between flushes to update Redis "as events are
// applied". fn must not keep c or reasons or call back into the engine.
// It also clears the changed marks (see EachChangedCounter).
func (e *Engine) EachOpenCounter(fn func(scope events.Scope, key string, c *events.Counters, reasons map[string]int64)) {
	e.clearDirty()
	for _, k := range e.sortedKeys() {
		x := e.acc[k]
		fn(k.scope, k.key, &x.Counters, x.reasons)
	}
}

// EachChangedCounter is EachOpenCounter limited to the scope/keys whose
// counters changed since the previous EachChangedCounter or
// EachOpenCounter call in the same open interval (a changed counter may
// have been changed back). Its cost is proportional to the keys changed,
// not to all keys of the interval.
func (e *Engine) EachChangedCounter(fn func(scope events.Scope, key string, c *events.Counters, reasons map[string]int64)) {
	slices.SortFunc(e.dirty, func(x, y *accEntry) int { return cmpScopeKey(x.key, y.key) })
	for _, x := range e.dirty {
		fn(x.key.scope, x.key.key, &x.Counters, x.reasons)
	}
	e.clearDirty()
}

func (e *Engine) clearDirty() {
	for _, x := range e.dirty {
		x.dirty = false
	}
	clear(e.dirty)
	e.dirty = e.dirty[:0]
}

// accEntry is the counters of one scope/key in the open interval.
type accEntry struct {
	events.Counters
	// reasons is the not-ready time by reason (agent, team and center
	// scopes), at most maxReasonsKept of them.
	reasons map[string]int64
	key     scopeKey
	dirty   bool
}

// maxReasonsKept bounds the reasons one scope/key keeps in an interval:
// time of further reasons goes to events.OtherReason. Records and Redis
// name the events.MaxReasons largest; keeping more makes those exact
// unless one interval has more distinct reasons than this.
const maxReasonsKept = 256

// addReason adds d ms of not-ready time of reason r to x.
func addReason(x *accEntry, r string, d int64) {
	if x.reasons == nil {
		x.reasons = make(map[string]int64, 4)
	}
	if _, ok := x.reasons[r]; !ok && len(x.reasons) >= maxReasonsKept {
		r = events.OtherReason
	}
	x.reasons[r] += d
}

// touch marks x changed and returns its counters for changing.
func (e *Engine) touch(x *accEntry) *events.Counters {
	if !x.dirty {
		x.dirty = true
		e.dirty = append(e.dirty, x)
	}
	return &x.Counters
}

func cmpScopeKey(x, y scopeKey) int {
	if x.scope != y.scope {
		return int(x.scope) - int(y.scope)
	}
	return strings.Compare(x.key, y.key)
}

// sortedKeys lists the current window's scope keys by scope, then key.
func (e *Engine) sortedKeys() []scopeKey {
	keys := make([]scopeKey, 0, len(e.acc))
	for k := range e.acc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmpScopeKey)
	return keys
}

// entry returns the open interval's entry of scope/key, creating it.
func (e *Engine) entry(scope events.Scope, key string) *accEntry {
	k := scopeKey{scope, key}
	x := e.acc[k]
	if x == nil {
		x = &accEntry{key: k}
		e.addEntry(x)
	}
	return x
}

// addEntry puts a new entry into the open interval.
func (e *Engine) addEntry(x *accEntry) {
	e.acc[x.key] = x
	e.accList = append(e.accList, x)
}

// queuesCached bounds Engine.queues: a centre's queues are few, and a
// linear scan of this many is cheaper than a map lookup.
const queuesCached = 16

// queueCounters returns the counters of queue q for changing.
func (e *Engine) queueCounters(q string) *events.Counters {
	for _, x := range e.queues {
		if k := x.key.key; len(k) == len(q) && (unsafe.StringData(k) == unsafe.StringData(q) || k == q) {
			return e.touch(x)
		}
	}
	x := e.entry(events.ScopeQueue, q)
	if len(e.queues) < queuesCached {
		e.queues = append(e.queues, x)
	}
	return e.touch(x)
}

func (e *Engine) agentCounters(a *agent) *events.Counters {
	if a.acc == nil || a.accWin != e.winStart {
		a.acc = e.entry(events.ScopeAgent, a.id)
		a.accWin = e.winStart
	}
	return e.touch(a.acc)
}

// teamCounters returns the counters of the agent's team, nil without one.
func (e *Engine) teamCounters(a *agent) *events.Counters {
	if a.team == "" {
		return nil
	}
	if a.teamAcc == nil || a.teamWin != e.winStart || a.teamKey != a.team {
		a.teamAcc = e.entry(events.ScopeTeam, a.team)
		a.teamKey, a.teamWin = a.team, e.winStart
	}
	return e.touch(a.teamAcc)
}

func (e *Engine) centerCounters() *events.Counters {
	if e.center == nil {
		e.center = e.entry(events.ScopeCenter, events.CenterKey)
	}
	return e.touch(e.center)
}

// accrue adds the agent's current state from a.accrued up to `to` into the
// current window. Callers guarantee [a.accrued, to) lies in that window.
func (e *Engine) accrue(a *agent, to int64) {
	d := to - a.accrued
	if d <= 0 {
		return
	}
	a.accrued = to
	if !working(a.state) {
		return
	}
	add := func(c *events.Counters) { c.AddStateTime(a.state, d) }
	add(e.agentCounters(a))
	team := e.teamCounters(a)
	if team != nil {
		add(team)
	}
	add(e.centerCounters())
	if a.state == events.StateNotReady {
		r := a.reason
		if r == "" {
			r = events.NoReason
		}
		addReason(a.acc, r, d)
		if team != nil {
			addReason(a.teamAcc, r, d)
		}
		addReason(e.center, r, d)
	}
}

func (e *Engine) agentFor(id string) *agent {
	if a := e.agentCache.get(id); a != nil {
		return a
	}
	a := e.agents[id]
	if a == nil {
		a = &agent{id: id}
		e.agents[id] = a
		e.agentsPeak = max(e.agentsPeak, len(e.agents))
	}
	e.agentCache.put(a, len(e.agents))
	return a
}

// apply changes state for one event; events reach it in nondecreasing ts.
func (e *Engine) apply(ev *events.Event) {
	t := ev.TS
	if !e.started {
		e.started = true
		e.winStart = floorDiv(t, e.windowMS) * e.windowMS
	}
	a := e.agentFor(ev.AgentID)
	e.accrue(a, t)
	if ev.Team != "" {
		a.team = ev.Team
	}
	if ev.AgentName != "" {
		a.name = ev.AgentName
	}
	if ev.CallID != "" && ev.Queue != "" {
		a.setQueue(ev.CallID, ev.Queue)
	}
	inCall := ev.State == events.StateTalking || ev.State == events.StateHold
	if a.state == events.StateRinging && !(ev.State == events.StateRinging && ev.CallID == a.call) &&
		!(inCall && ev.CallID == a.call) {
		e.countMissed(a, a.call) // the offer ended unanswered
	}
	if a.seg.open {
		if ev.Disposition != "" && (ev.CallID == "" || ev.CallID == a.seg.call) {
			a.seg.disposition = ev.Disposition
		}
		if ev.State != events.StateACW || ev.CallID != a.seg.call {
			e.closeSegment(a, t, ev.State)
		}
	}
	handleMS := int64(-1) // a talk/hold run that ends in a wrap-up of its call
	if a.talking && !(inCall && ev.CallID == a.talkCall) {
		e.countHandled(a)
		if run := t - a.talkStart; ev.State == events.StateACW && ev.CallID == a.talkCall {
			handleMS = run // completes with the wrap-up this event opens
		} else {
			e.countHandle(a, a.talkCall, run)
		}
		a.talking = false
	}
	if inCall && !a.talking {
		a.talking = true
		a.talkCall = ev.CallID
		a.talkStart = t
	}
	if ev.State == events.StateACW && !a.seg.open {
		e.openSegment(a, ev)
		a.seg.handleMS = handleMS
	}
	if working(a.state) != working(ev.State) {
		if working(ev.State) {
			e.working++
		} else {
			e.working--
		}
	}
	a.state = ev.State
	a.call = ev.CallID
	a.since = t
	a.reason = ""
	if ev.State == events.StateNotReady {
		a.reason = ev.Reason
	}
	if !a.idleQueued {
		a.idleQueued = true
		e.idle.push(idleEntry{at: t + e.idleMS, agent: a})
	}
	if e.stateOut != nil {
		a.fillState(&e.agentState)
		e.stateOut.AgentState(&e.agentState)
	}
}

// fillState sets st to the agent's live state.
func (a *agent) fillState(st *events.AgentState) {
	*st = events.AgentState{
		AgentID: a.id, State: a.state, Since: a.since, CallID: a.call, Team: a.team,
		LastACWMS: a.lastACWMS, LastACWOverrun: a.lastOverrun, Reason: a.reason, Name: a.name,
	}
	if a.call != "" {
		st.Queue = a.queueOf(a.call)
	}
	if a.seg.open {
		st.ACWStart = a.seg.start
		st.SegmentID = a.seg.id
		st.WarnMS = a.seg.warnMS
		st.OverrunMS = a.seg.overrunMS
		st.Alerted = a.seg.alerted
	}
}

// PendingEnds reports, for each agent in ids with an open wrap-up, the ts
// (Unix ms) of the earliest accepted, not yet applied event that will end
// that wrap-up (any state but acw, or acw of another call); agents without
// such an event are absent. The live pipeline uses it to hold back a
// wall-clock overrun alert for a wrap-up whose end has arrived and only
// waits for the watermark. It scans the buffer once.
func (e *Engine) PendingEnds(ids []string) map[string]int64 {
	out := map[string]int64{}
	calls := make(map[string]string, len(ids))
	for _, id := range ids {
		if a := e.agents[id]; a != nil && a.seg.open {
			calls[id] = a.seg.call
		}
	}
	if len(calls) == 0 {
		return out
	}
	for _, k := range e.buf.heap {
		ev := &e.buf.slab[k.slot].ev
		call, ok := calls[ev.AgentID]
		if !ok || (ev.State == events.StateACW && ev.CallID == call) {
			continue
		}
		if ts, seen := out[ev.AgentID]; !seen || ev.TS < ts {
			out[ev.AgentID] = ev.TS
		}
	}
	return out
}

// EachAgentState calls fn with the live state of every agent seen so far,
// in agent id order (what StateEmitter last reported for each). fn must not
// keep st or call back into the engine.
func (e *Engine) EachAgentState(fn func(st *events.AgentState)) {
	ids := make([]string, 0, len(e.agents))
	for id := range e.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var st events.AgentState
	for _, id := range ids {
		e.agents[id].fillState(&st)
		fn(&st)
	}
}

// StuckAgents calls fn, in no particular order, with the live state of
// every agent in a call state (ringing, talking, hold, acw) that began
// before before (Unix ms): held far longer than any real contact, such an
// agent points at a record the feed lost. fn must not keep st or call
// back into the engine.
func (e *Engine) StuckAgents(before int64, fn func(st *events.AgentState)) {
	var st events.AgentState
	for _, a := range e.agents {
		if a.state.CallLevel() && a.since < before {
			a.fillState(&st)
			fn(&st)
		}
	}
}

func (e *Engine) countHandled(a *agent) {
	e.agentCounters(a).CallsHandled++
	if c := e.teamCounters(a); c != nil {
		c.CallsHandled++
	}
	if q := a.queueOf(a.talkCall); q != "" {
		e.queueCounters(q).CallsHandled++
	}
	e.centerCounters().CallsHandled++
}

// countHandle counts a completed handle of call (see the README's rule
// on handles) of ms milliseconds.
func (e *Engine) countHandle(a *agent, call string, ms int64) {
	add := func(c *events.Counters) {
		c.HandleCount++
		c.HandleTotalMS += ms
		c.HandleMaxMS = max(c.HandleMaxMS, ms)
	}
	add(e.agentCounters(a))
	if c := e.teamCounters(a); c != nil {
		add(c)
	}
	if q := a.queueOf(call); q != "" {
		add(e.queueCounters(q))
	}
	add(e.centerCounters())
}

// countMissed counts an offer of call that ended unanswered.
func (e *Engine) countMissed(a *agent, call string) {
	e.agentCounters(a).MissedCount++
	if c := e.teamCounters(a); c != nil {
		c.MissedCount++
	}
	if q := a.queueOf(call); q != "" {
		e.queueCounters(q).MissedCount++
	}
	e.centerCounters().MissedCount++
}

func (e *Engine) openSegment(a *agent, ev *events.Event) {
	t := ev.TS
	if a.lastSegStart == t {
		a.segN++
	} else {
		a.lastSegStart, a.segN = t, 0
	}
	h := newHasher()
	h.str(a.id)
	h.str(ev.CallID)
	h.word(uint64(t))
	h.word(uint64(a.segN))
	warn, overrun := e.cfg.thresholdsFor(a.team, a.queueOf(ev.CallID))
	a.seg = openSeg{
		open:        true,
		serial:      a.seg.serial + 1,
		id:          h.sum().hex(),
		call:        ev.CallID,
		disposition: ev.Disposition,
		start:       t,
		warnMS:      warn,
		overrunMS:   overrun,
		handleMS:    -1,
	}
	e.alerts.push(alertEntry{at: t + overrun, agent: a, serial: a.seg.serial})
	if e.maxACWMS > 0 {
		e.acwEnds.push(alertEntry{at: t + e.maxACWMS, agent: a, serial: a.seg.serial})
	}
}

func (e *Engine) closeSegment(a *agent, end int64, endState events.State) {
	s := &a.seg
	d := end - s.start
	queue := a.queueOf(s.call)
	e.seg = events.Segment{
		SegmentID:   s.id,
		AgentID:     a.id,
		CallID:      s.call,
		Team:        a.team,
		Queue:       queue,
		Start:       s.start,
		End:         end,
		DurationMS:  d,
		ThresholdMS: s.overrunMS,
		Warn:        d > s.warnMS,
		Overrun:     d > s.overrunMS,
		Disposition: s.disposition,
		Coded:       s.disposition != "" && !e.uncoded[s.disposition],
		EndState:    endState,
		ClosedBy:    e.closedBy,
	}
	e.stats.Segments++
	a.lastACWMS, a.lastOverrun = d, e.seg.Overrun
	e.out.Segment(&e.seg)
	add := func(c *events.Counters) {
		c.ACWCount++
		c.ACWTotalMS += d
		c.ACWMaxMS = max(c.ACWMaxMS, d)
		if e.seg.Warn {
			c.WarnCount++
		}
		if e.seg.Overrun {
			c.OverrunCount++
		}
		if e.seg.Coded {
			c.ACWCodedCount++
		}
	}
	add(e.agentCounters(a))
	if c := e.teamCounters(a); c != nil {
		add(c)
	}
	if queue != "" {
		add(e.queueCounters(queue))
	}
	add(e.centerCounters())
	if s.handleMS >= 0 {
		e.countHandle(a, s.call, s.handleMS+d)
	}
	if s.alerted {
		e.emitAlert(a, events.AlertResolved, end)
	}
	s.open = false
	s.alerted = false
}

// fireIdle handles an idle entry that came due: an agent that has had
// an event since is queued again at its new deadline; one that has not
// is logged out at the deadline, exactly as if a logged_out event (no
// call_id) had arrived then, and is forgotten.
func (e *Engine) fireIdle(en idleEntry) {
	a := en.agent
	if due := a.since + e.idleMS; due > en.at {
		e.idle.push(idleEntry{at: due, agent: a})
		return
	}
	if working(a.state) {
		e.stats.IdleLogouts++
		e.applying = events.Event{AgentID: a.id, State: events.StateLoggedOut, TS: en.at}
		e.closedBy = events.ClosedByIdle
		e.apply(&e.applying)
		e.closedBy = events.ClosedByEvent
	}
	e.forget(a.id)
	e.stats.Forgotten++
	if e.idleOut != nil {
		e.idleOut.AgentForgotten(a.id)
	}
}

// forget drops an agent from memory, and builds the agents map anew once
// it holds a quarter of its peak, so that memory follows the agents kept.
func (e *Engine) forget(id string) {
	delete(e.agents, id)
	e.agentCache.drop(id)
	if n := len(e.agents); e.agentsPeak > 4096 && n < e.agentsPeak/4 {
		m := make(map[string]*agent, n)
		for k, v := range e.agents {
			m[k] = v
		}
		e.agents, e.agentsPeak = m, n
		e.agentCache.resize(2 * n)
	}
}

// fireMaxACW handles a max_acw deadline that came due: a wrap-up still
// open (the same one) is closed there, exactly as if a ready event
// without call_id had arrived then; its segment says closed_by max_acw.
func (e *Engine) fireMaxACW(en alertEntry) {
	a := en.agent
	if !a.seg.open || a.seg.serial != en.serial {
		return // stale: the wrap-up closed before its deadline
	}
	e.stats.MaxACWClosed++
	e.applying = events.Event{AgentID: a.id, State: events.StateReady, TS: en.at}
	e.closedBy = events.ClosedByMaxACW
	e.apply(&e.applying)
	e.closedBy = events.ClosedByEvent
}

func (e *Engine) fireAlert(en alertEntry) {
	a := en.agent
	if !a.seg.open || a.seg.alerted || a.seg.serial != en.serial {
		return // stale: the wrap-up closed before its deadline
	}
	a.seg.alerted = true
	e.emitAlert(a, events.AlertOverrun, en.at)
}

func (e *Engine) emitAlert(a *agent, kind string, at int64) {
	e.alert = events.Alert{
		Kind:        kind,
		SegmentID:   a.seg.id,
		AgentID:     a.id,
		CallID:      a.seg.call,
		Team:        a.team,
		Queue:       a.queueOf(a.seg.call),
		Start:       a.seg.start,
		At:          at,
		ThresholdMS: a.seg.overrunMS,
	}
	e.stats.Alerts++
	e.out.Alert(&e.alert)
}

// Close ends the input: every buffered event is applied, overrun alerts are
// raised for open wrap-ups older than their threshold at the largest
// accepted ts, states last until that ts, the remaining interval is
// emitted, and then one Open record per wrap-up still open, by agent id.
// The engine must not be used after Close.
func (e *Engine) Close() {
	if e.closed {
		return
	}
	e.closed = true
	if !e.hasMax {
		return
	}
	m := e.maxTS
	e.advance(m, m, m)
	for _, a := range e.agents {
		if working(a.state) {
			e.accrue(a, m)
		}
	}
	e.emitWindow()
	ids := make([]string, 0)
	for id, a := range e.agents {
		if a.seg.open {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := e.agents[id]
		e.out.Open(&events.OpenSegment{AgentID: a.id, CallID: a.seg.call, Team: a.team, Queue: a.queueOf(a.seg.call), Start: a.seg.start})
	}
}
