package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
)

func all(t *testing.T, cfg Config) [][]byte {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for l := g.Next(); l != nil; l = g.Next() {
		out = append(out, append([]byte(nil), l...))
	}
	return out
}

func TestTheSameSeedGivesTheSameBytes(t *testing.T) {
	cfg := Config{Seed: 7, Agents: 10, Duration: time.Hour, Disorder: time.Second, DuplicateRate: 0.05}
	a, b := all(t, cfg), all(t, cfg)
	if !bytes.Equal(bytes.Join(a, nil), bytes.Join(b, nil)) {
		t.Fatal("two runs with one seed differ")
	}
}

func TestMaxEventsIsExactAndSpansDays(t *testing.T) {
	lines := all(t, Config{Agents: 3, Duration: time.Hour, MaxEvents: 5000})
	if len(lines) != 5000 {
		t.Fatalf("got %d lines, want 5000", len(lines))
	}
}

// TestArrivalStaysWithinTheDisorderBound checks what the engine relies on:
// with max_out_of_order ≥ Disorder no simulated event is late.
func TestArrivalStaysWithinTheDisorderBound(t *testing.T) {
	disorder := 1500 * time.Millisecond
	lines := all(t, Config{Seed: 3, Agents: 30, Duration: 2 * time.Hour, Disorder: disorder})
	var d events.Decoder
	var maxTS int64
	var reordered, calls, acw int
	for i, l := range lines {
		var ev events.Event
		if err := d.Decode(l, &ev); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if ev.TS < maxTS-disorder.Milliseconds() {
			t.Fatalf("line %d is %d ms behind the largest ts", i+1, maxTS-ev.TS)
		}
		if ev.TS < maxTS {
			reordered++
		}
		maxTS = max(maxTS, ev.TS)
		if ev.State == events.StateRinging {
			calls++
		}
		if ev.State == events.StateACW {
			acw++
		}
	}
	if reordered == 0 {
		t.Error("no event arrived out of order")
	}
	if calls < 500 || acw < calls*8/10 {
		t.Errorf("an unrealistic day: %d calls, %d wrap-ups", calls, acw)
	}
}
