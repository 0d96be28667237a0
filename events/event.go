// Package events defines every schema that crosses a process boundary in
// acwstream: the canonical input event, its decoder and validation, the
// output records (segments, alerts, intervals, open segments, rejections,
// summaries) and their JSON encoding.
//
// The package imports only the standard library. All times are Unix
// milliseconds (int64) in UTC unless a doc comment says otherwise.
package events

import "fmt"

// AgentID identifies an agent; it is the Kafka message key of input events.
type AgentID = string

// State is an agent or call state. The zero value is StateNone, which is
// never a valid input state.
type State uint8

// The seven input states. Agent-level: LoggedOut, Ready, NotReady.
// Call-level (need a call_id): Ringing, Talking, Hold, ACW.
const (
	StateNone State = iota
	StateLoggedOut
	StateReady
	StateNotReady
	StateRinging
	StateTalking
	StateHold
	StateACW
	numStates
)

var stateNames = [numStates]string{"", "logged_out", "ready", "not_ready", "ringing", "talking", "hold", "acw"}

// String returns the wire name of s ("acw", "ready", …) or "" for StateNone.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Valid reports whether s is one of the seven input states.
func (s State) Valid() bool { return s > StateNone && s < numStates }

// CallLevel reports whether s belongs to a call and so needs a call_id.
func (s State) CallLevel() bool { return s >= StateRinging && s < numStates }

// ParseState returns the State named by b (exact lowercase wire name).
func ParseState(b []byte) (State, bool) {
	switch string(b) {
	case "logged_out":
		return StateLoggedOut, true
	case "ready":
		return StateReady, true
	case "not_ready":
		return StateNotReady, true
	case "ringing":
		return StateRinging, true
	case "talking":
		return StateTalking, true
	case "hold":
		return StateHold, true
	case "acw":
		return StateACW, true
	}
	return StateNone, false
}

// StateNames lists the valid wire names in contract order.
func StateNames() []string { return append([]string(nil), stateNames[1:]...) }

// Event is one canonical call-state transition.
//
// TS is event time in Unix milliseconds. CallID is non-empty exactly when
// State is call-level (the decoder guarantees it; it is ignored otherwise
// only if empty). Empty strings mean "absent".
type Event struct {
	AgentID     AgentID
	State       State
	TS          int64
	CallID      string
	EventID     string
	Team        string
	Queue       string
	Channel     string
	Disposition string
	Reason      string
	// AgentName is a display name for the agent (optional): the wallboard
	// shows it instead of the id. The agent's last non-empty one holds.
	AgentName string
}

// Validate checks the rules of the canonical contract that do not depend on
// JSON syntax. It returns an *InvalidError naming the field.
func (e *Event) Validate() error {
	switch {
	case len(e.AgentID) == 0:
		return invalidf("agent_id", "missing")
	case len(e.AgentID) > MaxAgentIDLen:
		return invalidf("agent_id", "is %d bytes long, the limit is %d", len(e.AgentID), MaxAgentIDLen)
	case !e.State.Valid():
		return invalidf("state", "missing")
	case e.TS < MinTS || e.TS >= MaxTS:
		return invalidf("ts", "%d is outside years 2000-2099", e.TS)
	case e.State.CallLevel() && e.CallID == "":
		return invalidf("call_id", "required for state %q", e.State.String())
	}
	for _, f := range [...]struct {
		name, v string
	}{{"call_id", e.CallID}, {"event_id", e.EventID}, {"team", e.Team}, {"queue", e.Queue}, {"channel", e.Channel}, {"disposition", e.Disposition}, {"reason", e.Reason}, {"agent_name", e.AgentName}} {
		if len(f.v) > MaxFieldLen {
			return invalidf(f.name, "is %d bytes long, the limit is %d", len(f.v), MaxFieldLen)
		}
	}
	return nil
}

// MaxAgentIDLen is the largest accepted agent_id, in bytes.
const MaxAgentIDLen = 128

// MaxFieldLen is the largest accepted value of every other string field
// (call_id, event_id, team, queue, channel, disposition, reason), in
// bytes: a feed of free text cannot grow Redis keys or memory without
// bound.
const MaxFieldLen = 256

// MinTS and MaxTS bound valid event times: MinTS ≤ ts < MaxTS, that is
// 2000-01-01T00:00:00Z up to the end of 2099, in Unix milliseconds.
const (
	MinTS int64 = 946684800000
	MaxTS int64 = 4102444800000
)
