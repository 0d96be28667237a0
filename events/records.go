package events

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record types, the value of the "type" field of every output line.
const (
	TypeSegment  = "segment"
	TypeAlert    = "alert"
	TypeInterval = "interval"
	TypeOpen     = "open"
	TypeRejected = "rejected"
	TypeSummary  = "summary"
)

// Segment is one closed wrap-up (ACW) of one call. Times are Unix ms.
type Segment struct {
	// SegmentID is deterministic: the same input always gives the same id,
	// so downstream consumers can drop repeats.
	SegmentID   string
	AgentID     AgentID
	CallID      string
	Team        string
	Queue       string
	Start       int64
	End         int64
	DurationMS  int64
	ThresholdMS int64 // the overrun threshold that applied
	Warn        bool  // DurationMS > warn threshold
	Overrun     bool  // DurationMS > ThresholdMS
	Disposition string
	// Coded: Disposition is non-empty and not one of the engine's
	// uncoded dispositions (ACW compliance).
	Coded    bool
	EndState State
	ClosedBy string // ClosedByEvent, ClosedByMaxACW or ClosedByIdle
}

// What closed a segment (Segment.ClosedBy).
const (
	// ClosedByEvent: an event of the agent (the usual case).
	ClosedByEvent = "event"
	// ClosedByMaxACW: the engine's max_acw, with no event to end it.
	ClosedByMaxACW = "max_acw"
	// ClosedByIdle: the agent's idle logout (agent_idle_timeout).
	ClosedByIdle = "idle_timeout"
)

// AppendJSON appends the segment as one JSON object (no newline).
func (s *Segment) AppendJSON(b []byte) []byte {
	o := openObject(b, TypeSegment)
	o.str("segment_id", s.SegmentID)
	o.str("agent_id", s.AgentID)
	o.str("call_id", s.CallID)
	o.str("team", s.Team)
	o.str("queue", s.Queue)
	o.time("start", s.Start)
	o.time("end", s.End)
	o.int("duration_ms", s.DurationMS)
	o.int("threshold_ms", s.ThresholdMS)
	o.bool("warn", s.Warn)
	o.bool("overrun", s.Overrun)
	o.str("disposition", s.Disposition)
	o.bool("coded", s.Coded)
	o.str("end_state", s.EndState.String())
	o.str("closed_by", s.ClosedBy)
	return o.close()
}

// Alert kinds.
const (
	AlertOverrun  = "overrun"
	AlertResolved = "resolved"
)

// Alert reports that a wrap-up passed its overrun threshold (Kind overrun)
// or that an alerted wrap-up has closed (Kind resolved). At is the moment
// the threshold was passed (overrun) or the wrap-up closed (resolved).
type Alert struct {
	Kind        string
	SegmentID   string
	AgentID     AgentID
	CallID      string
	Team        string
	Queue       string
	Start       int64
	At          int64
	ThresholdMS int64
}

// AlertID is a stable id for the alert: its segment id and kind.
func (a *Alert) AlertID() string { return a.SegmentID + ":" + a.Kind }

// AppendJSON appends the alert as one JSON object (no newline).
func (a *Alert) AppendJSON(b []byte) []byte {
	o := openObject(b, TypeAlert)
	o.str("kind", a.Kind)
	o.str("segment_id", a.SegmentID)
	o.str("agent_id", a.AgentID)
	o.str("call_id", a.CallID)
	o.str("team", a.Team)
	o.str("queue", a.Queue)
	o.time("start", a.Start)
	o.time("at", a.At)
	o.int("threshold_ms", a.ThresholdMS)
	return o.close()
}

// Scope of an interval record.
type Scope uint8

// Interval scopes, in output order.
const (
	ScopeAgent  Scope = iota // key: agent_id
	ScopeTeam                // key: team (skipped when empty)
	ScopeQueue               // key: queue; segment fields and calls_handled only
	ScopeCenter              // key: "all"
	NumScopes
)

var scopeNames = [NumScopes]string{"agent", "team", "queue", "center"}

// String returns the wire name of the scope.
func (s Scope) String() string {
	if s < NumScopes {
		return scopeNames[s]
	}
	return "scope(" + strconv.Itoa(int(s)) + ")"
}

