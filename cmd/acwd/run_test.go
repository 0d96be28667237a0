package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/sink/redistest"
)

// runHarness is a devbroker with a 12-partition input topic, a real
// redis-server, a simulated log preloaded into the topic, and what
// acwd replay makes of the same log.
type runHarness struct {
	t      testing.TB
	broker *kfake.Cluster
	addr   string
	redis  *redistest.Server
	rdb    *redis.Client
	lines  [][]byte
	replay []map[string]any // replay's records, in order
	// exited is closed if an in-process acwd run ends by itself.
	exited chan string
	// format is the input format (cfg.Format; "" canonical), config the
	// config file both replay and run read (none: ""), keyOf each
	// platform record's Kafka key.
	format, config string
	keyOf          map[string]string
	maxTS          int64 // the simulated log's largest ts
}

const runTopic = "acw.events"

func newRunHarness(t *testing.T, cfg sim.Config, extra ...[]byte) *runHarness {
	t.Helper()
	return newAdapterHarness(t, cfg, "", extra...)
}

// newAdapterHarness is newRunHarness for a log in cfg.Format, read by
// replay and run with --input-format and, when configYAML is set, a config
// file holding it.
func newAdapterHarness(t *testing.T, cfg sim.Config, configYAML string, extra ...[]byte) *runHarness {
	t.Helper()
	c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: []string{runTopic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := &runHarness{t: t, broker: c, addr: c.ListenAddrs()[0], redis: redistest.Start(t), format: cfg.Format, keyOf: map[string]string{}}
	if configYAML != "" {
		h.config = filepath.Join(t.TempDir(), "acwd.yaml")
		if err := os.WriteFile(h.config, []byte(configYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	t.Cleanup(func() { h.rdb.Close() })

	g, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for line := g.Next(); line != nil; line = g.Next() {
		h.lines = append(h.lines, append([]byte(nil), line...))
		if h.format != "" {
			h.keyOf[string(line)] = g.Key()
		}
		h.maxTS = max(h.maxTS, g.TS())
	}
	h.lines = append(h.lines, extra...)

	var in bytes.Buffer
	for _, l := range h.lines {
		if len(l) <= 1<<20 { // replay has no size limit; the pipeline dead-letters these
			in.Write(l)
			in.WriteByte('\n')
		}
	}
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), append([]string{"replay"}, h.formatArgs()...), &in, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errb.String())
	}
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		r, err := decodeRecord(l)
		if err != nil {
			t.Fatalf("replay output %q: %v", l, err)
		}
		h.replay = append(h.replay, r)
	}
	return h
}

// produce writes lines to the input topic keyed by agent_id (lines that do
// not decode get the key "unparsable").
func (h *runHarness) produce(lines [][]byte) {
	h.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(h.addr), Topic: runTopic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000, BatchBytes: 8 << 20}
	defer w.Close()
	var dec events.Decoder
	var ev events.Event
	msgs := make([]kafka.Message, 0, len(lines))
	for _, l := range lines {
		key := "unparsable"
		if k, ok := h.keyOf[string(l)]; ok {
			key = k
		} else if dec.Decode(l, &ev) == nil {
			key = ev.AgentID
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: l})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			h.t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

// runArgs are the acwd run flags for this harness.
func (h *runHarness) runArgs(group string) []string {
	return append([]string{"run", "--brokers", h.addr, "--topic", runTopic, "--group", group,
		"--redis", h.redis.URL(), "--log-level", "warn", "--snapshot-interval", "1s", "--http", "127.0.0.1:0"}, h.formatArgs()...)
}

// formatArgs select the harness's input format and config file.
func (h *runHarness) formatArgs() []string {
	var args []string
	if h.format != "" {
		args = append(args, "--input-format", h.format)
	}
	if h.config != "" {
		args = append(args, "--config", h.config)
	}
	return args
}

