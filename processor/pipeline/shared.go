package pipeline

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/acwstream/acwstream/events"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Shared keys (team, queue, center) have one writer.
//
// Every partition sees every team, so if each partition wrote the shared
// keys itself, each key would take a read-modify-write per partition per
// flush: with thousands of teams, Redis saturates. Instead a partition's
// shared flush (Batch.SharedLog) appends its deltas to its own log in the
// same atomic commit as its checkpoint (exactly once, like every other
// effect), and one shared writer per consumer group, chosen by a lease,
// reads all the logs, sums the deltas per key, and applies them together
// with the logs' new read positions in one atomic compare-and-set: a
// writer that lost its lease, or raced another, fails as a whole and
// changes nothing. So each shared key gets one write per shared-writer
// round, however many partitions and instances there are.

// SharedStore is a Store that logs shared deltas (Batch.SharedLog) for the
// shared writer. A Pipeline whose Store implements it runs a shared writer.
type SharedStore interface {
	// LeaseShared takes, or renews, the shared writer's lease for token
	// for ttl; false: another token holds it.
	LeaseShared(ctx context.Context, token string, ttl time.Duration) (bool, error)
	// ReleaseShared gives the lease up if token holds it.
	ReleaseShared(ctx context.Context, token string) error
	// ReadShared returns the log entries not yet applied, at most max per
	// log, each log's oldest first; more reports that some log has more.
	ReadShared(ctx context.Context, max int) (entries []SharedEntry, more bool, err error)
	// ApplyShared adds counters (the entries' deltas summed by SumShared)
	// to the shared keys and marks the entries applied, exactly once: a
	// store may write a large round in parts (readers then see its keys
	// change part by part), but a round interrupted between
	// parts is completed by the next lease holder before any other. It
	// returns ErrSharedConflict, having applied none of the entries, when
	// token no longer holds the lease, when any of the entries' logs has
	// moved since ReadShared, or when it first had to complete a round an
	// earlier writer left (the caller reads again).
	ApplyShared(ctx context.Context, token string, entries []SharedEntry, counters []CounterDelta, wallMS int64) error
	// SharedTails returns, per log, the data of its last applied entry;
	// logs with none applied are in the map with a nil value.
	SharedTails(ctx context.Context) (map[string][]byte, error)
	// RegisterLogs adds the logs of srcs to the shared logs (a partition's
	// log is added by its first shared commit anyway; this adds those of
	// partitions that have not logged yet, so that they are waited for).
	RegisterLogs(ctx context.Context, srcs []Source) error
	// PendingWindows returns, in order, the starts (Unix ms) of the
	// windows that have shared scope/keys (Batch.SharedWindows) whose
	// final records are not published yet, and that start before before.
	PendingWindows(ctx context.Context, before int64) ([]int64, error)
	// WindowCounters returns the shared scope/keys of the window starting
	// at start with their values (Delta), as the store holds them.
	WindowCounters(ctx context.Context, start int64) ([]CounterDelta, error)
	// WindowPublished forgets the window's scope/keys: its final records
	// are published.
	WindowPublished(ctx context.Context, start int64) error
}

// SharedEntry is one logged shared flush of one partition.
type SharedEntry struct {
	Log  string // the log (one per input partition)
	ID   string // the entry's position in its log
	Prev string // the log's applied position when it was read
	Data []byte // Batch.SharedLog
}

// ErrSharedConflict: the shared writer lost its lease, or another writer
// applied some of the entries first; nothing was applied.
var ErrSharedConflict = errors.New("shared writer: lease lost or entries already applied")

// sharedLogVersion is the first byte of a shared log entry. Version 1
// holds ten counters per entry; 2 a count of counters first and the
// not-ready reasons after them (see appendTally). Entries of both may be
// in the logs after an upgrade.
const sharedLogVersion = 2

var errSharedLog = errors.New("shared log")

// AppendSharedLog appends to b the encoding of one partition's shared
// flush (Batch.SharedLog): its interval deltas ivs (Scope, Key, Start,
// Delta), the last-60-minutes retractions of windows that left the view
// (Scope, Key and negative Delta), and the view's span [first, end) as of
// the flush. The day and last-60m deltas are derived by SumShared.
func AppendSharedLog(b []byte, first, end int64, ivs, retract []CounterDelta) []byte {
	b = append(b, sharedLogVersion)
	b = binary.AppendVarint(b, first)
	b = binary.AppendVarint(b, end)
	b = binary.AppendUvarint(b, uint64(len(ivs)))
	for i := range ivs {
		b = appendScopeKey(b, scopeKey{ivs[i].Scope, ivs[i].Key})
		b = binary.AppendVarint(b, ivs[i].Start)
		b = appendTally(b, &tally{c: ivs[i].Delta, r: ivs[i].Reasons})
	}
	b = binary.AppendUvarint(b, uint64(len(retract)))
	for i := range retract {
		b = appendTally(appendScopeKey(b, scopeKey{retract[i].Scope, retract[i].Key}), &tally{c: retract[i].Delta, r: retract[i].Reasons})
	}
	return b
}

