package redisstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/acwstream/acwstream/processor/pipeline"
)

// Partitions commit concurrently, each on its own connection, from the
// first commit on (as after a restart).
func TestConcurrentCommits(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var wg sync.WaitGroup
	for p := range 12 {
		src := pipeline.Source{Topic: "in", Partition: p}
		if _, err := s.Claim(ctx, src, "tok"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := int64(1); seq <= 20; seq++ {
				if err := s.Commit(ctx, &pipeline.Batch{Source: src, Token: "tok", Seq: seq, Offset: seq, WallMS: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
