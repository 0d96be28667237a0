package processor

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/asterisk"
	"github.com/acwstream/acwstream/events/freeswitch"
	"github.com/acwstream/acwstream/events/sim"
)

// qlog is a queue_log line at base plus sec seconds.
func qlog(sec int, rest string) []byte {
	return []byte(fmt.Sprintf("%d|%s", base/1000+int64(sec), rest))
}

// A held wrap-up end is applied before the record that moves the
// watermark past it, so it is never late, and the segment has the
// window's exact length.
func TestHeldEndsAreAppliedBeforeTheWatermarkPassesThem(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{MaxOutOfOrder: 2 * time.Second}, c)
	ad := asterisk.New(asterisk.Config{WrapupTime: 20 * time.Second})
	for _, r := range [][]byte{
		qlog(0, "c1|q|A|CONNECT|1|x|1"),
		qlog(30, "c1|q|A|COMPLETEAGENT|1|30|1"), // wrap-up until +50
		qlog(40, "c2|q|B|CONNECT|1|x|1"),
		qlog(100, "c2|q|B|COMPLETEAGENT|1|60|1"), // moves W to +98, past +50
	} {
		if o, err := e.Translate(ad, r); err != nil || o != Accepted {
			t.Fatalf("%s: %v %v", r, o, err)
		}
	}
	if st := e.Stats(); st.Late != 0 {
		t.Fatalf("%d late events", st.Late)
	}
	if len(c.segments) != 1 || c.segments[0].AgentID != "A" || c.segments[0].DurationMS != 20000 {
		t.Fatalf("segments %+v, want A's 20 s wrap-up", c.segments)
	}
	// An idle partition: the wall clock closes B's window.
	e.AdvanceWith(ad, base+121000)
	if len(c.segments) != 2 || c.segments[1].AgentID != "B" || c.segments[1].DurationMS != 20000 {
		t.Fatalf("after an idle tick: segments %+v, want B's 20 s wrap-up", c.segments)
	}
	if e.Stats().Late != 0 {
		t.Fatal("the tick made a held end late")
	}
}

// Replay's end of input releases what is still held.
func TestCloseWithReleasesHeldEnds(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{}, c)
	ad := asterisk.New(asterisk.Config{WrapupTime: 45 * time.Second})
	for _, r := range [][]byte{qlog(0, "c1|q|A|CONNECT|1|x|1"), qlog(30, "c1|q|A|COMPLETEAGENT|1|30|1")} {
		if _, err := e.Translate(ad, r); err != nil {
			t.Fatal(err)
		}
	}
	e.CloseWith(ad)
	if len(c.segments) != 1 || c.segments[0].DurationMS != 45000 || len(c.open) != 0 {
		t.Fatalf("segments %+v open %+v, want one closed 45 s wrap-up", c.segments, c.open)
	}
	if len(c.alerts) != 2 { // warn 20 s and overrun 30 s passed
		t.Errorf("alerts %+v", c.alerts)
	}
}

// An event held by an adapter whose record was itself late is dropped,
// not charged to the record that releases it.
func TestAHeldEndOfALateRecordIsDropped(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{MaxOutOfOrder: time.Second}, c)
	ad := asterisk.New(asterisk.Config{WrapupTime: 5 * time.Second})
	if _, err := e.Translate(ad, qlog(100, "c9|q|B|CONNECT|1|x|1")); err != nil {
		t.Fatal(err)
	}
	if o, _ := e.Translate(ad, qlog(10, "c1|q|A|COMPLETEAGENT|1|30|1")); o != Rejected {
		t.Fatalf("a record 90 s behind: %v, want Rejected", o)
	}
	if o, err := e.Translate(ad, qlog(200, "c9|q|B|COMPLETEAGENT|1|100|1")); o != Accepted || err != nil {
		t.Fatalf("the next record: %v %v; the held end of the late one must not reject it", o, err)
	}
}

// A record that ends its member's implicit window itself (a CONNECT after
// the window's end) carries the held end among its own events, while the
// same record's time releases another member's later held end. The
// events are applied in ts order, so the later release does not make the
// record's own earlier end late: the result does not depend on whether
// other records (other partitions' agents, in replay's single log) had
// already moved the watermark past the first window's end.
func TestARecordsOwnHeldEndIsNotMadeLateByAnotherRelease(t *testing.T) {
	c := &collector{}
	e, _ := New(Config{MaxOutOfOrder: 2 * time.Second}, c)
	ad := asterisk.New(asterisk.Config{WrapupTime: 15 * time.Second})
	for _, r := range [][]byte{
		qlog(0, "c1|q|A|CONNECT|1|x|1"),
		qlog(1, "c2|q|B|CONNECT|1|x|1"),
		qlog(60, "c1|q|A|COMPLETEAGENT|1|60|1"), // A's window ends at +75
		qlog(69, "c2|q|B|COMPLETEAGENT|1|60|1"), // B's at +84
		qlog(96, "c3|q|A|CONNECT|1|x|1"),        // releases B's (W +94) and ends A's at +75
	} {
		if o, err := e.Translate(ad, r); err != nil || o != Accepted {
			t.Fatalf("%s: %v %v", r, o, err)
		}
	}
	e.CloseWith(ad)
	if st := e.Stats(); st.Late != 0 {
		t.Fatalf("%d late events", st.Late)
	}
	got := map[string]int64{}
	for _, s := range c.segments {
		got[s.AgentID] = s.DurationMS
	}
	if len(c.segments) != 2 || got["A"] != 15000 || got["B"] != 15000 {
		t.Fatalf("segments %+v, want A's and B's 15 s windows", c.segments)
	}
}

