package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/events/connect"
	"github.com/acwstream/acwstream/events/sim"
)

// inputFormats are the values of --input-format: canonical JSON, or a
// platform's own records read by its adapter.
var inputFormats = []string{"canonical", "connect"}

// newAdapter returns the adapter of format (nil for canonical input).
func newAdapter(format string) events.Adapter {
	switch format {
	case "connect":
		return connect.New(connect.Config{})
	}
	return nil
}

// adapterFactory returns what pipeline.Config.NewAdapter wants for
// format (nil for canonical input).
func adapterFactory(format string) func() events.Adapter {
	if newAdapter(format) == nil {
		return nil
	}
	return func() events.Adapter { return newAdapter(format) }
}

const translateUsage = `usage: acwd translate --input-format FORMAT [FILE…]

Reads a platform's records, one per line (files in order, or stdin), and
prints the canonical events its adapter makes of them, one JSON object per
line: for debugging a feed, or to turn a platform's export into a canonical
log for acwd replay. Records the adapter rejects are reported on stderr
with their line and reason; the exit status is 0 regardless.

flags:
`

func runTranslate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("translate", stderr)
	format := fs.String("input-format", "", "format of the records ("+strings.Join(inputFormats[1:], ", ")+")")
	fs.Usage = func() { fmt.Fprint(stderr, translateUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ad := newAdapter(*format)
	if ad == nil {
		return fmt.Errorf("%w: --input-format: want one of %s, got %q", errUsage, strings.Join(inputFormats[1:], ", "), *format)
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	var evs []events.Event
	var buf []byte
	err := eachInputLine(inputs, stdin, func(name string, line int64, b []byte) error {
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
			buf = sim.AppendEvent(buf[:0], &evs[i], false)
			buf = append(buf, '\n')
			if _, err := out.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return out.Flush()
}
