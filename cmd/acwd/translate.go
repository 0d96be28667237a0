package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/sim"
	"github.com/acwstream/acwstream/processor"
)

const translateUsage = `usage: acwd translate --input-format FORMAT [--config FILE] [FILE…]

Reads a platform's records, one per line (files in order, or stdin), and
prints the canonical events its adapter makes of them, one JSON object per
line: for debugging a feed, or to turn a platform's export into a canonical
log for acwd replay. Events an adapter holds back (the end of an implicit
wrap-up window) are printed once the input's largest ts minus
--max-out-of-order passes them, as the engine would receive them, and at
the end of the input. Records the adapter rejects are reported on stderr
with their line and reason; the exit status is 0 regardless.

flags:
`

func runTranslate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("translate", stderr)
	var ss settings
	var af adapterFlags
	af.register(&ss, "format of the records ("+strings.Join(inputFormats[1:], ", ")+")")
	var ooo time.Duration
	ss.dur(&ooo, "max-out-of-order", "engine.max_out_of_order", processor.DefaultMaxOutOfOrder.String(),
		"how far behind the largest ts a record may arrive (duration); held events are released this far behind it", time.Millisecond)
	fs.Usage = func() { fmt.Fprint(fs.Output(), translateUsage); fs.PrintDefaults() }
	if err := parseSettings(fs, &ss, args); err != nil {
		return err
	}
	ad := af.newAdapter()
	if ad == nil {
		return fmt.Errorf("%w: --input-format is required: one of %s (canonical events need no translating)", errUsage, strings.Join(inputFormats[1:], ", "))
	}
	holder, _ := ad.(events.Holder)
	inputs := fs.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	var evs, rel, merged []events.Event
	var buf []byte
	maxTS, hasMax := int64(0), false
	write := func(evs []events.Event) error {
		for i := range evs {
			buf = sim.AppendEvent(buf[:0], &evs[i], false)
			buf = append(buf, '\n')
			if _, err := out.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	err := eachRecord(af.format, inputs, stdin, func(name string, line int64, b []byte) error {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		if line&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		var err error
		if evs, err = ad.Translate(b, evs[:0]); err != nil {
			fmt.Fprintf(stderr, "%s line %d: %s: %v\n", displayName(name), line, events.Reason(err), err)
			return nil
		}
		for i := range evs {
			if !hasMax || evs[i].TS > maxTS {
				maxTS, hasMax = evs[i].TS, true
			}
		}
		if holder == nil || !hasMax {
			return write(evs)
		}
		// Released ends and the record's own events in ts order (released
		// first at equal ts), as the engine applies them.
		rel = holder.Advance(maxTS-ooo.Milliseconds(), rel[:0])
		merged = merged[:0]
		r := 0
		for i := range evs {
			for ; r < len(rel) && rel[r].TS <= evs[i].TS; r++ {
				merged = append(merged, rel[r])
			}
			merged = append(merged, evs[i])
		}
		return write(append(merged, rel[r:]...))
	})
	if err != nil {
		return err
	}
	if holder != nil {
		if err := write(holder.Advance(math.MaxInt64, nil)); err != nil {
			return err
		}
	}
	return out.Flush()
}
