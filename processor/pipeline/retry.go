package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// retrier retries a partition's calls to Redis and Kafka: with capped
// exponential backoff, logging once per failure run, counting every
// failure for the Observer, and reporting a Kafka refusal as blocking
// while it lasts.
type retrier struct {
	src        Source
	log        zerolog.Logger
	hooks      *hooks
	maxBackoff time.Duration
}

// do calls fn until it succeeds, ctx ends or the partition is fenced or
// has lost its checkpoint; op ("redis" or "kafka") labels the failures,
// what names the call in the logs.
func (r *retrier) do(ctx context.Context, op, what string, fn func(context.Context) error) error {
	b := NewBackoff(r.maxBackoff)
	failing, refused := false, false
	for {
		err := fn(ctx)
		if err == nil {
			if failing {
				r.log.Info().Msg(what + ": recovered")
			}
			return nil
		}
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrCheckpointLost) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopped, not failed
		}
		r.hooks.failed(r.src, op, err)
		if errors.Is(err, ErrRefused) && !refused {
			refused = true
			r.log.Error().Err(err).Msg(what + ": Kafka refuses the records, and retrying alone will not fix that; the partition waits, reported on /readyz, and retries until the cause is fixed (a topic's max.message.bytes, an ACL, the topic itself)")
			r.hooks.blocked(r.src, BlockedPublish, err)
			defer r.hooks.unblocked(r.src)
		}
		if !failing {
			failing = true
			r.log.Warn().Err(err).Msg(what + " failed; pausing the partition and retrying")
		}
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}
