package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// withEnv makes the settings read env instead of the process environment.
func withEnv(t *testing.T, env map[string]string) {
	t.Helper()
	old := getenv
	getenv = func(k string) string { return env[k] }
	t.Cleanup(func() { getenv = old })
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// effective runs config check and returns its lines by key path.
func effective(t *testing.T, args ...string) map[string]string {
	t.Helper()
	code, out, stderr := acwd(t, "", append([]string{"config", "check"}, args...)...)
	if code != 0 {
		t.Fatalf("config check %v: exit %d: %s", args, code, stderr)
	}
	got := map[string]string{}
	var path []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		depth := (len(l) - len(strings.TrimLeft(l, " "))) / 2
		path = path[:depth]
		k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
		path = append(path, k)
		if v = strings.TrimSpace(v); v != "" {
			got[strings.Join(path, ".")] = v
		}
	}
	return got
}

func TestSettingsPrecedenceIsDefaultFileEnvFlag(t *testing.T) {
	file := writeFile(t, "acw.yaml", `
pipeline:
  flush_interval: 200ms
  shared_flush_interval: 2s
kafka:
  brokers: [k1:9092, k2:9092]
  group: from-file
engine:
  thresholds:
    overrun: 40s
`)
	withEnv(t, map[string]string{"ACW_FLUSH_INTERVAL": "300ms", "ACW_GROUP": "from-env", "ACW_LOG_LEVEL": "debug"})
	got := effective(t, file, "--flush-interval", "400ms", "--log-level", "warn")
	want := map[string]string{
		"pipeline.flush_interval":        "400ms # flag --flush-interval",
		"pipeline.shared_flush_interval": "2s # file " + file + " line 4",
		"kafka.brokers":                  "[k1:9092, k2:9092] # file " + file + " line 6",
		"kafka.group":                    "from-env # env ACW_GROUP",
		"log.level":                      "warn # flag --log-level",
		"engine.thresholds.overrun":      "40s # file " + file + " line 10",
		"engine.thresholds.warn":         "20s # default",
		"redis.prefix":                   "acw # default",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestConfigCheckOutputIsAConfigFile(t *testing.T) {
	withEnv(t, map[string]string{"ACW_REDIS": "redis://app:s3cret@redis:6379/3", "ACW_KAFKA_SASL": "scram-sha-512",
		"ACW_KAFKA_SASL_USER": "acw", "ACW_KAFKA_SASL_PASSWORD": "hunter2"})
	code, out, stderr := acwd(t, "", "config", "check", "testdata/overrides.yaml", "--topic", "a,b", "--tz", "Europe/Paris")
	if code != 0 {
		t.Fatal(stderr)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") {
		t.Errorf("secrets printed:\n%s", out)
	}
	if !strings.Contains(out, "url: redis://app:%2A%2A%2A@redis:6379/3 # env ACW_REDIS") && !strings.Contains(out, "url: redis://app:***@redis:6379/3") {
		t.Errorf("masked URL missing:\n%s", out)
	}
	// Printed again from its own output (with the secrets given back),
	// the configuration is the same, value for value.
	withEnv(t, map[string]string{"ACW_KAFKA_SASL_PASSWORD": "hunter2"})
	again := writeFile(t, "again.yaml", strings.ReplaceAll(strings.ReplaceAll(out, "%2A%2A%2A", "s3cret"), "***", "s3cret"))
	_, out2, stderr2 := acwd(t, "", "config", "check", again)
	strip := regexp.MustCompile(` # .*`)
	if a, b := strip.ReplaceAllString(out, ""), strip.ReplaceAllString(out2, ""); a != b {
		t.Errorf("round trip differs (%s):\n%s\n---\n%s", stderr2, a, b)
	}
}

func TestInvalidSettingsNameTheSetting(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		file string
		args []string
		want string
	}{
		{"an enum flag", nil, "", []string{"--start", "middle"}, `invalid value "middle" for flag -start: want one of earliest, latest`},
		{"an enum from the environment", map[string]string{"ACW_LOG_LEVEL": "loud"}, "", nil, `setting log-level from environment variable ACW_LOG_LEVEL: want one of debug, info, warn, error, got "loud"`},
		{"a duration in the file", nil, "pipeline:\n  flush_interval: fast\n", nil, `line 2: pipeline.flush_interval: want a duration such as 250ms`},
		{"a number in the file", nil, "pipeline:\n  max_message_bytes: 12\n", nil, `pipeline.max_message_bytes: must be at least 1024, got 12`},
		{"a misspelt key", nil, "pipeline:\n  flush_intervall: 1s\n", nil, `line 2: unknown setting pipeline.flush_intervall (known here: pipeline.accept_setting_changes, pipeline.batch_max_bytes, pipeline.flush_interval,`},
		{"an unknown section", nil, "kafak:\n  group: x\n", nil, `unknown setting kafak (sections: adapters, engine, http, kafka, log, pipeline, redis, topics)`},
		{"a SASL mechanism", nil, "kafka:\n  sasl: {mechanism: gssapi}\n", nil, `kafka.sasl.mechanism: want one of none, plain, scram-sha-256, scram-sha-512, got "gssapi"`},
		{"SASL without credentials", nil, "", []string{"--kafka-sasl", "plain"}, "--kafka-sasl plain needs --kafka-sasl-user and --kafka-sasl-password"},
		{"a missing CA file", nil, "", []string{"--kafka-tls", "--kafka-tls-ca", "/nonexistent/ca.pem"}, "--kafka-tls-ca (kafka.tls.ca_file): open /nonexistent/ca.pem"},
		{"a time zone", nil, "", []string{"--tz", "Mars/Olympus"}, `--tz (redis.time_zone) "Mars/Olympus": want an IANA zone`},
		{"a Redis URL", map[string]string{"ACW_REDIS": "http://x"}, "", nil, `--redis (redis.url) "http://x"`},
		{"an empty topic list", nil, "", []string{"--topic", ","}, `invalid value "," for flag -topic: must not be empty`},
		{"inconsistent intervals", nil, "", []string{"--flush-interval", "2s"}, "--shared-flush-interval (1s) must not be shorter than --flush-interval (2s)"},
		{"an engine rule", nil, "engine:\n  max_out_of_order: 1500us\n", nil, "configuration: engine: max_out_of_order: must be whole milliseconds"},
		{"max_acw below a team's overrun", nil, "engine:\n  max_acw: 1m\n  thresholds:\n    teams: {a: {overrun: 2m}}\n", nil, "engine: max_acw: 1m0s must be longer than the overrun threshold thresholds.teams.a.overrun (2m0s)"},
		{"an adapter's max_acw", nil, "kafka:\n  input_format: twilio\nadapters:\n  twilio:\n    max_acw: 20s\n", nil, "adapters.twilio: max_acw: 20s must be longer than the overrun threshold"},
		{"an adapter's stuck_after", nil, "adapters:\n  twilio:\n    stuck_after: long\n", nil, `stuck_after: line 3: want a duration like 30s, got "long"`},
		{"a YAML syntax error names its line", nil, "engine:\n  window: 15m\n  thresholds:\n    warn: 10s\n   overrun: 30s\n", nil, `line 5 ("   overrun: 30s"): did not find expected key`},
		{"an unknown adapter key names the key", nil, "adapters:\n  twilio:\n    activites: {A: ready}\n", nil, `adapters.twilio: line 3: unknown key "activites" (known here: activities, agent_id,`},
		{"warn not below overrun", nil, "", []string{"--warn", "40s"}, "engine: thresholds: warn 40s must be shorter than overrun 30s"},
		{"a queue's overrun below the default warn", nil, "engine:\n  thresholds:\n    queues: {vip: {overrun: 10s}}\n", nil, "thresholds.queues.vip: warn 20s must be shorter than overrun 10s"},
		{"a per-team threshold", nil, "engine:\n  thresholds:\n    teams: {a: {warn: soon}}\n", nil, `engine.thresholds.teams: want a map of name: {warn: 20s, overrun: 30s}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			withEnv(t, tc.env)
			args := []string{"config", "check"}
			if tc.file != "" {
				args = append(args, writeFile(t, "c.yaml", tc.file))
			}
			code, _, stderr := acwd(t, "", append(args, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant 2 and %q", code, stderr, tc.want)
			}
			if strings.Contains(stderr, "panic") {
				t.Error(stderr)
			}
		})
	}
}

func TestRunHelpListsEverySettingWithItsDefault(t *testing.T) {
	code, _, stderr := acwd(t, "", "run", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var f runFlags
	var ss settings
	f.register(&ss)
	for _, s := range ss.list {
		if !regexp.MustCompile(`(?m)^  -`+s.flag+`\b`).MatchString(stderr) || !strings.Contains(stderr, "env "+s.env()+", file "+s.key) {
			t.Errorf("--%s (%s, %s) is not in the help", s.flag, s.env(), s.key)
		}
		if s.def != "" && s.def != "false" && !strings.Contains(stderr, "(default "+s.def+")") {
			t.Errorf("--%s: default %s not shown", s.flag, s.def)
		}
	}
}

func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var f runFlags
	var ss settings
	f.register(&ss)
	for _, s := range ss.list {
		row := fmt.Sprintf("| `--%s` | `%s` | `%s` |", s.flag, s.env(), s.key)
		if !strings.Contains(string(b), row) {
			t.Errorf("README's configuration table lacks %s", row)
		}
	}
}

// yamlAfter returns the first yaml code block of doc after marker.
func yamlAfter(t *testing.T, doc, marker string) string {
	t.Helper()
	i := strings.Index(doc, marker)
	j := strings.Index(doc[max(i, 0):], "```yaml\n")
	if i < 0 || j < 0 {
		t.Fatalf("no yaml example after %s in the README", marker)
	}
	block := doc[i+j+len("```yaml\n"):]
	k := strings.Index(block, "```")
	if k < 0 {
		t.Fatalf("the yaml example after %s does not end", marker)
	}
	return block[:k]
}

// The README's example config file, and its adapter settings' example,
// pass `acwd config check` as printed,
// with the one secret it names set where it says (ACW_KAFKA_SASL_PASSWORD),
// and its settings table names every input format.
func TestTheREADMEConfigExampleChecks(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	example := yamlAfter(t, doc, "## Configuration")
	if !strings.Contains(example, "ACW_KAFKA_SASL_PASSWORD") {
		t.Fatal("the example no longer says where its SASL password goes: update this test")
	}
	// and the adapter settings' example, every section of it
	adapters := yamlAfter(t, doc, "**Adapter settings**")
	for _, f := range inputFormats {
		if f != "canonical" && !strings.Contains(adapters, "\n  "+f+":\n") {
			t.Errorf("the adapter settings' example has no %s section", f)
		}
	}
	if code, stdout, stderr := acwd(t, "", "config", "check", writeFile(t, "adapters.yaml", adapters)); code != 0 {
		t.Fatalf("config check of the README's adapter settings: exit %d\n%s%s", code, stdout, stderr)
	}
	withEnv(t, map[string]string{"ACW_KAFKA_SASL_PASSWORD": "s3cret"})
	code, stdout, stderr := acwd(t, "", "config", "check", writeFile(t, "acwd.yaml", example))
	if code != 0 {
		t.Fatalf("config check of the README's example: exit %d\n%s%s", code, stdout, stderr)
	}
	row := ""
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "| `--input-format` |") {
			row = l
		}
	}
	for _, f := range inputFormats {
		if !strings.Contains(row, f) {
			t.Errorf("the settings table's --input-format row does not name %s: %s", f, row)
		}
	}
}
