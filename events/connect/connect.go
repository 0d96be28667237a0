// Package connect reads the Amazon Connect agent event stream (the JSON
// events Amazon Connect publishes to Kinesis: STATE_CHANGE, HEART_BEAT,
// LOGIN, LOGOUT) and turns it into canonical events.
//
// Amazon Connect sends no "wrap-up started" event. As AWS documents
// (determine-acw-time), a voice contact's wrap-up starts at its
// StateStartTimestamp when its State becomes ENDED, and ends at the
// EventTimestamp of the STATE_CHANGE whose current snapshot no longer holds
// the contact. Every event carries the agent's previous and current
// snapshot, so the adapter needs no state of its own: it derives the
// canonical state of each snapshot and emits one event when they differ.
// Configuration-only changes and heartbeats produce nothing.
//
// Only VOICE contacts count. Chat, task and email contacts, which Connect
// lets an agent handle concurrently, are skipped (and counted in Stats),
// never mixed into voice wrap-ups.
package connect

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/acwstream/acwstream/events"
)

// Config sets how Connect's names map to canonical fields. The zero value
// gives the documented defaults.
type Config struct {
	// Statuses maps agent status names (as set in the CCP) to canonical
	// agent-level states: ready, not_ready or logged_out. Names not listed
	// are not_ready, with the name as reason. Defaults: Available → ready,
	// Offline → logged_out; entries here add to or replace those.
	Statuses map[string]events.State
	// AgentID picks the canonical agent_id: "arn" (default: the id at the
	// end of AgentARN, stable and always present) or "username"
	// (Configuration.Username, falling back to the ARN's id).
	AgentID string
	// TeamLevel picks the hierarchy level (1–5) whose group name is the
	// team. 0 (default): the deepest level present. -1: no team.
	TeamLevel int
}

// Stats counts what the adapter read but did not turn into events.
type Stats struct {
	Heartbeats uint64 // HEART_BEAT events
	Unchanged  uint64 // STATE_CHANGE events that changed nothing canonical (configuration)
	// NonVoice counts chat, task and email contacts skipped, once each
	// (when they first appear in a snapshot).
	NonVoice uint64
}

// Adapter is an events.Adapter for the Connect agent event stream.
type Adapter struct {
	events.MessageKey
	cfg      Config
	statuses map[string]events.State
	Stats    Stats
}

// New returns an adapter for cfg.
func New(cfg Config) *Adapter {
	st := map[string]events.State{"Available": events.StateReady, "Offline": events.StateLoggedOut}
	for k, v := range cfg.Statuses {
		st[k] = v
	}
	return &Adapter{cfg: cfg, statuses: st}
}

type agentEvent struct {
	AgentARN       string    `json:"AgentARN"`
	EventID        string    `json:"EventId"`
	EventTimestamp string    `json:"EventTimestamp"`
	EventType      string    `json:"EventType"`
	Current        *snapshot `json:"CurrentAgentSnapshot"`
	Previous       *snapshot `json:"PreviousAgentSnapshot"`
}

type snapshot struct {
	AgentStatus *struct {
		Name string `json:"Name"`
	} `json:"AgentStatus"`
	Configuration *struct {
		Username string `json:"Username"`
		// Read only for the team: a shape nobody documented (a string
		// "null", an array) leaves the team empty, it does not reject
		// the record.
		Hierarchy json.RawMessage `json:"AgentHierarchyGroups"`
	} `json:"Configuration"`
	Contacts []contact `json:"Contacts"`
}

type contact struct {
	ContactID           string          `json:"ContactId"`
	Channel             string          `json:"Channel"`
	State               string          `json:"State"`
	StateStartTimestamp string          `json:"StateStartTimestamp"`
	Queue               json.RawMessage `json:"Queue"` // a dimension: read leniently
}

// name reads a dimension's {"Name": …}; any other shape gives "".
func name(raw json.RawMessage) string {
	var n struct {
		Name any `json:"Name"`
	}
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	s, _ := n.Name.(string)
	return s
}

// view is the canonical reading of one snapshot.
type view struct {
	state  events.State
	call   string
	queue  string
	reason string
	since  string // the contact's StateStartTimestamp, for contact states
}

