package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
)

func recordSize(m kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 16
	}
	return n
}

func TestADeadLetterAlwaysFitsItsBound(t *testing.T) {
	in := kafka.Message{Topic: "acw.events", Partition: 3, Offset: 42, Key: []byte("agent-1"), Value: bytes.Repeat([]byte("x"), 1_048_500)}
	m := deadLetter("acw.dlq", &in, "malformed", "not a JSON object: expected '{', found 'x' at byte 0", DefaultDLQMaxBytes)
	if n := recordSize(m); n > DefaultDLQMaxBytes {
		t.Fatalf("the record takes %d bytes, over %d", n, DefaultDLQMaxBytes)
	}
	hd := map[string]string{}
	for _, h := range m.Headers {
		hd[h.Key] = string(h.Value)
	}
	sum := sha256.Sum256(in.Value)
	if hd["original_size"] != strconv.Itoa(len(in.Value)) || hd["sha256"] != hex.EncodeToString(sum[:]) ||
		hd["reason"] != "malformed" || hd["offset"] != "42" || hd["partition"] != "3" || hd["topic"] != "acw.events" {
		t.Fatalf("headers %v", hd)
	}
	if !bytes.HasPrefix(in.Value, m.Value) || len(m.Value) < DefaultDLQMaxBytes-1000 || string(m.Key) != "agent-1" {
		t.Fatalf("value cut to %d bytes, key %q", len(m.Value), m.Key)
	}
}

func TestASmallDeadLetterIsWhole(t *testing.T) {
	in := kafka.Message{Topic: "acw.events", Key: []byte("a"), Value: []byte(`{"agent_id":"a"}`)}
	m := deadLetter("acw.dlq", &in, "invalid", `field "state": missing`, DefaultDLQMaxBytes)
	if !bytes.Equal(m.Value, in.Value) || len(m.Headers) != 5 || m.Topic != "acw.dlq" {
		t.Fatalf("%+v", m)
	}
}
