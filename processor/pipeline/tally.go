package pipeline

import (
	"maps"

	"github.com/acwstream/acwstream/events"
)

// tally is one view's value as the tracker keeps it: the counters and the
// not-ready time by reason (nil: none), all the reasons the engine kept,
// not capped (the store caps what it writes).
type tally struct {
	c events.Counters
	r map[string]int64
}

// tallyOf copies an engine counter and its reasons (the engine's map
// changes as it goes on).
func tallyOf(c *events.Counters, reasons map[string]int64) tally {
	return tally{c: *c, r: maps.Clone(reasons)}
}

// tallyOfInterval is an interval record's tally.
func tallyOfInterval(iv *events.Interval) tally {
	t := tally{c: iv.Counters}
	if len(iv.Reasons) > 0 {
		t.r = make(map[string]int64, len(iv.Reasons))
		for _, x := range iv.Reasons {
			t.r[x.Reason] = x.MS
		}
	}
	return t
}

func (t tally) equal(o tally) bool { return t.c == o.c && maps.Equal(t.r, o.r) }

func (t tally) isZero() bool { return t.c.IsZero() && len(t.r) == 0 }

// add adds o into t (see events.Counters.Add); reasons add up, and a
// reason whose time comes to 0 is dropped.
func (t *tally) add(o *tally) {
	t.c.Add(&o.c)
	t.r = addReasons(t.r, o.r, 1)
}

// addReasons returns dst with sign·src added, dropping zero times; dst
// may be nil, and is never src.
func addReasons(dst, src map[string]int64, sign int64) map[string]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int64, len(src))
	}
	for r, ms := range src {
		if v := dst[r] + sign*ms; v != 0 {
			dst[r] = v
		} else {
			delete(dst, r)
		}
	}
	return dst
}

// tallyDelta is c - b (see delta); reasons subtract.
func tallyDelta(c, b *tally) tally {
	d := tally{c: delta(&c.c, &b.c)}
	d.r = addReasons(addReasons(nil, c.r, 1), b.r, -1)
	return d
}

// negated is -t (see negate).
func (t *tally) negated() tally {
	return tally{c: negate(&t.c), r: addReasons(nil, t.r, -1)}
}