// ParseScope returns the scope named name ("agent", "team", "queue",
// "center").
func ParseScope(name string) (Scope, bool) {
	for i, n := range scopeNames {
		if n == name {
			return Scope(i), true
		}
	}
	return 0, false
}

// CenterKey is the key of the center scope.
const CenterKey = "all"

// Counters are the base fields of an interval: counts and milliseconds.
// They only ever grow within an interval, so shared views can be kept with
// increments (the _max_ms fields with a max). CounterNames and Fields
// list them; that table is their one definition for every encoding
// (records, snapshots, checkpoints, Redis hashes).
type Counters struct {
	ACWCount     int64 // wrap-ups that ended in the interval
	ACWTotalMS   int64 // their summed duration
	ACWMaxMS     int64 // the longest of them
	WarnCount    int64 // those longer than the warn threshold
	OverrunCount int64 // those longer than the overrun threshold
	CallsHandled int64 // talk/hold runs that ended in the interval
	TalkMS       int64 // time in state talking within the interval
	HoldMS       int64 // time in state hold
	ACWStateMS   int64 // time in state acw
	WorkMS       int64 // time not logged_out (any state)
	ReadyMS      int64 // time in state ready
	NotReadyMS   int64 // time in state not_ready
	RingingMS    int64 // time in state ringing
	// Handles completed in the interval: a talk/hold run plus the
	// wrap-up it leads into (see the README's rule on handles).
	HandleCount   int64
	HandleTotalMS int64
	HandleMaxMS   int64
	MissedCount   int64 // offers (ringing runs) not answered
	ACWCodedCount int64 // wrap-ups with a disposition that counts as coded
}

// NumCounters is the number of base fields of Counters.
const NumCounters = 18

// CounterNames are the wire names of Counters' fields, in the order of
// Fields. New fields are only ever appended: encodings written by an
// older version hold a prefix of them.
var CounterNames = [NumCounters]string{"acw_count", "acw_total_ms", "acw_max_ms", "warn_count", "overrun_count",
	"calls_handled", "talk_ms", "hold_ms", "acw_state_ms", "work_ms",
	"ready_ms", "not_ready_ms", "ringing_ms", "handle_count", "handle_total_ms", "handle_max_ms",
	"missed_count", "acw_coded_count"}

// CounterIsMax marks the fields (in Fields order) that combine by
// maximum; all others add up.
var CounterIsMax = [NumCounters]bool{2: true, 15: true}

// Fields returns pointers to c's fields in CounterNames order.
func (c *Counters) Fields() [NumCounters]*int64 {
	return [...]*int64{&c.ACWCount, &c.ACWTotalMS, &c.ACWMaxMS, &c.WarnCount, &c.OverrunCount,
		&c.CallsHandled, &c.TalkMS, &c.HoldMS, &c.ACWStateMS, &c.WorkMS,
		&c.ReadyMS, &c.NotReadyMS, &c.RingingMS, &c.HandleCount, &c.HandleTotalMS, &c.HandleMaxMS,
		&c.MissedCount, &c.ACWCodedCount}
}

// AddStateTime adds d ms in state s (a working state) to the time
// fields: WorkMS and the state's own field.
func (c *Counters) AddStateTime(s State, d int64) {
	c.WorkMS += d
	switch s {
	case StateReady:
		c.ReadyMS += d
	case StateNotReady:
		c.NotReadyMS += d
	case StateRinging:
		c.RingingMS += d
	case StateTalking:
		c.TalkMS += d
	case StateHold:
		c.HoldMS += d
	case StateACW:
		c.ACWStateMS += d
	}
}

// IsZero reports whether every base field is zero.
func (c *Counters) IsZero() bool { return *c == Counters{} }

// Add adds o into c (the CounterIsMax fields take the maximum).
func (c *Counters) Add(o *Counters) {
	dst, src := c.Fields(), o.Fields()
	for i, p := range dst {
		if CounterIsMax[i] {
			*p = max(*p, *src[i])
		} else {
			*p += *src[i]
		}
	}
}

// Derived values. All use integer arithmetic with round-half-up so that any
// client (Go, Lua in Redis, SQL) computes the same digits; a zero
// denominator gives 0.

