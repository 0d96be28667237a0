package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

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

var errOutboxCorrupt = errors.New("truncated or corrupt")

// decodeOutbox decodes what appendOutbox wrote (empty: no messages).
func decodeOutbox(b []byte) ([]kafka.Message, error) {
	if len(b) == 0 {
		return nil, nil
	}
	bad := false
	u := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	bytes := func() []byte {
		n := u()
		if bad || n > uint64(len(b)) {
			bad = true
			return nil
		}
		s := b[:n:n]
		b = b[n:]
		return s
	}
	n := u()
	if bad || n > uint64(len(b)) { // every message takes at least one byte
		return nil, fmt.Errorf("outbox: %w", errOutboxCorrupt)
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		m := &msgs[i]
		m.Topic = string(bytes())
		m.Key = bytes()
		m.Value = bytes()
		nh := u()
		if bad || nh > uint64(len(b)) {
			return nil, fmt.Errorf("outbox: message %d: %w", i, errOutboxCorrupt)
		}
		for range nh {
			m.Headers = append(m.Headers, kafka.Header{Key: string(bytes()), Value: bytes()})
		}
		if bad {
			return nil, fmt.Errorf("outbox: message %d: %w", i, errOutboxCorrupt)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("outbox: %d bytes after the last message: %w", len(b), errOutboxCorrupt)
	}
	return msgs, nil
}
