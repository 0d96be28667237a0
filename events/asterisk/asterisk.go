// Package asterisk reads Asterisk app_queue's queue_log (one line per
// record: TIME|CALLID|QUEUE|MEMBER|EVENT|DATA1|…) and turns it into
// canonical events.
//
// queue_log has no wrap-up line. The adapter supports the three ways sites
// get one, at the same time:
//
//   - Implicit wrapuptime: after COMPLETEAGENT, COMPLETECALLER or a
//     transfer, the member is in wrap-up for the queue's wrapuptime (or the
//     member's override), as app_queue itself treats it. The end is held
//     back (see events.Holder) and released once event time passes it.
//   - Pause-based: a PAUSE whose reason is a wrap-up reason (Wrapup, ACW,
//     After Call Work by default) is a wrap-up of the member's last call
//     until UNPAUSE. Taken during an implicit window, it extends the window
//     to the UNPAUSE; taken during the call, it starts when the call ends.
//   - Hybrid: an implicit window is cut short by the member's next CONNECT
//     (a call from another queue with a shorter wrapuptime).
//
// Times in queue_log are whole seconds, so durations are exact to 1 s.
// The adapter is stateful: it remembers each member's state, pause and
// open window, and its state goes into the pipeline's checkpoints.
package asterisk

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/acwstream/acwstream/events"
)

// Config sets the wrap-up rules; mirror queues.conf. The zero value gives
// Asterisk's defaults (no implicit wrap-up) and the default wrap-up pause
// reasons.
type Config struct {
	// WrapupTime is the wrapuptime of queues not listed in Queues
	// (Asterisk's default: 0, no implicit wrap-up).
	WrapupTime time.Duration
	// Queues is each queue's wrapuptime (queues.conf wrapuptime=).
	Queues map[string]time.Duration
	// Members overrides wrapuptime per member: queue name (or "*" for
	// every queue) → member (interface or membername) → wrapuptime, as
	// the member => line or AddQueueMember's wrapuptime argument does.
	Members map[string]map[string]time.Duration
	// WrapupReasons are the pause reasons that mean wrap-up, compared
	// without regard to case. Default: Wrapup, ACW, After Call Work.
	WrapupReasons []string
	// Agents maps a member (the queue_log MEMBER field) to the canonical
	// agent_id; members not listed are their own agent_id.
	Agents map[string]string
	// Teams maps an agent_id to its team (queue_log has none).
	Teams map[string]string
	// Location is the time zone of "YYYY-MM-DD HH:MM:SS" times (the
	// database backends' form); default UTC. Unix times need none.
	Location *time.Location
}

// DefaultWrapupReasons are the pause reasons that mean wrap-up when
// Config.WrapupReasons is empty.
var DefaultWrapupReasons = []string{"Wrapup", "ACW", "After Call Work"}

// Stats counts what the adapter read but did not turn into events.
type Stats struct {
	Ignored uint64 // lines of events that say nothing about an agent's state (ENTERQUEUE, RINGNOANSWER, …)
}

// Adapter is an events.Adapter, events.Holder and events.Stateful for
// queue_log. It belongs to one goroutine.
type Adapter struct {
	events.MessageKey
	cfg     Config
	reasons map[string]bool
	members map[string]*member
	holds   events.Holds
	Stats   Stats
}

// member is what the adapter knows of one agent.
type member struct {
	last     events.Last // the last state emitted
	paused   bool
	pauseWhy string
	wrapup   bool   // in an explicit (pause) wrap-up
	lastCall string // the member's last call, for a wrap-up pause after it
	lastQ    string
	// dispo is the disposition a CALLSTATUS gave lastCall before its
	// wrap-up began (VICIdial logs it before the wrap-up pause).
	dispo  string
	queues []string // queues the member was added to (ADDMEMBER)
}

// New returns an adapter for cfg.
func New(cfg Config) *Adapter {
	rs := cfg.WrapupReasons
	if len(rs) == 0 {
		rs = DefaultWrapupReasons
	}
	a := &Adapter{cfg: cfg, reasons: map[string]bool{}, members: map[string]*member{}}
	for _, r := range rs {
		a.reasons[strings.ToLower(r)] = true
	}
	if a.cfg.Location == nil {
		a.cfg.Location = time.UTC
	}
	return a
}

// wrapuptime is the implicit wrap-up of mem after a call from queue.
func (a *Adapter) wrapuptime(queue, mem string) time.Duration {
	if d, ok := a.cfg.Members[queue][mem]; ok {
		return d
	}
	if d, ok := a.cfg.Members["*"][mem]; ok {
		return d
	}
	if d, ok := a.cfg.Queues[queue]; ok {
		return d
	}
	return a.cfg.WrapupTime
}

