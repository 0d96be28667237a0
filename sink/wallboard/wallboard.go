// Package wallboard serves acwstream's live wallboard: a web page, with
// its assets embedded in the binary, that shows every agent's state and
// wrap-up timer, the longest wrap-ups now, team and queue tiles for the
// current interval and today, and the alert feed.
//
// It is the reference client of the Redis data contract (README, "Redis
// data contract"): it reads only the documented keys, never the engine,
// and refreshes when a flush notice arrives on the updates channel. One
// Board serves any number of browsers from one reader: it reloads only
// the agents a notice names (or all of them when a notice overflows, and
// every Rescan), at most once per Refresh, and pushes the changes to
// every browser as Server-Sent Events. While no browser is connected it
// reads nothing.
//
// Endpoints (under the handler's root):
//
//	GET /             the page (index.html, app.js, style.css)
//	GET /api/state    the whole current state as one JSON object
//	GET /api/events   Server-Sent Events: "state" messages, the first one
//	                  full, later ones with only the agents that changed
package wallboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/acwstream/acwstream/sink/keyspace"
)

//go:embed static
var static embed.FS

// Config configures a Board. Redis is required; zero fields take the
// documented defaults.
type Config struct {
	// Redis is the server the pipeline writes to.
	Redis redis.UniversalClient
	// Prefix of every key and channel, as the pipeline's --prefix;
	// default "acw".
	Prefix string
	// Window is the interval length, as the engine's --window; default
	// 15m.
	Window time.Duration
	// Location is the time zone of the daily views, as --tz; default UTC.
	Location *time.Location
	// Now is the event-time clock in Unix ms: the current interval and
	// day, and the browsers' timers, follow it. Default: the wall clock
	// (a live feed). The demo passes the simulator's clock.
	Now func() int64
	// Rate is how many event-time milliseconds pass per wall-clock
	// millisecond, for the browsers' timers between pushes; default 1.
	Rate float64
	// Refresh is the least time between two pushes; default 250ms.
	Refresh time.Duration
	// Rescan is how often every agent is reloaded, to catch what no
	// notice named (expired keys, a wallboard started late); default 15s.
	Rescan time.Duration
	// Tiles is how often team, queue and center tiles are reloaded while
	// notices arrive (they change at the pipeline's shared flush, 1s by
	// default); default 1s.
	Tiles time.Duration
	// Alerts is the length of the alert feed; default 30.
	Alerts int
	// Longest is the length of "longest wrap-ups now"; default 10.
	Longest int
	// StateLimit caps the agents one GET /api/state answers with (in
	// agent id order; ?limit=N asks for fewer); default 1000. The answer
	// says how many it left out.
	StateLimit int
	// Log receives read failures (once per failure run) and recoveries.
	Log zerolog.Logger
}

