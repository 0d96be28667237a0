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
