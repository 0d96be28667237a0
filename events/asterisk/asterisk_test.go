package asterisk

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/adaptertest"
)

// feeder feeds lines (the TIME field is seconds after base) to an adapter
// as the engine does: held events due at the watermark (largest ts minus
// ooo) come before each line's own events. It renders each event as
// "+SECONDS agent state[/call][/reason]".
type feeder struct {
	t     *testing.T
	a     *Adapter
	ooo   time.Duration
	maxTS int64
	got   []string
}

const base = 1763800000

func newFeeder(t *testing.T, a *Adapter, ooo time.Duration) *feeder {
	return &feeder{t: t, a: a, ooo: ooo, maxTS: math.MinInt64}
}

func (f *feeder) render(es []events.Event) {
	for _, e := range es {
		if err := e.Validate(); err != nil {
			f.t.Errorf("%+v: %v", e, err)
		}
		s := fmt.Sprintf("+%d %s %s", e.TS/1000-base, e.AgentID, e.State)
		if e.CallID != "" {
			s += "/" + e.CallID
		}
		if e.Reason != "" {
			s += "/" + e.Reason
		}
		f.got = append(f.got, s)
	}
}

func (f *feeder) feed(lines ...string) {
	f.t.Helper()
	for _, l := range lines {
		evs, err := f.a.Translate(line(l), nil)
		if err != nil {
			f.t.Fatalf("%q: %v", l, err)
		}
		for _, e := range evs {
			f.maxTS = max(f.maxTS, e.TS)
		}
		if f.maxTS != math.MinInt64 {
			f.render(f.a.Advance(f.maxTS-f.ooo.Milliseconds(), nil))
		}
		f.render(evs)
	}
}

// finish releases everything held, as replay does at the end.
func (f *feeder) finish() []string {
	f.render(f.a.Advance(math.MaxInt64, nil))
	return f.got
}

