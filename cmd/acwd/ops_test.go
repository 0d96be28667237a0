package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acwstream/acwstream/sink/redistest"
)

// freeAddr returns a 127.0.0.1 address with a port nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get fetches url and returns the status code and body (0 if unreachable).
// checkWallboard checks that acwd run serves the wallboard and that its
// state lists exactly the agents whose live-state hashes are in Redis.
func checkWallboard(t *testing.T, h *runHarness, addr string) {
	t.Helper()
	if code, page := get("http://" + addr + "/"); code != 200 || !strings.Contains(page, "live wrap-up board") {
		t.Errorf("GET /: %d %.100q, want the wallboard", code, page)
	}
	code, body := get("http://" + addr + "/api/state")
	var st struct {
		Agents []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET /api/state: %d %v %.200s", code, err, body)
	}
	want := 0
	iter := h.rdb.Scan(context.Background(), 0, "acw:agent:*", 1000).Iterator()
	for iter.Next(context.Background()) {
		if h.rdb.HExists(context.Background(), iter.Val(), "state").Val() {
			want++
		}
	}
	if len(st.Agents) != want || want == 0 {
		t.Errorf("wallboard state lists %d agents, Redis has %d agent hashes", len(st.Agents), want)
	}
}

func get(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape returns the samples of /metrics by series ("name{labels}").
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := get("http://" + addr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

// sum adds the samples of series matching the regular expression.
func sum(m map[string]float64, re string) float64 {
	r := regexp.MustCompile("^" + re + "$")
	total := 0.0
	for k, v := range m {
		if r.MatchString(k) {
			total += v
		}
	}
	return total
}

// waitStatus polls url until it answers want, failing after timeout.
func waitStatus(t testing.TB, url string, want int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := get(url)
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %q, want %d", url, code, body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunMetricsHealthAndReadiness scrapes /metrics while events flow and
// through a Redis outage: the series move, /healthz stays 200, and
// /readyz is 503 while Redis is down and 200 otherwise. The run ends with
// SIGTERM: exit status 0 and every partition checkpointed at its end.
func TestRunMetricsHealthAndReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 15 s")
	}
	cfg := simForRun(23)
	cfg.Agents = 60
	h := newRunHarness(t, cfg)
	addr := freeAddr(t)
	p := startProc(t, append(h.runArgs("ops"), "--http", addr, "--log-level", "info")...)
	waitStatus(t, "http://"+addr+"/healthz", 200, 20*time.Second)
	waitStatus(t, "http://"+addr+"/readyz", 200, 30*time.Second)
	before := scrape(t, addr)
	if v := before["acw_assigned_partitions"]; v != 12 {
		t.Errorf("acw_assigned_partitions %v, want 12", v)
	}
	if v := sum(before, `acw_build_info\{goversion="go[^"]+",version="[^"]+"\}`); v != 1 {
		t.Errorf("acw_build_info missing: %v", v)
	}

	streamed := h.streamLines(20, 100*time.Millisecond)
	<-streamed
	h.waitCheckpoints("ops", 60*time.Second)
	mid := scrape(t, addr)
	checkWallboard(t, h, addr)
	for _, series := range []string{
		`acw_events_total\{outcome="applied"\}`,
		`acw_segments_total\{outcome="(ok|warn|overrun)"\}`,
		`acw_wrapup_duration_seconds_count`,
		`acw_alerts_total\{kind="overrun"\}`,
		`acw_event_to_redis_seconds_count`,
		`acw_redis_flush_seconds_count\{kind="(delta|snapshot)"\}`,
	} {
		if a, b := sum(before, series), sum(mid, series); b <= a {
			t.Errorf("%s did not grow while events flowed: %v → %v", series, a, b)
		}
	}
	if v := sum(mid, `acw_events_total\{outcome="(malformed|invalid)"\}`); v == 0 {
		t.Errorf("rejected events not counted (the simulated log has bad lines)")
	}
	if v := sum(mid, `acw_consumer_lag_messages\{partition="\d+",topic="acw.events"\}`); v != 0 {
		t.Errorf("consumer lag %v after catching up, want 0", v)
	}
	if n := len(regexp.MustCompile(`(?m)^acw_watermark_lag_seconds\{`).FindAllString(keys(mid), -1)); n > 12 {
		t.Errorf("%d watermark lag series, want one per partition", n)
	}
	for k := range mid {
		if strings.Contains(k, "agent") || strings.Contains(k, "team=") || strings.Contains(k, "queue=") {
			t.Errorf("unbounded label in %s", k)
		}
	}

	h.redis.Shutdown()
	body := waitStatus(t, "http://"+addr+"/readyz", 503, 10*time.Second)
	if !strings.Contains(body, "Redis unreachable") {
		t.Errorf("/readyz during the outage says %q", body)
	}
	if code, _ := get("http://" + addr + "/healthz"); code != 200 {
		t.Errorf("/healthz %d during the Redis outage, want 200", code)
	}
	time.Sleep(time.Second) // a few failed flushes
	h.redis.Restart()
	waitStatus(t, "http://"+addr+"/readyz", 200, 30*time.Second)
	after := scrape(t, addr)
	if after["acw_redis_up"] != 1 {
		t.Errorf("acw_redis_up %v after recovery", after["acw_redis_up"])
	}
	// Ready means Redis answers; the partitions' retries and clocks
	// still have to close what replay closes at the end of the log.
	h.waitSegments(30 * time.Second)
	if code := p.term(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	if n := logsContain([]*proc{p}, "partition released after its final checkpoint"); n != 12 {
		t.Errorf("%d partitions released with a final checkpoint, want 12", n)
	}
	h.waitCheckpoints("ops", time.Second)
	h.checkDerived()
}

func keys(m map[string]float64) string {
	var b strings.Builder
	for k := range m {
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestRunShutdownIsBounded stops acwd while Redis is down, so that the
// final flushes cannot complete: a second SIGTERM exits at once (130), and
// a single one exits 1 once --shutdown-timeout has passed.
func TestRunShutdownIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s")
	}
	cfg := simForRun(29)
	cfg.Agents = 30
	h := newRunHarness(t, cfg)
	twice := startProc(t, append(h.runArgs("sig2"), "--log-level", "info")...)
	// a prefix of its own: two groups may not share one
	once := startProc(t, append(h.runArgs("sig1"), "--log-level", "info", "--shutdown-timeout", "1s", "--prefix", "sig1")...)
	<-h.streamLines(5, 50*time.Millisecond)
	h.waitCheckpoints("sig2", 60*time.Second)
	h.waitCheckpointsAt("sig1", "sig1", 60*time.Second)
	h.redis.Shutdown()
	defer h.redis.Restart()
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	twice.cmd.Process.Signal(syscall.SIGTERM)
	once.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if twice.exited() {
		t.Fatal("acwd exited on the first SIGTERM although its final flushes could not reach Redis")
	}
	if code := twice.term(); code != 130 {
		t.Errorf("exit status %d after a second SIGTERM, want 130", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a second SIGTERM took %v to stop acwd", d)
	}
	select {
	case <-once.done:
	case <-time.After(20 * time.Second):
		t.Fatal("acwd did not give up its final flushes after --shutdown-timeout 1s")
	}
	if code := once.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d when the shutdown timed out, want 1", code)
	}
	if n := logsContain([]*proc{once}, "could not write their final checkpoint"); n != 1 {
		t.Errorf("the unfinished shutdown was not reported (%d)", n)
	}
}

// TestRunAuthenticatesWithSASL runs acwd against a broker that requires
// SASL (PLAIN, then SCRAM-SHA-512): it consumes the whole input.
func TestRunAuthenticatesWithSASL(t *testing.T) {
	for _, m := range []struct{ flag, kfake string }{{"plain", "PLAIN"}, {"scram-sha-512", "SCRAM-SHA-512"}} {
		t.Run(m.flag, func(t *testing.T) {
			c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 3, Topics: []string{runTopic}},
				kfake.EnableSASL(), kfake.Superuser(m.kfake, "acw", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			addr := c.ListenAddrs()[0]
			mech, err := saslMechanism(m.flag, "acw", "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: runTopic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
				BatchTimeout: time.Millisecond, Transport: &kafka.Transport{SASL: mech}}
			var msgs []kafka.Message
			for i := range 30 {
				agent := fmt.Sprintf("a%d", i%5)
				state := []string{"talking", "acw", "ready"}[i/5%3]
				msgs = append(msgs, kafka.Message{Key: []byte(agent),
					Value: fmt.Appendf(nil, `{"agent_id":%q,"state":%q,"ts":%d,"call_id":"c%d"}`, agent, state, 1_700_000_000_000+int64(i)*1000, i/15)})
			}
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			w.Close()
			rs := redistest.Start(t)
			rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
			defer rdb.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int)
			var errb lineBuffer
			go func() {
				done <- mainExit(ctx, []string{"run", "--brokers", addr, "--topic", runTopic, "--group", "sasl", "--redis", rs.URL(),
					"--http", "", "--log-level", "warn", "--kafka-sasl", m.flag, "--kafka-sasl-user", "acw", "--kafka-sasl-password", "s3cret"},
					nil, io.Discard, &errb)
			}()
			deadline := time.Now().Add(30 * time.Second)
			for {
				var total int64
				for p := range 3 {
					v, _ := rdb.HGet(context.Background(), fmt.Sprintf("acw:ckpt:sasl:%s:%d", runTopic, p), "eff_offset").Int64()
					total += v
				}
				if total == int64(len(msgs)) {
					break
				}
				if time.Now().After(deadline) {
					cancel()
					<-done
					t.Fatalf("checkpoints cover %d of %d messages after 30s; log:\n%s", total, len(msgs), errb.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("exit %d: %s", code, errb.String())
			}
		})
	}
}

// A second consumer group started on the prefix another group writes is
// refused (exit 2) with an error naming both groups and --prefix, and
// writes nothing: it would count every event again in the shared keys.
func TestRunRefusesASecondGroupOnAPrefix(t *testing.T) {
	cfg := simForRun(31)
	cfg.Agents = 5
	h := newRunHarness(t, cfg)
	stop := h.startInProcess("first")
	<-h.streamLines(2, 10*time.Millisecond)
	h.waitCheckpoints("first", 60*time.Second)
	stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errb bytes.Buffer
	code := mainExit(ctx, h.runArgs("second"), nil, io.Discard, &errb)
	msg := errb.String()
	if code != 2 || !strings.Contains(msg, `consumer group "first"`) || !strings.Contains(msg, `group "second"`) || !strings.Contains(msg, "--prefix") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if keys := h.rdb.Keys(ctx, "acw:ckpt:second:*").Val(); len(keys) > 0 {
		t.Fatalf("the refused group wrote %v", keys)
	}
	// the first group restarts on its prefix
	h.startInProcess("first")()
}

// acwd run started while Redis is down waits for it (the prefix's group
// cannot be checked before), then runs as usual.
func TestRunStartsBeforeRedis(t *testing.T) {
	cfg := simForRun(37)
	cfg.Agents = 5
	h := newRunHarness(t, cfg)
	h.redis.Shutdown()
	stop := h.startInProcess("late")
	// it reaches Redis about 1.5 s after starting (creating the derived
	// topics first)
	time.Sleep(4 * time.Second)
	h.redis.Restart()
	<-h.streamLines(2, 10*time.Millisecond)
	h.waitCheckpoints("late", 60*time.Second)
	stop()
	if g := h.rdb.Get(context.Background(), "acw:group").Val(); g != "late" {
		t.Fatalf("acw:group = %q, want late", g)
	}
}

// A group restarted with a setting its checkpoints depend on changed is
// refused once, at start (exit 2), naming the setting, both values and the
// way forward: restoring under the new setting failed in a loop (the
// window) or silently mixed two settings' results (thresholds).
func TestRunRefusesAChangedSettingAtStart(t *testing.T) {
	cfg := simForRun(41)
	cfg.Agents = 5
	h := newRunHarness(t, cfg)
	stop := h.startInProcess("g")
	<-h.streamLines(2, 10*time.Millisecond)
	h.waitCheckpoints("g", 60*time.Second)
	stop()

	// acwd run as its own process: it must exit by itself, at once.
	run := func(extra ...string) (int, string) {
		p := startProc(t, append(h.runArgs("g"), extra...)...)
		select {
		case <-p.done:
		case <-time.After(time.Minute):
			t.Fatalf("acwd run %v did not exit within a minute", extra)
		}
		b, _ := os.ReadFile(p.log)
		return p.cmd.ProcessState.ExitCode(), string(b)
	}
	code, msg := run("--window", "5m")
	if code != 2 || !strings.Contains(msg, `engine.window is "5m0s", the checkpoints under prefix "acw" were written with "15m0s"`) ||
		!strings.Contains(msg, "--prefix and --group") || strings.Contains(msg, "--accept-setting-changes to record") {
		t.Fatalf("changed window: exit %d: %s", code, msg)
	}
	if code, msg := run("--window", "5m", "--accept-setting-changes"); code != 2 {
		t.Fatalf("a changed window cannot be accepted: exit %d: %s", code, msg)
	}
	code, msg = run("--overrun", "45s")
	if code != 2 || !strings.Contains(msg, "engine.thresholds") || !strings.Contains(msg, "--accept-setting-changes") {
		t.Fatalf("changed threshold: exit %d: %s", code, msg)
	}
	// Accepted, the new value is recorded and the group runs on.
	stop = h.startInProcess("g", "--overrun", "45s", "--accept-setting-changes")
	defer stop()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v := h.rdb.HGet(context.Background(), "acw:settings", "engine.thresholds").Val()
		if strings.Contains(v, "overrun 45s") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded thresholds %q", v)
		}
	}
}

// Redis emptied (FLUSHALL, a restart without persistence) while Kafka
// holds the group's committed offsets: acwd must not recompute silently
// from the start of the topic (wrong wherever retention dropped records,
// and republishing ids with other content). By default each such
// partition stays unprocessed with /readyz false, one error and a metric,
// and the group does not rebalance over and over; with
// --on-lost-checkpoint rebuild it recomputes from the earliest offset,
// marking its derived records.
func TestRunRefusesALostCheckpointUnlessToldToRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts acwd run as a process three times")
	}
	cfg := simForRun(47)
	cfg.Agents = 30
	h := newRunHarness(t, cfg)
	h.produce(h.lines)
	p := startProc(t, append(h.runArgs("lost"), "--log-level", "info")...)
	h.waitCheckpoints("lost", 60*time.Second)
	if code := p.term(); code != 0 { // its final flushes commit the offsets to Kafka too
		t.Fatalf("exit %d", code)
	}
	ctx := context.Background()
	h.rdb.FlushAll(ctx)

	addr := freeAddr(t)
	p = startProc(t, append(h.runArgs("lost"), "--http", addr, "--log-level", "info")...)
	waitStatus(t, "http://"+addr+"/metrics", 200, 20*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, addr)[`acw_partitions_blocked{reason="lost_checkpoint"}`] != 12 {
		if time.Now().After(deadline) {
			t.Fatalf("blocked partitions: %v", scrape(t, addr)[`acw_partitions_blocked{reason="lost_checkpoint"}`])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("http://" + addr + "/readyz"); code != 503 || !strings.Contains(body, "partitions blocked") || !strings.Contains(body, "--on-lost-checkpoint rebuild") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	time.Sleep(3 * time.Second) // a rebalance storm would show now
	if n := scrape(t, addr)["acw_rebalances_total"]; n != 1 {
		t.Errorf("%v rebalances with the partitions blocked, want 1", n)
	}
	for _, k := range h.rdb.Keys(ctx, "acw:ckpt:*").Val() {
		if h.rdb.HExists(ctx, k, "eff_offset").Val() {
			t.Errorf("a blocked partition wrote checkpoint %s", k)
		}
	}
	if code := p.term(); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}

	p = startProc(t, append(h.runArgs("lost"), "--on-lost-checkpoint", "rebuild", "--log-level", "info")...)
	h.waitCheckpoints("lost", 60*time.Second)
	h.waitIntervals(60 * time.Second) // the whole log is still in Kafka: exact again
	if code := p.term(); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	marked := 0
	for _, m := range h.readTopic("acw.segments") {
		for _, x := range m.Headers {
			if x.Key == "rebuild" && strings.HasSuffix(string(m.Value), `,"rebuild":`+string(x.Value)+"}") {
				marked++
			}
		}
	}
	if marked == 0 {
		t.Error("the rebuild published no marked segment")
	}
	if n := logsContain([]*proc{p}, "rebuilding it from the earliest offset"); n != 12 {
		t.Errorf("%d partitions said they rebuild, want 12", n)
	}
}

// GNU timeout (`timeout -s TERM acwd run`) sends its signal to the
// command and then to the command's process group: acwd gets SIGTERM
// twice within milliseconds, while it flushes. That is one stop, not a
// hard exit without the final checkpoints.
func TestTwoSignalsAtOnceAreOneStop(t *testing.T) {
	cfg := simForRun(43)
	cfg.Agents = 5
	h := newRunHarness(t, cfg)
	p := startProc(t, append(h.runArgs("g"), "--log-level", "info")...)
	p.waitAssigned()
	<-h.streamLines(2, 10*time.Millisecond)
	h.waitCheckpoints("g", 60*time.Second)
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(5 * time.Millisecond) // a few ms apart, as timeout sends them: two deliveries
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("acwd did not exit within 30s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 || logsContain([]*proc{p}, "acwd run stopped") != 1 {
		t.Fatalf("exit %d after two signals at once; want a clean stop (0, \"acwd run stopped\")", code)
	}
}
