package events

// An Adapter turns one platform's records (a Kafka message value or one
// line of a file) into canonical events, so that acwstream can read the
// stream a contact-centre platform already produces. Each platform has its
// own package under events/ (connect, twilio, …).
//
// Adapters are deterministic: the same records in the same order give the
// same events. An adapter is used by one goroutine (one per partition).
type Adapter interface {
	// Translate reads one record and appends to out the canonical events
	// it implies, in ts order; a record that implies nothing (a heartbeat,
	// a configuration change) appends none. A record that cannot be read
	// returns an error naming the field (Reason classifies it as malformed
	// or invalid) and changes no state; the caller dead-letters it.
	Translate(rec []byte, out []Event) ([]Event, error)
}

// A Holder is an Adapter that holds some events back until event time has
// passed them: the end of an implicit wrap-up (Asterisk wrapuptime,
// FreeSWITCH wrap-up-time) is known when the call ends, but a later record
// (the member's next call, with an earlier ts) may still cut it short.
//
// The engine calls Advance with the watermark an input is about to move it
// to and applies what it releases together with that input's own events,
// in ts order; it also calls it with the watermark the live pipeline moves
// an idle partition to as wall-clock time passes, and replay calls it with
// math.MaxInt64 at the end of its input. Held events released this way are
// never late unless the record that made them was. A record of the agent's
// own with a later ts must close the agent's held window first
// (Holds.EndedBy), so that the result does not depend on whether other
// agents' records had already released it.
type Holder interface {
	Adapter
	// Advance appends to out, in ts order, every held event with ts <= w
	// (Unix ms), and forgets them.
	Advance(w int64, out []Event) []Event
}

// A Stateful adapter remembers what earlier records said (which
// reservation a worker holds, which wrap-up windows are open), so its
// state is part of every checkpoint: the pipeline stores AppendState with
// the engine's snapshot and gives it back to RestoreState on recovery,
// which makes the recovered adapter behave exactly as the one that wrote
// it. The encoding is the adapter's own and deterministic.
type Stateful interface {
	Adapter
	// AppendState appends the adapter's state to b.
	AppendState(b []byte) []byte
	// RestoreState replaces the adapter's state with one AppendState
	// wrote; it reports a state it cannot read.
	RestoreState(b []byte) error
}

// Arrival is an optional extension of Adapter: before each record it is
// told when the record arrived (the Kafka record's timestamp, Unix ms; 0
// when unknown, as in a file), to date records that carry no time of
// their own. The arrival is stored with the record, so a re-read dates
// them the same way.
type Arrival interface {
	SetArrival(ms int64)
}

// Skipper is an optional extension of Adapter: it reports what it has
// skipped so far, by kind ("ignored", "non_voice", "stray", "heartbeat",
// "unchanged"…), so that a feed that is being ignored shows (replay's
// summary).
type Skipper interface {
	Skipped() map[string]uint64
}

// Keyed is an optional extension of Adapter: before each record of a
// Kafka message it is given the message's key, and a record whose agent
// (the platform's own identifier of it, or the agent_id the adapter makes
// of it) is not the key is rejected with a *KeyError before it changes
// anything: an agent's records on another agent's partition would make a
// second copy of the agent there. check false (a file) turns the check
// off.
type Keyed interface {
	SetKey(key string, check bool)
}

// MessageKey is what a Keyed adapter keeps of SetKey; CheckKey does the
// check. The zero value checks nothing.
type MessageKey struct {
	key   string
	check bool
}

// SetKey implements Keyed.
func (k *MessageKey) SetKey(key string, check bool) { k.key, k.check = key, check }

// CheckKey returns a *KeyError unless the key is one of ids (the
// agent's platform identifier and its agent_id), or checking is off.
func (k *MessageKey) CheckKey(ids ...string) error {
	if !k.check {
		return nil
	}
	for _, id := range ids {
		if id != "" && id == k.key {
			return nil
		}
	}
	return &KeyError{Key: k.key, AgentID: ids[0]}
}
