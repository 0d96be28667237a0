package wallboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/sink/redistest"
)

// now is the board's fixed event-time clock in these tests:
// 2026-11-22T10:07:00Z, in the interval starting 10:00.
const now = int64(1795341600000 + 7*60000)

type sseClient struct {
	t    *testing.T
	body io.Closer
	msgs chan State
}

// connect opens /api/events and decodes its state messages.
func connect(t *testing.T, url string) *sseClient {
	t.Helper()
	resp, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	c := &sseClient{t: t, body: resp.Body, msgs: make(chan State, 16)}
	go func() {
		defer close(c.msgs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "state":
				var st State
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &st); err != nil {
					t.Errorf("bad state message: %v", err)
					return
				}
				c.msgs <- st
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return c
}

func (c *sseClient) next() State {
	c.t.Helper()
	select {
	case st, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("event stream ended")
		}
		return st
	case <-time.After(5 * time.Second):
		c.t.Fatal("no state message within 5s")
	}
	return State{}
}

func agentIDs(l []Agent) []string {
	ids := make([]string, len(l))
	for i, a := range l {
		ids[i] = a.ID
	}
	return ids
}

func startBoard(t *testing.T) (*redis.Client, string) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	b, err := New(Config{Redis: rdb, Now: func() int64 { return now }, Refresh: 10 * time.Millisecond, Rescan: time.Hour, Tiles: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	hs := httptest.NewServer(b.Handler())
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); cancel(); <-done })
	return rdb, hs.URL
}