// Translate implements events.Adapter.
func (a *Adapter) Translate(rec []byte, out []events.Event) ([]events.Event, error) {
	var ev agentEvent
	if err := json.Unmarshal(rec, &ev); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return out, events.Invalidf(te.Field, "is a JSON %s, want a %s", te.Value, te.Type)
		}
		return out, &events.MalformedError{Format: "connect", Msg: err.Error()}
	}
	ts, err := events.ParseRFC3339Millis([]byte(ev.EventTimestamp))
	if err != nil {
		return out, events.Invalidf("EventTimestamp", "%q is not an ISO 8601 time", ev.EventTimestamp)
	}
	agent := a.agentID(&ev)
	if agent == "" {
		return out, events.Invalidf("AgentARN", "%q names no agent", ev.AgentARN)
	}
	if err := a.CheckKey(ev.AgentARN, agent); err != nil {
		return out, err
	}
	switch ev.EventType {
	case "HEART_BEAT":
		a.Stats.Heartbeats++
		return out, nil
	case "LOGOUT":
		return append(out, events.Event{AgentID: agent, State: events.StateLoggedOut, TS: ts, EventID: ev.EventID, Team: a.team(ev.Current)}), nil
	case "LOGIN", "STATE_CHANGE":
	default:
		return out, events.Invalidf("EventType", "%q is not STATE_CHANGE, HEART_BEAT, LOGIN or LOGOUT", ev.EventType)
	}
	if ev.Current == nil {
		return out, events.Invalidf("CurrentAgentSnapshot", "missing")
	}
	cur, err := a.view(ev.Current)
	if err != nil {
		return out, err
	}
	a.countNonVoice(ev.Current, ev.Previous)
	if ev.EventType == "STATE_CHANGE" && ev.Previous != nil {
		prev, err := a.view(ev.Previous)
		if err == nil && prev == cur {
			a.Stats.Unchanged++
			return out, nil
		}
	}
	e := events.Event{AgentID: agent, State: cur.state, TS: ts, EventID: ev.EventID, Team: a.team(ev.Current),
		CallID: cur.call, Queue: cur.queue, Reason: cur.reason, AgentName: a.agentName(&ev, agent)}
	if cur.call != "" {
		e.Channel = "voice"
		// A contact state starts at its StateStartTimestamp (for ENDED:
		// the start of wrap-up, as AWS documents), except hold and the
		// resume from it: StateStartTimestamp keeps the connect time
		// through them (the API reference), so the record dates them.
		t, err := events.ParseRFC3339Millis([]byte(cur.since))
		if err != nil {
			return out, events.Invalidf("CurrentAgentSnapshot.Contacts.StateStartTimestamp", "%q is not an ISO 8601 time", cur.since)
		}
		if cur.state != events.StateHold && !(cur.state == events.StateTalking && wasOnHold(ev.Previous, cur.call)) {
			e.TS = t
		}
	}
	if err := e.Validate(); err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) && fe.Field == "ts" {
			return out, events.Invalidf("EventTimestamp", "%s is outside years 2000-2099", events.FormatTime(e.TS))
		}
		return out, err
	}
	return append(out, e), nil
}

// wasOnHold tells whether s holds contact call on hold.
func wasOnHold(s *snapshot, call string) bool {
	if s == nil {
		return false
	}
	for _, c := range s.Contacts {
		if c.ContactID == call && c.State == "CONNECTED_ONHOLD" {
			return true
		}
	}
	return false
}

// agentName is the display name of ev's agent: its username, when that is
// not already the agent_id (and fits the contract).
func (a *Adapter) agentName(ev *agentEvent, agent string) string {
	if ev.Current == nil || ev.Current.Configuration == nil {
		return ""
	}
	if u := ev.Current.Configuration.Username; u != agent && len(u) <= events.MaxFieldLen {
		return u
	}
	return ""
}

// agentID is the canonical agent_id of ev.
func (a *Adapter) agentID(ev *agentEvent) string {
	if a.cfg.AgentID == "username" && ev.Current != nil && ev.Current.Configuration != nil && ev.Current.Configuration.Username != "" {
		return ev.Current.Configuration.Username
	}
	arn := ev.AgentARN
	if i := strings.LastIndex(arn, "/agent/"); i >= 0 {
		return arn[i+len("/agent/"):]
	}
	return ""
}

// team is the name of the configured hierarchy group of s.
func (a *Adapter) team(s *snapshot) string {
	if s == nil || s.Configuration == nil || a.cfg.TeamLevel < 0 {
		return ""
	}
	var h map[string]json.RawMessage
	if json.Unmarshal(s.Configuration.Hierarchy, &h) != nil {
		return ""
	}
	if a.cfg.TeamLevel > 0 {
		return name(h["Level"+string(rune('0'+a.cfg.TeamLevel))])
	}
	for l := 5; l >= 1; l-- {
		if n := name(h["Level"+string(rune('0'+l))]); n != "" {
			return n
		}
	}
	return ""
}

// view derives the canonical state of a snapshot: its voice contact's, or
// else the agent status's.
func (a *Adapter) view(s *snapshot) (view, error) {
	for _, c := range s.Contacts {
		if c.Channel != "VOICE" {
			continue
		}
		if c.ContactID == "" {
			return view{}, events.Invalidf("Contacts.ContactId", "missing")
		}
		v := view{call: c.ContactID, since: c.StateStartTimestamp, queue: name(c.Queue)}
		switch c.State {
		case "INCOMING", "PENDING", "CONNECTING":
			v.state = events.StateRinging
		case "CONNECTED":
			v.state = events.StateTalking
		case "CONNECTED_ONHOLD":
			v.state = events.StateHold
		case "ENDED":
			v.state = events.StateACW
		case "MISSED", "REJECTED", "ERROR":
			// the agent must set a status again before the next contact
			return view{state: events.StateNotReady, reason: strings.ToLower(c.State)}, nil
		default:
			return view{}, events.Invalidf("Contacts.State", "%q is not a contact state", c.State)
		}
		return v, nil
	}
	if s.AgentStatus == nil || s.AgentStatus.Name == "" {
		return view{}, events.Invalidf("AgentStatus.Name", "missing")
	}
	name := s.AgentStatus.Name
	if st, ok := a.statuses[name]; ok {
		if st == events.StateNotReady {
			return view{state: st, reason: name}, nil
		}
		return view{state: st}, nil
	}
	return view{state: events.StateNotReady, reason: name}, nil
}

// countNonVoice counts the non-voice contacts of cur that prev did not
// hold.
func (a *Adapter) countNonVoice(cur, prev *snapshot) {
	for _, c := range cur.Contacts {
		if c.Channel == "VOICE" {
			continue
		}
		seen := false
		if prev != nil {
			for _, p := range prev.Contacts {
				seen = seen || p.ContactID == c.ContactID
			}
		}
		if !seen {
			a.Stats.NonVoice++
		}
	}
}

// Skipped implements events.Skipper: Stats by kind.
func (a *Adapter) Skipped() map[string]uint64 {
	return map[string]uint64{"heartbeat": a.Stats.Heartbeats, "unchanged": a.Stats.Unchanged, "non_voice": a.Stats.NonVoice}
}
