package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// fetcher reads one input partition's messages in offset order from a
// start offset.
type fetcher interface {
	// Fetch appends the messages of the next fetch to dst (at least one),
	// waiting until there are some, ctx ends or fetching fails.
	Fetch(ctx context.Context, dst []kafka.Message) ([]kafka.Message, error)
	// End asks the broker for the partition's end: the offset the next
	// message written will have (its high watermark).
	End(ctx context.Context) (int64, error)
	Close() error
}

// batchFetcher fetches with kafka-go's Conn to the partition's leader and
// hands over up to fetchMessages messages of a fetch response at a time.
// (kafka.Reader, built on the same Conn, hands each message over a channel
// of its own and resets a deadline per message: a fifth of a backlog
// drain's CPU went there.) Like kafka.Reader, it reconnects to the leader
// after an error (the retrier backs off), and a start before the first
// offset Kafka still holds (retention) starts at that first offset.
type batchFetcher struct {
	dialer   *kafka.Dialer
	brokers  []string
	src      Source
	maxBytes int // of a fetch: twice Config.MaxMessageBytes
	maxWait  time.Duration
	log      zerolog.Logger
	conn     *kafka.Conn  // nil: to dial
	batch    *kafka.Batch // the fetch response being read (nil: none)
	next     int64        // next offset to fetch (kafka.FirstOffset or LastOffset until known)
	endConn  *kafka.Conn  // End's own connection (Fetch may be blocked on conn)
}

func newBatchFetcher(cfg *Config, src Source, start int64, log zerolog.Logger) *batchFetcher {
	d := cfg.Dialer
	if d == nil {
		d = kafka.DefaultDialer
	}
	return &batchFetcher{dialer: d, brokers: cfg.Brokers, src: src, maxBytes: 2 * cfg.MaxMessageBytes,
		maxWait: 500 * time.Millisecond, log: log, next: start}
}

// fetchMessages is the most messages one Fetch hands over; a fetch
// response with more is read on by the next (as kafka.Reader streams it):
// with fetchAhead, what a partition holds fetched and not yet applied is a
// few thousand messages, whatever the backlog and the fetch's size.
const fetchMessages = 1024

// fetchTimeout bounds the network's part of reading fetched messages,
// beyond the broker's wait.
const fetchTimeout = 10 * time.Second

func (f *batchFetcher) Fetch(ctx context.Context, dst []kafka.Message) ([]kafka.Message, error) {
	n := len(dst)
	for len(dst) == n {
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		if err := f.connect(ctx); err != nil {
			return dst, err
		}
		conn := f.conn
		stop := context.AfterFunc(ctx, func() { conn.Close() }) // unblocks the read
		conn.SetReadDeadline(time.Now().Add(f.maxWait + fetchTimeout))
		if f.batch == nil {
			f.batch = conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: f.maxBytes, MaxWait: f.maxWait})
		}
		var err error
		for len(dst)-n < fetchMessages {
			var m kafka.Message
			if m, err = f.batch.ReadMessage(); err != nil {
				err = f.batch.Close() // nil at the end of the response
				f.batch = nil
				break
			}
			dst = append(dst, m)
		}
		if !stop() || ctx.Err() != nil {
			f.drop()
			return dst[:n], ctx.Err()
		}
		if len(dst) > n {
			f.next = dst[len(dst)-1].Offset + 1
		}
		if err == nil || errors.Is(err, kafka.RequestTimedOut) {
			continue // more to read, an empty fetch (the broker's wait passed), or the broker's timeout
		}
		// The connection is dropped: the next Fetch dials the leader again
		// (it may have moved) and seeks (an offset Kafka no longer holds
		// moves on to the first it holds). What was read comes first.
		f.drop()
		if len(dst) == n {
			return dst, err
		}
	}
	return dst, nil
}

