// Package genesys reads Genesys Cloud notification events (the Notification
// API's {topicName, eventBody} messages, delivered over WebSocket or, inside
// "detail", by the Amazon EventBridge integration) and turns them into
// canonical events.
//
// Topics read:
//
//   - v2.detail.events.conversation.{id}.user.start: the agent starts
//     handling a voice interaction (talking).
//   - v2.detail.events.conversation.{id}.user.end: the agent's part ends;
//     wrap-up starts now, in real time.
//   - v2.detail.events.conversation.{id}.acw (AfterCallWorkEvent): wrap-up
//     is done at eventTime; wrapupCode is the disposition. Without a
//     user.end before it, the wrap-up is dated eventTime − wrapupDurationMs,
//     which is late for the engine when that is longer than
//     max_out_of_order: subscribe to user.end for real-time wrap-ups.
//   - v2.users.{id}.routingStatus and v2.users.{id}.presence: the agent's
//     state outside interactions. On Queue and IDLE is ready; Offline is
//     logged_out; any other presence, OFF_QUEUE or NOT_RESPONDING is
//     not_ready with that name as reason. Becoming NOT_RESPONDING (an
//     alert left unanswered) is also a missed offer. IDLE also ends a wrap-up whose
//     acw event never comes.
//
// Only voice interactions (mediaType CALL or VOICE, or as configured)
// count. The adapter is stateful: it remembers each user's presence,
// routing status and open interaction.
package genesys

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/acwstream/acwstream/events"
)

// Config sets what counts. The zero value gives the documented defaults.
type Config struct {
	// MediaTypes are the media types that count, compared without regard
	// to case; default CALL, VOICE.
	MediaTypes []string
	// Teams maps a userId to its team (events carry none).
	Teams map[string]string
	// Queues maps a queueId to the queue name to report (default: the id).
	Queues map[string]string
	// Names maps a userId to the agent's display name (agent_name): the
	// user's name in the Users API (GET /api/v2/users, field name), which
	// notifications do not carry.
	Names map[string]string
}

// Stats counts what the adapter read but did not turn into events.
type Stats struct {
	Ignored  uint64 // topics that say nothing about a user's state
	NonVoice uint64 // interaction events of other media types
	Stray    uint64 // acw events of a wrap-up already ended by routing status IDLE
}

// Adapter is an events.Adapter and events.Stateful for Genesys Cloud
// notifications.
type Adapter struct {
	events.MessageKey
	cfg     Config
	media   map[string]bool
	users   map[string]*user
	arrival int64 // see SetArrival
	Stats   Stats
}

// user is what the adapter knows of one user. Its open voice interaction
// is last's call while last is call-level (talking or acw).
type user struct {
	presence, routing string
	queue             string      // the open interaction's queue
	closed            string      // the last interaction whose wrap-up IDLE ended
	last              events.Last // the last state emitted
}

// New returns an adapter for cfg.
func New(cfg Config) *Adapter {
	a := &Adapter{cfg: cfg, media: map[string]bool{}, users: map[string]*user{}}
	ms := cfg.MediaTypes
	if len(ms) == 0 {
		ms = []string{"CALL", "VOICE"}
	}
	for _, m := range ms {
		a.media[strings.ToUpper(m)] = true
	}
	return a
}

type message struct {
	TopicName string          `json:"topicName"`
	EventBody json.RawMessage `json:"eventBody"`
	Detail    *message        `json:"detail"` // EventBridge
	Time      string          `json:"time"`   // the EventBridge envelope's
}

type detailEvent struct {
	EventTime        *int64 `json:"eventTime"`
	ConversationID   string `json:"conversationId"`
	MediaType        string `json:"mediaType"`
	UserID           string `json:"userId"`
	QueueID          string `json:"queueId"`
	WrapupCode       string `json:"wrapupCode"`
	WrapupDurationMs *int64 `json:"wrapupDurationMs"`
}

type presence struct {
	PresenceDefinition *struct {
		SystemPresence string `json:"systemPresence"`
	} `json:"presenceDefinition"`
	ModifiedDate string `json:"modifiedDate"`
}

