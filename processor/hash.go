package processor

import "math/bits"

// key128 is a 128-bit deterministic hash, used for dedup keys and segment
// ids. It must stay stable across processes and versions: snapshots and
// segment ids depend on it.
type key128 struct{ a, b uint64 }

type hasher struct{ a, b uint64 }

const (
	hashP1 = 0x9E3779B97F4A7C15
	hashP2 = 0xC2B2AE3D27D4EB4F
	hashP3 = 0x165667B19E3779F9
	hashP4 = 0xD6E8FEB86659FD93
)

func newHasher() hasher { return hasher{a: 0x243F6A8885A308D3, b: 0x13198A2E03707344} }

func mix(x, y uint64) uint64 {
	hi, lo := bits.Mul64(x, y)
	return hi ^ lo
}

func (h *hasher) word(w uint64) {
	h.a = mix(h.a^w, hashP1)
	h.b = mix(h.b^bits.RotateLeft64(w, 29), hashP2)
}

// str hashes s followed by its length, so field boundaries are unambiguous.
func (h *hasher) str(s string) {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		h.word(load64(s[i:]))
	}
	// The rest (0-7 bytes) as one little-endian word, zero-filled above:
	// the top bytes of the string's last eight when it has eight.
	var w uint64
	if rest := len(s) - i; len(s) >= 8 {
		w = load64(s[len(s)-8:]) >> (64 - 8*rest) // a shift by 64 is 0
	} else {
		for j := 0; i < len(s); i, j = i+1, j+8 {
			w |= uint64(s[i]) << j
		}
	}
	h.word(w)
	h.word(uint64(len(s)) ^ hashP3)
}

// load64 is the first eight bytes of s as a little-endian word.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func (h *hasher) sum() key128 {
	return key128{a: mix(h.a^h.b, hashP4) ^ h.a, b: mix(h.b^hashP3, h.a^hashP1)}
}

const hexDigits = "0123456789abcdef"

// hex renders k as 32 lowercase hex digits.
func (k key128) hex() string {
	var buf [32]byte
	for i := 0; i < 16; i++ {
		buf[15-i] = hexDigits[(k.a>>(4*i))&0xf]
		buf[31-i] = hexDigits[(k.b>>(4*i))&0xf]
	}
	return string(buf[:])
}
