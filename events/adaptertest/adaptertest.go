// Package adaptertest checks what every platform adapter (events.Adapter)
// owes the engine, whatever its platform: records read from a file
// (Records), fed as the engine feeds them (Feed), a fuzz target's body
// (CheckRecord), and the state round trip of a stateful adapter
// (StateRoundTrip).
package adaptertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
)

// Records reads the records of a fixture, one per line.
func Records(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		recs = append(recs, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Feed translates recs with a as the engine does: an events.Holder's held
// events due at the largest ts read less ooo come before each record's
// own, and all of them at the end. Before record cut (if 0 ≤ cut <
// len(recs)) a is replaced by a new adapter (newAdapter) restored from its
// state, as a recovery from a checkpoint there does. Every event must
// validate; a record that fails to translate fails the test.
func Feed(t testing.TB, a events.Adapter, newAdapter func() events.Adapter, ooo time.Duration, recs [][]byte, cut int) []events.Event {
	t.Helper()
	var out []events.Event
	maxTS := int64(math.MinInt64)
	advance := func(w int64) {
		if h, ok := a.(events.Holder); ok {
			out = h.Advance(w, out)
		}
	}
	for i, r := range recs {
		if i == cut {
			a = restored(t, a, newAdapter)
		}
		at := len(out)
		var err error
		if out, err = a.Translate(r, out); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		own := append([]events.Event(nil), out[at:]...)
		out = out[:at]
		for _, e := range own {
			maxTS = max(maxTS, e.TS)
		}
		if maxTS > math.MinInt64 {
			advance(maxTS - ooo.Milliseconds())
		}
		out = append(out, own...)
	}
	advance(math.MaxInt64)
	for _, e := range out {
		if err := e.Validate(); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
	return out
}

// restored is a new adapter restored from a's state; the state must read
// back byte for byte.
func restored(t testing.TB, a events.Adapter, newAdapter func() events.Adapter) events.Adapter {
	t.Helper()
	st, ok := a.(events.Stateful)
	if !ok {
		return newAdapter() // nothing to carry over
	}
	state := st.AppendState(nil)
	b := newAdapter()
	bs := b.(events.Stateful)
	if err := bs.RestoreState(state); err != nil {
		t.Fatalf("restoring the state: %v", err)
	}
	if again := bs.AppendState(nil); !bytes.Equal(again, state) {
		t.Fatal("the state does not round-trip")
	}
	return b
}

// StateRoundTrip checks that a recovery before any record of recs (its
// state carried to a new adapter) changes none of the events, and that a
// corrupt state is refused with events.ErrState.
func StateRoundTrip(t *testing.T, newAdapter func() events.Adapter, ooo time.Duration, recs [][]byte, corrupt []byte) {
	t.Helper()
	want := Feed(t, newAdapter(), newAdapter, ooo, recs, -1)
	if len(want) == 0 {
		t.Fatal("the records give no events: nothing to check")
	}
	for cut := range len(recs) + 1 {
		if got := Feed(t, newAdapter(), newAdapter, ooo, recs, cut); !slices.Equal(got, want) {
			t.Errorf("recovered before record %d:\n\t%s\nwant\n\t%s", cut, render(got), render(want))
		}
	}
	st, ok := newAdapter().(events.Stateful)
	if !ok {
		t.Fatal("not a stateful adapter")
	}
	if err := st.RestoreState(corrupt); !errors.Is(err, events.ErrState) {
		t.Errorf("corrupt state %v: %v, want events.ErrState", corrupt, err)
	}
}

// CheckRecord is a fuzz target's body: a's translation of rec appends
// events that validate (with what it held, released), or returns an error
// that classifies (events.Reason) and appends nothing; a stateful
// adapter's state then restores into a new one (newAdapter) and reads
// back byte for byte.
func CheckRecord(t *testing.T, a events.Adapter, newAdapter func() events.Adapter, rec []byte) {
	t.Helper()
	prefix := []events.Event{{AgentID: "keep"}}
	out, err := a.Translate(rec, prefix)
	if err != nil {
		if len(out) != 1 || events.Reason(err) == "" {
			t.Fatalf("%q: error %v (reason %q) with %d events appended", rec, err, events.Reason(err), len(out)-1)
		}
		return
	}
	if h, ok := a.(events.Holder); ok {
		out = h.Advance(math.MaxInt64, out)
	}
	for _, e := range out[1:] {
		if err := e.Validate(); err != nil {
			t.Fatalf("%q gave %+v: %v", rec, e, err)
		}
	}
	if st, ok := a.(events.Stateful); ok {
		state := st.AppendState(nil)
		b := newAdapter().(events.Stateful)
		if err := b.RestoreState(state); err != nil {
			t.Fatalf("%q: the state does not restore: %v", rec, err)
		}
		if !bytes.Equal(b.AppendState(nil), state) {
			t.Fatalf("%q: the state does not round-trip", rec)
		}
	}
}

// render lists es one per line.
func render(es []events.Event) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = fmt.Sprintf("%+v", e)
	}
	return strings.Join(lines, "\n\t")
}
