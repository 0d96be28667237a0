package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/processor"
)

// TestReplayConnectDocumentedExample: AWS's documented agent event stream
// example, read by the connect adapter through acwd replay, is one wrap-up
// of exactly 5.005 s.
func TestReplayConnectDocumentedExample(t *testing.T) {
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), []string{"replay", "--input-format", "connect", "../../events/connect/testdata/aws-acw-example.jsonl"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var segs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		r, err := decodeRecord([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		if r["type"] == "segment" {
			segs = append(segs, r)
		}
	}
	if len(segs) != 1 || jsonNumber(segs[0]["duration_ms"]) != "5005" || segs[0]["call_id"] != "ContactId-1" || segs[0]["agent_id"] != "agent-ARN" {
		t.Fatalf("segments %v, want one of 5005 ms for ContactId-1", segs)
	}
}

func TestTranslate(t *testing.T) {
	var out, errb bytes.Buffer
	in := strings.NewReader("not json\n\n" + `{"AgentARN":"arn:x/agent/a-1","EventId":"e1","EventType":"LOGIN","EventTimestamp":"2026-11-22T09:00:00Z","CurrentAgentSnapshot":{"AgentStatus":{"Name":"Available"}}}` + "\n")
	if code := mainExit(context.Background(), []string{"translate", "--input-format", "connect"}, in, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := `{"agent_id":"a-1","state":"ready","ts":"2026-11-22T09:00:00.000Z","event_id":"e1"}` + "\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if !strings.Contains(errb.String(), "stdin line 1: malformed: not a connect record") {
		t.Errorf("stderr %q does not report line 1 as malformed", errb.String())
	}
	if code := mainExit(context.Background(), []string{"translate", "--input-format", "canonical"}, nil, &out, &errb); code != 2 {
		t.Errorf("translate --input-format canonical: exit %d, want 2", code)
	}
}

// segmentsOf runs acwd replay on lines (with args) and returns its
// segments by agent_id and call_id, and its summary.
func segmentsOf(t *testing.T, lines [][]byte, args ...string) (map[[2]string]map[string]any, map[string]any) {
	t.Helper()
	var in, out, errb bytes.Buffer
	for _, l := range lines {
		in.Write(l)
		in.WriteByte('\n')
	}
	if code := mainExit(context.Background(), append([]string{"replay"}, args...), &in, &out, &errb); code != 0 {
		t.Fatalf("replay %v: exit %d: %s", args, code, errb.String())
	}
	segs := map[[2]string]map[string]any{}
	var sum map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		r, err := decodeRecord(l)
		if err != nil {
			t.Fatal(err)
		}
		switch r["type"] {
		case "segment":
			k := [2]string{r["agent_id"].(string), r["call_id"].(string)}
			if segs[k] != nil {
				t.Fatalf("two segments for %v", k)
			}
			segs[k] = r
		case "summary":
			sum = r
		}
	}
	return segs, sum
}

func simLines(t *testing.T, cfg sim.Config) [][]byte {
	t.Helper()
	g, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for l := g.Next(); l != nil; l = g.Next() {
		lines = append(lines, append([]byte(nil), l...))
	}
	return lines
}

