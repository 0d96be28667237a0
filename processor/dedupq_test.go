package processor

import (
	"math/rand/v2"
	"testing"
)

// TestDedupQueueIsAFIFO runs random pushes and pops, in runs long enough
// to cross and empty many blocks, against a slice, checking the oldest
// entry, the length and every suffix that each visits.
func TestDedupQueueIsAFIFO(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q dedupQueue
	var model []dedupEntry
	next := int64(0)
	for step := range 200 {
		pushes, pops := r.IntN(3*dedupBlock), r.IntN(3*dedupBlock)
		if step%7 == 0 {
			pops = len(model) + pushes // empty it
		}
		for range pushes {
			next++
			d := dedupEntry{k: key128{a: uint64(next)}, ts: next}
			q.push(d)
			model = append(model, d)
		}
		for ; pops > 0 && len(model) > 0; pops-- {
			if q.oldest() != model[0] {
				t.Fatalf("step %d: oldest %v, want %v", step, q.oldest(), model[0])
			}
			q.pop()
			model = model[1:]
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(model))
		}
		if len(q.blocks) > len(model)/dedupBlock+2 {
			t.Fatalf("step %d: %d blocks for %d entries", step, len(q.blocks), len(model))
		}
		from := 0
		if len(model) > 0 {
			from = r.IntN(len(model) + 1)
		}
		var got []dedupEntry
		q.each(from, func(d dedupEntry) { got = append(got, d) })
		if len(got) != len(model)-from {
			t.Fatalf("step %d: each(%d) gave %d entries, want %d", step, from, len(got), len(model)-from)
		}
		for i := range got {
			if got[i] != model[from+i] {
				t.Fatalf("step %d: each(%d)[%d] = %v, want %v", step, from, i, got[i], model[from+i])
			}
		}
	}
}
