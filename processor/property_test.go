package processor

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
)

// simEvents decodes a simulated log (in ts order, with duplicates).
func simEvents(t testing.TB, cfg sim.Config) []events.Event {
	t.Helper()
	g, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var d events.Decoder
	var out []events.Event
	for line := g.Next(); line != nil; line = g.Next() {
		var ev events.Event
		if err := d.Decode(line, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func feed(t testing.TB, cfg Config, evs []events.Event) (*collector, Stats) {
	t.Helper()
	c := &collector{}
	e, err := New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		e.Apply(&evs[i])
	}
	e.Close()
	return c, e.Stats()
}

// jitter reorders arrival: each event is delayed by up to bound behind its
// ts, which keeps every event on time for max_out_of_order ≥ bound. Events of
// one agent with equal ts keep their relative order (the contract's ties).
func jitter(evs []events.Event, bound time.Duration, seed uint64) []events.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	type keyed struct {
		arrival int64
		i       int
	}
	ks := make([]keyed, len(evs))
	for i := range evs {
		ks[i] = keyed{evs[i].TS + rng.Int64N(bound.Milliseconds()+1), i}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		x, y := &evs[a.i], &evs[b.i]
		if x.AgentID == y.AgentID && x.TS == y.TS {
			return a.i - b.i
		}
		return int(a.arrival - b.arrival)
	})
	out := make([]events.Event, len(evs))
	for j, k := range ks {
		out[j] = evs[k.i]
	}
	return out
}