func msOf(t *testing.T, v any) int64 {
	ms, err := events.ParseRFC3339Millis([]byte(v.(string)))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestSimFormatsGiveTheCanonicalSegments: the same simulated shift
// (duplicates and bad records included), written in each platform's
// format and read by its adapter, gives the canonical feed's wrap-up
// segments, to the platform's timestamp precision. Platforms that pass
// every call through a wrap-up add one of (almost) zero length for calls
// the canonical feed ends without one; nothing else differs.
func TestSimFormatsGiveTheCanonicalSegments(t *testing.T) {
	base := sim.Config{Seed: 5, Agents: 40, Teams: 4, Queues: 3, Duration: 4 * time.Hour, DuplicateRate: 0.01, BadRate: 0.003}
	want, wantSum := segmentsOf(t, simLines(t, base))
	if len(want) < 500 {
		t.Fatalf("only %d canonical segments", len(want))
	}
	precision := map[string][2]int64{ // start, duration tolerance in ms
		"connect": {0, 0}, "twilio": {0, 0}, "genesys": {0, 0},
		"asterisk": {999, 999}, "freeswitch": {999, 999},
	}
	for _, format := range sim.Formats[1:] {
		t.Run(format, func(t *testing.T) {
			cfg := base
			cfg.Format = format
			got, sum := segmentsOf(t, simLines(t, cfg), "--input-format", format)
			tol := precision[format]
			extra := 0
			for k, g := range got {
				w := want[k]
				if w == nil {
					if d := jsonNumber(g["duration_ms"]); len(d) > 3 { // ≥ 1 s
						t.Errorf("segment %v (%s ms) is not in the canonical feed", k, d)
					}
					extra++
					continue
				}
				ds := msOf(t, g["start"]) - msOf(t, w["start"])
				dd, _ := strconv.ParseInt(jsonNumber(g["duration_ms"]), 10, 64)
				wd, _ := strconv.ParseInt(jsonNumber(w["duration_ms"]), 10, 64)
				if ds > 0 || -ds > tol[0] || abs(dd-wd) > tol[1] {
					t.Errorf("segment %v: start %v, %d ms; canonical %v, %d ms", k, g["start"], dd, w["start"], wd)
				}
			}
			for k := range want {
				if got[k] == nil {
					t.Errorf("canonical segment %v missing", k)
				}
			}
			rej := func(s map[string]any) string { return fmt.Sprint(s["rejected"]) }
			if rej(sum) != rej(wantSum) {
				t.Errorf("rejected %s, canonical %s (the same bad records)", rej(sum), rej(wantSum))
			}
			t.Logf("%d segments (%d of zero length added); rejected %s", len(got), extra, rej(sum))
		})
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestRunStatefulAdapterSurvivesSIGKILL: a queue_log feed (the Asterisk
// adapter keeps each member's state and holds implicit wrapuptime ends)
// streams into a 12-partition topic while acwd run is killed twice. The
// adapter's state travels in the checkpoints, held ends close on wall-clock
// ticks, and the result is replay's: segments, alerts, intervals, DLQ.
func TestRunStatefulAdapterSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills processes")
	}
	cfg := simForRun(13)
	cfg.Agents = 60
	cfg.Format = "asterisk"
	cfg.MissRate = 0 // the canonical format's only
	// calls that end without a wrap-up pause get a 15 s implicit window
	h := newAdapterHarness(t, cfg, "adapters:\n  asterisk:\n    wrapuptime: 15s\n")
	if n := len(h.records("segment")); n < 200 {
		t.Fatalf("only %d segments in replay", n)
	}
	args := append(h.runArgs("ast"), "--session-timeout", "2s", "--log-level", "info")
	streamed := h.streamLines(20, 150*time.Millisecond)
	var procs []*proc
	for range 2 {
		p := startProc(t, args...)
		procs = append(procs, p)
		p.waitAssigned()
		time.Sleep(700 * time.Millisecond)
		if p.exited() {
			t.Fatalf("acwd run exited on its own: %v", p.err)
		}
		p.kill()
	}
	<-streamed
	p := startProc(t, args...)
	procs = append(procs, p)
	h.finish("ast")
	if code := p.term(); code != 0 {
		t.Errorf("acwd run exited %d after SIGTERM, want 0", code)
	}
	h.checkDerived()
	h.checkRollups()
	h.checkDLQ(0)
	if logsContain(procs, "effects resume") == 0 {
		t.Error("no partition was restored from a checkpoint: the test did not test recovery")
	}
}

// Adapter settings come from the config file's adapters section; a key the
// adapter does not have is an error naming it.
func TestAdapterSettingsFromTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	log := "1795341600|c1|sales|SIP/8007|CONNECT|1|x|1\n1795341660|c1|sales|SIP/8007|COMPLETEAGENT|1|60|1\n"
	in := dir + "/queue_log"
	if err := os.WriteFile(in, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := dir + "/acwd.yaml"
	os.WriteFile(cfg, []byte("kafka:\n  input_format: asterisk\nadapters:\n  asterisk:\n    queues: {sales: 25s}\n    agents: {SIP/8007: alice}\n    teams: {alice: t1}\n"), 0o644)
	segs, _ := segmentsOf(t, nil, "--config", cfg, in)
	s := segs[[2]string{"alice", "c1"}]
	if len(segs) != 1 || s == nil || jsonNumber(s["duration_ms"]) != "25000" || s["team"] != "t1" {
		t.Fatalf("segments %v, want alice's 25 s wrap-up in team t1", segs)
	}
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), []string{"translate", "--config", cfg, in}, nil, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `"agent_id":"alice","state":"ready","ts":"2026-11-22T10:01:25.000Z"`) {
		t.Errorf("translate with the config file: exit %d, %s%s", code, out.String(), errb.String())
	}
	os.WriteFile(cfg, []byte("adapters:\n  asterisk:\n    wrapup_time: 25s\n"), 0o644)
	errb.Reset()
	if code := mainExit(context.Background(), []string{"replay", "--config", cfg, in}, nil, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "adapters.asterisk") || !strings.Contains(errb.String(), "wrapup_time") {
		t.Errorf("an unknown adapter key: exit %d, stderr %q", code, errb.String())
	}
}