// startInProcess runs acwd run in this process until the returned stop
// function is called; stop waits for it to exit and fails on a non-zero
// exit status.
func (h *runHarness) startInProcess(group string, extra ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var code int
	var errb bytes.Buffer
	wg.Add(1)
	exited := make(chan string, 1)
	h.exited = exited
	go func() {
		defer wg.Done()
		code = mainExit(ctx, append(h.runArgs(group), extra...), nil, &bytes.Buffer{}, &errb)
		if ctx.Err() == nil {
			exited <- fmt.Sprintf("exit %d: %s", code, errb.String())
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		if code != 0 {
			h.t.Errorf("acwd run exited %d: %s", code, errb.String())
		}
	}
}

// records returns replay's records of one type.
func (h *runHarness) records(typ string) []map[string]any {
	var out []map[string]any
	for _, r := range h.replay {
		if r["type"] == typ {
			out = append(out, r)
		}
	}
	return out
}

// readTopic reads every message of every partition of topic.
func (h *runHarness) readTopic(topic string) []kafka.Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		h.t.Fatalf("partitions of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", h.addr, topic, p.ID)
		if err != nil {
			h.t.Fatal(err)
		}
		last, err := pc.ReadLastOffset()
		if err != nil {
			h.t.Fatal(err)
		}
		pc.Close()
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{h.addr}, Topic: topic, Partition: p.ID, MaxBytes: 32 << 20, MaxWait: 50 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				h.t.Fatalf("reading %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset == last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// endOffsets returns the input topic's end offset per partition.
func (h *runHarness) endOffsets() map[int]int64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[int]int64{}
	for p := 0; p < 12; p++ {
		pc, err := kafka.DialLeader(ctx, "tcp", h.addr, runTopic, p)
		if err != nil {
			h.t.Fatal(err)
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			h.t.Fatal(err)
		}
		out[p] = last
	}
	return out
}

// partitionsWatermark is the earliest of the input partitions' watermarks
// at the end of the log: the largest ts of each partition's records (keyed
// as produce keys them), less max_out_of_order. Each partition closes
// intervals by its own clock, which runs on from its last event only as
// fast as the wall clock: an interval that ends after this may still be
// open in some partition when the test looks.
func (h *runHarness) partitionsWatermark() int64 {
	parts := make([]int, 12)
	for i := range parts {
		parts[i] = i
	}
	af := adapterFlags{format: h.format}
	ad := af.newAdapter()
	var dec events.Decoder
	var ev events.Event
	largest := map[int]int64{}
	for _, l := range h.lines {
		key, ts := "", int64(0)
		if ad != nil {
			evs, err := ad.Translate(l, nil)
			if err != nil {
				continue
			}
			for _, e := range evs {
				ts = max(ts, e.TS)
			}
			key = h.keyOf[string(l)]
		} else if dec.Decode(l, &ev) == nil {
			key, ts = ev.AgentID, ev.TS
		}
		if key != "" && ts > 0 {
			p := (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(key)}, parts...)
			largest[p] = max(largest[p], ts)
		}
	}
	wm := int64(math.MaxInt64)
	for _, ts := range largest {
		wm = min(wm, ts-2000)
	}
	return wm
}

// closedIntervals are replay's intervals that every partition has closed
// in event time by the end of the log (see partitionsWatermark), by Redis
// key.
func (h *runHarness) closedIntervals() map[string]map[string]any {
	wm := h.partitionsWatermark()
	out := map[string]map[string]any{}
	for _, r := range h.records("interval") {
		end, err := events.ParseRFC3339Millis([]byte(r["end"].(string)))
		if err != nil {
			h.t.Fatal(err)
		}
		if end > wm {
			continue
		}
		start, _ := events.ParseRFC3339Millis([]byte(r["start"].(string)))
		out[fmt.Sprintf("acw:%s:%s:15m:%d", r["scope"], r["key"], start)] = r
	}
	return out
}

// intervalFields are every base and derived field of an interval record.
var intervalFields = func() []string {
	f := append([]string(nil), events.CounterNames[:]...)
	for _, d := range events.DerivedFields {
		f = append(f, d.Name)
	}
	return f
}()

