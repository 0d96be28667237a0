package twilio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/acwstream/acwstream/events"
)

func fixture(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		recs = append(recs, append([]byte(nil), sc.Bytes()...))
	}
	return recs
}

func render(t *testing.T, evs []events.Event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if err := e.Validate(); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
		out = append(out, fmt.Sprintf("%s %s %s call=%s q=%s team=%s reason=%s disp=%s id=%s", events.FormatTime(e.TS), e.AgentID, e.State,
			e.CallID, e.Queue, e.Team, e.Reason, e.Disposition, e.EventID))
	}
	return out
}

func translateAll(t *testing.T, a *Adapter, recs [][]byte) []events.Event {
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

var wantReservation = []string{
	"2026-11-22T10:00:00.000Z WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ready call= q= team=t1 reason= disp= id=EV00000000000000000000000000000001",
	"2026-11-22T10:01:00.000Z WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ringing call=WTcccccccccccccccccccccccccccccccc q=Billing team=t1 reason= disp= id=EV00000000000000000000000000000002",
	"2026-11-22T10:01:04.500Z WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa talking call=WTcccccccccccccccccccccccccccccccc q=Billing team=t1 reason= disp= id=EV00000000000000000000000000000003",
	"2026-11-22T10:03:04.250Z WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa acw call=WTcccccccccccccccccccccccccccccccc q=Billing team=t1 reason= disp=resolved id=EV00000000000000000000000000000005",
	"2026-11-22T10:03:31.750Z WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ready call= q= team=t1 reason= disp= id=EV00000000000000000000000000000006",
	"2026-11-22T10:05:00.000Z WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa not_ready call= q= team=t1 reason=Break disp= id=EV00000000000000000000000000000007",
}

// One voice reservation, as webhook bodies and as Event Streams
// CloudEvents: the same canonical events, with 27.5 s of wrap-up
// (reservation.wrapup → reservation.completed).
func TestReservationLifecycle(t *testing.T) {
	for _, name := range []string{"webhook.txt", "eventstreams.jsonl"} {
		a := New(Config{})
		got := render(t, translateAll(t, a, fixture(t, name)))
		if strings.Join(got, "\n") != strings.Join(wantReservation, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(wantReservation, "\n"))
		}
		if a.Stats.Ignored != 1 {
			t.Errorf("%s: ignored %d, want 1 (task.updated)", name, a.Stats.Ignored)
		}
	}
}

func form(kv ...string) []byte {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	return []byte(b.String())
}

// An activity change during a reservation shows when the reservation
// ends; other channels and stray reservations are skipped; a worker
// without a known activity returns to ready.
func TestActivityDuringReservationAndSkips(t *testing.T) {
	a := New(Config{AgentID: "name", Activities: map[string]events.State{"Lunch": events.StateNotReady, "Gone": events.StateLoggedOut}})
	res := func(typ, ms, rs, ch string) []byte {
		return form("EventType", typ, "TimestampMs", ms, "WorkerSid", "WK1", "WorkerName", "bob", "ReservationSid", rs, "TaskSid", "WT"+rs, "TaskChannelUniqueName", ch)
	}
	got := render(t, translateAll(t, a, [][]byte{
		res("reservation.created", "1795341600000", "1", "voice"),
		res("reservation.accepted", "1795341601000", "1", "voice"),
		res("reservation.created", "1795341602000", "2", "chat"),  // another channel
		res("reservation.created", "1795341603000", "3", "voice"), // a second voice reservation
		form("EventType", "worker.activity.update", "TimestampMs", "1795341610000", "WorkerSid", "WK1", "WorkerName", "bob", "WorkerActivityName", "Lunch"),
		res("reservation.wrapup", "1795341620000", "1", "voice"),
		res("reservation.completed", "1795341650000", "1", "voice"),
		res("reservation.completed", "1795341651000", "1", "voice"), // a repeat: nothing held
		form("EventType", "worker.activity.update", "Timestamp", "1795341700", "WorkerSid", "WK1", "WorkerName", "bob", "WorkerActivityName", "Gone"),
	}))
	want := []string{
		"2026-11-22T10:00:00.000Z bob ringing call=WT1 q= team= reason= disp= id=",
		"2026-11-22T10:00:01.000Z bob talking call=WT1 q= team= reason= disp= id=",
		"2026-11-22T10:00:20.000Z bob acw call=WT1 q= team= reason= disp= id=",
		"2026-11-22T10:00:50.000Z bob not_ready call= q= team= reason=Lunch disp= id=",
		"2026-11-22T10:01:40.000Z bob logged_out call= q= team= reason= disp= id=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a.Stats.NonVoice != 1 || a.Stats.Stray != 2 {
		t.Errorf("stats %+v, want 1 non-voice and 2 stray", a.Stats)
	}
}