func (c Config) withDefaults() Config {
	if c.StateLimit <= 0 {
		c.StateLimit = 1000
	}
	if c.Prefix == "" {
		c.Prefix = keyspace.DefaultPrefix
	}
	if c.Window == 0 {
		c.Window = processor.DefaultWindow
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Now == nil {
		c.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if c.Rate <= 0 {
		c.Rate = 1
	}
	if c.Refresh <= 0 {
		c.Refresh = 250 * time.Millisecond
	}
	if c.Rescan <= 0 {
		c.Rescan = 15 * time.Second
	}
	if c.Tiles <= 0 {
		c.Tiles = time.Second
	}
	if c.Alerts <= 0 {
		c.Alerts = 30
	}
	if c.Longest <= 0 {
		c.Longest = 10
	}
	return c
}

// Agent is one agent's live state, as in its acw:agent:{id} hash. Times
// are Unix ms (event time, but Updated: the wall clock of the write);
// ACWStart, SegmentID, WarnMS and OverrunMS are set only in wrap-up.
type Agent struct {
	ID             string `json:"id"`
	State          string `json:"state"`
	Since          int64  `json:"since"`
	CallID         string `json:"call_id,omitempty"`
	Team           string `json:"team,omitempty"`
	Queue          string `json:"queue,omitempty"`
	ACWStart       int64  `json:"acw_start,omitempty"`
	SegmentID      string `json:"segment_id,omitempty"`
	WarnMS         int64  `json:"warn_ms,omitempty"`
	OverrunMS      int64  `json:"overrun_ms,omitempty"`
	LastACWMS      int64  `json:"last_acw_ms"`
	LastACWOverrun bool   `json:"last_acw_overrun"`
	Reason         string `json:"reason,omitempty"` // the not-ready reason
	Name           string `json:"name,omitempty"`   // the display name, when the feed gives one
	Updated        int64  `json:"updated"`
}

// Open is one entry of "longest wrap-ups now" (acw:open).
type Open struct {
	AgentID string `json:"agent_id"`
	Start   int64  `json:"start"`
}

// Stats are the figures of a tile, from an interval or day hash; absent
// (nil) when the hash does not exist yet.
type Stats struct {
	CallsHandled int64   `json:"calls_handled"`
	ACWCount     int64   `json:"acw_count"`
	ACWAvgMS     int64   `json:"acw_avg_ms"`
	ACWMaxMS     int64   `json:"acw_max_ms"`
	ACWPctOfWork float64 `json:"acw_pct_of_work"`
	WarnCount    int64   `json:"warn_count"`
	OverrunCount int64   `json:"overrun_count"`
	HandleCount  int64   `json:"handle_count"`
	AHTMS        int64   `json:"aht_ms"`
	OccupancyPct float64 `json:"occupancy_pct"`
	ACWCodedPct  float64 `json:"acw_coded_pct"`
	NotReadyPct  float64 `json:"not_ready_pct"`
	MissedCount  int64   `json:"missed_count"`
}

// Tile is one team, queue or the center: its current interval and today.
type Tile struct {
	Key      string `json:"key"`
	Interval *Stats `json:"interval"`
	Day      *Stats `json:"day"`
}

// Alert is one entry of the alert feed (acw:alerts).
type Alert struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	AgentID     string `json:"agent_id"`
	CallID      string `json:"call_id,omitempty"`
	Team        string `json:"team,omitempty"`
	Queue       string `json:"queue,omitempty"`
	Start       int64  `json:"start"`
	At          int64  `json:"at"`
	ThresholdMS int64  `json:"threshold_ms"`
}

// State is one push to the browsers. A full State lists every agent; a
// later one lists only the agents that changed and the ids of those that
// are gone. Everything else is always whole.
type State struct {
	Full bool   `json:"full"`
	Seq  uint64 `json:"seq"`
	// Now is the event-time clock when the state was read (Unix ms) and
	// Rate its speed against the wall clock.
	Now           int64   `json:"now"`
	Rate          float64 `json:"rate"`
	WindowMS      int64   `json:"window_ms"`
	IntervalStart int64   `json:"interval_start"`
	Day           string  `json:"day"`
	Agents        []Agent `json:"agents"`
	// Omitted counts the agents a capped answer (GET /api/state) left out.
	Omitted   int               `json:"omitted,omitempty"`
	Removed   []string          `json:"removed,omitempty"`
	Open      []Open            `json:"open"`
	OpenCount int64             `json:"open_count"`
	Tiles     map[string][]Tile `json:"tiles"`
	Alerts    []Alert           `json:"alerts"`
}

// Board reads the contract and fans it out to browsers. Create it with
// New, start Run, and serve Handler.
type Board struct {
	cfg Config
	k   keyspace.Keys

	mu      sync.Mutex
	agents  map[string]Agent
	rest    State // open, tiles, alerts, clock of the last read
	seq     uint64
	loaded  bool // agents hold a full read
	clients map[chan []byte]struct{}
	pending map[string]struct{} // agents named by notices since the last read
	rescan  bool                // a notice overflowed: reload every agent
	tilesAt time.Time
	wake    chan struct{}
	failing bool
}

// New returns a Board for cfg.
func New(cfg Config) (*Board, error) {
	if cfg.Redis == nil {
		return nil, errors.New("wallboard: Redis is required")
	}
	cfg = cfg.withDefaults()
	return &Board{cfg: cfg, k: keyspace.New(cfg.Prefix, cfg.Window), agents: map[string]Agent{}, clients: map[chan []byte]struct{}{},
		pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}, nil
}

// scopes maps the tiles' scope names to the key contract's.
var scopes = map[string]events.Scope{"team": events.ScopeTeam, "queue": events.ScopeQueue, "center": events.ScopeCenter}

// notice is the part of a flush notice the board uses.
type notice struct {
	Agents        []string `json:"agents"`
	AgentsChanged int      `json:"agents_changed"`
}

// Run subscribes to the updates channel and keeps the browsers current
// until ctx ends. It returns nil then; read failures are logged and
// retried, never fatal.
func (b *Board) Run(ctx context.Context) error {
	sub := b.cfg.Redis.Subscribe(ctx, b.k.Updates())
	defer sub.Close()
	go func() {
		for m := range sub.Channel() {
			var n notice
			if json.Unmarshal([]byte(m.Payload), &n) != nil {
				continue
			}
			b.mu.Lock()
			if len(b.clients) > 0 {
				for _, id := range n.Agents {
					b.pending[id] = struct{}{}
				}
				if n.AgentsChanged > len(n.Agents) {
					b.rescan = true
				}
			}
			b.mu.Unlock()
			b.poke()
		}
	}()
	rescan := time.NewTicker(b.cfg.Rescan)
	defer rescan.Stop()
	// the clock moves even without notices: the interval and day roll
	// over, and tiles must follow
	tick := time.NewTicker(b.cfg.Tiles)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		case <-rescan.C:
			b.mu.Lock()
			b.rescan = true
			b.mu.Unlock()
		case <-tick.C:
		}
		if d := b.cfg.Refresh - time.Since(last); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
		}
		last = time.Now()
		b.refresh(ctx)
	}
}

