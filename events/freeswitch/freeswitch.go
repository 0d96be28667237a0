// Package freeswitch reads FreeSWITCH mod_callcenter events (ESL
// CUSTOM events of subclass callcenter::info, in ESL's json form, one
// object per record, or its plain "Header: value" form, one event per
// record) and turns them into canonical events.
//
// mod_callcenter has no wrap-up event. As its agents_callback does, the
// adapter derives it:
//
//   - Standard agents: wrap-up runs from CC-Bridge-Terminated-Time
//     (bridge-agent-end) for the agent's wrap-up-time. The end is held back
//     (events.Holder) until event time passes it; a new bridge for the
//     agent cuts it short.
//   - Agents with status "Available (On Demand)" go to state Idle after a
//     call and stay in wrap-up until their state returns to Waiting (or
//     their status changes to a break or logout).
//
// CC-Bridge-Terminated-Time and CC-Agent-Answered-Time are whole seconds;
// other times come from Event-Date-Timestamp (microseconds).
package freeswitch

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/acwstream/acwstream/events"
)

// Config sets the wrap-up rules; mirror callcenter.conf.xml. The zero
// value means no implicit wrap-up (wrap-up-time 0) for agents not listed.
type Config struct {
	// WrapUpTime is the wrap-up-time of agents not listed in Agents.
	WrapUpTime time.Duration
	// WrapUpTimes is each agent's wrap-up-time (CC-Agent name →
	// duration), as its <agent … wrap-up-time="10"/> sets it.
	WrapUpTimes map[string]time.Duration
	// Agents maps a CC-Agent name ("1000@default") to the canonical
	// agent_id; agents not listed are their own agent_id.
	Agents map[string]string
	// Teams maps an agent_id to its team.
	Teams map[string]string
}

// Stats counts what the adapter read but did not turn into events.
type Stats struct {
	Ignored uint64 // events that are not callcenter::info agent events
}

// Adapter is an events.Adapter, events.Holder and events.Stateful for
// mod_callcenter ESL events.
type Adapter struct {
	events.MessageKey
	cfg    Config
	agents map[string]*agent
	holds  events.Holds
	Stats  Stats
}

// agent is what the adapter knows of one agent.
type agent struct {
	status string // the last CC-Agent-Status ("" not seen)
	inCall bool   // bridged (or offered) and not yet ended
	wrapup bool   // in an on-demand wrap-up (Idle until Waiting)
	// answered: bridge-agent-start came for offerCall at answerTS, and
	// the agent is not yet talking: that waits for the bridge ("In a
	// queue call").
	answered bool
	answerTS int64
	queue    string      // the current or last call's queue
	last     events.Last // the last state emitted
	// offerCall and offerTS are the last call offered and when (Unix
	// ms): the whole-second bridge times of that call are never earlier.
	offerCall string
	offerTS   int64
}

// New returns an adapter for cfg.
func New(cfg Config) *Adapter {
	return &Adapter{cfg: cfg, agents: map[string]*agent{}}
}

const onDemand = "Available (On Demand)"