// ACWAvgMS is ACWTotalMS / ACWCount in whole milliseconds.
func (c *Counters) ACWAvgMS() int64 { return divRound(c.ACWTotalMS, c.ACWCount) }

// ACWPerCallMS is ACWTotalMS / CallsHandled in whole milliseconds ("total
// ACW ÷ calls handled").
func (c *Counters) ACWPerCallMS() int64 { return divRound(c.ACWTotalMS, c.CallsHandled) }

// ACWPctOfWork is 100·ACWStateMS/WorkMS in hundredths of a percent.
func (c *Counters) ACWPctOfWork() int64 { return divRound(10000*c.ACWStateMS, c.WorkMS) }

// ACWPctOfHandle is 100·ACWStateMS/(TalkMS+HoldMS+ACWStateMS) in hundredths
// of a percent.
func (c *Counters) ACWPctOfHandle() int64 {
	return divRound(10000*c.ACWStateMS, c.TalkMS+c.HoldMS+c.ACWStateMS)
}

// OverrunRate is OverrunCount/ACWCount as a fraction in ten-thousandths.
func (c *Counters) OverrunRate() int64 { return divRound(10000*c.OverrunCount, c.ACWCount) }

// AHTMS is the average handle time, HandleTotalMS / HandleCount in whole
// milliseconds (talk + hold + after-call work per handled call, timed
// at the wrap-up's end: Genesys' definition).
func (c *Counters) AHTMS() int64 { return divRound(c.HandleTotalMS, c.HandleCount) }

// OccupancyPct is 100·(TalkMS+HoldMS+ACWStateMS) / (TalkMS+HoldMS+
// ACWStateMS+ReadyMS+RingingMS) in hundredths of a percent: handling
// time over handling plus available time (Amazon Connect's occupancy;
// not-ready time is outside both).
func (c *Counters) OccupancyPct() int64 {
	h := c.TalkMS + c.HoldMS + c.ACWStateMS
	return divRound(10000*h, h+c.ReadyMS+c.RingingMS)
}

// NotReadyPct is 100·NotReadyMS/WorkMS in hundredths of a percent.
func (c *Counters) NotReadyPct() int64 { return divRound(10000*c.NotReadyMS, c.WorkMS) }

// ACWCodedPct is 100·ACWCodedCount/ACWCount in hundredths of a percent
// (ACW compliance: the share of wrap-ups whose outcome was coded).
func (c *Counters) ACWCodedPct() int64 { return divRound(10000*c.ACWCodedCount, c.ACWCount) }

// A DerivedField is one value computed from Counters, as records and
// Redis hashes carry it: Value is scaled by 10^Places.
type DerivedField struct {
	Name   string
	Places int
	Value  func(*Counters) int64
}

// DerivedFields are the derived values in record order.
var DerivedFields = [...]DerivedField{
	{"acw_avg_ms", 0, (*Counters).ACWAvgMS},
	{"acw_per_call_ms", 0, (*Counters).ACWPerCallMS},
	{"acw_pct_of_work", 2, (*Counters).ACWPctOfWork},
	{"acw_pct_of_handle", 2, (*Counters).ACWPctOfHandle},
	{"overrun_rate", 4, (*Counters).OverrunRate},
	{"aht_ms", 0, (*Counters).AHTMS},
	{"occupancy_pct", 2, (*Counters).OccupancyPct},
	{"not_ready_pct", 2, (*Counters).NotReadyPct},
	{"acw_coded_pct", 2, (*Counters).ACWCodedPct},
}

func divRound(n, d int64) int64 {
	if d == 0 {
		return 0
	}
	return (2*n + d) / (2 * d)
}

// Interval holds one scope/key's metrics for one tumbling window
// [Start, End) aligned to the Unix epoch.
type Interval struct {
	Scope  Scope
	Key    string
	Window time.Duration
	Start  int64
	End    int64
	Counters
	// Reasons is the not-ready time by reason (agent, team and center
	// scopes; nil for queues), by name: every reason the engine kept.
	// The record (AppendJSON) and Redis name at most MaxReasons of them
	// (see CapReasons).
	Reasons []ReasonMS
}