func TestBoardFollowsTheContract(t *testing.T) {
	rdb, url := startBoard(t)
	ctx := context.Background()
	iv := "1795341600000" // 10:00
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.HSet(ctx, "acw:agent:a-1", "state", "talking", "since", now-5000, "call_id", "c-1", "team", "t1", "queue", "sales",
		"last_acw_ms", 12000, "last_acw_overrun", 0, "updated", now).Err())
	must(rdb.HSet(ctx, "acw:agent:a-2", "state", "acw", "since", now-40000, "call_id", "c-2", "team", "t1", "queue", "support",
		"acw_start", now-40000, "segment_id", "s-2", "warn_ms", 20000, "overrun_ms", 30000,
		"last_acw_ms", 0, "last_acw_overrun", 0, "updated", now).Err())
	// the board reads the agents acwd keeps, not every acw:agent: key
	must(rdb.ZAdd(ctx, "acw:agents", redis.Z{Score: 1, Member: "a-1"}, redis.Z{Score: 1, Member: "a-2"}).Err())
	must(rdb.HSet(ctx, "acw:agent:gone", "state", "logged_out", "since", now-50000).Err())
	must(rdb.HSet(ctx, "acw:agent:a-1:15m:"+iv, "calls_handled", 3).Err())
	must(rdb.HSet(ctx, "acw:agent:a-1:day:2026-11-22", "calls_handled", 3).Err())
	must(rdb.HSet(ctx, "acw:agent:a-1:last60m", "calls_handled", 3).Err())
	must(rdb.ZAdd(ctx, "acw:open", redis.Z{Score: float64(now - 40000), Member: "a-2"}).Err())
	must(rdb.HSet(ctx, "acw:team:t1:15m:"+iv, "calls_handled", 7, "acw_count", 6, "acw_avg_ms", 15500, "acw_pct_of_work", "12.34", "overrun_count", 2).Err())
	must(rdb.HSet(ctx, "acw:team:t1:day:2026-11-22", "calls_handled", 70, "overrun_count", 9).Err())
	must(rdb.HSet(ctx, "acw:center:all:15m:"+iv, "calls_handled", 9).Err())
	must(rdb.HSet(ctx, "acw:queue:sales:15m:1795340700000", "calls_handled", 99).Err()) // the interval before: not shown
	must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: "acw:alerts", Values: []any{"id", "s-2:overrun", "kind", "overrun", "segment_id", "s-2",
		"agent_id", "a-2", "call_id", "c-2", "team", "t1", "queue", "support", "start", now - 40000, "at", now - 10000, "threshold_ms", 30000}}).Err())

	c := connect(t, url)
	st := c.next()
	if !st.Full || !slices.Equal(agentIDs(st.Agents), []string{"a-1", "a-2"}) {
		t.Fatalf("first message: full=%v agents %v, want full with a-1, a-2", st.Full, agentIDs(st.Agents))
	}
	a2 := st.Agents[1]
	if a2.State != "acw" || a2.ACWStart != now-40000 || a2.WarnMS != 20000 || a2.OverrunMS != 30000 || a2.Team != "t1" {
		t.Errorf("a-2 = %+v", a2)
	}
	if st.Now != now || st.IntervalStart != 1795341600000 || st.Day != "2026-11-22" || st.WindowMS != 900000 || st.Rate != 1 {
		t.Errorf("clock: now %d interval %d day %s window %d rate %g", st.Now, st.IntervalStart, st.Day, st.WindowMS, st.Rate)
	}
	if len(st.Open) != 1 || st.Open[0] != (Open{"a-2", now - 40000}) || st.OpenCount != 1 {
		t.Errorf("open = %+v (%d)", st.Open, st.OpenCount)
	}
	if len(st.Alerts) != 1 || st.Alerts[0].ID != "s-2:overrun" || st.Alerts[0].At != now-10000 || st.Alerts[0].ThresholdMS != 30000 {
		t.Errorf("alerts = %+v", st.Alerts)
	}
	team := st.Tiles["team"]
	if len(team) != 1 || team[0].Key != "t1" || team[0].Interval == nil || team[0].Day == nil {
		t.Fatalf("team tiles = %+v", team)
	}
	if got := *team[0].Interval; got != (Stats{CallsHandled: 7, ACWCount: 6, ACWAvgMS: 15500, ACWPctOfWork: 12.34, OverrunCount: 2}) {
		t.Errorf("team t1 interval = %+v", got)
	}
	if team[0].Day.CallsHandled != 70 || team[0].Day.OverrunCount != 9 {
		t.Errorf("team t1 day = %+v", *team[0].Day)
	}
	queues := st.Tiles["queue"]
	if len(queues) != 2 || queues[0].Key != "sales" || queues[0].Interval != nil || queues[1].Key != "support" {
		t.Errorf("queue tiles = %+v (the sales interval in Redis is the previous one)", queues)
	}
	if center := st.Tiles["center"]; len(center) != 1 || center[0].Interval == nil || center[0].Interval.CallsHandled != 9 || center[0].Day != nil {
		t.Errorf("center tile = %+v", center)
	}

	// A notice naming an agent: only that agent is sent.
	must(rdb.HSet(ctx, "acw:agent:a-1", "state", "acw", "acw_start", now, "since", now, "segment_id", "s-1", "warn_ms", 20000, "overrun_ms", 30000).Err())
	must(rdb.Publish(ctx, "acw:updates", `{"source":"acw.events/0","offset":10,"agents":["a-1"],"agents_changed":1,"intervals":0,"alerts":0}`).Err())
	st = c.next()
	if st.Full || !slices.Equal(agentIDs(st.Agents), []string{"a-1"}) || st.Agents[0].State != "acw" || st.Seq < 2 {
		t.Fatalf("after a notice: full=%v seq %d agents %+v, want only a-1 in acw", st.Full, st.Seq, st.Agents)
	}

	// An agent whose key is gone is removed.
	must(rdb.Del(ctx, "acw:agent:a-2").Err())
	must(rdb.ZRem(ctx, "acw:open", "a-2").Err())
	must(rdb.Publish(ctx, "acw:updates", `{"agents":["a-2"],"agents_changed":1}`).Err())
	st = c.next()
	if len(st.Agents) != 0 || !slices.Equal(st.Removed, []string{"a-2"}) || len(st.Open) != 0 {
		t.Fatalf("after a-2 went: agents %v removed %v open %v", agentIDs(st.Agents), st.Removed, st.Open)
	}

	// A notice with more agents than it lists makes the board rescan.
	must(rdb.HSet(ctx, "acw:agent:a-3", "state", "ready", "since", now, "team", "t2", "updated", now).Err())
	must(rdb.ZAdd(ctx, "acw:agents", redis.Z{Score: 1, Member: "a-3"}).Err())
	must(rdb.Publish(ctx, "acw:updates", `{"agents":["a-1"],"agents_changed":150}`).Err())
	st = c.next()
	if !slices.Equal(agentIDs(st.Agents), []string{"a-3"}) || len(st.Removed) != 0 {
		t.Fatalf("after an overflowing notice: agents %v removed %v, want a-3 found by the rescan", agentIDs(st.Agents), st.Removed)
	}
	if len(st.Tiles["team"]) != 2 {
		t.Errorf("team tiles after a-3 (team t2) appeared: %+v", st.Tiles["team"])
	}

	// A second browser starts from the whole current state.
	c2 := connect(t, url)
	if st := c2.next(); !st.Full || !slices.Equal(agentIDs(st.Agents), []string{"a-1", "a-3"}) {
		t.Fatalf("second browser: full=%v agents %v", st.Full, agentIDs(st.Agents))
	}
	resp, err := http.Get(url + "/api/state")
	must(err)
	var whole State
	must(json.NewDecoder(resp.Body).Decode(&whole))
	resp.Body.Close()
	if !whole.Full || !slices.Equal(agentIDs(whole.Agents), []string{"a-1", "a-3"}) || whole.Omitted != 0 {
		t.Errorf("/api/state: full=%v agents %v", whole.Full, agentIDs(whole.Agents))
	}
	// The answer is bounded: a cap leaves agents out and says how many.
	resp, err = http.Get(url + "/api/state?limit=1")
	must(err)
	var capped State
	must(json.NewDecoder(resp.Body).Decode(&capped))
	resp.Body.Close()
	if !slices.Equal(agentIDs(capped.Agents), []string{"a-1"}) || capped.Omitted != 1 {
		t.Errorf("/api/state?limit=1: agents %v, omitted %d", agentIDs(capped.Agents), capped.Omitted)
	}
}

