// Package redisstore writes acwstream's live metrics and per-partition
// checkpoints to Redis, following the data contract in the README.
//
// Each Commit is one server-side script: the fencing check, every effect
// of the batch and the checkpoint run atomically, so a partition's Redis
// state always matches its checkpoint. Keys shared by partitions (team,
// queue, center) are not written by commits: a commit appends the
// partition's shared deltas to its log, and the shared writer
// (pipeline.SharedStore, shared.go) applies the logs. Redis Cluster is not
// supported (a batch
// touches keys in many slots); use a standalone server or a replicated
// primary.
package redisstore

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/sink/keyspace"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

//go:embed shared.lua
var sharedSrc string

var sharedScript = redis.NewScript(sharedSrc)

var leaseScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`)

var bindScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if g then return g end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`)

// claimScript takes a partition's checkpoint hash for a new owner (ARGV[1])
// and reads the fields named by the other arguments (claimFields).
var claimScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return redis.call('HMGET', KEYS[1], unpack(ARGV, 2))`)

// Config names the keys and sets their lifetimes.
type Config struct {
	// Prefix of every key and channel; default "acw".
	Prefix string
	// Group namespaces checkpoints: one consumer group's are independent
	// of another's (required).
	Group string
	// Window is the engine's interval length, for key names; default 15m.
	Window time.Duration
	// IntervalTTL is the lifetime of interval hashes; default 48h.
	IntervalTTL time.Duration
	// DayTTL is the lifetime of daily hashes; default 8 days.
	DayTTL time.Duration
	// Last60mTTL is the lifetime of the rolling hashes; default 2h.
	Last60mTTL time.Duration
	// AlertsMaxLen caps the alerts stream (approximately); default 100000.
	AlertsMaxLen int64
	// AlertIDTTL is how long an alert id is remembered to drop repeats;
	// default 48h.
	AlertIDTTL time.Duration
	// ForgottenAgentTTL is how long the live-state hash of an agent the
	// engine forgot (idle for the agent idle timeout) is kept; default 1h.
	ForgottenAgentTTL time.Duration
	// SharedChunkViews caps the views (hashes) one shared-writer script
	// writes; a larger round goes in several (see Store.ApplyShared).
	// Redis serves no one else while a script runs: 256 views take it
	// about 2 ms. Default 256.
	SharedChunkViews int
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = keyspace.DefaultPrefix
	}
	if c.Window == 0 {
		c.Window = processor.DefaultWindow
	}
	if c.IntervalTTL == 0 {
		c.IntervalTTL = 48 * time.Hour
	}
	if c.DayTTL == 0 {
		c.DayTTL = 8 * 24 * time.Hour
	}
	if c.Last60mTTL == 0 {
		c.Last60mTTL = 2 * time.Hour
	}
	if c.AlertsMaxLen == 0 {
		c.AlertsMaxLen = 100000
	}
	if c.AlertIDTTL == 0 {
		c.AlertIDTTL = 48 * time.Hour
	}
	if c.ForgottenAgentTTL == 0 {
		c.ForgottenAgentTTL = time.Hour
	}
	if c.SharedChunkViews <= 0 {
		c.SharedChunkViews = 256
	}
	return c
}

// Store is a pipeline.Store on a go-redis client. It is safe for
// concurrent use by many partitions.
type Store struct {
	rdb *redis.Client
	cfg Config
	k   keyspace.Keys
	sh  sharedCache
	// ttls are the views' lifetimes in seconds, by pipeline.View.
	ttls [3]string
	// keys are the keys every flush writes, as command arguments.
	keys struct{ agents, open, updates any }

	// frdb makes the fences' connections (rdb's options, without its
	// pool limit: a fence holds its connection for as long as the store
	// lives, one per partition committed for).
	frdb   *redis.Client
	fmu    sync.Mutex
	fences map[pipeline.Source]*fence
	closed bool
}

// New returns a Store writing through rdb. Commits go through
// connections of the store's own, made with rdb's options (one per
// partition); Close closes them.
func New(rdb *redis.Client, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.Group == "" {
		return nil, errors.New("redisstore: Group is required")
	}
	opt := *rdb.Options()
	opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns, opt.MaxActiveConns = 1<<14, 0, 0, 0
	opt.PushNotificationProcessor = nil // rdb's, bound to rdb: the new client makes its own
	// Without maintenance notifications (a Redis Enterprise/Cloud feature):
	// on other servers the handshake fails and go-redis v9.23 then turns
	// them off in the options shared by the Conns it made, racing when
	// several connect at once (seen under -race).
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	s := &Store{rdb: rdb, cfg: cfg, k: keyspace.New(cfg.Prefix, cfg.Window),
		ttls: [...]string{pipeline.ViewInterval: secs(cfg.IntervalTTL), pipeline.ViewDay: secs(cfg.DayTTL), pipeline.ViewLast60m: secs(cfg.Last60mTTL)},
		frdb: redis.NewClient(&opt), fences: map[pipeline.Source]*fence{}}
	s.keys.agents, s.keys.open, s.keys.updates = s.AgentsKey(), s.OpenKey(), s.UpdatesChannel()
	return s, nil
}

// Key helpers: the Redis data contract, as package keyspace defines it.

// AgentKey is the live-state hash of one agent.
func (s *Store) AgentKey(agent string) string { return s.k.Agent(agent) }

// AgentsKey is the sorted set of the agents acwd keeps (see
// keyspace.Keys.Agents).
func (s *Store) AgentsKey() string { return s.k.Agents() }

// OpenKey is the sorted set of agents in wrap-up, scored by its start.
func (s *Store) OpenKey() string { return s.k.Open() }

// AlertsKey is the alerts stream.
func (s *Store) AlertsKey() string { return s.k.Alerts() }

// UpdatesChannel is the pub/sub channel of flush notices.
func (s *Store) UpdatesChannel() string { return s.k.Updates() }

// IntervalKey is the hash of one scope/key's window starting at start.
func (s *Store) IntervalKey(scope events.Scope, key string, start int64) string {
	return s.k.Interval(scope, key, start)
}

// DayKey is the "today so far" hash of one scope/key.
func (s *Store) DayKey(scope events.Scope, key, day string) string { return s.k.Day(scope, key, day) }

// Last60mKey is the rolling last-60-minutes hash of one scope/key.
func (s *Store) Last60mKey(scope events.Scope, key string) string { return s.k.Last60m(scope, key) }

// CheckpointKey is the checkpoint hash of one input partition.
func (s *Store) CheckpointKey(src pipeline.Source) string {
	return s.k.Checkpoint(s.cfg.Group, src.Topic, src.Partition)
}

// JournalKey is the stream of one input partition's dedup journal: one
// entry per flush that accepted events (ID {end index}-0, field d), kept
// until the checkpoint's snapshot no longer needs it.
func (s *Store) JournalKey(src pipeline.Source) string {
	return s.k.Journal(s.cfg.Group, src.Topic, src.Partition)
}

// SharedLogKey is the stream of one input partition's shared deltas,
// waiting for the shared writer (one entry per shared flush).
func (s *Store) SharedLogKey(src pipeline.Source) string {
	return s.sharedKey("log:" + src.Topic + ":" + strconv.Itoa(src.Partition))
}

// sharedKey names the shared writer's keys of the consumer group: the set
// of logs ("logs"), their applied positions ("pos", a hash) and the lease.
func (s *Store) sharedKey(name string) string { return s.k.Shared(s.cfg.Group, name) }

// GroupKey is the string naming the consumer group whose results the
// prefix holds (see Bind).
func (s *Store) GroupKey() string { return s.k.Group() }

// ErrPrefixInUse reports that the key prefix already holds another
// consumer group's results.
var ErrPrefixInUse = errors.New("redis prefix in use by another consumer group")

// Bind records owner (a consumer group's name) as the one writing under
// the store's prefix, unless one is recorded already: then it returns an
// error wrapping ErrPrefixInUse that names it. Two groups reading the same
// events under one prefix would each add every event to the shared team,
// queue and centre keys, counting it twice; each group needs a prefix of
// its own. The record never expires: deleting the prefix's keys (or just
// GroupKey) hands the prefix to the next group that binds.
func (s *Store) Bind(ctx context.Context, owner string) error {
	holder, err := bindScript.Run(ctx, s.rdb, []string{s.GroupKey()}, owner).Text()
	if err != nil {
		return fmt.Errorf("redis: recording the consumer group of prefix %q: %w", s.cfg.Prefix, err)
	}
	if holder != owner {
		return fmt.Errorf("%w: prefix %q (key %s) holds the results of consumer group %q, and a second group would count every event again in the team, queue and centre keys: give group %q a prefix of its own (--prefix), or delete the %s:* keys to start over",
			ErrPrefixInUse, s.cfg.Prefix, s.GroupKey(), holder, owner, s.cfg.Prefix)
	}
	return nil
}

// Ping checks the connection.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Claim implements pipeline.Store.
func (s *Store) Claim(ctx context.Context, src pipeline.Source, token string) (pipeline.Checkpoint, error) {
	var ck pipeline.Checkpoint
	res, err := claimScript.Run(ctx, s.rdb, []string{s.CheckpointKey(src)}, append([]any{token}, claimFields...)...).Slice()
	if err != nil {
		return ck, fmt.Errorf("redis claim %s: %w", src, err)
	}
	if _, ok := res[0].(string); !ok { // eff_offset
		// No checkpoint yet (or it was deleted): a journal left without
		// one is stale.
		if err := s.rdb.Del(ctx, s.JournalKey(src)).Err(); err != nil {
			return ck, fmt.Errorf("redis claim %s: %w", src, err)
		}
		return ck, nil
	}
	if err := s.readJournal(ctx, src, &ck); err != nil {
		return ck, err
	}
	ck.Found = true
	if field, v, err := decodeCheckpoint(&ck, res); err != nil {
		return ck, fmt.Errorf("redis checkpoint %s: %s %q: %v", src, field, v, err)
	}
	return ck, nil
}

// readJournal loads the partition's dedup journal into ck, a page of
// chunks at a time.
func (s *Store) readJournal(ctx context.Context, src pipeline.Source, ck *pipeline.Checkpoint) error {
	key := s.JournalKey(src)
	for from := "-"; ; {
		msgs, err := s.rdb.XRangeN(ctx, key, from, "+", 1000).Result()
		if err != nil {
			return fmt.Errorf("redis claim %s: reading the dedup journal: %w", src, err)
		}
		for _, m := range msgs {
			d, _ := m.Values["d"].(string)
			ms, _, _ := strings.Cut(m.ID, "-")
			end, err := strconv.ParseUint(ms, 10, 64)
			if err != nil || d == "" {
				return fmt.Errorf("redis checkpoint %s: dedup journal entry %s: not a chunk", src, m.ID)
			}
			ck.Journal = append(ck.Journal, []byte(d))
			ck.JournalEnd = end
		}
		if len(msgs) < 1000 {
			return nil
		}
		from = "(" + msgs[len(msgs)-1].ID
	}
}

func encodeTicks(ts []pipeline.Tick) string {
	var b []byte
	for _, t := range ts {
		b = binary.AppendVarint(b, t.Offset)
		b = binary.AppendVarint(b, t.Watermark)
	}
	return string(b)
}

func decodeTicks(s string) ([]pipeline.Tick, error) {
	var out []pipeline.Tick
	r := events.Reader{B: []byte(s), Corrupt: errTicks}
	for len(r.B) > 0 {
		out = append(out, pipeline.Tick{Offset: r.Varint(), Watermark: r.Varint()})
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

var errTicks = errors.New("ticks")

func secs(d time.Duration) string { return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) }

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// txBuf holds a flush's commands: their arguments one after another in
// args, command i being args[ends[i-1]:ends[i]]; al holds the alerts
// script's arguments.
type txBuf struct {
	args []any
	ends []int
	al   []any
	argArena
}

var txPool = sync.Pool{New: func() any { return new(txBuf) }}

// cmd adds one command.
func (t *txBuf) cmd(args ...any) {
	t.args = append(t.args, args...)
	t.ends = append(t.ends, len(t.args))
}

// hset adds HSET key with the field/value pairs fill appends, or nothing
// when it appends none; it tells which.
func (t *txBuf) hset(key string, fill func([]any) []any) bool { return t.fields("HSET", key, fill) }

// fields adds the command name (HSET, HDEL) on key with the arguments fill
// appends, or nothing when it appends none; it tells which.
func (t *txBuf) fields(name, key string, fill func([]any) []any) bool {
	at := len(t.args)
	t.args = fill(append(t.args, name, t.str(key)))
	if len(t.args) == at+2 {
		t.args = t.args[:at]
		return false
	}
	t.ends = append(t.ends, len(t.args))
	return true
}

func (t *txBuf) reset() {
	clear(t.args)
	clear(t.al)
	t.args, t.ends, t.al = t.args[:0], t.ends[:0], t.al[:0]
	t.argArena.reset()
}

// alertsSrc adds each alert of a flush to the alerts stream unless its
// id was added before (within the id TTL). ARGV: stream, maxlen, id TTL
// (s), then per alert: id key, nfields, [field value]...
const alertsSrc = `
local stream, maxlen, ttl = ARGV[1], ARGV[2], ARGV[3]
local i, n = 4, #ARGV
while i <= n do
  local nf = tonumber(ARGV[i + 1])
  if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 2, i + 1 + 2 * nf))
  end
  i = i + 2 + 2 * nf
