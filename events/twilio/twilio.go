// Package twilio reads Twilio TaskRouter events and turns them into
// canonical events. It reads both forms TaskRouter delivers:
//
//   - the Workspace EventCallbackUrl webhook: a form-encoded body
//     (EventType=reservation.wrapup&WorkerSid=…&TimestampMs=…), one per
//     record;
//   - Event Streams (CloudEvents, schema TaskRouter.WDSEvent): a JSON
//     object, or an array of them, with the event in data.payload; the
//     REST Event resource's JSON (event_type, event_date_ms, event_data) is
//     read too.
//
// Wrap-up is explicit in TaskRouter: a worker's reservation goes
// reservation.wrapup → reservation.completed. The adapter is stateful:
// during a reservation the worker is ringing, talking or in acw whatever
// its activity, and when the reservation ends it returns to the state of
// its current activity (Available → ready, Offline → logged_out, any
// other → not_ready with the activity name as reason), which it remembers
// from worker.activity.update events. Only voice reservations count;
// others (chat, SMS…) are skipped and counted.
package twilio

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/acwstream/acwstream/events"
)

// Config sets how TaskRouter's names map to canonical fields. The zero
// value gives the documented defaults.
type Config struct {
	// Activities maps activity names to agent-level states. Defaults:
	// Available → ready, Offline → logged_out; any other name is
	// not_ready with the name as reason.
	Activities map[string]events.State
	// AgentID picks the agent_id: "sid" (default, WorkerSid) or "name"
	// (WorkerName, falling back to the sid).
	AgentID string
	// TeamAttribute is the key of the worker attributes (JSON) that holds
	// the team; default "team". Nested keys are dotted ("routing.team").
	TeamAttribute string
	// DispositionAttribute is the key of the task attributes that holds
	// the wrap-up outcome; default "conversations.outcome" (what Flex
	// writes).
	DispositionAttribute string
	// Channels are the task channels that count (TaskChannelUniqueName);
	// default voice. Records without a channel count.
	Channels []string
}

// Stats counts what the adapter read but did not turn into events.
type Stats struct {
	Ignored  uint64 // events that say nothing about a worker's state (task.*, workflow.*, …)
	NonVoice uint64 // reservation events of other channels
	Stray    uint64 // reservation events of a reservation the worker does not hold
}

// Adapter is an events.Adapter and events.Stateful for TaskRouter events.
type Adapter struct {
	events.MessageKey
	cfg        Config
	activities map[string]events.State
	channels   map[string]bool
	workers    map[string]*worker
	// byTask names the worker holding each task's reservation (task
	// events carry no worker); derived from workers, so not checkpointed.
	byTask map[string]string
	Stats  Stats
}

// worker is what the adapter knows of one worker.
type worker struct {
	activity events.State // from the last activity update (StateNone: not seen)
	reason   string
	res      string // the voice reservation held ("": none)
	team     string
	attrs    string      // the worker attributes team was read from (not checkpointed: read again after a restore)
	last     events.Last // the last state emitted
}

// New returns an adapter for cfg.
func New(cfg Config) *Adapter {
	a := &Adapter{cfg: cfg, activities: map[string]events.State{"Available": events.StateReady, "Offline": events.StateLoggedOut},
		channels: map[string]bool{}, workers: map[string]*worker{}}
	for k, v := range cfg.Activities {
		a.activities[k] = v
	}
	if a.cfg.TeamAttribute == "" {
		a.cfg.TeamAttribute = "team"
	}
	if a.cfg.DispositionAttribute == "" {
		a.cfg.DispositionAttribute = "conversations.outcome"
	}
	chs := cfg.Channels
	if len(chs) == 0 {
		chs = []string{"voice"}
	}
	for _, c := range chs {
		a.channels[c] = true
	}
	return a
}

// record is one TaskRouter event, whatever form it came in; names holds
// the field names of that form, for errors.
type record struct {
	typ, id                           string
	ts                                int64
	worker, workerName, activity      string
	reservation, task, queue, channel string
	workerAttrs, taskAttrs            string
	names                             *fieldNames
	hasTS                             bool
	tsField                           string
	// other: an event of another product in a webhook-sink batch
	// (Messaging, Voice Insights…): skipped and counted.
	other bool
}

type fieldNames struct{ typ, worker, activity, reservation, task string }

var (
	formNames = &fieldNames{"EventType", "WorkerSid", "WorkerActivityName", "ReservationSid", "TaskSid"}
	jsonNames = &fieldNames{"type", "worker_sid", "worker_activity_name", "reservation_sid", "task_sid"}
)