func (b *Board) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// refresh reads what changed and pushes it to every browser.
func (b *Board) refresh(ctx context.Context) {
	b.mu.Lock()
	if len(b.clients) == 0 {
		b.loaded = false
		clear(b.pending)
		b.rescan = false
		b.mu.Unlock()
		return
	}
	full := !b.loaded || b.rescan
	ids := make([]string, 0, len(b.pending))
	for id := range b.pending {
		ids = append(ids, id)
	}
	clear(b.pending)
	b.rescan = false
	b.mu.Unlock()

	st, agents, err := b.read(ctx, full, ids)
	if err != nil {
		b.mu.Lock()
		b.loaded = b.loaded && !full
		if full {
			b.rescan = true
		}
		for _, id := range ids {
			b.pending[id] = struct{}{}
		}
		first := !b.failing
		b.failing = true
		b.mu.Unlock()
		if first && ctx.Err() == nil {
			b.cfg.Log.Warn().Err(err).Msg("wallboard: reading Redis failed; retrying")
		}
		return
	}
	b.mu.Lock()
	if b.failing {
		b.failing = false
		b.cfg.Log.Info().Msg("wallboard: reading Redis again")
	}
	msg := b.apply(st, agents, full, ids)
	b.mu.Unlock()
	if msg != nil {
		b.broadcast(msg)
	}
}

// apply merges a read into the board's state and returns the message of
// what changed (nil: nothing did). Called with b.mu held.
func (b *Board) apply(st State, agents map[string]Agent, full bool, ids []string) []byte {
	var changed []Agent
	var removed []string
	if full {
		for id := range b.agents {
			if _, ok := agents[id]; !ok {
				removed = append(removed, id)
				delete(b.agents, id)
			}
		}
		for id, a := range agents {
			if old, ok := b.agents[id]; !ok || old != a {
				changed = append(changed, a)
				b.agents[id] = a
			}
		}
	} else {
		for _, id := range ids {
			a, ok := agents[id]
			old, had := b.agents[id]
			switch {
			case !ok && had:
				removed = append(removed, id)
				delete(b.agents, id)
			case ok && (!had || old != a):
				changed = append(changed, a)
				b.agents[id] = a
			}
		}
	}
	if st.Tiles == nil {
		st.Tiles = b.rest.Tiles
	}
	wasLoaded := b.loaded
	same := wasLoaded && len(changed) == 0 && len(removed) == 0 && sameRest(&b.rest, &st)
	b.loaded = true
	b.rest = st
	if same {
		return nil
	}
	b.seq++
	if !wasLoaded {
		// nobody connected before this read has had anything yet
		full := b.fullState()
		return sse(&full)
	}
	st.Seq = b.seq
	st.Agents = sortAgents(changed)
	slices.Sort(removed)
	st.Removed = removed
	return sse(&st)
}

func sameRest(a, b *State) bool {
	ja, _ := json.Marshal(State{IntervalStart: a.IntervalStart, Day: a.Day, Open: a.Open, OpenCount: a.OpenCount, Tiles: a.Tiles, Alerts: a.Alerts})
	jb, _ := json.Marshal(State{IntervalStart: b.IntervalStart, Day: b.Day, Open: b.Open, OpenCount: b.OpenCount, Tiles: b.Tiles, Alerts: b.Alerts})
	return string(ja) == string(jb)
}

func sortAgents(l []Agent) []Agent {
	slices.SortFunc(l, func(a, b Agent) int { return strings.Compare(a.ID, b.ID) })
	if l == nil {
		l = []Agent{}
	}
	return l
}