type userEvent struct {
	RoutingStatus *struct {
		Status    string `json:"status"`
		StartTime string `json:"startTime"`
	} `json:"routingStatus"`
	presence
	// Presence is the activity topic's (routing status and presence in
	// one record).
	Presence *presence `json:"presence"`
}

func jsonError(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return events.Invalidf(prefix+te.Field, "is a JSON %s, want a %s", te.Value, te.Type)
	}
	return &events.MalformedError{Format: "genesys", Msg: err.Error()}
}

// Translate implements events.Adapter.
func (a *Adapter) Translate(rec []byte, out []events.Event) ([]events.Event, error) {
	var m message
	if err := json.Unmarshal(bytes.TrimSpace(rec), &m); err != nil {
		return out, jsonError(err, "")
	}
	prefix, envelope := "", ""
	if m.Detail != nil {
		envelope = m.Time
		m, prefix = *m.Detail, "detail."
	}
	if m.TopicName == "" {
		return out, events.Invalidf(prefix+"topicName", "missing")
	}
	parts := strings.Split(m.TopicName, ".")
	switch {
	case len(parts) >= 5 && strings.HasPrefix(m.TopicName, "v2.detail.events.conversation."):
		kind := strings.Join(parts[5:], ".")
		if kind != "user.start" && kind != "user.end" && kind != "acw" {
			a.Stats.Ignored++
			return out, nil
		}
		var d detailEvent
		if err := json.Unmarshal(m.EventBody, &d); err != nil {
			return out, jsonError(err, prefix+"eventBody.")
		}
		return a.detail(kind, &d, prefix+"eventBody.", out)
	case len(parts) == 4 && parts[0] == "v2" && parts[1] == "users" && (parts[3] == "routingStatus" || parts[3] == "presence" || parts[3] == "activity"):
		var u userEvent
		if err := json.Unmarshal(m.EventBody, &u); err != nil {
			return out, jsonError(err, prefix+"eventBody.")
		}
		return a.userChange(parts[2], parts[3], &u, envelope, prefix+"eventBody.", out)
	}
	a.Stats.Ignored++
	return out, nil
}

func checkTS(ts int64, field string) error {
	if ts < events.MinTS || ts >= events.MaxTS {
		return events.Invalidf(field, "%s is outside years 2000-2099", events.FormatTime(ts))
	}
	return nil
}

func (a *Adapter) detail(kind string, d *detailEvent, p string, out []events.Event) ([]events.Event, error) {
	switch {
	case d.EventTime == nil:
		return out, events.Invalidf(p+"eventTime", "missing")
	case d.UserID == "":
		return out, events.Invalidf(p+"userId", "missing")
	case len(d.UserID) > events.MaxAgentIDLen:
		return out, events.Invalidf(p+"userId", "is %d bytes long, the limit is %d", len(d.UserID), events.MaxAgentIDLen)
	case d.ConversationID == "":
		return out, events.Invalidf(p+"conversationId", "missing")
	case a.CheckKey(d.UserID) != nil:
		return out, a.CheckKey(d.UserID)
	case kind == "acw" && d.WrapupDurationMs != nil && (*d.WrapupDurationMs < 0 || *d.WrapupDurationMs > 7*86400000):
		return out, events.Invalidf(p+"wrapupDurationMs", "%d is not a duration of up to a week", *d.WrapupDurationMs)
	}
	ts := *d.EventTime
	if err := checkTS(ts, p+"eventTime"); err != nil {
		return out, err
	}
	if !a.media[strings.ToUpper(d.MediaType)] {
		a.Stats.NonVoice++
		return out, nil
	}
	u := a.user(d.UserID)
	e := emitter{u: u, id: d.UserID, team: a.cfg.Teams[d.UserID], name: a.cfg.Names[d.UserID], out: out}
	q := d.QueueID
	if n, ok := a.cfg.Queues[q]; ok {
		q = n
	}
	switch kind {
	case "user.start":
		u.queue, u.closed = q, ""
		e.emit(events.Event{State: events.StateTalking, TS: ts, CallID: d.ConversationID, Queue: q})
	case "user.end":
		u.queue = cmp.Or(q, u.queue)
		e.emit(events.Event{State: events.StateACW, TS: ts, CallID: d.ConversationID, Queue: u.queue})
	case "acw":
		if u.closed == d.ConversationID {
			a.Stats.Stray++
			return out, nil
		}
		if u.last.CallID != d.ConversationID || u.last.State != events.StateACW {
			// no user.end seen: date the wrap-up from its duration
			start := ts
			if d.WrapupDurationMs != nil {
				start -= *d.WrapupDurationMs
			}
			e.emit(events.Event{State: events.StateACW, TS: start, CallID: d.ConversationID, Queue: q})
		}
		u.queue = ""
		ev := a.idle(u, ts)
		ev.Disposition = d.WrapupCode
		e.emit(ev)
	}
	return e.out, nil
}