func TestBadRecords(t *testing.T) {
	for rec, want := range map[string]string{
		"":            "malformed",
		"hello world": "malformed",
		`{"type":`:    "malformed",
		`[]`:          `field "[]"`,
		`{"type":"com.twilio.taskrouter.reservation.wrapup"}`: `field "data.payload": missing`,
		`{"type":"com.twilio.taskrouter.reservation.wrapup","data":{"payload":{"timestamp":1795341600000,"worker_sid":"WK1","task_sid":"WT1"}}}`:                                                            `field "data.payload.reservation_sid": missing for reservation.wrapup`,
		`{"type":"com.twilio.taskrouter.reservation.wrapup","data":{"payload":{"worker_sid":"WK1"}}}`:                                                                                                       `field "data.payload.timestamp"`,
		`{"data":{"payload":{"timestamp":1795341600000,"worker_sid":7}}}`:                                                                                                                                   `field "data.payload.worker_sid": is a JSON number`,
		"EventType=worker.activity.update&TimestampMs=1795341600000&WorkerSid=WK1":                                                                                                                          `field "WorkerActivityName": missing`,
		"EventType=reservation.accepted&TimestampMs=x&WorkerSid=WK1":                                                                                                                                        `field "TimestampMs"`,
		"EventType=reservation.accepted&TimestampMs=99999999999999&WorkerSid=WK1&ReservationSid=WR1&TaskSid=WT1":                                                                                            `outside years 2000-2099`,
		"EventType=reservation.accepted&TimestampMs=1795341600000&ReservationSid=WR1&TaskSid=WT1":                                                                                                           `field "WorkerSid": missing`,
		`[{"type":"com.twilio.taskrouter.worker.activity.update","data":{"payload":{"timestamp":1795341600000,"worker_sid":"WK1","worker_activity_name":"Available"}}},{"type":"x","data":{"payload":{}}}]`: `field "[1].data.payload.timestamp"`,
	} {
		a := New(Config{})
		out, err := a.Translate([]byte(rec), nil)
		if err == nil || (want != "malformed" && !strings.Contains(err.Error(), want)) || len(out) != 0 {
			t.Errorf("%q: %v (out %v), want an error containing %q", rec, err, out, want)
		}
		if want == "malformed" && events.Reason(err) != events.ReasonMalformed {
			t.Errorf("%q: reason %s, want malformed", rec, events.Reason(err))
		}
		if len(a.workers) != 0 {
			t.Errorf("%q changed the state", rec)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	recs := fixture(t, "webhook.txt")
	want := render(t, translateAll(t, New(Config{}), recs))
	for cut := range len(recs) + 1 {
		a := New(Config{})
		got := translateAll(t, a, recs[:cut])
		b := New(Config{})
		st := a.AppendState(nil)
		if err := b.RestoreState(st); err != nil || string(b.AppendState(nil)) != string(st) {
			t.Fatalf("cut %d: %v", cut, err)
		}
		got = append(got, translateAll(t, b, recs[cut:])...)
		if g := render(t, got); strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Errorf("cut %d: %v", cut, g)
		}
	}
	if err := New(Config{}).RestoreState([]byte{1, 9}); !errors.Is(err, events.ErrState) {
		t.Errorf("corrupt state: %v", err)
	}
}

func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"webhook.txt", "eventstreams.jsonl"} {
		b, _ := os.ReadFile("testdata/" + name)
		for _, l := range bytes.Split(b, []byte("\n")) {
			f.Add(l)
		}
	}
	a := New(Config{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		prefix := []events.Event{{AgentID: "keep"}}
		out, err := a.Translate(rec, prefix)
		if err != nil {
			if len(out) != 1 || events.Reason(err) == "" {
				t.Fatalf("%q: error %v with %d events appended", rec, err, len(out)-1)
			}
			return
		}
		for _, e := range out[1:] {
			if err := e.Validate(); err != nil {
				t.Fatalf("%q gave %+v: %v", rec, e, err)
			}
		}
		st := a.AppendState(nil)
		if err := New(Config{}).RestoreState(st); err != nil {
			t.Fatalf("state does not restore: %v", err)
		}
	})
}
