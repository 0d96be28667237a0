package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/processor/pipeline"
)

// A fence is a connection of one partition's own that keeps its
// checkpoint under WATCH between commits, with the owner and seq read
// under that WATCH. A commit is then one round trip: MULTI, the commands,
// EXEC, and the WATCH and read for the next commit, all in one write.
// A claim by another owner in between makes EXEC fail; the read that
// follows it shows the new owner. (Three round trips before: WATCH, the
// read, then MULTI/EXEC. On a busy machine each round trip waits for
// Redis and for this process to be scheduled, and commits took about
// three times as long.)
type fence struct {
	conn       *redis.Conn
	owner, seq string // the checkpoint's, as of the WATCH
}

// watch (re)reads the checkpoint under a new WATCH, closing the
// connection if that fails. (UNWATCH first: a WATCH that has fired stays
// fired until EXEC or UNWATCH.)
func (f *fence) watch(ctx context.Context, ckpt string) error {
	var st *redis.SliceCmd
	_, err := f.conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "UNWATCH")
		p.Do(ctx, "WATCH", ckpt)
		st = p.HMGet(ctx, ckpt, "owner", "seq")
		return nil
	})
	if err != nil {
		f.conn.Close()
		return err
	}
	f.set(st)
	return nil
}

func (f *fence) set(st *redis.SliceCmd) {
	v := st.Val()
	f.owner, _ = v[0].(string)
	f.seq, _ = v[1].(string)
}

// commit sends t as one MULTI/EXEC and watches and reads the checkpoint
// again. applied is false when the WATCH fired (a claim came in): nothing
// was applied, and f holds the checkpoint as it is now.
func (f *fence) commit(ctx context.Context, ckpt string, t *txBuf) (applied bool, err error) {
	var exec *redis.Cmd
	var st *redis.SliceCmd
	_, err = f.conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "MULTI")
		from := 0
		for _, end := range t.ends {
			p.Do(ctx, t.args[from:end]...)
			from = end
		}
		if len(t.al) > 0 {
			p.Do(ctx, append([]any{"EVAL", alertsSrc, 0}, t.al...)...)
		}
		exec = p.Do(ctx, "EXEC")
		p.Do(ctx, "WATCH", ckpt)
		st = p.HMGet(ctx, ckpt, "owner", "seq")
		return nil
	})
	if st.Err() != nil {
		return false, st.Err()
	}
	if errors.Is(exec.Err(), redis.Nil) {
		f.set(st)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f.set(st) // before the error below: a retry must see it applied
	// A command that failed inside the transaction (the others were
	// applied: it is a bug, reported as a flush error).
	res, _ := exec.Val().([]any)
	for _, r := range res {
		if e, ok := r.(error); ok {
			return true, fmt.Errorf("in the transaction: %w", e)
		}
	}
	return true, nil
}

// takeFence returns src's fence, taking it out of the store (a commit of
// the same partition running meanwhile, which happens only while
// ownership changes hands, gets a fence of its own). fresh tells a fence
// just made.
func (s *Store) takeFence(ctx context.Context, src pipeline.Source) (f *fence, fresh bool, err error) {
	s.fmu.Lock()
	f = s.fences[src]
	delete(s.fences, src)
	s.fmu.Unlock()
	if f != nil {
		return f, false, nil
	}
	f = &fence{conn: s.frdb.Conn()}
	if err := f.watch(ctx, s.CheckpointKey(src)); err != nil {
		return nil, true, err
	}
	return f, true, nil
}

// putFence keeps f for src's next commit.
func (s *Store) putFence(src pipeline.Source, f *fence) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.fences[src] != nil || s.closed {
		f.conn.Close()
		return
	}
	s.fences[src] = f
}

// Release implements pipeline.ReleasingStore: the connection src's
// commits went through goes back to the store's pool, where the next
// partition's first commit takes it (its watch starts with UNWATCH), so an
// instance holds one per partition it owns, not one per partition it ever
// owned. (A commit still in flight keeps its connection, and leaves it
// for src's next commit.)
func (s *Store) Release(src pipeline.Source) {
	s.fmu.Lock()
	f := s.fences[src]
	delete(s.fences, src)
	s.fmu.Unlock()
	if f != nil {
		f.conn.Close()
	}
}

// Close closes the connections the store holds of its own (one per
// partition it has committed for and not released). The client given to
// New stays open.
func (s *Store) Close() error {
	s.fmu.Lock()
	s.closed = true
	for src, f := range s.fences {
		f.conn.Close()
		delete(s.fences, src)
	}
	s.fmu.Unlock()
	return s.frdb.Close()
}
