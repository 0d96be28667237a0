package freeswitch

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/adaptertest"
)

func fixture(t *testing.T) [][]byte { return adaptertest.Records(t, "testdata/callcenter.jsonl") }

// feed translates recs as the engine does (held ends due at the largest
// ts minus ooo come first; all of them at the end) and renders the events.
func feed(t *testing.T, a *Adapter, ooo time.Duration, recs [][]byte) []string {
	t.Helper()
	var got []string
	for _, e := range adaptertest.Feed(t, a, nil, ooo, recs, -1) {
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s", events.FormatTime(e.TS), e.AgentID, e.State, e.CallID, e.Queue, e.Reason))
	}
	return got
}

// A standard agent wraps up for its wrap-up-time after
// CC-Bridge-Terminated-Time; an on-demand agent until its state returns to
// Waiting.
func TestWrapUpTimeAndOnDemand(t *testing.T) {
	a := New(Config{WrapUpTimes: map[string]time.Duration{"1000@default": 10 * time.Second}, Agents: map[string]string{"1000@default": "alice"}})
	got := feed(t, a, 2*time.Second, fixture(t))
	want := []string{
		"2026-11-22T10:00:00.000Z alice ready   ",
		"2026-11-22T10:00:00.250Z 1001@default ready   ",
		"2026-11-22T10:00:05.000Z alice ringing f1a1b2c3-5a43-11ee-8c99-0242ac120002 support@default ",
		"2026-11-22T10:00:08.200Z alice talking f1a1b2c3-5a43-11ee-8c99-0242ac120002 support@default ",
		"2026-11-22T10:00:20.100Z 1001@default talking b1a1b2c3-5a43-11ee-8c99-0242ac120002 sales@default ",
		"2026-11-22T10:02:08.000Z alice acw f1a1b2c3-5a43-11ee-8c99-0242ac120002 support@default ",
		"2026-11-22T10:02:18.000Z alice ready   ", // 128 s + 10 s, released before the record at 140 s moves time past it
		"2026-11-22T10:02:20.000Z 1001@default acw b1a1b2c3-5a43-11ee-8c99-0242ac120002 sales@default ",
		"2026-11-22T10:02:53.750Z 1001@default ready   ",
		"2026-11-22T10:03:20.000Z alice not_ready   On Break",
		"2026-11-22T10:05:00.000Z 1001@default logged_out   ",
	}
	checkLines(t, got, want)
	if a.Stats.Ignored != 1 {
		t.Errorf("ignored %d, want 1 (member-queue-end)", a.Stats.Ignored)
	}
}

// plain is a plain-form ESL event of agent 1000@default at sec seconds
// after 2026-11-22T10:00:00Z, with extra headers kv.
func plain(sec int, action string, kv ...string) []byte {
	s := fmt.Sprintf("Event-Name: CUSTOM\nEvent-Subclass: callcenter%%3A%%3Ainfo\nEvent-Date-Timestamp: %d\nCC-Action: %s\nCC-Agent: 1000%%40default\n", (1795341600+int64(sec))*1000000, action)
	for i := 0; i+1 < len(kv); i += 2 {
		s += kv[i] + ": " + kv[i+1] + "\n"
	}
	return []byte(s + "\n")
}

// An agent's record after its implicit window's end closes the window
// first, in the state it ended in, whether or not event time has released
// it (here it has not: max_out_of_order is an hour). Whether it had would
// depend on other agents' records, which a partitioned topic does not
// share.
func TestARecordAfterTheWindowsEndClosesItFirst(t *testing.T) {
	a := New(Config{WrapUpTime: 30 * time.Second})
	got := feed(t, a, time.Hour, [][]byte{
		plain(0, "agent-status-change", "CC-Agent-Status", "Available"),
		plain(10, "bridge-agent-start", "CC-Member-Session-UUID", "m1", "CC-Agent-Answered-Time", "1795341610"),
		plain(20, "bridge-agent-end", "CC-Member-Session-UUID", "m1", "CC-Bridge-Terminated-Time", "1795341620"),
		plain(70, "agent-status-change", "CC-Agent-Status", "On Break"), // the window ended at 50
	})
	want := []string{
		"2026-11-22T10:00:00.000Z 1000@default ready   ",
		"2026-11-22T10:00:10.000Z 1000@default talking m1  ",
		"2026-11-22T10:00:20.000Z 1000@default acw m1  ",
		"2026-11-22T10:00:50.000Z 1000@default ready   ",
		"2026-11-22T10:01:10.000Z 1000@default not_ready   On Break",
	}
	checkLines(t, got, want)
}

