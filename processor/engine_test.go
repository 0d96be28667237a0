package processor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
)

// collector is an Emitter that keeps every record as its JSON line.
type collector struct {
	lines    []string
	segments []events.Segment
	alerts   []events.Alert
	ivs      []events.Interval
	open     []events.OpenSegment
}

func (c *collector) Segment(s *events.Segment) {
	c.segments = append(c.segments, *s)
	c.lines = append(c.lines, string(s.AppendJSON(nil)))
}
func (c *collector) Alert(a *events.Alert) {
	c.alerts = append(c.alerts, *a)
	c.lines = append(c.lines, string(a.AppendJSON(nil)))
}
func (c *collector) Interval(iv *events.Interval) {
	c.ivs = append(c.ivs, *iv)
	c.lines = append(c.lines, string(iv.AppendJSON(nil)))
}
func (c *collector) Open(o *events.OpenSegment) {
	c.open = append(c.open, *o)
	c.lines = append(c.lines, string(o.AppendJSON(nil)))
}

func (c *collector) interval(scope events.Scope, key string, start int64) *events.Interval {
	for i := range c.ivs {
		if c.ivs[i].Scope == scope && c.ivs[i].Key == key && c.ivs[i].Start == start {
			return &c.ivs[i]
		}
	}
	return nil
}

// base is 2026-11-22T10:00:00Z, a window boundary for every window ≤ 1h.
var base = mustTS("2026-11-22T10:00:00Z")

func mustTS(s string) int64 {
	ms, err := events.ParseRFC3339Millis([]byte(s))
	if err != nil {
		panic(err)
	}
	return ms
}

// ev builds an event from a compact spec: "agent state +offset [call] [k=v…]",
// offset a Go duration after base.
func ev(spec string) events.Event {
	f := strings.Fields(spec)
	d, err := time.ParseDuration(f[2])
	if err != nil {
		panic(err)
	}
	st, ok := events.ParseState([]byte(f[1]))
	if !ok {
		panic("bad state " + f[1])
	}
	e := events.Event{AgentID: f[0], State: st, TS: base + d.Milliseconds()}
	for _, kv := range f[3:] {
		k, v, found := strings.Cut(kv, "=")
		if !found {
			e.CallID = kv
			continue
		}
		switch k {
		case "team":
			e.Team = v
		case "queue":
			e.Queue = v
		case "disp":
			e.Disposition = v
		case "id":
			e.EventID = v
		default:
			panic("bad key " + k)
		}
	}
	if err := e.Validate(); err != nil {
		panic(fmt.Sprintf("%s: %v", spec, err))
	}
	return e
}

func run(t *testing.T, cfg Config, specs ...string) (*collector, []Outcome) {
	t.Helper()
	c := &collector{}
	e, err := New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	var outs []Outcome
	for _, s := range specs {
		x := ev(s)
		outs = append(outs, e.Apply(&x))
	}
	e.Close()
	return c, outs
}

func TestWrapUpDurationAgainstThresholds(t *testing.T) {
	cases := []struct {
		name          string
		durMS         int64
		warn, overrun bool
	}{
		{"a 20 000 ms wrap-up is not a warning", 20000, false, false},
		{"a 20 001 ms wrap-up is a warning", 20001, true, false},
		{"a 30 000 ms wrap-up is not an overrun", 30000, true, false},
		{"a 30 001 ms wrap-up is an overrun", 30001, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end := time.Duration(tc.durMS) * time.Millisecond
			c, _ := run(t, Config{},
				"a1 talking +0s c1",
				"a1 acw +10s c1",
				fmt.Sprintf("a1 ready +%s", 10*time.Second+end))
			if len(c.segments) != 1 {
				t.Fatalf("want 1 segment, got %v", c.lines)
			}
			s := c.segments[0]
			if s.DurationMS != tc.durMS || s.Warn != tc.warn || s.Overrun != tc.overrun || s.ThresholdMS != 30000 {
				t.Errorf("got duration %d warn %v overrun %v threshold %d", s.DurationMS, s.Warn, s.Overrun, s.ThresholdMS)
			}
			var overrunAlerts, resolved int
			for _, a := range c.alerts {
				switch a.Kind {
				case events.AlertOverrun:
					overrunAlerts++
					if a.At != s.Start+30000 {
						t.Errorf("alert at %d, want start+30s", a.At)
					}
				case events.AlertResolved:
					resolved++
					if a.At != s.End {
						t.Errorf("resolved at %d, want end %d", a.At, s.End)
					}
				}
			}
			want := 0
			if tc.overrun {
				want = 1
			}
			if overrunAlerts != want || resolved != want {
				t.Errorf("got %d overrun and %d resolved alerts, want %d each", overrunAlerts, resolved, want)
			}
		})
	}
}

