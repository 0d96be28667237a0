package pipeline

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
