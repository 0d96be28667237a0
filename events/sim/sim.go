// Package sim simulates a contact centre and writes its agents' call-state
// transitions as canonical events. It is seeded and reproducible: the same
// Config always gives the same lines, byte for byte.
//
// Agents work a shift: they log in, take calls (ringing → talking, some with
// hold → acw, mostly under 20 s with a tail past 30 s), take breaks
// (not_ready) and log out. Call arrivals follow a daily curve with morning
// and afternoon peaks. Arrival order can be disordered within a bound, and
// duplicates, late events and bad lines can be mixed in.
package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acwstream/acwstream/events"
)

// Config sets the simulation. Zero fields take the documented defaults.
type Config struct {
	Seed   uint64 // random seed; default 1
	Agents int    // agents on shift; default 50
	Teams  int    // teams the agents are spread over; default 5
	Queues int    // queues calls arrive on; default 4
	// Start is the simulated start, Unix ms; default 2026-11-22T08:00:00Z.
	Start int64
	// Duration is how much simulated time to cover; default 8h. Agents log
	// out at the end of their shift, close to Start+Duration.
	Duration time.Duration
	// MaxEvents stops the output after this many lines (0: no limit). When
	// set, shifts repeat so that the count is always reached.
	MaxEvents int
	// Disorder is the largest delay of an event's arrival behind its ts.
	// Events stay on time for any max_out_of_order ≥ Disorder. Default 0
	// (arrival in ts order); negative is invalid.
	Disorder time.Duration
	// DuplicateRate is the fraction of events delivered twice. Default 0.
	DuplicateRate float64
	// LateRate is the fraction of extra stray events whose ts is 60 s in the
	// past when they arrive, so they are rejected as late. Default 0.
	LateRate float64
	// BadRate is the fraction of extra lines that are malformed or invalid.
	BadRate float64
	// FlatLoad makes calls arrive at one rate whatever the time of day,
	// instead of following the daily curve: a test that starts its shift
	// at the wall clock gets the same volume at any hour.
	FlatLoad bool
	// MissRate is the fraction of offers the agent lets ring out: ringing,
	// then ready again without answering (a missed offer); the call is
	// not offered again. Canonical format only. Default 0.
	MissRate float64
	// Millis writes ts as integer Unix milliseconds instead of RFC 3339.
	Millis bool
	// Format is the output format, one of Formats: "canonical" (default,
	// also "") or a platform's records, rendered from the same scenario
	// as that platform reports it. Stray late events (LateRate) are
	// canonical only; bad lines are the format's own.
	Format string
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.Agents < 0 || c.Teams < 0 || c.Queues < 0:
		return errors.New("agents, teams and queues must not be negative")
	case c.Duration < 0:
		return errors.New("duration must not be negative")
	case c.Disorder < 0:
		return errors.New("disorder must not be negative")
	case c.DuplicateRate < 0 || c.DuplicateRate > 1 || c.LateRate < 0 || c.LateRate > 1 || c.BadRate < 0 || c.BadRate > 1 ||
		c.MissRate < 0 || c.MissRate > 1:
		return errors.New("rates must be between 0 and 1")
	case c.MissRate > 0 && c.Format != "" && c.Format != "canonical":
		return errors.New("missed offers are written in the canonical format only")
	case c.MaxEvents < 0:
		return errors.New("max events must not be negative")
	case c.Format != "" && !slices.Contains(Formats, c.Format):
		return errors.New("format must be one of " + strings.Join(Formats, ", "))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Agents == 0 {
		c.Agents = 50
	}
	if c.Teams == 0 {
		c.Teams = 5
	}
	if c.Queues == 0 {
		c.Queues = 4
	}
	if c.Start == 0 {
		c.Start = 1795334400000 // 2026-11-22T08:00:00Z
	}
	if c.Duration == 0 {
		c.Duration = 8 * time.Hour
	}
	return c
}

var (
	queueNames   = []string{"sales", "support", "billing", "retention", "vip", "tech", "claims", "general"}
	dispositions = []string{"resolved", "callback", "sale", "escalated", "info", "no_action"}
	breakReasons = []string{"break", "lunch", "training", "meeting"}
	// given and family names of the agents' display names (agent_name)
	givenNames  = []string{"Alex", "Sam", "Priya", "Jonas", "Maria", "Tomás", "Aiko", "Fatima", "Liam", "Chloé", "Omar", "Ingrid", "Kwame"}
	familyNames = []string{"Moreau", "Okafor", "Lindqvist", "Tanaka", "Silva", "Novak", "Haddad", "O'Brien", "Kowalski", "Rossi", "Nguyen"}
)

