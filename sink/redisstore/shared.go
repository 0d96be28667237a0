package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/redis/go-redis/v9"
)

// The shared writer's side of the Store (pipeline.SharedStore). Each input
// partition's shared flushes are appended to its stream SharedLogKey by
// Commit; the writer holding the lease reads them all, sums them, and
// applies the sums with the streams' new positions in one script
// (shared.lua) that first checks the lease and the positions it read.

var (
	_ pipeline.SharedStore    = (*Store)(nil)
	_ pipeline.ReleasingStore = (*Store)(nil)
)

// LeaseShared implements pipeline.SharedStore.
func (s *Store) LeaseShared(ctx context.Context, token string, ttl time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, s.rdb, []string{s.sharedKey("lease")}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redis shared lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseShared implements pipeline.SharedStore.
func (s *Store) ReleaseShared(ctx context.Context, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.sharedKey("lease")}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis shared lease release: %w", err)
	}
	return nil
}

// ReadShared implements pipeline.SharedStore.
func (s *Store) ReadShared(ctx context.Context, max int) ([]pipeline.SharedEntry, bool, error) {
	logs, err := s.rdb.SMembers(ctx, s.sharedKey("logs")).Result()
	if err != nil || len(logs) == 0 {
		return nil, false, wrapShared(err)
	}
	slices.Sort(logs)
	pos, err := s.rdb.HMGet(ctx, s.sharedKey("pos"), logs...).Result()
	if err != nil {
		return nil, false, wrapShared(err)
	}
	s.sh.mu.Lock()
	s.sh.checkPositions(logs, pos)
	s.sh.mu.Unlock()
	prev := make([]string, len(logs))
	cmds := make([]*redis.XMessageSliceCmd, len(logs))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, l := range logs {
			from := "-"
			if v, ok := pos[i].(string); ok {
				prev[i], from = v, "("+v
			}
			cmds[i] = p.XRangeN(ctx, l, from, "+", int64(max))
		}
		return nil
	})
	if err != nil {
		return nil, false, wrapShared(err)
	}
	var out []pipeline.SharedEntry
	more := false
	for i, c := range cmds {
		msgs := c.Val()
		more = more || len(msgs) == max
		for _, m := range msgs {
			d, _ := m.Values["d"].(string)
			out = append(out, pipeline.SharedEntry{Log: logs[i], ID: m.ID, Prev: prev[i], Data: []byte(d)})
		}
	}
	return out, more, nil
}

func wrapShared(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis shared read: %w", err)
}

// sharedCache is what the shared writer last wrote to each shared view.
// Holding the lease, the writer is the only one writing them, so it
// computes their new values in Go and writes only the changed fields
// (plain HSETs in the script), instead of a read-modify-write per key. The
// cache is dropped whenever another writer may have written since: when a
// log's applied position is not the one this writer left (every write of
// shared keys moves a position), and after any failed apply. A view not
// written for rewriteAfter leaves the cache (so a cached view can never
// have expired in Redis), and each view is written whole, with its TTL,
// at least every rewriteAfter.
type sharedCache struct {
	mu     sync.Mutex
	pos    map[string]string // each log's applied position, as this writer left it
	views  map[string]*sharedView
	rounds int
}

type sharedView struct {
	start, end int64
	c          events.Counters
	r          map[string]int64 // the not-ready breakdown, all reasons (the hash holds the largest)
	rLoaded    bool             // r was read (a view read only for its maxima was not)
	at         int64            // wall ms of the last whole write (0: not written by this writer)
	used       int64            // wall ms last read or written
}

// rewriteAfter is how often (wall ms) a shared view is written whole
// again, refreshing its TTL.
const rewriteAfter = int64(10 * 60 * 1000)

// checkPositions drops the cache unless every log is where this writer
// left it (called with the positions just read; sh.mu held).
func (sh *sharedCache) checkPositions(logs []string, pos []any) {
	same := true
	seen := map[string]string{}
	for i, l := range logs {
		v, _ := pos[i].(string)
		seen[l] = v
		if sh.pos[l] != v {
			same = false
		}
	}
	if !same || len(sh.pos) != len(seen) {
		sh.views = nil
	}
	sh.pos = seen
}

