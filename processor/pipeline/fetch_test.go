package pipeline

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchBroker starts an in-process Kafka-protocol broker (kfake, on a
// free port) with topic "in" of one partition holding n records, the
// first del of them deleted (as retention deletes them).
func fetchBroker(t *testing.T, n, del int) []string {
	t.Helper()
	return fetchBrokerSized(t, n, del, 0)
}

// fetchBrokerSized is fetchBroker with every seventh of the first 30
// records padded to big bytes.
func fetchBrokerSized(t *testing.T, n, del, big int) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("in"), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte("a"), Value: []byte(strconv.Itoa(i))}
		if big > 0 && i < 30 && i%7 == 3 {
			recs[i].Value = append(recs[i].Value, bytes.Repeat([]byte(" "), big)...)
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if del > 0 {
		req := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "in"
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Offset = int64(del)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("deleting records: %v %+v", err, resp)
		}
	}
	return c.ListenAddrs()
}

// The batch fetcher reads the partition in order, a fetch's messages at a
// time, each with the partition's high watermark; a start before the first
// offset Kafka holds (retention) reads on from that offset, and says so;
// End is the high watermark.
func TestBatchFetcherReadsOnFromWhatKafkaHolds(t *testing.T) {
	brokers := fetchBroker(t, 300, 40)
	var logs bytes.Buffer
	f := newBatchFetcher(&Config{Brokers: brokers, MaxMessageBytes: 1 << 20}, Source{Topic: "in"}, 10, zerolog.New(&logs))
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []kafka.Message
	for len(got) < 260 {
		var err error
		if got, err = f.Fetch(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range got {
		if want := int64(40 + i); m.Offset != want || string(m.Value) != strconv.Itoa(40+i) || m.HighWaterMark != 300 || m.Topic != "in" {
			t.Fatalf("message %d: offset %d value %q hwm %d topic %q; want offset %d", i, m.Offset, m.Value, m.HighWaterMark, m.Topic, want)
		}
	}
	if !strings.Contains(logs.String(), "retention") {
		t.Errorf("the skip over deleted offsets was not logged: %s", logs.String())
	}
	if end, err := f.End(ctx); err != nil || end != 300 {
		t.Fatalf("End: %d %v, want 300", end, err)
	}
}

// A fetch waiting on a partition with nothing new returns once its
// context ends (a partition being released does not wait for Kafka).
func TestAFetchEndsWithItsContext(t *testing.T) {
	brokers := fetchBroker(t, 5, 0)
	f := newBatchFetcher(&Config{Brokers: brokers, MaxMessageBytes: 1 << 20}, Source{Topic: "in"}, kafka.LastOffset, zerolog.Nop())
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(ctx, nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // usually inside the broker's wait by now; either way it must end
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Fetch returned %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch did not return after its context ended")
	}
}

// Large messages are read whole, in order, between small ones, and a
// fetch response of more than fetchMessages is handed over in parts.
func TestFetchesAreHandedOverInParts(t *testing.T) {
	brokers := fetchBrokerSized(t, 2*fetchMessages+30, 0, 300<<10)
	f := newBatchFetcher(&Config{Brokers: brokers, MaxMessageBytes: 1 << 20}, Source{Topic: "in"}, 0, zerolog.Nop())
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []kafka.Message
	for len(got) < 2*fetchMessages+30 {
		n := len(got)
		var err error
		if got, err = f.Fetch(ctx, got); err != nil {
			t.Fatal(err)
		}
		if len(got)-n > fetchMessages {
			t.Fatalf("one Fetch handed over %d messages, more than %d", len(got)-n, fetchMessages)
		}
	}
	for i, m := range got {
		if m.Offset != int64(i) || !strings.HasPrefix(string(m.Value), strconv.Itoa(i)) || (i < 30 && i%7 == 3) != (len(m.Value) > 300<<10) {
			t.Fatalf("message %d: offset %d, %d bytes", i, m.Offset, len(m.Value))
		}
	}
}