// SumShared adds up logged shared flushes into the deltas of the shared
// views, in the order a Store applies them: interval hashes first (the
// last-60m maxima are read from them), then days (in loc; windowMS long
// windows), then last-60m views. A last-60m view spans the latest span of
// the entries. acw_max_ms deltas are maxima.
func SumShared(data [][]byte, window time.Duration, loc *time.Location) ([]CounterDelta, error) {
	windowMS := window.Milliseconds()
	ivs := map[ivKey]*CounterDelta{}
	days := map[dayKey]*CounterDelta{}
	last60 := map[scopeKey]*tally{}
	var first, end int64
	var dc dayCache
	add := func(k scopeKey, c *tally) {
		if l := last60[k]; l != nil {
			l.add(c)
		} else {
			v := tally{c: c.c, r: addReasons(nil, c.r, 1)}
			last60[k] = &v
		}
	}
	// into adds c to d (a fresh copy of the reasons when d has none yet).
	into := func(d *CounterDelta, c *tally) {
		d.Delta.Add(&c.c)
		d.Reasons = addReasons(d.Reasons, c.r, 1)
	}
	for n, d := range data {
		r := &auxReader{Reader: events.Reader{B: d, Corrupt: errSharedLog}}
		r.uncounted = r.Version(1, sharedLogVersion) == 1
		f, e := r.Varint(), r.Varint()
		if e > end {
			first, end = f, e
		}
		for range r.Count() {
			k, start := r.scopeKey(), r.Varint()
			c := r.tally()
			iv := ivs[ivKey{k, start}]
			if iv == nil {
				iv = &CounterDelta{Scope: k.scope, Key: k.key, View: ViewInterval, Start: start, End: start + windowMS}
				ivs[ivKey{k, start}] = iv
			}
			into(iv, &c)
			day, from, to := dc.day(loc, start)
			dd := days[dayKey{k, day}]
			if dd == nil {
				dd = &CounterDelta{Scope: k.scope, Key: k.key, View: ViewDay, Start: from, End: to, Day: day}
				days[dayKey{k, day}] = dd
			}
			into(dd, &c)
			add(k, &c)
		}
		for range r.Count() {
			k := r.scopeKey()
			c := r.tally()
			add(k, &c)
		}
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", n, err)
		}
	}
	out := make([]CounterDelta, 0, len(ivs)+len(days)+len(last60))
	for _, k := range slices.SortedFunc(maps.Keys(ivs), func(x, y ivKey) int {
		return cmp.Or(cmpScopeKey(x.scopeKey, y.scopeKey), cmp.Compare(x.start, y.start))
	}) {
		out = append(out, *ivs[k])
	}
	for _, k := range slices.SortedFunc(maps.Keys(days), cmpDayKey) {
		out = append(out, *days[k])
	}
	for _, k := range slices.SortedFunc(maps.Keys(last60), cmpScopeKey) {
		out = append(out, CounterDelta{Scope: k.scope, Key: k.key, View: ViewLast60m, Start: first, End: end, Delta: last60[k].c, Reasons: last60[k].r})
	}
	return out, nil
}

// dayCache remembers the calendar day of the last window start asked for.
type dayCache struct {
	start    int64
	name     string
	from, to int64
}

// day returns the calendar day (in loc) holding the window starting at
// start, and its bounds in Unix ms.
func (c *dayCache) day(loc *time.Location, start int64) (string, int64, int64) {
	if c.name == "" || c.start != start {
		tm := time.UnixMilli(start).In(loc)
		y, m, d := tm.Date()
		c.start = start
		c.name = tm.Format("2006-01-02")
		c.from = time.Date(y, m, d, 0, 0, 0, 0, loc).UnixMilli()
		c.to = time.Date(y, m, d+1, 0, 0, 0, 0, loc).UnixMilli()
	}
	return c.name, c.from, c.to
}