// Translate implements events.Adapter.
func (a *Adapter) Translate(rec []byte, out []events.Event) ([]events.Event, error) {
	rs, err := parse(rec)
	if err != nil {
		return out, err
	}
	for i := range rs {
		if err := a.check(&rs[i]); err != nil {
			if fe, ok := err.(*events.FieldError); ok && len(rs) > 1 {
				return out, events.Invalidf("["+strconv.Itoa(i)+"]."+fe.Field, "%s", fe.Msg)
			}
			return out, err
		}
	}
	for i := range rs {
		out = a.apply(&rs[i], out)
	}
	return out, nil
}

// parse reads a form body or JSON (an event or an array of them).
func parse(rec []byte) ([]record, error) {
	b := bytes.TrimSpace(rec)
	if len(b) == 0 {
		return nil, &events.MalformedError{Format: "twilio", Msg: "empty record"}
	}
	if b[0] != '{' && b[0] != '[' {
		q, err := url.ParseQuery(string(b))
		if err != nil || q.Get("EventType") == "" && q.Get("ResourceType") == "" {
			return nil, &events.MalformedError{Format: "twilio", Msg: "neither JSON nor a TaskRouter webhook form body (no EventType)"}
		}
		r := record{typ: q.Get("EventType"), id: q.Get("Sid"), worker: q.Get("WorkerSid"), workerName: q.Get("WorkerName"),
			activity: q.Get("WorkerActivityName"), reservation: q.Get("ReservationSid"), task: q.Get("TaskSid"),
			queue: cmp.Or(q.Get("TaskQueueName"), q.Get("TaskQueueSid")), channel: q.Get("TaskChannelUniqueName"),
			workerAttrs: q.Get("WorkerAttributes"), taskAttrs: q.Get("TaskAttributes"), names: formNames}
		if v := q.Get("TimestampMs"); v != "" {
			r.tsField = "TimestampMs"
			n, err := strconv.ParseInt(v, 10, 64)
			r.ts, r.hasTS = n, err == nil
		} else if v := q.Get("Timestamp"); v != "" {
			r.tsField = "Timestamp"
			r.ts, r.hasTS = parseTime(v)
		} else {
			r.tsField = "TimestampMs"
		}
		return []record{r}, nil
	}
	var raws []json.RawMessage
	if b[0] == '[' {
		if err := json.Unmarshal(b, &raws); err != nil {
			return nil, jsonError(err, "")
		}
	} else {
		raws = []json.RawMessage{b}
	}
	rs := make([]record, 0, len(raws))
	for _, raw := range raws {
		var env struct {
			Type      string          `json:"type"`
			ID        string          `json:"id"`
			Data      json.RawMessage `json:"data"`
			EventType string          `json:"event_type"`
			EventDate json.RawMessage `json:"event_date_ms"`
			Sid       string          `json:"sid"`
			EventData *payload        `json:"event_data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, jsonError(err, "")
		}
		if env.EventData == nil && env.Type != "" && !strings.HasPrefix(env.Type, "com.twilio.taskrouter.") {
			rs = append(rs, record{typ: env.Type, other: true, names: jsonNames})
			continue
		}
		var p payload
		r := record{names: jsonNames, tsField: "timestamp"}
		switch {
		case env.EventData != nil: // the REST Event resource
			p, r.typ, r.id, r.tsField = *env.EventData, env.EventType, env.Sid, "event_date_ms"
			r.ts, r.hasTS = jsonTime(env.EventDate)
			r.names = &fieldNames{"event_type", "event_data.worker_sid", "event_data.worker_activity_name", "event_data.reservation_sid", "event_data.task_sid"}
		default: // CloudEvents
			var data struct {
				Payload *payload `json:"payload"`
			}
			if len(env.Data) > 0 {
				if err := json.Unmarshal(env.Data, &data); err != nil {
					return nil, jsonError(err, "data.")
				}
			}
			if data.Payload == nil {
				return nil, events.Invalidf("data.payload", "missing")
			}
			p, r.id = *data.Payload, env.ID
			r.typ = strings.TrimPrefix(env.Type, "com.twilio.taskrouter.")
			if r.typ == "" {
				r.typ = p.EventType
			}
			r.ts, r.hasTS = jsonTime(p.Timestamp)
			r.tsField = "data.payload.timestamp"
			r.names = &fieldNames{"type", "data.payload.worker_sid", "data.payload.worker_activity_name", "data.payload.reservation_sid", "data.payload.task_sid"}
		}
		r.worker, r.workerName, r.activity = p.WorkerSid, p.WorkerName, p.WorkerActivityName
		r.reservation, r.task, r.queue, r.channel = p.ReservationSid, p.TaskSid, cmp.Or(p.TaskQueueName, p.TaskQueueSid), p.TaskChannelUniqueName
		r.workerAttrs, r.taskAttrs = p.WorkerAttributes, p.TaskAttributes
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, events.Invalidf("[]", "an empty array")
	}
	return rs, nil
}

// payload is an Event Streams payload or a REST event_data (snake_case).
type payload struct {
	EventType             string          `json:"eventtype"`
	Timestamp             json.RawMessage `json:"timestamp"`
	WorkerSid             string          `json:"worker_sid"`
	WorkerName            string          `json:"worker_name"`
	WorkerActivityName    string          `json:"worker_activity_name"`
	ReservationSid        string          `json:"reservation_sid"`
	TaskSid               string          `json:"task_sid"`
	TaskQueueName         string          `json:"task_queue_name"`
	TaskQueueSid          string          `json:"task_queue_sid"`
	TaskChannelUniqueName string          `json:"task_channel_unique_name"`
	WorkerAttributes      string          `json:"worker_attributes"`
	TaskAttributes        string          `json:"task_attributes"`
}

// jsonError is err as a field error (prefix: the path of the value that
// was decoded) or a malformed record.
func jsonError(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return events.Invalidf(prefix+te.Field, "is a JSON %s, want a %s", te.Value, te.Type)
	}
	return &events.MalformedError{Format: "twilio", Msg: err.Error()}
}

// jsonTime reads a time given as a number (Unix ms, or seconds when
// small) or a string (the same, or RFC 3339).
func jsonTime(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(string(raw), `"`)
	if s == "" || s == "null" {
		return 0, false
	}
	return parseTime(s)
}

func parseTime(s string) (int64, bool) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 1e11 { // seconds
			n *= 1000
		}
		return int64(n), n > 0 && n < 1e15
	}
	ms, err := events.ParseRFC3339Millis([]byte(s))
	return ms, err == nil
}

