package events

import (
	"fmt"
	"math/bits"
	"slices"
	"unicode/utf8"
	"unsafe"
)

// internSlots is the size of the Decoder's string cache. Low-cardinality
// values (agent ids, teams, queues, states of calls in progress) repeat, so
// a small direct-mapped cache removes almost every string allocation.
const internSlots = 1 << 13

// MaxNesting bounds how deep unknown fields may nest before the input is
// rejected as malformed.
const MaxNesting = 64

// Decoder decodes canonical JSON events. It is not safe for concurrent use;
// give each goroutine (partition) its own. The zero value is ready to use.
type Decoder struct {
	// BorrowEventID makes Decode set Event.EventID to a string that shares
	// memory with the input instead of a copy: it saves an allocation per
	// event, but the id is only valid while the input bytes are unchanged.
	// Set it only when the id is used before the input is reused (the
	// engine's Ingest hashes it at once and never keeps it).
	BorrowEventID bool

	cache   [internSlots]internSlot
	scratch []byte
	days    dayCache
}

// field identifiers of the canonical schema.
const (
	fUnknown = iota
	fAgentID
	fState
	fTS
	fCallID
	fEventID
	fTeam
	fQueue
	fChannel
	fDisposition
	fReason
	fAgentName
)

func fieldOf(k []byte) int {
	switch string(k) {
	case "agent_id":
		return fAgentID
	case "state":
		return fState
	case "ts":
		return fTS
	case "call_id":
		return fCallID
	case "event_id":
		return fEventID
	case "team":
		return fTeam
	case "queue":
		return fQueue
	case "channel":
		return fChannel
	case "disposition":
		return fDisposition
	case "reason":
		return fReason
	case "agent_name":
		return fAgentName
	}
	return fUnknown
}

var fieldNames = [...]string{"", "agent_id", "state", "ts", "call_id", "event_id", "team", "queue", "channel", "disposition", "reason", "agent_name"}

// keyPat is a field's name and closing quote as two little-endian words
// (the bytes after the name masked off), for knownKey.
type keyPat struct {
	w0, m0, w1, m1 uint64
	n              int // len(name) + 1
}

var keyPats = func() (t [len(fieldNames)]keyPat) {
	for f := fAgentID; f < len(fieldNames); f++ {
		var name, mask [16]byte
		n := copy(name[:], fieldNames[f]+`"`)
		for i := range n {
			mask[i] = 0xff
		}
		t[f] = keyPat{w0: load64(name[:]), m0: load64(mask[:]), w1: load64(name[8:]), m1: load64(mask[8:]), n: n}
	}
	return t
}()

// keyFirst lists, by first byte, the fields whose names start with it.
var keyFirst = func() (t [256][2]uint8) {
	for f := fAgentID; f < len(fieldNames); f++ {
		c := fieldNames[f][0]
		if t[c][0] == 0 {
			t[c][0] = uint8(f)
		} else {
			t[c][1] = uint8(f)
		}
	}
	return t
}()

// knownKey matches the object key at p.i (which must be '"') against the
// contract's field names byte for byte, quote included, and on a match
// moves past the key and returns its field. Otherwise (another key, an
// escaped one, or fewer than 16 bytes left) it returns fUnknown and does
// not move: str and fieldOf decide.
func (p *parser) knownKey() int {
	b := p.b
	i := p.i + 1
	if i+16 > len(b) {
		return fUnknown
	}
	w0, w1 := load64(b[i:]), load64(b[i+8:])
	for _, f := range keyFirst[b[i]] {
		if f == 0 {
			break
		}
		k := &keyPats[f]
		if w0&k.m0 == k.w0 && w1&k.m1 == k.w1 {
			p.i = i + k.n
			return int(f)
		}
	}
	return fUnknown
}

type parser struct {
	b       []byte
	i       int
	d       *Decoder
	err     error // first syntax error
	escaped bool  // the last string had escapes (its bytes are in scratch)
	ascii   bool  // the last string was plain ASCII (no escapes, no byte over 0x7f): valid UTF-8
}

func (p *parser) fail(msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Offset: p.i, Msg: msg}
	}
}