// fullState is the whole current state, for a browser that just
// connected. Called with b.mu held.
func (b *Board) fullState() State {
	st := b.rest
	st.Full, st.Seq = true, b.seq
	st.Agents = make([]Agent, 0, len(b.agents))
	for _, a := range b.agents {
		st.Agents = append(st.Agents, a)
	}
	st.Agents = sortAgents(st.Agents)
	return st
}

func sse(st *State) []byte {
	j, _ := json.Marshal(st)
	out := make([]byte, 0, len(j)+32)
	out = append(out, "event: state\ndata: "...)
	out = append(out, j...)
	return append(out, "\n\n"...)
}

func (b *Board) broadcast(msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.clients {
		select {
		case c <- msg:
		default:
			// a browser that cannot keep up is dropped; it reconnects
			// and starts again from a full state
			close(c)
			delete(b.clients, c)
		}
	}
}

// read loads the agents (all of them when full, else ids), the open set,
// the alert feed and, when due, the tiles.
func (b *Board) read(ctx context.Context, full bool, ids []string) (State, map[string]Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rdb := b.cfg.Redis
	now := b.cfg.Now()
	win := b.cfg.Window.Milliseconds()
	st := State{Now: now, Rate: b.cfg.Rate, WindowMS: win, IntervalStart: now - now%win,
		Day: time.UnixMilli(now).In(b.cfg.Location).Format(time.DateOnly)}
	if full {
		// The agents acwd keeps (not every agent ever seen): no scan
		// of the keyspace.
		var err error
		if ids, err = rdb.ZRange(ctx, b.k.Agents(), 0, -1).Result(); err != nil {
			return st, nil, err
		}
	}
	pipe := rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, b.k.Agent(id))
	}
	open := pipe.ZRangeWithScores(ctx, b.k.Open(), 0, int64(b.cfg.Longest)-1)
	openN := pipe.ZCard(ctx, b.k.Open())
	alerts := pipe.XRevRangeN(ctx, b.k.Alerts(), "+", "-", int64(b.cfg.Alerts))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return st, nil, err
	}
	agents := make(map[string]Agent, len(ids))
	for i, id := range ids {
		if h := hashes[i].Val(); h["state"] != "" {
			agents[id] = agentOf(id, h)
		}
	}
	for _, z := range open.Val() {
		st.Open = append(st.Open, Open{AgentID: z.Member.(string), Start: int64(z.Score)})
	}
	st.OpenCount = openN.Val()
	st.Alerts = []Alert{}
	for _, m := range alerts.Val() {
		st.Alerts = append(st.Alerts, alertOf(m.Values))
	}
	if st.Open == nil {
		st.Open = []Open{}
	}
	b.mu.Lock()
	due := time.Since(b.tilesAt) >= b.cfg.Tiles || b.rest.IntervalStart != st.IntervalStart || b.rest.Tiles == nil ||
		newTileKey(b.rest.Tiles, agents)
	var known map[string]Agent
	if due {
		known = make(map[string]Agent, len(b.agents)+len(agents))
		for id, a := range b.agents {
			known[id] = a
		}
	}
	b.mu.Unlock()
	if !due {
		return st, agents, nil
	}
	for id, a := range agents {
		known[id] = a
	}
	tiles, err := b.readTiles(ctx, &st, known)
	if err != nil {
		return st, nil, err
	}
	st.Tiles = tiles
	b.mu.Lock()
	b.tilesAt = time.Now()
	b.mu.Unlock()
	return st, agents, nil
}

// newTileKey tells whether an agent names a team or queue that has no
// tile yet, so that a new team shows at once, not at the next tile reload.
func newTileKey(tiles map[string][]Tile, agents map[string]Agent) bool {
	has := func(scope, k string) bool {
		return k == "" || slices.ContainsFunc(tiles[scope], func(t Tile) bool { return t.Key == k })
	}
	for _, a := range agents {
		if !has("team", a.Team) || !has("queue", a.Queue) {
			return true
		}
	}
	return false
}

