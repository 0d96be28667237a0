// Package processor is the pure, deterministic ACW engine: event time,
// per-agent state, wrap-up segments, tumbling-window metrics, overrun
// alerts, and snapshot/restore.
//
// It imports only the standard library and package events. It never reads
// the clock, starts goroutines, logs or does I/O: time is an argument, so
// the same input always gives the same output. One Engine serves one
// partition (or one file) and is owned by one goroutine; it is not safe for
// concurrent use.
package processor

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Defaults of Config. A zero field means "use the default".
const (
	DefaultMaxOutOfOrder = 2 * time.Second
	DefaultWarn          = 20 * time.Second
	DefaultOverrun       = 30 * time.Second
	DefaultWindow        = 15 * time.Minute
	DefaultDedupHorizon  = 10 * time.Minute
	// DefaultAgentIdleTimeout is longer than any shift, so that only an
	// agent that has really gone (or a jump in event time) is logged out.
	DefaultAgentIdleTimeout = 12 * time.Hour
)

// Thresholds are a warn and an overrun limit for one wrap-up. A zero field
// is unset and falls back to the next level (queue → team → default).
type Thresholds struct {
	Warn    time.Duration // a wrap-up longer than this is flagged warn
	Overrun time.Duration // a wrap-up longer than this is an overrun and alerts
}

// Config configures an Engine. The zero value is valid and gives the
// documented defaults.
type Config struct {
	// MaxOutOfOrder is how far behind the largest accepted ts an event may
	// be and still count; older events are late. Default 2s.
	MaxOutOfOrder time.Duration
	// Window is the tumbling interval length, aligned to the Unix epoch.
	// Default 15m. Must be a whole number of milliseconds.
	Window time.Duration
	// DedupHorizon is how long, behind the watermark, event keys are kept to
	// drop redeliveries. Default 10m.
	DedupHorizon time.Duration
	// MaxFuture, when positive, rejects as Future every event dated more
	// than MaxFuture ahead of its reference time: the largest ts
	// accepted before it, or with MaxFutureByArrival the arrival time
	// given by SetArrival (events without one are not checked). A
	// rejected event is never applied and never moves the watermark.
	// Default 0: off.
	MaxFuture time.Duration
	// MaxFutureByArrival: see MaxFuture. The live pipeline sets it and
	// gives each Kafka record's timestamp as the arrival time.
	MaxFutureByArrival bool
	// AgentIdleTimeout: an agent with no event for this long (event time)
	// is logged out at its last event's ts + AgentIdleTimeout, exactly as
	// if a logged_out event without call_id had arrived then, and then
	// forgotten (dropped from memory and snapshots). It bounds the work
	// and memory of a jump in event time, and of agents that come and go,
	// by the live population. Default 12h; at least one minute.
	AgentIdleTimeout time.Duration
	// MaxACW, when positive, closes a wrap-up still open MaxACW after it
	// began, exactly as if a ready event without call_id had arrived
	// then (once the watermark passes it, like an event); its segment is
	// marked closed_by max_acw. It is for feeds that lose the record
	// ending a wrap-up, so that the agent does not stay in wrap-up for the
	// rest of the shift. It must be longer than every overrun threshold.
	// Default 0: off.
	MaxACW time.Duration
	// UncodedDispositions are dispositions that do not count as coded
	// (such as Genesys' ININ-WRAP-UP-TIMEOUT, set when the agent let
	// the wrap-up time out): a segment is coded when its disposition is
	// non-empty and not one of these.
	UncodedDispositions []string
	// Default thresholds; zero fields take DefaultWarn and DefaultOverrun.
	Default Thresholds
	// ByTeam and ByQueue override the default per team and per queue; a
	// queue's setting wins over a team's, field by field.
	ByTeam  map[string]Thresholds
	ByQueue map[string]Thresholds
}

