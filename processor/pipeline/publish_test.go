package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// memStore records the batches committed to it; it never fences.
type memStore struct {
	mu      sync.Mutex
	batches []*Batch
}

func (s *memStore) Claim(context.Context, Source, string) (Checkpoint, error) {
	return Checkpoint{}, nil
}

func (s *memStore) Commit(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *b
	c.Outbox = slices.Clone(b.Outbox) // b's buffers are reused (Store.Commit)
	s.batches = append(s.batches, &c)
	return nil
}

func (s *memStore) Ping(context.Context) error { return nil }

// gatedPublisher holds every Publish until gate is closed, then records
// the values published, in order.
type gatedPublisher struct {
	gate chan struct{}
	mu   sync.Mutex
	got  []string
}

func (p *gatedPublisher) Publish(ctx context.Context, msgs []kafka.Message) error {
	select {
	case <-p.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.got = append(p.got, string(m.Value))
	}
	return nil
}

func (p *gatedPublisher) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// While Kafka does not acknowledge, a partition's commits go on (the store
// shows its effects) for up to maxUnpublished flushes, each committed
// outbox holding every record not yet published; then the partition waits.
// Once Kafka acknowledges, the records are published once each, in order,
// and later outboxes no longer carry them.
func TestCommitsDoNotWaitForPublishing(t *testing.T) {
	st, pub := &memStore{}, &gatedPublisher{gate: make(chan struct{})}
	p, err := New(Config{Brokers: []string{"unused:9092"}, Topics: []string{"in"}, Group: "g", Store: st, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pt := newPartition(p, nil, Source{Topic: "in"}, -1, zerolog.Nop())
	pt.out.ctx = ctx
	pt.rec.phase = live
	pt.batch.lastCommit = time.Now().Add(time.Hour) // no Kafka offset commits: there is no group
	if pt.eng, err = processor.New(p.cfg.Engine, pt.tr); err != nil {
		t.Fatal(err)
	}
	flush := func(record string) {
		t.Helper()
		pt.tr.addMessage(kafka.Message{Topic: "acw.segments", Value: []byte(record)})
		pt.pos.next++
		if err := pt.flush(false); err != nil {
			t.Fatal(err)
		}
		if err := pt.out.await(ctx); err != nil { // the commit, not the publication
			t.Fatal(err)
		}
	}
	outbox := func(i int) []string {
		t.Helper()
		st.mu.Lock()
		defer st.mu.Unlock()
		msgs, err := decodeOutbox(st.batches[i].Outbox)
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		for _, m := range msgs {
			vals = append(vals, string(m.Value))
		}
		return vals
	}
	want := []string{"r1", "r2", "r3", "r4"}
	for i, r := range want {
		if err := pt.out.awaitPublishing(ctx); err != nil {
			t.Fatal(err)
		}
		flush(r)
		if got := outbox(i); !slices.Equal(got, want[:i+1]) {
			t.Fatalf("outbox of commit %d: %q, want %q", i+1, got, want[:i+1])
		}
	}
	if got := pub.published(); len(got) != 0 {
		t.Fatalf("published %q while Kafka held every request", got)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := pt.out.awaitPublishing(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with %d flushes unpublished, awaitPublishing returned %v; want it to wait", maxUnpublished, err)
	}

	close(pub.gate)
	if err := pt.out.awaitPublishing(ctx); err != nil {
		t.Fatal(err)
	}
	flush("r5")
	if got := outbox(4); len(got) == 0 || got[len(got)-1] != "r5" || len(got) > 4 {
		t.Fatalf("outbox of commit 5: %q; want r5 after at most the records still unacknowledged", got)
	}
	if err := pt.out.awaitAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.published(); !slices.Equal(got, append(want, "r5")) {
		t.Fatalf("published %q, want %q", got, append(want, "r5"))
	}
	flush("r6")
	if got := outbox(5); !slices.Equal(got, []string{"r6"}) {
		t.Fatalf("outbox of commit 6: %q, want only its own record", got)
	}

	// One flush of maxUnpublishedBytes (a backlog's) is waited for at once.
	if err := pt.out.awaitAll(ctx); err != nil {
		t.Fatal(err)
	}
	slow := &gatedPublisher{gate: make(chan struct{})}
	pt.out.pub = slow
	flush(strings.Repeat("x", maxUnpublishedBytes))
	short, stop = context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := pt.out.awaitPublishing(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with %d bytes unpublished, awaitPublishing returned %v; want it to wait", maxUnpublishedBytes, err)
	}
	close(slow.gate)
	if err := pt.out.awaitPublishing(ctx); err != nil || len(slow.published()) != 1 {
		t.Fatalf("awaitPublishing: %v, %d records published; want nil, 1", err, len(slow.published()))
	}
}
