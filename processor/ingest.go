package processor

import (
	"fmt"
	"math"
	"time"

	"github.com/acwstream/acwstream/events"
)

// LateError is the error for a late event. It names the field ts.
type LateError struct {
	TS            int64         // the event's ts, Unix ms
	Watermark     int64         // W when it arrived, Unix ms
	MaxOutOfOrder time.Duration // the configured bound
}

func (e *LateError) Error() string {
	return fmt.Sprintf("field \"ts\": %s is late: it is %s behind the watermark %s (largest ts seen minus max_out_of_order %s)",
		events.FormatTime(e.TS), time.Duration(e.Watermark-e.TS)*time.Millisecond, events.FormatTime(e.Watermark), e.MaxOutOfOrder)
}

// Reason returns events.ReasonLate.
func (e *LateError) Reason() string { return events.ReasonLate }

// FutureError is the error for an event dated too far ahead (see
// Config.MaxFuture). It names the field ts.
type FutureError struct {
	TS        int64         // the event's ts, Unix ms
	Ref       int64         // the reference time it was held against, Unix ms
	ByArrival bool          // Ref is the input's arrival time, not the largest accepted ts
	MaxFuture time.Duration // the configured bound
}

func (e *FutureError) Error() string {
	ref := "the largest ts accepted before it"
	if e.ByArrival {
		ref = "its arrival (the Kafka record's timestamp)"
	}
	return fmt.Sprintf("field \"ts\": %s is in the future: %s ahead of %s %s, more than max_future %s",
		events.FormatTime(e.TS), time.Duration(e.TS-e.Ref)*time.Millisecond, ref, events.FormatTime(e.Ref), e.MaxFuture)
}

// Reason returns events.ReasonFuture.
func (e *FutureError) Reason() string { return events.ReasonFuture }

// RejectReason maps an error returned by Ingest or Translate to its
// rejection reason (malformed, invalid, late or future).
func RejectReason(err error) string {
	switch err.(type) {
	case *LateError:
		return events.ReasonLate
	case *FutureError:
		return events.ReasonFuture
	}
	return events.Reason(err)
}

// rejection is the error for an event Apply did not accept (Late or
// Future), given the watermark and reference time before it; nil for
// the other outcomes.
func (e *Engine) rejection(o Outcome, ts, w, ref int64) error {
	switch o {
	case Late:
		return &LateError{TS: ts, Watermark: w, MaxOutOfOrder: e.cfg.MaxOutOfOrder}
	case Future:
		return &FutureError{TS: ts, Ref: ref - e.futureMS, ByArrival: e.cfg.MaxFutureByArrival, MaxFuture: e.cfg.MaxFuture}
	}
	return nil
}

// Ingest decodes one raw input (a line or a message value) with dec and
// applies it. It returns Accepted or Duplicate with a nil error, or Rejected
// with an error naming the field; RejectReason classifies that error.
// Rejections are counted in Stats. The decoder must belong to the same
// goroutine as the engine; raw is not retained.
func (e *Engine) Ingest(dec *events.Decoder, raw []byte) (Outcome, error) {
	return e.ingest(dec, raw, nil, false)
}

// IngestMessage is Ingest for a Kafka message: its key must be the
// event's agent_id, or the message is rejected as invalid with an
// events.KeyError (an agent's events on two partitions would make two
// copies of the agent).
func (e *Engine) IngestMessage(dec *events.Decoder, key, value []byte) (Outcome, error) {
	return e.ingest(dec, value, key, true)
}

func (e *Engine) ingest(dec *events.Decoder, raw, key []byte, keyed bool) (Outcome, error) {
	dec.BorrowEventID = true // Apply hashes the id at once and never keeps it
	err := dec.Decode(raw, &e.scratchEv)
	if err == nil && keyed && string(key) != e.scratchEv.AgentID {
		err = &events.KeyError{Key: string(key), AgentID: e.scratchEv.AgentID}
	}
	if err != nil {
		if events.Reason(err) == events.ReasonMalformed {
			e.stats.Malformed++
		} else {
			e.stats.Invalid++
		}
		return Rejected, err
	}
	w, lim := e.Watermark(), e.futureLimit()
	o := e.Apply(&e.scratchEv)
	if err := e.rejection(o, e.scratchEv.TS, w, lim); err != nil {
		return Rejected, err
	}
	return o, nil
}

// Summary returns the run's counts; read is the number of inputs offered
// (blank lines excluded).
func (e *Engine) Summary(read int64) events.Summary {
	return events.Summary{
		Read:         read,
		Applied:      e.stats.Applied,
		Duplicates:   e.stats.Duplicates,
		Malformed:    e.stats.Malformed,
		Invalid:      e.stats.Invalid,
		Late:         e.stats.Late,
		Future:       e.stats.Future,
		IdleLogouts:  e.stats.IdleLogouts,
		MaxACWClosed: e.stats.MaxACWClosed,
		Ignored:      e.stats.Ignored,
	}
}

