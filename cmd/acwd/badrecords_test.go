package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/acwstream/acwstream/events"
)

// TestRunDeadLettersTheRecordsThatOnceDidHarm streams a log into acwd run
// (its own process) with four records that each once did lasting harm,
// each produced where it hurts most:
//   - an event dated 2099 (a skewed clock): it made the engine accrue every
//     15 minutes until 2099 and took the process down, again after every
//     restart;
//   - an object naming agent_id twice, keyed by the first: it was applied
//     as the second agent on the first's partition, a phantom copy;
//   - an event keyed by another agent: the same phantom;
//   - a malformed message just under the input limit, with acw.dlq at
//     Kafka's default max.message.bytes: its dead letter was refused as
//     too large and retried forever, wedging the partition.
//
// Each must go to the DLQ with its reason, and the rest must equal replay
// of the clean log. An agent whose id ends like another's key
// ("agent-5:last60m") gets a hash of its own.
func TestRunDeadLettersTheRecordsThatOnceDidHarm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts acwd run as a process")
	}
	h := newRunHarness(t, simForRun(23))
	// acw.dlq as a production cluster creates it by default.
	conn, err := kafka.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.CreateTopics(kafka.TopicConfig{Topic: "acw.dlq", NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "1048588"}}})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	end := events.FormatTime(h.maxTS)
	bad := []struct{ key, value, reason, errPart string }{
		{"agent-3", `{"agent_id":"agent-3","state":"ready","ts":"2099-01-01T00:00:00Z"}`, events.ReasonFuture, "is in the future"},
		{"dupkey", `{"agent_id":"dupkey","agent_id":"agent-5","state":"ready","ts":"` + end + `"}`, events.ReasonInvalid, "appears twice"},
		{"agent-9", `{"agent_id":"agent-5","state":"not_ready","ts":"` + end + `"}`, events.ReasonInvalid, `is not the message key "agent-9"`},
		{"agent-7", strings.Repeat("x", 1_048_500), events.ReasonMalformed, "not a JSON object"},
	}
	// Not bad at all: an agent whose id ends like another agent's key.
	// Its live state wrote into agent-5's rolling hash, which then
	// expired with that hash's TTL.
	lookalike := "agent-5:last60m"
	// The whole log is in the topic before acwd starts, the bad records
	// in its middle: read as one backlog, with no pause in which the
	// partitions' clocks would run on (after a pause, a live partition
	// rightly rejects what arrives more than max_out_of_order behind its
	// clock, which replay does not).
	half := len(h.lines) / 2
	h.produce(h.lines[:half])
	w := &kafka.Writer{Addr: kafka.TCP(h.addr), Topic: runTopic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchBytes: 8 << 20}
	for _, b := range bad {
		if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte(b.key), Value: []byte(b.value)}); err != nil {
			t.Fatal(err)
		}
	}
	h.produce(h.lines[half:])
	// (after the log: its ts moves its partition's watermark to the end)
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte(lookalike),
		Value: []byte(`{"agent_id":"` + lookalike + `","state":"logged_out","ts":"` + end + `"}`)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := startProc(t, append(h.runArgs("bad"), "--log-level", "info")...)
	h.finish("bad")
	// The lookalike's event is the partition's last: it is applied once
	// the partition's clock passes it.
	for deadline := time.Now().Add(30 * time.Second); h.rdb.HGet(context.Background(), "acw:agent:agent-5%3Alast60m", "state").Val() == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("agent %q's state never reached Redis", lookalike)
			break
		}
	}
	if code := p.term(); code != 0 {
		t.Errorf("acwd run exited %d after SIGTERM, want 0", code)
	}
	h.checkDerived()
	h.checkRollups()
	h.checkDLQ(0)

	found := map[string]bool{}
	for _, m := range h.readTopic("acw.dlq") {
		hd := map[string]string{}
		for _, x := range m.Headers {
			hd[x.Key] = string(x.Value)
		}
		for _, b := range bad {
			if string(m.Key) != b.key || hd["reason"] != b.reason || !strings.Contains(hd["error"], b.errPart) {
				continue
			}
			found[b.key] = true
			if len(b.value) > 1<<19 {
				if hd["original_size"] != strconv.Itoa(len(b.value)) || len(m.Value) >= len(b.value) || !bytes.HasPrefix([]byte(b.value), m.Value) {
					t.Errorf("the large dead letter: %d bytes, headers %v", len(m.Value), hd)
				}
			} else if string(m.Value) != b.value {
				t.Errorf("dead letter of %s: %q", b.key, m.Value)
			}
		}
	}
	for _, b := range bad {
		if !found[b.key] {
			t.Errorf("no %s dead letter keyed %s (%s)", b.reason, b.key, b.errPart)
		}
	}
	if got := fmt.Sprint(h.rdb.Exists(context.Background(), "acw:agent:dupkey").Val()); got != "0" {
		t.Errorf("acw:agent:dupkey exists")
	}
	ctx := context.Background()
	if st := h.rdb.HGet(ctx, "acw:agent:agent-5:last60m", "state").Val(); st != "" {
		t.Errorf("agent %q wrote its state (%s) into agent-5's last-60-minutes hash", lookalike, st)
	}
	if st := h.rdb.HGet(ctx, "acw:agent:agent-5%3Alast60m", "state").Val(); st != "logged_out" {
		t.Errorf("agent %q's own hash: state %q", lookalike, st)
	}
}
