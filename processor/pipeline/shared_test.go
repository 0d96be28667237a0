package pipeline

import (
	"encoding/binary"
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
	p0 := AppendSharedLog(nil, d-3*w, d+w, []CounterDelta{team(d, c(1, 10000, 10000))}, nil)
	p1 := AppendSharedLog(nil, d-2*w, d+2*w, []CounterDelta{team(d, c(2, 50000, 40000)), team(d+w, c(1, 5000, 5000))},
		[]CounterDelta{{Scope: events.ScopeTeam, Key: "t1", View: ViewLast60m, Delta: c(-3, -30000, 0)}})
	got, err := SumShared([][]byte{p0, p1}, 15*time.Minute, loc)
	if err != nil {
		t.Fatal(err)
	}
	want := []CounterDelta{
		{Scope: events.ScopeTeam, Key: "t1", View: ViewInterval, Start: d, End: d + w, Delta: c(3, 60000, 40000)},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewInterval, Start: d + w, End: d + 2*w, Delta: c(1, 5000, 5000)},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewDay, Day: "2026-11-23", Start: d + w - 24*3600*1000, End: d + w, Delta: c(3, 60000, 40000)},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewDay, Day: "2026-11-24", Start: d + w, End: d + w + 24*3600*1000, Delta: c(1, 5000, 5000)},
		{Scope: events.ScopeTeam, Key: "t1", View: ViewLast60m, Start: d - 2*w, End: d + 2*w, Delta: c(1, 35000, 40000)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d deltas %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
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
	tr.closed = []closedWindow{{start: 900000, counters: map[scopeKey]events.Counters{
		{events.ScopeTeam, "t1"}: {ACWCount: 2, ACWTotalMS: 30000, ACWMaxMS: 20000}}}}
	tr.agentDays[dayKey{scopeKey{events.ScopeAgent, "a1"}, "1970-01-01"}] = events.Counters{CallsHandled: 3}
	aux := tr.appendAux(nil)
	withState := append(append([]byte{}, aux...), 3, 'x', 'y', 'z')
	withState[0] = 3

	back := newTracker(Topics{}, 15*time.Minute, time.UTC)
	st, err := back.restoreAux(withState, eng)
	if err != nil || string(st) != "xyz" {
		t.Fatalf("restore: state %q, %v", st, err)
	}
	if got := back.closed[0].counters[scopeKey{events.ScopeTeam, "t1"}]; got.ACWTotalMS != 30000 || back.closed[0].start != 900000 {
		t.Errorf("closed window restored as %+v", back.closed)
	}
	if got := back.agentDays[dayKey{scopeKey{events.ScopeAgent, "a1"}, "1970-01-01"}]; got.CallsHandled != 3 {
		t.Errorf("agent day restored as %+v", back.agentDays)
	}
	badScope := append([]byte{}, aux...)
	badScope[3+len(binary.AppendVarint(nil, 900000))] = byte(events.NumScopes) // after version, window count, start, key count
	for name, bad := range map[string][]byte{
		"empty": nil, "version": {9}, "truncated": aux[:len(aux)-1], "padded": append(append([]byte{}, aux...), 0),
		"state too long": append(append([]byte{3}, aux[1:]...), 9, 'x'), "scope": badScope,
	} {
		if _, err := newTracker(Topics{}, 15*time.Minute, time.UTC).restoreAux(bad, eng); err == nil {
			t.Errorf("%s aux: no error", name)
		}
	}
}
