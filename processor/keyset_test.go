package processor

import (
	"math/rand/v2"
	"testing"
)

// keySet agrees with a map under random inserts and removals, including
// keys whose home slots crowd together and wrap around the table's end,
// and the zero key; after every operation each member is reachable from
// its home slot without crossing an empty one, and the table is between
// 1/8 and 3/4 full.
func TestKeySetIsASet(t *testing.T) {
	for _, spread := range []uint64{1 << 62, 300, 20} {
		rng := rand.New(rand.NewPCG(uint64(spread), 7))
		var s keySet
		ref := map[key128]bool{}
		key := func() key128 {
			if rng.IntN(500) == 0 {
				return key128{}
			}
			// a near the top of the range too, so that runs wrap
			return key128{a: rng.Uint64N(spread) - spread/2, b: rng.Uint64N(4)}
		}
		for op := range 100000 {
			k := key()
			if rng.IntN(100) < 55-int(op/10000)*2 { // grow, then shrink
				if got, want := s.insert(k), !ref[k]; got != want {
					t.Fatalf("spread %d op %d: insert(%v) = %v, want %v", spread, op, k, got, want)
				}
				ref[k] = true
			} else {
				s.remove(k)
				delete(ref, k)
			}
			if s.len() != len(ref) {
				t.Fatalf("spread %d op %d: len %d, want %d", spread, op, s.len(), len(ref))
			}
			if op%4999 == 0 || op > 99950 {
				checkKeySet(t, &s, ref)
			}
		}
		for k := range ref {
			s.remove(k)
		}
		if s.len() != 0 || len(s.slots) > keySetMin {
			t.Fatalf("spread %d: emptied set has %d members in %d slots", spread, s.len(), len(s.slots))
		}
	}
}

func checkKeySet(t *testing.T, s *keySet, ref map[key128]bool) {
	t.Helper()
	if s.hasZero != ref[key128{}] {
		t.Fatalf("zero key member %v, want %v", s.hasZero, ref[key128{}])
	}
	if len(s.slots) > keySetMin && (s.n*8 < len(s.slots) || s.n*4 > len(s.slots)*3) {
		t.Fatalf("%d members in %d slots", s.n, len(s.slots))
	}
	m := s.mask()
	n := 0
	for j, k := range s.slots {
		if k == (key128{}) {
			continue
		}
		n++
		if !ref[k] {
			t.Fatalf("slot %d holds %v, not a member", j, k)
		}
		for i := k.a & m; i != uint64(j); i = (i + 1) & m {
			if s.slots[i] == (key128{}) {
				t.Fatalf("%v at slot %d is cut off from its home %d by empty slot %d", k, j, k.a&m, i)
			}
		}
	}
	if n != s.n {
		t.Fatalf("%d keys in slots, n = %d", n, s.n)
	}
}