// Translate implements events.Adapter.
func (a *Adapter) Translate(rec []byte, out []events.Event) ([]events.Event, error) {
	h, err := parse(rec)
	if err != nil {
		return out, err
	}
	us, err := strconv.ParseInt(h["Event-Date-Timestamp"], 10, 64)
	if err != nil {
		return out, events.Invalidf("Event-Date-Timestamp", "%q is not Unix microseconds", h["Event-Date-Timestamp"])
	}
	ts := us / 1000
	if ts < events.MinTS || ts >= events.MaxTS {
		return out, events.Invalidf("Event-Date-Timestamp", "%s is outside years 2000-2099", events.FormatTime(ts))
	}
	action := h["CC-Action"]
	switch action {
	case "agent-status-change", "agent-state-change", "agent-offering", "bridge-agent-start", "bridge-agent-end", "bridge-agent-fail":
	default:
		a.Stats.Ignored++
		return out, nil
	}
	if h["Event-Subclass"] != "callcenter::info" {
		a.Stats.Ignored++
		return out, nil
	}
	name := h["CC-Agent"]
	if name == "" {
		return out, events.Invalidf("CC-Agent", "missing for %s", action)
	}
	id := name
	if v, ok := a.cfg.Agents[name]; ok {
		id = v
	}
	if len(id) > events.MaxAgentIDLen {
		return out, events.Invalidf("CC-Agent", "is %d bytes long, the limit is %d", len(id), events.MaxAgentIDLen)
	}
	if err := a.CheckKey(name, id); err != nil {
		return out, err
	}
	call := h["CC-Member-Session-UUID"]
	if call == "" {
		call = h["CC-Member-UUID"]
	}
	// the whole-second times the bridge events carry
	secs := func(field string) (int64, error) {
		v := h[field]
		if v == "" {
			return ts, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n*1000 < events.MinTS || n*1000 >= events.MaxTS {
			return 0, events.Invalidf(field, "%q is not Unix seconds in years 2000-2099", v)
		}
		return n * 1000, nil
	}
	var at int64 = ts
	switch action {
	case "agent-status-change":
		if h["CC-Agent-Status"] == "" {
			return out, events.Invalidf("CC-Agent-Status", "missing")
		}
	case "agent-state-change":
		if h["CC-Agent-State"] == "" {
			return out, events.Invalidf("CC-Agent-State", "missing")
		}
	case "bridge-agent-start", "bridge-agent-end", "agent-offering":
		if call == "" {
			return out, events.Invalidf("CC-Member-Session-UUID", "missing for %s", action)
		}
		field := "CC-Agent-Answered-Time"
		if action == "bridge-agent-end" {
			field = "CC-Bridge-Terminated-Time"
		}
		if action != "agent-offering" {
			if at, err = secs(field); err != nil {
				return out, err
			}
		}
	}
	ag := a.agents[id]
	if ag == nil {
		ag = &agent{}
		a.agents[id] = ag
	}
	if call != "" && call == ag.offerCall && at < ag.offerTS {
		// CC-*-Time is whole seconds, the offer's time microseconds: an
		// answer in the offer's second is dated with the offer.
		at = ag.offerTS
	}
	e := emitter{a: a, ag: ag, id: id, team: a.cfg.Teams[id], out: out}
	if h, ok := a.holds.EndedBy(id, at); ok {
		e.emit(h) // the agent's implicit window ended before this record
	}
	switch action {
	case "agent-status-change":
		ag.status = h["CC-Agent-Status"]
		if ag.status == "Logged Out" {
			a.holds.Cancel(id)
			ag.inCall, ag.wrapup = false, false
			e.emit(events.Event{State: events.StateLoggedOut, TS: ts})
			break
		}
		if held, ok := a.holds.Get(id); ok {
			a.holds.Set(e.idle(held.TS))
		} else if !ag.inCall && (!ag.wrapup || !available(ag.status)) {
			ag.wrapup = false
			e.emit(e.idle(ts))
		}
	case "agent-state-change":
		switch st := h["CC-Agent-State"]; {
		case st == "Waiting" && ag.wrapup:
			ag.wrapup = false
			e.emit(e.idle(ts))
		case st == "In a queue call" && ag.answered:
			// the caller is bridged to the agent: the call begins
			ag.answered = false
			e.emit(events.Event{State: events.StateTalking, TS: ts, CallID: ag.offerCall, Queue: ag.queue})
		}
	case "agent-offering":
		e.endWindow(ts)
		ag.inCall, ag.wrapup, ag.answered, ag.queue = true, false, false, h["CC-Queue"]
		ag.offerCall, ag.offerTS = call, ts
		e.emit(events.Event{State: events.StateRinging, TS: ts, CallID: call, Queue: ag.queue})
	case "bridge-agent-fail":
		ag.answered = false
		if ag.inCall {
			ag.inCall = false
			e.emit(e.idle(ts))
		}
	case "bridge-agent-start":
		// The agent answered; mod_callcenter bridges the caller next, and
		// says "In a queue call" when it did: the talk begins there.
		e.endWindow(at)
		ag.inCall, ag.wrapup, ag.answered, ag.queue = true, false, true, cmp.Or(h["CC-Queue"], ag.queue)
		ag.answerTS = at
		if call != ag.offerCall {
			ag.offerCall, ag.offerTS = call, at
		}
	case "bridge-agent-end":
		ag.inCall = false
		q := cmp.Or(h["CC-Queue"], ag.queue)
		bridged := h["CC-Agent-Bridged"] != "false"
		if ag.answered && bridged {
			// No "In a queue call" came (a feed that leaves state changes
			// out): the talk began when the agent answered.
			e.emit(events.Event{State: events.StateTalking, TS: min(ag.answerTS, at), CallID: call, Queue: q})
		}
		ag.answered = false
		switch w := a.wrapUpTime(name); {
		case !bridged:
			// the caller hung up as the agent answered: no call was
			// handled, so there is nothing to wrap up (an on-demand agent
			// goes back to Waiting, mod_callcenter.c)
			e.emit(e.idle(at))
		case ag.status == onDemand:
			ag.wrapup = true
			e.emit(events.Event{State: events.StateACW, TS: at, CallID: call, Queue: q})
		case w > 0:
			e.emit(events.Event{State: events.StateACW, TS: at, CallID: call, Queue: q})
			a.holds.Set(e.idle(at + w.Milliseconds()))
		default:
			e.emit(e.idle(at))
		}
	}
	return e.out, nil
}

func available(status string) bool { return status == "Available" || status == onDemand }

func (a *Adapter) wrapUpTime(name string) time.Duration {
	if d, ok := a.cfg.WrapUpTimes[name]; ok {
		return d
	}
	return a.cfg.WrapUpTime
}

// parse reads an ESL event as JSON or as plain headers.
func parse(rec []byte) (map[string]string, error) {
	b := bytes.TrimSpace(rec)
	if len(b) > 0 && b[0] == '{' {
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, events.Invalidf(te.Field, "is a JSON %s, want a %s", te.Value, te.Type)
			}
			return nil, &events.MalformedError{Format: "freeswitch", Msg: err.Error()}
		}
		h := make(map[string]string, len(raw))
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				h[k] = v
			case float64:
				h[k] = strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
		if h["Event-Name"] == "" {
			return nil, &events.MalformedError{Format: "freeswitch", Msg: "no Event-Name: not an ESL event"}
		}
		return h, nil
	}
	h := map[string]string{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break // the end of the headers
		}
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			return nil, &events.MalformedError{Format: "freeswitch", Msg: "want ESL JSON or \"Header: value\" lines, got " + strconv.Quote(string(line[:min(len(line), 40)]))}
		}
		val, err := url.QueryUnescape(string(v))
		if err != nil {
			val = string(v)
		}
		h[string(k)] = val
	}
	if h["Event-Name"] == "" {
		return nil, &events.MalformedError{Format: "freeswitch", Msg: "no Event-Name: not an ESL event"}
	}
	return h, nil
}

