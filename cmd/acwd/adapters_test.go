package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestReplayConnectDocumentedExample: AWS's documented agent event stream
// example, read by the connect adapter through acwd replay, is one wrap-up
// of exactly 5.005 s.
func TestReplayConnectDocumentedExample(t *testing.T) {
	var out, errb bytes.Buffer
	if code := mainExit(context.Background(), []string{"replay", "--input-format", "connect", "../../events/connect/testdata/aws-acw-example.jsonl"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var segs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		r, err := decodeRecord([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		if r["type"] == "segment" {
			segs = append(segs, r)
		}
	}
	if len(segs) != 1 || jsonNumber(segs[0]["duration_ms"]) != "5005" || segs[0]["call_id"] != "ContactId-1" || segs[0]["agent_id"] != "agent-ARN" {
		t.Fatalf("segments %v, want one of 5005 ms for ContactId-1", segs)
	}
}

func TestTranslate(t *testing.T) {
	var out, errb bytes.Buffer
	in := strings.NewReader("not json\n\n" + `{"AgentARN":"arn:x/agent/a-1","EventId":"e1","EventType":"LOGIN","EventTimestamp":"2026-11-22T09:00:00Z","CurrentAgentSnapshot":{"AgentStatus":{"Name":"Available"}}}` + "\n")
	if code := mainExit(context.Background(), []string{"translate", "--input-format", "connect"}, in, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := `{"agent_id":"a-1","state":"ready","ts":"2026-11-22T09:00:00.000Z","event_id":"e1"}` + "\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if !strings.Contains(errb.String(), "stdin line 1: malformed: not a connect record") {
		t.Errorf("stderr %q does not report line 1 as malformed", errb.String())
	}
	if code := mainExit(context.Background(), []string{"translate", "--input-format", "canonical"}, nil, &out, &errb); code != 2 {
		t.Errorf("translate --input-format canonical: exit %d, want 2", code)
	}
}