type simAgent struct {
	id      string
	n       int // its index, for its display name
	team    string
	next    int64 // ts of its next event
	step    int   // position in the call cycle
	call    string
	queue   string
	shiftAt int64 // when it logs out
	calls   int
	holds   int
	last    events.Event // the last event, as rendered
}

type pending struct {
	arrival int64
	seq     uint64
	line    []byte
	key     string // the agent's id ("unparsable" for a bad line)
	ts      int64  // the event's ts
}

// Generator produces the lines. Not safe for concurrent use.
type Generator struct {
	cfg    Config
	rng    *rand.Rand
	agents []*simAgent
	agentQ []int // heap of agent indexes by next
	out    []pending
	seq    uint64
	count  int
	round  int64
	callN  int64
	evN    int64
	done   bool
	rend   renderer // nil: canonical
	recs   [][]byte
	lastP  pending // the last line Next returned
}

// New returns a generator for cfg.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), rend: newRenderer(cfg.Format)}
	g.startShift(cfg.Start)
	return g, nil
}

// displayName is agent i's display name: a given and a family name (the
// lists' lengths are coprime, so the first 143 agents differ).
func displayName(i int) string {
	return givenNames[i%len(givenNames)] + " " + familyNames[i%len(familyNames)]
}

func (g *Generator) startShift(at int64) {
	g.agents = g.agents[:0]
	g.agentQ = g.agentQ[:0]
	end := at + g.cfg.Duration.Milliseconds()
	for i := 0; i < g.cfg.Agents; i++ {
		a := &simAgent{
			id:   "agent-" + strconv.Itoa(i+1),
			n:    i,
			team: "team-" + strconv.Itoa(i%g.cfg.Teams+1),
			// log in over the first 10 minutes (or 5% of a short day)
			next:    at + g.rng.Int64N(max(1, min(600000, g.cfg.Duration.Milliseconds()/20))),
			shiftAt: end - g.rng.Int64N(max(1, min(300000, g.cfg.Duration.Milliseconds()/40))),
		}
		g.agents = append(g.agents, a)
		g.agentQ = append(g.agentQ, i)
		g.up(len(g.agentQ) - 1)
	}
}

func (g *Generator) less(i, j int) bool {
	a, b := g.agents[g.agentQ[i]], g.agents[g.agentQ[j]]
	if a.next != b.next {
		return a.next < b.next
	}
	return g.agentQ[i] < g.agentQ[j]
}

func (g *Generator) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !g.less(i, p) {
			return
		}
		g.agentQ[i], g.agentQ[p] = g.agentQ[p], g.agentQ[i]
		i = p
	}
}

func (g *Generator) down(i int) {
	n := len(g.agentQ)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && g.less(r, l) {
			m = r
		}
		if !g.less(m, i) {
			return
		}
		g.agentQ[i], g.agentQ[m] = g.agentQ[m], g.agentQ[i]
		i = m
	}
}

// load is the call-arrival multiplier by time of day (UTC hours of the
// simulated clock): peaks around 10:00 and 15:00.
func load(ts int64) float64 {
	h := float64(ts%86400000) / 3600000
	return 0.35 + math.Exp(-(h-10)*(h-10)/3) + 0.8*math.Exp(-(h-15)*(h-15)/4)
}

// lognormal returns a duration in ms with the given median and sigma.
func (g *Generator) lognormal(medianMS float64, sigma float64) int64 {
	return max(1, int64(medianMS*math.Exp(sigma*g.rng.NormFloat64())))
}

// Next returns the next line (without newline), or nil at the end. The
// slice is valid until the next call.
func (g *Generator) Next() []byte {
	for {
		if len(g.out) > 0 && (g.done || g.out[0].arrival <= g.now()) {
			p := g.popOut()
			if g.cfg.MaxEvents > 0 && g.count >= g.cfg.MaxEvents {
				return nil
			}
			g.count++
			g.lastP = p
			return p.line
		}
		if g.done {
			return nil
		}
		g.step()
	}
}

