// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// The fixture trace: two services, an error span with an event, a link, a
// span whose parent never arrives, and a late span that arrives in a second batch.
var (
	fixtureID = pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	rootID    = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	clientID  = pcommon.SpanID{0xaa, 0xa1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x75}
	chargeID  = pcommon.SpanID{0xbb, 0xb1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x76}
	orphanID  = pcommon.SpanID{0xcc, 0xc1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x77}
	lateID    = pcommon.SpanID{0xdd, 0xd1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x78}
	missingID = pcommon.SpanID{0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99}
	callID    = "3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a42"
	t0        = pcommon.Timestamp(1_700_000_000_000_000_000)
)

func addSpan(ss ptrace.ScopeSpans, id, parent pcommon.SpanID, name string, kind ptrace.SpanKind, start, end time.Duration) ptrace.Span {
	s := ss.Spans().AppendEmpty()
	s.SetTraceID(fixtureID)
	s.SetSpanID(id)
	s.SetParentSpanID(parent)
	s.SetName(name)
	s.SetKind(kind)
	s.SetStartTimestamp(t0 + pcommon.Timestamp(start))
	s.SetEndTimestamp(t0 + pcommon.Timestamp(end))
	return s
}

func fixtureBatches() (first, late ptrace.Traces) {
	first = ptrace.NewTraces()
	rs := first.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	rs.Resource().Attributes().PutStr("deployment.environment", "demo")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("example")
	root := addSpan(ss, rootID, pcommon.SpanID{}, "GET /checkout", ptrace.SpanKindServer, 0, 250*time.Millisecond)
	root.Attributes().PutStr("http.request.method", "GET")
	root.Attributes().PutStr("http.route", "/checkout")
	root.Attributes().PutInt("http.response.status_code", 500)
	root.Attributes().PutStr("call.id", callID)
	root.Attributes().PutStr("_internal", "hidden")
	client := addSpan(ss, clientID, rootID, "POST payment", ptrace.SpanKindClient, 10*time.Millisecond, 200*time.Millisecond)
	client.Attributes().PutStr("http.request.method", "POST")
	client.Attributes().PutBool("retried", true)

	rs2 := first.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "payment")
	ss2 := rs2.ScopeSpans().AppendEmpty()
	charge := addSpan(ss2, chargeID, clientID, "charge card", ptrace.SpanKindInternal, 20*time.Millisecond, 190*time.Millisecond)
	charge.Attributes().PutDouble("amount", 42.5)
	charge.Attributes().PutEmptySlice("tags").FromRaw([]any{"card", "eu"})
	charge.Status().SetCode(ptrace.StatusCodeError)
	charge.Status().SetMessage("card declined")
	ev := charge.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(t0 + pcommon.Timestamp(150*time.Millisecond))
	ev.Attributes().PutStr("exception.message", "card declined")
	link := charge.Links().AppendEmpty()
	link.SetTraceID(pcommon.TraceID{1})
	link.SetSpanID(pcommon.SpanID{2})
	link.Attributes().PutStr("link.reason", "retry")
	addSpan(ss2, orphanID, missingID, "async audit", ptrace.SpanKindConsumer, 30*time.Millisecond, 40*time.Millisecond)

	late = ptrace.NewTraces()
	rs3 := late.ResourceSpans().AppendEmpty()
	rs3.Resource().Attributes().PutStr("service.name", "payment")
	addSpan(rs3.ScopeSpans().AppendEmpty(), lateID, chargeID, "SELECT card", ptrace.SpanKindClient, 50*time.Millisecond, 60*time.Millisecond).
		Attributes().PutStr("db.system", "postgresql")
	return first, late
}

// fixtureHandler holds the fixture, received at fixed index times.
func fixtureHandler(t testing.TB, opts Options) *Handler {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	st := store.New(store.Config{MaxBytes: 64 << 20, MaxSpansPerTrace: 100, CallIDAttribute: "call.id", Now: func() time.Time { return now }})
	first, late := fixtureBatches()
	st.Ingest("", first)
	now = now.Add(time.Second)
	st.Ingest("", late)
	return NewHandler(st, opts)
}

type response struct {
	code int
	body []byte
	hdr  http.Header
}

func get(t *testing.T, h http.Handler, method, target string) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return response{code: rec.Code, body: rec.Body.Bytes(), hdr: rec.Header()}
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

// fixtureCopies stores n copies of the fixture's first batch: copy i has
// trace id byte 0 set to i+1 and starts i*shift later.
func fixtureCopies(n int, shift time.Duration) *store.Store {
	st := store.New(store.Config{MaxBytes: 16 << 20})
	for i := range n {
		first, _ := fixtureBatches()
		for _, rs := range first.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					id := s.TraceID()
					id[0] = byte(i + 1)
					s.SetTraceID(id)
					s.SetStartTimestamp(s.StartTimestamp() + pcommon.Timestamp(time.Duration(i)*shift))
				}
			}
		}
		st.Ingest("", first)
	}
	return st
}