// sharedWriter applies the partitions' shared logs while it holds the
// lease. Every instance runs one; one at a time writes.
type sharedWriter struct {
	st         SharedStore
	cfg        *Config
	token      string
	log        zerolog.Logger
	hooks      *hooks
	leader     bool
	registered time.Time // when the input partitions were last listed
	// seen holds every shared log this writer has found among the logs
	// (one per input partition: a bounded set). Logs are never removed,
	// so one that is gone was lost by the store (see publishFinal).
	seen map[string]bool
	// partitions lists the input partitions that hold messages; nil:
	// nonEmptyPartitions (Kafka).
	partitions func(context.Context) ([]Source, error)
}

// sharedLeaseTTL is how long the shared writer's lease lasts unrenewed: a
// crashed writer's successor starts within it.
const sharedLeaseTTL = 3 * time.Second

// sharedMaxEntries caps the entries read per log in one round.
const sharedMaxEntries = 200

// run applies the logs every FlushInterval until ctx ends, then, if it
// leads, drains them one last time within FinalFlushTimeout and gives the
// lease up.
func (w *sharedWriter) run(ctx context.Context) {
	t := time.NewTicker(w.cfg.FlushInterval)
	defer t.Stop()
	bo := NewBackoff(w.cfg.MaxBackoff)
	failing := false
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
			err := w.round(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				if !failing {
					w.log.Warn().Err(err).Msg("shared writer: retrying")
				}
				failing = true
				w.hooks.failed(Source{}, "redis", err)
				bo.Wait(ctx)
			case failing:
				failing = false
				bo.Reset()
				w.log.Info().Msg("shared writer: recovered")
			}
		}
	}
	// The final round: the leader drains the logs, its partitions' final
	// entries included. A writer that has not led takes the lease too if
	// it is free (the last instance of a group stopping one after the
	// other, whose leader released it on its way out); held by another
	// instance, that one applies them.
	fctx, cancel := context.WithTimeout(context.Background(), w.cfg.FinalFlushTimeout)
	defer cancel()
	if err := w.round(fctx); err != nil {
		w.log.Warn().Err(err).Msg("shared writer: final round failed; the next writer applies what is left")
	}
	if !w.leader {
		return
	}
	if err := w.st.ReleaseShared(fctx, w.token); err != nil {
		w.log.Warn().Err(err).Msg("shared writer: releasing the lease")
	}
	w.setLeader(false)
}

func (w *sharedWriter) setLeader(on bool) {
	if on == w.leader {
		return
	}
	w.leader = on
	w.log.Info().Bool("leader", on).Msg("shared writer lease")
	w.hooks.sharedLeader(on)
}

// round renews the lease and, holding it, applies every pending entry.
func (w *sharedWriter) round(ctx context.Context) error {
	ok, err := w.st.LeaseShared(ctx, w.token, sharedLeaseTTL)
	if err != nil {
		return fmt.Errorf("shared writer lease: %w", err)
	}
	w.setLeader(ok)
	conflicts := 0
	for ok {
		began := time.Now()
		es, more, err := w.st.ReadShared(ctx, sharedMaxEntries)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		data := make([][]byte, len(es))
		for i := range es {
			data[i] = es[i].Data
		}
		cs, err := SumShared(data, w.cfg.Engine.Window, w.cfg.Location)
		if err != nil {
			return err
		}
		err = w.st.ApplyShared(ctx, w.token, es, cs, w.cfg.Now().UnixMilli())
		if errors.Is(err, ErrSharedConflict) {
			// Still holding the lease, the conflict was a round left
			// pending (by this writer, interrupted, or another) that the
			// store completed first: read again. (Giving up here left
			// the partitions' final entries unapplied at shutdown.)
			if conflicts++; conflicts <= 3 {
				if still, lerr := w.st.LeaseShared(ctx, w.token, sharedLeaseTTL); lerr == nil && still {
					continue
				}
			}
			w.log.Info().Err(err).Msg("shared writer: another writer got there first")
			w.setLeader(false)
			return nil
		}
		if err != nil {
			return err
		}
		w.hooks.sharedApplied(len(es), len(cs), time.Since(began))
		ok = more
	}
	return w.publishFinal(ctx)
}

