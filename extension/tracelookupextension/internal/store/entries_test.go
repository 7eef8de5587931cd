// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestEntriesAreReusedAndEmptySlabsUnmapped(t *testing.T) {
	s, clock := newTestStore(Config{MaxBytes: 8 << 20, Retention: time.Minute})
	for i := uint64(1); i <= 3000; i++ {
		s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(1, i), span: 1}))
	}
	grown := s.slabBytes.Load()
	require.Positive(t, grown)
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.Stats().Traces)
	assert.Zero(t, s.slabBytes.Load(), "every slab emptied, every slab unmapped")
	for i := range s.shards {
		assert.Empty(t, s.shards[i].entries.mem)
	}
	for i := uint64(1); i <= 3000; i++ {
		s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(2, i), span: 1}))
	}
	assert.LessOrEqual(t, s.slabBytes.Load(), grown, "the same count of traces takes no more slabs")
}

// A trace written in many pieces, with many resources and call ids, keeps
// what does not fit in its entry in an overflow record, and gives it back.
func TestEntryOverflow(t *testing.T) {
	s, clock := newTestStore(Config{CallIDAttribute: "call.id", Retention: time.Minute})
	id := traceID(4, 4)
	for i := uint64(1); i <= 12; i++ {
		s.Ingest("", spangenBatchOf(t, id, i))
		// Another trace between the pieces, so that they do not merge into one extent.
		s.Ingest("", makeTraces("other", spanSpec{trace: traceID(5, i), span: 1}))
	}
	tr, ok := s.Get("", id)
	require.True(t, ok)
	spans, err := tr.Spans()
	require.NoError(t, err)
	require.Len(t, spans, 12)
	services := map[string]bool{}
	for _, sp := range spans {
		services[sp.ServiceName()] = true
	}
	assert.Len(t, services, 12, "every piece's resource is resolved")
	for i := uint64(1); i <= 12; i++ {
		got, ok := s.GetByCallID("", fmt.Sprint("call-", i))
		require.True(t, ok)
		assert.Equal(t, id, got.ID)
	}
	sh := s.shardOf(low64(id))
	ref, e := sh.find(id, 0)
	require.NotNil(t, e)
	assert.Greater(t, int(e.nExt), inlineExtents)
	assert.NotNil(t, sh.entries.more[ref])

	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.bytes.Load(), "overflow, map slots and call entries all given back")
	assert.Zero(t, s.calls.size())
	assert.Zero(t, s.resources.count())
	assert.Empty(t, sh.entries.more)
}

// spangenBatchOf is one span of trace id from its own service, carrying its own call id.
func spangenBatchOf(t *testing.T, id [16]byte, i uint64) ptrace.Traces {
	t.Helper()
	return makeTraces(fmt.Sprint("svc-", i), spanSpec{trace: id, span: i, attrs: map[string]string{"call.id": fmt.Sprint("call-", i)}})
}