// Splitting a log by agent, as the live pipeline's partitions do, and
// reading each part with its own engine and adapter gives the same
// segments and agent intervals as reading the whole log with one: what a stateful adapter
// holds back must not depend on other agents' records moving the
// watermark. Checked for the adapters that hold wrap-up ends.
func TestHoldingAdaptersGiveTheSameSegmentsPerPartition(t *testing.T) {
	adapters := map[string]func() events.Adapter{
		"asterisk":   func() events.Adapter { return asterisk.New(asterisk.Config{WrapupTime: 15 * time.Second}) },
		"freeswitch": func() events.Adapter { return freeswitch.New(freeswitch.Config{WrapUpTime: 40 * time.Second}) },
	}
	for format, newAd := range adapters {
		t.Run(format, func(t *testing.T) {
			for seed := uint64(1); seed <= 16; seed++ {
				g, err := sim.New(sim.Config{Seed: seed, Agents: 60, Teams: 4, Queues: 3, Start: base + int64(seed)*7*60000, Duration: time.Hour,
					Disorder: time.Second, DuplicateRate: 0.01, Format: format})
				if err != nil {
					t.Fatal(err)
				}
				const parts = 12
				var whole [][]byte
				split := make([][][]byte, parts)
				for l := g.Next(); l != nil; l = g.Next() {
					l = append([]byte(nil), l...)
					whole = append(whole, l)
					h := fnv.New32a()
					h.Write([]byte(g.Key()))
					p := h.Sum32() % parts
					split[p] = append(split[p], l)
				}
				// Agent intervals are compared up to where every part's
				// watermark has passed (at the end of its input, a part
				// closes its last interval at its own largest ts).
				cutoff := int64(math.MaxInt64)
				run := func(log [][]byte) *collector {
					c := &collector{}
					e, _ := New(Config{MaxOutOfOrder: 2 * time.Second}, c)
					ad := newAd()
					for _, r := range log {
						e.Translate(ad, r)
					}
					if m, ok := e.MaxTS(); ok {
						cutoff = min(cutoff, m-2000)
					}
					e.CloseWith(ad)
					return c
				}
				records := func(cs ...*collector) map[string]string {
					out := map[string]string{}
					for _, c := range cs {
						for _, s := range c.segments {
							out[s.SegmentID] = string(s.AppendJSON(nil))
						}
						for _, iv := range c.ivs {
							if iv.Scope == events.ScopeAgent && iv.End <= cutoff {
								out[fmt.Sprint(iv.Key, " ", iv.Start)] = string(iv.AppendJSON(nil))
							}
						}
					}
					return out
				}
				var cs []*collector
				for _, log := range split {
					cs = append(cs, run(log))
				}
				wc := run(whole)
				want, got := records(wc), records(cs...)
				if len(want) < 300 {
					t.Fatalf("seed %d: only %d segments", seed, len(want))
				}
				for id, w := range want {
					if got[id] != w {
						t.Errorf("seed %d: %s\n per partition %s\n whole log     %s", seed, id, got[id], w)
					}
				}
				if len(got) != len(want) {
					t.Errorf("seed %d: %d records per partition, %d from the whole log", seed, len(got), len(want))
				}
			}
		})
	}
}

// An engine and a stateful adapter (held wrap-up ends, each member's
// state) restored from their snapshots at any record continue exactly as
// the uninterrupted pair: the same output and the same final state.
func TestARestoredEngineAndAdapterContinueExactly(t *testing.T) {
	g, err := sim.New(sim.Config{Seed: 13, Agents: 12, Teams: 2, Queues: 3, Start: base, Duration: time.Hour,
		Disorder: time.Second, DuplicateRate: 0.01, BadRate: 0.002, Format: "asterisk"})
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for l := g.Next(); l != nil; l = g.Next() {
		recs = append(recs, append([]byte(nil), l...))
	}
	cfg := Config{MaxOutOfOrder: 2 * time.Second}
	acfg := asterisk.Config{WrapupTime: 15 * time.Second}
	run := func(e *Engine, ad *asterisk.Adapter, recs [][]byte) {
		for _, r := range recs {
			e.Translate(ad, r)
		}
	}
	whole := &collector{}
	e1, _ := New(cfg, whole)
	ad1 := asterisk.New(acfg)
	run(e1, ad1, recs)
	final1 := e1.Snapshot()
	e1.CloseWith(ad1)
	for split := 0; split <= len(recs); split += 7 {
		parts := &collector{}
		e2, _ := New(cfg, parts)
		ad2 := asterisk.New(acfg)
		run(e2, ad2, recs[:split])
		snap, st := e2.Snapshot(), ad2.AppendState(nil)
		e3, err := Restore(cfg, parts, snap)
		if err != nil {
			t.Fatal(err)
		}
		ad3 := asterisk.New(acfg)
		if err := ad3.RestoreState(st); err != nil {
			t.Fatal(err)
		}
		run(e3, ad3, recs[split:])
		if !bytes.Equal(e3.Snapshot(), final1) {
			t.Errorf("restored at record %d: final state differs", split)
		}
		e3.CloseWith(ad3)
		if a, b := strings.Join(whole.lines, "\n"), strings.Join(parts.lines, "\n"); a != b {
			t.Fatalf("restored at record %d: output differs", split)
		}
	}
}