// Translate reads one platform record with ad (see events.Adapter) and
// applies the events it implies, as Ingest does for a canonical input. It
// returns Accepted when any of them was accepted, Duplicate when all were
// repeats, Ignored when the record implied none, or Rejected with an error
// naming the field: the record could not be read (malformed or invalid,
// nothing applied) or one of its events was late (the others are
// applied). The adapter must belong to the engine's goroutine.
func (e *Engine) Translate(ad events.Adapter, raw []byte) (Outcome, error) {
	if ar, ok := ad.(events.Arrival); ok {
		ar.SetArrival(e.arrival)
	}
	evs, err := ad.Translate(raw, e.scratchEvs[:0])
	e.scratchEvs = evs[:0]
	if err != nil {
		if events.Reason(err) == events.ReasonMalformed {
			e.stats.Malformed++
		} else {
			e.stats.Invalid++
		}
		return Rejected, err
	}
	// What the adapter holds up to the watermark this record is about to
	// set is released (and dropped if late before the record: the record
	// that made it was late too, and was rejected).
	var rel []events.Event
	if h, ok := ad.(events.Holder); ok {
		m, has := e.maxTS, e.hasMax
		for i := range evs {
			if !has || evs[i].TS > m {
				m, has = evs[i].TS, true
			}
		}
		if has {
			rel = e.due(h, m-e.oooMS)
		}
	}
	if len(evs) == 0 {
		for i := range rel {
			e.Apply(&rel[i])
		}
		clear(rel)
		e.stats.Ignored++
		return Ignored, nil
	}
	// Released and own events go in ts order (released first at equal
	// ts): a released end later than one of the record's own events (a
	// window the record itself ends, emitted by the adapter) must not
	// move the watermark past it and make it late. In a single log
	// (replay) other records would usually have released that end first;
	// the result must not depend on them.
	out := Duplicate
	var late error
	r := 0
	for i := range evs {
		for ; r < len(rel) && rel[r].TS <= evs[i].TS; r++ {
			e.Apply(&rel[r])
		}
		w, lim := e.Watermark(), e.futureLimit()
		switch o := e.Apply(&evs[i]); o {
		case Accepted:
			out = Accepted
		case Late, Future:
			if late == nil {
				late = e.rejection(o, evs[i].TS, w, lim)
			}
		}
	}
	for ; r < len(rel); r++ {
		e.Apply(&rel[r])
	}
	clear(rel)
	clear(evs)
	if late != nil {
		return Rejected, late
	}
	return out, nil
}

// TranslateMessage is Translate for a Kafka message: an adapter that
// implements events.Keyed checks that each record's agent is the
// message's key (rejecting it as invalid otherwise, before it changes
// anything).
func (e *Engine) TranslateMessage(ad events.Adapter, key, raw []byte) (Outcome, error) {
	if k, ok := ad.(events.Keyed); ok {
		k.SetKey(string(key), true)
		defer k.SetKey("", false)
	}
	return e.Translate(ad, raw)
}

// release applies the events h holds with ts <= w (see due).
func (e *Engine) release(h events.Holder, w int64) {
	rel := e.due(h, w)
	for i := range rel {
		e.Apply(&rel[i])
	}
	clear(rel)
}

// due takes the events h holds with ts <= w, in ts order (Holder's
// contract), without those that are late now: the record that made such an
// event was late too, and was rejected, so it is dropped. The slice is the
// engine's scratch buffer, valid until the next call.
func (e *Engine) due(h events.Holder, w int64) []events.Event {
	rel := h.Advance(w, e.scratchRel[:0])
	n := 0
	for i := range rel {
		if !e.hasMax || rel[i].TS >= e.maxTS-e.oooMS {
			rel[n] = rel[i]
			n++
		}
	}
	clear(rel[n:])
	rel = rel[:n]
	e.scratchRel = rel[:0]
	return rel
}

// AdvanceWith is AdvanceWatermark for an engine fed by ad: the events ad
// holds with ts <= w (see events.Holder) are applied first. The live
// pipeline calls it for an idle partition; ad may be nil (canonical input).
func (e *Engine) AdvanceWith(ad events.Adapter, w int64) {
	if h, ok := ad.(events.Holder); ok && (!e.hasMax || w > e.maxTS-e.oooMS) {
		e.release(h, w)
	}
	e.AdvanceWatermark(w)
}

// CloseWith is Close for an engine fed by ad: every event ad still holds
// is applied first, as if all of time had passed (replay's end of input).
// ad may be nil.
func (e *Engine) CloseWith(ad events.Adapter) {
	if h, ok := ad.(events.Holder); ok && !e.closed {
		e.release(h, math.MaxInt64)
	}
	e.Close()
}