// intervalDiffs compares Redis interval hashes with replay's values and
// describes the differences (at most 10).
func (h *runHarness) intervalDiffs(want map[string]map[string]any) []string {
	ctx := context.Background()
	var diffs []string
	keys := slices.Sorted(maps.Keys(want))
	pipe := h.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	rcmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
		rcmds[i] = pipe.HGetAll(ctx, strings.Replace(k, ":15m:", ":reasons:15m:", 1))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return []string{err.Error()}
	}
	for i, k := range keys {
		got := cmds[i].Val()
		for _, f := range intervalFields {
			w := jsonNumber(want[k][f])
			if got[f] != w {
				diffs = append(diffs, fmt.Sprintf("%s %s = %q, replay %q", k, f, got[f], w))
				break
			}
		}
		// the not-ready breakdown: replay's reasons object (queues have none)
		wantR := map[string]string{}
		if rs, ok := want[k]["reasons"].(map[string]any); ok {
			for r, v := range rs {
				wantR[r] = jsonNumber(v)
			}
		}
		if gotR := rcmds[i].Val(); !maps.Equal(gotR, wantR) {
			diffs = append(diffs, fmt.Sprintf("%s reasons = %v, replay %v", k, gotR, wantR))
		}
		if len(diffs) >= 10 {
			break
		}
	}
	return diffs
}

// decodeRecord decodes a JSON record keeping numbers as written.
func decodeRecord(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var r map[string]any
	err := d.Decode(&r)
	return r, err
}

// jsonNumber renders a decoded JSON value as replay wrote it.
func jsonNumber(v any) string { return fmt.Sprint(v) }

// byID indexes JSON records by one of their fields.
// checkIntervalsTopic waits until acw.intervals holds every closed
// interval of replay, of every scope, and checks that each copy of each
// is replay's record byte for byte (a team, queue or centre record comes
// once every partition has closed the interval, from the shared writer).
func (h *runHarness) checkIntervalsTopic(timeout time.Duration) {
	t := h.t
	// A partition closes an interval when its own clock passes it: the
	// intervals every partition has closed end before the earliest of
	// the partitions' largest ts (less max_out_of_order).
	want := map[string]string{}
	for _, r := range h.closedIntervals() {
		b, _ := json.Marshal(r)
		want[fmt.Sprintf("%s:%s:%s", r["scope"], r["key"], r["start"])] = string(b)
	}
	scopes := map[string]int{}
	for k := range want {
		scopes[k[:strings.IndexByte(k, ':')]]++
	}
	if scopes["agent"] == 0 || scopes["team"] == 0 || scopes["center"] == 0 {
		t.Fatalf("no closed interval of every scope to check: %v", scopes)
	}
	id := func(r map[string]any) string { return fmt.Sprintf("%s:%s:%s", r["scope"], r["key"], r["start"]) }
	var got map[string][]string
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		got = byID(t, h.readTopic("acw.intervals"), id)
		missing := 0
		for k := range want {
			if len(got[k]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			n := 0
			for k, w := range want {
				if len(got[k]) == 0 && n < 5 {
					t.Errorf("interval %s missing from acw.intervals: %s", k, w)
					n++
				}
			}
			byStart := map[string]int{}
			for k := range want {
				if len(got[k]) == 0 {
					byStart[k[strings.LastIndex(k, "T"):]+" "+k[:strings.Index(k, ":")]]++
				}
			}
			t.Errorf("%d of %d closed intervals missing from acw.intervals: %v", missing, len(want), byStart)
			return
		}
	}
	bad := 0
	for k, w := range want {
		for _, c := range got[k] {
			if canonJSON(t, c) != w && bad < 5 {
				t.Errorf("interval %s differs on acw.intervals:\n got %s\nwant %s", k, c, w)
				bad++
			}
		}
	}
}

func byID(t testing.TB, msgs []kafka.Message, id func(map[string]any) string) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		r, err := decodeRecord(m.Value)
		if err != nil {
			t.Fatalf("derived record %q: %v", m.Value, err)
		}
		out[id(r)] = append(out[id(r)], string(m.Value))
	}
	return out
}

func alertID(r map[string]any) string { return r["segment_id"].(string) + ":" + r["kind"].(string) }

