package genesys

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/adaptertest"
)

func fixture(t *testing.T) [][]byte { return adaptertest.Records(t, "testdata/notifications.jsonl") }

func translate(t *testing.T, a *Adapter, recs [][]byte) []string {
	t.Helper()
	var got []string
	for i, r := range recs {
		evs, err := a.Translate(r, nil)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		for _, e := range evs {
			if err := e.Validate(); err != nil {
				t.Errorf("%+v: %v", e, err)
			}
			got = append(got, fmt.Sprintf("%s %s %s %s %s %s", events.FormatTime(e.TS), e.State, e.CallID, e.Queue, e.Reason, e.Disposition))
		}
	}
	return got
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// The fixture: user.start → user.end (wrap-up starts) → acw (wrap-up done,
// 25.125 s, the wrapup code as disposition); presence and routing status
// outside the interaction; an EventBridge-wrapped logout.
func TestInteractionLifecycle(t *testing.T) {
	a := New(Config{Queues: map[string]string{"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d": "billing"}})
	check(t, translate(t, a, fixture(t)),
		"2026-11-22T10:00:00.000Z ready    ",
		"2026-11-22T10:01:02.500Z talking 7e1d2c3b-4a59-4f6e-8d7c-6b5a49382716 billing  ",
		"2026-11-22T10:03:02.000Z acw 7e1d2c3b-4a59-4f6e-8d7c-6b5a49382716 billing  ",
		"2026-11-22T10:03:27.125Z ready    b7a4c4c6-0d2a-4d2b-9a0e-3f1c1f8e0d11",
		"2026-11-22T10:06:40.000Z not_ready   Break ",
		"2026-11-22T10:15:00.000Z logged_out    ",
	)
}

// Without user.end, the acw event dates the wrap-up from its duration;
// with routing status IDLE before the acw event, IDLE ends the wrap-up and
// the acw event is a stray; other media types are skipped.
func TestWithoutUserEndAndIdleFirst(t *testing.T) {
	u := "u1"
	det := func(kind, conv string, ms int64, extra string) []byte {
		return []byte(fmt.Sprintf(`{"topicName":"v2.detail.events.conversation.%s.%s","eventBody":{"eventTime":%d,"conversationId":"%s","userId":"%s","mediaType":"call"%s}}`, conv, kind, ms, conv, u, extra))
	}
	routing := func(ms string, s string) []byte {
		return []byte(`{"topicName":"v2.users.u1.routingStatus","eventBody":{"routingStatus":{"status":"` + s + `","startTime":"` + ms + `"}}}`)
	}
	a := New(Config{})
	check(t, translate(t, a, [][]byte{
		det("user.start", "c1", 1795341600000, ""),
		det("acw", "c1", 1795341700000, `,"wrapupDurationMs":40000,"wrapupCode":"sale"`),
		det("user.start", "c2", 1795341800000, ""),
		det("user.end", "c2", 1795341860000, ""),
		routing("2026-11-22T10:04:30Z", "IDLE"),
		det("acw", "c2", 1795341871000, `,"wrapupDurationMs":11000`),
		det("user.start", "c3", 1795341900000, `,"mediaType":"chat"`),
		routing("2026-11-22T10:06:00Z", "NOT_RESPONDING"),
	}),
		"2026-11-22T10:00:00.000Z talking c1   ",
		"2026-11-22T10:01:00.000Z acw c1   ",
		"2026-11-22T10:01:40.000Z ready    sale",
		"2026-11-22T10:03:20.000Z talking c2   ",
		"2026-11-22T10:04:20.000Z acw c2   ",
		"2026-11-22T10:04:30.000Z ready    ",
		"2026-11-22T10:06:00.000Z ringing not-responding-1795341960000   ", // an alert left unanswered: a missed offer
		"2026-11-22T10:06:00.000Z not_ready   NOT_RESPONDING ",
	)
	if a.Stats.Stray != 1 || a.Stats.NonVoice != 1 {
		t.Errorf("stats %+v", a.Stats)
	}
}

func readFixture(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(b), []byte("\n"))
}

// Presence as Genesys publishes it: systemPresence upper case (AVAILABLE,
// ON_QUEUE, BREAK…) as well as title case, no modifiedDate (the
// EventBridge envelope's time dates it, or the Kafka record's timestamp
// live), and the activity topic, routing status and presence in one
// record.
func TestPresenceAsPublished(t *testing.T) {
	recs := readFixture(t, "presence-variants.jsonl")
	a := New(Config{})
	got := translate(t, a, recs[:2])
	check(t, got,
		"2021-05-14T09:03:17.067Z not_ready   Available ",
		"2021-05-14T09:05:00.000Z not_ready   Break ",
	)
	// Unwrapped, with no time: dated by its arrival when there is one.
	if _, err := a.Translate(recs[2], nil); err == nil || !strings.Contains(err.Error(), "no time") {
		t.Errorf("a presence without any time, without an arrival: %v", err)
	}
	a.SetArrival(1621069200000) // 2021-05-15T09:00:00Z
	evs, err := a.Translate(recs[2], nil)
	if err != nil || len(evs) != 1 || evs[0].TS != 1621069200000 || evs[0].Reason != "Available" {
		t.Errorf("dated by its arrival: %+v %v", evs, err)
	}
	on := []byte(`{"topicName":"v2.users.u1.activity","eventBody":{"routingStatus":{"status":"IDLE","startTime":"2026-11-22T10:00:00.010Z"},"presence":{"presenceDefinition":{"systemPresence":"ON_QUEUE"},"modifiedDate":"2026-11-22T10:00:00.000Z"}}}`)
	off := []byte(`{"topicName":"v2.users.u1.presence","eventBody":{"presenceDefinition":{"systemPresence":"OFFLINE"},"modifiedDate":"2026-11-22T18:00:00.000Z"}}`)
	check(t, translate(t, New(Config{}), [][]byte{on, off}),
		"2026-11-22T10:00:00.010Z ready    ",
		"2026-11-22T18:00:00.000Z logged_out    ",
	)
}