func TestSegmentOpensAndCloses(t *testing.T) {
	cases := []struct {
		name     string
		specs    []string
		wantSegs []string // "call start end end_state disposition"
	}{
		{"repeated acw events of the same call keep one segment open",
			[]string{"a talking +0s c1", "a acw +5s c1", "a acw +8s c1 disp=x", "a ready +12s"},
			[]string{"c1 5000 12000 ready x"}},
		{"another state of the same call closes the segment",
			[]string{"a acw +0s c1", "a talking +3s c1", "a acw +6s c1", "a ready +7s"},
			[]string{"c1 0 3000 talking ", "c1 6000 7000 ready "}},
		{"any state of another call closes the segment",
			[]string{"a acw +0s c1", "a ringing +4s c2", "a talking +5s c2"},
			[]string{"c1 0 4000 ringing "}},
		{"acw of another call closes the first and opens a second",
			[]string{"a acw +0s c1", "a acw +4s c2", "a logged_out +6s"},
			[]string{"c1 0 4000 acw ", "c2 4000 6000 logged_out "}},
		{"disposition comes from the closing agent-level event",
			[]string{"a acw +0s c1 disp=first", "a not_ready +4s disp=final"},
			[]string{"c1 0 4000 not_ready final"}},
		{"disposition of a closing event for another call is ignored",
			[]string{"a acw +0s c1 disp=mine", "a ringing +4s c2 disp=other"},
			[]string{"c1 0 4000 ringing mine"}},
		{"a segment with no closing event stays open",
			[]string{"a acw +0s c1", "b ready +50s"},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := run(t, Config{}, tc.specs...)
			var got []string
			for _, s := range c.segments {
				got = append(got, fmt.Sprintf("%s %d %d %s %s", s.CallID, s.Start-base, s.End-base, s.EndState, s.Disposition))
			}
			if strings.Join(got, "|") != strings.Join(tc.wantSegs, "|") {
				t.Errorf("segments:\n got %q\nwant %q", got, tc.wantSegs)
			}
		})
	}
}

func TestTeamAndQueueOfASegment(t *testing.T) {
	c, _ := run(t, Config{},
		"a talking +0s c1 team=t1 queue=q1",
		"a acw +10s c1 queue=q2",
		"a ready +20s team=t2 queue=ignored")
	s := c.segments[0]
	if s.Team != "t2" || s.Queue != "q2" {
		t.Errorf("team %q queue %q, want the team as of the close (t2) and the call's last queue (q2)", s.Team, s.Queue)
	}
}

func TestThresholdOverrides(t *testing.T) {
	cfg := Config{
		ByTeam:  map[string]Thresholds{"slow": {Warn: 40 * time.Second, Overrun: 60 * time.Second}},
		ByQueue: map[string]Thresholds{"vip": {Overrun: 50 * time.Second}},
	}
	c, _ := run(t, cfg,
		"a talking +0s c1 team=slow",
		"a acw +1s c1",
		"a ready +51s", // 50s: under the team's 60s
		"b talking +50s c2 team=slow queue=vip",
		"b acw +51s c2",
		"b ready +103s", // 52s: over the queue's 50s, past the team's warn 40s
	)
	got := map[string]events.Segment{}
	for _, s := range c.segments {
		got[s.AgentID] = s
	}
	if s := got["a"]; s.Overrun || s.Warn != true || s.ThresholdMS != 60000 {
		t.Errorf("team override: %+v", s)
	}
	if s := got["b"]; !s.Overrun || !s.Warn || s.ThresholdMS != 50000 {
		t.Errorf("queue override: %+v", s)
	}
}