// ReasonMS is the not-ready time of one reason in an interval.
type ReasonMS struct {
	Reason string
	MS     int64
}

// Not-ready reason names of a breakdown.
const (
	// NoReason is the reason of not-ready time whose event gave none.
	NoReason = "none"
	// OtherReason holds the time of the reasons past the MaxReasons
	// largest.
	OtherReason = "other"
	// MaxReasons is how many reasons a breakdown names: a feed with
	// free-text reasons cannot grow it without bound.
	MaxReasons = 32
)

// SortedReasons returns m's reasons by name, zero times left out.
func SortedReasons(m map[string]int64) []ReasonMS {
	out := make([]ReasonMS, 0, len(m))
	for r, ms := range m {
		if ms != 0 {
			out = append(out, ReasonMS{r, ms})
		}
	}
	slices.SortFunc(out, func(x, y ReasonMS) int { return strings.Compare(x.Reason, y.Reason) })
	return out
}

// CapReasons returns rs (distinct reasons) as records and Redis hold
// them, by name: the MaxReasons largest (by time, then name), and the
// time of all others summed as OtherReason (with any time rs already
// holds as "other"). Zero times are left out.
func CapReasons(rs []ReasonMS) []ReasonMS {
	all := make([]ReasonMS, 0, len(rs))
	var other int64
	for _, x := range rs {
		switch {
		case x.MS == 0:
		case x.Reason == OtherReason:
			other += x.MS
		default:
			all = append(all, x)
		}
	}
	if len(all) > MaxReasons {
		slices.SortFunc(all, func(x, y ReasonMS) int {
			if x.MS != y.MS {
				return cmp.Compare(y.MS, x.MS)
			}
			return strings.Compare(x.Reason, y.Reason)
		})
		for _, r := range all[MaxReasons:] {
			other += r.MS
		}
		all = all[:MaxReasons]
	}
	if other != 0 {
		all = append(all, ReasonMS{OtherReason, other})
	}
	slices.SortFunc(all, func(x, y ReasonMS) int { return strings.Compare(x.Reason, y.Reason) })
	return all
}

// IntervalID is a stable id: scope:key:window_start_ms.
func (iv *Interval) IntervalID() string {
	return iv.Scope.String() + ":" + iv.Key + ":" + strconv.FormatInt(iv.Start, 10)
}

// FormatWindow renders a window length compactly: 15m, 1h, 30s, 500ms.
func FormatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// AppendJSON appends the interval as one JSON object (no newline). Derived
// percentages are written with two decimals, overrun_rate (a 0–1 fraction)
// with four.
func (iv *Interval) AppendJSON(b []byte) []byte {
	o := openObject(b, TypeInterval)
	o.str("scope", iv.Scope.String())
	o.str("key", iv.Key)
	o.str("window", FormatWindow(iv.Window))
	o.time("start", iv.Start)
	o.time("end", iv.End)
	c := &iv.Counters
	for k, p := range c.Fields() {
		o.int(CounterNames[k], *p)
	}
	for _, d := range DerivedFields {
		if d.Places == 0 {
			o.int(d.Name, d.Value(c))
		} else {
			o.fixed(d.Name, d.Value(c), d.Places)
		}
	}
	if iv.Scope != ScopeQueue {
		o.key("reasons")
		o.b = append(o.b, '{')
		for i, x := range CapReasons(iv.Reasons) {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = AppendString(o.b, x.Reason) // free text: escaped
			o.b = append(o.b, ':')
			o.b = strconv.AppendInt(o.b, x.MS, 10)
		}
		o.b = append(o.b, '}')
	}
	return o.close()
}

// OpenSegment is a wrap-up still open at the end of input.
type OpenSegment struct {
	AgentID AgentID
	CallID  string
	Team    string
	Queue   string
	Start   int64
}

// AppendJSON appends the open segment as one JSON object (no newline).
func (s *OpenSegment) AppendJSON(b []byte) []byte {
	o := openObject(b, TypeOpen)
	o.str("agent_id", s.AgentID)
	o.str("call_id", s.CallID)
	o.str("team", s.Team)
	o.str("queue", s.Queue)
	o.time("start", s.Start)
	return o.close()
}