// ApplyShared implements pipeline.SharedStore. A round of up to
// Config.SharedChunkViews views is one script; a larger one is recorded
// first and written in scripts of that many views (see shared.lua), so
// that Redis never stops serving the partitions' commits for long.
func (s *Store) ApplyShared(ctx context.Context, token string, entries []pipeline.SharedEntry, counters []pipeline.CounterDelta, wallMS int64) error {
	sh := &s.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.views == nil {
		sh.views = map[string]*sharedView{}
	}
	if err := s.loadViews(ctx, counters, wallMS); err != nil {
		sh.views = nil
		return err
	}
	logs, newPos := roundLogs(entries)
	next := make(map[string]sharedView, len(counters))
	look := func(k string) sharedView {
		if v, ok := next[k]; ok {
			return v
		}
		return *sh.views[k]
	}
	var ops []any // shared.lua's ops, all strings
	nops := 0
	for i := range counters {
		c := &counters[i]
		key, ttl := s.viewKey(c)
		old := look(key)
		nv := s.added(old, c, look)
		nv.start, nv.end, nv.used = c.Start, c.End, wallMS
		d := pipeline.CounterDelta{Scope: c.Scope, Key: c.Key, View: c.View, Day: c.Day, Start: c.Start, End: c.End, Delta: nv.c, Full: true}
		if old.at != 0 && old.start == c.Start && old.end == c.End && wallMS-old.at < rewriteAfter {
			d.Prev, d.PrevStart, d.PrevEnd = &old.c, old.start, old.end
		} else {
			nv.at = wallMS
		}
		n := len(ops)
		if ops = appendFull(ops, key, ttl, &d); len(ops) > n {
			nops++
		}
		// (a view without reasons, now or before, has no reasons hash)
		if hasReasons(c) && (len(nv.r) > 0 || len(old.r) > 0) && (d.Prev == nil || !maps.Equal(nv.r, old.r)) {
			ops = s.appendReplaceReasons(ops, c, nv.r, ttl)
			nops++
		}
		next[key] = nv
	}
	rec := sharedRound{Logs: logs, Notice: sharedNotice(len(entries), counters), Ops: ops, NOps: nops}
	if err := s.writeRound(ctx, token, &rec); err != nil {
		sh.views = nil
		return err
	}
	for k, v := range next {
		sh.views[k] = &v
	}
	for l, id := range newPos {
		sh.pos[l] = id
	}
	if sh.rounds++; sh.rounds%100 == 0 {
		for k, v := range sh.views {
			if wallMS-v.used >= rewriteAfter {
				delete(sh.views, k)
			}
		}
	}
	return nil
}

// roundLogs lists, per log of entries (in order, each log's together), its
// key, the position it was read at and its last entry's: what a round
// expects of and moves each log to; and the new positions by log.
func roundLogs(entries []pipeline.SharedEntry) (logs []string, newPos map[string]string) {
	newPos = map[string]string{}
	for i, e := range entries {
		newPos[e.Log] = e.ID
		if i > 0 && entries[i-1].Log == e.Log {
			logs[len(logs)-1] = e.ID // the log's last entry read
			continue
		}
		logs = append(logs, e.Log, e.Prev, e.ID)
	}
	return logs, newPos
}

// added is the view old with c added: its counters (maxima as maxima), its
// not-ready reasons, and for a last-60m view the maxima of the intervals it
// spans, as look gives them (this round's, intervals coming first).
func (s *Store) added(old sharedView, c *pipeline.CounterDelta, look func(key string) sharedView) sharedView {
	nv := old
	nv.c.Add(&c.Delta)
	nv.r = maps.Clone(old.r)
	for r, ms := range c.Reasons {
		if v := nv.r[r] + ms; v != 0 {
			if nv.r == nil {
				nv.r = map[string]int64{}
			}
			nv.r[r] = v
		} else {
			delete(nv.r, r)
		}
	}
	if c.View != pipeline.ViewLast60m {
		return nv
	}
	fs := nv.c.Fields()
	for f, isMax := range events.CounterIsMax {
		if isMax {
			*fs[f] = 0
		}
	}
	for t := c.Start; t < c.End; t += s.cfg.Window.Milliseconds() {
		iv := look(s.IntervalKey(c.Scope, c.Key, t)).c
		ifs := iv.Fields()
		for f, isMax := range events.CounterIsMax {
			if isMax {
				*fs[f] = max(*fs[f], *ifs[f])
			}
		}
	}
	return nv
}