// readTiles loads the current interval and today of every team and queue
// the agents name, and of the center.
func (b *Board) readTiles(ctx context.Context, st *State, agents map[string]Agent) (map[string][]Tile, error) {
	keys := map[string][]string{"center": {"all"}}
	seen := map[string]bool{}
	for _, a := range agents {
		for scope, k := range map[string]string{"team": a.Team, "queue": a.Queue} {
			if k != "" && !seen[scope+"\x00"+k] {
				seen[scope+"\x00"+k] = true
				keys[scope] = append(keys[scope], k)
			}
		}
	}
	type pair struct{ iv, day *redis.MapStringStringCmd }
	cmds := map[string][]pair{}
	pipe := b.cfg.Redis.Pipeline()
	for scope, ks := range keys {
		slices.Sort(ks)
		for _, k := range ks {
			cmds[scope] = append(cmds[scope], pair{
				pipe.HGetAll(ctx, b.k.Interval(scopes[scope], k, st.IntervalStart)),
				pipe.HGetAll(ctx, b.k.Day(scopes[scope], k, st.Day)),
			})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	tiles := map[string][]Tile{"team": {}, "queue": {}, "center": {}}
	for scope, ks := range keys {
		for i, k := range ks {
			tiles[scope] = append(tiles[scope], Tile{Key: k, Interval: statsOf(cmds[scope][i].iv.Val()), Day: statsOf(cmds[scope][i].day.Val())})
		}
	}
	return tiles, nil
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func agentOf(id string, h map[string]string) Agent {
	return Agent{ID: id, State: h["state"], Since: num(h["since"]), CallID: h["call_id"], Team: h["team"], Queue: h["queue"],
		ACWStart: num(h["acw_start"]), SegmentID: h["segment_id"], WarnMS: num(h["warn_ms"]), OverrunMS: num(h["overrun_ms"]),
		LastACWMS: num(h["last_acw_ms"]), LastACWOverrun: h["last_acw_overrun"] == "1", Reason: h["reason"], Name: h["name"], Updated: num(h["updated"])}
}

func statsOf(h map[string]string) *Stats {
	if len(h) == 0 {
		return nil
	}
	pct := func(name string) float64 {
		v, _ := strconv.ParseFloat(h[name], 64)
		return v
	}
	return &Stats{CallsHandled: num(h["calls_handled"]), ACWCount: num(h["acw_count"]), ACWAvgMS: num(h["acw_avg_ms"]),
		ACWMaxMS: num(h["acw_max_ms"]), ACWPctOfWork: pct("acw_pct_of_work"), WarnCount: num(h["warn_count"]), OverrunCount: num(h["overrun_count"]),
		HandleCount: num(h["handle_count"]), AHTMS: num(h["aht_ms"]), OccupancyPct: pct("occupancy_pct"), ACWCodedPct: pct("acw_coded_pct"),
		NotReadyPct: pct("not_ready_pct"), MissedCount: num(h["missed_count"])}
}

func alertOf(v map[string]any) Alert {
	s := func(k string) string { x, _ := v[k].(string); return x }
	return Alert{ID: s("id"), Kind: s("kind"), AgentID: s("agent_id"), CallID: s("call_id"), Team: s("team"), Queue: s("queue"),
		Start: num(s("start")), At: num(s("at")), ThresholdMS: num(s("threshold_ms"))}
}

// subscribe registers a browser and returns its channel, primed with the
// full state, or nil when the first read has not completed yet.
func (b *Board) subscribe() chan []byte {
	c := make(chan []byte, 64)
	b.mu.Lock()
	b.clients[c] = struct{}{}
	loaded := b.loaded
	if loaded {
		st := b.fullState()
		c <- sse(&st)
	}
	b.mu.Unlock()
	if !loaded {
		b.poke()
	}
	return c
}

func (b *Board) unsubscribe(c chan []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.clients[c]; ok {
		delete(b.clients, c)
		close(c)
	}
}

// Handler serves the page, /api/state and /api/events.
func (b *Board) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /api/events", b.serveEvents)
	mux.HandleFunc("GET /api/state", b.serveState)
	return mux
}

func (b *Board) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c := b.subscribe()
	defer b.unsubscribe(c)
	// a comment first, so the browser sees the stream open at once
	w.Write([]byte(": acwstream wallboard\nretry: 2000\n\n"))
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-c:
			if !ok {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
			fl.Flush()
		case <-ping.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// serveState answers with the full state, waiting up to 5 s for the
// first read, with at most Config.StateLimit agents (?limit=N: fewer)
// and the count of those left out.
func (b *Board) serveState(w http.ResponseWriter, r *http.Request) {
	limit := b.cfg.StateLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "wallboard: limit must be a whole number", http.StatusBadRequest)
			return
		}
		limit = min(limit, n)
	}
	c := b.subscribe()
	defer b.unsubscribe(c)
	select {
	case <-c: // the first full state: the board has read Redis
	case <-r.Context().Done():
		return
	case <-time.After(5 * time.Second):
		http.Error(w, "wallboard: no state read from Redis yet", http.StatusServiceUnavailable)
		return
	}
	b.mu.Lock()
	st := b.fullState()
	b.mu.Unlock()
	if len(st.Agents) > limit {
		st.Omitted = len(st.Agents) - limit
		st.Agents = st.Agents[:limit]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(&st)
}
