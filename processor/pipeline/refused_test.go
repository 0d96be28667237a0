package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// refusingPublisher refuses every Publish (ErrRefused) until fixed.
type refusingPublisher struct {
	mu    sync.Mutex
	fixed bool
	tries int
}

func (p *refusingPublisher) Publish(context.Context, []kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries++
	if !p.fixed {
		return fmt.Errorf("publishing: %w: [10] Message Size Too Large", ErrRefused)
	}
	return nil
}

// blockRecorder is an Observer that records blocked partitions.
type blockRecorder struct {
	nopObserver
	mu      sync.Mutex
	blocked map[Source]string
	ever    int
}

func (b *blockRecorder) Failed(Source, string, error) {}
func (b *blockRecorder) Blocked(src Source, reason string, _ error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blocked[src] = reason
	b.ever++
}
func (b *blockRecorder) Unblocked(src Source) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.blocked, src)
}
func (b *blockRecorder) Recovered(Source)      {}
func (b *blockRecorder) Rebuilt(Source, int64) {}
func (b *blockRecorder) state() (map[Source]string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[Source]string{}
	for k, v := range b.blocked {
		m[k] = v
	}
	return m, b.ever
}

// Records the broker refuses (a topic's max.message.bytes, an ACL) are
// not dropped and not retried in silence: the partition reports itself
// blocked while the refusal lasts, and publishes them once it is fixed.
func TestARefusedPublicationIsReportedAndRetried(t *testing.T) {
	pub := &refusingPublisher{}
	obs := &blockRecorder{blocked: map[Source]string{}}
	p, err := New(Config{Brokers: []string{"unused:9092"}, Topics: []string{"in"}, Group: "g", Store: &memStore{}, Publisher: pub,
		Observer: obs, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Topic: "in"}
	pt := newPartition(p, nil, src, -1, zerolog.Nop())
	done := make(chan error)
	go func() {
		done <- pt.out.publish(context.Background(), []kafka.Message{{Topic: "acw.dlq", Value: []byte("x")}}, "publishing derived records")
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if m, _ := obs.state(); m[src] == BlockedPublish {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refusal was not reported")
		}
	}
	pub.mu.Lock()
	pub.fixed = true
	pub.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m, ever := obs.state(); len(m) != 0 || ever != 1 {
		t.Fatalf("blocked %v after the fix (reported %d times)", m, ever)
	}
}
