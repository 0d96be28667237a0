package storetest

import (
	"testing"

	"github.com/acwstream/acwstream/processor/pipeline"
)

var memHarness = Harness{
	New:            func(*testing.T) pipeline.Store { return NewMem() },
	LoseCheckpoint: func(_ *testing.T, s pipeline.Store, src pipeline.Source) { s.(*Mem).LoseCheckpoint(src) },
}

func TestMemStore(t *testing.T)  { RunStore(t, memHarness) }
func TestMemShared(t *testing.T) { RunShared(t, memHarness) }
