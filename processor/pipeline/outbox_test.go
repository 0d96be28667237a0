package pipeline

import (
	"reflect"
	"testing"

	"github.com/segmentio/kafka-go"
)

// The outbox round-trips topics, keys, values and headers (empty ones
// included), several batches encode as their messages together, and a
// truncated or padded outbox is an error.
func TestOutboxRoundTripAndCorruption(t *testing.T) {
	msgs := []kafka.Message{
		{Topic: "acw.segments", Key: []byte("agent-1"), Value: []byte(`{"type":"segment"}`)},
		{Topic: "acw.dlq", Value: []byte("not json"), Headers: []kafka.Header{
			{Key: "reason", Value: []byte("malformed")}, {Key: "empty", Value: []byte{}}}},
	}
	b := appendOutbox(nil, msgs)
	got, err := decodeOutbox(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Topic != "acw.segments" || string(got[0].Key) != "agent-1" || string(got[0].Value) != `{"type":"segment"}` ||
		got[1].Topic != "acw.dlq" || len(got[1].Key) != 0 || string(got[1].Value) != "not json" ||
		!reflect.DeepEqual(got[1].Headers[0], msgs[1].Headers[0]) || got[1].Headers[1].Key != "empty" || len(got[1].Headers[1].Value) != 0 {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, msgs)
	}
	if split := appendOutbox(nil, msgs[:1], nil, msgs[1:]); string(split) != string(b) {
		t.Errorf("the outbox of several batches differs from that of their messages together:\n got %q\nwant %q", split, b)
	}
	if out, err := decodeOutbox(appendOutbox(nil, nil)); err != nil || out != nil {
		t.Fatalf("empty outbox: %v %v", out, err)
	}
	for i := 1; i < len(b); i++ {
		if _, err := decodeOutbox(b[:i]); err == nil {
			t.Errorf("outbox truncated to %d of %d bytes: no error", i, len(b))
		}
	}
	if _, err := decodeOutbox(append(b[:len(b):len(b)], 0)); err == nil {
		t.Error("padded outbox: no error")
	}
}