// MaxRawBytes bounds the raw input copied into a rejected record.
const MaxRawBytes = 512

// Rejected reports an input line or message that was not applied.
type Rejected struct {
	Line   int64  // 1-based line number (file) or offset (Kafka)
	Reason string // ReasonMalformed, ReasonInvalid or ReasonLate
	Error  string // human message naming the field
	Raw    []byte // the input, cut to MaxRawBytes
}

// AppendJSON appends the rejection as one JSON object (no newline).
func (r *Rejected) AppendJSON(b []byte) []byte {
	o := openObject(b, TypeRejected)
	o.int("line", r.Line)
	o.str("reason", r.Reason)
	o.str("error", r.Error)
	o.key("raw")
	o.b = AppendString(o.b, TruncateRaw(r.Raw))
	return o.close()
}

// TruncateRaw cuts b to at most MaxRawBytes without splitting a UTF-8
// sequence.
func TruncateRaw(b []byte) []byte {
	if len(b) <= MaxRawBytes {
		return b
	}
	n := MaxRawBytes
	for n > MaxRawBytes-4 && n > 0 && b[n]&0xC0 == 0x80 {
		n--
	}
	return b[:n]
}

// Summary counts what one run read and did with it.
type Summary struct {
	Read       int64 // non-blank lines or messages
	Applied    int64 // accepted events applied to the engine
	Duplicates int64 // dropped as repeats of an accepted event
	Malformed  int64
	Invalid    int64
	Late       int64
	Future     int64
	// IdleLogouts: working agents logged out for having no event for
	// the agent idle timeout (not inputs: outside the read total).
	IdleLogouts int64
	// MaxACWClosed: wrap-ups closed by max_acw, with no event to end
	// them (not inputs either).
	MaxACWClosed int64
	// Ignored: platform records that implied no event (heartbeats, other
	// products' events, …); Skipped, when an adapter read the input, what
	// it skipped by kind (records or the events within them), so that an
	// operator can see a feed being ignored.
	Ignored int64
	Skipped map[string]uint64
}

// AppendJSON appends the summary as one JSON object (no newline).
func (s *Summary) AppendJSON(b []byte) []byte {
	o := openObject(b, TypeSummary)
	o.int("read", s.Read)
	o.int("applied", s.Applied)
	o.int("duplicates", s.Duplicates)
	o.int("ignored", s.Ignored)
	o.key("rejected")
	o.b = append(o.b, '{')
	r := jsonObject{b: o.b}
	r.int(ReasonMalformed, s.Malformed)
	r.int(ReasonInvalid, s.Invalid)
	r.int(ReasonLate, s.Late)
	r.int(ReasonFuture, s.Future)
	o.b = append(r.b, '}')
	o.int("idle_logouts", s.IdleLogouts)
	o.int("max_acw_closed", s.MaxACWClosed)
	if s.Skipped != nil {
		o.key("skipped")
		o.b = append(o.b, '{')
		k := jsonObject{b: o.b}
		for _, kind := range slices.Sorted(maps.Keys(s.Skipped)) {
			k.int(kind, int64(s.Skipped[kind]))
		}
		o.b = append(k.b, '}')
	}
	return o.close()
}

// AgentState is an agent's live state after an applied event: what a
// wallboard shows per agent. Times are Unix ms (event time).
type AgentState struct {
	AgentID        AgentID
	State          State
	Since          int64  // when the current state began
	CallID         string // the call of the current state ("" for agent-level states)
	Team           string
	Queue          string // the current call's queue
	ACWStart       int64  // start of the open wrap-up; 0 when not in wrap-up
	SegmentID      string // id the open wrap-up's segment will have; "" when not in wrap-up
	WarnMS         int64  // the open wrap-up's warn threshold (ms); 0 when not in wrap-up
	OverrunMS      int64  // the open wrap-up's overrun threshold (ms); 0 when not in wrap-up
	Alerted        bool   // the open wrap-up's overrun alert has been raised
	LastACWMS      int64  // duration of the agent's last closed wrap-up; 0 before any
	LastACWOverrun bool   // whether that wrap-up overran
	Reason         string // the not-ready reason (state not_ready; "" otherwise)
	Name           string // the agent's display name ("": none given)
}
