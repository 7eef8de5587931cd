// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

var defaultLimits = spancodec.Limits{MaxValueBytes: 4096, MaxAttributes: 128, MaxEvents: 128, MaxLinks: 128}

// The second crash of the issue: 50 small gzip requests, one span each with
// a 19 MiB attribute of one repeated character. S2 compressed it to almost
// nothing, so the index accounted almost nothing, and one lookup decoded
// 996 MB. Cut to 4 KiB, what a lookup decodes is what the index accounts.
func TestCompressibleHugeAttributeCut(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 64 << 20, Limits: defaultLimits})
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	huge := strings.Repeat("x", 19<<20)
	sp.Attributes().PutStr("payload", huge)
	for range 50 {
		s.Ingest("", td)
	}
	assert.Equal(t, "x", sp.Attributes().AsRaw()["payload"].(string)[:1], "the pipeline's data is untouched")
	assert.Len(t, sp.Attributes().AsRaw()["payload"], 19<<20)

	f, ok := s.Find("", [16]byte{1})
	require.True(t, ok)
	assert.Less(t, f.RawBytes, 8<<10, "what a lookup decodes")
	tr, ok := s.Fetch(f)
	require.True(t, ok)
	defer tr.Release()
	spans, err := tr.Spans()
	require.NoError(t, err)
	require.Len(t, spans, 1, "retries of one span are stored once")
	v, _ := spans[0].Attr("payload")
	assert.Equal(t, huge[:4096], v.Str)
	mark, ok := spans[0].Attr(spancodec.TruncatedValuesKey)
	require.True(t, ok)
	assert.Equal(t, int64(1), mark.Int())
	assert.Equal(t, int64(1), s.Stats().Cuts.Values, "the cut is counted once: the retries were never encoded")
}

// A resource's cut values are marked on its spans.
func TestResourceCutsMarkedOnSpans(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 64 << 20, Limits: spancodec.Limits{MaxValueBytes: 12}}) // "service.name" fits; its value does not
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "a-very-long-service-name")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{2})
	sp.SetSpanID([8]byte{1})
	s.Ingest("", td)
	tr, ok := s.Get("", [16]byte{2})
	require.True(t, ok)
	defer tr.Release()
	spans, err := tr.Spans()
	require.NoError(t, err)
	require.Len(t, spans, 1)
	assert.Equal(t, "a-very-long-", spans[0].ServiceName())
	mark, _ := spans[0].Attr(spancodec.TruncatedValuesKey)
	assert.Equal(t, int64(1), mark.Int())
}

// An all-zero trace id names no trace: such spans are counted, not stored.
func TestAllZeroTraceIDCounted(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 64 << 20})
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	spans.AppendEmpty().SetSpanID([8]byte{1})
	spans.AppendEmpty().SetSpanID([8]byte{2})
	ok := spans.AppendEmpty()
	ok.SetTraceID([16]byte{3})
	ok.SetSpanID([8]byte{3})
	assert.Equal(t, Rejected{InvalidID: 2}, s.Ingest("", td))
	st := s.Stats()
	assert.Equal(t, int64(2), st.InvalidIDSpans)
	assert.Equal(t, int64(1), st.Spans)
}

// FuzzIngestLookup feeds any OTLP request pdata accepts through ingest and
// lookup: every trace it stores reads back whole, every span of it, with
// no span unreadable.
func FuzzIngestLookup(f *testing.F) {
	seed := ptrace.NewTraces()
	rs := seed.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range 3 {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{byte(i + 1)})
		sp.SetName(strings.Repeat("n", 10*i))
		v := sp.Attributes().PutEmpty("nested")
		for range 5 * i {
			v = v.SetEmptySlice().AppendEmpty()
		}
		v.SetStr("leaf")
		sp.Events().AppendEmpty().SetName("e")
		sp.Links().AppendEmpty().SetTraceID([16]byte{9})
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(seed).MarshalProto()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalProto(data) != nil {
			return
		}
		td := req.Traces()
		s := New(Config{MaxBytes: 64 << 20, Limits: spancodec.Limits{MaxValueBytes: 16, MaxAttributes: 4, MaxEvents: 2, MaxLinks: 2}})
		defer s.Close()
		s.Ingest("", td)
		want := map[[16]byte]map[[17]byte]bool{}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					id := [16]byte(sp.TraceID())
					if id == ([16]byte{}) {
						continue
					}
					if want[id] == nil {
						want[id] = map[[17]byte]bool{}
					}
					var k [17]byte
					sid, pid := sp.SpanID(), sp.ParentSpanID()
					copy(k[:], sid[:])
					copy(k[8:], pid[:])
					k[16] = byte(sp.Kind())
					want[id][k] = true
				}
			}
		}
		for id, keys := range want {
			tr, ok := s.Get("", id)
			if !ok {
				t.Fatalf("trace %x not stored", id)
			}
			spans, err := tr.Spans()
			tr.Release()
			if err != nil {
				t.Fatalf("trace %x: %v", id, err)
			}
			if len(spans) != len(keys) {
				t.Fatalf("trace %x: %d spans read back, %d distinct sent", id, len(spans), len(keys))
			}
			for i := range spans {
				_ = spancodec.AppendJSONObject(nil, spans[i].Attributes)
			}
		}
	})
}

// A lookup reads what the trace held when it was found and admitted, not
// what arrived while it waited (found in review).
func TestFetchReadsWhatWasFound(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 64 << 20})
	batch := func(first int) ptrace.Traces {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i := first; i < first+10; i++ {
			sp := spans.AppendEmpty()
			sp.SetTraceID([16]byte{4})
			sp.SetSpanID([8]byte{byte(i + 1)})
		}
		return td
	}
	s.Ingest("", batch(0))
	f, ok := s.Find("", [16]byte{4})
	require.True(t, ok)
	for k := 1; k < 5; k++ {
		s.Ingest("", batch(10*k))
	}
	tr, ok := s.Fetch(f)
	require.True(t, ok)
	defer tr.Release()
	assert.Equal(t, 10, tr.SpanCount)
	spans, err := tr.Spans()
	require.NoError(t, err)
	assert.Len(t, spans, 10)

	now, _ := s.Find("", [16]byte{4})
	assert.Equal(t, 50, now.SpanCount)
	assert.Greater(t, now.BlockBytes, f.BlockBytes)
}