func TestBoardReadsNothingWithoutBrowsers(t *testing.T) {
	rdb, url := startBoard(t)
	ctx := context.Background()
	rdb.HSet(ctx, "acw:agent:a-1", "state", "ready", "since", now)
	rdb.ZAdd(ctx, "acw:agents", redis.Z{Score: 1, Member: "a-1"})
	processed := func() int64 {
		info, err := rdb.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "total_commands_processed:"); ok {
				var n int64
				json.Unmarshal([]byte(v), &n)
				return n
			}
		}
		t.Fatal("no total_commands_processed in INFO")
		return 0
	}
	// once the board is subscribed (connecting costs a few commands),
	// notices cost no reads while nobody watches
	for deadline := time.Now().Add(5 * time.Second); rdb.PubSubNumSub(ctx, "acw:updates").Val()["acw:updates"] != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the board did not subscribe to acw:updates")
		}
	}
	before := processed()
	for range 5 {
		rdb.Publish(ctx, "acw:updates", `{"agents":["a-1"],"agents_changed":1}`)
		time.Sleep(50 * time.Millisecond)
	}
	if d := processed() - before; d > 5+1 {
		t.Errorf("%d commands while no browser was connected, want only the 5 PUBLISH and the INFO", d)
	}
	c := connect(t, url)
	if st := c.next(); len(st.Agents) != 1 {
		t.Fatalf("agents %v", agentIDs(st.Agents))
	}
}

func TestBoardServesThePage(t *testing.T) {
	_, url := startBoard(t)
	for path, want := range map[string]string{"/": "live wrap-up board", "/app.js": "EventSource", "/style.css": "--red"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, %d bytes without %q", path, resp.StatusCode, len(body), want)
		}
	}
}

// A browser that does not keep up is dropped, never buffered for: its
// queue holds at most 64 messages, and the next one closes its stream
// (the browser reconnects and starts again from a full state).
func TestASlowBrowserIsDroppedNotBuffered(t *testing.T) {
	b, err := New(Config{Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})})
	if err != nil {
		t.Fatal(err)
	}
	c := b.subscribe()
	for i := range 64 {
		b.broadcast([]byte(strconv.Itoa(i)))
	}
	b.mu.Lock()
	_, still := b.clients[c]
	b.mu.Unlock()
	if !still {
		t.Fatal("dropped while its queue had room")
	}
	b.broadcast([]byte("one more"))
	n := 0
	for range c {
		n++
	}
	b.mu.Lock()
	_, still = b.clients[c]
	b.mu.Unlock()
	if still || n != 64 {
		t.Fatalf("after 65 messages unread: still subscribed %v, %d queued", still, n)
	}
}