// ParseTime reads a queue_log TIME: Unix seconds, optionally with a
// fraction ("1366720340.303267"), or "YYYY-MM-DD HH:MM:SS[.ffffff]" in
// loc, or followed by a zone as PostgreSQL exports the realtime table
// ("+00", "+0000", "+02:00", "-05"). It returns Unix ms.
func ParseTime(b []byte, loc *time.Location) (int64, bool) {
	s := string(bytes.TrimSpace(b))
	if i := strings.IndexByte(s, '-'); i > 0 {
		const layout = "2006-01-02 15:04:05.999999999"
		if j := strings.LastIndexAny(s, "+-"); j > len("2006-01-02") {
			zone := s[j+1:]
			switch {
			case len(zone) == 2:
				zone += ":00"
			case len(zone) == 4 && !strings.Contains(zone, ":"):
				zone = zone[:2] + ":" + zone[2:]
			}
			t, err := time.Parse(layout+"-07:00", s[:j+1]+zone)
			return t.UnixMilli(), err == nil
		}
		t, err := time.ParseInLocation(layout, s, loc)
		return t.UnixMilli(), err == nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 || len(sec) > 11 {
		return 0, false
	}
	ms := n * 1000
	if frac != "" {
		if len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
			return 0, false
		}
		frac = (frac + "00")[:3]
		f, _ := strconv.Atoi(frac)
		ms += int64(f)
	}
	return ms, true
}