// checkDerived compares the derived topics with replay: every segment and
// alert of replay is there with identical JSON, repeats are identical
// copies, and the only extra alerts are overruns of wrap-ups replay left
// open (the live pipeline's clock runs on past the end of the log).
func (h *runHarness) checkDerived() {
	t := h.t
	replaySegs := map[string]string{}
	for _, r := range h.records("segment") {
		b, _ := json.Marshal(r)
		replaySegs[r["segment_id"].(string)] = string(b)
	}
	got := byID(t, h.readTopic("acw.segments"), func(r map[string]any) string { return r["segment_id"].(string) })
	for id, want := range replaySegs {
		copies := got[id]
		if len(copies) == 0 {
			t.Errorf("segment %s missing from acw.segments: %s", id, want)
			continue
		}
		for _, c := range copies {
			if canonJSON(t, c) != want {
				t.Errorf("segment %s differs:\n got %s\nwant %s", id, c, want)
			}
		}
	}
	for id := range got {
		if _, ok := replaySegs[id]; !ok {
			t.Errorf("acw.segments has %s, which replay does not", id)
		}
	}
	open := map[string]bool{}
	for _, r := range h.records("open") {
		open[r["agent_id"].(string)] = true
	}
	replayAlerts := map[string]string{}
	for _, r := range h.records("alert") {
		b, _ := json.Marshal(r)
		replayAlerts[alertID(r)] = string(b)
	}
	gotAlerts := byID(t, h.readTopic("acw.alerts"), alertID)
	for id, want := range replayAlerts {
		if len(gotAlerts[id]) == 0 {
			t.Errorf("alert %s missing from acw.alerts", id)
		}
		for _, c := range gotAlerts[id] {
			if canonJSON(t, c) != want {
				t.Errorf("alert %s differs:\n got %s\nwant %s", id, c, want)
			}
		}
	}
	// The live pipeline may also raise alerts replay does not: overruns of
	// wrap-ups still open at the end of the log (its clock runs on), and
	// premature wall-clock overruns, each followed by a resolved alert at
	// the wrap-up's end because it closed in time.
	segs := map[string]map[string]any{}
	for _, r := range h.records("segment") {
		segs[r["segment_id"].(string)] = r
	}
	premature := 0
	for id, copies := range gotAlerts {
		if _, ok := replayAlerts[id]; ok {
			continue
		}
		r, _ := decodeRecord([]byte(copies[0]))
		sid := r["segment_id"].(string)
		seg := segs[sid]
		switch {
		case r["kind"] == "overrun" && seg == nil && open[r["agent_id"].(string)]:
		case r["kind"] == "overrun" && seg != nil && seg["overrun"] == false && len(gotAlerts[sid+":resolved"]) > 0:
			premature++
		case r["kind"] == "resolved" && seg != nil && seg["overrun"] == false && r["at"] == seg["end"] && len(gotAlerts[sid+":overrun"]) > 0:
		default:
			t.Errorf("unexpected alert %s: %s", id, copies[0])
		}
	}
	if premature > 0 {
		t.Logf("%d premature wall-clock overrun alerts, each resolved", premature)
	}
	if n, err := h.rdb.XLen(context.Background(), "acw:alerts").Result(); err != nil || int(n) != len(gotAlerts) {
		t.Errorf("acw:alerts has %d entries (%v), want one per distinct alert: %d", n, err, len(gotAlerts))
	}
	// Wrap-ups still open are in acw:open, scored by their start.
	members, err := h.rdb.ZRangeWithScores(context.Background(), "acw:open", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	gotOpen := map[string]int64{}
	for _, m := range members {
		gotOpen[m.Member.(string)] = int64(m.Score)
	}
	wantOpen := map[string]int64{}
	for _, r := range h.records("open") {
		s, _ := events.ParseRFC3339Millis([]byte(r["start"].(string)))
		wantOpen[r["agent_id"].(string)] = s
	}
	if !maps.Equal(gotOpen, wantOpen) {
		t.Errorf("acw:open = %v, want %v", gotOpen, wantOpen)
	}
}

// canonJSON re-encodes a JSON object with sorted keys, as json.Marshal of
// a map does.
func canonJSON(t testing.TB, s string) string {
	r, err := decodeRecord([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// waitIntervals polls Redis until every interval replay closed in event
// time has replay's values.
func (h *runHarness) waitIntervals(timeout time.Duration) {
	h.t.Helper()
	want := h.closedIntervals()
	if len(want) < 50 {
		h.t.Fatalf("only %d closed intervals: the log is too short to test anything", len(want))
	}
	deadline := time.Now().Add(timeout)
	for {
		diffs := h.intervalDiffs(want)
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("Redis intervals differ from replay after %v:\n%s\n%s", timeout, strings.Join(diffs, "\n"), h.diagnose(diffs[0]))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diagnose describes what may explain an interval difference (a line of
// intervalDiffs): whether the input topic holds exactly the lines the
// test produced (a producer retry can write a batch twice), and the
// segments of the key's agent on acw.segments against replay's.
func (h *runHarness) diagnose(diff string) string {
	var b strings.Builder
	total := int64(0)
	for _, end := range h.endOffsets() {
		total += end
	}
	fmt.Fprintf(&b, "the input topic holds %d messages; the test produced %d lines\n", total, len(h.lines))
	parts := strings.Split(strings.Fields(diff)[0], ":")
	if len(parts) < 3 || parts[1] != "agent" {
		return b.String()
	}
	agent := parts[2]
	line := func(r map[string]any) string {
		return fmt.Sprintf("%v %v–%v %v ms %v", r["call_id"], r["start"], r["end"], jsonNumber(r["duration_ms"]), r["end_state"])
	}
	want := map[string]string{}
	for _, r := range h.records("segment") {
		if r["agent_id"] == agent {
			want[r["segment_id"].(string)] = line(r)
		}
	}
	got := byID(h.t, h.readTopic("acw.segments"), func(r map[string]any) string { return r["segment_id"].(string) })
	for _, id := range slices.Sorted(maps.Keys(got)) {
		for _, c := range got[id] {
			var r map[string]any
			if json.Unmarshal([]byte(c), &r) == nil && r["agent_id"] == agent && line(r) != want[id] {
				fmt.Fprintf(&b, "%s's segment %s: run %s; replay %q\n", agent, id, line(r), want[id])
			}
		}
	}
	for id, w := range want {
		if len(got[id]) == 0 {
			fmt.Fprintf(&b, "%s's segment %s missing: replay %s\n", agent, id, w)
		}
	}
	return b.String()
}

// checkRunning fails the test if the in-process acwd run has ended.
func (h *runHarness) checkRunning() {
	h.t.Helper()
	select {
	case msg := <-h.exited:
		h.t.Fatalf("acwd run ended by itself: %s", msg)
	default:
	}
}

// waitAlerts polls acw.alerts until it holds every alert replay raised
// (the last ones come from the partitions' event-time clocks).
func (h *runHarness) waitAlerts(timeout time.Duration) {
	h.t.Helper()
	h.waitTopic("acw.alerts", "alert", alertID, timeout)
}

// waitSegments polls acw.segments until it holds every segment replay
// emitted. Replay ends its input by closing what is due at its largest
// ts; a live partition gets there only when its event-time clock passes
// that ts (max_out_of_order after its last event, in wall-clock time),
// so a test must wait for it before stopping the last process.
func (h *runHarness) waitSegments(timeout time.Duration) {
	h.t.Helper()
	h.waitTopic("acw.segments", "segment", func(r map[string]any) string { return r["segment_id"].(string) }, timeout)
}

// waitTopic polls topic until it holds a record with the id of every
// replay record of type typ.
func (h *runHarness) waitTopic(topic, typ string, id func(map[string]any) string, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := byID(h.t, h.readTopic(topic), id)
		missing := 0
		for _, r := range h.records(typ) {
			if len(got[id(r)]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d %ss still missing from %s after %v", missing, typ, topic, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitCheckpoints polls until every input partition's checkpoint has
// reached its end offset.
func (h *runHarness) waitCheckpoints(group string, timeout time.Duration) {
	h.t.Helper()
	h.waitCheckpointsAt("acw", group, timeout)
}

// waitCheckpointsAt is waitCheckpoints for a run with --prefix prefix.
func (h *runHarness) waitCheckpointsAt(prefix, group string, timeout time.Duration) {
	h.t.Helper()
	ends := h.endOffsets()
	deadline := time.Now().Add(timeout)
	for {
		behind := []string{}
		for p, end := range ends {
			v, _ := h.rdb.HGet(context.Background(), fmt.Sprintf("%s:ckpt:%s:%s:%d", prefix, group, runTopic, p), "eff_offset").Int64()
			if v < end {
				behind = append(behind, fmt.Sprintf("%d:%d/%d", p, v, end))
			}
		}
		if len(behind) == 0 {
			return
		}
		h.checkRunning()
		if time.Now().After(deadline) {
			sort.Strings(behind)
			h.t.Fatalf("checkpoints behind after %v: %v", timeout, behind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkDLQ checks that every rejected line is on acw.dlq with its reason.
func (h *runHarness) checkDLQ(oversized int) {
	t := h.t
	want := map[string]int{}
	for _, r := range h.records("rejected") {
		want[r["reason"].(string)]++
	}
	if oversized > 0 {
		want[events.ReasonOversized] = oversized
	}
	got := map[string]int{}
	for _, m := range h.readTopic("acw.dlq") {
		hd := map[string]string{}
		for _, x := range m.Headers {
			hd[x.Key] = string(x.Value)
		}
		if hd["error"] == "" || hd["topic"] != runTopic || hd["offset"] == "" || hd["partition"] == "" {
			t.Errorf("dlq message without its error or source: %v", hd)
		}
		got[hd["reason"]]++
	}
	// Repeats after a restart are allowed; a missing rejection is not.
	for reason, n := range want {
		if got[reason] < n {
			t.Errorf("acw.dlq has %d %s messages, want %d", got[reason], reason, n)
		}
	}
}

func simForRun(seed uint64) sim.Config {
	// A simulated hour runs on for about 40 minutes (calls in progress,
	// wrap-ups, late logouts): starting 2 h ago, every event is dated
	// before it is produced, as a live feed's are (--max-future holds
	// events against the Kafka record's timestamp). The call volume is
	// flat, so that the test's input is as large at 3:00 as at 10:00.
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	return sim.Config{Seed: seed, Agents: 60, Teams: 4, Queues: 3, Start: start, Duration: time.Hour,
		Disorder: time.Second, DuplicateRate: 0.01, BadRate: 0.002, MissRate: 0.05, FlatLoad: true}
}

// TestRunMatchesReplay preloads a log into a 12-partition topic and checks
// that acwd run gives replay's segments, alerts and interval values, and
// dead-letters what replay rejects plus an oversized message.
func TestRunMatchesReplay(t *testing.T) {
	big := append(append([]byte(`{"agent_id":"a1","state":"ready","ts":1,"pad":"`), bytes.Repeat([]byte("x"), 1<<20)...), `"}`...)
	h := newRunHarness(t, simForRun(7), big)
	h.produce(h.lines)
	t.Logf("%d input lines, %d replay records", len(h.lines), len(h.replay))
	stop := h.startInProcess("g1")
	h.finish("g1")
	stop()
	h.checkDerived()
	h.checkRollups()
	h.checkDLQ(1)
}

// checkRollups checks the day and last-60-minutes views against the
// interval hashes in Redis: every day hash is the sum of that day's
// intervals (acw_max_ms their maximum), and every agent's last-60m hash is
// the sum of the intervals it spans (an agent's keys have one writer, so
// its span is exact). Derived fields must be those of the summed counters.
func (h *runHarness) checkRollups() {
	t := h.t
	ctx := context.Background()
	all := map[string]map[string]string{}
	reasons := map[string]map[string]string{} // the views' not-ready breakdowns, by the view's key
	iter := h.rdb.Scan(ctx, 0, "acw:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.Contains(k, ":15m:") || strings.Contains(k, ":day:") || strings.HasSuffix(k, ":last60m") {
			if strings.Contains(k, ":reasons:") {
				reasons[strings.Replace(k, ":reasons:", ":", 1)] = h.rdb.HGetAll(ctx, k).Val()
				continue
			}
			all[k] = h.rdb.HGetAll(ctx, k).Val()
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	num := func(m map[string]string, f string) int64 {
		v, err := strconv.ParseInt(m[f], 10, 64)
		if err != nil {
			t.Fatalf("field %s = %q: %v", f, m[f], err)
		}
		return v
	}
	counters := func(m map[string]string) events.Counters {
		var c events.Counters
		for i, p := range c.Fields() {
			*p = num(m, events.CounterNames[i])
		}
		return c
	}
	// sumOf adds the interval hashes of prefix with from <= start < to,
	// and their not-ready breakdowns.
	sumOf := func(prefix string, from, to int64) (events.Counters, map[string]string) {
		var sum events.Counters
		rs := map[string]int64{}
		for k, m := range all {
			if rest, ok := strings.CutPrefix(k, prefix+":15m:"); ok {
				if s, _ := strconv.ParseInt(rest, 10, 64); s >= from && s < to {
					c := counters(m)
					sum.Add(&c)
					for r := range reasons[k] {
						rs[r] += num(reasons[k], r)
					}
				}
			}
		}
		out := map[string]string{}
		for _, x := range events.CapReasons(events.SortedReasons(rs)) {
			out[x.Reason] = strconv.FormatInt(x.MS, 10)
		}
		return sum, out
	}
	checked := map[string]int{}
	for k, m := range all {
		var prefix, view string
		switch {
		case strings.Contains(k, ":day:"):
			prefix, view = k[:strings.Index(k, ":day:")], "day"
		case strings.HasSuffix(k, ":last60m") && strings.HasPrefix(k, "acw:agent:"):
			prefix, view = strings.TrimSuffix(k, ":last60m"), "last60m"
		default:
			continue
		}
		want, wantReasons := sumOf(prefix, num(m, "start"), num(m, "end"))
		if got := counters(m); got != want {
			t.Errorf("%s = %+v, want the sum of its intervals %+v", k, got, want)
			continue
		}
		if got := reasons[k]; !maps.Equal(got, wantReasons) && !(len(got) == 0 && len(wantReasons) == 0) {
			t.Errorf("%s reasons = %v, want the sum of its intervals' %v", k, got, wantReasons)
		}
		if len(wantReasons) > 0 {
			checked["reasons"]++
		}
		if got := counters(m); got.MissedCount > 0 {
			checked["missed"]++
		}
		iv := events.Interval{Counters: want}
		rec, _ := decodeRecord(iv.AppendJSON(nil))
		for _, d := range events.DerivedFields {
			if m[d.Name] != jsonNumber(rec[d.Name]) {
				t.Errorf("%s %s = %q, want %s", k, d.Name, m[d.Name], jsonNumber(rec[d.Name]))
			}
		}
		checked[view]++
	}
	// (a platform's feed has no missed offers: the simulator makes them in
	// the canonical format only)
	if checked["day"] == 0 || checked["last60m"] == 0 || checked["reasons"] == 0 || (h.format == "" && checked["missed"] == 0) {
		t.Errorf("checked %v: no day or last-60m views, or none with not-ready reasons or missed offers, found", checked)
	}
	h.checkSharedDrained()
}

// checkSharedDrained checks that the shared writer applied every
// partition's shared log (the last one when its process stopped).
func (h *runHarness) checkSharedDrained() {
	for _, p := range h.sharedUndrained() {
		h.t.Error(p)
	}
}

// waitSharedDrained waits until a shared writer has applied every
// partition's shared log, at most d.
func (h *runHarness) waitSharedDrained(d time.Duration) {
	deadline := time.Now().Add(d)
	for len(h.sharedUndrained()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// sharedUndrained describes the shared logs with entries after their
// applied position.
func (h *runHarness) sharedUndrained() []string {
	t := h.t
	ctx := context.Background()
	sets, err := h.rdb.Keys(ctx, "acw:shared:*:logs").Result()
	if err != nil || len(sets) == 0 {
		t.Fatalf("no shared log sets (%v)", err)
	}
	var out []string
	for _, set := range sets {
		pos := strings.TrimSuffix(set, "logs") + "pos"
		for _, l := range h.rdb.SMembers(ctx, set).Val() {
			at := h.rdb.HGet(ctx, pos, l).Val()
			if n := len(h.rdb.XRange(ctx, l, "("+at, "+").Val()); at == "" || n > 0 {
				out = append(out, fmt.Sprintf("shared log %s: %d entries after the applied position %q", l, n, at))
			}
		}
	}
	return out
}

// brokenPublisher fails every publish, as a Kafka cluster that cannot
// take the derived records would.
type brokenPublisher struct{ calls *atomic.Int64 }

func (p brokenPublisher) Publish(context.Context, []kafka.Message) error {
	p.calls.Add(1)
	return errors.New("derived topics unavailable (test)")
}

// TestRunRepublishesTheOutbox: a batch's derived records are committed
// with its effects and published after them. A run that cannot publish
// commits each partition's first batch and then stops, records
// unpublished; the next run, which resumes after those batches (their
// effects are in Redis, so it does not derive their records again),
// publishes them from the checkpoints. The result is replay's.
func TestRunRepublishesTheOutbox(t *testing.T) {
	h := newRunHarness(t, simForRun(29))
	h.produce(h.lines)
	var calls atomic.Int64
	wrapPublisher = func(pipeline.Publisher) pipeline.Publisher { return brokenPublisher{&calls} }
	defer func() { wrapPublisher = nil }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- mainExit(ctx, append(h.runArgs("ob"), "--shutdown-timeout", "1s"), nil, io.Discard, io.Discard)
	}()
	// Wait until every partition has committed a batch whose records are
	// still unpublished.
	deadline := time.Now().Add(30 * time.Second)
	for pending := 0; pending < 12; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d partitions committed a batch with records", pending)
		}
		time.Sleep(100 * time.Millisecond)
		pending = 0
		for p := range 12 {
			if n, _ := h.rdb.HStrLen(ctx, fmt.Sprintf("acw:ckpt:ob:%s:%d", runTopic, p), "outbox").Result(); n > 0 {
				pending++
			}
		}
	}
	cancel()
	<-done
	if calls.Load() == 0 {
		t.Fatal("the broken publisher was never called")
	}
	if n := len(h.readTopic("acw.segments")); n != 0 {
		t.Fatalf("%d segments published by a run that could not publish", n)
	}
	wrapPublisher = nil
	stop := h.startInProcess("ob")
	h.finish("ob")
	stop()
	h.checkDerived()
	h.checkDLQ(0)
}

// TestRunInSmallBatchesMatchesReplay drains a preloaded log with a small
// --batch-max-bytes: a partition that has gathered that much of derived
// records flushes before it applies more, so that what it holds in flight
// is bounded whatever the backlog, and the results are still replay's.
// acw_flush_records_bytes shows that no flush carried more than the bound
// plus the records of its last message (one that closes an interval emits
// a record for each of the partition's agents: five here, about 4 KiB).
func TestRunInSmallBatchesMatchesReplay(t *testing.T) {
	h := newRunHarness(t, simForRun(23))
	h.produce(h.lines)
	addr := freeAddr(t)
	stop := h.startInProcess("small", "--batch-max-bytes", "4096", "--http", addr)
	h.finish("small")
	m := scrape(t, addr)
	stop()
	h.checkDerived()
	h.checkRollups()
	total := m["acw_flush_records_bytes_count"]
	under := m[`acw_flush_records_bytes_bucket{le="16384"}`]
	full := total - m[`acw_flush_records_bytes_bucket{le="2048"}`]
	if total == 0 || under != total {
		t.Errorf("%.0f of %.0f flushes carried more than 16 KiB of derived records with --batch-max-bytes 4096", total-under, total)
	}
	if full == 0 {
		t.Errorf("no flush carried over 2 KiB of records: the log did not fill a batch, so this test checked nothing")
	}
	t.Logf("%.0f flushes, %.0f of them over 2 KiB", total, full)
}
