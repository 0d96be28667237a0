package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecodeAcceptsTheCanonicalForms(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Event
	}{
		{"RFC 3339 with Z", `{"agent_id":"a1","state":"ready","ts":"2026-11-22T10:00:00Z"}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600000}},
		{"fractions beyond milliseconds are truncated", `{"agent_id":"a1","state":"ready","ts":"2026-11-22T10:00:00.123999999Z"}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600123}},
		{"one fractional digit", `{"agent_id":"a1","state":"ready","ts":"2026-11-22T10:00:00.5Z"}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600500}},
		{"a numeric offset", `{"agent_id":"a1","state":"ready","ts":"2026-11-22T11:30:00+01:30"}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600000}},
		{"a negative offset", `{"agent_id":"a1","state":"ready","ts":"2026-11-22T05:00:00-05:00"}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600000}},
		{"integer Unix milliseconds", `{"agent_id":"a1","state":"ready","ts":1795341600123}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600123}},
		{"all fields, unknown ones ignored", ` { "agent_id" : "a1", "state":"acw", "ts":1795341600000, "call_id":"c1", "event_id":"e1",
			"team":"t","queue":"q","channel":"voice","disposition":"sale","reason":"r","extra":{"x":[1,2,{"y":null}]},"n":-1.5e3 } `,
			Event{AgentID: "a1", State: StateACW, TS: 1795341600000, CallID: "c1", EventID: "e1", Team: "t", Queue: "q", Channel: "voice", Disposition: "sale", Reason: "r"}},
		{"null counts as absent", `{"agent_id":"a1","state":"ready","ts":1795341600000,"team":null,"call_id":null}`,
			Event{AgentID: "a1", State: StateReady, TS: 1795341600000}},
		{"escapes are decoded", `{"agent_id":"a\u00e9\"\\\/\n\ud83d\ude00","state":"ready","ts":1795341600000}`,
			Event{AgentID: "aé\"\\/\n😀", State: StateReady, TS: 1795341600000}},
	}
	var d Decoder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got Event
			if err := d.Decode([]byte(tc.in), &got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeRejectsWithAClearReason(t *testing.T) {
	cases := []struct {
		name, in, reason, msg string
	}{
		{"a contract field given twice", `{"agent_id":"dupkey","agent_id":"agent-5","state":"ready","ts":1795341600000}`, ReasonInvalid, `field "agent_id": appears twice in the object`},
		{"a field given twice, once escaped", `{"state":"ready","st\u0061te":"acw","agent_id":"a","ts":1795341600000,"call_id":"c"}`, ReasonInvalid, `field "state": appears twice`},
		{"a field given twice, once null", `{"team":"t","team":null,"agent_id":"a","state":"ready","ts":1795341600000}`, ReasonInvalid, `field "team": appears twice`},
		{"an unknown member given twice", `{"x":1,"agent_id":"a","x":2,"state":"ready","ts":1795341600000}`, ReasonInvalid, `field "x": appears twice`},
		{"an unknown member given twice, once escaped", `{"x\u0079":1,"agent_id":"a","xy":2,"state":"ready","ts":1795341600000}`, ReasonInvalid, `field "xy": appears twice`},
		{"team too long", `{"agent_id":"a","state":"ready","ts":1795341600000,"team":"` + strings.Repeat("t", 257) + `"}`, ReasonInvalid, `field "team": is 257 bytes long, the limit is 256`},
		{"reason too long", `{"agent_id":"a","state":"not_ready","ts":1795341600000,"reason":"` + strings.Repeat("r", 300) + `"}`, ReasonInvalid, `field "reason": is 300 bytes long, the limit is 256`},
		{"not JSON", `hello`, ReasonMalformed, "not a JSON object"},
		{"a JSON array", `[1,2]`, ReasonMalformed, "found array"},
		{"a JSON string", `"x"`, ReasonMalformed, "found string"},
		{"truncated", `{"agent_id":"a1","state":`, ReasonMalformed, "unexpected end"},
		{"trailing data", `{"agent_id":"a1","state":"ready","ts":1795341600000} x`, ReasonMalformed, "after the object"},
		{"two objects", `{} {}`, ReasonMalformed, "after the object"},
		{"a raw control character", "{\"agent_id\":\"a\x01\"}", ReasonMalformed, "control character"},
		{"a syntax error after a field error wins", `{"state":"bogus",}`, ReasonMalformed, "expected object key"},
		{"missing agent_id", `{"state":"ready","ts":1795341600000}`, ReasonInvalid, `field "agent_id": missing`},
		{"empty agent_id", `{"agent_id":"","state":"ready","ts":1795341600000}`, ReasonInvalid, `field "agent_id": missing`},
		{"agent_id too long", `{"agent_id":"` + strings.Repeat("x", 129) + `","state":"ready","ts":1795341600000}`, ReasonInvalid, `field "agent_id": is 129 bytes long`},
		{"agent_id not a string", `{"agent_id":7,"state":"ready","ts":1795341600000}`, ReasonInvalid, `field "agent_id": want a string, got number`},
		{"missing state", `{"agent_id":"a","ts":1795341600000}`, ReasonInvalid, `field "state": missing`},
		{"unknown state", `{"agent_id":"a","state":"Ready","ts":1795341600000}`, ReasonInvalid, `field "state": unknown state "Ready"`},
		{"missing ts", `{"agent_id":"a","state":"ready"}`, ReasonInvalid, `field "ts": missing`},
		{"ts not a time", `{"agent_id":"a","state":"ready","ts":"yesterday"}`, ReasonInvalid, `field "ts": "yesterday" is not an RFC 3339 time`},
		{"ts with a bad day", `{"agent_id":"a","state":"ready","ts":"2026-02-29T10:00:00Z"}`, ReasonInvalid, `field "ts"`},
		{"ts without zone", `{"agent_id":"a","state":"ready","ts":"2026-11-22T10:00:00"}`, ReasonInvalid, `field "ts"`},
		{"ts before 2000", `{"agent_id":"a","state":"ready","ts":"1999-12-31T23:59:59.999Z"}`, ReasonInvalid, `outside years 2000-2099`},
		{"ts after 2099", `{"agent_id":"a","state":"ready","ts":4102444800000}`, ReasonInvalid, `outside years 2000-2099`},
		{"ts in seconds", `{"agent_id":"a","state":"ready","ts":1795341600}`, ReasonInvalid, `outside years 2000-2099`},
		{"fractional ts", `{"agent_id":"a","state":"ready","ts":1795341600000.5}`, ReasonInvalid, `not an integer`},
		{"ts a boolean", `{"agent_id":"a","state":"ready","ts":true}`, ReasonInvalid, `got boolean`},
		{"call state without call_id", `{"agent_id":"a","state":"talking","ts":1795341600000}`, ReasonInvalid, `field "call_id": required for state "talking"`},
		{"team an object", `{"agent_id":"a","state":"ready","ts":1795341600000,"team":{}}`, ReasonInvalid, `field "team": want a string, got object`},
		{"invalid UTF-8", "{\"agent_id\":\"a\xff\",\"state\":\"ready\",\"ts\":1795341600000}", ReasonInvalid, `field "agent_id": is not valid UTF-8`},
	}
	var d Decoder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode([]byte(tc.in), &ev)
			if err == nil {
				t.Fatalf("accepted: %+v", ev)
			}
			if Reason(err) != tc.reason || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %s: %v; want %s containing %q", Reason(err), err, tc.reason, tc.msg)
			}
		})
	}
}

