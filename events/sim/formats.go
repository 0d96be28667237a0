package sim

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/acwstream/acwstream/events"
)

// Formats are the values of Config.Format: the canonical events, or the
// same scenario as each platform's adapter reads it (see events/connect,
// events/twilio, events/asterisk, events/freeswitch, events/genesys).
var Formats = []string{"canonical", "connect", "twilio", "asterisk", "freeswitch", "genesys"}

// A renderer turns one agent's canonical transitions into a platform's
// records. What the platform cannot say (ringing in queue_log, hold in
// most) is left out; wrap-ups are always rendered, so each platform's
// adapter gives the canonical feed's wrap-up segments, to the platform's
// timestamp precision (whole seconds for Asterisk, and for the start of
// a FreeSWITCH wrap-up). A call that ends with no wrap-up becomes a
// wrap-up of (almost) zero length on platforms that always pass through
// one (Connect, FreeSWITCH on-demand agents, Genesys).
type renderer interface {
	// render appends the records of ev to out; prev is the agent's
	// previous event (State StateNone at first). Call-level events carry
	// their queue.
	render(ev, prev *events.Event, out [][]byte) [][]byte
	// bad is a record the adapter rejects: malformed for variant 2,
	// invalid for 0 and 1, like the canonical bad lines.
	bad(t int64, n int) []byte
}