func TestShufflingWithinTheBoundDoesNotChangeTheOutput(t *testing.T) {
	evs := simEvents(t, sim.Config{Seed: 3, Agents: 40, Duration: 3 * time.Hour, DuplicateRate: 0.01})
	want, wantStats := feed(t, Config{}, evs)
	if wantStats.Segments < 100 || wantStats.Alerts == 0 || wantStats.Duplicates == 0 {
		t.Fatalf("the simulated log is too thin to prove anything: %+v", wantStats)
	}
	for seed := uint64(1); seed <= 5; seed++ {
		got, stats := feed(t, Config{}, jitter(evs, DefaultMaxOutOfOrder, seed))
		if stats.Late != 0 {
			t.Fatalf("seed %d: %d events became late", seed, stats.Late)
		}
		if a, b := strings.Join(want.lines, "\n"), strings.Join(got.lines, "\n"); a != b {
			i := 0
			for i < len(want.lines) && i < len(got.lines) && want.lines[i] == got.lines[i] {
				i++
			}
			t.Fatalf("seed %d: output differs at record %d:\nwant %s\n got %s", seed, i, at(want.lines, i), at(got.lines, i))
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end>"
}

// uninterrupted feeds evs to one engine and closes it; it returns the
// final snapshot, the output and the engine.
func uninterrupted(cfg Config, evs []events.Event) ([]byte, *collector, *Engine) {
	out := &collector{}
	e, _ := New(cfg, out)
	for i := range evs {
		e.Apply(&evs[i])
	}
	final := e.Snapshot()
	e.Close()
	return final, out, e
}

// checkRestore feeds evs[:split] to one engine, snapshots it, restores a
// second engine and feeds it the rest; the combined output and the final
// snapshot must equal those of an uninterrupted run.
func checkRestore(t *testing.T, cfg Config, evs []events.Event, split int) {
	t.Helper()
	final1, whole, e1 := uninterrupted(cfg, evs)

	parts := &collector{}
	e2, _ := New(cfg, parts)
	for i := range evs[:split] {
		e2.Apply(&evs[i])
	}
	snap := e2.Snapshot()
	e3, err := Restore(cfg, parts, snap)
	if err != nil {
		t.Fatalf("restore at %d: %v", split, err)
	}
	if again := e3.Snapshot(); !bytes.Equal(again, snap) {
		t.Fatalf("restore at %d: a restored engine snapshots differently", split)
	}
	for i := range evs[split:] {
		e3.Apply(&evs[split+i])
	}
	if final3 := e3.Snapshot(); !bytes.Equal(final1, final3) {
		t.Fatalf("restore at %d: final state differs", split)
	}
	e3.Close()
	if e1.Stats() != e3.Stats() {
		t.Fatalf("restore at %d: stats %+v vs %+v", split, e1.Stats(), e3.Stats())
	}
	if a, b := strings.Join(whole.lines, "\n"), strings.Join(parts.lines, "\n"); a != b {
		t.Fatalf("restore at %d: output differs", split)
	}
}

func TestARestoredEngineContinuesExactly(t *testing.T) {
	evs := jitter(simEvents(t, sim.Config{Seed: 9, Agents: 15, Duration: 2 * time.Hour, DuplicateRate: 0.02}), time.Second, 1)
	cfg := Config{ByQueue: map[string]Thresholds{"vip": {Warn: 10 * time.Second, Overrun: 15 * time.Second}}}
	for _, split := range []int{0, 1, 7, len(evs) / 3, len(evs) / 2, len(evs) - 1, len(evs)} {
		checkRestore(t, cfg, evs, split)
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	e, _ := New(Config{}, &collector{})
	x := ev("a acw +0s c1")
	e.Apply(&x)
	snap := e.Snapshot()
	for i := 0; i < len(snap); i++ {
		if _, err := Restore(Config{}, &collector{}, snap[:i]); err == nil {
			t.Fatalf("a snapshot cut at %d of %d bytes was accepted", i, len(snap))
		}
	}
	if _, err := Restore(Config{Window: time.Hour}, &collector{}, snap); err == nil {
		t.Fatal("a snapshot taken with another window was accepted")
	}
}

// FuzzSnapshotRestore restores at an arbitrary point of an arbitrary
// simulated log and demands identical output; arbitrary bytes given to
// Restore must give an error or an engine, never a panic.
func FuzzSnapshotRestore(f *testing.F) {
	f.Add(uint64(1), uint16(10), uint16(100), []byte{1})
	f.Add(uint64(2), uint16(5000), uint16(3), []byte("garbage"))
	f.Fuzz(func(t *testing.T, seed uint64, split uint16, jitterSeed uint16, garbage []byte) {
		evs := simEvents(t, sim.Config{Seed: seed, Agents: 6, Duration: 40 * time.Minute, DuplicateRate: 0.02})
		evs = jitter(evs, 2*time.Second, uint64(jitterSeed))
		checkRestore(t, Config{}, evs, int(split)%(len(evs)+1))
		if e, err := Restore(Config{}, &collector{}, garbage); err == nil {
			x := ev("zz ready +0s")
			e.Apply(&x)
			e.Close()
		}
	})
}

// TestChangedCountersTrackTheOpenInterval keeps a copy of the open
// interval's counters up to date from EachChangedCounter alone, visited at
// random moments, and checks it against every counter (EachOpenCounter of
// a twin engine fed the same events) each time, across interval closes
// and a restore.
func TestChangedCountersTrackTheOpenInterval(t *testing.T) {
	evs := jitter(simEvents(t, sim.Config{Seed: 5, Agents: 30, Duration: 2 * time.Hour, DuplicateRate: 0.01}), time.Second, 2)
	a, _ := New(Config{}, &collector{})
	b, _ := New(Config{}, &collector{})
	rng := rand.New(rand.NewPCG(5, 5))
	copyWin := int64(-1)
	shadow := map[scopeKey]events.Counters{}
	checks, restored := 0, false
	for i := range evs {
		a.Apply(&evs[i])
		b.Apply(&evs[i])
		if rng.IntN(40) != 0 {
			continue
		}
		if !restored && i > len(evs)/2 {
			// A restored engine starts with no changes marked; its
			// reader starts from a full visit.
			var err error
			if a, err = Restore(Config{}, &collector{}, a.Snapshot()); err != nil {
				t.Fatal(err)
			}
			clear(shadow)
			a.EachOpenCounter(func(s events.Scope, k string, c *events.Counters, _ map[string]int64) { shadow[scopeKey{s, k}] = *c })
			restored = true
		}
		w, _ := a.OpenWindow()
		if w != copyWin {
			clear(shadow) // a new interval starts from zero
			copyWin = w
		}
		changed := 0
		a.EachChangedCounter(func(s events.Scope, k string, c *events.Counters, _ map[string]int64) {
			shadow[scopeKey{s, k}] = *c
			changed++
		})
		want := map[scopeKey]events.Counters{}
		b.EachOpenCounter(func(s events.Scope, k string, c *events.Counters, _ map[string]int64) { want[scopeKey{s, k}] = *c })
		for k, c := range want {
			if shadow[k] != c {
				t.Fatalf("event %d: %v %s: kept %+v, open interval has %+v", i, k.scope, k.key, shadow[k], c)
			}
		}
		if changed > len(want) {
			t.Fatalf("event %d: %d changed keys of %d", i, changed, len(want))
		}
		checks++
	}
	if checks < 50 {
		t.Fatalf("only %d checks", checks)
	}
}

// journaledRun feeds evs[:split] to an engine, journaling its dedup
// memory every `every` events and dropping the chunks a journaled
// snapshot no longer needs, as the live pipeline does; it returns that
// engine, its journaled snapshot and the chunks kept.
func journaledRun(cfg Config, out Emitter, evs []events.Event, split, every int) (*Engine, []byte, [][]byte) {
	e, _ := New(cfg, out)
	type chunk struct {
		b   []byte
		end uint64
	}
	var journal []chunk
	var done uint64
	cut := func() {
		if end := e.DedupEnd(); end > done {
			journal = append(journal, chunk{e.AppendDedupJournal(nil, done), end})
			done = end
		}
	}
	for i := range evs[:split] {
		e.Apply(&evs[i])
		if i%every == every-1 {
			cut()
			// A snapshot now and then drops what it no longer needs.
			if i%(every*7) == 0 {
				journal = slices.DeleteFunc(journal, func(c chunk) bool { return c.end <= e.DedupStart() })
			}
		}
	}
	cut()
	snap := e.AppendSnapshotJournaled(nil)
	var kept [][]byte
	for _, c := range journal {
		if c.end > e.DedupStart() {
			kept = append(kept, c.b)
		}
	}
	return e, snap, kept
}

// TestAJournaledSnapshotRestoresExactly restores engines from journaled
// snapshots and the journal chunks kept for them: each is the engine that
// took the snapshot (same full snapshot), and continues exactly as an
// uninterrupted run. A missing chunk is an error.
func TestAJournaledSnapshotRestoresExactly(t *testing.T) {
	evs := jitter(simEvents(t, sim.Config{Seed: 5, Agents: 25, Duration: 3 * time.Hour, DuplicateRate: 0.05}), time.Second, 3)
	cfg := Config{DedupHorizon: 2 * time.Minute}
	final1, whole, _ := uninterrupted(cfg, evs)
	for _, every := range []int{1, 3, 50} {
		for _, split := range []int{0, 1, 2, 100, len(evs) / 3, len(evs) / 2, len(evs) - 1, len(evs)} {
			parts := &collector{}
			e2, snap, journal := journaledRun(cfg, parts, evs, split, every)
			if len(journal) > 0 && len(snap) >= len(e2.Snapshot()) {
				t.Fatalf("every %d, split %d: the journaled snapshot (%d bytes) is no smaller than a full one", every, split, len(snap))
			}
			e3, err := RestoreJournaled(cfg, parts, snap, journal)
			if err != nil {
				t.Fatalf("every %d, split %d: %v", every, split, err)
			}
			if !bytes.Equal(e3.Snapshot(), e2.Snapshot()) {
				t.Fatalf("every %d, split %d: the restored engine differs from the one that took the snapshot", every, split)
			}
			if len(journal) > 0 {
				if _, err := RestoreJournaled(cfg, parts, snap, journal[1:]); !errors.Is(err, ErrSnapshot) {
					t.Fatalf("every %d, split %d: without the first of %d chunks: %v, want ErrSnapshot", every, split, len(journal), err)
				}
				if _, err := RestoreJournaled(cfg, parts, snap, journal[:len(journal)-1]); !errors.Is(err, ErrSnapshot) {
					t.Fatalf("every %d, split %d: without the last chunk: %v, want ErrSnapshot", every, split, err)
				}
			}
			for i := range evs[split:] {
				e3.Apply(&evs[split+i])
			}
			if !bytes.Equal(e3.Snapshot(), final1) {
				t.Fatalf("every %d, split %d: final state differs", every, split)
			}
			e3.Close()
			if a, b := strings.Join(whole.lines, "\n"), strings.Join(parts.lines, "\n"); a != b {
				t.Fatalf("every %d, split %d: output differs", every, split)
			}
		}
	}
}

// Over a simulated day, every agent, team and centre interval's work_ms is
// exactly the sum of its time in each state; queue intervals carry no
// time in state; handles never outnumber the talk runs that make them.
func TestWorkIsTheSumOfTheTimeInEachState(t *testing.T) {
	evs := jitter(simEvents(t, sim.Config{Seed: 11, Agents: 60, Duration: 24 * time.Hour, DuplicateRate: 0.01, MissRate: 0.05}), time.Second, 3)
	_, out, _ := uninterrupted(Config{}, evs)
	var handles, calls, missed int64
	for _, iv := range out.ivs {
		c := iv.Counters
		states := c.ReadyMS + c.NotReadyMS + c.RingingMS + c.TalkMS + c.HoldMS + c.ACWStateMS
		if iv.Scope == events.ScopeQueue {
			if states != 0 || c.WorkMS != 0 {
				t.Fatalf("queue interval with time in state: %+v", iv)
			}
			continue
		}
		if c.WorkMS != states {
			t.Fatalf("%s %s %s: work_ms %d, states sum to %d: %+v", iv.Scope, iv.Key, events.FormatTime(iv.Start), c.WorkMS, states, c)
		}
		if iv.Scope == events.ScopeCenter {
			handles += c.HandleCount
			calls += c.CallsHandled
			missed += c.MissedCount
		}
	}
	if handles == 0 || handles > calls || missed == 0 {
		t.Fatalf("handles %d, calls %d, missed %d: the simulated day should have handles (no more than calls) and missed offers", handles, calls, missed)
	}
}
