package redisstore

import (
	"strconv"

	"github.com/acwstream/acwstream/events"
)

// argArena holds the values a transaction's arguments point to. go-redis
// takes arguments as interfaces, and an interface holding a string or an
// int64 is an allocation of its own; one holding a pointer into these
// slices is not, so a flush's thousands of arguments cost a few slice
// growths instead of two allocations each. A pointer stays valid when a
// slice grows (it keeps the old array alive), and until reset.
type argArena struct {
	ints  []int64
	strs  []string
	text  []byte
	spans []textSpan
}

// int is v as an argument.
func (a *argArena) int(v int64) any {
	if v >= 0 && v < int64(len(smallArgs)) {
		return smallArgs[v]
	}
	a.ints = append(a.ints, v)
	return &a.ints[len(a.ints)-1]
}

// str is s as an argument.
func (a *argArena) str(s string) any {
	a.strs = append(a.strs, s)
	return &a.strs[len(a.strs)-1]
}

// fixed is the scaled integer v with places decimals (events.AppendFixed)
// as an argument.
func (a *argArena) fixed(v int64, places int) any {
	if places == 0 {
		return a.int(v)
	}
	from := len(a.text)
	a.text = events.AppendFixed(a.text, v, places)
	a.spans = append(a.spans, textSpan{a: a, from: from, to: len(a.text)})
	return &a.spans[len(a.spans)-1]
}

func (a *argArena) reset() {
	clear(a.strs)
	a.ints, a.strs, a.text, a.spans = a.ints[:0], a.strs[:0], a.text[:0], a.spans[:0]
}

// textSpan is a stretch of an arena's text, which go-redis writes as
// one argument (it takes an encoding.BinaryMarshaler's bytes).
type textSpan struct {
	a        *argArena
	from, to int
}

func (t *textSpan) MarshalBinary() ([]byte, error) { return t.a.text[t.from:t.to], nil }

// viewFieldArgs are viewFields as command arguments, and smallArgs the
// integers 0–255: constants, made interfaces once.
var viewFieldArgs, smallArgs = func() (f [len(viewFields)]any, n [256]any) {
	for i, name := range viewFields {
		f[i] = name
	}
	for i := range n {
		n[i] = strconv.Itoa(i)
	}
	return
}()

// fixedArg is fixed(v, places) as a command argument of its own (for
// ops kept as strings).
func fixedArg(v int64, places int) any {
	if places == 0 && v >= 0 && v < int64(len(smallArgs)) {
		return smallArgs[v]
	}
	return fixed(v, places)
}
