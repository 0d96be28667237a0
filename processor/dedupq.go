package processor

// dedupQueue holds the dedup memory's entries in acceptance order: a FIFO
// in blocks of dedupBlock entries, so that it grows and shrinks without
// copying the entries it holds (a single slice would copy all of them at
// every doubling, and again to give back the room of evicted ones). An
// emptied block is kept for the next one needed; the others are let go,
// so its memory follows the entries it holds.
type dedupQueue struct {
	blocks [][]dedupEntry // each of capacity dedupBlock; the last may be partly filled
	head   int            // index in blocks[0] of the oldest entry
	n      int            // entries held
	spare  []dedupEntry   // an emptied block, for reuse
}

const dedupBlock = 4096

func (q *dedupQueue) len() int { return q.n }

// push appends d as the newest entry.
func (q *dedupQueue) push(d dedupEntry) {
	if k := len(q.blocks); k == 0 || len(q.blocks[k-1]) == dedupBlock {
		b := q.spare
		q.spare = nil
		if b == nil {
			b = make([]dedupEntry, 0, dedupBlock)
		}
		q.blocks = append(q.blocks, b)
	}
	last := &q.blocks[len(q.blocks)-1]
	*last = append(*last, d)
	q.n++
}

// oldest returns the oldest entry; len must be > 0.
func (q *dedupQueue) oldest() dedupEntry { return q.blocks[0][q.head] }

// pop removes the oldest entry; len must be > 0.
func (q *dedupQueue) pop() {
	q.head++
	q.n--
	if q.head < len(q.blocks[0]) {
		return
	}
	// The first block is used up (or the queue is empty): recycle it.
	b := q.blocks[0]
	if q.spare == nil {
		clear(b)
		q.spare = b[:0]
	}
	copy(q.blocks, q.blocks[1:])
	q.blocks[len(q.blocks)-1] = nil
	q.blocks = q.blocks[:len(q.blocks)-1]
	q.head = 0
}

// each calls fn with the entries from the i-th oldest (0: the oldest) to
// the newest, in order.
func (q *dedupQueue) each(i int, fn func(d dedupEntry)) {
	i += q.head
	for _, b := range q.blocks {
		if i >= len(b) {
			i -= len(b)
			continue
		}
		for _, d := range b[i:] {
			fn(d)
		}
		i = 0
	}
}
