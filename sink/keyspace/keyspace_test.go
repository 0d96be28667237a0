package keyspace

import (
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
)

func TestEncodeIDRoundTrips(t *testing.T) {
	for _, id := range []string{"agent-5", "", "a:b", "50%", "%3A", "::", "é:%25:x", "agent-5:last60m"} {
		enc := EncodeID(id)
		if strings.Contains(enc, ":") {
			t.Errorf("EncodeID(%q) = %q holds ':'", id, enc)
		}
		if got, err := DecodeID(enc); err != nil || got != id {
			t.Errorf("DecodeID(EncodeID(%q)) = %q, %v", id, got, err)
		}
	}
	for _, bad := range []string{"a:b", "%", "%3", "%41"} {
		if _, err := DecodeID(bad); err == nil {
			t.Errorf("DecodeID(%q) accepted", bad)
		}
	}
}

// No agent, team or queue id, whatever it holds, can make two keys of the
// contract the same: ids built from every key suffix of the contract, and
// the keys of the ids they would imitate, are all distinct.
func TestNoIDMakesTwoKeysCollide(t *testing.T) {
	k := New("acw", 15*time.Minute)
	const start = 1795341600000
	suffixes := []string{"", ":last60m", ":15m:1795341600000", ":day:2026-11-22", ":x", "%3A", "%25"}
	ids := []string{"agent-5", "all", "", ":", "%"}
	for _, base := range []string{"agent-5", "t1", "all"} {
		for _, s := range suffixes {
			ids = append(ids, base+s)
		}
	}
	seen := map[string]string{}
	add := func(key, what string) {
		if prev, ok := seen[key]; ok && prev != what {
			t.Errorf("%s and %s are both %s", prev, what, key)
		}
		seen[key] = what
	}
	for _, id := range ids {
		add(k.Agent(id), "agent state of "+id)
		for _, scope := range []events.Scope{events.ScopeAgent, events.ScopeTeam, events.ScopeQueue, events.ScopeCenter} {
			add(k.Interval(scope, id, start), scope.String()+" interval of "+id)
			add(k.Day(scope, id, "2026-11-22"), scope.String()+" day of "+id)
			add(k.Last60m(scope, id), scope.String()+" last60m of "+id)
		}
	}
	for _, fixed := range []string{k.Agents(), k.Open(), k.Alerts(), k.Updates(), k.Group(), k.Settings()} {
		add(fixed, "fixed "+fixed)
	}
}
