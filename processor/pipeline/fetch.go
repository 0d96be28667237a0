package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// fetcher reads one input partition's messages in offset order from a
// start offset.
type fetcher interface {
	// Fetch returns the next message, waiting until there is one, ctx
	// ends or fetching fails.
	Fetch(ctx context.Context) (kafka.Message, error)
	// Lag asks the broker how many messages lie past the next one Fetch
	// returns.
	Lag(ctx context.Context) (int64, error)
	Close() error
}

// readerFetcher fetches with a kafka.Reader bound to one partition (no
// group: the pipeline's own consumer group assigns the partitions).
type readerFetcher struct{ r *kafka.Reader }

func newReaderFetcher(cfg *Config, src Source, start int64) (fetcher, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   cfg.Brokers,
		Dialer:    cfg.Dialer,
		Topic:     src.Topic,
		Partition: src.Partition,
		MinBytes:  1,
		MaxBytes:  2 * cfg.MaxMessageBytes,
		MaxWait:   500 * time.Millisecond,
	})
	if err := r.SetOffset(start); err != nil {
		r.Close()
		return nil, err
	}
	return readerFetcher{r}, nil
}

func (f readerFetcher) Fetch(ctx context.Context) (kafka.Message, error) {
	return f.r.FetchMessage(ctx)
}
func (f readerFetcher) Lag(ctx context.Context) (int64, error) { return f.r.ReadLag(ctx) }
func (f readerFetcher) Close() error                           { return f.r.Close() }

// fetchLoop runs a fetcher in its own goroutine, retrying its failures,
// and hands its messages to the partition over a channel, so that fetching
// overlaps processing.
type fetchLoop struct {
	msgs chan kafka.Message // closed when fetching stops
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startFetching fetches from f into fl.msgs until ctx ends or stop is
// called.
func startFetching(ctx context.Context, f fetcher, retry *retrier) *fetchLoop {
	ctx, stop := context.WithCancel(ctx)
	fl := &fetchLoop{msgs: make(chan kafka.Message, 1024), stop: stop}
	fl.wg.Add(1)
	go func() {
		defer fl.wg.Done()
		defer close(fl.msgs)
		for {
			var m kafka.Message
			if retry.do(ctx, "kafka", "fetching from Kafka", func(ctx context.Context) (err error) {
				m, err = f.Fetch(ctx)
				return err
			}) != nil {
				return // fetching stopped
			}
			select {
			case fl.msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return fl
}

// close stops fetching and waits for the goroutine to end.
func (fl *fetchLoop) close() {
	fl.stop()
	fl.wg.Wait()
}