// sharedRound is one shared-writer round.
type sharedRound struct {
	Logs   []string // per log: key, expected position, new position
	Notice string   // for the updates channel ("" = none)
	Ops    []any    // shared.lua's ops (strings)
	NOps   int      // how many ops
}

// appendRecord encodes r for the record key: a version byte, then
// uvarint counts of logs and ops and uvarint-length-prefixed strings
// (logs, notice, ops).
func appendRecord(b []byte, r *sharedRound) []byte {
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(r.Logs)))
	b = binary.AppendUvarint(b, uint64(len(r.Ops)))
	for _, l := range r.Logs {
		str(l)
	}
	str(r.Notice)
	for _, o := range r.Ops {
		str(o.(string))
	}
	return b
}

var errRecord = errors.New("malformed round record")

// parseRecord decodes appendRecord's encoding.
func parseRecord(b []byte) (*sharedRound, error) {
	r := events.Reader{B: b, Corrupt: errRecord}
	r.Version(1, 1)
	nl, no := r.Count(), r.Count()
	if nl%3 != 0 {
		r.Fail("logs")
	}
	rec := &sharedRound{Logs: make([]string, nl), Ops: make([]any, no)}
	for i := range rec.Logs {
		rec.Logs[i] = r.String()
	}
	rec.Notice = r.String()
	for i := range rec.Ops {
		rec.Ops[i] = r.String()
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	for i := 0; i < len(rec.Ops); rec.NOps++ {
		i += opsPrefix(rec.Ops[i:], 1)
	}
	return rec, nil
}

// PendingKey is the hash naming a shared-writer round being written in
// parts (fields id, and record: the key of the round's record, see
// appendRecord), absent between rounds.
func (s *Store) PendingKey() string { return s.sharedKey("pending") }

// writeRound writes rec: in one script when it is small, else recorded
// and then written in parts. A round left pending by an earlier writer
// (or by this one, interrupted) is completed first, and reported as
// ErrSharedConflict: the caller reads the logs again.
func (s *Store) writeRound(ctx context.Context, token string, rec *sharedRound) error {
	mode := "all"
	if rec.NOps > s.cfg.SharedChunkViews {
		mode = "begin"
	}
	args := append(s.sharedArgs(mode, token), s.positionArgs(rec)...)
	id, recKey := "", ""
	if mode == "all" {
		args = append(append(args, s.UpdatesChannel(), rec.Notice), rec.Ops...)
	} else {
		id = token + "/" + strconv.FormatInt(time.Now().UnixNano(), 36)
		// begin keeps the record (PERSIST); one it refuses expires
		recKey = s.sharedKey("round:" + id)
		if err := s.rdb.Set(ctx, recKey, appendRecord(nil, rec), 24*time.Hour).Err(); err != nil {
			return sharedErr(err)
		}
		args = append(args, id, recKey)
	}
	err := sharedScript.Run(ctx, s.rdb, nil, args...).Err()
	var refused redis.Error
	if recKey != "" && errors.As(err, &refused) {
		// begin answered no; after any other error it may have run (its
		// reply lost), so the record stays, and expires if unused
		s.rdb.Del(ctx, recKey)
	}
	if replyCode(err) == "PENDING" {
		if err := s.completePending(ctx, token); err != nil {
			return err
		}
		return fmt.Errorf("%w: completed a round an earlier writer left pending", pipeline.ErrSharedConflict)
	}
	if err != nil || mode == "all" {
		return sharedErr(err)
	}
	return s.finishRound(ctx, token, id, rec)
}

// completePending completes the round recorded in the pending hash, if
// any, under token.
func (s *Store) completePending(ctx context.Context, token string) error {
	res, err := s.rdb.HMGet(ctx, s.PendingKey(), "id", "record").Result()
	if err != nil {
		return sharedErr(err)
	}
	id, _ := res[0].(string)
	recKey, _ := res[1].(string)
	if id == "" {
		return nil // completed meanwhile
	}
	blob, err := s.rdb.Get(ctx, recKey).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return sharedErr(err)
	}
	rec, err := parseRecord(blob)
	if err != nil {
		return fmt.Errorf("redis shared apply: the pending round %s (record %s) is unreadable: %v; the shared keys stop until it is completed or deleted", id, recKey, err)
	}
	return s.finishRound(ctx, token, id, rec)
}