// Translate implements events.Adapter for one queue_log line.
func (a *Adapter) Translate(rec []byte, out []events.Event) ([]events.Event, error) {
	rec = bytes.TrimRight(rec, "\r\n")
	f := strings.Split(string(rec), "|")
	if len(f) < 5 {
		return out, &events.MalformedError{Format: "queue_log", Msg: "want TIME|CALLID|QUEUE|MEMBER|EVENT[|DATA…], got " + strconv.Itoa(len(f)) + " field(s)"}
	}
	ts, ok := ParseTime([]byte(f[0]), a.cfg.Location)
	if !ok {
		return out, events.Invalidf("time", "%q is not Unix seconds or YYYY-MM-DD HH:MM:SS", f[0])
	}
	if ts < events.MinTS || ts >= events.MaxTS {
		return out, events.Invalidf("time", "%s is outside years 2000-2099", events.FormatTime(ts))
	}
	callid, queue, mem, ev := f[1], f[2], strings.TrimSpace(f[3]), f[4]
	data := func(i int) string {
		if 4+i < len(f) {
			if v := f[4+i]; v != "NULL" && v != `\N` { // an SQL export's NULL
				return v
			}
		}
		return ""
	}
	switch ev {
	case "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER",
		"PAUSE", "PAUSEALL", "UNPAUSE", "UNPAUSEALL", "AGENTLOGIN", "AGENTCALLBACKLOGIN",
		"AGENTLOGOFF", "AGENTCALLBACKLOGOFF", "ADDMEMBER", "REMOVEMEMBER", "WRAPUPSTART", "PAUSEREASON", "CALLSTATUS",
		"RINGNOANSWER":
	default:
		a.Stats.Ignored++
		return out, nil
	}
	if ev == "CALLSTATUS" && (mem == "" || mem == "NONE") {
		// VICIdial: the outcome of a call no agent took (DROP, HXFER…)
		a.Stats.Ignored++
		return out, nil
	}
	if mem == "" || mem == "NONE" {
		return out, events.Invalidf("member", "missing for %s", ev)
	}
	id := mem
	if v, ok := a.cfg.Agents[mem]; ok {
		id = v
	}
	if len(id) > events.MaxAgentIDLen {
		return out, events.Invalidf("member", "is %d bytes long, the limit is %d", len(id), events.MaxAgentIDLen)
	}
	if err := a.CheckKey(mem, id); err != nil {
		return out, err
	}
	if queue == "NONE" {
		queue = ""
	}
	call := callid
	switch call {
	case "", "NONE", "REALTIME", "MANAGER", "CLI", "AUTO":
		call = ""
	}
	switch ev {
	case "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER":
		if call == "" {
			return out, events.Invalidf("callid", "missing for %s", ev)
		}
	}
	m := a.members[id]
	if m == nil {
		m = &member{}
		a.members[id] = m
	}
	e := emitter{a: a, m: m, id: id, team: a.cfg.Teams[id], out: out}
	_, held := a.holds.Get(id)
	if held && ev == "WRAPUPSTART" && m.last.State.CallLevel() && m.last.State != events.StateACW && (call == "" || call == m.lastCall) {
		// The held end of the call just completed (see COMPLETEAGENT): Wazo
		// logs the call's wrap-up right after, so the call ends in it.
		a.holds.Cancel(id)
	} else if h, ok := a.holds.EndedBy(id, ts); ok {
		e.emit(h) // the member's implicit window ended before this record
	}
	switch ev {
	case "CONNECT":
		e.endWindow(ts)
		m.wrapup = false
		e.emit(events.Event{State: events.StateTalking, TS: ts, CallID: call, Queue: queue})
	case "COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER":
		e.endWindow(ts)
		m.lastCall, m.lastQ, m.dispo = call, queue, ""
		if m.wrapup {
			// a wrap-up pause taken during the call: wrap-up runs from its
			// end until UNPAUSE
			e.emit(events.Event{State: events.StateACW, TS: ts, CallID: call, Queue: queue})
			m.lastCall = ""
			break
		}
		if w := a.wrapuptime(queue, mem); w > 0 {
			e.emit(events.Event{State: events.StateACW, TS: ts, CallID: call, Queue: queue})
			a.holds.Set(e.idle(ts + w.Milliseconds()))
		} else {
			// No implicit wrap-up: the call ends here, unless Wazo's
			// WRAPUPSTART follows right after (then it ends in that
			// wrap-up). The end is held until event time passes it,
			// which adds nothing: the engine waits as long to apply it.
			a.holds.Set(e.idle(ts))
		}
	case "RINGNOANSWER":
		// The member was rung for DATA1 ms and did not answer: a missed
		// offer, counted when queue_log reports it (its ring time is not
		// known as state time). Asterisk rings only an idle member.
		if call == "" || m.paused || m.last.State.CallLevel() {
			a.Stats.Ignored++
			return e.out, nil
		}
		e.emit(events.Event{State: events.StateRinging, TS: ts, CallID: call, Queue: queue})
		e.emit(e.idle(ts))
	case "CALLSTATUS":
		// VICIdial/QueueMetrics: DATA1 is the call's disposition. It goes
		// on the wrap-up of that call: the open one, or the next.
		dispo := strings.TrimSpace(data(1))
		switch {
		case dispo == "":
		case m.last.State == events.StateACW && (call == "" || call == m.last.CallID):
			ev := events.Event{AgentID: id, Team: e.team, State: events.StateACW, TS: ts, CallID: m.last.CallID, Disposition: dispo, Channel: "voice"}
			e.out = append(e.out, ev)
		case call == "" || call == m.lastCall:
			m.dispo = dispo
		default:
			a.Stats.Ignored++
		}
		return e.out, nil
	case "PAUSEREASON":
		// VICIdial/QueueMetrics: the reason of the pause just begun
		// (PAUSEALL with no reason comes first).
		if !m.paused || strings.TrimSpace(data(1)) == "" {
			a.Stats.Ignored++
			return e.out, nil
		}
		ev = "PAUSE"
		f = append(f[:5:5], strings.TrimSpace(data(1)))
		fallthrough
	case "PAUSE", "PAUSEALL":
		why := data(1)
		m.paused, m.pauseWhy = true, why
		if why == "" {
			m.pauseWhy = "paused"
		}
		if a.reasons[strings.ToLower(strings.TrimSpace(why))] {
			m.wrapup = true
			a.holds.Cancel(id)
			switch {
			case m.last.State.CallLevel():
				// in an implicit window: it lasts until UNPAUSE now; in a
				// call: wrap-up starts when the call ends
			case m.lastCall != "":
				// the wrap-up of the member's last call
				e.emit(events.Event{State: events.StateACW, TS: ts, CallID: m.lastCall, Queue: m.lastQ, Disposition: m.dispo})
				m.dispo = ""
			default:
				e.emit(events.Event{State: events.StateACW, TS: ts, CallID: "pause-" + strconv.FormatInt(ts, 10)})
			}
			m.lastCall = ""
			break
		}
		if h, ok := a.holds.Get(id); ok {
			a.holds.Set(e.idle(h.TS))
		} else if !m.last.State.CallLevel() || (m.wrapup && m.last.State == events.StateACW) {
			e.emit(e.idle(ts))
		}
		m.wrapup = false
	case "UNPAUSE", "UNPAUSEALL":
		m.paused, m.pauseWhy = false, ""
		if h, ok := a.holds.Get(id); ok {
			a.holds.Set(e.idle(h.TS))
		} else if !m.last.State.CallLevel() || (m.wrapup && m.last.State == events.StateACW) {
			e.emit(e.idle(ts))
		}
		m.wrapup = false
	case "WRAPUPSTART":
		// Wazo: a wrap-up of DATA1 seconds from this line, logged right
		// after the call's completion (or alone, callid NONE).
		secs, err := strconv.ParseFloat(strings.TrimSpace(data(1)), 64)
		if err != nil || secs < 0 || secs > 86400 {
			return out, events.Invalidf("data1", "%q is not a wrap-up length in seconds", data(1))
		}
		end := ts + int64(secs*1000)
		if _, ok := a.holds.Get(id); ok && m.last.State == events.StateACW {
			// the implicit window of the call just completed: this is its
			// real length
			a.holds.Set(e.idle(end))
			break
		}
		wc := m.lastCall
		if call != "" {
			wc = call
		}
		if wc == "" {
			wc = "wrapup-" + strconv.FormatInt(ts, 10)
		}
		q := queue
		if q == "" {
			q = m.lastQ
		}
		e.emit(events.Event{State: events.StateACW, TS: ts, CallID: wc, Queue: q})
		m.lastCall = ""
		a.holds.Set(e.idle(end))
	case "AGENTLOGIN", "AGENTCALLBACKLOGIN":
		a.holds.Cancel(id)
		m.paused, m.wrapup, m.lastCall = false, false, ""
		e.emit(events.Event{State: events.StateReady, TS: ts})
	case "ADDMEMBER":
		if !contains(m.queues, queue) {
			m.queues = append(m.queues, queue)
		}
		if m.last.State == events.StateNone || m.last.State == events.StateLoggedOut {
			m.paused = strings.EqualFold(data(1), "PAUSED")
			m.pauseWhy = "paused"
			e.emit(e.idle(ts))
		}
	case "REMOVEMEMBER", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF":
		if ev == "REMOVEMEMBER" {
			m.queues = remove(m.queues, queue)
			if len(m.queues) > 0 {
				break
			}
		}
		e.endWindow(ts)
		m.paused, m.wrapup, m.queues, m.lastCall = false, false, nil, ""
		e.emit(events.Event{State: events.StateLoggedOut, TS: ts})
	}
	return e.out, nil
}

