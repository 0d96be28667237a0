package redisstore

import "github.com/redis/go-redis/v9"

// SetChunkHook makes each part of a shared round call f first (a non-nil
// error stops the round) until restore is called.
func SetChunkHook(f func(part int) error) (restore func()) {
	chunkHook = f
	return func() { chunkHook = nil }
}

// ReplyCode is replyCode.
var ReplyCode = replyCode

// Client is the client the store writes through.
func (s *Store) Client() *redis.Client { return s.rdb }
