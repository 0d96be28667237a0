package events

import (
	"math/bits"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal. Control characters are
// escaped and invalid UTF-8 is replaced by U+FFFD, so the output is always
// valid JSON.
func AppendString[S ~string | ~[]byte](b []byte, s S) []byte {
	i := plainPrefix(s)
	b = append(b, '"')
	b = append(b, s[:i]...)
	if i == len(s) { // the common case: nothing to escape
		return append(b, '"')
	}
	return appendEscaped(b, s, i)
}

// plainPrefix returns the length of the longest prefix of s that is plain
// ASCII needing no escape: eight bytes at a time (see strSpecial), then a
// byte at a time.
func plainPrefix[S ~string | ~[]byte](s S) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		m := strSpecial(uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56)
		if m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && strClass[s[i]] == strPlain {
		i++
	}
	return i
}

// appendEscaped appends the rest of s from i, its first byte that is not
// plain ASCII, escaped, and the closing quote.
func appendEscaped[S ~string | ~[]byte](b []byte, s S, i int) []byte {
	start := i
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonObject is a tiny append-only JSON object writer used by the record
// encoders; it keeps field order fixed so output is byte-for-byte stable.
type jsonObject struct{ b []byte }

func (o *jsonObject) key(k string) { o.b = appendKey(o.b, k) }

// appendKey appends "k": after a comma, unless it is an object's first.
// The jsonObject methods work on a local slice through it rather than on
// o.b, which would be loaded and stored at every append.
func appendKey(b []byte, k string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func (o *jsonObject) str(k, v string) {
	o.b = AppendString(appendKey(o.b, k), v)
}

func (o *jsonObject) int(k string, v int64) {
	b := appendKey(o.b, k)
	if v >= 0 && v < 10 { // most counters of most records
		o.b = append(b, byte('0'+v))
		return
	}
	o.b = strconv.AppendInt(b, v, 10)
}

func (o *jsonObject) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObject) time(k string, ms int64) {
	o.key(k)
	o.b = append(o.b, '"')
	o.b = AppendTime(o.b, ms)
	o.b = append(o.b, '"')
}

// fixed writes v/10^places as a decimal with exactly `places` digits after
// the point, e.g. fixed(2345, 2) = 23.45.
func (o *jsonObject) fixed(k string, v int64, places int) {
	o.key(k)
	o.b = AppendFixed(o.b, v, places)
}

// AppendFixed appends v, a count of 10^-places units, as a decimal with
// exactly places digits after the point: AppendFixed(b, 1234, 2) appends
// "12.34". Derived percentages and rates are written this way everywhere.
func AppendFixed(b []byte, v int64, places int) []byte {
	o := jsonObject{b: b}
	if v < 0 {
		o.b = append(o.b, '-')
		v = -v
	}
	p := int64(1)
	for i := 0; i < places; i++ {
		p *= 10
	}
	o.b = strconv.AppendInt(o.b, v/p, 10)
	o.b = append(o.b, '.')
	frac := v % p
	for p /= 10; p > 0; p /= 10 {
		o.b = append(o.b, byte('0'+frac/p%10))
	}
	return o.b
}

func openObject(b []byte, typ string) jsonObject {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	return jsonObject{b: b}
}

func (o *jsonObject) close() []byte { return append(o.b, '}') }
