package main

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run acwd as a separate process: the test binary
// re-executed with ACWD_TEST_MAIN=1 is acwd.
func TestMain(m *testing.M) {
	if os.Getenv("ACWD_TEST_MAIN") == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// proc is acwd running as a child process.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

var procSeq int

// startProc starts acwd with args; its output goes to a log file that is
// printed if the test fails.
func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	procSeq++
	logPath := filepath.Join(t.TempDir(), "acwd-"+strconv.Itoa(procSeq)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ACWD_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if d := os.Getenv("ACW_KEEP_LOGS"); d != "" {
				os.WriteFile(filepath.Join(d, filepath.Base(logPath)), b, 0o644)
			}
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s (tail):\n%s", logPath, b)
		}
	})
	return p
}

// kill stops the process with SIGKILL, as a crash.
// waitAssigned waits until the process has partitions, so that a kill
// lands while it processes, not while it joins: kfake keeps a member killed
// in the middle of JoinGroup in the group past its session timeout, and the
// partitions assigned to it then wait forever (seen in
// TestRunSurvivesSIGKILL; real brokers expire such members).
func (p *proc) waitAssigned() {
	p.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); logsContain([]*proc{p}, "partition assigned") == 0; {
		if time.Now().After(deadline) || p.exited() {
			p.t.Fatalf("acwd run did not get partitions within 30s: %v", p.err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and returns the exit status (failing the test if the
// process does not exit within 30 s).
func (p *proc) term() int {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("acwd did not exit within 30s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// streamLines produces lines in chunks, one every gap, in the background;
// the returned channel closes when all are written.
func (h *runHarness) streamLines(chunks int, gap time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := (len(h.lines) + chunks - 1) / chunks
		for i := 0; i < len(h.lines); i += n {
			h.produce(h.lines[i:min(i+n, len(h.lines))])
			time.Sleep(gap)
		}
	}()
	return done
}

// TestRunSurvivesSIGKILL kills acwd run at random moments at least five
// times while a log streams in, restarts it each time, and checks that the
// result is replay's: no segment missing, every interval value exact, and
// repeats on the derived topics only as identical copies.
func TestRunSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills several processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	cfg := simForRun(11)
	cfg.Agents = 120
	h := newRunHarness(t, cfg)
	// rounds of the shared writer over 3 views go in parts, so that kills
	// land between them too
	args := append(h.runArgs("crash"), "--session-timeout", "2s", "--log-level", "info", "--shared-chunk-views", "3")
	streamed := h.streamLines(40, 150*time.Millisecond)
	kills := 0
	var procs []*proc
	for kills < 5 {
		p := startProc(t, args...)
		procs = append(procs, p)
		p.waitAssigned()
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
		if p.exited() {
			t.Fatalf("acwd run exited on its own: %v", p.err)
		}
		p.kill()
		kills++
	}
	<-streamed
	p := startProc(t, args...)
	procs = append(procs, p)
	h.finish("crash")
	// The killed processes may have done all the work: the last one's
	// final shared log entries are left for this one's writer, once the
	// dead writer's lease expires. Only a writer that holds the lease
	// drains the logs when it stops, so wait for that too: stopped
	// earlier, this process would leave its partitions' final entries to
	// the next writer (there is none here).
	h.waitSharedDrained(30 * time.Second)
	for deadline := time.Now().Add(30 * time.Second); logsContain([]*proc{p}, `"leader":true`) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the last process never took the shared writer lease")
		}
	}
	if code := p.term(); code != 0 {
		t.Errorf("acwd run exited %d after SIGTERM, want 0", code)
	}
	h.checkDerived()
	h.checkRollups()
	h.checkDLQ(0)
	resumed := 0
	for _, p := range procs {
		b, _ := os.ReadFile(p.log)
		resumed += strings.Count(string(b), "effects resume")
	}
	t.Logf("%d kills; partitions restored from a checkpoint and replayed to it %d times", kills, resumed)
	if resumed == 0 {
		t.Error("no partition was ever restored from a checkpoint: the test did not test recovery")
	}
}

// finish waits until the group's checkpoints reach the end of the log and
// Redis and the derived topics hold replay's closed intervals, alerts and
// segments, and acw.intervals its closed interval records of every scope
// (it fails the test if they do not in time).
func (h *runHarness) finish(group string) {
	h.t.Helper()
	h.waitCheckpoints(group, 90*time.Second)
	h.waitIntervals(60 * time.Second)
	h.waitAlerts(60 * time.Second)
	h.waitSegments(30 * time.Second)
	// Partitions close their last windows as their clocks pass them (a
	// few seconds of wall time after the log ends).
	if h.format == "" {
		h.checkIntervalsTopic(60 * time.Second)
	}
}

// logsContain counts the occurrences of s in the processes' logs.
func logsContain(procs []*proc, s string) int {
	n := 0
	for _, p := range procs {
		b, _ := os.ReadFile(p.log)
		n += strings.Count(string(b), s)
	}
	return n
}

// TestRunRebalances runs three instances in one group while the log
// streams in; one stops with SIGTERM, one is killed, two new ones join.
// The result must be that of a single uninterrupted run.
func TestRunRebalances(t *testing.T) {
	if testing.Short() {
		t.Skip("rebalance test: runs several processes")
	}
	cfg := simForRun(13)
	cfg.Agents = 120
	h := newRunHarness(t, cfg)
	args := append(h.runArgs("rb"), "--session-timeout", "2s", "--log-level", "info", "--shared-chunk-views", "3")
	streamed := h.streamLines(40, 150*time.Millisecond)
	a, b, c := startProc(t, args...), startProc(t, args...), startProc(t, args...)
	procs := []*proc{a, b, c}
	time.Sleep(2500 * time.Millisecond)
	if code := a.term(); code != 0 {
		t.Errorf("instance stopped with SIGTERM exited %d, want 0", code)
	}
	d := startProc(t, args...)
	procs = append(procs, d)
	time.Sleep(2000 * time.Millisecond)
	b.kill()
	e := startProc(t, args...)
	procs = append(procs, e)
	<-streamed
	h.finish("rb")
	for _, p := range []*proc{c, d, e} {
		if code := p.term(); code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0", code)
		}
	}
	h.checkDerived()
	h.checkRollups()
	h.checkDLQ(0)
	if n := logsContain(procs, "partition released after its final checkpoint"); n == 0 {
		t.Error("no partition was ever released with a final checkpoint")
	}
	t.Logf("partitions released with a final checkpoint %d times, restored and replayed %d times",
		logsContain(procs, "partition released after its final checkpoint"), logsContain(procs, "effects resume"))
}

// TestRunPausesThroughRedisOutage stops Redis for 10 s while the log
// streams in: processing pauses and then completes with replay's result.
func TestRunPausesThroughRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test: takes over 10 s")
	}
	cfg := simForRun(17)
	cfg.Agents = 120
	h := newRunHarness(t, cfg)
	p := startProc(t, append(h.runArgs("outage"), "--log-level", "info")...)
	streamed := h.streamLines(40, 150*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	h.redis.Shutdown()
	time.Sleep(10 * time.Second)
	if p.exited() {
		t.Fatalf("acwd run exited during the Redis outage: %v", p.err)
	}
	h.redis.Restart()
	<-streamed
	h.finish("outage")
	if code := p.term(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	h.checkDerived()
	h.checkRollups()
	h.checkDLQ(0)
	if n := logsContain([]*proc{p}, "writing to Redis failed; pausing the partition"); n == 0 {
		t.Error("the outage was never noticed: no partition paused")
	}
	if n := logsContain([]*proc{p}, "writing to Redis: recovered"); n == 0 {
		t.Error("no partition reported recovery from the outage")
	}
}

// startDevBrokerProc starts acwd devbroker as a child process with the
// topics and partitions given and returns its address once it accepts
// connections.
func startDevBrokerProc(t testing.TB, partitions int, topics ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := startProc(t, "devbroker", "--listen", addr, "--partitions", strconv.Itoa(partitions), "--topic", strings.Join(topics, ","))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("devbroker did not listen on %s: %v", addr, p.err)
		}
	}
}

// Redis goes back in time mid-stream: it crashes and restarts from a
// snapshot (SAVE) taken seconds before, losing writes it had acknowledged,
// as after a failover to a lagging replica. Every partition must notice
// that its checkpoint is older than its last commit, restore from what
// Redis holds and re-read from there: the final result is replay's.
func TestRunRecoversFromRedisGoingBackInTime(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test: takes over 10 s")
	}
	cfg := simForRun(43)
	cfg.Agents = 120
	h := newRunHarness(t, cfg)
	p := startProc(t, append(h.runArgs("rollback"), "--log-level", "info")...)
	streamed := h.streamLines(40, 150*time.Millisecond)
	time.Sleep(2 * time.Second)
	if err := h.rdb.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	h.redis.Crash()
	h.redis.Restart()
	<-streamed
	h.finish("rollback")
	h.waitSharedDrained(30 * time.Second)
	if code := p.term(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	h.checkDerived()
	h.checkRollups()
	if n := logsContain([]*proc{p}, "Redis lost writes it had acknowledged"); n == 0 {
		t.Error("no partition noticed that Redis had lost its writes")
	}
}
