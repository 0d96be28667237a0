package redisstore

import (
	"strconv"
	"strings"

	"github.com/acwstream/acwstream/processor/pipeline"
)

// ckField is one field of a partition's checkpoint hash. ckFields is the
// fields' one definition: the claim script reads those with a get, in
// this order, Claim decodes them with it, and buildCommit writes what
// put gives. A new field is added here, once. (Beside them the hash holds
// "owner", the claiming member's token, which the claim script writes and
// the fence reads with "seq": see fence.go.)
type ckField struct {
	name string
	// put returns the field's value in b's commit (a string, or the
	// batch's own bytes, not copied: they outlive the commit), or false
	// when b does not write it (the hash keeps its earlier value).
	put func(b *pipeline.Batch) (any, bool)
	// get decodes the field into ck (ok false: the hash lacks it); nil
	// for a field no claim reads.
	get func(ck *pipeline.Checkpoint, v string, ok bool) error
}

func always(v any) (any, bool) { return v, true }

var ckFields = [...]ckField{
	{"eff_offset", func(b *pipeline.Batch) (any, bool) { return always(i64(b.Offset)) },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			ck.EffOffset, err = strconv.ParseInt(v, 10, 64)
			return err
		}},
	{"snap_offset", func(b *pipeline.Batch) (any, bool) { return i64(b.SnapOffset), len(b.Snapshot) > 0 },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			ck.SnapOffset, err = strconv.ParseInt(v, 10, 64)
			return err
		}},
	{"snap", func(b *pipeline.Batch) (any, bool) { return b.Snapshot, len(b.Snapshot) > 0 },
		func(ck *pipeline.Checkpoint, v string, _ bool) error { ck.Snapshot = []byte(v); return nil }},
	{"aux", func(b *pipeline.Batch) (any, bool) { return b.Aux, len(b.Snapshot) > 0 },
		func(ck *pipeline.Checkpoint, v string, _ bool) error { ck.Aux = []byte(v); return nil }},
	{"ticks", func(b *pipeline.Batch) (any, bool) { return always(encodeTicks(b.Ticks)) },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			ck.Ticks, err = decodeTicks(v)
			return err
		}},
	{"prov", func(b *pipeline.Batch) (any, bool) { return always(strings.Join(b.Provisional, ",")) },
		func(ck *pipeline.Checkpoint, v string, _ bool) error {
			if v != "" {
				ck.Provisional = strings.Split(v, ",")
			}
			return nil
		}},
	{"seq", func(b *pipeline.Batch) (any, bool) { return always(i64(b.Seq)) },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			if v != "" {
				ck.Seq, err = strconv.ParseInt(v, 10, 64)
			}
			return err
		}},
	// shared_offset and shared_ticks: where the partition's shared log
	// stands (a checkpoint written before the shared log: its effects'
	// offset, and every tick).
	{"shared_offset", func(b *pipeline.Batch) (any, bool) { return i64(b.Offset), b.Shared },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			ck.SharedOffset = ck.EffOffset
			if v != "" {
				ck.SharedOffset, err = strconv.ParseInt(v, 10, 64)
			}
			return err
		}},
	{"shared_ticks", func(b *pipeline.Batch) (any, bool) { return strconv.Itoa(len(b.Ticks)), b.Shared },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			ck.SharedTicks = -1
			if v != "" {
				ck.SharedTicks, err = strconv.Atoi(v)
			}
			return err
		}},
	{"outbox", func(b *pipeline.Batch) (any, bool) { return always(b.Outbox) },
		func(ck *pipeline.Checkpoint, v string, _ bool) error {
			if v != "" {
				ck.Outbox = []byte(v)
			}
			return nil
		}},
	{"rebuild", func(b *pipeline.Batch) (any, bool) { return i64(b.Rebuild), b.Rebuild != 0 },
		func(ck *pipeline.Checkpoint, v string, _ bool) (err error) {
			if v != "" {
				ck.Rebuild, err = strconv.ParseInt(v, 10, 64)
			}
			return err
		}},
	{"updated", func(b *pipeline.Batch) (any, bool) { return always(i64(b.WallMS)) }, nil}, // for people
}

// claimFields are the names of the fields a claim reads, in ckFields
// order (the claim script's arguments after the token).
var claimFields = func() (names []any) {
	for _, f := range ckFields {
		if f.get != nil {
			names = append(names, f.name)
		}
	}
	return names
}()

// appendCheckpoint appends the field/value pairs b's commit writes.
func appendCheckpoint(a []any, b *pipeline.Batch) []any {
	for _, f := range ckFields {
		if v, ok := f.put(b); ok {
			a = append(a, f.name, v)
		}
	}
	return a
}

// decodeCheckpoint decodes a claim's reply (the values of claimFields;
// nil for an absent field) into ck.
func decodeCheckpoint(ck *pipeline.Checkpoint, vals []any) (field, value string, err error) {
	i := 0
	for _, f := range ckFields {
		if f.get == nil {
			continue
		}
		v, ok := vals[i].(string)
		i++
		if err := f.get(ck, v, ok); err != nil {
			return f.name, v, err
		}
	}
	return "", "", nil
}
