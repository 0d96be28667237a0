package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor"
)

const replayUsage = `usage: acwd replay [--config FILE] [--input-format F] [--max-out-of-order D] [--warn D] [--overrun D] [--window D] [--max-future D] [--agent-idle-timeout D] [--max-acw D] [--uncoded-dispositions A,B] [FILE ...]

Reads canonical events as JSON Lines (stdin when no FILE or "-"), runs the
engine in pure event time and writes JSON Lines records to stdout: segment,
alert, interval, open, rejected and a final summary. Several files are one
input, read in order. Exit status 0 even when lines were rejected.

flags:
`

func runReplay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr)
	var ef engineFlags
	var ss settings
	ef.register(&ss)
	var af adapterFlags
	af.register(&ss, "format of the input records: canonical JSON, or a platform's records read by its adapter")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file (for go tool pprof)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), replayUsage); fs.PrintDefaults() }
	if err := parseSettings(fs, &ss, args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg, err := ef.config(&af)
	if err != nil {
		return err
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	w := &lineWriter{w: out}
	eng, err := processor.New(cfg, w)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var dec events.Decoder
	ad := af.newAdapter()
	var read int64
	err = eachRecord(af.format, inputs, stdin, func(_ string, line int64, b []byte) error {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		read++
		if read&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var o processor.Outcome
		var err error
		if ad != nil {
			o, err = eng.Translate(ad, b)
		} else {
			o, err = eng.Ingest(&dec, b)
		}
		if o == processor.Rejected {
			rec := events.Rejected{Line: line, Reason: processor.RejectReason(err), Error: err.Error(), Raw: b}
			w.buf = rec.AppendJSON(w.buf[:0])
			w.flushLine()
		}
		return w.err
	})
	if err != nil {
		return err
	}
	eng.CloseWith(ad)
	sum := eng.Summary(read)
	if sk, ok := ad.(events.Skipper); ok {
		sum.Skipped = sk.Skipped()
	}
	w.buf = sum.AppendJSON(w.buf[:0])
	w.flushLine()
	if w.err != nil {
		return w.err
	}
	return out.Flush()
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// eachInputLine calls fn for every line of the named inputs in order
// ("-" is stdin), numbering lines from 1 across all of them. Errors name
// the input.
func eachInputLine(inputs []string, stdin io.Reader, fn func(name string, line int64, b []byte) error) error {
	var line int64
	for _, name := range inputs {
		var r io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		err := eachLine(r, func(b []byte) error {
			line++
			return fn(name, line, b)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", displayName(name), err)
		}
	}
	return nil
}

// eachRecord is eachInputLine for records of format: FreeSWITCH events
// may also come in their plain form, "Header: value" lines with a blank
// line after each event, which it joins into one record (numbered by its
// first line); every other record is one line.
func eachRecord(format string, inputs []string, stdin io.Reader, fn func(name string, line int64, b []byte) error) error {
	if format != "freeswitch" {
		return eachInputLine(inputs, stdin, fn)
	}
	var rec []byte
	var first int64
	var name string
	flush := func() error {
		if len(rec) == 0 {
			return nil
		}
		b := rec
		rec = nil
		return fn(name, first, b)
	}
	err := eachInputLine(inputs, stdin, func(n string, line int64, b []byte) error {
		switch {
		case len(bytes.TrimSpace(b)) == 0: // the end of a plain event
			return flush()
		case len(rec) == 0 && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")): // ESL JSON: one line
			return fn(n, line, b)
		}
		if len(rec) == 0 {
			first, name = line, n
		}
		rec = append(append(rec, b...), '\n')
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// eachLine calls fn for every line of r without its line terminator. The
// slice is only valid during the call. Lines of any length are supported.
func eachLine(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, b...)
			continue
		}
		if long != nil {
			long = append(long, b...)
			b = long
		}
		if len(b) > 0 {
			b = bytes.TrimSuffix(b, []byte{'\n'})
			b = bytes.TrimSuffix(b, []byte{'\r'})
			if ferr := fn(b); ferr != nil {
				return ferr
			}
		}
		long = nil
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lineWriter is the replay Emitter: one JSON object per line.
type lineWriter struct {
	w   *bufio.Writer
	buf []byte
	err error
}

func (l *lineWriter) flushLine() {
	if l.err != nil {
		return
	}
	l.buf = append(l.buf, '\n')
	_, l.err = l.w.Write(l.buf)
}

func (l *lineWriter) Segment(s *events.Segment) { l.buf = s.AppendJSON(l.buf[:0]); l.flushLine() }
func (l *lineWriter) Alert(a *events.Alert)     { l.buf = a.AppendJSON(l.buf[:0]); l.flushLine() }
func (l *lineWriter) Interval(iv *events.Interval) {
	l.buf = iv.AppendJSON(l.buf[:0])
	l.flushLine()
}
func (l *lineWriter) Open(o *events.OpenSegment) { l.buf = o.AppendJSON(l.buf[:0]); l.flushLine() }