func newRenderer(format string) renderer {
	switch format {
	case "connect":
		return &connectR{snaps: map[string]string{}}
	case "twilio":
		return &twilioR{}
	case "asterisk":
		return asteriskR{}
	case "freeswitch":
		return freeswitchR{}
	case "genesys":
		return &genesysR{acwStart: map[string]int64{}}
	}
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// asteriskR writes queue_log lines for pause-based wrap-up (the adapter's
// defaults: no wrapuptime, a "Wrapup" pause after the call until UNPAUSE).
type asteriskR struct{}

func (asteriskR) render(ev, pev *events.Event, out [][]byte) [][]byte {
	prev, call, queue := pev.State, pev.CallID, pev.Queue
	if ev.State.CallLevel() {
		call, queue = ev.CallID, ev.Queue
	}
	sec := strconv.FormatInt(ev.TS/1000, 10)
	line := func(call, queue, event string, data ...string) {
		if call == "" {
			call = "NONE"
		}
		if queue == "" {
			queue = "NONE"
		}
		l := sec + "|" + call + "|" + queue + "|" + ev.AgentID + "|" + event
		for _, d := range data {
			l += "|" + d
		}
		out = append(out, []byte(l))
	}
	inCall := prev == events.StateTalking || prev == events.StateHold || prev == events.StateRinging
	switch ev.State {
	case events.StateReady:
		switch {
		case prev == events.StateNone || prev == events.StateLoggedOut:
			line("", "", "AGENTLOGIN", "SIP/"+ev.AgentID)
		case inCall:
			line(call, queue, "COMPLETEAGENT", "5", "60", "1")
		default:
			line("", "", "UNPAUSE", "")
		}
	case events.StateTalking:
		if prev == events.StateRinging {
			line(call, queue, "CONNECT", "5", call+"-agent", "3")
		}
	case events.StateACW:
		line(call, queue, "COMPLETEAGENT", "5", "60", "1")
		line("", queue, "PAUSE", "Wrapup")
	case events.StateNotReady:
		if inCall {
			line(call, queue, "COMPLETEAGENT", "5", "60", "1")
		}
		line("", "", "PAUSEALL", ev.Reason)
	case events.StateLoggedOut:
		line("", "", "AGENTLOGOFF", "SIP/"+ev.AgentID, "28800")
	}
	return out
}

func (asteriskR) bad(t int64, n int) []byte {
	if n == 2 { // as badLine: two in three bad lines are invalid
		return []byte("not a queue_log line")
	}
	return []byte(strconv.FormatInt(t/1000, 10) + "|NONE|sales|SIP/1|CONNECT|1|2|3") // no callid
}

// twilioR writes TaskRouter webhook form bodies.
type twilioR struct{ n int }

func (r *twilioR) render(ev, pev *events.Event, out [][]byte) [][]byte {
	prev, call, queue := pev.State, pev.CallID, pev.Queue
	if ev.State.CallLevel() {
		call, queue = ev.CallID, ev.Queue
	}
	emit := func(typ string, kv ...string) {
		r.n++
		q := url.Values{}
		q.Set("EventType", typ)
		q.Set("Sid", "EV"+strconv.Itoa(r.n))
		q.Set("Timestamp", strconv.FormatInt(ev.TS/1000, 10))
		q.Set("TimestampMs", strconv.FormatInt(ev.TS, 10))
		q.Set("WorkerSid", ev.AgentID)
		q.Set("WorkerAttributes", `{"team":`+jsonString(ev.Team)+`}`)
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		out = append(out, []byte(q.Encode()))
	}
	res := func(typ string, kv ...string) {
		emit(typ, append([]string{"ResourceType", "Reservation", "ReservationSid", "WR" + call, "TaskSid", call,
			"TaskQueueName", queue, "TaskChannelUniqueName", "voice"}, kv...)...)
	}
	activity := func(name string) {
		emit("worker.activity.update", "ResourceType", "Worker", "WorkerActivityName", name)
	}
	inRes := prev.CallLevel()
	switch ev.State {
	case events.StateReady:
		if inRes {
			res("reservation.completed")
		} else {
			activity("Available")
		}
	case events.StateRinging:
		res("reservation.created")
	case events.StateTalking:
		if prev == events.StateRinging {
			res("reservation.accepted")
		}
	case events.StateACW:
		res("reservation.wrapup", "TaskAttributes", `{"conversations":{"outcome":`+jsonString(ev.Disposition)+`}}`)
	case events.StateNotReady:
		activity(ev.Reason)
		if inRes {
			res("reservation.completed")
		}
	case events.StateLoggedOut:
		activity("Offline")
	}
	return out
}

func (r *twilioR) bad(t int64, n int) []byte {
	if n == 2 { // as badLine: two in three bad lines are invalid
		return []byte(`{"type":"com.twilio.taskrouter.reservation.wrapup","data":`)
	}
	return []byte("EventType=reservation.wrapup&TimestampMs=" + strconv.FormatInt(t, 10) + "&WorkerSid=agent-1") // no reservation
}

// freeswitchR writes mod_callcenter ESL json events for "Available (On
// Demand)" agents, whose wrap-up lasts until the state returns to Waiting.
type freeswitchR struct{}

func (freeswitchR) render(ev, pev *events.Event, out [][]byte) [][]byte {
	prev, call, queue := pev.State, pev.CallID, pev.Queue
	if ev.State.CallLevel() {
		call, queue = ev.CallID, ev.Queue
	}
	emit := func(action string, kv ...string) {
		m := map[string]string{"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info", "CC-Action": action,
			"Event-Date-Timestamp": strconv.FormatInt(ev.TS*1000, 10), "CC-Agent": ev.AgentID}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		out = append(out, b)
	}
	sec := strconv.FormatInt(ev.TS/1000, 10)
	member := func() []string {
		return []string{"CC-Queue", queue, "CC-Member-UUID", call + "-m", "CC-Member-Session-UUID", call}
	}
	inCall := prev == events.StateTalking || prev == events.StateHold || prev == events.StateRinging
	endCall := func() {
		if inCall {
			emit("bridge-agent-end", append(member(), "CC-Bridge-Terminated-Time", sec, "CC-Hangup-Cause", "NORMAL_CLEARING")...)
		}
	}
	switch ev.State {
	case events.StateReady:
		endCall()
		if prev == events.StateNone || prev == events.StateLoggedOut || prev == events.StateNotReady {
			emit("agent-status-change", "CC-Agent-Status", "Available (On Demand)")
		}
		emit("agent-state-change", "CC-Agent-State", "Waiting")
	case events.StateRinging:
		emit("agent-offering", member()...)
	case events.StateTalking:
		if prev == events.StateRinging {
			emit("bridge-agent-start", append(member(), "CC-Agent-Answered-Time", sec)...)
			emit("agent-state-change", "CC-Agent-State", "In a queue call") // bridged (mod_callcenter.c)
		}
	case events.StateACW:
		endCall()
		emit("agent-state-change", "CC-Agent-State", "Idle")
	case events.StateNotReady:
		endCall()
		emit("agent-status-change", "CC-Agent-Status", "On Break")
	case events.StateLoggedOut:
		emit("agent-status-change", "CC-Agent-Status", "Logged Out")
	}
	return out
}

func (freeswitchR) bad(t int64, n int) []byte {
	if n == 2 { // as badLine: two in three bad lines are invalid
		return []byte(`{"Event-Name":"CUSTOM",`)
	}
	return []byte(`{"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","CC-Action":"bridge-agent-end","Event-Date-Timestamp":"` + strconv.FormatInt(t*1000, 10) + `"}`)
}

// genesysR writes Genesys Cloud notifications.
type genesysR struct{ acwStart map[string]int64 }

func (r *genesysR) render(ev, pev *events.Event, out [][]byte) [][]byte {
	prev, call, queue := pev.State, pev.CallID, pev.Queue
	if ev.State.CallLevel() {
		call, queue = ev.CallID, ev.Queue
	}
	at := events.FormatTime(ev.TS)
	user := func(topic, body string) {
		out = append(out, []byte(`{"topicName":"v2.users.`+ev.AgentID+`.`+topic+`","version":"2","eventBody":`+body+`}`))
	}
	presence := func(p string) {
		user("presence", `{"presenceDefinition":{"systemPresence":`+jsonString(p)+`},"modifiedDate":"`+at+`"}`)
	}
	routing := func(s string) { user("routingStatus", `{"routingStatus":{"status":"`+s+`","startTime":"`+at+`"}}`) }
	detail := func(kind, extra string) {
		out = append(out, []byte(`{"topicName":"v2.detail.events.conversation.`+call+`.`+kind+`","version":"2","eventBody":{"eventTime":`+
			strconv.FormatInt(ev.TS, 10)+`,"conversationId":`+jsonString(call)+`,"mediaType":"CALL","userId":`+jsonString(ev.AgentID)+
			`,"queueId":`+jsonString(queue)+extra+`}}`))
	}
	inCall := prev == events.StateTalking || prev == events.StateHold || prev == events.StateRinging
	acwDone := func() {
		if inCall {
			detail("user.end", "")
			r.acwStart[ev.AgentID] = ev.TS
		}
		if inCall || prev == events.StateACW {
			d := ev.TS - r.acwStart[ev.AgentID]
			detail("acw", `,"wrapupCode":`+jsonString(ev.Disposition)+`,"wrapupDurationMs":`+strconv.FormatInt(d, 10))
		}
	}
	switch ev.State {
	case events.StateReady:
		acwDone()
		if prev == events.StateNone || prev == events.StateLoggedOut || prev == events.StateNotReady {
			presence("On Queue")
			routing("IDLE")
		}
	case events.StateTalking:
		if prev == events.StateRinging {
			routing("INTERACTING")
			detail("user.start", "")
		}
	case events.StateACW:
		detail("user.end", "")
		r.acwStart[ev.AgentID] = ev.TS
	case events.StateNotReady:
		reason := "Break"
		if ev.Reason != "" {
			reason = strings.ToUpper(ev.Reason[:1]) + ev.Reason[1:]
		}
		presence(reason)
		acwDone()
	case events.StateLoggedOut:
		presence("Offline")
	}
	return out
}

func (r *genesysR) bad(t int64, n int) []byte {
	if n == 2 { // as badLine: two in three bad lines are invalid
		return []byte(`{"topicName":`)
	}
	return []byte(`{"topicName":"v2.detail.events.conversation.c.acw","eventBody":{"conversationId":"c","userId":"agent-1"}}`) // no eventTime
}

// connectR writes Amazon Connect agent event stream records.
type connectR struct {
	snaps map[string]string // agent → its last snapshot (JSON)
	n     int
}

func (r *connectR) render(ev, pev *events.Event, out [][]byte) [][]byte {
	prev := pev.State
	status, contact := "Available", ""
	contactOf := func(state string) string {
		return `[{"ContactId":` + jsonString(ev.CallID) + `,"Channel":"VOICE","InitiationMethod":"INBOUND","State":"` + state +
			`","StateStartTimestamp":"` + events.FormatTime(ev.TS) + `","Queue":{"Name":` + jsonString(ev.Queue) + `}}]`
	}
	switch ev.State {
	case events.StateNotReady:
		status = ev.Reason
	case events.StateLoggedOut:
		status = "Offline"
	case events.StateRinging:
		contact = contactOf("CONNECTING")
	case events.StateTalking:
		contact = contactOf("CONNECTED")
	case events.StateHold:
		contact = contactOf("CONNECTED_ONHOLD")
	case events.StateACW:
		contact = contactOf("ENDED")
	}
	if contact == "" {
		contact = "[]"
		if prev.CallLevel() && prev != events.StateACW {
			// the contact ends: ENDED first, then cleared (a wrap-up of
			// zero length, as Connect itself passes through ENDED)
			e2 := *ev
			e2.State, e2.CallID, e2.Queue = events.StateACW, pev.CallID, pev.Queue
			out = r.render(&e2, pev, out)
			prev = events.StateACW
		}
	}
	snap := `{"AgentStatus":{"Name":` + jsonString(status) + `},"Configuration":{"Username":` + jsonString(ev.AgentID) +
		`,"AgentHierarchyGroups":{"Level1":{"Name":` + jsonString(ev.Team) + `}}},"Contacts":` + contact + `}`
	typ, prevSnap := "STATE_CHANGE", r.snaps[ev.AgentID]
	if prev == events.StateNone || prev == events.StateLoggedOut {
		typ, prevSnap = "LOGIN", "null"
	}
	r.n++
	out = append(out, []byte(`{"AgentARN":"arn:aws:connect:us-east-1:123456789012:instance/sim/agent/`+ev.AgentID+
		`","EventId":"sim-`+strconv.Itoa(r.n)+`","EventTimestamp":"`+events.FormatTime(ev.TS)+`","EventType":"`+typ+
		`","InstanceARN":"arn:aws:connect:us-east-1:123456789012:instance/sim","Version":"2017-10-01","CurrentAgentSnapshot":`+snap+
		`,"PreviousAgentSnapshot":`+prevSnap+`}`))
	r.snaps[ev.AgentID] = snap
	return out
}

func (r *connectR) bad(t int64, n int) []byte {
	if n == 2 { // as badLine: two in three bad lines are invalid
		return []byte(`{"AgentARN":`)
	}
	return []byte(`{"AgentARN":"arn:x/agent/a","EventType":"STATE_CHANGE","EventTimestamp":"yesterday"}`)
}
