// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package hostile builds the OTLP requests a hostile or careless client
// sends, for the regression tests of the limits that stop them: values
// nested deeper than anything can unmarshal, parent chains deeper than any
// JSON parser reads.
package hostile // import "github.com/otelcol-tracelookup/otelcol-tracelookup/internal/hostile"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// DeepTraceID is the trace id of the deep requests' one span.
var DeepTraceID = pcommon.TraceID{0xde, 0xe9}

// DeepProto is an OTLP ExportTraceServiceRequest in protobuf whose one span
// has an attribute "deep": an array nested levels deep. It is encoded by
// hand: pdata cannot encode a value deep enough to matter without
// recursing. The sizes are worked out from the inside, then the bytes
// written from the outside, so that it takes linear time.
func DeepProto(levels int) []byte {
	leaf := []byte{0x0a, 0x01, 'x'} // AnyValue{string_value: "x"}
	// sizes[0] is the innermost AnyValue; then its ArrayValue, the AnyValue
	// holding that, and so on out to the attribute's value.
	sizes := make([]int, 2*levels-1)
	sizes[0] = len(leaf)
	for i := 1; i < len(sizes); i++ {
		sizes[i] = 1 + len(appendVarint(nil, uint64(sizes[i-1]))) + sizes[i-1]
	}
	var value []byte
	for i := len(sizes) - 2; i >= 0; i-- { // the outermost value's header is the key-value's
		field := uint64(1) // ArrayValue.values
		if i%2 == 1 {
			field = 5 // AnyValue.array_value
		}
		value = appendVarint(value, field<<3|2)
		value = appendVarint(value, uint64(sizes[i]))
	}
	value = append(value, leaf...)
	kv := appendLen(appendLen(nil, 1, []byte("deep")), 2, value)
	span := appendLen(appendLen(appendLen(nil, 1, DeepTraceID[:]), 2, []byte{0, 0, 0, 0, 0, 0, 0, 1}), 9, kv)
	return appendLen(nil, 1, appendLen(nil, 2, appendLen(nil, 2, span)))
}

// DeepJSON is DeepProto in OTLP/JSON.
func DeepJSON(levels int) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"dee90000000000000000000000000000","spanId":"0000000000000001","attributes":[{"key":"deep","value":`)
	for range levels - 1 {
		b.WriteString(`{"arrayValue":{"values":[`)
	}
	b.WriteString(`{"stringValue":"x"}`)
	for range levels - 1 {
		b.WriteString(`]}}`)
	}
	b.WriteString(`}]}]}]}]}`)
	return []byte(b.String())
}

func appendLen(b []byte, field uint64, payload []byte) []byte {
	b = appendVarint(b, field<<3|2)
	b = appendVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// Chain is one trace of n spans, each the parent of the next: its tree is
// n levels deep. The first span carries callID in the attribute "call.id".
func Chain(id pcommon.TraceID, n int, callID string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "chain")
	ss := rs.ScopeSpans().AppendEmpty()
	const t0 = 1_700_000_000_000_000_000
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(id)
		s.SetSpanID(spanID(i + 1))
		if i > 0 {
			s.SetParentSpanID(spanID(i))
		}
		s.SetName("level")
		s.SetStartTimestamp(pcommon.Timestamp(t0 + i))
		s.SetEndTimestamp(pcommon.Timestamp(t0 + 2*n - i))
		if i == 0 && callID != "" {
			s.Attributes().PutStr("call.id", callID)
		}
	}
	return td
}

func spanID(i int) pcommon.SpanID {
	var id pcommon.SpanID
	for k := range 8 {
		id[7-k] = byte(i >> (8 * k))
	}
	return id
}
