package processor

import (
	"fmt"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events/asterisk"
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