// The plain ESL form reads the same; a new bridge cuts a window short;
// a break taken in a window shows when it ends.
func TestPlainFormCutShortAndBreak(t *testing.T) {
	a := New(Config{WrapUpTime: 30 * time.Second})
	got := feed(t, a, 0, [][]byte{
		plain(0, "agent-status-change", "CC-Agent-Status", "Available"),
		plain(10, "bridge-agent-start", "CC-Member-Session-UUID", "m1", "CC-Agent-Answered-Time", "1795341610"),
		plain(20, "bridge-agent-end", "CC-Member-Session-UUID", "m1", "CC-Bridge-Terminated-Time", "1795341620"),
		plain(35, "bridge-agent-start", "CC-Member-Session-UUID", "m2", "CC-Agent-Answered-Time", "1795341635"),
		plain(40, "bridge-agent-end", "CC-Member-Session-UUID", "m2", "CC-Bridge-Terminated-Time", "1795341640"),
		plain(45, "agent-status-change", "CC-Agent-Status", "On Break"),
	})
	want := []string{
		"2026-11-22T10:00:00.000Z 1000@default ready   ",
		"2026-11-22T10:00:10.000Z 1000@default talking m1  ",
		"2026-11-22T10:00:20.000Z 1000@default acw m1  ",
		"2026-11-22T10:00:35.000Z 1000@default talking m2  ",
		"2026-11-22T10:00:40.000Z 1000@default acw m2  ",
		"2026-11-22T10:01:10.000Z 1000@default not_ready   On Break",
	}
	checkLines(t, got, want)
}

// plainUS is plain, at us microseconds after 2026-11-22T10:00:00Z.
func plainUS(us int64, action string, kv ...string) []byte {
	b := plain(0, action, kv...)
	return bytes.Replace(b, []byte("Event-Date-Timestamp: 1795341600000000"), []byte(fmt.Sprintf("Event-Date-Timestamp: %d", 1795341600000000+us)), 1)
}

// CC-Agent-Answered-Time is whole seconds, and is often the same second
// as agent-offering, whose Event-Date-Timestamp has microseconds: the
// answer is never dated before the offer it answers (the agent would stay
// ringing for the whole call). A bridge that never happened
// (CC-Agent-Bridged: false, the caller hung up as the agent answered) is
// no handled call and no wrap-up.
func TestAnswerNeverBeforeTheOfferAndUnbridgedCalls(t *testing.T) {
	a := New(Config{WrapUpTime: 30 * time.Second})
	got := feed(t, a, 2*time.Second, [][]byte{
		plainUS(0, "agent-status-change", "CC-Agent-Status", "Available"),
		plainUS(10_400_000, "agent-offering", "CC-Member-Session-UUID", "m1", "CC-Queue", "q1"),
		plainUS(10_900_000, "bridge-agent-start", "CC-Member-Session-UUID", "m1", "CC-Agent-Answered-Time", "1795341610"),
		plainUS(20_000_000, "bridge-agent-end", "CC-Member-Session-UUID", "m1", "CC-Bridge-Terminated-Time", "1795341620", "CC-Agent-Bridged", "true"),
		plainUS(60_000_000, "agent-offering", "CC-Member-Session-UUID", "m2", "CC-Queue", "q1"),
		plainUS(61_000_000, "bridge-agent-end", "CC-Member-Session-UUID", "m2", "CC-Bridge-Terminated-Time", "1795341661", "CC-Agent-Bridged", "false"),
		plainUS(70_000_000, "agent-offering", "CC-Member-Session-UUID", "m3", "CC-Queue", "q1"),
		plainUS(71_000_000, "bridge-agent-fail", "CC-Member-Session-UUID", "m3", "CC-Hangup-Cause", "NO_ANSWER", "CC-Agent-Bridged", "false"),
	})
	want := []string{
		"2026-11-22T10:00:00.000Z 1000@default ready   ",
		"2026-11-22T10:00:10.400Z 1000@default ringing m1 q1 ",
		"2026-11-22T10:00:10.400Z 1000@default talking m1 q1 ",
		"2026-11-22T10:00:20.000Z 1000@default acw m1 q1 ",
		"2026-11-22T10:00:50.000Z 1000@default ready   ",
		"2026-11-22T10:01:00.000Z 1000@default ringing m2 q1 ",
		"2026-11-22T10:01:01.000Z 1000@default ready   ",
		"2026-11-22T10:01:10.000Z 1000@default ringing m3 q1 ",
		"2026-11-22T10:01:11.000Z 1000@default ready   ",
	}
	checkLines(t, got, want)
}

