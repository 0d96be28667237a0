package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
)

func TestAnEventTooFarAheadOfTheLargestTSIsRejectedAsFuture(t *testing.T) {
	c, outs := run(t, Config{MaxFuture: time.Hour},
		"a ready +0s",
		"a not_ready +1h",     // exactly MaxFuture ahead: on time
		"a ready +2h0m0.001s", // 1h0m0.001s ahead of +1h
		"a ready +1h0m1s",     // the watermark did not move: on time
	)
	want := []Outcome{Accepted, Accepted, Future, Accepted}
	for i := range want {
		if outs[i] != want[i] {
			t.Fatalf("outcomes %v, want %v", outs, want)
		}
	}
	iv := c.interval(events.ScopeAgent, "a", base+time.Hour.Milliseconds())
	if iv == nil || iv.WorkMS != 1000 {
		t.Fatalf("the future event moved time on: %+v", iv)
	}
}

func TestMaxFutureByArrivalJudgesEachEventByItsArrival(t *testing.T) {
	e, err := New(Config{MaxFuture: 5 * time.Minute, MaxFutureByArrival: true}, &collector{})
	if err != nil {
		t.Fatal(err)
	}
	var dec events.Decoder
	in := func(arrival int64, line string) (Outcome, error) {
		e.SetArrival(arrival)
		return e.Ingest(&dec, []byte(line))
	}
	if o, err := in(base, `{"agent_id":"a","state":"ready","ts":"2026-11-22T10:05:00Z"}`); o != Accepted || err != nil {
		t.Fatalf("5m ahead of its arrival: %v %v", o, err)
	}
	o, err := in(base, `{"agent_id":"a","state":"ready","ts":"2099-01-01T00:00:00Z"}`)
	var fe *FutureError
	if o != Rejected || !errors.As(err, &fe) || RejectReason(err) != events.ReasonFuture {
		t.Fatalf("2099: %v %v", o, err)
	}
	if msg := err.Error(); !strings.Contains(msg, `field "ts": 2099-01-01T00:00:00.000Z is in the future`) ||
		!strings.Contains(msg, "its arrival (the Kafka record's timestamp) 2026-11-22T10:00:00.000Z") {
		t.Fatalf("message: %s", msg)
	}
	if w := e.Watermark(); w != base+5*60000-2000 {
		t.Fatalf("a future event moved the watermark to %s", events.FormatTime(w))
	}
	// An input without an arrival time is not checked.
	if o, err := in(0, `{"agent_id":"a","state":"not_ready","ts":"2026-11-22T12:00:00Z"}`); o != Accepted || err != nil {
		t.Fatalf("no arrival: %v %v", o, err)
	}
	if s := e.Stats(); s.Future != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// forgetter records the agents the engine forgets.
type forgetter struct {
	collector
	forgotten []string
}

func (f *forgetter) AgentForgotten(id string) { f.forgotten = append(f.forgotten, id) }

func TestAnIdleAgentIsLoggedOutAtItsLastEventPlusTheTimeoutAndForgotten(t *testing.T) {
	out := &forgetter{}
	e, err := New(Config{AgentIdleTimeout: time.Hour, Window: time.Hour}, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"a talking +0s c1 team=red",
		"b ready +0s team=red",
		"a acw +10m c1", // and then nothing from a
		"b ready +30m",  // and then nothing from b until +3h
		"b ready +3h",
	} {
		x := ev(s)
		if o := e.Apply(&x); o != Accepted {
			t.Fatalf("%s: %v", s, o)
		}
	}
	// a's wrap-up ends at +1h10m, when a is logged out; b, idle from
	// +30m, is logged out at +1h30m, then comes back at +3h.
	if len(out.segments) != 1 {
		t.Fatalf("segments: %+v", out.segments)
	}
	sg := out.segments[0]
	if sg.End != base+70*60000 || sg.EndState != events.StateLoggedOut || sg.DurationMS != 3600000 || !sg.Overrun {
		t.Fatalf("segment: %+v", sg)
	}
	if got := strings.Join(out.forgotten, ","); got != "a,b" {
		t.Fatalf("forgotten %q", got)
	}
	e.Close()
	if s := e.Stats(); s.IdleLogouts != 2 || s.Forgotten != 2 || s.Applied != 5 {
		t.Fatalf("stats %+v", s)
	}
	first := out.interval(events.ScopeAgent, "a", base)
	second := out.interval(events.ScopeAgent, "a", base+3600000)
	if first == nil || first.WorkMS != 3600000 || first.TalkMS != 600000 || first.ACWStateMS != 3000000 || first.CallsHandled != 1 {
		t.Fatalf("a's first hour: %+v", first)
	}
	if second == nil || second.WorkMS != 600000 || second.ACWStateMS != 600000 || second.ACWCount != 1 {
		t.Fatalf("a's second hour: %+v", second)
	}
	if bb := out.interval(events.ScopeAgent, "b", base+3600000); bb == nil || bb.WorkMS != 1800000 {
		t.Fatalf("b's second hour: %+v", bb)
	}
	if out.interval(events.ScopeAgent, "b", base+2*3600000) != nil {
		t.Fatal("b accrued time while idle")
	}
}

func TestAForgottenAgentIsNotInTheSnapshot(t *testing.T) {
	e, _ := New(Config{AgentIdleTimeout: time.Hour}, &collector{})
	for _, s := range []string{"gone ready +0s team=t", "stays ready +0s", "stays ready +50m", "stays ready +1h30m"} {
		x := ev(s)
		e.Apply(&x)
	}
	snap := e.Snapshot()
	if bytes.Contains(snap, []byte("gone")) || !bytes.Contains(snap, []byte("stays")) {
		t.Fatal("the snapshot keeps the idle agent, or lost the live one")
	}
}

func TestARestoredEngineLogsOutIdleAgentsExactly(t *testing.T) {
	// Agents whose shifts end without a logout, and a gap in the feed:
	// idle logouts happen on both sides of every split.
	evs := simEvents(t, sim.Config{Seed: 4, Agents: 12, Duration: 3 * time.Hour})
	var kept []events.Event
	for _, x := range evs {
		if x.State == events.StateLoggedOut {
			continue
		}
		if x.TS > evs[0].TS+time.Hour.Milliseconds() && x.AgentID < "agent-06" {
			continue // half the agents vanish after the first hour
		}
		kept = append(kept, x)
	}
	cfg := Config{AgentIdleTimeout: 20 * time.Minute}
	for _, split := range []int{1, len(kept) / 4, len(kept) / 2, len(kept) - 1} {
		checkRestore(t, cfg, kept, split)
	}
}

// A clock-skewed event 75 years ahead must cost work and memory in
// proportion to what happened, not to the 2.6 million windows it jumps.
func TestAJumpOf75YearsIsBoundedByTheLivePopulation(t *testing.T) {
	const limit = 20000
	n := 0
	out := &countingEmitter{fn: func() {
		if n++; n > limit {
			t.Fatalf("more than %d records for one time jump", limit)
		}
	}}
	e, _ := New(Config{}, out)
	// The feed stops mid-shift: every agent is still working when the
	// skewed event arrives.
	evs := simEvents(t, sim.Config{Seed: 2, Agents: 50, Teams: 5, Queues: 3, Duration: 8 * time.Hour, MaxEvents: 3000})
	for i := range evs {
		if evs[i].State != events.StateLoggedOut {
			e.Apply(&evs[i])
		}
	}
	n = 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	jump := events.Event{AgentID: "skewed", State: events.StateReady, TS: evs[len(evs)-1].TS + 75*365*24*time.Hour.Milliseconds()}
	if o := e.Apply(&jump); o != Accepted {
		t.Fatalf("jump: %v", o)
	}
	e.Close()
	runtime.ReadMemStats(&after)
	// 12 h of the 50 agents (48 windows of 50 agents, 5 teams, 3 queues
	// and the centre), then nothing until the skewed agent's own event.
	if n > 48*60 {
		t.Fatalf("%d records after the jump", n)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("the jump allocated %d MB", grew>>20)
	}
	if s := e.Stats(); s.Forgotten != 50 {
		t.Fatalf("stats %+v", s)
	}
}

type countingEmitter struct{ fn func() }

func (c *countingEmitter) Segment(*events.Segment)   { c.fn() }
func (c *countingEmitter) Alert(*events.Alert)       { c.fn() }
func (c *countingEmitter) Interval(*events.Interval) { c.fn() }
func (c *countingEmitter) Open(*events.OpenSegment)  { c.fn() }

// testdata/snapshot-v3.bin was taken by version 3 (commit 421084e) after
// the first half of this input. Restored and fed the rest, it gives what
// an uninterrupted engine gives in every field version 3 had; version 2
// (the same without four counters) restores to the same state.
func TestOlderSnapshotVersionsStillRestore(t *testing.T) {
	evs := jitter(simEvents(t, sim.Config{Seed: 5, Agents: 8, Duration: time.Hour}), time.Second, 1)
	v3, err := os.ReadFile("testdata/snapshot-v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, whole, _ := uninterrupted(Config{}, evs)
	out := &collector{}
	e, err := Restore(Config{}, out, v3)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) / 2; i < len(evs); i++ {
		e.Apply(&evs[i])
	}
	e.Close()
	old := func(ivs []events.Interval) (lines []string) {
		for _, iv := range ivs {
			fs := iv.Counters.Fields()
			var vals []int64
			for _, p := range fs[:10] {
				vals = append(vals, *p)
			}
			lines = append(lines, fmt.Sprint(iv.Scope, iv.Key, iv.Start, vals))
		}
		return lines
	}
	var wholeAfter []events.Interval
	for _, iv := range whole.ivs {
		if iv.End > out.ivs[0].Start {
			wholeAfter = append(wholeAfter, iv)
		}
	}
	if a, b := old(wholeAfter), old(out.ivs); !slices.Equal(a, b) {
		t.Fatalf("intervals after a version 3 restore differ:\n%s\nwant\n%s", strings.Join(b, "\n"), strings.Join(a, "\n"))
	}
	if n := len(out.segments); n == 0 || !slices.Equal(whole.segments[len(whole.segments)-n:], out.segments) {
		t.Fatalf("segments after a version 3 restore differ")
	}

	r := newSnapReader(v3[1:])
	r.Varint()
	r.Bool()
	r.Varint()
	r.Uvarint()
	for range 8 {
		r.Varint()
	}
	cut := len(v3) - len(r.B)
	for range 4 {
		r.Varint()
	}
	rest := len(v3) - len(r.B)
	v2 := append(append([]byte{2}, v3[1:cut]...), v3[rest:]...)
	e2, err := Restore(Config{}, &collector{}, v2)
	if err != nil {
		t.Fatalf("version 2: %v", err)
	}
	e3, _ := Restore(Config{}, &collector{}, v3)
	st2, st3 := e2.Stats(), e3.Stats()
	st3.Future, st3.IdleLogouts, st3.Forgotten, st3.Ignored = 0, 0, 0, 0 // version 2 lacks them
	tail := func(e *Engine) []byte {                                     // the snapshot after its counters
		b := e.Snapshot()
		r := newSnapReader(b[1:])
		r.Varint()
		r.Bool()
		r.Varint()
		r.Uvarint()
		for range statFields(&Stats{}) {
			r.Varint()
		}
		return r.B
	}
	if st2 != st3 || !bytes.Equal(tail(e2), tail(e3)) {
		t.Fatal("the version 2 snapshot restored to another state than version 3")
	}
}

func TestAMessageMustBeKeyedByItsAgent(t *testing.T) {
	e, _ := New(Config{}, &collector{})
	var dec events.Decoder
	line := []byte(`{"agent_id":"agent-5","state":"ready","ts":"2026-11-22T10:00:00Z"}`)
	for _, key := range []string{"agent-9", ""} {
		o, err := e.IngestMessage(&dec, []byte(key), line)
		var ke *events.KeyError
		if o != Rejected || !errors.As(err, &ke) || RejectReason(err) != events.ReasonInvalid || ke.Key != key || ke.AgentID != "agent-5" {
			t.Fatalf("key %q: %v %v", key, o, err)
		}
	}
	if o, err := e.IngestMessage(&dec, []byte("agent-5"), line); o != Accepted || err != nil {
		t.Fatalf("keyed by its agent: %v %v", o, err)
	}
	if s := e.Stats(); s.Invalid != 2 || s.Accepted != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMaxACWClosesAWrapUpThatNoEventEnds(t *testing.T) {
	cfg := Config{MaxACW: 10 * time.Minute, Window: time.Hour}
	c, _ := run(t, cfg,
		"a talking +0s c1 team=t queue=q",
		"a acw +1m c1",
		// the record ending a's wrap-up was lost; b moves event time on
		"b ready +0s team=t",
		"b not_ready +30m",
	)
	if len(c.segments) != 1 {
		t.Fatalf("segments %+v", c.segments)
	}
	s := c.segments[0]
	if s.End != base+11*60000 || s.DurationMS != 600000 || s.EndState != events.StateReady ||
		s.ClosedBy != events.ClosedByMaxACW || !s.Overrun || s.Queue != "q" {
		t.Fatalf("segment %+v", s)
	}
	// The overrun alert fired at 30 s, and is resolved at the close.
	if len(c.alerts) != 2 || c.alerts[0].Kind != events.AlertOverrun || c.alerts[1].Kind != events.AlertResolved ||
		c.alerts[1].At != s.End {
		t.Fatalf("alerts %+v", c.alerts)
	}
	// a is ready from the close on: wrap-up time stops there.
	iv := c.interval(events.ScopeAgent, "a", base)
	if iv == nil || iv.ACWStateMS != 600000 || iv.TalkMS != 60000 || iv.WorkMS != 30*60000 {
		t.Fatalf("interval %+v", iv)
	}
	if !strings.Contains(strings.Join(c.lines, "\n"), `"closed_by":"max_acw"`) {
		t.Fatal("the segment record does not say closed_by max_acw")
	}
}

func TestAnEventAtTheMaxACWDeadlineClosesTheWrapUpItself(t *testing.T) {
	c, _ := run(t, Config{MaxACW: 10 * time.Minute},
		"a acw +0s c1",
		"a not_ready +10m",
		"a ready +11m",
		"a acw +12m c2", // still open at end of input, not yet due
		"a acw +21m c2",
	)
	if len(c.segments) != 1 || c.segments[0].ClosedBy != events.ClosedByEvent || c.segments[0].EndState != events.StateNotReady {
		t.Fatalf("segments %+v", c.segments)
	}
	if len(c.open) != 1 || c.open[0].CallID != "c2" {
		t.Fatalf("open %+v", c.open)
	}
}

func TestAnIdleLogoutSaysItClosedTheWrapUp(t *testing.T) {
	c, _ := run(t, Config{AgentIdleTimeout: time.Hour},
		"a acw +0s c1",
		"b ready +2h",
	)
	if len(c.segments) != 1 || c.segments[0].ClosedBy != events.ClosedByIdle || c.segments[0].EndState != events.StateLoggedOut {
		t.Fatalf("segments %+v", c.segments)
	}
}

func TestMaxACWMustBeLongerThanEveryOverrunThreshold(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxACW: 30 * time.Second}, "thresholds.overrun"},
		{Config{MaxACW: time.Minute, ByQueue: map[string]Thresholds{"vip": {Overrun: 2 * time.Minute}}}, "thresholds.queues.vip.overrun"},
		{Config{MaxACW: -time.Second}, "non-negative"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "max_acw") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
	if err := (Config{MaxACW: 31 * time.Second}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMaxACWRestoresExactly(t *testing.T) {
	evs := jitter(simEvents(t, sim.Config{Seed: 4, Agents: 15, Duration: 2 * time.Hour, DuplicateRate: 0.02}), time.Second, 1)
	cfg := Config{MaxACW: 45 * time.Second}
	_, stats := feed(t, cfg, evs)
	if stats.MaxACWClosed == 0 {
		t.Fatal("no wrap-up reached max_acw: the test proves nothing")
	}
	for _, split := range []int{1, len(evs) / 3, len(evs) / 2, len(evs) - 1} {
		checkRestore(t, cfg, evs, split)
	}
}

// A feed with free-text reasons: the record names the 32 largest and sums
// the rest as "other"; together they are the not-ready time.
func TestNotReadyReasonsAreCappedInTheRecord(t *testing.T) {
	var specs []string
	for i := range 40 {
		specs = append(specs, fmt.Sprintf("a not_ready +%ds", 60*i))
	}
	c := &collector{}
	e, _ := New(Config{Window: time.Hour}, c)
	for i, s := range specs {
		x := ev(s)
		x.Reason = fmt.Sprintf("reason-%02d", i)
		e.Apply(&x)
	}
	x := ev("a ready +2400s")
	e.Apply(&x)
	e.Close()
	iv := c.interval(events.ScopeAgent, "a", base)
	if iv == nil || len(iv.Reasons) != 40 {
		t.Fatalf("interval %+v: want all 40 reasons kept", iv)
	}
	line := string(iv.AppendJSON(nil))
	var rec struct {
		NotReadyMS int64            `json:"not_ready_ms"`
		Reasons    map[string]int64 `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, ms := range rec.Reasons {
		sum += ms
	}
	if len(rec.Reasons) != events.MaxReasons+1 || rec.Reasons[events.OtherReason] != 8*60000 || sum != rec.NotReadyMS || sum != 2400000 {
		t.Fatalf("reasons %v (sum %d), not_ready_ms %d: want 32 reasons and other (8 minutes), adding up", rec.Reasons, sum, rec.NotReadyMS)
	}
}

func TestWarnMustBeShorterThanOverrun(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Default: Thresholds{Warn: 40 * time.Second}}, "thresholds: warn 40s must be shorter than overrun 30s"},
		{Config{Default: Thresholds{Warn: 30 * time.Second, Overrun: 30 * time.Second}}, "thresholds: warn 30s must be shorter than overrun 30s"},
		{Config{ByTeam: map[string]Thresholds{"a": {Warn: 45 * time.Second}}}, "thresholds.teams.a: warn 45s"},
		{Config{ByQueue: map[string]Thresholds{"q": {Overrun: 10 * time.Second}}}, "thresholds.queues.q: warn 20s must be shorter than overrun 10s"},
		{Config{ByTeam: map[string]Thresholds{"a": {Warn: 50 * time.Second, Overrun: time.Minute}},
			ByQueue: map[string]Thresholds{"q": {Overrun: 40 * time.Second}}}, "thresholds.queues.q with thresholds.teams.a: warn 50s must be shorter than overrun 40s"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// agent_name is a display name for the wallboard: the agent's last
// non-empty one holds, and a snapshot keeps it.
func TestTheAgentsDisplayNameHolds(t *testing.T) {
	var dec events.Decoder
	e, _ := New(Config{}, &collector{})
	for _, line := range []string{
		`{"agent_id":"a1","state":"ready","ts":"2026-11-22T10:00:00Z","agent_name":"Alex Moreau"}`,
		`{"agent_id":"a1","state":"not_ready","ts":"2026-11-22T10:01:00Z","reason":"lunch"}`,
		`{"agent_id":"a1","state":"ready","ts":"2026-11-22T10:02:00Z"}`,
	} {
		if o, err := e.Ingest(&dec, []byte(line)); o != Accepted || err != nil {
			t.Fatalf("%s: %v %v", line, o, err)
		}
	}
	restored, err := Restore(Config{}, &collector{}, e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range []*Engine{e, restored} {
		eng.AdvanceWatermark(base + 3*60000)
		var names []string
		eng.EachAgentState(func(st *events.AgentState) { names = append(names, st.Name) })
		if len(names) != 1 || names[0] != "Alex Moreau" {
			t.Fatalf("names %q, want the agent's display name to hold", names)
		}
	}
}
