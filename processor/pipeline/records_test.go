package pipeline

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Records from the arena share chunks but never each other's bytes: each
// keeps its content while later ones are added, one larger than the room
// left gets an array of its own, and appending to a record (a rebuild
// mark) leaves the next one as it was.
func TestArenaRecordsAreIndependent(t *testing.T) {
	var a recordArena
	var recs [][]byte
	var want []string
	for i := range 2000 {
		s := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i%700))
		if i%97 == 0 {
			s = strings.Repeat("y", 3*arenaRoom) // outgrows the room
		}
		recs = append(recs, a.take(append(a.room(), s...)))
		want = append(want, s)
		if i%3 == 0 {
			recs = append(recs, a.str("agent-", fmt.Sprint(i)))
			want = append(want, "agent-"+fmt.Sprint(i))
		}
	}
	for i := range recs {
		if cap(recs[i]) != len(recs[i]) {
			t.Fatalf("record %d has room beyond its end", i)
		}
		if i%5 == 0 {
			recs[i] = append(recs[i], `,"rebuild":1`...)
			want[i] += `,"rebuild":1`
		}
	}
	for i := range recs {
		if !bytes.Equal(recs[i], []byte(want[i])) {
			t.Fatalf("record %d changed: %.40q…, want %.40q…", i, recs[i], want[i])
		}
	}
}
