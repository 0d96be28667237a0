package keyspace

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acwstream/acwstream/events"
)

// The README's Redis data contract names exactly the keys this package
// makes: every key pattern in its table, with the placeholders filled in,
// is a key of Keys, and every wallboard-facing key of Keys is in the table.
func TestTheREADMEContractIsThisPackages(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n## Redis data contract")
	j := strings.Index(doc[i+1:], "\n## ")
	if i < 0 || j < 0 {
		t.Fatal("no Redis data contract section")
	}
	section := doc[i : i+1+j]
	var table []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(acw:[^`]+)` \\|").FindAllStringSubmatch(section, -1) {
		table = append(table, m[1])
	}
	k := New("acw", 15*time.Minute)
	fill := strings.NewReplacer("{agent_id}", "a1", "{scope}", "team", "{key}", "t1", "{window_start}", "1795341600000", "{YYYY-MM-DD}", "2026-11-22")
	made := map[string]string{
		"acw:agent:a1":                          k.Agent("a1"),
		"acw:agents":                            k.Agents(),
		"acw:open":                              k.Open(),
		"acw:team:t1:15m:1795341600000":         k.Interval(events.ScopeTeam, "t1", 1795341600000),
		"acw:team:t1:day:2026-11-22":            k.Day(events.ScopeTeam, "t1", "2026-11-22"),
		"acw:team:t1:last60m":                   k.Last60m(events.ScopeTeam, "t1"),
		"acw:team:t1:reasons:15m:1795341600000": k.IntervalReasons(events.ScopeTeam, "t1", 1795341600000),
		"acw:team:t1:reasons:day:2026-11-22":    k.DayReasons(events.ScopeTeam, "t1", "2026-11-22"),
		"acw:team:t1:reasons:last60m":           k.Last60mReasons(events.ScopeTeam, "t1"),
		"acw:alerts":                            k.Alerts(),
		"acw:updates":                           k.Updates(),
	}
	var filled []string
	for _, pat := range table {
		key := fill.Replace(pat)
		filled = append(filled, key)
		if got, ok := made[key]; !ok || got != key {
			t.Errorf("README names %s (%s), which this package does not make", pat, key)
		}
	}
	for key := range made {
		if !slices.Contains(filled, key) {
			t.Errorf("the README's table lacks %s", key)
		}
	}
	for _, internal := range []string{k.Group(), k.Settings(), k.Checkpoint("{group}", "{topic}", 0), k.Journal("{group}", "{topic}", 0), k.Shared("{group}", "lease")} {
		pat := strings.Replace(internal, ":0", ":{partition}", 1)
		if !strings.Contains(section, "`"+pat+"`") {
			t.Errorf("the README does not name internal key %s", pat)
		}
	}
}