func TestDuplicatesAndLateness(t *testing.T) {
	cases := []struct {
		name  string
		specs []string
		want  []Outcome
	}{
		{"an exact repeat without event_id is a duplicate",
			[]string{"a ready +0s", "a ready +0s"}, []Outcome{Accepted, Duplicate}},
		{"the same content for another agent is not a duplicate",
			[]string{"a ready +0s", "b ready +0s"}, []Outcome{Accepted, Accepted}},
		{"a repeated event_id is a duplicate even with other content",
			[]string{"a ready +0s id=e1", "a not_ready +1s id=e1"}, []Outcome{Accepted, Duplicate}},
		{"an event exactly at the watermark is on time",
			[]string{"a ready +10s", "a not_ready +8s"}, []Outcome{Accepted, Accepted}},
		{"an event 1 ms behind the watermark is late",
			[]string{"a ready +10s", "a not_ready +7999ms"}, []Outcome{Accepted, Late}},
		{"duplicates are checked before lateness",
			[]string{"a ready +0s", "b ready +10s", "a ready +0s"}, []Outcome{Accepted, Accepted, Duplicate}},
		{"a late event does not enter dedup memory",
			[]string{"b ready +10s", "a ready +0s", "a ready +0s"}, []Outcome{Accepted, Late, Late}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := run(t, Config{}, tc.specs...)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("outcomes %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutOfOrderEventsAreAppliedInTimeOrder(t *testing.T) {
	c, _ := run(t, Config{},
		"a acw +10s c1",
		"a ready +41s",
		"a talking +9s c1", // arrives late but within 2s of 41s? no: 41-2=39 > 9 → late
	)
	if len(c.segments) != 1 || c.segments[0].DurationMS != 31000 {
		t.Fatalf("got %v", c.lines)
	}
	c, outs := run(t, Config{},
		"a ready +12s",
		"a acw +10500ms c1", // out of order, within the bound: applied before ready
	)
	if outs[1] != Accepted || len(c.segments) != 1 || c.segments[0].DurationMS != 1500 {
		t.Fatalf("outcomes %v, got %v", outs, c.lines)
	}
}

func TestTiesKeepArrivalOrder(t *testing.T) {
	c, _ := run(t, Config{},
		"a acw +0s c1",
		"a ready +5s",
		"a acw +5s c2",
		"a ready +9s")
	if len(c.segments) != 2 || c.segments[0].CallID != "c1" || c.segments[1].CallID != "c2" {
		t.Fatalf("got %v", c.lines)
	}
	c, _ = run(t, Config{},
		"a acw +0s c1",
		"a acw +5s c2",
		"a ready +5s")
	// acw c2 closes c1 and opens c2; ready at the same ms closes c2 with 0 ms.
	if len(c.segments) != 2 || c.segments[1].CallID != "c2" || c.segments[1].DurationMS != 0 {
		t.Fatalf("got %v", c.lines)
	}
}

func TestCallsHandled(t *testing.T) {
	c, _ := run(t, Config{Window: time.Hour},
		"a ringing +0s c1 queue=q",
		"a talking +1s c1",
		"a hold +20s c1",
		"a talking +30s c1",
		"a acw +60s c1", // call 1 handled at 60s
		"a ready +70s",
		"a ringing +80s c2", // only rang: not handled
		"a ready +85s",
		"a talking +90s c3",  // no wrap-up
		"a ringing +100s c4", // call 3 handled
		"a talking +101s c4",
		"a talking +102s c5", // call 4 handled at c5's event
		"a logged_out +110s", // call 5 handled
	)
	iv := c.interval(events.ScopeAgent, "a", base)
	if iv == nil || iv.CallsHandled != 4 {
		t.Fatalf("calls handled: %+v", iv)
	}
	if q := c.interval(events.ScopeQueue, "q", base); q == nil || q.CallsHandled != 1 || q.ACWCount != 1 {
		t.Fatalf("queue interval: %+v", q)
	}
	if iv.TalkMS != 19000+30000+10000+1000+8000 || iv.HoldMS != 10000 || iv.ACWStateMS != 10000 || iv.WorkMS != 110000 {
		t.Errorf("time in state: %+v", iv.Counters)
	}
}

func TestTimeInStateIsSplitAcrossIntervals(t *testing.T) {
	c, _ := run(t, Config{},
		"a talking +14m c1 team=t",
		"a acw +14m50s c1",
		"a ready +15m40s", // wrap-up of 50s crosses 10:15
		"a logged_out +31m",
	)
	first := c.interval(events.ScopeAgent, "a", base)
	second := c.interval(events.ScopeAgent, "a", base+15*60000)
	third := c.interval(events.ScopeAgent, "a", base+30*60000)
	if first == nil || second == nil || third == nil {
		t.Fatalf("intervals: %v", c.lines)
	}
	if first.ACWStateMS != 10000 || second.ACWStateMS != 40000 {
		t.Errorf("acw state split: %d + %d", first.ACWStateMS, second.ACWStateMS)
	}
	if first.ACWCount != 0 || second.ACWCount != 1 || second.ACWTotalMS != 50000 || second.OverrunCount != 1 {
		t.Errorf("the segment belongs to the interval of its end: %+v / %+v", first.Counters, second.Counters)
	}
	if first.WorkMS != 60000 || second.WorkMS != 15*60000 || third.WorkMS != 60000 {
		t.Errorf("work: %d %d %d", first.WorkMS, second.WorkMS, third.WorkMS)
	}
	if team := c.interval(events.ScopeTeam, "t", base+15*60000); team == nil || team.WorkMS != 15*60000 {
		t.Errorf("team interval: %+v", team)
	}
	if center := c.interval(events.ScopeCenter, "all", base); center == nil || center.TalkMS != 50000 {
		t.Errorf("center interval: %+v", center)
	}
}

func TestIntervalsAreEmittedWhenTheWatermarkPassesTheirEnd(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{}, c)
	x := ev("a ready +14m")
	e.Apply(&x)
	x = ev("b ready +15m1999ms") // W = 14m59.999s: not yet
	e.Apply(&x)
	if len(c.ivs) != 0 {
		t.Fatalf("emitted too early: %v", c.lines)
	}
	x = ev("b ready +15m2s") // W = 15m: the interval is complete
	e.Apply(&x)
	if len(c.ivs) == 0 || c.ivs[0].End != base+15*60000 {
		t.Fatalf("not emitted at W = end: %v", c.lines)
	}
}

func TestOverrunAlertFiresWhileTheWrapUpIsOpen(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{}, c)
	for _, s := range []string{"a talking +0s c1", "a acw +10s c1", "b ready +42s"} {
		x := ev(s)
		e.Apply(&x)
	}
	// W = 40s: the deadline 40s has not passed yet.
	if len(c.alerts) != 0 {
		t.Fatalf("alert before its time: %v", c.lines)
	}
	x := ev("b not_ready +42001ms")
	e.Apply(&x)
	if len(c.alerts) != 1 || c.alerts[0].Kind != events.AlertOverrun || c.alerts[0].At != base+40000 {
		t.Fatalf("want one overrun alert at 40s: %v", c.lines)
	}
	x = ev("a ready +50s")
	e.Apply(&x)
	e.Close()
	if len(c.alerts) != 2 || c.alerts[1].Kind != events.AlertResolved {
		t.Fatalf("want a resolved alert after the close: %v", c.lines)
	}
}

func TestEndOfInput(t *testing.T) {
	c, _ := run(t, Config{},
		"a acw +0s c1 team=t queue=q",
		"b acw +0s c2",
		"c ready +30001ms")
	// a and b are open; at the largest ts (30.001s) both are older than 30s.
	if len(c.alerts) != 2 || len(c.open) != 2 || c.open[0].AgentID != "a" || c.open[0].Team != "t" || c.open[0].Queue != "q" {
		t.Fatalf("got %v", c.lines)
	}
	iv := c.interval(events.ScopeAgent, "a", base)
	if iv == nil || iv.ACWStateMS != 30001 {
		t.Fatalf("the last state lasts until the largest ts: %+v", iv)
	}
	c, _ = run(t, Config{}, "a acw +0s c1", "c ready +30s")
	if len(c.alerts) != 0 {
		t.Fatalf("exactly 30s open at end of input is not an overrun: %v", c.lines)
	}
}

func TestDerivedFields(t *testing.T) {
	c := events.Counters{ACWCount: 3, ACWTotalMS: 100, CallsHandled: 4, ACWStateMS: 1, WorkMS: 3, TalkMS: 2, OverrunCount: 1}
	if c.ACWAvgMS() != 33 || c.ACWPerCallMS() != 25 || c.ACWPctOfWork() != 3333 || c.ACWPctOfHandle() != 3333 || c.OverrunRate() != 3333 {
		t.Errorf("derived: %d %d %d %d %d", c.ACWAvgMS(), c.ACWPerCallMS(), c.ACWPctOfWork(), c.ACWPctOfHandle(), c.OverrunRate())
	}
	var z events.Counters
	if z.ACWAvgMS() != 0 || z.ACWPctOfWork() != 0 || z.OverrunRate() != 0 {
		t.Error("a zero denominator must give 0")
	}
}

func TestSegmentIDsAreStableAndDistinct(t *testing.T) {
	specs := []string{"a acw +0s c1", "a ready +0s", "a acw +0s c1 id=x", "a ready +1s"}
	c1, _ := run(t, Config{}, specs...)
	c2, _ := run(t, Config{}, specs...)
	if len(c1.segments) != 2 || c1.segments[0].SegmentID == c1.segments[1].SegmentID {
		t.Fatalf("two segments of one call starting at one ms need distinct ids: %v", c1.lines)
	}
	if c1.segments[0].SegmentID != c2.segments[0].SegmentID {
		t.Fatal("segment ids differ across runs")
	}
}

func TestDedupMemoryIsBoundedByTheHorizon(t *testing.T) {
	e, _ := New(Config{DedupHorizon: time.Minute}, &collector{})
	first := ev("a ready +0s id=first")
	e.Apply(&first)
	for i := 1; i <= 3600; i++ { // one event a second for an hour
		x := ev(fmt.Sprintf("a ready +%ds id=e%d", i, i))
		if o := e.Apply(&x); o != Accepted {
			t.Fatalf("event %d: %v", i, o)
		}
	}
	// W = 3598s; keys older than W − 1m are forgotten.
	if n := e.dedup.len(); n > 65 {
		t.Fatalf("dedup memory holds %d keys, want about 62", n)
	}
	recent := ev("a ready +3590s id=e3590")
	if o := e.Apply(&recent); o != Duplicate {
		t.Fatalf("a recent repeat: %v, want Duplicate", o)
	}
	if o := e.Apply(&first); o != Late {
		t.Fatalf("a repeat older than the horizon: %v, want Late", o)
	}
}

type stateCollector struct {
	collector
	states []events.AgentState
}

func (s *stateCollector) AgentState(a *events.AgentState) { s.states = append(s.states, *a) }

func TestLiveAgentStateFollowsEveryAppliedEvent(t *testing.T) {
	c := &stateCollector{}
	e, _ := New(Config{}, c)
	for _, s := range []string{
		"a talking +0s c1 team=t queue=q",
		"a acw +10s c1",
		"a ready +45s",
	} {
		x := ev(s)
		e.Apply(&x)
	}
	e.Close()
	if len(c.states) != 3 {
		t.Fatalf("got %d states, want one per applied event", len(c.states))
	}
	inACW, ready := c.states[1], c.states[2]
	if inACW.State != events.StateACW || inACW.ACWStart != base+10000 || inACW.Queue != "q" || inACW.Team != "t" {
		t.Errorf("in wrap-up: %+v", inACW)
	}
	if inACW.SegmentID == "" || inACW.WarnMS != 20000 || inACW.OverrunMS != 30000 {
		t.Errorf("in wrap-up, the open segment's id and thresholds: %+v", inACW)
	}
	var last []events.AgentState
	e.EachAgentState(func(st *events.AgentState) { last = append(last, *st) })
	if len(last) != 1 || last[0] != ready {
		t.Errorf("EachAgentState = %+v, want the last reported state %+v", last, ready)
	}
	if ready.ACWStart != 0 || ready.SegmentID != "" || ready.LastACWMS != 35000 || !ready.LastACWOverrun || ready.Since != base+45000 || ready.CallID != "" {
		t.Errorf("after wrap-up: %+v", ready)
	}
}

func TestTheOpenIntervalCanBeReadBeforeItCloses(t *testing.T) {
	e, _ := New(Config{}, &collector{})
	if _, ok := e.OpenWindow(); ok {
		t.Fatal("an empty engine has no open interval")
	}
	for _, s := range []string{"a acw +1m c1 team=t queue=q", "a ready +1m40s", "b ready +2m"} {
		x := ev(s)
		e.Apply(&x)
	}
	start, ok := e.OpenWindow()
	if !ok || start != base {
		t.Fatalf("open window %d %v", start, ok)
	}
	got := map[string]events.Counters{}
	e.EachOpenCounter(func(scope events.Scope, key string, c *events.Counters, _ map[string]int64) {
		got[scope.String()+":"+key] = *c
	})
	if c := got["queue:q"]; c.ACWCount != 1 || c.ACWTotalMS != 40000 || c.OverrunCount != 1 {
		t.Errorf("queue counters so far: %+v", c)
	}
	if c := got["agent:a"]; c.ACWStateMS != 40000 {
		t.Errorf("agent counters so far: %+v", c)
	}
}

func TestAdvancingTheWatermarkWithoutEvents(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{}, c)
	e.AdvanceWatermark(base) // before any event: no effect
	x := ev("a acw +0s c1")
	if e.Apply(&x) != Accepted {
		t.Fatal("the first event was rejected after an early tick")
	}
	e.AdvanceWatermark(base + 30000)
	if len(c.alerts) != 0 {
		t.Fatal("alert at W = deadline; it must wait until W passes it")
	}
	e.AdvanceWatermark(base + 30001)
	if len(c.alerts) != 1 || c.alerts[0].At != base+30000 {
		t.Fatalf("no overrun alert from an idle tick: %v", c.lines)
	}
	e.AdvanceWatermark(base + 15*60000)
	if iv := c.interval(events.ScopeAgent, "a", base); iv == nil || iv.ACWStateMS != 15*60000 {
		t.Fatalf("the interval did not close on an idle tick: %v", c.lines)
	}
	late := ev("a ready +14m")
	if e.Apply(&late) != Late {
		t.Fatal("an event behind the advanced watermark must be late")
	}
}

func TestPendingEndSeesABufferedClose(t *testing.T) {
	e, _ := New(Config{}, &collector{})
	for _, s := range []string{"a talking +0s c1", "a acw +10s c1", "b ready +13s", "a acw +12.5s c1 disp=x", "a ready +13s"} {
		x := ev(s)
		e.Apply(&x)
	}
	// Watermark at +11s: the acw is applied; the ready at +13s is buffered.
	got := e.PendingEnds([]string{"a", "b", "nobody"})
	if ts, ok := got["a"]; !ok || ts != base+13000 {
		t.Errorf("PendingEnds[a] = %d, %v; want the buffered ready at +13s", ts-base, ok)
	}
	if _, ok := got["b"]; ok || len(got) != 1 {
		t.Errorf("PendingEnds = %v: b has no open wrap-up", got)
	}
}