// An adapter section's max_acw closes a wrap-up whose end the feed lost:
// here Agent/1's UNPAUSE never came, and Agent/2's calls move event time
// on. The engine's own max_acw applies to other input formats only.
func TestAnAdapterSectionsMaxACWClosesALostWrapUp(t *testing.T) {
	dir := t.TempDir()
	log := strings.Join([]string{
		"1795341600|NONE|q1|Agent/1|AGENTLOGIN|SIP/1",
		"1795341600|NONE|q1|Agent/2|AGENTLOGIN|SIP/2",
		"1795341610|c1|q1|Agent/1|CONNECT|2|c1b|2",
		"1795341640|c1|q1|Agent/1|COMPLETECALLER|2|30|1",
		"1795341641|NONE|q1|Agent/1|PAUSE|Wrapup",
		"1795342200|c2|q1|Agent/2|CONNECT|2|c2b|2",
		"1795342500|c2|q1|Agent/2|COMPLETEAGENT|2|300|1",
	}, "\n") + "\n"
	in := dir + "/queue_log"
	if err := os.WriteFile(in, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := dir + "/acwd.yaml"
	os.WriteFile(cfg, []byte("engine:\n  max_acw: 1h\nadapters:\n  asterisk:\n    max_acw: 2m\n    stuck_after: 30m\n  twilio:\n    max_acw: 5m\n"), 0o644)
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), []string{"replay", "--config", cfg, "--input-format", "asterisk", in}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"start":"2026-11-22T10:00:41.000Z","end":"2026-11-22T10:02:41.000Z","duration_ms":120000`) ||
		!strings.Contains(out.String(), `"end_state":"ready","closed_by":"max_acw"`) || !strings.Contains(out.String(), `"max_acw_closed":1`) {
		t.Fatalf("Agent/1's wrap-up was not closed by the asterisk section's max_acw:\n%s", out.String())
	}
	os.WriteFile(cfg, []byte("adapters:\n  asterisk:\n    max_acw: 20s\n"), 0o644)
	errb.Reset()
	if code := mainExit(context.Background(), []string{"replay", "--config", cfg, "--input-format", "asterisk", in}, nil, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "adapters.asterisk: max_acw: 20s must be longer than the overrun threshold") {
		t.Errorf("a max_acw below the overrun threshold: exit %d, stderr %q", code, errb.String())
	}
}

// acwd translate's output is what the engine receives: replaying it gives
// the segments of replaying the platform's log directly. The log is one
// partition's share of a simulated Asterisk shift (the agents of twelve
// that a key hash puts together), where records end their own windows while
// releasing other members' later ones.
func TestTranslateThenReplayIsReplay(t *testing.T) {
	cfg := sim.Config{Seed: 13, Agents: 60, Teams: 4, Queues: 3, Start: mustMS(t, "2026-11-23T18:36:00Z"), Duration: time.Hour,
		Disorder: time.Second, DuplicateRate: 0.01, BadRate: 0.002, Format: "asterisk"}
	g, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	for l := g.Next(); l != nil; l = g.Next() {
		if k := g.Key(); k == "agent-1" || k == "agent-18" || k == "agent-21" || k == "agent-36" || k == "agent-43" || k == "agent-58" {
			log.Write(l)
			log.WriteByte('\n')
		}
	}
	conf := filepath.Join(t.TempDir(), "acwd.yaml")
	os.WriteFile(conf, []byte("adapters:\n  asterisk:\n    wrapuptime: 15s\n"), 0o644)
	var canonical, errb bytes.Buffer
	if code := mainExit(context.Background(), []string{"translate", "--input-format", "asterisk", "--config", conf}, bytes.NewReader(log.Bytes()), &canonical, &errb); code != 0 {
		t.Fatalf("translate: exit %d: %s", code, errb.String())
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(canonical.Bytes()), []byte("\n")) {
		lines = append(lines, l)
	}
	got, _ := segmentsOf(t, lines)
	want, _ := segmentsOf(t, bytes.Split(bytes.TrimSpace(log.Bytes()), []byte("\n")), "--input-format", "asterisk", "--config", conf)
	if len(want) < 40 {
		t.Fatalf("only %d segments", len(want))
	}
	for k, w := range want {
		if g := got[k]; g == nil || jsonNumber(g["duration_ms"]) != jsonNumber(w["duration_ms"]) || g["end_state"] != w["end_state"] {
			t.Errorf("segment %v: translated then replayed %v, replayed directly %v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d segments from the translation, %d directly", len(got), len(want))
	}
}

func mustMS(t *testing.T, s string) int64 {
	t.Helper()
	ms, err := events.ParseRFC3339Millis([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// FreeSWITCH events in their plain form ("Header: value" lines, a blank
// line after each, as ESL sends them and as `fs_cli` prints them) are
// read by translate and replay, not only from Kafka (one event per
// message there).
func TestPlainFreeSWITCHEventsAreReadFromFiles(t *testing.T) {
	ev := func(sec int, action string, kv ...string) string {
		s := fmt.Sprintf("Event-Name: CUSTOM\nEvent-Subclass: callcenter%%3A%%3Ainfo\nEvent-Date-Timestamp: %d\nCC-Action: %s\nCC-Agent: 1000%%40default\n", (1795341600+int64(sec))*1000000, action)
		for i := 0; i+1 < len(kv); i += 2 {
			s += kv[i] + ": " + kv[i+1] + "\n"
		}
		return s + "\n"
	}
	in := ev(0, "agent-status-change", "CC-Agent-Status", "Available") +
		ev(10, "bridge-agent-start", "CC-Member-Session-UUID", "m1", "CC-Agent-Answered-Time", "1795341610") +
		ev(20, "bridge-agent-end", "CC-Member-Session-UUID", "m1", "CC-Bridge-Terminated-Time", "1795341620", "CC-Agent-Bridged", "true") +
		ev(50, "agent-status-change", "CC-Agent-Status", "On Break")
	path := filepath.Join(t.TempDir(), "events.txt")
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "adapters:\n  freeswitch:\n    wrap_up_time: 10s\n")
	code, out, stderr := acwd(t, "", "translate", "--input-format", "freeswitch", "--config", cfg, path)
	if code != 0 || strings.Count(out, "\n") != 5 || !strings.Contains(out, `"state":"acw"`) || stderr != "" {
		t.Fatalf("translate: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = acwd(t, "", "replay", "--input-format", "freeswitch", "--config", cfg, path)
	if code != 0 || !strings.Contains(out, `"type":"segment"`) || !strings.Contains(out, `"duration_ms":10000`) || !strings.Contains(out, `"read":4,`) {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, stderr)
	}
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "acwd.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Each platform's records must be keyed by their agent (the platform's
// identifier, or the agent_id the adapter makes of it), as canonical
// events by agent_id: a record keyed otherwise is rejected as invalid
// before it changes the adapter's state, and one keyed right is taken.
func TestAdapterRecordsMustBeKeyedByTheirAgent(t *testing.T) {
	for _, format := range inputFormats[1:] {
		t.Run(format, func(t *testing.T) {
			g, err := sim.New(sim.Config{Seed: 5, Agents: 3, Duration: 10 * time.Minute, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			f := adapterFlags{format: format}
			ad := f.newAdapter()
			eng, err := processor.New(processor.Config{}, &lineWriter{w: bufio.NewWriter(io.Discard)})
			if err != nil {
				t.Fatal(err)
			}
			tried := 0
			for line := g.Next(); line != nil && tried < 20; line = g.Next() {
				key := g.Key()
				var before []byte
				if st, ok := ad.(events.Stateful); ok {
					before = st.AppendState(nil)
				}
				o, err := eng.TranslateMessage(ad, []byte(key+"-not"), line)
				var ke *events.KeyError
				if o == processor.Ignored {
					continue // a record of no agent
				}
				tried++
				if o != processor.Rejected || !errors.As(err, &ke) || processor.RejectReason(err) != events.ReasonInvalid {
					t.Fatalf("%s keyed %q: %v %v", line, key+"-not", o, err)
				}
				if st, ok := ad.(events.Stateful); ok && !bytes.Equal(before, st.AppendState(nil)) {
					t.Fatalf("%s: a mis-keyed record changed the adapter's state", line)
				}
				if o, err := eng.TranslateMessage(ad, []byte(key), line); o == processor.Rejected {
					t.Fatalf("%s keyed %q: %v", line, key, err)
				}
			}
			if tried == 0 {
				t.Fatal("no record was tried")
			}
		})
	}
}

// testdata/call-sequence.txt (see events/freeswitch/testdata/README.md):
// three offers to one agent, in mod_callcenter's own order and header
// sets. By mod_callcenter's rules one call is handled (bridged, talking
// from the bridge to its end, then the configured wrap-up-time), one
// bridge failed as the caller hung up (CC-Agent-Bridged false: no call,
// no wrap-up) and one was not answered (bridge-agent-fail): two missed
// offers.
func TestFreeSWITCHCallSequenceFixture(t *testing.T) {
	cfg := writeFile(t, "fs.yaml", "adapters:\n  freeswitch:\n    wrap_up_time: 10s\n")
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), []string{"replay", "--input-format", "freeswitch", "--config", cfg, "--window", "1h",
		"../../events/freeswitch/testdata/call-sequence.txt"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var agent map[string]any
	var segs int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r["type"] == "segment":
			segs++
			if r["duration_ms"] != 10000.0 || r["start"] != "2023-10-11T03:42:29.000Z" {
				t.Errorf("segment %v, want the 10 s wrap-up-time from the bridge's end", r)
			}
		case r["type"] == "interval" && r["scope"] == "agent":
			agent = r
		case r["type"] == "summary":
			if rej := r["rejected"].(map[string]any); rej["malformed"] != 0.0 || rej["invalid"] != 0.0 || rej["late"] != 0.0 {
				t.Errorf("records rejected: %v", r)
			}
		}
	}
	want := map[string]float64{"calls_handled": 1, "missed_count": 2, "handle_count": 1, "acw_count": 1,
		"talk_ms": 3533, "handle_total_ms": 13533, "acw_state_ms": 10000}
	for k, v := range want {
		if agent[k] != v {
			t.Errorf("%s = %v, want %v (interval %v)", k, agent[k], v, agent)
		}
	}
	if segs != 1 {
		t.Errorf("%d segments, want 1", segs)
	}
}

// replayAgentIntervals replays a platform file and returns the agent
// intervals by agent and start, the segments and the summary.
func replayAgentIntervals(t *testing.T, args ...string) (ivs map[string]map[string]any, segs []map[string]any, sum map[string]any) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), append([]string{"replay"}, args...), nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	ivs = map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		switch r["type"] {
		case "segment":
			segs = append(segs, r)
		case "summary":
			sum = r
		case "interval":
			if r["scope"] == "agent" {
				ivs[r["key"].(string)+" "+r["start"].(string)] = r
			}
		}
	}
	if rej := sum["rejected"].(map[string]any); rej["malformed"] != 0.0 || rej["invalid"] != 0.0 || rej["late"] != 0.0 {
		t.Errorf("records rejected: %v\n%s", sum, errb.String())
	}
	return ivs, segs, sum
}

// VICIdial's published example of the queue_log it writes for
// QueueMetrics (testdata/vicidial-queuemetrics.log): its system rows
// (CALLSTATUS DROP with agent NONE, ENTERQUEUE, EXITWITHTIMEOUT, ABANDON)
// are not the agent's, its NULL data is no pause reason, and the agent's
// time adds up to what VICIdial logs: AGENTLOGOFF's logintime 516 s, of
// which the pauses (PAUSEALL to UNPAUSEALL or the logoff) are 408 s and
// the five calls (CONNECT to COMPLETEAGENT) 79 s.
func TestVICIdialQueueMetricsFixture(t *testing.T) {
	ivs, _, _ := replayAgentIntervals(t, "--input-format", "asterisk", "--window", "1h", "../../events/asterisk/testdata/vicidial-queuemetrics.log")
	iv := ivs["Agent/6666 2009-05-25T19:00:00.000Z"]
	want := map[string]float64{"work_ms": 516000, "not_ready_ms": 408000, "talk_ms": 79000, "ready_ms": 29000,
		"calls_handled": 5, "handle_count": 5, "handle_total_ms": 79000, "acw_count": 0}
	for k, v := range want {
		if iv[k] != v {
			t.Errorf("%s = %v, want %v (interval %v)", k, iv[k], v, iv)
		}
	}
}

// Wazo's WRAPUPSTART rows (testdata/wazo-wrapupstart.log, xivo-dao's
// queue_log tests, PostgreSQL times with a zone): a wrap-up of DATA1
// seconds from the row, split across hours as Wazo's statistics split
// them. Where two of an agent's wrap-ups overlap (Agent/1 at 06:00:10,
// inside the one from 05:59:50), Wazo's SQL sums both (45 s in the 06:00
// hour); an agent is in one state at a time here, so the overlap counts
// once (35 s).
func TestWazoWrapUpStartFixture(t *testing.T) {
	ivs, _, _ := replayAgentIntervals(t, "--input-format", "asterisk", "--window", "1h", "--max-out-of-order", "1m", "../../events/asterisk/testdata/wazo-wrapupstart.log")
	for key, want := range map[string]float64{
		"Agent/1 2012-10-01T05:00:00.000Z": 10000, "Agent/1 2012-10-01T06:00:00.000Z": 35000,
		"Agent/1 2012-10-01T07:00:00.000Z": 35000, "Agent/1 2012-10-01T08:00:00.000Z": 30000,
		"Agent/2 2012-10-01T06:00:00.000Z": 30000, "Agent/2 2012-10-01T07:00:00.000Z": 20000, "Agent/2 2012-10-01T08:00:00.000Z": 10000,
	} {
		if got := ivs[key]["acw_state_ms"]; got != want {
			t.Errorf("%s: acw_state_ms %v, want %v", key, got, want)
		}
	}
}

// A call in Wazo's PostgreSQL export (testdata/wazo-postgres.log): three
// offers rung unanswered (RINGNOANSWER) before the member answers, the
// call, and Wazo's WRAPUPSTART right after COMPLETEAGENT: three missed
// offers, one handle of the talk plus the 15 s wrap-up. The call ends in
// its wrap-up, so the 14 ms between the two rows count as talk.
func TestWazoPostgresCallFixture(t *testing.T) {
	ivs, segs, _ := replayAgentIntervals(t, "--input-format", "asterisk", "--window", "1h", "../../events/asterisk/testdata/wazo-postgres.log")
	iv := ivs["Agent/1 2023-04-12T07:00:00.000Z"]
	want := map[string]float64{"missed_count": 3, "calls_handled": 1, "talk_ms": 319488, "handle_count": 1, "handle_total_ms": 334488, "acw_count": 1}
	for k, v := range want {
		if iv[k] != v {
			t.Errorf("%s = %v, want %v (interval %v)", k, iv[k], v, iv)
		}
	}
	if len(segs) != 1 || segs[0]["duration_ms"] != 15000.0 {
		t.Errorf("segments %v, want one 15 s wrap-up", segs)
	}
}

// The platforms' display names become agent_name: Connect's username
// (the AWS guide's example has "(Removed)"), Twilio's worker name, when
// the agent_id is the ARN's id or the sid.
func TestAdaptersGiveDisplayNames(t *testing.T) {
	for format, file := range map[string]string{
		"connect": "../../events/connect/testdata/aws-acw-example.jsonl",
		"twilio":  "../../events/twilio/testdata/eventstreams.jsonl",
	} {
		var out, errb bytes.Buffer
		if code := mainExit(context.Background(), []string{"translate", "--input-format", format, file}, nil, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, errb.String())
		}
		want := map[string]string{"connect": `"agent_name":"(Removed)"`, "twilio": `"agent_name":"alice"`}[format]
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s: no %s in\n%s", format, want, out.String())
		}
	}
}