// connect dials the partition's leader, if not connected, and seeks to the
// next offset.
func (f *batchFetcher) connect(ctx context.Context) error {
	if f.conn != nil {
		return nil
	}
	var errs []error
	for _, b := range f.brokers {
		conn, err := f.dialer.DialLeader(ctx, "tcp", b, f.src.Topic, f.src.Partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := f.seek(conn); err != nil {
			conn.Close()
			return err
		}
		f.conn = conn
		return nil
	}
	return fmt.Errorf("connecting to the leader of %s: %w", f.src, errors.Join(errs...))
}

// seek puts conn at the next offset: the first Kafka holds when that is
// later (or asked for), the last when asked for.
func (f *batchFetcher) seek(conn *kafka.Conn) error {
	conn.SetDeadline(time.Now().Add(fetchTimeout))
	defer conn.SetDeadline(time.Time{})
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return fmt.Errorf("reading the offsets of %s: %w", f.src, err)
	}
	switch {
	case f.next == kafka.LastOffset:
		f.next = last
	case f.next == kafka.FirstOffset:
		f.next = first
	case f.next < first:
		f.log.Warn().Int64("from", f.next).Int64("to", first).Msg("Kafka no longer holds the partition's next offsets (retention): reading on from the first it holds")
		f.next = first
	}
	_, err = conn.Seek(f.next, kafka.SeekAbsolute|kafka.SeekDontCheck)
	return err
}

func (f *batchFetcher) drop() {
	f.batch = nil // its connection goes
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}

func (f *batchFetcher) End(ctx context.Context) (int64, error) {
	if f.endConn == nil {
		var errs []error
		for _, b := range f.brokers {
			conn, err := f.dialer.DialLeader(ctx, "tcp", b, f.src.Topic, f.src.Partition)
			if err == nil {
				f.endConn = conn
				break
			}
			errs = append(errs, err)
		}
		if f.endConn == nil {
			return 0, errors.Join(errs...)
		}
	}
	if d, ok := ctx.Deadline(); ok {
		f.endConn.SetDeadline(d)
	}
	end, err := f.endConn.ReadLastOffset()
	f.endConn.SetDeadline(time.Time{})
	if err != nil {
		f.endConn.Close()
		f.endConn = nil
	}
	return end, err
}

func (f *batchFetcher) Close() error {
	f.drop()
	if f.endConn != nil {
		f.endConn.Close()
		f.endConn = nil
	}
	return nil
}

// fetchLoop runs a fetcher in its own goroutine, retrying its failures,
// and hands each fetch's messages to the partition as one batch, so that
// fetching overlaps processing. Applied batches come back for reuse.
type fetchLoop struct {
	batches chan []kafka.Message // closed when fetching stops
	free    chan []kafka.Message
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// fetchAhead is how many fetched batches may wait for the partition: with
// the one being applied and the one being fetched, at most four fetches'
// messages (each at most fetchMessages) are in memory.
const fetchAhead = 2

// startFetching fetches from f into fl.batches until ctx ends or close is
// called.
func startFetching(ctx context.Context, f fetcher, retry *retrier) *fetchLoop {
	ctx, stop := context.WithCancel(ctx)
	fl := &fetchLoop{batches: make(chan []kafka.Message, fetchAhead), free: make(chan []kafka.Message, fetchAhead+2), stop: stop}
	fl.wg.Add(1)
	go func() {
		defer fl.wg.Done()
		defer close(fl.batches)
		for {
			var b []kafka.Message
			select {
			case b = <-fl.free:
			default:
			}
			if retry.do(ctx, "kafka", "fetching from Kafka", func(ctx context.Context) (err error) {
				b, err = f.Fetch(ctx, b[:0])
				return err
			}) != nil {
				return // fetching stopped
			}
			select {
			case fl.batches <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return fl
}

// recycle takes back a batch whose messages are all applied.
func (fl *fetchLoop) recycle(b []kafka.Message) {
	clear(b) // their keys and values are not kept alive
	select {
	case fl.free <- b[:0]:
	default:
	}
}

// close stops fetching and waits for the goroutine to end.
func (fl *fetchLoop) close() {
	fl.stop()
	fl.wg.Wait()
}