end
return 0`

// Commit implements pipeline.Store. The batch goes out as one MULTI/EXEC
// of plain commands under WATCH of the checkpoint, once the token is seen
// to still own it (else ErrFenced) and the commit not to be there already
// (the retry of a commit whose reply was lost: nothing to do). A claim
// between that check and EXEC aborts the transaction, and the check is
// made again. The WATCH and the check are made on the partition's own
// connection as part of the previous commit (see fence), so a commit
// takes one round trip.
func (s *Store) Commit(ctx context.Context, b *pipeline.Batch) error {
	t := txPool.Get().(*txBuf)
	defer func() { t.reset(); txPool.Put(t) }()
	s.buildCommit(t, b)
	ckpt := s.CheckpointKey(b.Source)
	seq := i64(b.Seq)
	var err error = redis.TxFailedErr
	for range 5 {
		f, fresh, ferr := s.takeFence(ctx, b.Source)
		if ferr != nil {
			err = ferr
			break
		}
		if f.owner != b.Token && !fresh {
			// What the fence read may be older than this owner's claim
			// (the fence of an earlier owner in this process): read again.
			if ferr := f.watch(ctx, ckpt); ferr != nil {
				err = ferr
				continue
			}
			fresh = true
		}
		// The checkpoint this owner claimed and committed is gone, or
		// older than its last commit: Redis lost acknowledged writes.
		if read, _ := strconv.ParseInt(f.seq, 10, 64); f.owner == "" || read < b.Seq-1 {
			s.putFence(b.Source, f)
			return fmt.Errorf("%w: %s: Redis holds commit %d of owner %q, this owner's last commit was %d", pipeline.ErrCheckpointLost, b.Source, read, f.owner, b.Seq-1)
		}
		if f.owner != b.Token {
			s.putFence(b.Source, f)
			return fmt.Errorf("%w: %s is owned by %q", pipeline.ErrFenced, b.Source, f.owner)
		}
		if f.seq == seq {
			s.putFence(b.Source, f)
			return nil // already applied
		}
		applied, cerr := f.commit(ctx, ckpt, t)
		if applied && cerr != nil {
			s.putFence(b.Source, f)
			return fmt.Errorf("redis flush %s: %w", b.Source, cerr)
		}
		if cerr != nil {
			f.conn.Close()
			err = cerr
			if fresh || ctx.Err() != nil {
				break
			}
			// The connection kept from the last commit may have been
			// closed meanwhile (a Redis restart, its idle timeout): a
			// fresh one tells whether this commit got through.
			continue
		}
		s.putFence(b.Source, f)
		if applied {
			return nil
		}
		err = redis.TxFailedErr
	}
	return fmt.Errorf("redis flush %s: %w", b.Source, err)
}

// buildCommit fills t with b's commands: the effects, then the
// checkpoint (with the snapshot, if any), the shared log entry and the
// notice.
func (s *Store) buildCommit(t *txBuf, b *pipeline.Batch) {
	for i := range b.Counters {
		c := &b.Counters[i]
		key, ttl := s.viewKey(c)
		if t.hset(key, func(a []any) []any { return appendViewFields(a, c, t.fixed) }) && c.Prev == nil {
			t.cmd("EXPIRE", t.str(key), t.str(ttl))
		}
		if hasReasons(c) && (c.Prev == nil || !maps.Equal(c.Reasons, c.PrevReasons)) {
			s.addReasons(t, c, ttl, b.Rebuild != 0)
		}
	}
	for i := range b.Agents {
		s.addAgent(t, &b.Agents[i], b.WallMS)
	}
	for _, id := range b.Forgotten {
		t.cmd("ZREM", s.keys.agents, t.str(id))
		t.cmd("PEXPIRE", s.AgentKey(id), i64(s.cfg.ForgottenAgentTTL.Milliseconds()))
	}
	if len(b.Alerts) > 0 {
		t.al = append(t.al, s.AlertsKey(), i64(s.cfg.AlertsMaxLen), secs(s.cfg.AlertIDTTL))
		for i := range b.Alerts {
			s.appendAlert(t, &b.Alerts[i])
		}
	}
	t.hset(s.CheckpointKey(b.Source), func(a []any) []any { return appendCheckpoint(a, b) })
	if len(b.Dedup) > 0 {
		t.cmd("XADD", s.JournalKey(b.Source), strconv.FormatUint(b.DedupEnd, 10)+"-0", "d", b.Dedup)
	}
	if len(b.Snapshot) > 0 {
		// Chunks ending at or before DedupStart are behind the snapshot.
		t.cmd("XTRIM", s.JournalKey(b.Source), "MINID", strconv.FormatUint(b.DedupStart+1, 10)+"-0")
	}
	s.addWindows(t, b.SharedWindows)
	if len(b.SharedLog) > 0 {
		log := s.SharedLogKey(b.Source)
		t.cmd("XADD", log, "*", "d", b.SharedLog)
		t.cmd("SADD", s.sharedKey("logs"), log)
	}
	if n := s.notice(b); n != "" {
		t.cmd("PUBLISH", s.keys.updates, t.str(n))
	}
}

// viewFields names the fields of an interval, day or last-60m hash, in
// the order of viewValues: start, end, the base fields
// (events.CounterNames), then the derived ones (events.DerivedFields).
var viewFields = func() (f [2 + events.NumCounters + len(events.DerivedFields)]string) {
	f[0], f[1] = "start", "end"
	copy(f[2:], events.CounterNames[:])
	for i, d := range events.DerivedFields {
		f[2+events.NumCounters+i] = d.Name
	}
	return
}()

// viewPlaces are the decimal places of each field (scaled integers).
var viewPlaces = func() (p [len(viewFields)]int) {
	for i, d := range events.DerivedFields {
		p[2+events.NumCounters+i] = d.Places
	}
	return
}()

func viewValues(start, end int64, d *events.Counters) (v [len(viewFields)]int64) {
	v[0], v[1] = start, end
	for i, p := range d.Fields() {
		v[2+i] = *p
	}
	for i, f := range events.DerivedFields {
		v[2+events.NumCounters+i] = f.Value(d)
	}
	return v
}

// viewBase are the fields of a view hash that readers sum: start, end
// and the base fields.
var viewBase = viewFields[:2+events.NumCounters]

// parseViewBase reads a view hash's base fields (HMGET of viewBase, or
// HGETALL), absent ones as 0: a hash written before a field existed has
// none of it.
func parseViewBase(key string, get func(i int) (string, bool)) (start, end int64, c events.Counters, err error) {
	var f [2 + events.NumCounters]int64
	for j := range viewBase {
		if v, ok := get(j); ok {
			if f[j], err = strconv.ParseInt(v, 10, 64); err != nil {
				return 0, 0, c, fmt.Errorf("%s %s = %q: %v", key, viewBase[j], v, err)
			}
		}
	}
	for i, p := range c.Fields() {
		*p = f[2+i]
	}
	return f[0], f[1], c, nil
}

// reasonsKey returns the not-ready breakdown hash of c's view.
func (s *Store) reasonsKey(c *pipeline.CounterDelta) string {
	switch c.View {
	case pipeline.ViewInterval:
		return s.k.IntervalReasons(c.Scope, c.Key, c.Start)
	case pipeline.ViewDay:
		return s.k.DayReasons(c.Scope, c.Key, c.Day)
	default:
		return s.k.Last60mReasons(c.Scope, c.Key)
	}
}

// hasReasons reports whether c's scope has a not-ready breakdown (queues
// have no time in state).
func hasReasons(c *pipeline.CounterDelta) bool { return c.Scope != events.ScopeQueue }

// addReasons adds the commands writing c's not-ready breakdown: with
// c.Prev, what changed since c.PrevReasons (a reason that left it, as
// one leaves a last-60m view with its window, deleted); else, or when
// there was none (no hash), the whole breakdown and its TTL, replacing
// whatever the hash holds.
//
// An interval's breakdown only grows as its events are applied, and
// whatever this partition's interval hashes hold is an earlier state of
// the same computation (a restore resumes it; Redis going back in time
// goes back to an earlier state), so an interval without not-ready time
// has never had a breakdown, and its whole write sends nothing, not even
// a DEL: in a backlog, where windows pass every few flushes, those DELs
// were a sixth of the commands. A rebuild (after Redis lost the
// checkpoint) may recompute less than was written before, and deletes.
func (s *Store) addReasons(t *txBuf, c *pipeline.CounterDelta, ttl string, rebuild bool) {
	if c.Prev == nil && c.View == pipeline.ViewInterval && len(c.Reasons) == 0 && !rebuild {
		return
	}
	var was []events.ReasonMS
	if c.Prev != nil {
		was = events.CapReasons(events.SortedReasons(c.PrevReasons))
	}
	rk := s.reasonsKey(c)
	if len(was) == 0 {
		if c.Prev == nil {
			t.cmd("DEL", t.str(rk))
		}
		if t.hset(rk, func(a []any) []any { return appendReasonFields(a, c.Reasons, t.int) }) {
			t.cmd("EXPIRE", t.str(rk), t.str(ttl))
		}
		return
	}
	now := events.CapReasons(events.SortedReasons(c.Reasons))
	t.hset(rk, func(a []any) []any {
		for _, x := range now {
			if i := slices.IndexFunc(was, func(w events.ReasonMS) bool { return w.Reason == x.Reason }); i < 0 || was[i].MS != x.MS {
				a = append(a, t.str(x.Reason), t.int(x.MS))
			}
		}
		return a
	})
	t.fields("HDEL", rk, func(a []any) []any {
		for _, w := range was {
			if !slices.ContainsFunc(now, func(x events.ReasonMS) bool { return x.Reason == w.Reason }) {
				a = append(a, t.str(w.Reason))
			}
		}
		return a
	})
}

// appendReasonFields appends the field/value pairs of a breakdown as the
// reasons hash holds it: at most events.MaxReasons reasons plus "other".
func appendReasonFields(args []any, m map[string]int64, arg func(int64) any) []any {
	for _, x := range events.CapReasons(events.SortedReasons(m)) {
		args = append(args, x.Reason, arg(x.MS))
	}
	return args
}

// appendReplaceReasons adds an "r" op (shared.lua) replacing the reasons
// hash of c's view with r, and its TTL.
func (s *Store) appendReplaceReasons(ops []any, c *pipeline.CounterDelta, r map[string]int64, ttl string) []any {
	at := len(ops)
	ops = appendReasonFields(append(ops, "r", s.reasonsKey(c), ttl, ""), r, func(v int64) any { return i64(v) })
	ops[at+3] = strconv.Itoa((len(ops) - at - 4) / 2)
	return ops
}

// viewKey returns the hash of c's view and its lifetime.
func (s *Store) viewKey(c *pipeline.CounterDelta) (key, ttl string) {
	ttl = s.ttls[c.View]
	switch c.View {
	case pipeline.ViewInterval:
		return s.IntervalKey(c.Scope, c.Key, c.Start), ttl
	case pipeline.ViewDay:
		return s.DayKey(c.Scope, c.Key, c.Day), ttl
	default:
		return s.Last60mKey(c.Scope, c.Key), ttl
	}
}

// appendFull adds an "s" op (shared.lua) writing a whole-value view:
// every field and the TTL, or with c.Prev only the fields that differ
// from it (nothing if none does).
func appendFull(args []any, key, ttl string, c *pipeline.CounterDelta) []any {
	if c.Prev != nil {
		ttl = "0"
	}
	at := len(args)
	args = appendViewFields(append(args, "s", key, ttl, ""), c, fixedArg)
	n := (len(args) - at - 4) / 2
	if n == 0 {
		return args[:at]
	}
	args[at+3] = strconv.Itoa(n)
	return args
}

// appendViewFields adds the field/value pairs of c's view: every field,
// or with c.Prev only those that differ from it.
func appendViewFields(args []any, c *pipeline.CounterDelta, arg func(v int64, places int) any) []any {
	cur := viewValues(c.Start, c.End, &c.Delta)
	var prev [len(viewFields)]int64
	if c.Prev != nil {
		prev = viewValues(c.PrevStart, c.PrevEnd, c.Prev)
	}
	for f, v := range cur {
		if c.Prev == nil || v != prev[f] {
			args = append(args, viewFieldArgs[f], arg(v, viewPlaces[f]))
		}
	}
	return args
}

func fixed(v int64, places int) string {
	if places == 0 {
		return i64(v)
	}
	return string(events.AppendFixed(nil, v, places))
}

// addAgent adds the commands updating an agent's hash and its membership
// of the open set: every field, or with w.Prev only what changed.
func (s *Store) addAgent(t *txBuf, w *pipeline.AgentWrite, wall int64) {
	a, p := &w.State, w.Prev
	key := s.AgentKey(a.AgentID)
	open, wasOpen := a.ACWStart != 0, p == nil || p.ACWStart != 0
	id := t.str(a.AgentID)
	t.hset(key, func(args []any) []any {
		args = append(args, "updated", t.int(wall))
		if p == nil || a.State != p.State {
			args = append(args, "state", t.str(a.State.String()))
		}
		if p == nil || a.Since != p.Since {
			args = append(args, "since", t.int(a.Since))
		}
		if p == nil || a.CallID != p.CallID {
			args = append(args, "call_id", t.str(a.CallID))
		}
		if p == nil || a.Team != p.Team {
			args = append(args, "team", t.str(a.Team))
		}
		if p == nil || a.Queue != p.Queue {
			args = append(args, "queue", t.str(a.Queue))
		}
		if p == nil || a.Reason != p.Reason {
			args = append(args, "reason", t.str(a.Reason))
		}
		if p == nil || a.Name != p.Name {
			args = append(args, "name", t.str(a.Name))
		}
		if p == nil || a.LastACWMS != p.LastACWMS {
			args = append(args, "last_acw_ms", t.int(a.LastACWMS))
		}
		if p == nil || a.LastACWOverrun != p.LastACWOverrun {
			overrun := "0"
			if a.LastACWOverrun {
				overrun = "1"
			}
			args = append(args, "last_acw_overrun", overrun)
		}
		if open && (p == nil || a.ACWStart != p.ACWStart || a.SegmentID != p.SegmentID || a.WarnMS != p.WarnMS || a.OverrunMS != p.OverrunMS) {
			args = append(args, "acw_start", t.int(a.ACWStart), "segment_id", t.str(a.SegmentID),
				"warn_ms", t.int(a.WarnMS), "overrun_ms", t.int(a.OverrunMS))
		}
		return args
	})
	if p == nil { // the first write of this ownership, or the agent is new
		t.cmd("ZADD", s.keys.agents, t.int(wall), id)
		t.cmd("PERSIST", t.str(key)) // it may have been forgotten before, and come back
	}
	switch {
	case open && (p == nil || a.ACWStart != p.ACWStart):
		t.cmd("ZADD", s.keys.open, t.int(a.ACWStart), id)
	case !open && wasOpen:
		t.cmd("HDEL", t.str(key), "acw_start", "segment_id", "warn_ms", "overrun_ms")
		t.cmd("ZREM", s.keys.open, id)
	}
}

func (s *Store) appendAlert(t *txBuf, a *events.Alert) {
	id := a.AlertID()
	t.al = append(t.al, t.str(s.k.AlertID(id)), "11",
		"id", t.str(id), "kind", t.str(a.Kind), "segment_id", t.str(a.SegmentID), "agent_id", t.str(a.AgentID),
		"call_id", t.str(a.CallID), "team", t.str(a.Team), "queue", t.str(a.Queue), "start", t.int(a.Start),
		"at", t.int(a.At), "threshold_ms", t.int(a.ThresholdMS), "json", a.AppendJSON(nil))
}

// maxNoticeAgents caps the agent ids listed in one update notice.
const maxNoticeAgents = 100

// notice is the JSON published on the updates channel after a flush:
// {"source":"topic/3","offset":N,"agents":[ids…],"agents_changed":n,
// "intervals":n,"alerts":n}. Agents are listed up to 100.
func (s *Store) notice(b *pipeline.Batch) string {
	if b.Empty() {
		return ""
	}
	buf := []byte(`{"source":`)
	buf = events.AppendString(buf, b.Source.String())
	buf = append(buf, `,"offset":`...)
	buf = strconv.AppendInt(buf, b.Offset, 10)
	buf = append(buf, `,"agents":[`...)
	ids := make([]string, 0, min(len(b.Agents), maxNoticeAgents))
	for i := range b.Agents {
		if len(ids) == maxNoticeAgents {
			break
		}
		ids = append(ids, string(b.Agents[i].State.AgentID))
	}
	sort.Strings(ids)
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = events.AppendString(buf, id)
	}
	buf = append(buf, `],"agents_changed":`...)
	buf = strconv.AppendInt(buf, int64(len(b.Agents)), 10)
	buf = append(buf, `,"intervals":`...)
	buf = strconv.AppendInt(buf, int64(len(b.Counters)), 10)
	buf = append(buf, `,"alerts":`...)
	buf = strconv.AppendInt(buf, int64(len(b.Alerts)), 10)
	return string(append(buf, '}'))
}