// userChange applies a user's routing status, presence, or both (the
// activity topic). The record is dated by its routing status's startTime
// or its presence's modifiedDate (the later, when it has both), else by
// the EventBridge envelope's time, else by its arrival (SetArrival); one
// with none of these is invalid.
func (a *Adapter) userChange(id, kind string, ev *userEvent, envelope, p string, out []events.Event) ([]events.Event, error) {
	if id == "" {
		return out, events.Invalidf("topicName", "names no user")
	}
	if len(id) > events.MaxAgentIDLen {
		return out, events.Invalidf("topicName", "user id is %d bytes long, the limit is %d", len(id), events.MaxAgentIDLen)
	}
	if err := a.CheckKey(id); err != nil {
		return out, err
	}
	pres, presField := &ev.presence, p
	if kind == "activity" && ev.Presence != nil {
		pres, presField = ev.Presence, p+"presence."
	}
	var routing, system string
	if kind != "presence" && ev.RoutingStatus != nil {
		routing = ev.RoutingStatus.Status
	}
	if kind != "routingStatus" && pres.PresenceDefinition != nil {
		system = pres.PresenceDefinition.SystemPresence
	}
	switch {
	case kind == "routingStatus" && routing == "":
		return out, events.Invalidf(p+"routingStatus.status", "missing")
	case kind == "presence" && system == "":
		return out, events.Invalidf(p+"presenceDefinition.systemPresence", "missing")
	case kind == "activity" && routing == "" && system == "":
		return out, events.Invalidf(p+"routingStatus", "missing, and presence too")
	}
	var routingAt, presenceAt string
	if routing != "" {
		routingAt = ev.RoutingStatus.StartTime
	}
	if system != "" {
		presenceAt = pres.ModifiedDate
	}
	// The record's own times (the later of them), else the envelope's.
	ts := int64(0)
	for _, t := range []struct{ at, field string }{
		{routingAt, p + "routingStatus.startTime"},
		{presenceAt, presField + "modifiedDate"},
		{envelope, "time"},
	} {
		if t.at == "" || (ts != 0 && t.field == "time") {
			continue
		}
		v, err := events.ParseRFC3339Millis([]byte(t.at))
		if err != nil {
			return out, events.Invalidf(t.field, "%q is not an ISO 8601 time", t.at)
		}
		if err := checkTS(v, t.field); err != nil {
			return out, err
		}
		ts = max(ts, v)
	}
	if ts == 0 {
		if a.arrival == 0 {
			field := presField + "modifiedDate"
			if kind == "routingStatus" {
				field = p + "routingStatus.startTime"
			}
			return out, events.Invalidf(field, "missing, and the record has no time of its own (no EventBridge envelope) nor an arrival time")
		}
		ts = a.arrival
	}
	u := a.user(id)
	missed := routing == "NOT_RESPONDING" && u.routing != "NOT_RESPONDING"
	if routing != "" {
		u.routing = routing
	}
	if system != "" {
		u.presence = presenceName(system)
	}
	e := emitter{u: u, id: id, team: a.cfg.Teams[id], name: a.cfg.Names[id], out: out}
	switch {
	case u.presence == "Offline":
	case u.last.State == events.StateACW && u.routing == "IDLE":
		u.closed = u.last.CallID // the wrap-up ends without its acw event
	case u.last.State.CallLevel():
		return out, nil // the interaction decides until it ends
	case missed:
		// Genesys sets NOT_RESPONDING when the agent lets an ACD alert go
		// unanswered: a missed offer (the alert itself is not read, so it
		// has no length and no call of its own).
		e.emit(events.Event{State: events.StateRinging, TS: ts, CallID: "not-responding-" + strconv.FormatInt(ts, 10)})
	}
	e.emit(a.idle(u, ts))
	return e.out, nil
}

