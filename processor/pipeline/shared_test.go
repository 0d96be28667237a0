package pipeline

import (
	"encoding/binary"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

// SumShared adds up the partitions' logged flushes into interval, day and
// last-60m deltas: sums per key, maxima for acw_max_ms, days in the
// configured zone, retractions only in the last-60m view, whose span is
// the latest logged.
func TestSumSharedDerivesDaysAndLast60m(t *testing.T) {
	loc := time.FixedZone("UTC+1", 3600)
	const w = 15 * 60 * 1000
	// 22:45 UTC is 23:45 in loc (one day), 23:00 UTC is 00:00 (the next).
	d := time.Date(2026, 11, 23, 22, 45, 0, 0, time.UTC).UnixMilli()
	team := func(start int64, c events.Counters) CounterDelta {
		return CounterDelta{Scope: events.ScopeTeam, Key: "t1", View: ViewInterval, Start: start, Delta: c}
	}
	c := func(n, total, max int64) events.Counters {
		return events.Counters{ACWCount: n, ACWTotalMS: total, ACWMaxMS: max}
	}
	withReasons := func(cd CounterDelta, r map[string]int64) CounterDelta { cd.Reasons = r; return cd }
	p0 := AppendSharedLog(nil, d-3*w, d+w, []CounterDelta{withReasons(team(d, c(1, 10000, 10000)), map[string]int64{"lunch": 60000})}, nil)
	p1 := AppendSharedLog(nil, d-2*w, d+2*w, []CounterDelta{withReasons(team(d, c(2, 50000, 40000)), map[string]int64{"lunch": 1000, "none": 5}), team(d+w, c(1, 5000, 5000))},
		[]CounterDelta{{Scope: events.ScopeTeam, Key: "t1", View: ViewLast60m, Delta: c(-3, -30000, 0), Reasons: map[string]int64{"lunch": -61000}}})
	got, err := SumShared([][]byte{p0, p1}, 15*time.Minute, loc)
	if err != nil {
		t.Fatal(err)
	}
	want := []CounterDelta{
		{Scope: events.ScopeTeam, Key: "t1", View: ViewInterval, Start: d, End: d + w, Delta: c(3, 60000, 40000), Reasons: map[string]int64{"lunch": 61000, "none": 5}},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewInterval, Start: d + w, End: d + 2*w, Delta: c(1, 5000, 5000)},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewDay, Day: "2026-11-23", Start: d + w - 24*3600*1000, End: d + w, Delta: c(3, 60000, 40000), Reasons: map[string]int64{"lunch": 61000, "none": 5}},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewDay, Day: "2026-11-24", Start: d + w, End: d + w + 24*3600*1000, Delta: c(1, 5000, 5000)},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewLast60m, Start: d - 2*w, End: d + 2*w, Delta: c(1, 35000, 40000), Reasons: map[string]int64{"none": 5}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d deltas %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("delta %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	for _, bad := range [][]byte{nil, {9}, p0[:len(p0)-1], append(append([]byte{}, p0...), 0)} {
		if _, err := SumShared([][]byte{p1, bad}, 15*time.Minute, loc); err == nil {
			t.Errorf("entry %x: no error", bad)
		}
	}
}