func (p *parser) ws() {
	if p.i < len(p.b) && p.b[p.i] > ' ' {
		return // the common case: no white space at all
	}
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// str parses a JSON string at p.i (which must be '"') and returns its
// decoded bytes; the slice aliases the input or the decoder's scratch.
func (p *parser) str() []byte {
	// Locals, not p's fields, in the loops: they read most of every input.
	// Eight bytes at a time while eight remain (strSpecial finds the first
	// byte that is not plain ASCII), then one table lookup per byte.
	b := p.b
	i := p.i + 1 // past the opening quote
	start := i
	p.escaped = false
	high := false
	for i+8 <= len(b) {
		m := strSpecial(load64(b[i:]))
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) >> 3
		if b[i] == '"' {
			p.i = i + 1
			p.ascii = !high
			return b[start:i]
		}
		if b[i] < 0x80 {
			return p.strEnd(b, start, i, high)
		}
		high = true
		i++
	}
	for i < len(b) {
		switch strClass[b[i]] {
		case strPlain:
			i++
			continue
		case strHigh:
			high = true
			i++
			continue
		}
		return p.strEnd(b, start, i, high)
	}
	p.i = i
	p.fail("unterminated string")
	return nil
}

// strEnd finishes str at b[i], a quote, a backslash or a control
// character.
func (p *parser) strEnd(b []byte, start, i int, high bool) []byte {
	p.i = i
	switch b[i] {
	case '"':
		p.i++
		p.ascii = !high
		return b[start:i]
	case '\\':
		p.ascii = false
		return p.strEscaped(start)
	}
	p.fail("control character in string")
	return nil
}

const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// strSpecial returns, for the eight bytes of w (the first in its low
// byte), a mask whose lowest set bit is the high bit of the first byte
// that is a quote, a backslash, a control character or over 0x7f; 0 when
// all eight are plain ASCII. (The zero-byte tests can also flag bytes
// after a true match, through the borrow, but never one before it.)
func strSpecial(w uint64) uint64 {
	q := w ^ (swarOnes * '"')
	s := w ^ (swarOnes * '\\')
	return (((q - swarOnes) &^ q) | ((s - swarOnes) &^ s) | ((w - swarOnes*0x20) &^ w) | w) & swarHighs
}

// strClass sorts the bytes of a JSON string: plain ASCII, bytes of a
// multi-byte UTF-8 sequence (the string must then be validated), and the
// ones that end the fast path (quote, backslash, control characters).
var strClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = strStop
	}
	t['"'], t['\\'] = strStop, strStop
	for c := 0x80; c < 256; c++ {
		t[c] = strHigh
	}
	return t
}()

const (
	strPlain = iota
	strHigh
	strStop
)

func (p *parser) strEscaped(start int) []byte {
	p.escaped = true
	out := append(p.d.scratch[:0], p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			p.d.scratch = out
			return out
		case c < 0x20:
			p.fail("control character in string")
			return nil
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				p.fail("bad \\u escape")
				return nil
			}
			if r >= 0xD800 && r < 0xDC00 && p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
				save := p.i
				p.i += 2
				if r2, ok := p.hex4(); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
				} else {
					p.i = save
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			p.i -= 1
			p.fail("bad escape")
			return nil
		}
	}
	p.fail("unterminated string")
	return nil
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

// number scans a JSON number and reports whether it is a plain integer.
func (p *parser) number() (raw []byte, integer bool) {
	start := p.i
	integer = true
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.b) {
		p.fail("bad number")
		return nil, false
	}
	if p.b[p.i] == '0' {
		p.i++
	} else if p.b[p.i] >= '1' && p.b[p.i] <= '9' {
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
	} else {
		p.fail("bad number")
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		integer = false
		p.i++
		n := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		if p.i == n {
			p.fail("bad number")
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		integer = false
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		n := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		if p.i == n {
			p.fail("bad number")
			return nil, false
		}
	}
	return p.b[start:p.i], integer
}

func (p *parser) literal(word string) {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return
	}
	p.fail("invalid literal")
}

