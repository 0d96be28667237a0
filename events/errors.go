package events

import (
	"errors"
	"fmt"
)

// Rejection reasons, as written in `rejected` records, DLQ headers and
// metrics labels.
const (
	ReasonMalformed = "malformed"
	ReasonInvalid   = "invalid"
	ReasonLate      = "late"
	// ReasonFuture: an event dated further ahead than max_future (of its
	// Kafka record's timestamp, live): a skewed clock, never applied.
	ReasonFuture = "future"
	// ReasonOversized: a Kafka message larger than the configured limit
	// (1 MiB by default); it is not decoded.
	ReasonOversized = "oversized"
)

// Sentinel errors for bad data. Bad data is counted, dead-lettered and
// skipped; it never stops processing. Test with errors.Is.
var (
	// ErrMalformed: the input is not a JSON object.
	ErrMalformed = errors.New("malformed")
	// ErrInvalid: a JSON object that breaks the canonical contract.
	ErrInvalid = errors.New("invalid")
)

// FieldError is an ErrInvalid naming the offending field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "field " + quote(e.Field) + ": " + e.Msg }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalidf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// SyntaxError is an ErrMalformed with the byte offset where parsing failed.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("not a JSON object: %s at byte %d", e.Msg, e.Offset)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrMalformed }

// Reason maps a decode error to its rejection reason.
func Reason(err error) string {
	if errors.Is(err, ErrMalformed) {
		return ReasonMalformed
	}
	return ReasonInvalid
}

func quote(s string) string { return string(AppendString(nil, s)) }

// Invalidf returns a FieldError (an ErrInvalid) naming field: for
// adapters, whose records break their platform's format.
func Invalidf(field, format string, args ...any) error { return invalidf(field, format, args...) }

// MalformedError is an ErrMalformed for a record that cannot be read as
// its format at all (not JSON, not a queue_log line, …).
type MalformedError struct {
	Format string // the input format, e.g. "connect"
	Msg    string
}

func (e *MalformedError) Error() string { return "not a " + e.Format + " record: " + e.Msg }

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// KeyError is an ErrInvalid: a Kafka message whose key is not the agent_id
// of its event. Producers must key each event by its agent_id, so that an
// agent's events stay in order on one partition; an event on another
// agent's partition would make a second copy of its agent there.
type KeyError struct {
	Key     string // the message key
	AgentID string
}

func (e *KeyError) Error() string {
	if e.Key == "" {
		return "field \"agent_id\": " + quote(e.AgentID) + " came in a message without a key: key each message by its agent"
	}
	return "field \"agent_id\": " + quote(e.AgentID) + " is not the message key " + quote(e.Key) + ": key each message by its agent"
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *KeyError) Is(target error) bool { return target == ErrInvalid }
