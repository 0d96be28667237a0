package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// SettingsKey is the hash of the settings the prefix's checkpoints were
// written with (see CheckSettings).
func (s *Store) SettingsKey() string { return s.k.Settings() }

// ErrSettingsChanged reports that a setting the checkpoints depend on
// differs from the one they were written with.
var ErrSettingsChanged = errors.New("settings changed since the checkpoints were written")

// SettingChange is one setting that differs from its recorded value.
type SettingChange struct {
	Name, Recorded, Now string
}

// SettingsError is an ErrSettingsChanged listing every change.
type SettingsError struct {
	Prefix  string
	Changes []SettingChange
}

func (e *SettingsError) Error() string {
	parts := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		parts[i] = fmt.Sprintf("%s is %q, the checkpoints under prefix %q were written with %q", c.Name, c.Now, e.Prefix, c.Recorded)
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrSettingsChanged) true.
func (e *SettingsError) Is(target error) bool { return target == ErrSettingsChanged }

// CheckSettings compares settings (name → value: everything a checkpoint
// depends on, such as the window, the thresholds and the input format)
// with those recorded under the prefix. It records any that are not
// recorded yet (a new prefix, or a setting new in this version) and
// returns a *SettingsError naming each that differs; with accept it
// records the new values instead (the caller has decided that the change
// is safe). A checkpoint restored under other settings re-reads the
// messages after its snapshot under the new ones, so results would no
// longer be those of one run.
func (s *Store) CheckSettings(ctx context.Context, settings map[string]string, accept bool) error {
	rec, err := s.rdb.HGetAll(ctx, s.SettingsKey()).Result()
	if err != nil {
		return fmt.Errorf("redis: reading the recorded settings: %w", err)
	}
	var changes []SettingChange
	write := map[string]any{}
	for name, v := range settings {
		old, ok := rec[name]
		switch {
		case !ok:
			write[name] = v
		case old != v:
			changes = append(changes, SettingChange{Name: name, Recorded: old, Now: v})
			write[name] = v
		}
	}
	slices.SortFunc(changes, func(a, b SettingChange) int { return strings.Compare(a.Name, b.Name) })
	if len(changes) > 0 && !accept {
		return &SettingsError{Prefix: s.cfg.Prefix, Changes: changes}
	}
	if len(write) > 0 {
		if err := s.rdb.HSet(ctx, s.SettingsKey(), write).Err(); err != nil {
			return fmt.Errorf("redis: recording the settings: %w", err)
		}
	}
	return nil
}
