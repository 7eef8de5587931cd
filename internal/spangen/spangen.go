// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package spangen makes realistic, deterministic OTLP trace batches for
// benchmarks: the same shape in the Go benchmarks and in the load benchmark,
// so their figures can be compared.
package spangen // import "github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"

import (
	"encoding/binary"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TraceID is the id of trace n: random-looking in both halves, never zero.
func TraceID(n uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], mix(n)|1)
	binary.BigEndian.PutUint64(id[8:], mix(n^0x5bd1e995))
	return id
}

func spanID(trace uint64, span int) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], mix(trace<<16|uint64(span))|1)
	return id
}

// mix is splitmix64: cheap, deterministic, well spread.
func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

var services = []string{"frontend", "checkout", "payment", "inventory", "shipping"}

const baseTime = 1_700_000_000_000_000_000

// Batch returns spans [firstSpan, firstSpan+spansEach) of traces
// [firstTrace, firstTrace+traces), grouped per service as an SDK exports
// them. Span 0 of a trace is its root; span k>0 is a child of span (k-1)/2.
func Batch(firstTrace uint64, traces int, firstSpan, spansEach int) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := make(map[string]ptrace.SpanSlice, len(services))
	for t := 0; t < traces; t++ {
		tn := firstTrace + uint64(t)
		for k := firstSpan; k < firstSpan+spansEach; k++ {
			svc := services[k%len(services)]
			spans, ok := bySvc[svc]
			if !ok {
				rs := td.ResourceSpans().AppendEmpty()
				res := rs.Resource().Attributes()
				res.PutStr("service.name", svc)
				res.PutStr("service.version", "1.4.2")
				res.PutStr("deployment.environment.name", "production")
				res.PutStr("host.name", "node-"+svc+"-7f9c")
				res.PutStr("telemetry.sdk.language", "go")
				res.PutStr("telemetry.sdk.name", "opentelemetry")
				res.PutStr("telemetry.sdk.version", "1.46.0")
				ss := rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
				ss.Scope().SetVersion("0.61.0")
				spans = ss.Spans()
				bySvc[svc] = spans
			}
			addSpan(spans.AppendEmpty(), tn, k, svc)
		}
	}
	return td
}

func addSpan(s ptrace.Span, trace uint64, k int, svc string) {
	s.SetTraceID(TraceID(trace))
	s.SetSpanID(spanID(trace, k))
	if k > 0 {
		s.SetParentSpanID(spanID(trace, (k-1)/2))
	}
	start := baseTime + trace*1_000_000_000 + uint64(k)*1_000_000
	s.SetStartTimestamp(pcommon.Timestamp(start))
	s.SetEndTimestamp(pcommon.Timestamp(start + 500_000 + uint64(k%7)*100_000))
	a := s.Attributes()
	if k%2 == 0 {
		s.SetKind(ptrace.SpanKindServer)
		s.SetName(fmt.Sprintf("GET /api/%s/{id}", svc))
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", "/api/"+svc+"/{id}")
		a.PutStr("url.path", fmt.Sprintf("/api/%s/%d", svc, trace%10000))
		a.PutInt("http.response.status_code", 200)
		a.PutStr("user_agent.original", "Go-http-client/1.1")
	} else {
		s.SetKind(ptrace.SpanKindClient)
		s.SetName("SELECT orders")
		a.PutStr("db.system.name", "postgresql")
		a.PutStr("db.query.text", "SELECT id, total FROM orders WHERE customer_id = $1")
		a.PutStr("server.address", "db-"+svc)
		a.PutInt("server.port", 5432)
	}
	if k == 0 {
		a.PutStr("call.id", fmt.Sprintf("%08x-0000-4000-8000-%012x", uint32(trace), trace))
	}
}
