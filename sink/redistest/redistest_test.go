package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestServerStartsStopsAndRestarts(t *testing.T) {
	s := Start(t)
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("a restarted server kept data; persistence should be off")
	}
}

func TestShutdownKeepsDataForRestart(t *testing.T) {
	s := Start(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a shut-down server answered")
	}
	s.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after Shutdown and Restart: %q, %v; want the saved value", v, err)
	}
	s.Stop()
	s.Restart()
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("Stop must discard the data")
	}
}
