package redisstore

import (
	"reflect"
	"testing"
)

// A round's record decodes to the round, whatever its strings hold, and
// a truncated or extended one is an error, never a shorter round.
func TestRoundRecord(t *testing.T) {
	r := &sharedRound{
		Logs:   []string{"acw:shared:g:log:in:0", "", "1-0", "acw:shared:g:log:in:1", "5-0", "7-0"},
		Notice: `{"source":"shared"}`,
		Ops:    []any{"s", "acw:team:t\x00é:15m:0", "172800", "2", "acw_count", "3", "acw_total_ms", "", "s", "k", "0", "0"},
		NOps:   2,
	}
	b := appendRecord(nil, r)
	got, err := parseRecord(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("parseRecord(appendRecord(r)) = %+v, %v; want %+v", got, err, r)
	}
	for n := range len(b) {
		if _, err := parseRecord(b[:n]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes parsed", n, len(b))
		}
	}
	if _, err := parseRecord(append(b, 0)); err == nil {
		t.Fatal("a record with a trailing byte parsed")
	}
}