// publishFinal publishes, on the intervals topic, the final record of
// every team, queue and centre interval that all partitions have closed:
// each log's last applied entry tells up to where its partition has
// closed its windows (the open window's start), and every delta of the
// windows before that is applied. Every input partition that holds
// messages has a log (registerLogs), and one with nothing applied yet
// holds every window back; a partition that has applied no event says so
// and does not. A window is published once, after its values are final,
// then forgotten; a crash in between publishes it again, byte for byte.
func (w *sharedWriter) publishFinal(ctx context.Context) error {
	if !w.leader {
		return nil
	}
	if err := w.registerLogs(ctx); err != nil {
		return err
	}
	tails, err := w.st.SharedTails(ctx)
	if err != nil || len(tails) == 0 {
		return err
	}
	// A log seen before and gone now means the store lost acknowledged
	// writes (Redis went back in time: a restart from an older snapshot,
	// a failover to a lagging replica), and with them the registration
	// of partitions that had logged since. Their deltas since are not in
	// the store, so every window they hold back would be published short:
	// list the input partitions again (their logs return, with nothing
	// applied, holding every window back until each logs again) and
	// publish nothing this round.
	lost := 0
	for l := range w.seen {
		if _, ok := tails[l]; !ok {
			lost++
		}
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	for l := range tails {
		w.seen[l] = true
	}
	if lost > 0 {
		w.log.Warn().Int("logs", lost).Msg("shared writer: shared logs it had seen are gone (Redis lost writes it had acknowledged): registering the input partitions again before publishing final intervals")
		w.registered = time.Time{}
		return w.registerLogs(ctx)
	}
	windowMS := w.cfg.Engine.Window.Milliseconds()
	closed := int64(math.MaxInt64)
	for _, d := range tails {
		end, ok := sharedLogEnd(d)
		switch {
		case !ok:
			return nil // a log with nothing applied yet holds every window back
		case end > 0: // 0: its partition has applied no event yet
			closed = min(closed, end-windowMS)
		}
	}
	if closed == math.MaxInt64 {
		return nil
	}
	starts, err := w.st.PendingWindows(ctx, closed-windowMS+1)
	if err != nil {
		return err
	}
	for _, start := range starts {
		if err := w.publishWindow(ctx, start); err != nil {
			return err
		}
	}
	return nil
}

// publishWindow publishes the final records of the window starting at
// start, then forgets it.
func (w *sharedWriter) publishWindow(ctx context.Context, start int64) error {
	cs, err := w.st.WindowCounters(ctx, start)
	if err != nil {
		return err
	}
	msgs := make([]kafka.Message, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		if c.Delta.IsZero() {
			continue
		}
		iv := events.Interval{Scope: c.Scope, Key: c.Key, Window: w.cfg.Engine.Window, Start: start, End: start + w.cfg.Engine.Window.Milliseconds(), Counters: c.Delta}
		if c.Scope != events.ScopeQueue {
			iv.Reasons = events.SortedReasons(c.Reasons)
		}
		msgs = append(msgs, kafka.Message{Topic: w.cfg.Derived.Intervals, Key: []byte(c.Scope.String() + ":" + c.Key), Value: iv.AppendJSON(nil)})
	}
	if len(msgs) > 0 {
		if err := w.cfg.Publisher.Publish(ctx, msgs); err != nil {
			return fmt.Errorf("shared writer: publishing the final intervals of %s: %w", events.FormatTime(start), err)
		}
	}
	return w.st.WindowPublished(ctx, start)
}

// registerLogs makes sure every input partition that holds messages has
// its log among the shared logs, asking Kafka at most once a minute.
func (w *sharedWriter) registerLogs(ctx context.Context) error {
	if now := time.Now(); now.Sub(w.registered) < time.Minute {
		return nil
	} else {
		w.registered = now
	}
	list := w.partitions
	if list == nil {
		list = func(ctx context.Context) ([]Source, error) { return nonEmptyPartitions(ctx, w.cfg) }
	}
	srcs, err := list(ctx)
	if err != nil {
		w.registered = time.Time{}
		return fmt.Errorf("shared writer: listing the input partitions: %w", err)
	}
	return w.st.RegisterLogs(ctx, srcs)
}

// nonEmptyPartitions lists the input partitions whose end offset is above
// 0.
func nonEmptyPartitions(ctx context.Context, cfg *Config) ([]Source, error) {
	d := cfg.Dialer
	if d == nil {
		d = kafka.DefaultDialer
	}
	var conn *kafka.Conn
	var err error
	for _, b := range cfg.Brokers {
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(cfg.Topics...)
	conn.Close()
	if err != nil {
		return nil, err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: d.TLS, SASL: d.SASLMechanism, ClientID: d.ClientID}}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[p.Topic] = append(req.Topics[p.Topic], kafka.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []Source
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, p.Error
			}
			if p.LastOffset > 0 {
				out = append(out, Source{Topic: topic, Partition: p.Partition})
			}
		}
	}
	slices.SortFunc(out, func(a, b Source) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}

// sharedLogEnd reads the end of the view span of an AppendSharedLog
// encoding: the end of its partition's open window then.
func sharedLogEnd(d []byte) (int64, bool) {
	r := events.Reader{B: d}
	r.Version(sharedLogVersion, sharedLogVersion)
	_, end := r.Varint(), r.Varint()
	return end, r.Failed() == nil
}
