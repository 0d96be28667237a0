package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// DefaultDLQMaxBytes is the default bound of a dead-letter record (key,
// value and headers): below Kafka's default max.message.bytes (1 048 588,
// which also covers the batch's own framing), so that a DLQ topic created
// with the broker's defaults takes every record.
const DefaultDLQMaxBytes = 1_000_000

// deadLetter builds the DLQ record of the input message m: its key and
// value, with headers naming the reason, the error and where m came from.
// A record that would be larger than limit bytes carries only the first
// part of the value that fits, and headers original_size (of the whole
// value, in bytes) and sha256 (of the whole value, hex) say so: a dead
// letter that its topic refuses would stop the partition for good.
func deadLetter(topic string, m *kafka.Message, reason, errMsg string, limit int) kafka.Message {
	hs := []kafka.Header{
		{Key: "reason", Value: []byte(reason)},
		{Key: "error", Value: []byte(errMsg)},
		{Key: "topic", Value: []byte(m.Topic)},
		{Key: "partition", Value: []byte(strconv.Itoa(m.Partition))},
		{Key: "offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
	}
	value := m.Value
	// Headers and key first: what is left is the value's room (each
	// header costs its bytes plus a few of framing; 16 is generous).
	size := len(m.Key) + len(value)
	for _, h := range hs {
		size += len(h.Key) + len(h.Value) + 16
	}
	if size > limit {
		sum := sha256.Sum256(value)
		hs = append(hs,
			kafka.Header{Key: "original_size", Value: []byte(strconv.Itoa(len(value)))},
			kafka.Header{Key: "sha256", Value: []byte(hex.EncodeToString(sum[:]))})
		room := limit - len(m.Key)
		for _, h := range hs {
			room -= len(h.Key) + len(h.Value) + 16
		}
		value = value[:min(len(value), max(room, 0))]
	}
	return kafka.Message{Topic: topic, Key: m.Key, Value: value, Headers: hs}
}
