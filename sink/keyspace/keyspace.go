// Package keyspace is acwstream's Redis key contract: the name of every
// key and channel acwd writes, and how ids are written into them. The
// writer (sink/redisstore) and the readers (sink/wallboard) both use it,
// so the two cannot drift apart; a test checks the README's Redis data
// contract against it.
//
// # Ids in keys
//
// Agent, team and queue ids are arbitrary text, and keys are built by
// joining parts with ':'. Were an id written as is, "agent-5:last60m" (an
// agent's id) would name agent-5's rolling hash. So every id is written
// with EncodeID: '%' becomes "%25" and ':' becomes "%3A", every other byte
// stays as it is. An id without either (nearly all real ids) appears
// unchanged, and no id can reach into another key's parts. Wallboard
// authors build keys the same way: the JavaScript is
//
//	const encodeID = (id) => id.replace(/%/g, "%25").replace(/:/g, "%3A");
//
// Members of sets and streams, and the JSON of notices, hold ids as they
// are.
package keyspace

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

// DefaultPrefix is the prefix of every key and channel when none is set.
const DefaultPrefix = "acw"

// Keys names the keys under one prefix for one interval length. The zero
// value is not ready; use New.
type Keys struct {
	prefix string
	win    string // the window as replay writes it: "15m"
}

// New returns the keys under prefix (default DefaultPrefix) for intervals
// of window (default 15m).
func New(prefix string, window time.Duration) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if window == 0 {
		window = processor.DefaultWindow
	}
	return Keys{prefix: prefix, win: events.FormatWindow(window)}
}

// Prefix is the prefix of every key.
func (k Keys) Prefix() string { return k.prefix }

var encoder = strings.NewReplacer("%", "%25", ":", "%3A")

// EncodeID writes an id for a key: '%' as "%25", ':' as "%3A", every
// other byte as is.
func EncodeID(id string) string {
	if !strings.ContainsAny(id, "%:") {
		return id
	}
	return encoder.Replace(id)
}

// ErrEncoding is returned by DecodeID for text EncodeID cannot have made.
var ErrEncoding = errors.New("keyspace: not an encoded id")

// DecodeID reverses EncodeID.
func DecodeID(s string) (string, error) {
	if !strings.ContainsAny(s, "%:") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			return "", ErrEncoding
		case c != '%':
			b.WriteByte(c)
		case strings.HasPrefix(s[i:], "%25"):
			b.WriteByte('%')
			i += 2
		case strings.HasPrefix(s[i:], "%3A"):
			b.WriteByte(':')
			i += 2
		default:
			return "", ErrEncoding
		}
	}
	return b.String(), nil
}

// join is the key of parts under the prefix, made with one allocation
// (keys are made for every write of a flush).
func (k Keys) join(parts ...string) string {
	var buf [128]byte
	return string(k.appendJoin(buf[:0], parts...))
}

// joinAt is join with the Unix ms start as a last part.
func (k Keys) joinAt(start int64, parts ...string) string {
	var buf [128]byte
	return string(strconv.AppendInt(append(k.appendJoin(buf[:0], parts...), ':'), start, 10))
}

func (k Keys) appendJoin(b []byte, parts ...string) []byte {
	b = append(b, k.prefix...)
	for _, p := range parts {
		b = append(append(b, ':'), p...)
	}
	return b
}

// Agent is the live-state hash of one agent.
func (k Keys) Agent(id string) string { return k.join("agent", EncodeID(id)) }

// Agents is the sorted set of the agents acwd keeps (members: ids as they
// are; score: when their current state began, Unix ms). An agent leaves
// it when the engine forgets it (the agent idle timeout): a wallboard
// reads these instead of scanning the keyspace.
func (k Keys) Agents() string { return k.join("agents") }

// Open is the sorted set of agents in wrap-up, scored by its start.
func (k Keys) Open() string { return k.join("open") }

// Alerts is the alerts stream.
func (k Keys) Alerts() string { return k.join("alerts") }

// AlertID is the marker that an alert id was added to Alerts.
func (k Keys) AlertID(id string) string { return k.join("alert", id) }

// Updates is the pub/sub channel of flush notices.
func (k Keys) Updates() string { return k.join("updates") }

// Interval is the hash of one scope/key's window starting at start (Unix
// ms).
func (k Keys) Interval(scope events.Scope, key string, start int64) string {
	return k.joinAt(start, scope.String(), EncodeID(key), k.win)
}

// Day is the "today so far" hash of one scope/key (day: YYYY-MM-DD).
func (k Keys) Day(scope events.Scope, key, day string) string {
	return k.join(scope.String(), EncodeID(key), "day", day)
}

// Last60m is the rolling last-60-minutes hash of one scope/key.
func (k Keys) Last60m(scope events.Scope, key string) string {
	return k.join(scope.String(), EncodeID(key), "last60m")
}

// IntervalReasons is the not-ready time by reason of one scope/key's
// window starting at start (a hash: reason → ms, at most
// events.MaxReasons reasons plus events.OtherReason).
func (k Keys) IntervalReasons(scope events.Scope, key string, start int64) string {
	return k.joinAt(start, scope.String(), EncodeID(key), "reasons", k.win)
}

// DayReasons is the not-ready time by reason of one scope/key's day.
func (k Keys) DayReasons(scope events.Scope, key, day string) string {
	return k.join(scope.String(), EncodeID(key), "reasons", "day", day)
}

// Last60mReasons is the not-ready time by reason of one scope/key's last
// 60 minutes.
func (k Keys) Last60mReasons(scope events.Scope, key string) string {
	return k.join(scope.String(), EncodeID(key), "reasons", "last60m")
}

// Group is the string naming the consumer group that writes the prefix.
func (k Keys) Group() string { return k.join("group") }

// Settings is the hash of the settings the checkpoints were written with.
func (k Keys) Settings() string { return k.join("settings") }

// Checkpoint is the checkpoint hash of one input partition of group.
func (k Keys) Checkpoint(group, topic string, partition int) string {
	return k.join("ckpt", group, topic, strconv.Itoa(partition))
}

// Journal is the dedup journal stream of one input partition of group.
func (k Keys) Journal(group, topic string, partition int) string {
	return k.join("ckpt-dedup", group, topic, strconv.Itoa(partition))
}

// Shared names the shared writer's keys of group: "lease", "logs" (set),
// "pos" (hash), "pending", "round:{id}", "log:{topic}:{partition}".
func (k Keys) Shared(group, name string) string { return k.join("shared", group, name) }
