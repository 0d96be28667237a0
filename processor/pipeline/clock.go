package pipeline

import "time"

// eventClock is a partition's event time between events: the largest event
// ts read (ref), at the wall time it was read (wall), run on at wall-clock
// speed. For a live feed this is the wall clock less the delivery delay; an
// older log streamed now keeps its own time. Its wall times come from
// Config.Now, the pipeline's one clock, so under a sped-up demo clock the
// event time runs at that clock's speed.
type eventClock struct {
	ref  int64
	wall time.Time
}

// observe moves the clock to ts, read at wall, if ts is past it.
func (c *eventClock) observe(ts int64, wall time.Time) {
	if ts > c.ref {
		c.ref, c.wall = ts, wall
	}
}

// set puts the clock at ts as of wall (a restored engine's largest ts).
func (c *eventClock) set(ts int64, wall time.Time) { c.ref, c.wall = ts, wall }

// at is the event time (Unix ms) at wall time now.
func (c *eventClock) at(now time.Time) int64 { return c.ref + now.Sub(c.wall).Milliseconds() }