// check validates what r's event type needs, before any state changes.
func (a *Adapter) check(r *record) error {
	if r.other {
		return nil
	}
	if r.typ == "" {
		return events.Invalidf(r.names.typ, "missing")
	}
	if !r.hasTS {
		return events.Invalidf(r.tsField, "missing or not a time")
	}
	if r.ts < events.MinTS || r.ts >= events.MaxTS {
		return events.Invalidf(r.tsField, "%s is outside years 2000-2099", events.FormatTime(r.ts))
	}
	kind, _, _ := strings.Cut(r.typ, ".")
	if r.typ != "worker.activity.update" && kind != "reservation" {
		return nil
	}
	need := []struct{ v, name string }{{r.worker, r.names.worker}}
	if kind == "reservation" {
		need = append(need, struct{ v, name string }{r.reservation, r.names.reservation}, struct{ v, name string }{r.task, r.names.task})
	} else {
		need = append(need, struct{ v, name string }{r.activity, r.names.activity})
	}
	for _, n := range need {
		if n.v == "" {
			return events.Invalidf(n.name, "missing for %s", r.typ)
		}
	}
	if id := a.agentID(r); len(id) > events.MaxAgentIDLen {
		return events.Invalidf(r.names.worker, "is %d bytes long, the limit is %d", len(id), events.MaxAgentIDLen)
	}
	return a.CheckKey(r.worker, a.agentID(r))
}

func (a *Adapter) agentID(r *record) string {
	if a.cfg.AgentID == "name" && r.workerName != "" {
		return r.workerName
	}
	return r.worker
}

// workerName is the display name of r's worker: its WorkerName (the
// friendly name), when that is not already the agent_id.
func (a *Adapter) workerName(r *record, id string) string {
	if r.workerName != id && len(r.workerName) <= events.MaxFieldLen {
		return r.workerName
	}
	return ""
}

// activityState is the state of an activity name.
func (a *Adapter) activityState(name string) (events.State, string) {
	if st, ok := a.activities[name]; ok {
		if st == events.StateNotReady {
			return st, name
		}
		return st, ""
	}
	return events.StateNotReady, name
}

// hold records that w holds reservation res of task (res "": none).
func (a *Adapter) hold(w *worker, id, res, task string) {
	if w.res != "" {
		delete(a.byTask, w.last.CallID)
	}
	w.res = res
	if res != "" {
		a.taskIndex()[task] = id
	}
}

// taskIndex returns byTask, building it from the workers after a restore.
func (a *Adapter) taskIndex() map[string]string {
	if a.byTask == nil {
		a.byTask = map[string]string{}
		for id, w := range a.workers {
			if w.res != "" {
				a.byTask[w.last.CallID] = id
			}
		}
	}
	return a.byTask
}

// idle is w's state outside reservations, at ts.
func (w *worker) idle(ev events.Event) events.Event {
	ev.CallID, ev.Queue = "", ""
	ev.State, ev.Reason = w.activity, w.reason
	if ev.State == events.StateNone {
		ev.State = events.StateReady
	}
	return ev
}

