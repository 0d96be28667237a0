// Package redistest starts a real redis-server for tests, on a free port
// of 127.0.0.1, with persistence off. It never uses a server that is
// already running, so tests behave the same on every machine. `make test`
// installs redis-server when it is missing.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a redis-server child process owned by one test.
type Server struct {
	t    testing.TB
	Addr string // host:port
	cmd  *exec.Cmd
	dir  string // working directory: dump.rdb of the last Shutdown
}

// Start starts a server and stops it when the test ends. It fails the test
// when redis-server is not installed or does not come up within 10 s.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: run `make test`, which installs it, or apt-get install redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{t: t, Addr: addr, dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL for database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills the server (SIGKILL, as in a crash) and discards its data; it
// is safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(filepath.Join(s.dir, "dump.rdb"))
}

// Shutdown stops the server the way an operator does (SHUTDOWN SAVE): the
// data is written to disk and the next Restart loads it, as a Redis with
// persistence comes back after maintenance.
func (s *Server) Shutdown() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		fmt.Fprint(c, "*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n")
		c.SetDeadline(time.Now().Add(10 * time.Second))
		bufio.NewReader(c).ReadString('\n') // the connection closes when it is done
		c.Close()
	}
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("redis-server on %s did not shut down", s.Addr)
	}
	s.cmd = nil
}

// Crash kills the server without saving: a Restart then loads the
// dump.rdb of its last SAVE (or Shutdown), losing every write since, as a
// failover to a lagging replica or a restore from a backup does.
func (s *Server) Crash() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same address, with the data of
// the last Shutdown (or SAVE, after a Crash) or else empty (no automatic persistence), and waits
// until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.Stop()
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning", "--dir", s.dir, "--dbfilename", "dump.rdb")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.Addr); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("redis-server on %s did not answer PING: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping speaks RESP directly so the helper has no client dependency.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("unexpected reply %s", strconv.Quote(line))
	}
	return nil
}