func TestBadRecords(t *testing.T) {
	ok := `"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","Event-Date-Timestamp":"1795341600000000"`
	for rec, want := range map[string]string{
		"":                  "malformed",
		"garbage":           "malformed",
		`{"Event-Name":`:    "malformed",
		`{"CC-Action":"x"}`: "malformed",
		`{"Event-Name":"CUSTOM","CC-Action":"bridge-agent-end"}`:                                                             `field "Event-Date-Timestamp"`,
		`{"Event-Name":"CUSTOM","Event-Date-Timestamp":"99999999999999999"}`:                                                 `outside years 2000-2099`,
		`{` + ok + `,"CC-Action":"bridge-agent-end"}`:                                                                        `field "CC-Agent": missing`,
		`{` + ok + `,"CC-Action":"bridge-agent-end","CC-Agent":"1"}`:                                                         `field "CC-Member-Session-UUID": missing`,
		`{` + ok + `,"CC-Action":"agent-status-change","CC-Agent":"1"}`:                                                      `field "CC-Agent-Status": missing`,
		`{` + ok + `,"CC-Action":"agent-state-change","CC-Agent":"1"}`:                                                       `field "CC-Agent-State": missing`,
		`{` + ok + `,"CC-Action":"bridge-agent-end","CC-Agent":"1","CC-Member-UUID":"m","CC-Bridge-Terminated-Time":"soon"}`: `field "CC-Bridge-Terminated-Time"`,
	} {
		a := New(Config{})
		out, err := a.Translate([]byte(rec), nil)
		if err == nil || (want != "malformed" && !strings.Contains(err.Error(), want)) || len(out) != 0 {
			t.Errorf("%q: %v (out %v), want an error containing %q", rec, err, out, want)
		}
		if want == "malformed" && events.Reason(err) != events.ReasonMalformed {
			t.Errorf("%q: reason %s, want malformed", rec, events.Reason(err))
		}
		if len(a.agents) != 0 {
			t.Errorf("%q changed the state", rec)
		}
	}
}

// A checkpoint taken after any record gives an adapter that goes on
// exactly as the one that wrote it, held ends included.
func TestStateRoundTrip(t *testing.T) {
	cfg := Config{WrapUpTime: 10 * time.Second}
	adaptertest.StateRoundTrip(t, func() events.Adapter { return New(cfg) }, time.Second, fixture(t), []byte{1, 3})
}