// emitter appends a member's events, skipping ones that change nothing.
type emitter struct {
	a        *Adapter
	m        *member
	id, team string
	out      []events.Event
}

// idle is the state the member returns to at ts outside calls.
func (e *emitter) idle(ts int64) events.Event {
	ev := events.Event{AgentID: e.id, Team: e.team, State: events.StateReady, TS: ts}
	if e.m.paused {
		ev.State, ev.Reason = events.StateNotReady, e.m.pauseWhy
	}
	return ev
}

func (e *emitter) emit(ev events.Event) { e.out = e.m.last.Emit(e.out, ev, e.id, e.team) }

// endWindow ends the member's implicit window at ts: a window that ended
// by then is emitted at its end; one still running is cut short (the
// caller's event at ts ends it).
func (e *emitter) endWindow(ts int64) {
	if h, ok := e.a.holds.Cancel(e.id); ok && h.TS <= ts {
		e.emit(h)
	}
}

// Advance implements events.Holder: implicit wrap-up windows whose end
// event time has passed are closed.
func (a *Adapter) Advance(w int64, out []events.Event) []events.Event {
	n := len(out)
	out = a.holds.Due(w, out)
	for i := n; i < len(out); i++ {
		a.members[out[i].AgentID].last.Set(&out[i])
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func remove(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// AppendState implements events.Stateful.
func (a *Adapter) AppendState(b []byte) []byte {
	b = append(b, 2) // version
	b = events.AppendStateMap(b, a.members, func(b []byte, m *member) []byte {
		b = append(m.last.AppendState(b), flags(m.paused, m.wrapup))
		for _, s := range [...]string{m.pauseWhy, m.lastCall, m.lastQ, m.dispo} {
			b = events.AppendStateString(b, s)
		}
		b = binary.AppendUvarint(b, uint64(len(m.queues)))
		for _, q := range m.queues {
			b = events.AppendStateString(b, q)
		}
		return b
	})
	return a.holds.AppendState(b)
}

// RestoreState implements events.Stateful.
func (a *Adapter) RestoreState(b []byte) error {
	r := &events.StateReader{B: b}
	version := r.Byte()
	if version != 1 && version != 2 {
		return events.ErrState
	}
	members := events.ReadStateMap(r, func(r *events.StateReader) *member {
		m := &member{last: r.Last()}
		f := r.Byte()
		m.paused, m.wrapup = f&1 != 0, f&2 != 0
		fields := []*string{&m.pauseWhy, &m.lastCall, &m.lastQ, &m.dispo}
		if version == 1 {
			fields = fields[:3]
		}
		for _, p := range fields {
			*p = r.String()
		}
		for range r.Count() {
			m.queues = append(m.queues, r.String())
		}
		return m
	})
	var h events.Holds
	h.RestoreState(r)
	if err := r.Err(); err != nil {
		return err
	}
	a.members, a.holds = members, h
	return nil
}

func flags(bs ...bool) byte {
	var f byte
	for i, b := range bs {
		if b {
			f |= 1 << i
		}
	}
	return f
}

// Skipped implements events.Skipper: Stats by kind.
func (a *Adapter) Skipped() map[string]uint64 {
	return map[string]uint64{"ignored": a.Stats.Ignored}
}
