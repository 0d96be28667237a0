package redisstore_test

import (
	"context"
	"testing"

	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/processor/pipeline/storetest"
	"github.com/acwstream/acwstream/sink/redisstore"
)

// The Redis store passes the stores' contract suites, as the in-memory
// reference store does (package storetest), each test on a redis-server
// of its own.
var redisHarness = storetest.Harness{
	New: func(t *testing.T) pipeline.Store {
		s, _ := newStore(t)
		return s
	},
	LoseCheckpoint: func(t *testing.T, s pipeline.Store, src pipeline.Source) {
		rs := s.(*redisstore.Store)
		if err := rs.Client().Del(context.Background(), rs.CheckpointKey(src)).Err(); err != nil {
			t.Fatal(err)
		}
	},
}

func TestStoreContract(t *testing.T)       { storetest.RunStore(t, redisHarness) }
func TestSharedStoreContract(t *testing.T) { storetest.RunShared(t, redisHarness) }