func (c Config) withDefaults() Config {
	if c.MaxOutOfOrder == 0 {
		c.MaxOutOfOrder = DefaultMaxOutOfOrder
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.DedupHorizon == 0 {
		c.DedupHorizon = DefaultDedupHorizon
	}
	if c.AgentIdleTimeout == 0 {
		c.AgentIdleTimeout = DefaultAgentIdleTimeout
	}
	// Keys younger than the lateness bound must never be forgotten, or a
	// redelivery could be applied twice.
	c.DedupHorizon = max(c.DedupHorizon, c.MaxOutOfOrder)
	if c.Default.Warn == 0 {
		c.Default.Warn = DefaultWarn
	}
	if c.Default.Overrun == 0 {
		c.Default.Overrun = DefaultOverrun
	}
	return c
}

// Validate reports the first setting that is out of range, naming it.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxOutOfOrder < 0:
		return fmt.Errorf("max_out_of_order: must not be negative, got %s", c.MaxOutOfOrder)
	case c.MaxOutOfOrder%time.Millisecond != 0:
		return fmt.Errorf("max_out_of_order: must be whole milliseconds, got %s", c.MaxOutOfOrder)
	case c.Window < time.Second:
		return fmt.Errorf("window: must be at least 1s, got %s", c.Window)
	case c.Window%time.Millisecond != 0:
		return fmt.Errorf("window: must be whole milliseconds, got %s", c.Window)
	case c.DedupHorizon < 0 || c.DedupHorizon%time.Millisecond != 0:
		return fmt.Errorf("dedup_horizon: must be non-negative whole milliseconds, got %s", c.DedupHorizon)
	case c.MaxFuture < 0 || c.MaxFuture%time.Millisecond != 0:
		return fmt.Errorf("max_future: must be non-negative whole milliseconds, got %s", c.MaxFuture)
	case c.AgentIdleTimeout < time.Minute || c.AgentIdleTimeout%time.Millisecond != 0:
		return fmt.Errorf("agent_idle_timeout: must be whole milliseconds of at least 1m, got %s", c.AgentIdleTimeout)
	case c.MaxACW < 0 || c.MaxACW%time.Millisecond != 0:
		return fmt.Errorf("max_acw: must be non-negative whole milliseconds, got %s", c.MaxACW)
	}
	if err := c.Default.validate("thresholds"); err != nil {
		return err
	}
	for name, t := range c.ByTeam {
		if err := t.validate("thresholds.teams." + name); err != nil {
			return err
		}
	}
	for name, t := range c.ByQueue {
		if err := t.validate("thresholds.queues." + name); err != nil {
			return err
		}
	}
	if err := c.validateOrder(); err != nil {
		return err
	}
	return c.validateMaxACW()
}

// validateOrder refuses thresholds whose warn is not below their overrun,
// as they resolve for the default, each team, each queue and each queue
// with each team (a queue's setting wins field by field): such a wrap-up
// could never be flagged warn without overrunning.
func (c Config) validateOrder() error {
	check := func(where, team, queue string) error {
		w, o := c.thresholdsFor(team, queue)
		if w >= o {
			return fmt.Errorf("%s: warn %s must be shorter than overrun %s (set both where one is overridden)", where, time.Duration(w)*time.Millisecond, time.Duration(o)*time.Millisecond)
		}
		return nil
	}
	if err := check("thresholds", "", ""); err != nil {
		return err
	}
	teams, queues := slices.Sorted(maps.Keys(c.ByTeam)), slices.Sorted(maps.Keys(c.ByQueue))
	for _, t := range teams {
		if err := check("thresholds.teams."+t, t, ""); err != nil {
			return err
		}
	}
	for _, q := range queues {
		if err := check("thresholds.queues."+q, "", q); err != nil {
			return err
		}
		for _, t := range teams {
			if err := check("thresholds.queues."+q+" with thresholds.teams."+t, t, q); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Config) uncodedSet() map[string]bool {
	m := make(map[string]bool, len(c.UncodedDispositions))
	for _, d := range c.UncodedDispositions {
		m[d] = true
	}
	return m
}

// validateMaxACW refuses a MaxACW that would close a wrap-up before it
// could overrun: its alert could never fire.
func (c Config) validateMaxACW() error {
	if c.MaxACW == 0 {
		return nil
	}
	check := func(path string, overrun time.Duration) error {
		if overrun != 0 && c.MaxACW <= overrun {
			return fmt.Errorf("max_acw: %s must be longer than the overrun threshold %s (%s), or no wrap-up could overrun", c.MaxACW, path, overrun)
		}
		return nil
	}
	if err := check("thresholds.overrun", c.Default.Overrun); err != nil {
		return err
	}
	for _, m := range []struct {
		kind string
		ts   map[string]Thresholds
	}{{"teams", c.ByTeam}, {"queues", c.ByQueue}} {
		for _, name := range slices.Sorted(maps.Keys(m.ts)) {
			if err := check("thresholds."+m.kind+"."+name+".overrun", m.ts[name].Overrun); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t Thresholds) validate(path string) error {
	switch {
	case t.Warn < 0 || t.Warn%time.Millisecond != 0:
		return fmt.Errorf("%s.warn: must be positive whole milliseconds, got %s", path, t.Warn)
	case t.Overrun < 0 || t.Overrun%time.Millisecond != 0:
		return fmt.Errorf("%s.overrun: must be positive whole milliseconds, got %s", path, t.Overrun)
	}
	return nil
}

// thresholdsFor resolves the limits (in ms) for a wrap-up of queue and team:
// queue wins over team, team over the default, field by field.
func (c *Config) thresholdsFor(team, queue string) (warn, overrun int64) {
	w, o := c.Default.Warn, c.Default.Overrun
	if t, ok := c.ByTeam[team]; ok && team != "" {
		if t.Warn != 0 {
			w = t.Warn
		}
		if t.Overrun != 0 {
			o = t.Overrun
		}
	}
	if q, ok := c.ByQueue[queue]; ok && queue != "" {
		if q.Warn != 0 {
			w = q.Warn
		}
		if q.Overrun != 0 {
			o = q.Overrun
		}
	}
	return w.Milliseconds(), o.Milliseconds()
}
