package pipeline

import (
	"fmt"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// input applies a partition's input messages to its engine: canonical
// events through the decoder, or a platform's records through its
// adapter. A message the engine rejects becomes a dead letter.
type input struct {
	dec *events.Decoder
	ad  events.Adapter // nil: canonical input
	// rejLog logs rejected messages (debug), at most 10 a second plus one
	// in 1000 beyond that.
	rejLog   zerolog.Logger
	maxBytes int    // Config.MaxMessageBytes
	dlq      string // the dead-letter topic
	dlqMax   int    // Config.DLQMaxBytes
}

func newInput(cfg *Config, log zerolog.Logger) input {
	in := input{dec: new(events.Decoder), maxBytes: cfg.MaxMessageBytes, dlq: cfg.Derived.DLQ, dlqMax: cfg.DLQMaxBytes,
		rejLog: log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second, NextSampler: &zerolog.BasicSampler{N: 1000}})}
	if cfg.NewAdapter != nil {
		in.ad = cfg.NewAdapter()
	}
	return in
}

// apply applies m to eng. It returns m's outcome (applied, duplicate,
// ignored, or the reason it was rejected) and, when it was rejected
// (dead), its dead letter.
func (in *input) apply(eng *processor.Engine, m *kafka.Message) (outcome string, letter kafka.Message, dead bool) {
	var reason, errMsg string
	if len(m.Value) > in.maxBytes {
		reason = events.ReasonOversized
		errMsg = fmt.Sprintf("message of %d bytes exceeds the %d-byte limit", len(m.Value), in.maxBytes)
	} else {
		// The record's timestamp is stored with it, so a replay after a
		// crash judges its events against the same arrival time.
		var arrival int64
		if !m.Time.IsZero() && m.Time.UnixMilli() > 0 {
			arrival = m.Time.UnixMilli()
		}
		eng.SetArrival(arrival)
		var o processor.Outcome
		var err error
		if in.ad != nil {
			o, err = eng.TranslateMessage(in.ad, m.Key, m.Value)
		} else {
			o, err = eng.IngestMessage(in.dec, m.Key, m.Value)
		}
		if err == nil {
			return o.String(), kafka.Message{}, false // applied, duplicate or ignored
		}
		reason, errMsg = processor.RejectReason(err), err.Error()
	}
	if in.rejLog.GetLevel() <= zerolog.DebugLevel {
		in.rejLog.Debug().Str("reason", reason).Int64("offset", m.Offset).Msg(errMsg)
	}
	return reason, deadLetter(in.dlq, m, reason, errMsg, in.dlqMax), true
}
