package events

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary codec of everything acwstream checkpoints: the engine's
// snapshot and dedup journal, the adapters' state, the pipeline's aux
// state, outbox and shared log entries, and the store's ticks and shared
// rounds. Writers append varints (encoding/binary), length-prefixed strings
// (AppendStateString) and, first, a version byte; Reader reads them back
// with a sticky error, so a decoder reads field after field and checks
// once, and corrupt input can neither panic nor make it allocate without
// bound (Count).

// ErrState is the error of a Reader that ran out of bytes or read a value
// out of range, when it was given no error of its own (Reader.Corrupt):
// the bytes were not written by the encoder they are read for.
var ErrState = errors.New("adapter state is truncated or corrupt")

// Reader reads the codec's encodings. Errors are sticky: after the first,
// every read returns a zero value and Err reports it.
type Reader struct {
	B []byte
	// Corrupt is the error a failed read reports, wrapped with what was
	// being read (nil: ErrState, as it is).
	Corrupt error
	err     error
}

// StateReader is the Reader of the adapters' state.
type StateReader = Reader

// Version reads the leading version byte, which must be in [lo, hi].
func (r *Reader) Version(lo, hi byte) byte {
	v := r.Byte()
	if r.err == nil && (v < lo || v > hi) {
		r.Fail(fmt.Sprintf("version %d (this build reads %d to %d)", v, lo, hi))
	}
	return v
}

// Err is the first error met, or, when called at the end, the corruption
// error if bytes are left over.
func (r *Reader) Err() error {
	if r.err == nil && len(r.B) != 0 {
		r.Fail(fmt.Sprintf("%d bytes after the end", len(r.B)))
	}
	return r.err
}

// Failed is the first error met (nil: none so far).
func (r *Reader) Failed() error { return r.err }

// Fail records a corrupt input, found reading what, unless an error was
// met before; every read after returns a zero value.
func (r *Reader) Fail(what string) {
	if r.err == nil {
		switch {
		case r.Corrupt == nil:
			r.err = ErrState
		case what == "":
			r.err = fmt.Errorf("%w: truncated or corrupt", r.Corrupt)
		default:
			r.err = fmt.Errorf("%w: truncated or corrupt at %s", r.Corrupt, what)
		}
	}
	r.B = nil
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.Fail("uvarint")
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.Fail("varint")
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Count reads a length that must fit in what is left (each item takes at
// least one byte).
func (r *Reader) Count() int { return r.CountOf(1) }

// CountOf reads the length of a collection whose every item takes at
// least minSize bytes: it must fit in what is left.
func (r *Reader) CountOf(minSize int) int {
	n := r.Uvarint()
	if n > uint64(len(r.B)/minSize) {
		r.Fail("count")
		return 0
	}
	return int(n)
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.B) == 0 {
		r.Fail("byte")
		return 0
	}
	c := r.B[0]
	r.B = r.B[1:]
	return c
}

// Bool reads a byte that is 0 or 1.
func (r *Reader) Bool() bool {
	if len(r.B) == 0 || r.B[0] > 1 {
		r.Fail("bool")
		return false
	}
	v := r.B[0] == 1
	r.B = r.B[1:]
	return v
}

// Uint64LE reads a little-endian 64-bit word.
func (r *Reader) Uint64LE() uint64 {
	if len(r.B) < 8 {
		r.Fail("word")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.B)
	r.B = r.B[8:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Bytes reads a length-prefixed byte string: a slice of the input (no
// copy), capped at its end.
func (r *Reader) Bytes() []byte {
	n := r.Count()
	if r.err != nil {
		return nil
	}
	s := r.B[:n:n]
	r.B = r.B[n:]
	return s
}

// Event reads an event AppendStateEvent wrote.
func (r *Reader) Event() Event {
	ev := Event{AgentID: r.String(), State: State(r.Byte()), TS: r.Varint()}
	for _, p := range [...]*string{&ev.CallID, &ev.EventID, &ev.Team, &ev.Queue, &ev.Channel, &ev.Disposition, &ev.Reason} {
		*p = r.String()
	}
	if ev.State != StateNone && !ev.State.Valid() {
		r.Fail("state")
	}
	return ev
}
