package main

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/acwstream/acwstream/processor"
)

// thresholdPair is one team's or queue's thresholds in the config file;
// an absent value falls back to the default threshold.
type thresholdPair struct {
	Warn    duration `yaml:"warn"`
	Overrun duration `yaml:"overrun"`
}

type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like 30s, got %q", n.Line, n.Value)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: want a duration like 30s, got %q", n.Line, s)
	}
	*d = duration(v)
	return nil
}

// engineFlags are the engine settings shared by replay, run and demo.
type engineFlags struct {
	cfg processor.Config
}

func (f *engineFlags) register(ss *settings) {
	c := &f.cfg
	ss.dur(&c.MaxOutOfOrder, "max-out-of-order", "engine.max_out_of_order", processor.DefaultMaxOutOfOrder.String(),
		"how far behind the partition's largest ts an event may arrive and still be applied in order (duration)", time.Millisecond)
	ss.dur(&c.Default.Warn, "warn", "engine.thresholds.warn", processor.DefaultWarn.String(),
		"default warn threshold: a longer wrap-up is flagged warn (duration)", time.Millisecond)
	ss.dur(&c.Default.Overrun, "overrun", "engine.thresholds.overrun", processor.DefaultOverrun.String(),
		"default overrun threshold: a longer wrap-up is an overrun and alerts (duration)", time.Millisecond)
	ss.dur(&c.Window, "window", "engine.window", processor.DefaultWindow.String(),
		"interval length, aligned to the Unix epoch (duration)", time.Second)
	ss.dur(&c.DedupHorizon, "dedup-horizon", "engine.dedup_horizon", processor.DefaultDedupHorizon.String(),
		"how long behind the watermark event keys are remembered to drop redeliveries (duration)", time.Second)
	ss.dur(&c.AgentIdleTimeout, "agent-idle-timeout", "engine.agent_idle_timeout", processor.DefaultAgentIdleTimeout.String(),
		"an agent with no event for this long (event time) is logged out at its last event plus this, and forgotten (duration)", time.Minute)
	ss.dur(&c.MaxFuture, "max-future", "engine.max_future", "0s",
		"reject as future an event dated more than this ahead of the largest ts before it (replay) or of its Kafka record's timestamp (run); 0 disables (duration)", 0)
	ss.dur(&c.MaxACW, "max-acw", "engine.max_acw", "0s",
		"close a wrap-up still open this long after it began, as if the agent had become ready then (segment closed_by max_acw): for feeds that lose the record ending a wrap-up; longer than every overrun threshold; an adapter section's max_acw wins; 0 disables (duration)", 0)
	ss.strList(&c.UncodedDispositions, "uncoded-dispositions", "engine.uncoded_dispositions", "",
		"dispositions that do not count as coded (ACW compliance), comma-separated, e.g. ININ-WRAP-UP-TIMEOUT: a wrap-up is coded when its disposition is non-empty and not one of these", false)
	if ss.extra == nil {
		ss.extra = map[string]func(*yaml.Node) error{}
	}
	byKind := func(dst *map[string]processor.Thresholds) func(n *yaml.Node) error {
		return func(n *yaml.Node) error {
			var m map[string]thresholdPair
			if err := n.Decode(&m); err != nil {
				return fmt.Errorf("want a map of name: {warn: 20s, overrun: 30s}: %v", err)
			}
			*dst = make(map[string]processor.Thresholds, len(m))
			for k, v := range m {
				(*dst)[k] = processor.Thresholds{Warn: time.Duration(v.Warn), Overrun: time.Duration(v.Overrun)}
			}
			return nil
		}
	}
	ss.extra["engine.thresholds.teams"] = byKind(&c.ByTeam)
	ss.extra["engine.thresholds.queues"] = byKind(&c.ByQueue)
}

// config returns the engine configuration with the input adapter's
// settings applied (its section's max_acw), validated.
func (f *engineFlags) config(input *adapterFlags) (processor.Config, error) {
	c := input.engineConfig(f.cfg)
	if err := c.Validate(); err != nil {
		if c.MaxACW != f.cfg.MaxACW {
			return c, fmt.Errorf("%w: adapters.%s: %v", errConfig, input.format, err)
		}
		return c, fmt.Errorf("%w: engine: %v", errConfig, err)
	}
	return c, nil
}
