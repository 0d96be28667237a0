package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/asterisk"
	"github.com/acwstream/acwstream/events/connect"
	"github.com/acwstream/acwstream/events/freeswitch"
	"github.com/acwstream/acwstream/events/genesys"
	"github.com/acwstream/acwstream/events/twilio"
	"github.com/acwstream/acwstream/processor"
)

// inputFormats are the values of --input-format: canonical JSON, or a
// platform's own records read by its adapter.
var inputFormats = []string{"canonical", "connect", "twilio", "asterisk", "freeswitch", "genesys"}

// adapterFlags select the input format and hold each adapter's settings,
// which come from the config file's adapters section.
type adapterFlags struct {
	format   string
	connect  connect.Config
	asterisk asterisk.Config
	twilio   twilio.Config
	fs       freeswitch.Config
	genesys  genesys.Config
	// limits holds the max_acw and stuck_after of each adapter section,
	// by format: they apply when that format is selected.
	limits map[string]adapterLimits
}

// adapterLimits are the settings every adapter section may have: how
// long an agent may stay in wrap-up (engine.max_acw) or in one call state
// (pipeline.stuck_after) on that platform's feed.
type adapterLimits struct {
	MaxACW     duration `yaml:"max_acw"`
	StuckAfter duration `yaml:"stuck_after"`
}

// withLimits wraps an adapter section's reader: it takes the common
// keys (adapterLimits) out of the section first.
func (f *adapterFlags) withLimits(format string, read func(*yaml.Node) error) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		if n.Kind == yaml.MappingNode {
			var lim adapterLimits
			rest := n.Content[:0:0]
			for i := 0; i+1 < len(n.Content); i += 2 {
				var dst *duration
				switch n.Content[i].Value {
				case "max_acw":
					dst = &lim.MaxACW
				case "stuck_after":
					dst = &lim.StuckAfter
				default:
					rest = append(rest, n.Content[i], n.Content[i+1])
					continue
				}
				if err := n.Content[i+1].Decode(dst); err != nil {
					return fmt.Errorf("%s: %v", n.Content[i].Value, err)
				}
			}
			if f.limits == nil {
				f.limits = map[string]adapterLimits{}
			}
			f.limits[format] = lim
			c := *n
			c.Content = rest
			n = &c
		}
		return read(n)
	}
}

// engineConfig is c with the selected adapter's max_acw, when its
// section sets one.
func (f *adapterFlags) engineConfig(c processor.Config) processor.Config {
	if lim := f.limits[f.format]; lim.MaxACW != 0 {
		c.MaxACW = time.Duration(lim.MaxACW)
	}
	return c
}

// stuckAfter is d, or the selected adapter's stuck_after when its
// section sets one.
func (f *adapterFlags) stuckAfter(d time.Duration) time.Duration {
	if lim := f.limits[f.format]; lim.StuckAfter != 0 {
		return time.Duration(lim.StuckAfter)
	}
	return d
}

