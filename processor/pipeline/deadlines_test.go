package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

// While a backlog drains, checkOverruns does not run (the partition is
// not caught up), so no deadline comes due: the deadlines of wrap-ups
// that ended must still not pile up. With 20 agents wrapping up 1 000
// times over, the heap stays near the 20 open wrap-ups.
func TestOverrunDeadlinesFollowTheOpenWrapUps(t *testing.T) {
	tr := newTracker(Topics{}, 15*time.Minute, time.UTC)
	eng, err := processor.New(processor.Config{}, tr)
	if err != nil {
		t.Fatal(err)
	}
	dec := new(events.Decoder)
	ts := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC).UnixMilli()
	most := 0
	for i := range 1000 {
		for a := range 20 {
			for _, st := range []string{"talking", "acw", "ready"} {
				line := fmt.Sprintf(`{"agent_id":"a%d","state":%q,"ts":%d,"call_id":"c%d-%d"}`, a, st, ts, a, i)
				if st == "ready" {
					line = fmt.Sprintf(`{"agent_id":"a%d","state":"ready","ts":%d}`, a, ts)
				}
				if _, err := eng.Ingest(dec, []byte(line)); err != nil {
					t.Fatal(err)
				}
				ts += 1000
			}
		}
		most = max(most, len(tr.overruns.deadlines))
	}
	if limit := 2*20 + 64; most > limit {
		t.Fatalf("the deadline heap held %d entries for at most 20 open wrap-ups; want at most %d", most, limit)
	}
}