// skip scans over any JSON value, checking its syntax.
func (p *parser) skip(depth int) {
	p.ws()
	if p.i >= len(p.b) {
		p.fail("unexpected end of input")
		return
	}
	switch c := p.b[p.i]; {
	case c == '"':
		p.str()
	case c == '{' || c == '[':
		if depth >= MaxNesting {
			p.fail("nesting too deep")
			return
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == closer {
			p.i++
			return
		}
		for p.err == nil {
			if c == '{' {
				p.ws()
				if p.i >= len(p.b) || p.b[p.i] != '"' {
					p.fail("expected object key")
					return
				}
				p.str()
				p.ws()
				if p.i >= len(p.b) || p.b[p.i] != ':' {
					p.fail("expected ':'")
					return
				}
				p.i++
			}
			p.skip(depth + 1)
			p.ws()
			if p.i >= len(p.b) {
				p.fail("unexpected end of input")
				return
			}
			if p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.b[p.i] == closer {
				p.i++
				return
			}
			p.fail("expected ',' or '" + string(closer) + "'")
		}
	case c == '-' || (c >= '0' && c <= '9'):
		p.number()
	case c == 't':
		p.literal("true")
	case c == 'f':
		p.literal("false")
	case c == 'n':
		p.literal("null")
	default:
		p.fail("unexpected " + charName(c))
	}
}

// internSlot is a slot of the Decoder's string cache: a string and, when
// it is at most 16 bytes long, its first and last eight bytes (zero-filled
// when shorter), which identify it with its length, so that a lookup
// compares two words beside the slot instead of reading the string.
type internSlot struct {
	s      string
	w0, w1 uint64
}

func (d *Decoder) intern(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	var w0, w1 uint64
	if n >= 8 {
		w0, w1 = load64(b), load64(b[n-8:])
	} else {
		for i, c := range b {
			w0 |= uint64(c) << (8 * i)
		}
	}
	// A hash of the length and the first and last 8 bytes is enough to
	// spread ids like "agent-17" or "call-123456" over the slots; a
	// collision only costs an allocation.
	h := uint64(n)*0x9E3779B97F4A7C15 ^ w0 ^ w1*0xC2B2AE3D27D4EB4F
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	slot := &d.cache[(h>>40)&(internSlots-1)]
	if len(slot.s) == n && (n <= 16 && slot.w0 == w0 && slot.w1 == w1 || n > 16 && slot.s == string(b)) {
		return slot.s
	}
	s := string(b)
	*slot = internSlot{s: s, w0: w0, w1: w1}
	return s
}

func load64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func kindOf(c byte) string {
	switch {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	default:
		return charName(c)
	}
}

func charName(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// Decode parses one canonical event from b into ev (which it overwrites).
//
// A b that is not exactly one JSON object (surrounding white space allowed)
// gives an error matching ErrMalformed; an object that breaks the contract
// gives a *FieldError matching ErrInvalid. Unknown fields are ignored and
// null counts as absent. b is not retained.
func (d *Decoder) Decode(b []byte, ev *Event) error {
	*ev = Event{}
	p := parser{b: b, d: d}
	var ferr error // first field error
	fieldErr := func(err error) {
		if ferr == nil {
			ferr = err
		}
	}
	p.ws()
	if p.i >= len(b) || b[p.i] != '{' {
		if p.i >= len(b) {
			p.fail("empty input")
		} else {
			// Name what is there when it is some other JSON value.
			q := parser{b: b, i: p.i, d: d}
			q.skip(0)
			if q.err == nil {
				p.fail("expected '{', found " + kindOf(b[p.i]))
			} else {
				p.fail("expected '{', found " + charName(b[p.i]))
			}
		}
		return p.err
	}
	p.i++
	p.ws()
	var seen uint16 // contract fields met so far, by bit
	var unkBuf [8][]byte
	unknown := unkBuf[:0] // unknown member names met so far (decoded)
	if p.i < len(b) && b[p.i] == '}' {
		p.i++
	} else {
		for p.err == nil {
			p.ws()
			if p.i >= len(b) || b[p.i] != '"' {
				p.fail("expected object key")
				break
			}
			f := p.knownKey()
			var name []byte
			if f == fUnknown {
				name = p.str()
				f = fieldOf(name)
			}
			// A member given twice is ambiguous (parsers differ on which
			// one wins), so the object is invalid whatever the values.
			if f != fUnknown {
				if seen&(1<<f) != 0 {
					fieldErr(invalidf(fieldNames[f], "appears twice in the object"))
				}
				seen |= 1 << f
			} else if p.err == nil {
				if slices.ContainsFunc(unknown, func(u []byte) bool { return string(u) == string(name) }) {
					fieldErr(invalidf(string(name), "appears twice in the object"))
				}
				if p.escaped { // name is in the decoder's scratch: keep a copy
					name = slices.Clone(name)
				}
				unknown = append(unknown, name)
			}
			p.ws()
			if p.i >= len(b) || b[p.i] != ':' {
				p.fail("expected ':'")
				break
			}
			p.i++
			p.ws()
			if p.i >= len(b) {
				p.fail("unexpected end of input")
				break
			}
			c := b[p.i]
			switch {
			case f == fUnknown:
				p.skip(0)
			case c == 'n':
				p.literal("null")
				d.clear(ev, f)
			case f == fTS:
				if c == '"' {
					s := p.str()
					if p.err == nil {
						ms, err := parseRFC3339Millis(s, &d.days)
						if err != nil {
							fieldErr(invalidf("ts", "%s is not an RFC 3339 time or Unix milliseconds", quote(string(s))))
						} else if ms < MinTS || ms >= MaxTS {
							fieldErr(invalidf("ts", "%s is outside years 2000-2099", quote(string(s))))
						} else {
							ev.TS = ms
						}
					}
				} else if c == '-' || (c >= '0' && c <= '9') {
					raw, integer := p.number()
					if p.err == nil {
						if !integer {
							fieldErr(invalidf("ts", "%s is not an integer number of Unix milliseconds", raw))
						} else if ms, ok := parseInt(raw); !ok || ms < MinTS || ms >= MaxTS {
							fieldErr(invalidf("ts", "%s is outside years 2000-2099", raw))
						} else {
							ev.TS = ms
						}
					}
				} else {
					p.skip(0)
					fieldErr(invalidf("ts", "want an RFC 3339 string or integer Unix milliseconds, got %s", kindOf(c)))
				}
			case c != '"':
				p.skip(0)
				fieldErr(invalidf(fieldNames[f], "want a string, got %s", kindOf(c)))
			default:
				s := p.str()
				if p.err != nil {
					break
				}
				if !p.ascii && !utf8.Valid(s) {
					fieldErr(invalidf(fieldNames[f], "is not valid UTF-8"))
					break
				}
				d.set(ev, f, s, p.escaped, fieldErr)
			}
			if p.err != nil {
				break
			}
			p.ws()
			if p.i >= len(b) {
				p.fail("unexpected end of input")
				break
			}
			if b[p.i] == ',' {
				p.i++
				continue
			}
			if b[p.i] == '}' {
				p.i++
				break
			}
			p.fail("expected ',' or '}'")
		}
	}
	if p.err == nil {
		p.ws()
		if p.i != len(b) {
			p.fail("unexpected data after the object")
		}
	}
	if p.err != nil {
		return p.err
	}
	if ferr != nil {
		return ferr
	}
	if ev.TS == 0 {
		return invalidf("ts", "missing")
	}
	return ev.Validate()
}

// clear resets field f to absent (JSON null). TS 0 means absent: a real ts
// of 0 (1970) is out of range anyway.
func (d *Decoder) clear(ev *Event, f int) {
	switch f {
	case fAgentID:
		ev.AgentID = ""
	case fState:
		ev.State = StateNone
	case fTS:
		ev.TS = 0
	case fCallID:
		ev.CallID = ""
	case fEventID:
		ev.EventID = ""
	case fTeam:
		ev.Team = ""
	case fQueue:
		ev.Queue = ""
	case fChannel:
		ev.Channel = ""
	case fDisposition:
		ev.Disposition = ""
	case fReason:
		ev.Reason = ""
	case fAgentName:
		ev.AgentName = ""
	}
}

func (d *Decoder) set(ev *Event, f int, s []byte, escaped bool, fieldErr func(error)) {
	if f != fAgentID && f != fState && f != fEventID && len(s) > MaxFieldLen {
		fieldErr(invalidf(fieldNames[f], "is %d bytes long, the limit is %d", len(s), MaxFieldLen))
		return
	}
	switch f {
	case fAgentID:
		if len(s) > MaxAgentIDLen {
			fieldErr(invalidf("agent_id", "is %d bytes long, the limit is %d", len(s), MaxAgentIDLen))
			return
		}
		ev.AgentID = d.intern(s)
	case fState:
		st, ok := ParseState(s)
		if !ok {
			fieldErr(invalidf("state", "unknown state %s (want one of logged_out, ready, not_ready, ringing, talking, hold, acw)", quote(string(s))))
			return
		}
		ev.State = st
	case fCallID:
		ev.CallID = d.intern(s)
	case fEventID:
		if len(s) > MaxFieldLen {
			fieldErr(invalidf("event_id", "is %d bytes long, the limit is %d", len(s), MaxFieldLen))
			return
		}
		if d.BorrowEventID && !escaped && len(s) > 0 {
			ev.EventID = unsafe.String(&s[0], len(s))
		} else {
			ev.EventID = string(s)
		}
	case fTeam:
		ev.Team = d.intern(s)
	case fQueue:
		ev.Queue = d.intern(s)
	case fChannel:
		ev.Channel = d.intern(s)
	case fDisposition:
		ev.Disposition = d.intern(s)
	case fReason:
		ev.Reason = d.intern(s)
	case fAgentName:
		ev.AgentName = d.intern(s)
	}
}

func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}