// emitter appends an agent's events, skipping ones that change nothing.
type emitter struct {
	a        *Adapter
	ag       *agent
	id, team string
	out      []events.Event
}

// idle is the state the agent returns to at ts outside calls: from its
// status.
func (e *emitter) idle(ts int64) events.Event {
	ev := events.Event{AgentID: e.id, Team: e.team, State: events.StateReady, TS: ts}
	switch s := e.ag.status; {
	case s == "Logged Out":
		ev.State = events.StateLoggedOut
	case s != "" && !available(s):
		ev.State, ev.Reason = events.StateNotReady, s
	}
	return ev
}

func (e *emitter) emit(ev events.Event) { e.out = e.ag.last.Emit(e.out, ev, e.id, e.team) }

// endWindow ends the agent's implicit window at ts: emitted at its end if
// that came first, else cut short by the caller's event at ts.
func (e *emitter) endWindow(ts int64) {
	if h, ok := e.a.holds.Cancel(e.id); ok && h.TS <= ts {
		e.emit(h)
	}
}

// Advance implements events.Holder.
func (a *Adapter) Advance(w int64, out []events.Event) []events.Event {
	n := len(out)
	out = a.holds.Due(w, out)
	for i := n; i < len(out); i++ {
		a.agents[out[i].AgentID].last.Set(&out[i])
	}
	return out
}

// AppendState implements events.Stateful.
func (a *Adapter) AppendState(b []byte) []byte {
	b = append(b, 3)
	b = events.AppendStateMap(b, a.agents, func(b []byte, g *agent) []byte {
		var f byte
		if g.inCall {
			f |= 1
		}
		if g.wrapup {
			f |= 2
		}
		if g.answered {
			f |= 4
		}
		b = append(g.last.AppendState(b), f)
		for _, s := range [...]string{g.status, g.queue, g.offerCall} {
			b = events.AppendStateString(b, s)
		}
		b = binary.AppendVarint(b, g.offerTS)
		return binary.AppendVarint(b, g.answerTS)
	})
	return a.holds.AppendState(b)
}

// RestoreState implements events.Stateful.
func (a *Adapter) RestoreState(b []byte) error {
	r := &events.StateReader{B: b}
	version := r.Byte()
	if version < 1 || version > 3 {
		return events.ErrState
	}
	agents := events.ReadStateMap(r, func(r *events.StateReader) *agent {
		last := r.Last()
		f := r.Byte()
		g := &agent{inCall: f&1 != 0, wrapup: f&2 != 0, answered: f&4 != 0, last: last}
		for _, p := range [...]*string{&g.status, &g.queue} {
			*p = r.String()
		}
		if version >= 2 {
			g.offerCall = r.String()
			g.offerTS = r.Varint()
		}
		if version >= 3 {
			g.answerTS = r.Varint()
		}
		return g
	})
	var h events.Holds
	h.RestoreState(r)
	if err := r.Err(); err != nil {
		return err
	}
	a.agents, a.holds = agents, h
	return nil
}

// Skipped implements events.Skipper: Stats by kind.
func (a *Adapter) Skipped() map[string]uint64 {
	return map[string]uint64{"ignored": a.Stats.Ignored}
}
