package processor

// keySet is the dedup memory's set of keys: open addressing with linear
// probing in one flat array of keys. The keys are 128-bit hashes already,
// so their low bits are the home slot (no hashing, no control bytes), and
// a lookup reads one run of adjacent slots, usually a single cache line.
// Removal shifts the later members of the run back (Knuth's algorithm R),
// so there are no tombstones: the table after any sequence of inserts and
// removals is as if only its members had been inserted, and the dedup
// memory's steady insert-one, remove-one costs no rebuilds.
//
// The table stays between 1/8 and 3/4 full: it doubles when an insert
// would pass 3/4 and halves when a removal leaves it under 1/8 (not below
// keySetMin slots), so its memory follows the keys it holds, not the most
// it ever held.
type keySet struct {
	slots   []key128 // len is a power of two; the zero key marks an empty slot
	n       int      // members in slots
	hasZero bool     // the zero key (a hash of probability 2^-128) is a member
}

const keySetMin = 64

func (s *keySet) len() int {
	if s.hasZero {
		return s.n + 1
	}
	return s.n
}

func (s *keySet) mask() uint64 { return uint64(len(s.slots) - 1) }

// insert adds k and reports whether it was new.
func (s *keySet) insert(k key128) bool {
	if k == (key128{}) {
		if s.hasZero {
			return false
		}
		s.hasZero = true
		return true
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.resize(max(keySetMin, 2*len(s.slots)))
	}
	m := s.mask()
	for i := k.a & m; ; i = (i + 1) & m {
		switch s.slots[i] {
		case k:
			return false
		case key128{}:
			s.slots[i] = k
			s.n++
			return true
		}
	}
}

// remove deletes k; a k that is not a member is no error.
func (s *keySet) remove(k key128) {
	if k == (key128{}) {
		s.hasZero = false
		return
	}
	if s.n == 0 {
		return
	}
	m := s.mask()
	i := k.a & m
	for s.slots[i] != k {
		if s.slots[i] == (key128{}) {
			return
		}
		i = (i + 1) & m
	}
	// Shift back every later member of the run that may live at i: one
	// whose home is no further from its slot j than i is.
	for j := (i + 1) & m; s.slots[j] != (key128{}); j = (j + 1) & m {
		if (j-s.slots[j].a)&m >= (j-i)&m {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = key128{}
	s.n--
	if s.n*8 < len(s.slots) && len(s.slots) > keySetMin {
		s.resize(len(s.slots) / 2)
	}
}

// resize moves the members into a table of size slots.
func (s *keySet) resize(size int) {
	old := s.slots
	s.slots = make([]key128, size)
	m := s.mask()
	for _, k := range old {
		if k == (key128{}) {
			continue
		}
		i := k.a & m
		for s.slots[i] != (key128{}) {
			i = (i + 1) & m
		}
		s.slots[i] = k
	}
}
