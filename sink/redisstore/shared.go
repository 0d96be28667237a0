package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

var _ pipeline.SharedStore = (*Store)(nil)

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
	if err := releaseScript.Run(ctx, s.rdb, []string{s.sharedKey("lease")}, token).Err(); err != nil && err != redis.Nil {
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

// ApplyShared implements pipeline.SharedStore.
func (s *Store) ApplyShared(ctx context.Context, token string, entries []pipeline.SharedEntry, counters []pipeline.CounterDelta, wallMS int64) error {
	args := []any{s.sharedKey("lease"), token, s.sharedKey("pos"), 0}
	nlogs := 0
	for i, e := range entries {
		if i > 0 && entries[i-1].Log == e.Log {
			args[len(args)-1] = e.ID // the log's last entry read
			continue
		}
		args = append(args, e.Log, e.Prev, e.ID)
		nlogs++
	}
	args[3] = nlogs
	args = append(args, s.UpdatesChannel(), sharedNotice(len(entries), counters))
	for i := range counters {
		args = s.appendDelta(args, &counters[i])
	}
	err := sharedScript.Run(ctx, s.rdb, nil, args...).Err()
	if err != nil && strings.HasPrefix(err.Error(), "CONFLICT") {
		return fmt.Errorf("%w: %v", pipeline.ErrSharedConflict, err)
	}
	if err != nil {
		return fmt.Errorf("redis shared apply: %w", err)
	}
	return nil
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
