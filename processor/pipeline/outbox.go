package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/acwstream/acwstream/events"
	"github.com/segmentio/kafka-go"
)

// The outbox: a batch's derived records travel in its commit (Batch.Outbox)
// and are published after it, in batch order. A commit replaces the
// previous batch's outbox and carries, besides its own records, those of
// earlier batches not yet acknowledged (a partition waits for Kafka once
// they reach maxUnpublished flushes or maxUnpublishedBytes), so the
// checkpoint's outbox holds every record not known to be published, which
// a restore publishes again (consumers drop the repeats by their ids).
// Visibility in the store thus does not wait for Kafka in a live feed.

// appendOutbox encodes the messages of batches, in order, for
// Batch.Outbox: a count, then length-prefixed byte strings for each
// message's topic, key, value and headers.
func appendOutbox(b []byte, batches ...[]kafka.Message) []byte {
	count := 0
	// Size the buffer once: a backlog flush carries megabytes of records,
	// and growing it by appending copied them several times.
	n := binary.MaxVarintLen64
	for _, msgs := range batches {
		count += len(msgs)
		for i := range msgs {
			m := &msgs[i]
			n += 4*binary.MaxVarintLen64 + len(m.Topic) + len(m.Key) + len(m.Value)
			for _, h := range m.Headers {
				n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
			}
		}
	}
	if count == 0 {
		return b
	}
	b = slices.Grow(b, n)
	str := func(s []byte) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	b = binary.AppendUvarint(b, uint64(count))
	for _, msgs := range batches {
		for i := range msgs {
			m := &msgs[i]
			b = binary.AppendUvarint(b, uint64(len(m.Topic)))
			b = append(b, m.Topic...)
			str(m.Key)
			str(m.Value)
			b = binary.AppendUvarint(b, uint64(len(m.Headers)))
			for _, h := range m.Headers {
				b = binary.AppendUvarint(b, uint64(len(h.Key)))
				b = append(b, h.Key...)
				str(h.Value)
			}
		}
	}
	return b
}

var errOutboxCorrupt = errors.New("outbox")

// decodeOutbox decodes what appendOutbox wrote (empty: no messages).
func decodeOutbox(b []byte) ([]kafka.Message, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := events.Reader{B: b, Corrupt: errOutboxCorrupt}
	msgs := make([]kafka.Message, r.Count()) // every message takes at least one byte
	for i := range msgs {
		m := &msgs[i]
		m.Topic = r.String()
		m.Key = r.Bytes()
		m.Value = r.Bytes()
		for range r.Count() {
			m.Headers = append(m.Headers, kafka.Header{Key: r.String(), Value: r.Bytes()})
		}
		if err := r.Failed(); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return msgs, nil
}
