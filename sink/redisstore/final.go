package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
)

// The shared intervals still to publish: each partition's commit that
// logs shared deltas also names, per window, the shared scope/keys they
// touch (Batch.SharedWindows): a sorted set of the windows
// (shared:{group}:windows, score = member = the window's start) and a set
// of "scope:key" per window (shared:{group}:window:{start}). The shared
// writer publishes a window's final records once every partition has
// closed it, then deletes both.

func (s *Store) windowsKey() string { return s.sharedKey("windows") }

func (s *Store) windowKey(start int64) string {
	return s.sharedKey("window:" + strconv.FormatInt(start, 10))
}

// addWindows adds the commit's shared windows to the registry.
func (s *Store) addWindows(t *txBuf, ws []pipeline.SharedWindow) {
	for _, w := range ws {
		start := i64(w.Start)
		t.cmd("ZADD", s.windowsKey(), start, start)
		key := s.windowKey(w.Start)
		args := make([]any, 0, len(w.Keys)+2)
		args = append(args, "SADD", key)
		for _, k := range w.Keys {
			args = append(args, k)
		}
		t.cmd(args...)
		// Kept as long as the interval hashes, should no writer ever
		// publish it.
		t.cmd("EXPIRE", key, secs(s.cfg.IntervalTTL))
	}
}

// SharedTails implements pipeline.SharedStore: each log's entry at its
// applied position (applying trims the entries before it, never it).
func (s *Store) SharedTails(ctx context.Context) (map[string][]byte, error) {
	logs, err := s.rdb.SMembers(ctx, s.sharedKey("logs")).Result()
	if err != nil || len(logs) == 0 {
		return nil, wrapShared(err)
	}
	pos, err := s.rdb.HMGet(ctx, s.sharedKey("pos"), logs...).Result()
	if err != nil {
		return nil, wrapShared(err)
	}
	out := make(map[string][]byte, len(logs))
	cmds := make([]*redis.XMessageSliceCmd, len(logs))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, l := range logs {
			out[l] = nil
			if v, ok := pos[i].(string); ok {
				cmds[i] = p.XRangeN(ctx, l, v, v, 1)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapShared(err)
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if msgs := c.Val(); len(msgs) == 1 {
			d, _ := msgs[0].Values["d"].(string)
			out[logs[i]] = []byte(d)
		}
	}
	return out, nil
}

// PendingWindows implements pipeline.SharedStore.
func (s *Store) PendingWindows(ctx context.Context, before int64) ([]int64, error) {
	ms, err := s.rdb.ZRangeByScore(ctx, s.windowsKey(), &redis.ZRangeBy{Min: "-inf", Max: "(" + i64(before)}).Result()
	if err != nil {
		return nil, wrapShared(err)
	}
	out := make([]int64, 0, len(ms))
	for _, m := range ms {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: %s holds %q, not a window start", s.windowsKey(), m)
		}
		out = append(out, v)
	}
	return out, nil
}

// WindowCounters implements pipeline.SharedStore: the interval hashes of
// the window's scope/keys, in scope then key order.
func (s *Store) WindowCounters(ctx context.Context, start int64) ([]pipeline.CounterDelta, error) {
	members, err := s.rdb.SMembers(ctx, s.windowKey(start)).Result()
	if err != nil {
		return nil, wrapShared(err)
	}
	type sk struct {
		scope events.Scope
		key   string
	}
	var keys []sk
	for _, m := range members {
		name, key, ok := strings.Cut(m, ":")
		scope, known := events.ParseScope(name)
		if !ok || !known {
			return nil, fmt.Errorf("redis: %s holds %q, not scope:key", s.windowKey(start), m)
		}
		keys = append(keys, sk{scope, key})
	}
	slices.SortFunc(keys, func(x, y sk) int { return cmp.Or(cmp.Compare(x.scope, y.scope), strings.Compare(x.key, y.key)) })
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	rcmds := make([]*redis.MapStringStringCmd, len(keys))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, s.IntervalKey(k.scope, k.key, start))
			if k.scope != events.ScopeQueue {
				rcmds[i] = p.HGetAll(ctx, s.k.IntervalReasons(k.scope, k.key, start))
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapShared(err)
	}
	out := make([]pipeline.CounterDelta, 0, len(keys))
	for i, k := range keys {
		h := cmds[i].Val()
		_, _, c, err := parseViewBase(s.IntervalKey(k.scope, k.key, start), func(j int) (string, bool) {
			v, ok := h[viewBase[j]]
			return v, ok
		})
		if err != nil {
			return nil, fmt.Errorf("redis: %v", err)
		}
		d := pipeline.CounterDelta{Scope: k.scope, Key: k.key, View: pipeline.ViewInterval, Start: start, Delta: c}
		if rc := rcmds[i]; rc != nil {
			if d.Reasons, err = parseReasons(s.k.IntervalReasons(k.scope, k.key, start), rc.Val()); err != nil {
				return nil, fmt.Errorf("redis: %v", err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// WindowPublished implements pipeline.SharedStore.
func (s *Store) WindowPublished(ctx context.Context, start int64) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.windowsKey(), i64(start))
		p.Del(ctx, s.windowKey(start))
		return nil
	})
	return wrapShared(err)
}

// RegisterLogs implements pipeline.SharedStore.
func (s *Store) RegisterLogs(ctx context.Context, srcs []pipeline.Source) error {
	if len(srcs) == 0 {
		return nil
	}
	logs := make([]any, len(srcs))
	for i, src := range srcs {
		logs[i] = s.SharedLogKey(src)
	}
	return wrapShared(s.rdb.SAdd(ctx, s.sharedKey("logs"), logs...).Err())
}
