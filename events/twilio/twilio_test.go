package twilio

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/adaptertest"
)

func fixture(t *testing.T, name string) [][]byte { return adaptertest.Records(t, "testdata/"+name) }

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

// A webhook-sink batch mixes TaskRouter events with other products'
// (Messaging status, Voice Insights with data as a JSON string): the
// TaskRouter events are taken, the rest skipped and counted.
func TestAMixedBatchIsNotRejected(t *testing.T) {
	a := New(Config{})
	b, err := os.ReadFile("testdata/mixed-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := a.Translate(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, evs)
	if len(got) != 1 || !strings.Contains(got[0], "not_ready") || !strings.Contains(got[0], "reason=Break") {
		t.Errorf("events %q", got)
	}
	if a.Stats.Ignored != 4 { // three other products, and a task.completed no worker holds
		t.Errorf("ignored %d, want 4", a.Stats.Ignored)
	}
}

// ce is an Event Streams CloudEvent of worker WK1.
func ce(typ string, ms int64, kv ...string) []byte {
	p := map[string]any{"timestamp": ms, "worker_sid": "WK1", "task_channel_unique_name": "voice"}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	if strings.HasPrefix(typ, "task.") {
		delete(p, "worker_sid")
	}
	b, _ := json.Marshal(map[string]any{"type": "com.twilio.taskrouter." + typ, "id": "EV" + strconv.FormatInt(ms, 10), "data": map[string]any{"payload": p}})
	return b
}

// A wrap-up whose reservation.completed never comes (an undelivered
// callback; a workspace whose EventsFilter leaves it out, as Flex
// workspaces do) ends at task.completed, or at the worker's next
// reservation, or when the worker becomes available again; a canceled,
// failed or deleted task never leaves a worker wedged.
func TestAWrapUpWithoutReservationCompletedEnds(t *testing.T) {
	const t0 = int64(1795341600000)
	res := func(typ string, s int64, n string) []byte {
		return ce("reservation."+typ, t0+s*1000, "reservation_sid", "WR"+n, "task_sid", "WT"+n)
	}
	a := New(Config{})
	got := render(t, translateAll(t, a, [][]byte{
		ce("worker.activity.update", t0, "worker_activity_name", "Available"),
		res("created", 10, "1"), res("accepted", 12, "1"), res("wrapup", 60, "1"),
		ce("task.completed", t0+80_000, "task_sid", "WT1"), // ends the wrap-up
		res("created", 100, "2"), res("accepted", 102, "2"), res("wrapup", 150, "2"),
		res("created", 200, "3"), // the next reservation ends wrap-up 2
		res("accepted", 202, "3"), res("wrapup", 250, "3"),
		ce("worker.activity.update", t0+300_000, "worker_activity_name", "Available"), // so does becoming available
		res("created", 400, "4"),
		ce("task.canceled", t0+405_000, "task_sid", "WT4"),
		res("created", 500, "5"),
		res("failed", 505, "5"),
	}))
	want := []string{
		"+0 ready", "+10 ringing WT1", "+12 talking WT1", "+60 acw WT1", "+80 ready",
		"+100 ringing WT2", "+102 talking WT2", "+150 acw WT2",
		"+200 ringing WT3", "+202 talking WT3", "+250 acw WT3", "+300 ready",
		"+400 ringing WT4", "+405 ready",
		"+500 ringing WT5", "+505 ready",
	}
	var short []string
	for _, g := range got {
		f := strings.Fields(g)
		ts, _ := events.ParseRFC3339Millis([]byte(f[0]))
		s := fmt.Sprintf("+%d %s", (ts-t0)/1000, f[2])
		if c := strings.TrimPrefix(f[3], "call="); c != "" {
			s += " " + c
		}
		short = append(short, s)
	}
	if strings.Join(short, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(short, "\n"), strings.Join(want, "\n"))
	}
	// The task index survives a checkpoint.
	b := New(Config{})
	translateAll(t, b, [][]byte{res("created", 10, "9"), res("accepted", 12, "9"), res("wrapup", 60, "9")})
	c := New(Config{})
	if err := c.RestoreState(b.AppendState(nil)); err != nil {
		t.Fatal(err)
	}
	if evs := translateAll(t, c, [][]byte{ce("task.completed", t0+80_000, "task_sid", "WT9")}); len(evs) != 1 || evs[0].State != events.StateReady {
		t.Errorf("task.completed after a restore: %+v", evs)
	}
}

func TestBadRecords(t *testing.T) {
	for rec, want := range map[string]string{
		"":            "malformed",
		"hello world": "malformed",
		`{"type":`:    "malformed",
		`[]`:          `field "[]"`,
		`{"type":"com.twilio.taskrouter.reservation.wrapup"}`: `field "data.payload": missing`,
		`{"type":"com.twilio.taskrouter.reservation.wrapup","data":{"payload":{"timestamp":1795341600000,"worker_sid":"WK1","task_sid":"WT1"}}}`: `field "data.payload.reservation_sid": missing for reservation.wrapup`,
		`{"type":"com.twilio.taskrouter.reservation.wrapup","data":{"payload":{"worker_sid":"WK1"}}}`:                                            `field "data.payload.timestamp"`,
		`{"data":{"payload":{"timestamp":1795341600000,"worker_sid":7}}}`:                                                                        `field "data.payload.worker_sid": is a JSON number`,
		"EventType=worker.activity.update&TimestampMs=1795341600000&WorkerSid=WK1":                                                               `field "WorkerActivityName": missing`,
		"EventType=reservation.accepted&TimestampMs=x&WorkerSid=WK1":                                                                             `field "TimestampMs"`,
		"EventType=reservation.accepted&TimestampMs=99999999999999&WorkerSid=WK1&ReservationSid=WR1&TaskSid=WT1":                                 `outside years 2000-2099`,
		"EventType=reservation.accepted&TimestampMs=1795341600000&ReservationSid=WR1&TaskSid=WT1":                                                `field "WorkerSid": missing`,
		`[{"type":"com.twilio.taskrouter.worker.activity.update","data":{"payload":{"timestamp":1795341600000,"worker_sid":"WK1","worker_activity_name":"Available"}}},{"type":"com.twilio.taskrouter.x","data":{"payload":{}}}]`: `field "[1].data.payload.timestamp"`,
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
	adaptertest.StateRoundTrip(t, func() events.Adapter { return New(Config{}) }, 0, fixture(t, "webhook.txt"), []byte{1, 9})
}

func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"webhook.txt", "eventstreams.jsonl"} {
		for _, r := range adaptertest.Records(f, "testdata/"+name) {
			f.Add(r)
		}
	}
	a := New(Config{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		adaptertest.CheckRecord(t, a, func() events.Adapter { return New(Config{}) }, rec)
	})
}
