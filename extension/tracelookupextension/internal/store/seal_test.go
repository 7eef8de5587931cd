// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

func TestSealKeepsSpansAndShrinks(t *testing.T) {
	s, _ := newTestStore(Config{})
	for part := 0; part < 5; part++ {
		s.Ingest(spangen.Batch(0, 3, part*10, 10))
	}
	id := [16]byte(spangen.TraceID(1))
	before, ok := s.Get(id)
	require.True(t, ok)
	want, err := before.Spans()
	require.NoError(t, err)
	require.Len(t, want, 50)
	bytesBefore := s.Stats().Bytes

	s.Seal()
	after, _ := s.Get(id)
	assert.NotEmpty(t, after.Sealed)
	assert.Empty(t, after.Data)
	got, err := after.Spans()
	require.NoError(t, err)
	assert.Equal(t, names(want), names(got))
	assert.Less(t, s.Stats().Bytes, bytesBefore/2, "sealed traces take far less memory")

	// The snapshot taken before sealing still reads.
	again, err := before.Spans()
	require.NoError(t, err)
	assert.Len(t, again, 50)

	// A late span opens the trace again; a retried one is still stored once.
	s.Ingest(spangen.Batch(1, 1, 49, 2))
	late, _ := s.Get(id)
	assert.NotEmpty(t, late.Sealed)
	assert.NotEmpty(t, late.Data)
	got, err = late.Spans()
	require.NoError(t, err)
	assert.Len(t, got, 51)
	s.Seal()
	sealedTwice, _ := s.Get(id)
	got, err = sealedTwice.Spans()
	require.NoError(t, err)
	assert.Len(t, got, 51)
	assert.Empty(t, sealedTwice.Data)
}

func names(spans []spancodec.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"/"+string(s.SpanID[:]))
	}
	return out
}

func TestSealIdleWaitsForQuiet(t *testing.T) {
	s, clock := newTestStore(Config{SealAfter: time.Second})
	s.Ingest(spangen.Batch(0, 1, 0, 10))
	s.SealIdle()
	tr, _ := s.Get([16]byte(spangen.TraceID(0)))
	assert.Empty(t, tr.Sealed, "still open: it just received spans")
	clock.Add(2 * time.Second)
	s.Maintain()
	tr, _ = s.Get([16]byte(spangen.TraceID(0)))
	assert.NotEmpty(t, tr.Sealed)
	assert.Empty(t, tr.Data)
}

func TestBigOpenTraceSealsAtOnce(t *testing.T) {
	s, _ := newTestStore(Config{})
	for part := 0; part < 100; part++ {
		s.Ingest(spangen.Batch(0, 1, part*10, 10))
	}
	tr, _ := s.Get([16]byte(spangen.TraceID(0)))
	assert.NotEmpty(t, tr.Sealed, "a trace whose open records pass the threshold is sealed without waiting")
	assert.Less(t, len(tr.Data), sealOpenBytes)
	spans, err := tr.Spans()
	require.NoError(t, err)
	assert.Len(t, spans, 1000)
}

func TestSealConcurrentWithIngestAndEviction(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 2 << 20})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Go(func() {
			for part := 0; part < 30; part++ {
				s.Ingest(spangen.Batch(uint64(w*1000), 50, part*4, 4))
			}
		})
	}
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				s.Seal()
			}
		}
	})
	wg.Go(func() {
		for i := 0; i < 2000; i++ {
			if tr, ok := s.Get([16]byte(spangen.TraceID(uint64(i % 50)))); ok {
				spans, err := tr.Spans()
				assert.NoError(t, err)
				assert.Equal(t, tr.SpanCount, len(spans))
			}
		}
		close(stop)
	})
	wg.Wait()
	s.Seal()
	st := s.Stats()
	assert.LessOrEqual(t, st.Bytes, int64(2<<20))
	for i := uint64(0); i < 50; i++ {
		for _, base := range []uint64{0, 1000} {
			if tr, ok := s.Get([16]byte(spangen.TraceID(base + i))); ok {
				spans, err := tr.Spans()
				require.NoError(t, err)
				assert.Equal(t, tr.SpanCount, len(spans))
			}
		}
	}
}

func TestResourcesAreSharedAndLeaveWithTheirLastTrace(t *testing.T) {
	s, _ := newTestStore(Config{MaxTraces: 30})
	// 20 traces over five services: five distinct resources, whatever the trace count.
	s.Ingest(spangen.Batch(0, 20, 0, 10))
	assert.Equal(t, 5, s.resources.count())
	for i := uint64(0); i < 20; i++ {
		tr, ok := s.Get([16]byte(spangen.TraceID(i)))
		require.True(t, ok)
		spans, err := tr.Spans()
		require.NoError(t, err)
		require.Len(t, spans, 10)
		for _, sp := range spans {
			assert.NotEmpty(t, sp.ServiceName())
		}
	}
	// New traces from a new resource push the old ones out; the old resources go with them.
	for i := uint64(1); i <= 30; i++ {
		s.Ingest(makeTraces("only-service", spanSpec{trace: traceID(99, i), span: 1}))
	}
	assert.Equal(t, int64(30), s.Stats().Traces)
	assert.Equal(t, 1, s.resources.count())
	for _, r := range s.resources.byID {
		assert.Equal(t, int32(30), r.refs.Load(), "one reference per trace that uses it")
	}
	s.cfg.MaxTraces = 1
	s.Ingest(makeTraces("other", spanSpec{trace: traceID(98, 1), span: 1}))
	assert.Equal(t, 1, s.resources.count(), "only the newest trace's resource is left")
}