// Key is the agent_id of the line Next returned last (its Kafka key), or
// "unparsable" for a bad line.
func (g *Generator) Key() string { return g.lastP.key }

// TS is the event time (Unix ms) of the line Next returned last.
func (g *Generator) TS() int64 { return g.lastP.ts }

func (g *Generator) now() int64 {
	if len(g.agentQ) == 0 {
		return math.MaxInt64
	}
	return g.agents[g.agentQ[0]].next
}

// step emits the next event of the agent that is due first.
func (g *Generator) step() {
	if g.cfg.MaxEvents > 0 && g.count+len(g.out) >= g.cfg.MaxEvents+1024 {
		g.done = true
		return
	}
	if len(g.agentQ) == 0 {
		if g.cfg.MaxEvents > 0 && g.count+len(g.out) < g.cfg.MaxEvents {
			g.round++
			g.startShift(g.cfg.Start + g.round*86400000)
			return
		}
		g.done = true
		return
	}
	a := g.agents[g.agentQ[0]]
	t := a.next
	ev := events.Event{AgentID: a.id, TS: t, Team: a.team}
	var wait int64
	switch {
	case a.step == 0: // log in, with the agent's display name
		ev.State = events.StateReady
		ev.AgentName = displayName(a.n)
		wait = g.idle(t)
		a.step = 1
	case a.step == 1 && t >= a.shiftAt:
		ev.State = events.StateLoggedOut
		a.step = -1
	case a.step == 1: // a call arrives
		g.callN++
		a.call = "call-" + strconv.FormatInt(g.callN, 10)
		a.queue = queueNames[g.rng.IntN(min(g.cfg.Queues, len(queueNames)))]
		ev.State, ev.CallID, ev.Queue, ev.Channel = events.StateRinging, a.call, a.queue, "voice"
		wait = 2000 + g.rng.Int64N(8000)
		a.step = 2
		a.holds = 0
	case a.step == 2 && a.holds == 0 && g.cfg.MissRate > 0 && g.rng.Float64() < g.cfg.MissRate: // not answered
		ev.State = events.StateReady
		wait = g.idle(t)
		a.step = 1
	case a.step == 2: // answered, or back from hold
		ev.State, ev.CallID = events.StateTalking, a.call
		wait = g.lognormal(150000, 0.7)
		a.step = 3
	case a.step == 3 && a.holds == 0 && g.rng.Float64() < 0.15: // hold
		ev.State, ev.CallID = events.StateHold, a.call
		a.holds++
		wait = 10000 + g.rng.Int64N(50000)
		a.step = 2
	case a.step == 3 && g.rng.Float64() < 0.92: // hang up into wrap-up
		ev.State, ev.CallID = events.StateACW, a.call
		if g.rng.Float64() < 0.7 {
			ev.Disposition = dispositions[g.rng.IntN(len(dispositions))]
		}
		// median 14 s; about 10% past 30 s
		wait = g.lognormal(14000, 0.6)
		a.step = 4
	case a.step == 3 || a.step == 4 || a.step == 5: // become available again
		a.calls++
		if a.step != 5 && g.rng.Float64() < 0.08 {
			ev.State = events.StateNotReady
			ev.Reason = breakReasons[g.rng.IntN(len(breakReasons))]
			wait = 300000 + g.rng.Int64N(600000)
			a.step = 5
		} else {
			ev.State = events.StateReady
			wait = g.idle(t)
			a.step = 1
		}
	}
	g.evN++
	ev.EventID = a.id + "-" + strconv.FormatInt(g.evN, 36)
	if g.rend != nil {
		if ev.State.CallLevel() {
			ev.Queue = a.queue
		}
		g.recs = g.rend.render(&ev, &a.last, g.recs[:0])
		a.last = ev
		arr := g.arrival(t)
		arr2, dup := arr, g.rng.Float64() < g.cfg.DuplicateRate
		if dup {
			arr2 = g.arrival(t)
		}
		for _, r := range g.recs {
			g.emitRaw(r, arr, a.id, t)
			if dup {
				g.emitRaw(r, arr2, a.id, t)
			}
		}
		g.rng.Float64() // the stray's draw, so that both forms stay in step
	} else {
		g.emit(&ev, g.arrival(t))
		if g.rng.Float64() < g.cfg.DuplicateRate {
			g.emit(&ev, g.arrival(t))
		}
		if g.rng.Float64() < g.cfg.LateRate {
			stray := events.Event{AgentID: a.id, State: events.StateNotReady, TS: t - 60000, Team: a.team, Reason: "stray", EventID: "late-" + strconv.FormatInt(g.evN, 36)}
			g.emit(&stray, t)
		}
	}
	if g.rng.Float64() < g.cfg.BadRate {
		if g.rend != nil {
			g.emitRaw(g.rend.bad(t, g.rng.IntN(3)), t, "unparsable", t) // the same draws as badLine
		} else {
			g.emitRaw(g.badLine(t), t, "unparsable", t)
		}
	}
	if a.step < 0 {
		// logged out: remove from the queue
		last := len(g.agentQ) - 1
		g.agentQ[0] = g.agentQ[last]
		g.agentQ = g.agentQ[:last]
		g.down(0)
		return
	}
	a.next = t + max(1, wait)
	g.down(0)
}