// SetArrival gives the arrival time (Unix ms; 0: unknown) of the record
// about to be translated: the Kafka record's timestamp, which dates a
// presence notification that carries no time of its own.
func (a *Adapter) SetArrival(ms int64) { a.arrival = ms }

// systemPresences are Genesys' system presences in their display form;
// notifications spell them upper case with underscores (ON_QUEUE), the
// REST API and older captures in title case (On Queue).
var systemPresences = map[string]string{
	"AVAILABLE": "Available", "AWAY": "Away", "BREAK": "Break", "BUSY": "Busy", "IDLE": "Idle",
	"MEAL": "Meal", "MEETING": "Meeting", "OFFLINE": "Offline", "ON_QUEUE": "On Queue",
	"OUT_OF_OFFICE": "Out of Office", "TRAINING": "Training",
}

// presenceName is a system presence in its display form, whichever way it
// was spelled; an unknown one as it came.
func presenceName(s string) string {
	if n, ok := systemPresences[strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(s)), " ", "_")]; ok {
		return n
	}
	return s
}

func (a *Adapter) user(id string) *user {
	u := a.users[id]
	if u == nil {
		u = &user{}
		a.users[id] = u
	}
	return u
}

// idle is u's state outside interactions.
func (a *Adapter) idle(u *user, ts int64) events.Event {
	ev := events.Event{TS: ts, State: events.StateNotReady}
	switch {
	case u.presence == "Offline":
		ev.State = events.StateLoggedOut
	case u.presence != "" && !strings.EqualFold(u.presence, "On Queue"):
		ev.Reason = u.presence
	case u.routing == "" || u.routing == "IDLE" || u.routing == "INTERACTING" || u.routing == "COMMUNICATING":
		ev.State = events.StateReady
	default:
		ev.Reason = u.routing
	}
	return ev
}

type emitter struct {
	u              *user
	id, team, name string
	out            []events.Event
}

func (e *emitter) emit(ev events.Event) {
	ev.AgentName = e.name
	e.out = e.u.last.Emit(e.out, ev, e.id, e.team)
}

// AppendState implements events.Stateful.
func (a *Adapter) AppendState(b []byte) []byte {
	b = append(b, 1)
	return events.AppendStateMap(b, a.users, func(b []byte, u *user) []byte {
		b = u.last.AppendState(b)
		for _, s := range [...]string{u.presence, u.routing, u.queue, u.closed} {
			b = events.AppendStateString(b, s)
		}
		return b
	})
}

// RestoreState implements events.Stateful.
func (a *Adapter) RestoreState(b []byte) error {
	r := &events.StateReader{B: b}
	if r.Byte() != 1 {
		return events.ErrState
	}
	us := events.ReadStateMap(r, func(r *events.StateReader) *user {
		u := &user{last: r.Last()}
		for _, p := range [...]*string{&u.presence, &u.routing, &u.queue, &u.closed} {
			*p = r.String()
		}
		return u
	})
	if err := r.Err(); err != nil {
		return err
	}
	a.users = us
	return nil
}

// Skipped implements events.Skipper: Stats by kind.
func (a *Adapter) Skipped() map[string]uint64 {
	return map[string]uint64{"ignored": a.Stats.Ignored, "non_voice": a.Stats.NonVoice, "stray": a.Stats.Stray}
}
