package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func acwd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = mainExit(context.Background(), args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestReplayExitStatus(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"an unknown flag is a usage error", []string{"replay", "--nope"}, 2, "flag provided but not defined"},
		{"a negative threshold is a usage error", []string{"replay", "--overrun", "-1s"}, 2, `invalid value "-1s" for flag -overrun: must be at least 1ms`},
		{"a missing file is an I/O error naming it", []string{"replay", "does-not-exist.jsonl"}, 1, "does-not-exist.jsonl"},
		{"a bad config file names the setting", []string{"replay", "--config", "testdata/bad-window.yaml"}, 2, `configuration: config file testdata/bad-window.yaml line 2: engine.window: want a duration such as 250ms, 30s or 48h, got "7x"`},
		{"an unknown config key is an error", []string{"replay", "--config", "testdata/bad-key.yaml"}, 2, "line 2: unknown setting engine.thresholdz (known here: engine.agent_idle_timeout, engine.dedup_horizon,"},
		{"an unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"sim refuses no agents, as demo does", []string{"sim", "--agents", "0"}, 2, "--agents, --teams and --queues must be at least 1"},
		{"translate names the formats it needs", []string{"translate", "/dev/null"}, 2, "--input-format is required: one of connect, twilio, asterisk, freeswitch, genesys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := acwd(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.inStderr) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, stderr, tc.code, tc.inStderr)
			}
		})
	}
}

// A mistaken flag is said once, with the command's one-line synopsis,
// not the whole help (which -h prints).
func TestABadFlagIsSaidOnceWithAShortUsage(t *testing.T) {
	for _, cmd := range []string{"replay", "run", "sim", "demo", "translate", "devbroker"} {
		code, _, stderr := acwd(t, "", cmd, "--nope")
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || strings.Count(stderr, "flag provided but not defined: -nope") != 1 || len(lines) != 2 ||
			!strings.HasPrefix(lines[1], "usage: acwd "+cmd) || !strings.HasSuffix(lines[1], "(acwd "+cmd+" -h lists every flag)") {
			t.Errorf("acwd %s --nope: exit %d, stderr:\n%s", cmd, code, stderr)
		}
	}
	code, _, stderr := acwd(t, "", "replay", "-h")
	if code != 0 || !strings.Contains(stderr, "-max-out-of-order") {
		t.Errorf("acwd replay -h: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestReplayReadsSeveralFilesAsOneInput(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	b := filepath.Join(dir, "b.jsonl")
	os.WriteFile(a, []byte(`{"agent_id":"x","state":"acw","ts":"2026-11-22T10:00:00Z","call_id":"c"}`+"\r\n"), 0o644)
	os.WriteFile(b, []byte(`{"agent_id":"x","state":"ready","ts":"2026-11-22T10:00:05Z"}`), 0o644)
	code, out, stderr := acwd(t, "", "replay", a, b)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, `"duration_ms":5000`) || !strings.Contains(out, `"read":2,"applied":2`) {
		t.Errorf("output:\n%s", out)
	}
}

func TestSimIsReproducibleAndReplays(t *testing.T) {
	args := []string{"sim", "--agents", "8", "--duration", "1h", "--disorder", "1s", "--duplicates", "0.01", "--bad", "0.01", "--late", "0.01", "--seed", "4"}
	_, first, _ := acwd(t, "", args...)
	_, second, _ := acwd(t, "", args...)
	if first != second || len(first) == 0 {
		t.Fatal("the same seed gave different logs")
	}
	_, other, _ := acwd(t, "", append(args[:len(args)-1], "5")...)
	if other == first {
		t.Fatal("another seed gave the same log")
	}
	code, out, stderr := acwd(t, first, "replay")
	if code != 0 {
		t.Fatalf("replay: %s", stderr)
	}
	for _, want := range []string{`"type":"segment"`, `"overrun":true`, `"type":"interval"`, `"reason":"late"`, `"reason":"invalid"`, `"reason":"malformed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("replay of the simulated log has no %s", want)
		}
	}
	if strings.Contains(out, `"duplicates":0,`) {
		t.Error("the simulated duplicates were not seen")
	}
}
