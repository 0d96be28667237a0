package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/acwstream/acwstream/processor"
)

// fileConfig is the YAML config file. Durations are Go durations ("2s",
// "15m"). Unknown keys are an error, so typos do not pass silently.
type fileConfig struct {
	Engine engineFile `yaml:"engine"`
}

type engineFile struct {
	MaxOutOfOrder duration       `yaml:"max_out_of_order"`
	Window        duration       `yaml:"window"`
	DedupHorizon  duration       `yaml:"dedup_horizon"`
	Thresholds    thresholdsFile `yaml:"thresholds"`
}

type thresholdsFile struct {
	Warn    duration                 `yaml:"warn"`
	Overrun duration                 `yaml:"overrun"`
	Teams   map[string]thresholdPair `yaml:"teams"`
	Queues  map[string]thresholdPair `yaml:"queues"`
}

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

// loadConfigFile reads a YAML config file into an engine Config.
func loadConfigFile(path string) (processor.Config, error) {
	var cfg processor.Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	e := f.Engine
	cfg.MaxOutOfOrder = time.Duration(e.MaxOutOfOrder)
	cfg.Window = time.Duration(e.Window)
	cfg.DedupHorizon = time.Duration(e.DedupHorizon)
	cfg.Default = processor.Thresholds{Warn: time.Duration(e.Thresholds.Warn), Overrun: time.Duration(e.Thresholds.Overrun)}
	conv := func(m map[string]thresholdPair) map[string]processor.Thresholds {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string]processor.Thresholds, len(m))
		for k, v := range m {
			out[k] = processor.Thresholds{Warn: time.Duration(v.Warn), Overrun: time.Duration(v.Overrun)}
		}
		return out
	}
	cfg.ByTeam = conv(e.Thresholds.Teams)
	cfg.ByQueue = conv(e.Thresholds.Queues)
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// engineFlags are the engine settings shared by replay and run. A flag set
// on the command line wins over the config file.
type engineFlags struct {
	config        string
	maxOutOfOrder time.Duration
	warn          time.Duration
	overrun       time.Duration
	window        time.Duration
	dedupHorizon  time.Duration
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML config file (flags override it)")
	fs.DurationVar(&f.maxOutOfOrder, "max-out-of-order", processor.DefaultMaxOutOfOrder, "how far behind the largest ts an event may arrive before it is late")
	fs.DurationVar(&f.warn, "warn", processor.DefaultWarn, "default warn threshold: a wrap-up longer than this is flagged warn")
	fs.DurationVar(&f.overrun, "overrun", processor.DefaultOverrun, "default overrun threshold: a wrap-up longer than this is an overrun and alerts")
	fs.DurationVar(&f.window, "window", processor.DefaultWindow, "interval length, aligned to the Unix epoch")
	fs.DurationVar(&f.dedupHorizon, "dedup-horizon", processor.DefaultDedupHorizon, "how long behind the watermark event keys are remembered to drop redeliveries")
}

// build merges config file and flags (flags win when set explicitly).
func (f *engineFlags) build(fs *flag.FlagSet) (processor.Config, error) {
	var cfg processor.Config
	if f.config != "" {
		c, err := loadConfigFile(f.config)
		if err != nil {
			return cfg, err
		}
		cfg = c
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	pick := func(name string, flagVal time.Duration, dst *time.Duration) {
		if set[name] || *dst == 0 {
			*dst = flagVal
		}
	}
	pick("max-out-of-order", f.maxOutOfOrder, &cfg.MaxOutOfOrder)
	pick("warn", f.warn, &cfg.Default.Warn)
	pick("overrun", f.overrun, &cfg.Default.Overrun)
	pick("window", f.window, &cfg.Window)
	pick("dedup-horizon", f.dedupHorizon, &cfg.DedupHorizon)
	if cfg.MaxOutOfOrder <= 0 {
		return cfg, fmt.Errorf("%w: --max-out-of-order must be positive, got %s", errUsage, cfg.MaxOutOfOrder)
	}
	for name, d := range map[string]time.Duration{"--warn": cfg.Default.Warn, "--overrun": cfg.Default.Overrun, "--window": cfg.Window} {
		if d <= 0 {
			return cfg, fmt.Errorf("%w: %s must be positive, got %s", errUsage, name, d)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}
