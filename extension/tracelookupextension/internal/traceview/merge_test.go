// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package traceview_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

var traceID = [16]byte{1, 2, 3}

// spans makes one resource's spans of traceID, each {id, parent, name}.
func spans(service string, kind ptrace.SpanKind, specs ...[3]any) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for i, s := range specs {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(pcommon.SpanID{7: s[0].(byte)})
		if p := s[1].(byte); p != 0 {
			sp.SetParentSpanID(pcommon.SpanID{7: p})
		}
		sp.SetName(s[2].(string))
		sp.SetKind(kind)
		sp.SetStartTimestamp(pcommon.Timestamp(100 + i))
		sp.SetEndTimestamp(pcommon.Timestamp(200 + i))
	}
	// A span of another trace, which an import leaves out.
	other := ss.Spans().AppendEmpty()
	other.SetTraceID([16]byte{9})
	other.SetSpanID(pcommon.SpanID{1})
	return td
}

func TestBuildAllMergesPartsNewestFirst(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 16 << 20})
	defer st.Close()
	st.Ingest("", spans("memory", ptrace.SpanKindServer, [3]any{byte(1), byte(0), "root"}, [3]any{byte(2), byte(1), "from memory"}))
	local, ok := st.Get(store.DefaultTenant, traceID)
	require.True(t, ok)

	// A peer holds span 2 too, named otherwise (older data), and span 3;
	// span 2 as a client span is another span (a shared Zipkin span's other half).
	peer, f := st.Import(traceID, store.DefaultTenant, spans("peer", ptrace.SpanKindServer, [3]any{byte(2), byte(1), "from peer"}, [3]any{byte(3), byte(2), "peer only"}), 42)
	require.Equal(t, 2, peer.SpanCount, "the other trace's span is left out")
	assert.Equal(t, 2, f.SpanCount)
	assert.Positive(t, f.BlockBytes)
	assert.GreaterOrEqual(t, f.RawBytes, f.BlockBytes-8)
	shared, _ := st.Import(traceID, store.DefaultTenant, spans("peer", ptrace.SpanKindClient, [3]any{byte(2), byte(1), "client half"}), 43)

	tr := traceview.BuildAll([]store.Trace{local, peer, shared}, 0)
	defer tr.Release()
	names := map[string]string{}
	for i := range tr.Spans {
		names[tr.Spans[i].Name] = tr.Spans[i].ServiceName()
	}
	assert.Equal(t, map[string]string{"root": "memory", "from memory": "memory", "peer only": "peer", "client half": "peer"}, names)
	assert.Equal(t, 0, tr.Orphans, "span 3's parent came from memory")
	assert.Equal(t, 0, tr.Unreadable)
	require.GreaterOrEqual(t, tr.Root, 0)
	assert.Equal(t, "root", tr.Spans[tr.Root].Name)
	assert.Equal(t, int64(42), tr.FirstSeen, "first seen is the earliest of the parts")
}

func TestImportOfNoSpans(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 16 << 20})
	defer st.Close()
	tr, f := st.Import([16]byte{5}, "t", spans("x", ptrace.SpanKindServer, [3]any{byte(1), byte(0), "a"}), 1)
	assert.Equal(t, 0, tr.SpanCount)
	assert.Equal(t, 0, f.SpanCount)
	v := traceview.BuildAll([]store.Trace{tr}, 0)
	defer v.Release()
	assert.Empty(t, v.Spans)
}