func TestBadRecords(t *testing.T) {
	for rec, want := range map[string]string{
		"":                            "malformed",
		"{":                           "malformed",
		`{"eventBody":{}}`:            `field "topicName": missing`,
		`{"detail":{"eventBody":{}}}`: `field "detail.topicName": missing`,
		`{"topicName":"v2.detail.events.conversation.c.acw","eventBody":{"conversationId":"c","userId":"u"}}`:                                                 `field "eventBody.eventTime": missing`,
		`{"topicName":"v2.detail.events.conversation.c.acw","eventBody":{"eventTime":"x"}}`:                                                                   `field "eventBody.eventTime": is a JSON string`,
		`{"topicName":"v2.detail.events.conversation.c.user.end","eventBody":{"eventTime":1795341600000,"conversationId":"c"}}`:                               `field "eventBody.userId": missing`,
		`{"topicName":"v2.detail.events.conversation.c.user.end","eventBody":{"eventTime":1795341600000,"userId":"u"}}`:                                       `field "eventBody.conversationId": missing`,
		`{"topicName":"v2.detail.events.conversation.c.user.end","eventBody":{"eventTime":5,"userId":"u","conversationId":"c"}}`:                              `outside years 2000-2099`,
		`{"topicName":"v2.detail.events.conversation.c.acw","eventBody":{"eventTime":1795341600000,"userId":"u","conversationId":"c","wrapupDurationMs":-1}}`: `field "eventBody.wrapupDurationMs"`,
		`{"topicName":"v2.users.u.routingStatus","eventBody":{}}`:                                                                                             `field "eventBody.routingStatus.status": missing`,
		`{"topicName":"v2.users.u.routingStatus","eventBody":{"routingStatus":{"status":"IDLE"}}}`:                                                            `field "eventBody.routingStatus.startTime"`,
		`{"topicName":"v2.users.u.presence","eventBody":{"presenceDefinition":{"systemPresence":"Away"}}}`:                                                    `field "eventBody.modifiedDate"`,
		`{"topicName":"v2.users.u.presence","eventBody":{"modifiedDate":"2026-11-22T10:00:00Z"}}`:                                                             `field "eventBody.presenceDefinition.systemPresence": missing`,
	} {
		a := New(Config{})
		out, err := a.Translate([]byte(rec), nil)
		if err == nil || (want != "malformed" && !strings.Contains(err.Error(), want)) || len(out) != 0 {
			t.Errorf("%q: %v (out %v), want an error containing %q", rec, err, out, want)
		}
		if want == "malformed" && events.Reason(err) != events.ReasonMalformed {
			t.Errorf("%q: reason %s, want malformed", rec, events.Reason(err))
		}
		if len(a.users) != 0 {
			t.Errorf("%q changed the state", rec)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	adaptertest.StateRoundTrip(t, func() events.Adapter { return New(Config{}) }, 0, fixture(t), []byte{1, 2})
}

func FuzzTranslate(f *testing.F) {
	for _, r := range adaptertest.Records(f, "testdata/notifications.jsonl") {
		f.Add(r)
	}
	a := New(Config{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		adaptertest.CheckRecord(t, a, func() events.Adapter { return New(Config{}) }, rec)
	})
}

// Notifications carry no user name: the configured names (the Users
// API's name of each userId) give every event of that user its display
// name, and a user without one gets none.
func TestConfiguredNamesAreTheDisplayNames(t *testing.T) {
	recs := fixture(t)
	var user string
	{
		evs, err := New(Config{}).Translate(recs[0], nil)
		if err != nil || len(evs) == 0 {
			t.Fatalf("first fixture record: %v %v", evs, err)
		}
		user = evs[0].AgentID
	}
	for _, names := range []map[string]string{nil, {user: "Ana Lima"}} {
		a := New(Config{Names: names})
		n := 0
		for i, r := range recs {
			evs, err := a.Translate(r, nil)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			for _, e := range evs {
				n++
				if e.AgentName != names[e.AgentID] {
					t.Errorf("names %v: event %s %s has agent_name %q", names, e.AgentID, e.State, e.AgentName)
				}
			}
		}
		if n < 6 {
			t.Fatalf("only %d events from the fixture", n)
		}
	}
}