// idle is the time an available agent waits for the next call.
func (g *Generator) idle(t int64) int64 {
	l := 1.0
	if !g.cfg.FlatLoad {
		l = load(t)
	}
	return max(500, int64(g.rng.ExpFloat64()*40000/l))
}

func (g *Generator) arrival(ts int64) int64 {
	if g.cfg.Disorder <= 0 {
		return ts
	}
	return ts + g.rng.Int64N(g.cfg.Disorder.Milliseconds()+1)
}

func (g *Generator) badLine(t int64) []byte {
	switch g.rng.IntN(3) {
	case 0:
		return []byte(`{"agent_id":"agent-1","state":"wrapup","ts":` + strconv.FormatInt(t, 10) + `}`)
	case 1:
		return []byte(`{"agent_id":"agent-1","state":"acw","ts":` + strconv.FormatInt(t, 10) + `}`)
	}
	return []byte(`{"agent_id":"agent-1","state":`)
}

func (g *Generator) emit(ev *events.Event, arrival int64) {
	g.emitRaw(AppendEvent(nil, ev, g.cfg.Millis), arrival, ev.AgentID, ev.TS)
}

func (g *Generator) emitRaw(line []byte, arrival int64, key string, ts int64) {
	g.seq++
	g.out = append(g.out, pending{arrival: arrival, seq: g.seq, line: line, key: key, ts: ts})
	for i := len(g.out) - 1; i > 0; {
		p := (i - 1) / 2
		if !outLess(g.out[i], g.out[p]) {
			break
		}
		g.out[i], g.out[p] = g.out[p], g.out[i]
		i = p
	}
}

func outLess(a, b pending) bool {
	if a.arrival != b.arrival {
		return a.arrival < b.arrival
	}
	return a.seq < b.seq
}

func (g *Generator) popOut() pending {
	top := g.out[0]
	n := len(g.out) - 1
	g.out[0] = g.out[n]
	g.out = g.out[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && outLess(g.out[r], g.out[l]) {
			m = r
		}
		if !outLess(g.out[m], g.out[i]) {
			break
		}
		g.out[i], g.out[m] = g.out[m], g.out[i]
		i = m
	}
	return top
}

// AppendEvent appends ev as a canonical JSON object (no newline); with
// millis the ts is integer Unix milliseconds, else RFC 3339 UTC.
func AppendEvent(b []byte, ev *events.Event, millis bool) []byte {
	b = append(b, `{"agent_id":`...)
	b = events.AppendString(b, ev.AgentID)
	b = append(b, `,"state":"`...)
	b = append(b, ev.State.String()...)
	b = append(b, `","ts":`...)
	if millis {
		b = strconv.AppendInt(b, ev.TS, 10)
	} else {
		b = append(b, '"')
		b = events.AppendTime(b, ev.TS)
		b = append(b, '"')
	}
	for _, f := range [...]struct{ k, v string }{
		{"call_id", ev.CallID}, {"event_id", ev.EventID}, {"team", ev.Team}, {"queue", ev.Queue},
		{"channel", ev.Channel}, {"disposition", ev.Disposition}, {"reason", ev.Reason}, {"agent_name", ev.AgentName},
	} {
		if f.v != "" {
			b = append(b, ',', '"')
			b = append(b, f.k...)
			b = append(b, '"', ':')
			b = events.AppendString(b, f.v)
		}
	}
	return append(b, '}')
}