func (f *adapterFlags) register(ss *settings, help string) {
	ss.str(&f.format, "input-format", "kafka.input_format", "canonical", help, inputFormats...)
	if ss.extra == nil {
		ss.extra = map[string]func(*yaml.Node) error{}
	}
	ss.extra["adapters.connect"] = f.withLimits("connect", func(n *yaml.Node) error {
		var c struct {
			Statuses  map[string]string `yaml:"statuses"`
			AgentID   string            `yaml:"agent_id"`
			TeamLevel int               `yaml:"team_level"`
		}
		if err := decodeStrict(n, &c); err != nil {
			return err
		}
		st, err := agentStates(c.Statuses)
		if err != nil {
			return fmt.Errorf("statuses: %v", err)
		}
		if c.AgentID != "" && c.AgentID != "arn" && c.AgentID != "username" {
			return fmt.Errorf("agent_id: want arn or username, got %q", c.AgentID)
		}
		if c.TeamLevel < -1 || c.TeamLevel > 5 {
			return fmt.Errorf("team_level: want -1 (none), 0 (deepest) or 1-5, got %d", c.TeamLevel)
		}
		f.connect = connect.Config{Statuses: st, AgentID: c.AgentID, TeamLevel: c.TeamLevel}
		return nil
	})
	ss.extra["adapters.twilio"] = f.withLimits("twilio", func(n *yaml.Node) error {
		var c struct {
			Activities           map[string]string `yaml:"activities"`
			AgentID              string            `yaml:"agent_id"`
			TeamAttribute        string            `yaml:"team_attribute"`
			DispositionAttribute string            `yaml:"disposition_attribute"`
			Channels             []string          `yaml:"channels"`
		}
		if err := decodeStrict(n, &c); err != nil {
			return err
		}
		st, err := agentStates(c.Activities)
		if err != nil {
			return fmt.Errorf("activities: %v", err)
		}
		if c.AgentID != "" && c.AgentID != "sid" && c.AgentID != "name" {
			return fmt.Errorf("agent_id: want sid or name, got %q", c.AgentID)
		}
		f.twilio = twilio.Config{Activities: st, AgentID: c.AgentID, TeamAttribute: c.TeamAttribute,
			DispositionAttribute: c.DispositionAttribute, Channels: c.Channels}
		return nil
	})
	ss.extra["adapters.freeswitch"] = f.withLimits("freeswitch", func(n *yaml.Node) error {
		var c struct {
			WrapUpTime  duration            `yaml:"wrap_up_time"`
			WrapUpTimes map[string]duration `yaml:"wrap_up_times"`
			Agents      map[string]string   `yaml:"agents"`
			Teams       map[string]string   `yaml:"teams"`
		}
		if err := decodeStrict(n, &c); err != nil {
			return err
		}
		f.fs = freeswitch.Config{WrapUpTime: time.Duration(c.WrapUpTime), WrapUpTimes: durations(c.WrapUpTimes), Agents: c.Agents, Teams: c.Teams}
		return nil
	})
	ss.extra["adapters.genesys"] = f.withLimits("genesys", func(n *yaml.Node) error {
		var c struct {
			MediaTypes []string          `yaml:"media_types"`
			Teams      map[string]string `yaml:"teams"`
			Queues     map[string]string `yaml:"queues"`
			Names      map[string]string `yaml:"names"`
		}
		if err := decodeStrict(n, &c); err != nil {
			return err
		}
		f.genesys = genesys.Config{MediaTypes: c.MediaTypes, Teams: c.Teams, Queues: c.Queues, Names: c.Names}
		return nil
	})
	ss.extra["adapters.asterisk"] = f.withLimits("asterisk", func(n *yaml.Node) error {
		var c struct {
			WrapupTime    duration                       `yaml:"wrapuptime"`
			Queues        map[string]duration            `yaml:"queues"`
			Members       map[string]map[string]duration `yaml:"members"`
			WrapupReasons []string                       `yaml:"wrapup_reasons"`
			Agents        map[string]string              `yaml:"agents"`
			Teams         map[string]string              `yaml:"teams"`
			TimeZone      string                         `yaml:"time_zone"`
		}
		if err := decodeStrict(n, &c); err != nil {
			return err
		}
		a := asterisk.Config{WrapupTime: time.Duration(c.WrapupTime), Queues: durations(c.Queues),
			WrapupReasons: c.WrapupReasons, Agents: c.Agents, Teams: c.Teams, Members: map[string]map[string]time.Duration{}}
		for q, m := range c.Members {
			a.Members[q] = durations(m)
		}
		if c.TimeZone != "" {
			loc, err := time.LoadLocation(c.TimeZone)
			if err != nil {
				return fmt.Errorf("time_zone: %v", err)
			}
			a.Location = loc
		}
		f.asterisk = a
		return nil
	})
}

// newAdapter returns the adapter of the selected format (nil for
// canonical input).
func (f *adapterFlags) newAdapter() events.Adapter {
	switch f.format {
	case "connect":
		return connect.New(f.connect)
	case "asterisk":
		return asterisk.New(f.asterisk)
	case "twilio":
		return twilio.New(f.twilio)
	case "freeswitch":
		return freeswitch.New(f.fs)
	case "genesys":
		return genesys.New(f.genesys)
	}
	return nil
}

// factory returns what pipeline.Config.NewAdapter wants (nil for
// canonical input): a new adapter per partition.
func (f *adapterFlags) factory() func() events.Adapter {
	if f.newAdapter() == nil {
		return nil
	}
	return f.newAdapter
}

// decodeStrict decodes n into v (a pointer to a struct with yaml tags),
// rejecting keys v does not have: the error names the key, its line and
// the keys that are known.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind == yaml.MappingNode {
		t := reflect.TypeOf(v).Elem()
		var known []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			known = append(known, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(known, k.Value) {
				slices.Sort(known)
				return fmt.Errorf("line %d: unknown key %q (known here: %s)", k.Line, k.Value, strings.Join(known, ", "))
			}
		}
	}
	return n.Decode(v)
}

func durations(m map[string]duration) map[string]time.Duration {
	out := make(map[string]time.Duration, len(m))
	for k, v := range m {
		out[k] = time.Duration(v)
	}
	return out
}

// agentStates reads a map of platform status names to agent-level
// canonical states.
func agentStates(m map[string]string) (map[string]events.State, error) {
	out := make(map[string]events.State, len(m))
	for k, v := range m {
		st, ok := events.ParseState([]byte(v))
		if !ok || st.CallLevel() {
			return nil, fmt.Errorf("%s: want ready, not_ready or logged_out, got %q", k, v)
		}
		out[k] = st
	}
	return out, nil
}

// settings describes the selected adapter's settings ("" for canonical
// input), for the checkpoint settings record: maps print in key order.
func (f *adapterFlags) settings() string {
	switch f.format {
	case "connect":
		return fmt.Sprintf("%+v", f.connect)
	case "asterisk":
		return fmt.Sprintf("%+v", f.asterisk)
	case "twilio":
		return fmt.Sprintf("%+v", f.twilio)
	case "freeswitch":
		return fmt.Sprintf("%+v", f.fs)
	case "genesys":
		return fmt.Sprintf("%+v", f.genesys)
	}
	return ""
}