// chunkHook, when set (by tests), runs before each part of a round is
// queued; an error sends only the parts before it and stops the round.
var chunkHook func(part int) error

// finishRound writes a recorded round's ops in parts, then its positions.
// The parts go out in one pipeline: Redis runs each as soon as it has
// read it, serving other clients between them, so a part, not the round,
// is what holds Redis, and the round costs two round trips, not one per
// part (on a busy machine each took tens of milliseconds: rounds of 2 400
// teams took 0.25–4 s). The commit goes out only once every part is in.
func (s *Store) finishRound(ctx context.Context, token, id string, rec *sharedRound) error {
	var stop error
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		ops := rec.Ops
		for part := 0; len(ops) > 0; part++ {
			if chunkHook != nil {
				if stop = chunkHook(part); stop != nil {
					return nil
				}
			}
			n := opsPrefix(ops, s.cfg.SharedChunkViews)
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT
			sharedScript.Eval(ctx, p, nil, append(append(s.sharedArgs("chunk", token), id), ops[:n]...)...)
			ops = ops[n:]
		}
		return nil
	})
	for _, c := range cmds {
		if c.Err() != nil {
			return sharedErr(c.Err())
		}
	}
	if err != nil {
		return sharedErr(err)
	}
	if stop != nil {
		return stop
	}
	args := append(append(s.sharedArgs("commit", token), id), s.positionArgs(rec)...)
	return sharedErr(sharedScript.Run(ctx, s.rdb, nil, append(args, s.UpdatesChannel(), rec.Notice)...).Err())
}

func (s *Store) sharedArgs(mode, token string) []any {
	return []any{mode, s.sharedKey("lease"), token, s.PendingKey()}
}

func (s *Store) positionArgs(rec *sharedRound) []any {
	args := []any{s.sharedKey("pos"), len(rec.Logs) / 3}
	for _, l := range rec.Logs {
		args = append(args, l)
	}
	return args
}

// opsPrefix returns the length of the longest prefix of ops holding at
// most limit ops (at least one).
func opsPrefix(ops []any, limit int) int {
	i := 0
	for n := 0; i < len(ops) && (n < limit || n == 0); n++ {
		nf := 0
		if i+3 < len(ops) {
			nf, _ = strconv.Atoi(ops[i+3].(string))
		}
		i += 4 + 2*max(nf, 0)
	}
	return min(i, len(ops))
}

// replyCode is the code of a Redis error reply: its first word, as the
// scripts set it (redis.error_reply("PENDING …"), "CONFLICT …"). It is
// "" for any other error: a transport error, whatever its text, says
// nothing of what the script did.
func replyCode(err error) string {
	var reply redis.Error
	if !errors.As(err, &reply) || errors.Is(err, redis.Nil) { // go-redis's Nil is a redis.Error too
		return ""
	}
	code, _, _ := strings.Cut(reply.Error(), " ")
	return code
}

// sharedErr wraps a shared-writer script's error: a CONFLICT reply as
// pipeline.ErrSharedConflict.
func sharedErr(err error) error {
	switch {
	case err == nil:
		return nil
	case replyCode(err) == "CONFLICT":
		return fmt.Errorf("%w: %v", pipeline.ErrSharedConflict, err)
	default:
		return fmt.Errorf("redis shared apply: %w", err)
	}
}

