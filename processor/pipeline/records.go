package pipeline

import (
	"strconv"

	"github.com/acwstream/acwstream/events"
	"github.com/segmentio/kafka-go"
)

// recordArena hands out the bytes of derived records (keys and JSON
// values) from shared chunks: a record is appended where the last one
// ended, instead of growing a slice of its own from nothing (about seven
// allocations for a 500-byte record). A chunk is freed with the last
// record that uses it, once its batch is published.
type recordArena struct {
	chunk []byte
}

const (
	arenaChunk = 64 << 10
	// arenaRoom is the least room a chunk must have left to take the
	// next record; a record that outgrows the room is moved by append to
	// an array of its own, and the chunk stays where it was.
	arenaRoom = 4 << 10
)

// room returns the empty tail of the current chunk, to append a record to.
func (a *recordArena) room() []byte {
	if cap(a.chunk)-len(a.chunk) < arenaRoom {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	return a.chunk[len(a.chunk):]
}

// take marks rec, appended to room(), as used, and returns it with no
// capacity beyond its end, so that appending to it (a rebuild mark) never
// writes into the next record.
func (a *recordArena) take(rec []byte) []byte {
	if len(rec) == 0 {
		return rec
	}
	if tail := a.chunk[len(a.chunk):cap(a.chunk)]; len(tail) > 0 && &rec[0] == &tail[0] {
		a.chunk = a.chunk[:len(a.chunk)+len(rec)]
	}
	return rec[:len(rec):len(rec)]
}

// str returns s's bytes from the arena.
func (a *recordArena) str(s ...string) []byte {
	b := a.room()
	for _, x := range s {
		b = append(b, x...)
	}
	return a.take(b)
}

// derivedRecords is the open batch's derived records (segments, alerts,
// agent intervals, dead letters) on their way to the derived topics:
// their bytes come from an arena, and each is marked while the partition
// is being rebuilt.
type derivedRecords struct {
	topics Topics
	arena  recordArena
	msgs   []kafka.Message
	bytes  int // of msgs' keys and values
	// rebuild, when nonzero, marks every record (a header and a "rebuild"
	// field): the partition was recomputed after its checkpoint was lost,
	// and its records may differ from those published before under the
	// same ids.
	rebuild int64
}

func (d *derivedRecords) segment(s *events.Segment) {
	d.add(d.mark(kafka.Message{Topic: d.topics.Segments, Key: d.arena.str(s.AgentID), Value: d.arena.take(s.AppendJSON(d.arena.room()))}))
}

func (d *derivedRecords) alert(a *events.Alert) {
	d.add(d.mark(kafka.Message{Topic: d.topics.Alerts, Key: d.arena.str(a.AgentID), Value: d.arena.take(a.AppendJSON(d.arena.room()))}))
}

func (d *derivedRecords) interval(iv *events.Interval) {
	d.add(d.mark(kafka.Message{Topic: d.topics.Intervals, Key: d.arena.str(iv.Scope.String(), ":", iv.Key), Value: d.arena.take(iv.AppendJSON(d.arena.room()))}))
}

// add adds a record to the open batch.
func (d *derivedRecords) add(m kafka.Message) {
	d.msgs = append(d.msgs, m)
	d.bytes += len(m.Key) + len(m.Value)
}

// mark adds the rebuild mark, if any, to a derived record: a header
// "rebuild" and a last field "rebuild" (the JSON object's).
func (d *derivedRecords) mark(m kafka.Message) kafka.Message {
	if d.rebuild == 0 {
		return m
	}
	n := strconv.FormatInt(d.rebuild, 10)
	if k := len(m.Value); k > 0 && m.Value[k-1] == '}' {
		m.Value = append(append(m.Value[:k-1], `,"rebuild":`...), n+"}"...)
	}
	m.Headers = append(m.Headers, kafka.Header{Key: "rebuild", Value: []byte(n)})
	return m
}

// take returns the records added since the last call.
func (d *derivedRecords) take() []kafka.Message {
	m := d.msgs
	// the next flush's like this one's: sized once, not grown from nothing
	d.msgs, d.bytes = make([]kafka.Message, 0, len(m)), 0
	return m
}
