package processor

import (
	"strings"
	"testing"
)

// strByBytes is hasher.str as first written, a byte at a time: the hash
// is in snapshots and segment ids, so str must keep giving its values.
func (h *hasher) strByBytes(s string) {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		h.word(uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56)
	}
	var w uint64
	for j := 0; i < len(s); i, j = i+1, j+8 {
		w |= uint64(s[i]) << j
	}
	h.word(w)
	h.word(uint64(len(s)) ^ hashP3)
}

func TestHashOfStringsIsStable(t *testing.T) {
	src := strings.Repeat("agent-1479-call-46807\xff\x00é", 3)
	for n := 0; n <= len(src); n++ {
		s := src[:n]
		a, b := newHasher(), newHasher()
		a.str(s)
		b.strByBytes(s)
		if a.sum() != b.sum() {
			t.Fatalf("hash of %q (%d bytes) changed", s, n)
		}
	}
	// A known value, so that a change of both would show too.
	h := newHasher()
	h.str("agent-17")
	h.word(1)
	h.str("agent-17-9ix")
	if got := h.sum().hex(); got != wantStableHash {
		t.Fatalf("hash of a dedup key is %s, was %s", got, wantStableHash)
	}
}

// wantStableHash was computed with the byte-at-a-time str.
const wantStableHash = "b5583fa68fbf9b02992438fbc585730e"