func (a *Adapter) apply(r *record, out []events.Event) []events.Event {
	kind, _, _ := strings.Cut(r.typ, ".")
	switch {
	case r.other:
		a.Stats.Ignored++
		return out
	case r.typ == "task.completed" || r.typ == "task.canceled" || r.typ == "task.deleted":
		// A task that ends ends its reservation, whether or not
		// reservation.completed comes (Flex workspaces filter it out).
		id, ok := a.taskIndex()[r.task]
		if !ok {
			a.Stats.Ignored++
			return out
		}
		w := a.workers[id]
		a.hold(w, id, "", "")
		return w.last.Emit(out, w.idle(events.Event{AgentID: id, TS: r.ts, EventID: r.id, AgentName: a.workerName(r, id)}), id, w.team)
	case r.typ != "worker.activity.update" && kind != "reservation":
		a.Stats.Ignored++
		return out
	}
	id := a.agentID(r)
	w := a.workers[id]
	if w == nil {
		w = &worker{}
		a.workers[id] = w
	}
	if r.workerAttrs != "" && r.workerAttrs != w.attrs { // parse the JSON only when it changes
		w.attrs = r.workerAttrs
		if t := attr(r.workerAttrs, a.cfg.TeamAttribute); t != "" {
			w.team = t
		}
	}
	ev := events.Event{AgentID: id, TS: r.ts, EventID: r.id, AgentName: a.workerName(r, id)}
	switch {
	case r.typ == "worker.activity.update":
		w.activity, w.reason = a.activityState(r.activity)
		if w.res != "" {
			if w.last.State != events.StateACW || (w.activity != events.StateReady && w.activity != events.StateLoggedOut) {
				return out // the reservation decides until it ends
			}
			// available (or gone) again: the wrap-up is over, though its
			// reservation.completed did not come
			a.hold(w, id, "", "")
		}
		ev.State, ev.Reason = w.activity, w.reason
	default:
		if r.channel != "" && !a.channels[r.channel] {
			a.Stats.NonVoice++
			return out
		}
		if w.res != "" && w.res != r.reservation {
			switch r.typ {
			case "reservation.created", "reservation.accepted", "reservation.wrapup":
				if w.last.State == events.StateACW {
					// a new task while wrapping up: the wrap-up is over,
					// though its reservation.completed did not come
					a.hold(w, id, "", "")
					break
				}
				fallthrough
			default:
				a.Stats.Stray++ // another reservation while one is held
				return out
			}
		}
		ev.CallID, ev.Queue = r.task, r.queue
		switch r.typ {
		case "reservation.created":
			ev.State = events.StateRinging
		case "reservation.accepted":
			ev.State = events.StateTalking
		case "reservation.wrapup":
			ev.State = events.StateACW
			ev.Disposition = attr(r.taskAttrs, a.cfg.DispositionAttribute)
		case "reservation.completed", "reservation.canceled", "reservation.rejected", "reservation.timeout",
			"reservation.rescinded", "reservation.failed":
			if w.res == "" {
				a.Stats.Stray++
				return out
			}
			a.hold(w, id, "", "")
			ev = w.idle(ev)
		default:
			a.Stats.Ignored++
			return out
		}
		if ev.State.CallLevel() && w.res != r.reservation {
			a.hold(w, id, r.reservation, r.task)
		}
	}
	if ev.State == events.StateNone {
		return out
	}
	return w.last.Emit(out, ev, id, w.team)
}

// attr reads a dotted key from a JSON attributes string ("" when absent
// or not a string).
func attr(attrs, key string) string {
	if attrs == "" || key == "" {
		return ""
	}
	var m any
	if json.Unmarshal([]byte(attrs), &m) != nil {
		return ""
	}
	for _, k := range strings.Split(key, ".") {
		obj, ok := m.(map[string]any)
		if !ok {
			return ""
		}
		m = obj[k]
	}
	s, _ := m.(string)
	return s
}

// AppendState implements events.Stateful.
func (a *Adapter) AppendState(b []byte) []byte {
	b = append(b, 1)
	return events.AppendStateMap(b, a.workers, func(b []byte, w *worker) []byte {
		b = append(w.last.AppendState(b), byte(w.activity))
		for _, s := range [...]string{w.reason, w.res, w.team} {
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
	ws := events.ReadStateMap(r, func(r *events.StateReader) *worker {
		w := &worker{last: r.Last(), activity: events.State(r.Byte())}
		for _, p := range [...]*string{&w.reason, &w.res, &w.team} {
			*p = r.String()
		}
		return w
	})
	if err := r.Err(); err != nil {
		return err
	}
	a.workers, a.byTask = ws, nil
	return nil
}

// Skipped implements events.Skipper: Stats by kind.
func (a *Adapter) Skipped() map[string]uint64 {
	return map[string]uint64{"ignored": a.Stats.Ignored, "non_voice": a.Stats.NonVoice, "stray": a.Stats.Stray}
}