// loadViews reads into the cache the current values of the views the
// counters change, and of the intervals their last-60m views span, that
// it does not hold (sh.mu held). Reading outside the apply script is safe:
// a writer that changes them in between also moves a log, and the apply
// then fails its position check.
func (s *Store) loadViews(ctx context.Context, counters []pipeline.CounterDelta, wallMS int64) error {
	sh := &s.sh
	var keys []string
	reasons := map[string]string{} // view key → its breakdown's key, for the views written
	want := func(k string) {
		if _, ok := sh.views[k]; !ok {
			sh.views[k] = nil // placeholder: not asked twice
			keys = append(keys, k)
		}
	}
	w := s.cfg.Window.Milliseconds()
	for i := range counters {
		c := &counters[i]
		key, _ := s.viewKey(c)
		if v, ok := sh.views[key]; hasReasons(c) && (!ok || v == nil || !v.rLoaded) {
			reasons[key] = s.reasonsKey(c)
		}
		want(key)
		if c.View == pipeline.ViewLast60m {
			for t := c.Start; t < c.End; t += w {
				want(s.IntervalKey(c.Scope, c.Key, t))
			}
		}
	}
	if len(keys) == 0 && len(reasons) == 0 {
		return nil
	}
	cmds := make([]*redis.SliceCmd, len(keys))
	rcmds := map[string]*redis.MapStringStringCmd{}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, k, viewBase...)
		}
		for k, rk := range reasons {
			rcmds[k] = p.HGetAll(ctx, rk)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis shared read: %w", err)
	}
	for i, k := range keys {
		vals := cmds[i].Val()
		start, end, c, err := parseViewBase(k, func(j int) (string, bool) {
			str, ok := vals[j].(string)
			return str, ok
		})
		if err != nil {
			return fmt.Errorf("redis shared read: %v", err)
		}
		sh.views[k] = &sharedView{start: start, end: end, used: wallMS, c: c}
	}
	for k, rc := range rcmds {
		v := sh.views[k]
		if v.r, err = parseReasons(reasons[k], rc.Val()); err != nil {
			return fmt.Errorf("redis shared read: %v", err)
		}
		v.rLoaded = true
	}
	return nil
}

// parseReasons reads a reasons hash (nil when it is empty). It holds the
// largest reasons and "other": a writer that starts from it adds later
// time of a reason summed into "other" as a reason of its own.
func parseReasons(key string, h map[string]string) (map[string]int64, error) {
	if len(h) == 0 {
		return nil, nil
	}
	m := make(map[string]int64, len(h))
	for r, v := range h {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %s = %q: %v", key, r, v, err)
		}
		m[r] = ms
	}
	return m, nil
}

// sharedNotice is the JSON published on the updates channel after a
// shared-writer round: {"source":"shared","entries":n,"agents":[],
// "agents_changed":0,"intervals":n,"alerts":0,"keys":[…]} where keys
// lists the shared scope/keys changed ("team:t-1"), up to 100.
func sharedNotice(entries int, counters []pipeline.CounterDelta) string {
	if len(counters) == 0 {
		return ""
	}
	keys := make([]string, 0, maxNoticeAgents)
	seen := map[string]bool{}
	ivs := 0
	for i := range counters {
		c := &counters[i]
		if c.View == pipeline.ViewInterval {
			ivs++
		}
		k := c.Scope.String() + ":" + c.Key
		if !seen[k] && len(keys) < maxNoticeAgents {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	buf := []byte(`{"source":"shared","entries":`)
	buf = strconv.AppendInt(buf, int64(entries), 10)
	buf = append(buf, `,"agents":[],"agents_changed":0,"intervals":`...)
	buf = strconv.AppendInt(buf, int64(ivs), 10)
	buf = append(buf, `,"alerts":0,"keys":[`...)
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = events.AppendString(buf, k)
	}
	return string(append(buf, "]}"...))
}