// run feeds lines to a and finishes.
func run(t *testing.T, a *Adapter, ooo time.Duration, lines ...string) []string {
	t.Helper()
	f := newFeeder(t, a, ooo)
	f.feed(lines...)
	return f.finish()
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// The implicit wrapuptime window: from the end of the call for the queue's
// wrapuptime, or the member's override; its end is held until event time
// passes it.
func TestImplicitWrapuptime(t *testing.T) {
	a := New(Config{Queues: map[string]time.Duration{"sales": 15 * time.Second, "support": 30 * time.Second},
		Members: map[string]map[string]time.Duration{"support": {"SIP/8008": 5 * time.Second}}})
	got := run(t, a, 2*time.Second,
		"0|NONE|sales|SIP/8007|ADDMEMBER|",
		"0|NONE|support|SIP/8008|ADDMEMBER|",
		"10|1763800010.1|sales|SIP/8007|CONNECT|3|1763800010.2|2",
		"20|1763800020.1|support|SIP/8008|CONNECT|1|1763800020.2|1",
		"70|1763800010.1|sales|SIP/8007|COMPLETEAGENT|3|60|1",
		"80|1763800020.1|support|SIP/8008|COMPLETECALLER|1|60|1",
		"84|1763800090.1|sales|NONE|ENTERQUEUE||0100|1",    // ignored: says nothing about an agent
		"87|1763800087.1|sales|SIP/9999|RINGNOANSWER|1000", // rung 1 s, not answered: a missed offer
		"95|NONE|sales|SIP/8007|AGENTLOGOFF|SIP/8007|95",
	)
	check(t, got,
		"+0 SIP/8007 ready",
		"+0 SIP/8008 ready",
		"+10 SIP/8007 talking/1763800010.1",
		"+20 SIP/8008 talking/1763800020.1",
		"+70 SIP/8007 acw/1763800010.1",
		"+80 SIP/8008 acw/1763800020.1",
		"+85 SIP/8007 ready", // 70 + 15 s (sales), released when line 87 moves time past it
		"+85 SIP/8008 ready", // 80 + 5 s (member override)
		"+87 SIP/9999 ringing/1763800087.1",
		"+87 SIP/9999 ready",
		"+95 SIP/8007 logged_out",
	)
	if a.Stats.Ignored != 1 {
		t.Errorf("ignored %d lines, want 1", a.Stats.Ignored)
	}
}

// Wazo's WRAPUPSTART|SECONDS (logged right after the call's completion,
// or on its own with callid NONE) is a wrap-up of that many seconds from
// that line, with no wrapuptime configured; with one, it replaces the
// implicit window's length. Rows after xivo-dao's queue_log tests.
func TestWazoWrapupStart(t *testing.T) {
	a := New(Config{})
	got := run(t, a, 2*time.Second,
		"0|NONE|queue2|Agent/1|ADDMEMBER|",
		"10|c1|queue2|Agent/1|CONNECT|3|c1b|2",
		"70|c1|queue2|Agent/1|COMPLETEAGENT|3|60|1",
		"70|c1|queue2|Agent/1|WRAPUPSTART|30",
		"200|NONE|NONE|Agent/1|WRAPUPSTART|15",
		"300|NONE|queue2|Agent/1|REMOVEMEMBER|",
	)
	check(t, got,
		"+0 Agent/1 ready",
		"+10 Agent/1 talking/c1",
		"+70 Agent/1 acw/c1", // the call ends in the wrap-up Wazo logs right after it
		"+100 Agent/1 ready",
		"+200 Agent/1 acw/wrapup-1763800200000",
		"+215 Agent/1 ready",
		"+300 Agent/1 logged_out",
	)
	b := New(Config{WrapupTime: 10 * time.Second})
	got = run(t, b, 2*time.Second,
		"0|NONE|queue2|Agent/1|ADDMEMBER|",
		"10|c1|queue2|Agent/1|CONNECT|3|c1b|2",
		"70|c1|queue2|Agent/1|COMPLETEAGENT|3|60|1",
		"70|c1|queue2|Agent/1|WRAPUPSTART|45",
		"200|NONE|queue2|Agent/1|REMOVEMEMBER|",
	)
	check(t, got,
		"+0 Agent/1 ready",
		"+10 Agent/1 talking/c1",
		"+70 Agent/1 acw/c1",
		"+115 Agent/1 ready",
		"+200 Agent/1 logged_out",
	)
}

// VICIdial/QueueMetrics logs PAUSEALL without a reason, then PAUSEREASON
// with it: the reason is that pause's (a wrap-up reason makes it a
// wrap-up); CALLSTATUS gives the call's disposition, before or during its
// wrap-up. Shapes after VICIdial's vdc_db_query.php.
func TestVicidialPauseReasonAndCallStatus(t *testing.T) {
	a := New(Config{WrapupReasons: []string{"WRAP"}})
	f := newFeeder(t, a, 2*time.Second)
	f.feed(
		"0|NONE|NONE|Agent/6001|AGENTLOGIN|SIP/6001",
		"10|NONE|NONE|Agent/6001|PAUSEALL||||SIP/6001|AGENT",
		"10|M1|NONE|Agent/6001|PAUSEREASON|LUNCH||||AGENT",
		"100|NONE|NONE|Agent/6001|UNPAUSEALL||||SIP/6001|AGENT",
		"110|V1|SALESIN|Agent/6001|CONNECT|1|V1b|2",
		"170|V1|SALESIN|Agent/6001|COMPLETEAGENT|1|60|1",
		"170|V1|SALESIN|Agent/6001|CALLSTATUS|SALE||1||",
		"170|NONE|NONE|Agent/6001|PAUSEALL||||SIP/6001|AGENT",
		"170|M2|NONE|Agent/6001|PAUSEREASON|WRAP||||AGENT",
		"200|NONE|NONE|Agent/6001|UNPAUSEALL||||SIP/6001|AGENT",
	)
	var dispo string
	for _, e := range evsOf(t, a, "170|V1|SALESIN|Agent/6001|CALLSTATUS|NOTE||1||") {
		dispo = e.Disposition
	}
	check(t, f.finish(),
		"+0 Agent/6001 ready",
		"+10 Agent/6001 not_ready/paused",
		"+10 Agent/6001 not_ready/LUNCH",
		"+100 Agent/6001 ready",
		"+110 Agent/6001 talking/V1",
		"+170 Agent/6001 ready",
		"+170 Agent/6001 not_ready/paused",
		"+170 Agent/6001 acw/V1",
		"+200 Agent/6001 ready",
	)
	if dispo != "" {
		t.Errorf("a CALLSTATUS after the wrap-up ended gave %q", dispo)
	}
	b := New(Config{WrapupReasons: []string{"WRAP"}})
	var got []events.Event
	for _, l := range []string{
		"0|NONE|NONE|Agent/1|AGENTLOGIN|SIP/1",
		"10|V2|IN|Agent/1|CONNECT|1|V2b|2",
		"70|V2|IN|Agent/1|COMPLETEAGENT|1|60|1",
		"70|V2|IN|Agent/1|CALLSTATUS|SALE||1||",
		"71|NONE|NONE|Agent/1|PAUSEALL||||SIP/1|AGENT",
		"71|M3|NONE|Agent/1|PAUSEREASON|WRAP||||AGENT",
		"90|V2|IN|Agent/1|CALLSTATUS|CALLBACK||1||",
	} {
		got = append(got, evsOf(t, b, l)...)
	}
	var dispos []string
	for _, e := range got {
		if e.State == events.StateACW {
			dispos = append(dispos, e.Disposition)
		}
	}
	if strings.Join(dispos, ",") != "SALE,CALLBACK" {
		t.Errorf("wrap-up dispositions %q, want SALE (given before it began), then CALLBACK", dispos)
	}
}

func evsOf(t *testing.T, a *Adapter, line string) []events.Event {
	t.Helper()
	sec, rest, _ := strings.Cut(line, "|")
	var n int64
	fmt.Sscan(sec, &n)
	evs, err := a.Translate([]byte(fmt.Sprintf("%d|%s", base+n, rest)), nil)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return evs
}

// Pause-based wrap-up (no wrapuptime): a wrap-up PAUSE after the call is
// that call's wrap-up until UNPAUSE; another pause reason is not_ready; a
// wrap-up pause during an implicit window extends it to the UNPAUSE.
func TestPauseWrapup(t *testing.T) {
	a := New(Config{Queues: map[string]time.Duration{"q2": 10 * time.Second}})
	got := run(t, a, 5*time.Second,
		"0|NONE|q1|Agent/1|AGENTLOGIN|SIP/1",
		"10|c1|q1|Agent/1|CONNECT|2|c1b|2",
		"40|c1|q1|Agent/1|COMPLETECALLER|2|30|1",
		"41|NONE|q1|Agent/1|PAUSE|Wrapup",
		"70|NONE|q1|Agent/1|UNPAUSE|Wrapup",
		"80|NONE|NONE|Agent/1|PAUSEALL|LUNCHBREAK",
		"90|NONE|NONE|Agent/1|UNPAUSEALL|",
		"100|c2|q2|Agent/1|CONNECT|2|c2b|2",
		"130|c2|q2|Agent/1|COMPLETEAGENT|2|30|1",
		"132|NONE|q2|Agent/1|PAUSE|acw", // reasons compare without case
		"190|NONE|q2|Agent/1|UNPAUSE|",
		"200|c3|q1|Agent/1|CONNECT|2|c3b|2",
		"220|c3|q1|Agent/1|COMPLETEAGENT|2|20|1", // no wrap-up pause: ends with the call
		"260|NONE|q1|Agent/1|PAUSE|Wrapup",       // long after: a wrap-up of its own
		"280|NONE|q1|Agent/1|UNPAUSE|",
	)
	check(t, got,
		"+0 Agent/1 ready",
		"+10 Agent/1 talking/c1",
		"+40 Agent/1 ready",
		"+41 Agent/1 acw/c1",
		"+70 Agent/1 ready",
		"+80 Agent/1 not_ready/LUNCHBREAK",
		"+90 Agent/1 ready",
		"+100 Agent/1 talking/c2",
		"+130 Agent/1 acw/c2",
		"+190 Agent/1 ready",
		"+200 Agent/1 talking/c3",
		"+220 Agent/1 ready",
		"+260 Agent/1 acw/c3",
		"+280 Agent/1 ready",
	)
}

// The hybrid rule: a member in two queues takes a call from the queue with
// the shorter wrapuptime before the longer window ends; that call ends the
// wrap-up. A pause taken during a window shows when the window ends.
func TestWindowCutShortAndPauseDuringWindow(t *testing.T) {
	a := New(Config{WrapupTime: 30 * time.Second, Teams: map[string]string{"alice": "t1"}, Agents: map[string]string{"PJSIP/alice": "alice"}})
	got := run(t, a, 0,
		"0|NONE|sales|PJSIP/alice|ADDMEMBER|PAUSED",
		"5|NONE|sales|PJSIP/alice|UNPAUSE|",
		"10|a|sales|PJSIP/alice|CONNECT|1|ab|1",
		"20|a|sales|PJSIP/alice|COMPLETEAGENT|1|10|1",
		"32|b|support|PJSIP/alice|CONNECT|1|bb|1",
		"40|b|support|PJSIP/alice|COMPLETEAGENT|1|8|1",
		"45|NONE|support|PJSIP/alice|PAUSE|Lunch",
		"100|NONE|support|PJSIP/alice|REMOVEMEMBER|",
		"101|NONE|sales|PJSIP/alice|REMOVEMEMBER|",
	)
	check(t, got,
		"+0 alice not_ready/paused",
		"+5 alice ready",
		"+10 alice talking/a",
		"+20 alice acw/a",
		"+32 alice talking/b", // the 30 s window is cut short at 12 s
		"+40 alice acw/b",
		"+70 alice not_ready/Lunch", // the window ends in the pause taken during it
		"+101 alice logged_out",     // removed from its last queue
	)
	var evs []events.Event
	evs, _ = New(Config{Teams: map[string]string{"alice": "t1"}, Agents: map[string]string{"PJSIP/alice": "alice"}}).Translate([]byte("1763800000|NONE|sales|PJSIP/alice|AGENTLOGIN|x"), evs)
	if len(evs) != 1 || evs[0].Team != "t1" || evs[0].AgentID != "alice" {
		t.Errorf("mapped agent and team: %+v", evs)
	}
}

// A member's line after its implicit window's end closes the window
// first, in the state it ended in, whether or not event time has released
// it (here it has not: max_out_of_order is an hour). Whether it had would
// depend on other members' lines, which a partitioned topic does not
// share. Here a pause taken during the window ends it not_ready, and the
// UNPAUSE after it does not rewrite that.
func TestALineAfterTheWindowsEndClosesItFirst(t *testing.T) {
	a := New(Config{WrapupTime: 15 * time.Second})
	got := run(t, a, time.Hour,
		"0|NONE|sales|Agent/1|AGENTLOGIN|x",
		"10|a|sales|Agent/1|CONNECT|1|ab|1",
		"20|a|sales|Agent/1|COMPLETEAGENT|1|10|1",
		"20|NONE|NONE|Agent/1|PAUSEALL|training",
		"500|NONE|NONE|Agent/1|UNPAUSE|",
	)
	check(t, got,
		"+0 Agent/1 ready",
		"+10 Agent/1 talking/a",
		"+20 Agent/1 acw/a",
		"+35 Agent/1 not_ready/training",
		"+500 Agent/1 ready",
	)
}

// Lines from the Asterisk documentation and real logs
// (testdata/asterisk-docs.log, see testdata/README.md): they read without
// error and mean what they say.
func TestDocumentedLines(t *testing.T) {
	a := New(Config{})
	var evs []events.Event
	b, err := os.ReadFile("testdata/asterisk-docs.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var err error
		if evs, err = a.Translate([]byte(l), evs); err != nil {
			t.Errorf("%q: %v", l, err)
		}
	}
	evs = a.Advance(math.MaxInt64, evs)
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s %s %s %s %s", events.FormatTime(e.TS), e.AgentID, e.State, e.CallID, e.Reason))
	}
	check(t, got,
		"2013-04-23T12:32:20.000Z SIP/8007 ringing 1366720340.303267 ", // RINGNOANSWER: a missed offer
		"2013-04-23T12:32:20.000Z SIP/8007 ready  ",
		"2016-02-09T15:33:02.000Z JASON SMITH not_ready  LUNCHBREAK",
		"2010-02-22T10:18:53.000Z Local/2004@from-internal/n talking 1266833925.10 ",
		"2010-02-22T10:18:57.000Z Local/2004@from-internal/n ready  ",
	)
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int64{
		"1366720340":                 1366720340000,
		"1366720340.303267":          1366720340303,
		"1366720340.3":               1366720340300,
		"2013-04-23 12:32:20.303267": 1366720340303,
		"2013-04-23 12:32:20":        1366720340000,
		// PostgreSQL exports of the realtime queue_log (Wazo's xivo-dao
		// test rows): a zone suffix, fractions of any width
		"2023-04-12 07:00:36.992026+00":    1681282836992,
		"2023-04-12 07:01:24.31699+00":     1681282884316,
		"2012-10-01 05:59:50.000000+0000":  1349071190000,
		"2023-04-12 09:00:36.992026+02:00": 1681282836992,
		"2023-04-12 02:00:36-05":           1681282836000,
	} {
		if got, ok := ParseTime([]byte(in), time.UTC); !ok || got != want {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "x", "-5", "1.2.3", "1366720340.x", "123456789012", "2013-13-23 12:32:20"} {
		if _, ok := ParseTime([]byte(in), time.UTC); ok {
			t.Errorf("ParseTime(%q) accepted", in)
		}
	}
}

func TestBadLines(t *testing.T) {
	for line, want := range map[string]string{
		"1366720340|x|q|m":                        "malformed",
		"":                                        "malformed",
		"yesterday|c|q|SIP/1|CONNECT|1|2|3":       `field "time"`,
		"99999999999|c|q|SIP/1|CONNECT|1|2|3":     `field "time": 5138-11-16T09:46:39.000Z is outside years 2000-2099`,
		"1366720340|c|q||CONNECT|1|2|3":           `field "member": missing for CONNECT`,
		"1366720340|c|q|NONE|PAUSE|x":             `field "member": missing for PAUSE`,
		"1366720340|NONE|q|SIP/1|CONNECT|1|2|3":   `field "callid": missing for CONNECT`,
		"1366720340||q|SIP/1|COMPLETEAGENT|1|2|3": `field "callid": missing for COMPLETEAGENT`,
		"1366720340|c|q|" + strings.Repeat("m", 129) + "|CONNECT|1": `field "member": is 129 bytes long`,
	} {
		a := New(Config{})
		out, err := a.Translate([]byte(line), nil)
		if err == nil || (want != "malformed" && !strings.Contains(err.Error(), want)) || len(out) != 0 {
			t.Errorf("%q: %v (out %v), want an error containing %q", line, err, out, want)
		}
		if want == "malformed" && events.Reason(err) != events.ReasonMalformed {
			t.Errorf("%q: reason %s, want malformed", line, events.Reason(err))
		}
		if len(a.members) != 0 {
			t.Errorf("%q changed the state", line)
		}
	}
}

// A checkpoint taken anywhere gives an adapter that goes on exactly as the
// one that wrote it.
func TestStateRoundTrip(t *testing.T) {
	cfg := Config{Queues: map[string]time.Duration{"q": 20 * time.Second}}
	var recs [][]byte
	for _, l := range []string{
		"0|NONE|q|A|ADDMEMBER|",
		"0|NONE|q|B|ADDMEMBER|PAUSED",
		"10|c1|q|A|CONNECT|1|x|1",
		"20|NONE|q|B|UNPAUSE|",
		"25|c2|q|B|CONNECT|1|x|1",
		"30|c1|q|A|COMPLETEAGENT|1|20|1",
		"33|NONE|q|A|PAUSE|Break",
		"40|c2|q|B|COMPLETECALLER|1|15|1",
		"41|NONE|q|B|PAUSE|Wrapup",
		"90|NONE|q|B|UNPAUSE|",
		"95|NONE|q|A|UNPAUSE|",
	} {
		recs = append(recs, line(l))
	}
	adaptertest.StateRoundTrip(t, func() events.Adapter { return New(cfg) }, time.Second, recs, []byte{1, 5, 3})
}

// line is a queue_log line whose TIME field is seconds after base.
func line(l string) []byte {
	sec, rest, _ := strings.Cut(l, "|")
	var n int64
	fmt.Sscan(sec, &n)
	return []byte(fmt.Sprintf("%d|%s", base+n, rest))
}

// FuzzTranslate: any line gives events that validate, or an error naming
// a field with nothing appended; the state always round-trips.
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{
		"1366720340|1366720340.303267|MYQUEUE|SIP/8007|RINGNOANSWER|1000",
		"1455031982|NONE|9999|JASON SMITH|PAUSE|LUNCHBREAK",
		"1266833933|1266833925.10|9000|Local/2004@from-internal/n|CONNECT|2|1266833933.27",
		"1266833937|1266833925.10|9000|Local/2004@from-internal/n|COMPLETECALLER|2|4|1",
		"1266833938|NONE|9000|Local/2004@from-internal/n|PAUSE|Wrapup",
		"2013-04-23 12:32:20.303267|NONE|sales|SIP/1|ADDMEMBER|PAUSED",
		"1266833990|NONE|9000|SIP/1|AGENTLOGOFF|SIP/1|60",
	} {
		f.Add(s)
	}
	a := New(Config{WrapupTime: 10 * time.Second, Queues: map[string]time.Duration{"9000": 0}})
	f.Fuzz(func(t *testing.T, line string) {
		adaptertest.CheckRecord(t, a, func() events.Adapter { return New(Config{}) }, []byte(line))
	})
}
