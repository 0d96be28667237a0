package processor

import (
	"fmt"
	"testing"
)

// TestAgentCacheNeverConfusesIDs caches agents whose ids share their
// length and first and last eight bytes (differing only in the middle,
// which only ids over 16 bytes can), short ids and their prefixes, and
// checks that get finds each agent only by its own id, after drops and
// resizes too.
func TestAgentCacheNeverConfusesIDs(t *testing.T) {
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("agent-%d", i), fmt.Sprintf("a%d", i), fmt.Sprintf("tenant-0001/%03d/queue-0001", i))
	}
	ids = append(ids, "", "x", "agent-1\x00", "agent-1")
	agents := map[string]*agent{}
	var c agentCache
	check := func(when string) {
		t.Helper()
		for _, id := range ids {
			if a := c.get(id); a != nil && a.id != id {
				t.Fatalf("%s: get(%q) found the agent of %q", when, id, a.id)
			}
		}
	}
	for _, id := range ids {
		a := &agent{id: id}
		agents[id] = a
		c.put(a, len(agents))
		if c.get(id) != a {
			t.Fatalf("get(%q) right after put missed", id)
		}
	}
	check("after puts")
	for i, id := range ids {
		if i%3 == 0 {
			c.drop(id)
			if c.get(id) != nil {
				t.Fatalf("get(%q) after drop found it", id)
			}
		}
	}
	check("after drops")
	c.resize(10)
	check("after resize")
	for _, id := range ids {
		if c.get(id) != nil {
			t.Fatalf("get(%q) found an agent after the cache was emptied", id)
		}
	}
}

// TestAgentCacheSpreadsSequentialIDs checks that ids that differ only in
// their last bytes, as numbered ids do, land in different slots: a cache
// whose agents evict each other is no cache.
func TestAgentCacheSpreadsSequentialIDs(t *testing.T) {
	var c agentCache
	const n = 2000
	agents := make([]*agent, n)
	for i := range agents {
		agents[i] = &agent{id: fmt.Sprintf("agent-%d", i)}
	}
	for _, a := range agents { // as the engine does: cached once all have come
		c.put(a, n)
	}
	hits := 0
	for _, a := range agents {
		if c.get(a.id) == a {
			hits++
		}
	}
	// With two slots per agent, about four in five stay (e^-1/2).
	if hits < n*7/10 {
		t.Fatalf("%d of %d agents still cached", hits, n)
	}
}