func FuzzTranslate(f *testing.F) {
	for _, r := range adaptertest.Records(f, "testdata/callcenter.jsonl") {
		f.Add(r)
	}
	f.Add([]byte("Event-Name: CUSTOM\nEvent-Subclass: callcenter%3A%3Ainfo\nEvent-Date-Timestamp: 1795341600000000\nCC-Action: bridge-agent-end\nCC-Agent: 1\nCC-Member-UUID: m\n\n"))
	a := New(Config{WrapUpTime: 5 * time.Second})
	f.Fuzz(func(t *testing.T, rec []byte) {
		adaptertest.CheckRecord(t, a, func() events.Adapter { return New(Config{}) }, rec)
	})
}

// mod_callcenter sends bridge-agent-start when the agent answers, before
// it bridges the caller (mod_callcenter.c): the agent is talking once
// "In a queue call" follows. A bridge that fails (the caller hung up as
// the agent answered: bridge-agent-end with CC-Agent-Bridged false right
// after the start) is no call: the offer ends unanswered, nothing is
// handled and nothing wrapped up. Without the state change (a feed that
// filters it), bridge-agent-end dates the talk from CC-Agent-Answered-Time.
func TestTalkingBeginsWhenTheBridgeIsMade(t *testing.T) {
	a := New(Config{WrapUpTime: 30 * time.Second})
	got := feed(t, a, 2*time.Second, [][]byte{
		plainUS(0, "agent-status-change", "CC-Agent-Status", "Available"),
		plainUS(10_400_000, "agent-offering", "CC-Member-Session-UUID", "m1", "CC-Queue", "q1"),
		plainUS(10_500_000, "bridge-agent-start", "CC-Member-Session-UUID", "m1", "CC-Agent-Answered-Time", "1795341610"),
		plainUS(10_600_000, "bridge-agent-end", "CC-Member-Session-UUID", "m1", "CC-Agent-Answered-Time", "1795341610", "CC-Bridge-Terminated-Time", "1795341610", "CC-Agent-Bridged", "false"),
		plainUS(20_000_000, "agent-offering", "CC-Member-Session-UUID", "m2", "CC-Queue", "q1"),
		plainUS(22_000_000, "bridge-agent-start", "CC-Member-Session-UUID", "m2", "CC-Agent-Answered-Time", "1795341622"),
		plainUS(22_300_000, "agent-state-change", "CC-Agent-State", "In a queue call"),
		plainUS(80_000_000, "bridge-agent-end", "CC-Member-Session-UUID", "m2", "CC-Agent-Answered-Time", "1795341622", "CC-Bridge-Terminated-Time", "1795341680", "CC-Agent-Bridged", "true"),
		plainUS(100_000_000, "agent-offering", "CC-Member-Session-UUID", "m3", "CC-Queue", "q1"),
		plainUS(103_000_000, "bridge-agent-start", "CC-Member-Session-UUID", "m3", "CC-Agent-Answered-Time", "1795341703"),
		plainUS(105_000_000, "bridge-agent-end", "CC-Member-Session-UUID", "m3", "CC-Agent-Answered-Time", "1795341703", "CC-Bridge-Terminated-Time", "1795341705", "CC-Agent-Bridged", "true"),
	})
	want := []string{
		"2026-11-22T10:00:00.000Z 1000@default ready   ",
		"2026-11-22T10:00:10.400Z 1000@default ringing m1 q1 ",
		"2026-11-22T10:00:10.400Z 1000@default ready   ",
		"2026-11-22T10:00:20.000Z 1000@default ringing m2 q1 ",
		"2026-11-22T10:00:22.300Z 1000@default talking m2 q1 ",
		"2026-11-22T10:01:20.000Z 1000@default acw m2 q1 ",
		"2026-11-22T10:01:40.000Z 1000@default ringing m3 q1 ",
		"2026-11-22T10:01:43.000Z 1000@default talking m3 q1 ",
		"2026-11-22T10:01:45.000Z 1000@default acw m3 q1 ",
		"2026-11-22T10:02:15.000Z 1000@default ready   ",
	}
	checkLines(t, got, want)
}

// checkLines compares rendered events with the expected ones.
func checkLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