func TestTimeRoundTrip(t *testing.T) {
	for _, ms := range []int64{MinTS, MaxTS - 1, 951782400000 /* 2000-02-29 */, 1795341600123} {
		s := FormatTime(ms)
		got, err := ParseRFC3339Millis([]byte(s))
		if err != nil || got != ms {
			t.Errorf("%d → %s → %d, %v", ms, s, got, err)
		}
		if want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z"); s != want {
			t.Errorf("format %d = %s, want %s", ms, s, want)
		}
	}
}

func TestAppendStringIsValidJSON(t *testing.T) {
	for _, s := range []string{"plain", "quote\"back\\slash", "ctl\x00\x1f\t\n", "bad\xffutf8\xc3", "é😀"} {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, b, err)
		}
		if strings.ToValidUTF8(s, "\ufffd") != back {
			t.Errorf("%q → %s → %q", s, b, back)
		}
	}
}

// FuzzDecode checks that any input is either accepted as an event that
// encoding/json agrees on, or rejected with a classified error, and never
// panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"agent_id":"a1","state":"ready","ts":"2026-11-22T10:00:00Z"}`,
		`{"agent_id":"a1","state":"acw","ts":1795341600123,"call_id":"c","x":[{"y":[]}]}`,
		`{"agent_id":"a\u00e9","state":"hold","ts":"2026-11-22T10:00:00.1+01:00","call_id":"c","team":null}`,
		`{`, `[]`, `null`, ``, `{"ts":1e3}`, "{\"agent_id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		err := d.Decode(b, &ev)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("unclassified error %v", err)
			}
			if errors.Is(err, ErrMalformed) && json.Valid(b) {
				var v any
				if json.Unmarshal(b, &v) == nil {
					if _, isObj := v.(map[string]any); isObj {
						t.Fatalf("valid JSON object rejected as malformed: %v", err)
					}
				}
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if ev.Validate() != nil {
			t.Fatalf("accepted an event that fails Validate: %+v", ev)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("encoding/json disagrees: %v", err)
		}
		if m["agent_id"] != ev.AgentID || m["state"] != ev.State.String() {
			t.Fatalf("fields differ: %v vs %+v", m, ev)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	line := []byte(`{"agent_id":"agent-17","state":"acw","ts":"2026-11-22T10:00:00.123Z","call_id":"call-123456","event_id":"agent-17-9ix","team":"team-2","queue":"support","disposition":"resolved"}`)
	var d Decoder
	var ev Event
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(line, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStrSpecialFindsTheFirstSpecialByte checks the eight-at-a-time scan
// of strings against the byte-at-a-time classification: every byte value
// at every position of a word, and words of two special bytes (where the
// borrow of the first could mark a later one), must give the first
// special byte, or none.
func TestStrSpecialFindsTheFirstSpecialByte(t *testing.T) {
	first := func(w [8]byte) int {
		for i, c := range w {
			if strClass[c] != strPlain {
				return i
			}
		}
		return 8
	}
	got := func(w [8]byte) int {
		m := strSpecial(load64(w[:]))
		if m == 0 {
			return 8
		}
		return bits.TrailingZeros64(m) >> 3
	}
	base := [8]byte{'a', 'g', 'e', 'n', 't', '-', '1', '7'}
	for pos := range 8 {
		for c := range 256 {
			w := base
			w[pos] = byte(c)
			if g, want := got(w), first(w); g != want {
				t.Fatalf("%q: first special byte at %d, strSpecial says %d", w, want, g)
			}
			for pos2 := pos + 1; pos2 < 8; pos2++ {
				for _, c2 := range []byte{0, 0x1f, 0x20, '"', '\\', 0x7f, 0x80, 0xff} {
					w2 := w
					w2[pos2] = c2
					if g, want := got(w2), first(w2); g != want {
						t.Fatalf("%q: first special byte at %d, strSpecial says %d", w2, want, g)
					}
				}
			}
		}
	}
}

// TestDecodeStringsAtEveryOffset decodes values whose special bytes
// (escapes, multi-byte UTF-8, a control character) fall at every place in
// and across the eight-byte words of the scan, and checks them against
// encoding/json.
func TestDecodeStringsAtEveryOffset(t *testing.T) {
	var d Decoder
	for _, special := range []string{`\"`, `\\`, `\u00e9`, "é", "😀", "\x01", "\xff"} {
		for pad := range 20 {
			name := strings.Repeat("x", pad) + special + strings.Repeat("y", 20-pad)
			line := []byte(`{"agent_id":"a1","state":"ready","ts":1795341600123,"agent_name":"` + name + `"}`)
			var ev Event
			err := d.Decode(line, &ev)
			var want struct {
				AgentName string `json:"agent_name"`
			}
			jerr := json.Unmarshal(line, &want)
			switch {
			case special == "\x01" || special == "\xff":
				if err == nil {
					t.Fatalf("%q accepted", line)
				}
			case err != nil || jerr != nil:
				t.Fatalf("%q: %v (encoding/json: %v)", line, err, jerr)
			case ev.AgentName != want.AgentName:
				t.Fatalf("%q: agent_name %q, encoding/json %q", line, ev.AgentName, want.AgentName)
			}
		}
	}
}

// TestKnownKeysMatchOnlyThemselves checks the byte-for-byte key match
// against fieldOf: each contract name, its prefixes and extensions,
// escaped forms and near misses, padded so that the match is tried.
func TestKnownKeysMatchOnlyThemselves(t *testing.T) {
	var keys []string
	for _, n := range fieldNames[1:] {
		keys = append(keys, n, n[:len(n)-1], n+"x", n+`\"`, strings.ToUpper(n[:1])+n[1:], `\u00`+strconv.FormatInt(int64(n[0]), 16)+n[1:])
	}
	for _, k := range keys {
		p := parser{b: []byte(`"` + k + `":"0123456789abcdef"}`)}
		f := p.knownKey()
		want := fUnknown
		q := parser{b: p.b, d: &Decoder{}}
		if name := q.str(); q.err == nil {
			want = fieldOf(name)
		}
		if f != fUnknown && f != want {
			t.Errorf("key %q: knownKey says %s, fieldOf %d", k, fieldNames[f], want)
		}
		if f == fUnknown && p.i != 0 {
			t.Errorf("key %q: no match, but moved to %d", k, p.i)
		}
		if f != fUnknown && p.b[p.i] != ':' {
			t.Errorf("key %q: matched %s but stopped at %q", k, fieldNames[f], p.b[p.i:])
		}
		if want != fUnknown && !strings.Contains(k, `\`) && f != want {
			t.Errorf("key %q: plain contract name not matched", k)
		}
	}
}

// TestDecoderDayCacheAgreesWithParse decodes a run of times through one
// Decoder (which remembers the last date it parsed) and checks each
// against ParseRFC3339Millis alone: same day, next day, invalid days and
// times after a valid date with the same prefix, offsets.
func TestDecoderDayCacheAgreesWithParse(t *testing.T) {
	var d Decoder
	for _, ts := range []string{
		"2026-02-28T10:00:00Z", "2026-02-28T23:59:59.999Z", "2026-02-28T24:00:00Z", "2026-02-29T00:00:00Z",
		"2028-02-29T00:00:00Z", "2028-02-29T12:00:00.5+01:00", "2028-02-29T12:00:00-23:59", "2028-02-29T12:60:00Z",
		"2028-02-29t12:00:00z", "2028-02-30T00:00:00Z", "2028-02-29T00:00:00Z", "2028-02-2xT00:00:00Z",
		"2028-02-29T00:00:00", "2028-02-29T00:00:00.Z", "2028-03-01T00:00:00.123456Z", "2028-03-01T00:00:00.123456Z",
	} {
		want, werr := ParseRFC3339Millis([]byte(ts))
		var ev Event
		err := d.Decode([]byte(`{"agent_id":"a1","state":"ready","ts":"`+ts+`"}`), &ev)
		switch {
		case werr != nil && err == nil:
			t.Errorf("%s: accepted as %d, ParseRFC3339Millis: %v", ts, ev.TS, werr)
		case werr == nil && want >= MinTS && want < MaxTS && (err != nil || ev.TS != want):
			t.Errorf("%s: %d, %v; ParseRFC3339Millis: %d", ts, ev.TS, err, want)
		}
	}
}

// TestInternNeverConfusesStrings interns, through one Decoder, pairs of
// strings of every length up to 40 that differ in one byte, at every
// place: each must come back as itself, whatever the cache held.
func TestInternNeverConfusesStrings(t *testing.T) {
	var d Decoder
	for n := 1; n <= 40; n++ {
		for i := range n {
			a := []byte(strings.Repeat("agent-17", 5)[:n])
			b := append([]byte(nil), a...)
			b[i] ^= 0x01
			for _, s := range [][]byte{a, b, a, b} {
				if got := d.intern(s); got != string(s) {
					t.Fatalf("intern(%q) = %q", s, got)
				}
			}
		}
	}
}

// TestAppendTimeAgreesWithTheTimePackage formats instants on alternating
// days (AppendTime remembers the last day's date) from several
// goroutines at once, and compares each with package time.
func TestAppendTimeAgreesWithTheTimePackage(t *testing.T) {
	instants := []int64{MinTS, MaxTS - 1, 0, -1, 86399999, 86400000, 951782400000 /* 2000-02-29 */, 4107542399999}
	for ms := int64(1795341600123); ms < 1795341600123+3*86400000; ms += 3600000 + 61001 {
		instants = append(instants, ms, ms-86400000*400)
	}
	done := make(chan string)
	for g := range 4 {
		go func() {
			for i := range instants {
				ms := instants[(i+g)%len(instants)]
				got := string(AppendTime(nil, ms))
				if want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z"); got != want {
					done <- fmt.Sprintf("AppendTime(%d) = %s, want %s", ms, got, want)
					return
				}
			}
			done <- ""
		}()
	}
	for range 4 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
