package connect

import (
	"errors"
	"strings"
	"testing"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/adaptertest"
)

func translateAll(t *testing.T, a *Adapter, recs ...[]byte) []events.Event {
	t.Helper()
	var out []events.Event
	for i, r := range recs {
		var err error
		if out, err = a.Translate(r, out); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	return out
}

func fixture(t *testing.T, name string) [][]byte { return adaptertest.Records(t, "testdata/"+name) }

// The Amazon Connect documented example: ENDED at 18:55:27.027, cleared at
// 18:55:32.032, 5.005 s of ACW.
func TestDocumentedACWExample(t *testing.T) {
	got := translateAll(t, New(Config{}), fixture(t, "aws-acw-example.jsonl")...)
	if len(got) != 2 {
		t.Fatalf("%d events, want acw then ready: %+v", len(got), got)
	}
	acw, ready := got[0], got[1]
	if acw.State != events.StateACW || acw.AgentID != "agent-ARN" || acw.CallID != "ContactId-1" || acw.Queue != "BasicQueue" ||
		acw.Channel != "voice" || acw.EventID != "EventId-1" || events.FormatTime(acw.TS) != "2018-10-25T18:55:27.027Z" {
		t.Errorf("acw event = %+v", acw)
	}
	if ready.State != events.StateReady || ready.CallID != "" || events.FormatTime(ready.TS) != "2018-10-25T18:55:32.032Z" {
		t.Errorf("ready event = %+v", ready)
	}
	if d := ready.TS - acw.TS; d != 5005 {
		t.Errorf("wrap-up %d ms, AWS documents 5005", d)
	}
	for _, e := range got {
		if err := e.Validate(); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
}

// rec builds a compact agent event: cur and prev are contact lists of
// "ID/CHANNEL/STATE/START" (START a time of day) or a status name.
func rec(typ, ts string, cur, prev string) []byte {
	snap := func(s string) string {
		if s == "-" {
			return "null"
		}
		status, contacts := s, ""
		if i := strings.IndexByte(s, '|'); i >= 0 {
			status, contacts = s[:i], s[i+1:]
		}
		var cs []string
		for _, c := range strings.Fields(contacts) {
			p := strings.Split(c, "/")
			cs = append(cs, `{"ContactId":"`+p[0]+`","Channel":"`+p[1]+`","State":"`+p[2]+`","StateStartTimestamp":"2026-11-22T`+p[3]+`Z","Queue":{"Name":"sales"}}`)
		}
		return `{"AgentStatus":{"Name":"` + status + `"},"Configuration":{"Username":"jdoe","AgentHierarchyGroups":{"Level1":{"Name":"EMEA"},"Level2":{"Name":"Team Blue"}}},"Contacts":[` + strings.Join(cs, ",") + `]}`
	}
	return []byte(`{"AgentARN":"arn:aws:connect:eu-west-1:1:instance/i/agent/a-1","EventId":"e-` + ts + `","EventTimestamp":"2026-11-22T` + ts +
		`Z","EventType":"` + typ + `","CurrentAgentSnapshot":` + snap(cur) + `,"PreviousAgentSnapshot":` + snap(prev) + `}`)
}

func TestCallLifecycle(t *testing.T) {
	a := New(Config{})
	got := translateAll(t, a,
		rec("LOGIN", "09:00:00.000", "Available|", "-"),
		rec("HEART_BEAT", "09:02:00.000", "Available|", "Available|"),
		rec("STATE_CHANGE", "09:03:00.100", "Available|c1/VOICE/CONNECTING/09:03:00.000", "Available|"),
		rec("STATE_CHANGE", "09:03:05.000", "Available|c1/VOICE/CONNECTED/09:03:05.000", "Available|c1/VOICE/CONNECTING/09:03:00.000"),
		// a chat arrives during the call: skipped (the voice view is unchanged), counted once
		rec("STATE_CHANGE", "09:03:30.000", "Available|c1/VOICE/CONNECTED/09:03:05.000 ch1/CHAT/CONNECTED/09:03:30.000", "Available|c1/VOICE/CONNECTED/09:03:05.000"),
		rec("STATE_CHANGE", "09:04:00.000", "Available|c1/VOICE/CONNECTED_ONHOLD/09:04:00.000 ch1/CHAT/CONNECTED/09:03:30.000", "Available|c1/VOICE/CONNECTED/09:03:05.000 ch1/CHAT/CONNECTED/09:03:30.000"),
		rec("STATE_CHANGE", "09:04:20.000", "Available|c1/VOICE/CONNECTED/09:04:20.000 ch1/CHAT/ENDED/09:04:10.000", "Available|c1/VOICE/CONNECTED_ONHOLD/09:04:00.000 ch1/CHAT/CONNECTED/09:03:30.000"),
		rec("STATE_CHANGE", "09:05:00.000", "Available|c1/VOICE/ENDED/09:05:00.000", "Available|c1/VOICE/CONNECTED/09:04:20.000 ch1/CHAT/ENDED/09:04:10.000"),
		// a configuration change during wrap-up: nothing
		rec("STATE_CHANGE", "09:05:10.000", "Available|c1/VOICE/ENDED/09:05:00.000", "Available|c1/VOICE/ENDED/09:05:00.000"),
		rec("STATE_CHANGE", "09:05:21.500", "Break|", "Available|c1/VOICE/ENDED/09:05:00.000"),
		rec("STATE_CHANGE", "09:20:00.000", "Available|c2/VOICE/MISSED/09:21:00.000", "Available|"),
		rec("LOGOUT", "17:00:00.000", "Offline|", "-"),
	)
	want := []string{
		"ready 09:00:00.000  ", "ringing 09:03:00.000 c1 ", "talking 09:03:05.000 c1 ", "hold 09:04:00.000 c1 ",
		"talking 09:04:20.000 c1 ", "acw 09:05:00.000 c1 ", "not_ready 09:05:21.500  Break", "not_ready 09:20:00.000  missed",
		"logged_out 17:00:00.000  ",
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		s := e.State.String() + " " + events.FormatTime(e.TS)[11:23] + " " + e.CallID + " " + e.Reason
		if s != want[i] {
			t.Errorf("event %d = %q, want %q", i, s, want[i])
		}
		if e.AgentID != "a-1" || e.Team != "Team Blue" {
			t.Errorf("event %d: agent %q team %q, want a-1 and the deepest hierarchy group", i, e.AgentID, e.Team)
		}
	}
	if a.Stats != (Stats{Heartbeats: 1, Unchanged: 2, NonVoice: 1}) {
		t.Errorf("stats = %+v", a.Stats)
	}
}

// Hold and resume keep the contact's StateStartTimestamp (the connect
// time, per the API reference): they are dated by the record's
// EventTimestamp, so hold time is not talk time, and the events are not
// late behind the partition's watermark. The wrap-up keeps the documented
// rule (the ENDED contact's StateStartTimestamp).
func TestHoldAndResumeAreDatedByTheRecord(t *testing.T) {
	var got []string
	for _, e := range translateAll(t, New(Config{}), fixture(t, "hold-resume.jsonl")...) {
		got = append(got, events.FormatTime(e.TS)+" "+e.State.String())
	}
	want := []string{
		"2019-05-25T18:55:21.011Z talking",
		"2019-05-25T18:55:40.250Z hold",
		"2019-05-25T18:56:05.750Z talking",
		"2019-05-25T18:56:30.017Z acw",
		"2019-05-25T18:56:45.022Z ready",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A field read only for a dimension (hierarchy groups, routing profile,
// the contact's queue) with a shape nobody documented does not reject the
// record: the dimension is left empty and the state kept.
func TestAnOddDimensionDoesNotRejectTheRecord(t *testing.T) {
	rec := func(config, queue string) []byte {
		return []byte(`{"AgentARN":"arn:aws:connect:us-east-1:1:instance/i/agent/a1","EventId":"e","EventTimestamp":"2019-05-25T18:55:21.011Z","EventType":"STATE_CHANGE",` +
			`"CurrentAgentSnapshot":{"AgentStatus":{"Name":"Available"},"Configuration":` + config + `,"Contacts":[{"ContactId":"c1","Channel":"VOICE","State":"CONNECTED","StateStartTimestamp":"2019-05-25T18:55:21.011Z","Queue":` + queue + `}]}}`)
	}
	for _, r := range [][]byte{
		rec(`{"Username":"a","AgentHierarchyGroups":"null","RoutingProfile":{"Name":"Basic"}}`, `{"Name":"q1"}`),
		rec(`{"Username":"a","AgentHierarchyGroups":[{"Name":"t"}],"RoutingProfile":"Basic"}`, `{"Name":"q1"}`),
		rec(`{"Username":"a","AgentHierarchyGroups":{"Level1":{"Name":7}}}`, `"q1"`),
	} {
		evs, err := New(Config{}).Translate(r, nil)
		if err != nil || len(evs) != 1 || evs[0].State != events.StateTalking || evs[0].Team != "" {
			t.Errorf("%s: %+v %v", r, evs, err)
		}
	}
}

func TestConfig(t *testing.T) {
	a := New(Config{AgentID: "username", TeamLevel: 1, Statuses: map[string]events.State{"Break": events.StateNotReady, "Training": events.StateReady}})
	got := translateAll(t, a, rec("LOGIN", "09:00:00.000", "Training|", "-"), rec("STATE_CHANGE", "09:10:00.000", "Break|", "Training|"))
	if got[0].AgentID != "jdoe" || got[0].Team != "EMEA" || got[0].State != events.StateReady {
		t.Errorf("mapped login = %+v", got[0])
	}
	if got[1].State != events.StateNotReady || got[1].Reason != "Break" {
		t.Errorf("mapped break = %+v", got[1])
	}
}

func TestBadRecords(t *testing.T) {
	for _, c := range []struct {
		rec, reason, field string
	}{
		{`not json`, events.ReasonMalformed, ""},
		{`{"AgentARN":"arn:x/agent/a","EventType":"STATE_CHANGE","EventTimestamp":"yesterday"}`, events.ReasonInvalid, "EventTimestamp"},
		{`{"AgentARN":"arn:x","EventType":"LOGOUT","EventTimestamp":"2026-11-22T09:00:00Z"}`, events.ReasonInvalid, "AgentARN"},
		{`{"AgentARN":"arn:x/agent/a","EventType":"PING","EventTimestamp":"2026-11-22T09:00:00Z"}`, events.ReasonInvalid, "EventType"},
		{`{"AgentARN":"arn:x/agent/a","EventType":"STATE_CHANGE","EventTimestamp":"2026-11-22T09:00:00Z"}`, events.ReasonInvalid, "CurrentAgentSnapshot"},
		{`{"AgentARN":"arn:x/agent/a","EventType":"STATE_CHANGE","EventTimestamp":"2026-11-22T09:00:00Z","CurrentAgentSnapshot":{"Contacts":[{"ContactId":"c","Channel":"VOICE","State":"DANCING"}]}}`, events.ReasonInvalid, "Contacts.State"},
		{`{"AgentARN":"arn:x/agent/a","EventType":"STATE_CHANGE","EventTimestamp":"2026-11-22T09:00:00Z","CurrentAgentSnapshot":{"Contacts":"none"}}`, events.ReasonInvalid, "CurrentAgentSnapshot.Contacts"},
		{`{"AgentARN":"arn:x/agent/a","EventType":"STATE_CHANGE","EventTimestamp":"1970-01-01T00:00:00Z","CurrentAgentSnapshot":{"AgentStatus":{"Name":"Available"}}}`, events.ReasonInvalid, "EventTimestamp"},
	} {
		out, err := New(Config{}).Translate([]byte(c.rec), nil)
		if err == nil || len(out) != 0 {
			t.Errorf("%s: accepted as %+v", c.rec, out)
			continue
		}
		if events.Reason(err) != c.reason {
			t.Errorf("%s: reason %s (%v), want %s", c.rec, events.Reason(err), err, c.reason)
		}
		var fe *events.FieldError
		if c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
			t.Errorf("%s: error %v does not name the field %s", c.rec, err, c.field)
		}
	}
}

// FuzzTranslate: any bytes give either valid canonical events or an error
// that classifies as malformed or invalid, never a panic; a voice wrap-up
// never ends up on a non-voice contact.
func FuzzTranslate(f *testing.F) {
	for _, r := range adaptertest.Records(f, "testdata/aws-acw-example.jsonl") {
		f.Add(r)
	}
	f.Add(rec("STATE_CHANGE", "09:03:30.000", "Available|c1/VOICE/ENDED/09:03:05.000 ch1/CHAT/ENDED/09:03:30.000", "Available|"))
	f.Add(rec("LOGIN", "09:00:00.000", "Away|", "-"))
	f.Fuzz(func(t *testing.T, b []byte) {
		adaptertest.CheckRecord(t, New(Config{}), nil, b)
		out, err := New(Config{}).Translate(b, nil)
		if err != nil {
			if r := events.Reason(err); r != events.ReasonMalformed && r != events.ReasonInvalid {
				t.Fatalf("error %v classifies as %s", err, r)
			}
			return
		}
		for _, e := range out {
			if err := e.Validate(); err != nil {
				t.Fatalf("invalid event %+v: %v", e, err)
			}
			if e.CallID != "" && e.Channel != "voice" {
				t.Fatalf("call state on a non-voice contact: %+v", e)
			}
		}
	})
}