// The checkpoint's aux blob round-trips (closed windows, agent days, an
// adapter's state), and a truncated, padded or out-of-range one is an
// error, never a partial restore.
func TestAuxRoundTripAndCorruption(t *testing.T) {
	eng, err := processor.New(processor.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker(Topics{}, 15*time.Minute, time.UTC)
	tr.win.closed = []closedWindow{{start: 900000, counters: map[scopeKey]tally{
		{events.ScopeTeam, "t1"}: {c: events.Counters{ACWCount: 2, ACWTotalMS: 30000, ACWMaxMS: 20000, HandleMaxMS: 41000},
			r: map[string]int64{"lunch": 60000, "none": 1}}}}}
	tr.agent.days[dayKey{scopeKey{events.ScopeAgent, "a1"}, "1970-01-01"}] = tally{c: events.Counters{CallsHandled: 3}}
	aux := tr.appendAux(nil, nil)
	withState := tr.appendAux(nil, []byte("xyz"))

	back := newTracker(Topics{}, 15*time.Minute, time.UTC)
	st, err := back.restoreAux(withState, eng)
	if err != nil || string(st) != "xyz" {
		t.Fatalf("restore: state %q, %v", st, err)
	}
	if got := back.win.closed[0].counters[scopeKey{events.ScopeTeam, "t1"}]; !got.equal(tr.win.closed[0].counters[scopeKey{events.ScopeTeam, "t1"}]) || back.win.closed[0].start != 900000 {
		t.Errorf("closed window restored as %+v", back.win.closed)
	}
	if got := back.agent.days[dayKey{scopeKey{events.ScopeAgent, "a1"}, "1970-01-01"}]; got.c.CallsHandled != 3 {
		t.Errorf("agent day restored as %+v", back.agent.days)
	}
	// An aux of version 3 (ten counters, no count before them; the
	// adapter's state last) still restores.
	v3 := []byte{3, 1}
	v3 = binary.AppendVarint(v3, 900000)
	v3 = appendScopeKey(append(v3, 1), scopeKey{events.ScopeTeam, "t1"})
	for _, v := range []int64{2, 30000, 20000, 0, 0, 0, 0, 0, 0, 0} {
		v3 = binary.AppendVarint(v3, v)
	}
	v3 = append(v3, 0, 3, 'x', 'y', 'z')
	old := newTracker(Topics{}, 15*time.Minute, time.UTC)
	if st, err := old.restoreAux(v3, eng); err != nil || string(st) != "xyz" ||
		!old.win.closed[0].counters[scopeKey{events.ScopeTeam, "t1"}].equal(tally{c: events.Counters{ACWCount: 2, ACWTotalMS: 30000, ACWMaxMS: 20000}}) {
		t.Fatalf("version 3: state %q, %v, %+v", st, err, old.win.closed)
	}
	// A newer writer's extra counters are skipped.
	more := []byte{auxVersion, 1}
	more = binary.AppendVarint(more, 900000)
	more = appendScopeKey(append(more, 1), scopeKey{events.ScopeTeam, "t1"})
	more = binary.AppendUvarint(more, events.NumCounters+2)
	for i := range events.NumCounters + 2 {
		more = binary.AppendVarint(more, int64(i+1))
	}
	more = append(more, 0, 0, 0) // no reasons, no agent days, no adapter state
	if _, err := newTracker(Topics{}, 15*time.Minute, time.UTC).restoreAux(more, eng); err != nil {
		t.Fatalf("extra counters: %v", err)
	}
	badScope := append([]byte{}, aux...)
	badScope[3+len(binary.AppendVarint(nil, 900000))] = byte(events.NumScopes) // after version, window count, start, key count
	for name, bad := range map[string][]byte{
		"empty": nil, "version": {9}, "truncated": aux[:len(aux)-1], "padded": append(append([]byte{}, aux...), 0),
		"state too long": append(aux[:len(aux)-1:len(aux)-1], 9, 'x'), "scope": badScope,
	} {
		if _, err := newTracker(Topics{}, 15*time.Minute, time.UTC).restoreAux(bad, eng); err == nil {
			t.Errorf("%s aux: no error", name)
		}
	}
}

// A restore resumes the effects on shared keys exactly where the shared
// log stops, also among the wall-clock ticks an idle partition recorded at
// the shared offset: those before the shared flush are in the log, those
// after are not and must be replayed with their effects (they were lost,
// and team work_ms came out low after a crash).
func TestCatchUpResumesSharedEffectsBetweenTicks(t *testing.T) {
	const min = 60 * 1000
	t0 := time.Date(2026, 11, 23, 9, 14, 0, 0, time.UTC).UnixMilli() // 9:14, in the 9:00 window
	pending := func(sharedTicks int) map[int64]int64 {
		tr := newTracker(Topics{}, 15*time.Minute, time.UTC)
		eng, err := processor.New(processor.Config{}, tr)
		if err != nil {
			t.Fatal(err)
		}
		// One agent on a call since 9:14, the only message (offset 0).
		line := fmt.Sprintf(`{"agent_id":"a1","state":"talking","ts":%d,"call_id":"c1","team":"t1","queue":"q1"}`, t0)
		if _, err := eng.Ingest(new(events.Decoder), []byte(line)); err != nil {
			t.Fatal(err)
		}
		// Then idle: a tick past 9:15 (its minute of talk closes the 9:00
		// window) and one past 9:30 (15 minutes close 9:15), both at
		// offset 1, the shared offset.
		rec := recovery{phase: replaying, effOffset: 1, sharedOff: 1, sharedTicks: sharedTicks,
			replay: []Tick{{Offset: 1, Watermark: t0 + 2*min}, {Offset: 1, Watermark: t0 + 17*min}}}
		tr.suppressAll()
		if !rec.advance(1, eng, nil, tr) || rec.phase != live || tr.suppress || tr.suppressShared || len(rec.replay) != 0 {
			t.Fatalf("sharedTicks %d: %v, still suppressed (%v, %v) or ticks left %v", sharedTicks, rec.phase, tr.suppress, tr.suppressShared, rec.replay)
		}
		b := &Batch{}
		tr.collect(eng, b, true)
		talk := map[int64]int64{}
		if b.SharedLog == nil {
			return talk
		}
		sum, err := SumShared([][]byte{b.SharedLog}, 15*time.Minute, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range sum {
			if d.Scope == events.ScopeTeam && d.View == ViewInterval {
				talk[(d.Start-t0+14*min)/min] = d.Delta.TalkMS
			}
		}
		return talk
	}
	for _, c := range []struct {
		logged int
		want   map[int64]int64 // team talk_ms pending, by window (minutes after 9:00)
	}{
		{0, map[int64]int64{0: min, 15: 15 * min}},
		{1, map[int64]int64{15: 15 * min}}, // the log holds the first tick's effects only
		{2, map[int64]int64{}},
	} {
		if got := pending(c.logged); !maps.Equal(got, c.want) {
			t.Errorf("%d ticks logged: team talk_ms pending %v, want %v", c.logged, got, c.want)
		}
	}
}
