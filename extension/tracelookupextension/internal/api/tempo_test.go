// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// traceByIDResponse is Tempo's tempopb.TraceByIDResponse, decoded as its
// message definition says and refusing anything else:
//
//	message TraceByIDResponse {
//	  Trace trace = 1;              // wire-identical to OTLP TracesData
//	  TraceByIDMetrics metrics = 2;
//	  PartialStatus status = 3;     // COMPLETE = 0, PARTIAL = 1
//	  string message = 4;
//	}
type traceByIDResponse struct {
	trace    ptrace.Traces
	hasTrace bool
	status   uint64
	message  string
}

func decodeTraceByIDResponse(t *testing.T, b []byte) traceByIDResponse {
	t.Helper()
	var out traceByIDResponse
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, n, 0, "a tag")
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			require.GreaterOrEqual(t, n, 0)
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(v)
			require.NoError(t, err, "the trace is an OTLP TracesData")
			out.trace, out.hasTrace = td, true
			b = b[n:]
		case num == 2 && typ == protowire.BytesType:
			_, n := protowire.ConsumeBytes(b)
			require.GreaterOrEqual(t, n, 0)
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			require.GreaterOrEqual(t, n, 0)
			require.LessOrEqual(t, v, uint64(1), "PartialStatus is COMPLETE or PARTIAL")
			out.status = v
			b = b[n:]
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			require.GreaterOrEqual(t, n, 0)
			out.message = v
			b = b[n:]
		default:
			t.Fatalf("field %d (wire type %d) is not in TraceByIDResponse", num, typ)
		}
	}
	return out
}

func getWith(t *testing.T, h http.Handler, target string, header map[string]string) response {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, body: rec.Body.Bytes(), hdr: rec.Header()}
}

var protobufAccept = map[string]string{"Accept": "application/protobuf"}

// spanNames lists a trace's span names by service.
func spanNames(td ptrace.Traces) map[string][]string {
	out := map[string][]string{}
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				out[svc.Str()] = append(out[svc.Str()], s.Name())
			}
		}
	}
	return out
}

func findSpan(td ptrace.Traces, id pcommon.SpanID) (ptrace.Span, bool) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if s.SpanID() == id {
					return s, true
				}
			}
		}
	}
	return ptrace.Span{}, false
}

func TestTempoEcho(t *testing.T) {
	h := fixtureHandler(t, Options{})
	r := get(t, h, http.MethodGet, "/api/echo")
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "echo", string(r.body))
	assert.Equal(t, "echo", string(get(t, h, http.MethodGet, "/tempo/api/echo").body))

	var info struct {
		Version   string `json:"version"`
		Revision  string `json:"revision"`
		Branch    string `json:"branch"`
		BuildUser string `json:"buildUser"`
		BuildDate string `json:"buildDate"`
		GoVersion string `json:"goVersion"`
	}
	r = get(t, h, http.MethodGet, "/api/status/buildinfo")
	require.Equal(t, http.StatusOK, r.code)
	decodeStrict(t, r.body, &info)
	assert.Equal(t, tempoAPIVersion, info.Version)
}

func TestTempoTraceByIDProtobuf(t *testing.T) {
	h := fixtureHandler(t, Options{})
	for _, id := range []string{fixtureHex, strings.ToUpper(fixtureHex)} {
		r := getWith(t, h, "/api/v2/traces/"+id+"?start=1700000000&end=1700000100", protobufAccept)
		require.Equal(t, http.StatusOK, r.code, string(r.body))
		assert.Equal(t, "application/protobuf", r.hdr.Get("Content-Type"))
		resp := decodeTraceByIDResponse(t, r.body)
		require.True(t, resp.hasTrace)
		assert.Zero(t, resp.status, "COMPLETE")
		assert.Empty(t, resp.message)
		assert.Equal(t, map[string][]string{
			"frontend": {"GET /checkout", "POST payment"},
			"payment":  {"charge card", "async audit", "SELECT card"},
		}, spanNames(resp.trace))
		charge, ok := findSpan(resp.trace, chargeID)
		require.True(t, ok)
		assert.Equal(t, ptrace.StatusCodeError, charge.Status().Code())
		assert.Equal(t, "card declined", charge.Status().Message())
		assert.Equal(t, clientID, charge.ParentSpanID())
		assert.Equal(t, "exception", charge.Events().At(0).Name())
		assert.Equal(t, pcommon.TraceID{1}, charge.Links().At(0).TraceID())
		amount, _ := charge.Attributes().Get("amount")
		assert.InDelta(t, 42.5, amount.Double(), 0)
		assert.Equal(t, t0+pcommon.Timestamp(20*time.Millisecond), charge.StartTimestamp())
		root, _ := findSpan(resp.trace, rootID)
		assert.True(t, root.ParentSpanID().IsEmpty())
		code, _ := root.Attributes().Get("http.response.status_code")
		assert.Equal(t, int64(500), code.Int())
	}
}

func TestTempoTraceByIDPartial(t *testing.T) {
	h := fixtureHandler(t, Options{MaxResponseSpans: 2})
	r := getWith(t, h, "/api/v2/traces/"+fixtureHex, protobufAccept)
	require.Equal(t, http.StatusOK, r.code)
	resp := decodeTraceByIDResponse(t, r.body)
	assert.Equal(t, uint64(1), resp.status, "PARTIAL")
	assert.Contains(t, resp.message, "max_response_spans")
	assert.Equal(t, 2, resp.trace.SpanCount())
	assert.Equal(t, "max_response_spans", r.hdr.Get(truncatedHeader))

	// Bytes: fewer spans until the answer fits.
	whole := len(getWith(t, fixtureHandler(t, Options{}), "/api/v2/traces/"+fixtureHex, protobufAccept).body)
	limit := whole * 2 / 3
	h = fixtureHandler(t, Options{MaxResponseBytes: limit})
	r = getWith(t, h, "/api/v2/traces/"+fixtureHex, protobufAccept)
	resp = decodeTraceByIDResponse(t, r.body)
	assert.Equal(t, uint64(1), resp.status)
	assert.Contains(t, resp.message, "max_response_bytes")
	assert.Less(t, resp.trace.SpanCount(), 5)
	assert.Positive(t, resp.trace.SpanCount())
	assert.LessOrEqual(t, len(r.body), limit+len(resp.message)+16, "the trace fits; the status and message come on top")
}

func TestTempoTraceByIDJSON(t *testing.T) {
	h := fixtureHandler(t, Options{})
	r := get(t, h, http.MethodGet, "/api/v2/traces/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	var resp struct {
		Trace   json.RawMessage `json:"trace"`
		Status  string          `json:"status"`
		Message string          `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&resp))
	assert.Empty(t, resp.Status)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(resp.Trace)
	require.NoError(t, err)
	assert.Equal(t, 5, td.SpanCount())
	assert.Contains(t, string(resp.Trace), `"traceId":"`+fixtureHex+`"`, "hex ids, the OTLP/JSON rule")

	h = fixtureHandler(t, Options{MaxResponseSpans: 1})
	r = get(t, h, http.MethodGet, "/api/v2/traces/"+fixtureHex)
	require.NoError(t, json.Unmarshal(r.body, &resp))
	assert.Equal(t, "PARTIAL", resp.Status)
}

func TestTempoTraceV1(t *testing.T) {
	h := fixtureHandler(t, Options{})
	// Protobuf: the Trace message, which OTLP's unmarshaller reads (as Grafana does).
	for _, path := range []string{"/api/traces/", "/tempo/api/traces/"} {
		r := getWith(t, h, path+fixtureHex, protobufAccept)
		require.Equal(t, http.StatusOK, r.code, string(r.body))
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r.body)
		require.NoError(t, err)
		assert.Equal(t, 5, td.SpanCount())
	}
	// JSON: the resource spans are "batches".
	r := get(t, h, http.MethodGet, "/tempo/api/traces/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code)
	var v1 struct {
		Batches json.RawMessage `json:"batches"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v1))
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(`{"resourceSpans":` + string(v1.Batches) + `}`))
	require.NoError(t, err)
	assert.Equal(t, 5, td.SpanCount())
}

func TestTempoTraceIDs(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 16 << 20})
	short := pcommon.TraceID{13: 0xab, 14: 0xcd, 15: 0xef}
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(short)
	s.SetSpanID(pcommon.SpanID{1})
	s.SetName("short")
	st.Ingest("", td)
	h := NewHandler(st, Options{})
	for _, id := range []string{"abcdef", "ABCDEF", "0abcdef", "0000000000abcdef", "00000000000000000000000000abcdef", "11259375"} {
		r := getWith(t, h, "/api/v2/traces/"+id, protobufAccept)
		assert.Equal(t, http.StatusOK, r.code, id)
	}
	for _, id := range []string{"xyz", strings.Repeat("a", 33), "0", "00000000000000000000000000000000"} {
		r := get(t, h, http.MethodGet, "/api/v2/traces/"+id)
		assert.Equal(t, http.StatusBadRequest, r.code, id)
		assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"))
		assert.Contains(t, string(r.body), "invalid trace id")
	}
	r := get(t, h, http.MethodGet, "/api/v2/traces/")
	assert.Equal(t, http.StatusBadRequest, r.code)
	r = getWith(t, h, "/api/v2/traces/abcdee", protobufAccept)
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "trace not found\n", string(r.body))
	r = get(t, h, http.MethodGet, "/api/v2/traces/abcdef?start=yesterday")
	assert.Equal(t, http.StatusBadRequest, r.code)
	r = get(t, h, http.MethodPost, "/api/v2/traces/abcdef")
	assert.Equal(t, http.StatusMethodNotAllowed, r.code)
	assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"))
}

// tempoSearchResponse is Tempo's SearchResponse as the pinned client
// knows it; unknown fields are refused.
type tempoSearchResponse struct {
	Traces []struct {
		TraceID           string `json:"traceID"`
		RootServiceName   string `json:"rootServiceName"`
		RootTraceName     string `json:"rootTraceName"`
		StartTimeUnixNano string `json:"startTimeUnixNano"`
		DurationMs        *int64 `json:"durationMs"`
		SpanSets          []struct {
			Spans []struct {
				SpanID            string `json:"spanID"`
				Name              string `json:"name"`
				StartTimeUnixNano string `json:"startTimeUnixNano"`
				DurationNanos     string `json:"durationNanos"`
				Attributes        []struct {
					Key   string         `json:"key"`
					Value map[string]any `json:"value"`
				} `json:"attributes"`
			} `json:"spans"`
			Matched int `json:"matched"`
		} `json:"spanSets"`
	} `json:"traces"`
	Metrics struct {
		InspectedTraces int `json:"inspectedTraces"`
	} `json:"metrics"`
}

func tempoSearch(t *testing.T, h http.Handler, q string, more string) (tempoSearchResponse, response) {
	t.Helper()
	r := get(t, h, http.MethodGet, "/api/search?q="+url.QueryEscape(q)+more)
	var out tempoSearchResponse
	if r.code == http.StatusOK {
		decodeStrict(t, r.body, &out)
	}
	return out, r
}

func TestTempoSearch(t *testing.T) {
	h := fixtureHandler(t, Options{})
	res, r := tempoSearch(t, h, `{ resource.service.name = "payment" && status = error }`, "&limit=5&spss=2&start=1699999999&end=1700000001")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Len(t, res.Traces, 1)
	tr := res.Traces[0]
	assert.Equal(t, fixtureHex, tr.TraceID)
	assert.Equal(t, "frontend", tr.RootServiceName)
	assert.Equal(t, "GET /checkout", tr.RootTraceName)
	assert.Equal(t, "1700000000000000000", tr.StartTimeUnixNano)
	require.NotNil(t, tr.DurationMs)
	assert.Equal(t, int64(250), *tr.DurationMs)
	require.Len(t, tr.SpanSets, 1)
	assert.Equal(t, 1, tr.SpanSets[0].Matched)
	sp := tr.SpanSets[0].Spans[0]
	assert.Equal(t, hex.EncodeToString(chargeID[:]), sp.SpanID)
	assert.Equal(t, "charge card", sp.Name)
	assert.Equal(t, "170000000", sp.DurationNanos)
	require.Len(t, sp.Attributes, 1)
	assert.Equal(t, "service.name", sp.Attributes[0].Key)
	assert.Equal(t, map[string]any{"stringValue": "payment"}, sp.Attributes[0].Value)

	// The span-level conditions hold on one span: no frontend span failed.
	res, _ = tempoSearch(t, h, `{ resource.service.name = "frontend" && status = error }`, "")
	assert.Empty(t, res.Traces)
	res, _ = tempoSearch(t, h, `{ span.http.response.status_code >= 500 && kind = server }`, "")
	require.Len(t, res.Traces, 1)
	assert.Equal(t, map[string]any{"intValue": "500"}, res.Traces[0].SpanSets[0].Spans[0].Attributes[0].Value)
	res, _ = tempoSearch(t, h, `{ name =~ "charge.*" || name = "SELECT card" }`, "&spss=1")
	require.Len(t, res.Traces, 1)
	assert.Equal(t, 2, res.Traces[0].SpanSets[0].Matched)
	assert.Len(t, res.Traces[0].SpanSets[0].Spans, 1)
	res, _ = tempoSearch(t, h, `{ traceDuration > 1s }`, "")
	assert.Empty(t, res.Traces)
	res, _ = tempoSearch(t, h, `{}`, "")
	assert.Len(t, res.Traces, 1)
	res, _ = tempoSearch(t, h, `{}`, "&start=1800000000&end=1800000001")
	assert.Empty(t, res.Traces)

	for _, tc := range []struct{ q, more, says string }{
		{`{ name = "a" } | count() > 1`, "", "not supported"},
		{`{ name = `, "", "invalid TraceQL query"},
		{`{}`, "&limit=0", "invalid limit"},
		{`{}`, "&limit=1001", "invalid limit"},
		{`{}`, "&spss=x", "invalid spss"},
		{`{}`, "&start=5&end=4", "start is after end"},
		{`{}`, "&end=soon", "invalid end"},
		{`{}`, "&tags=a%3Db", "use q"},
		{`{}`, "&minDuration=fast", "invalid minDuration"},
	} {
		_, r := tempoSearch(t, h, tc.q, tc.more)
		assert.Equal(t, http.StatusBadRequest, r.code, tc.q+tc.more)
		assert.Contains(t, string(r.body), tc.says)
		assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"))
	}
	off := NewHandler(store.New(store.Config{MaxBytes: 1 << 20, NoSearch: true}), Options{NoSearch: true})
	_, r = tempoSearch(t, off, `{}`, "")
	assert.Equal(t, http.StatusNotFound, r.code)
}

func TestTempoTags(t *testing.T) {
	h := fixtureHandler(t, Options{})
	var v2 struct {
		Scopes []struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		} `json:"scopes"`
	}
	r := get(t, h, http.MethodGet, "/api/v2/search/tags")
	require.Equal(t, http.StatusOK, r.code)
	decodeStrict(t, r.body, &v2)
	require.Len(t, v2.Scopes, 3)
	assert.Equal(t, "resource", v2.Scopes[0].Name)
	assert.Equal(t, []string{"deployment.environment", "service.name"}, v2.Scopes[0].Tags)
	assert.Equal(t, "span", v2.Scopes[1].Name)
	assert.Contains(t, v2.Scopes[1].Tags, "http.route")
	assert.Contains(t, v2.Scopes[1].Tags, "db.system")
	assert.Equal(t, "intrinsic", v2.Scopes[2].Name)
	assert.Contains(t, v2.Scopes[2].Tags, "status")

	r = get(t, h, http.MethodGet, "/api/v2/search/tags?scope=intrinsic")
	decodeStrict(t, r.body, &v2)
	require.Len(t, v2.Scopes, 1)
	assert.Equal(t, "intrinsic", v2.Scopes[0].Name)
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/api/v2/search/tags?scope=event").code)

	var v1 struct {
		TagNames []string `json:"tagNames"`
	}
	decodeStrict(t, get(t, h, http.MethodGet, "/api/search/tags").body, &v1)
	assert.Contains(t, v1.TagNames, "service.name")
	assert.Contains(t, v1.TagNames, "http.route")
}

func TestTempoTagValues(t *testing.T) {
	h := fixtureHandler(t, Options{})
	type typed struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	values := func(tag, q string) []typed {
		t.Helper()
		var v struct {
			TagValues []typed `json:"tagValues"`
		}
		r := get(t, h, http.MethodGet, "/api/v2/search/tag/"+url.PathEscape(tag)+"/values?q="+url.QueryEscape(q))
		require.Equal(t, http.StatusOK, r.code, string(r.body))
		decodeStrict(t, r.body, &v)
		return v.TagValues
	}
	assert.ElementsMatch(t, []typed{{"string", "frontend"}, {"string", "payment"}}, values("resource.service.name", ""))
	assert.Empty(t, values("span.service.name", ""))
	assert.Equal(t, []typed{{"int", "500"}}, values("span.http.response.status_code", ""))
	assert.Equal(t, []typed{{"float", "42.5"}}, values(".amount", ""))
	assert.Equal(t, []typed{{"bool", "true"}}, values("span.retried", ""))
	assert.Equal(t, []typed{{"keyword", "unset"}, {"keyword", "ok"}, {"keyword", "error"}}, values("status", ""))
	assert.Contains(t, values("kind", ""), typed{"keyword", "server"})
	assert.Contains(t, values("name", ""), typed{"string", "charge card"})
	assert.ElementsMatch(t, []typed{{"string", "frontend"}, {"string", "payment"}}, values("rootServiceName", ""))
	// q narrows the values to the matching spans.
	assert.Equal(t, []typed{{"string", "charge card"}}, values("name", `{ status = error }`))
	assert.Equal(t, []typed{{"string", "payment"}}, values("resource.service.name", `{ status = error }`))

	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/api/v2/search/tag/event.name/values").code)
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/api/v2/search/tag/name/values?q=%7B").code)

	var v1 struct {
		TagValues []string `json:"tagValues"`
	}
	decodeStrict(t, get(t, h, http.MethodGet, "/api/search/tag/service.name/values").body, &v1)
	assert.ElementsMatch(t, []string{"frontend", "payment"}, v1.TagValues)
}

func TestTempoTenancy(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 16 << 20})
	first, _ := fixtureBatches()
	st.Ingest("team-a", first)
	h := NewHandler(st, Options{})
	r := getWith(t, h, "/api/v2/traces/"+fixtureHex, map[string]string{"X-Scope-OrgID": "team-a"})
	assert.Equal(t, http.StatusOK, r.code)
	r = getWith(t, h, "/api/v2/traces/"+fixtureHex, map[string]string{"X-Scope-OrgID": "team-b"})
	assert.Equal(t, http.StatusNotFound, r.code)
	r = getWith(t, h, "/api/search?q=%7B%7D", map[string]string{"X-Scope-OrgID": "team-b"})
	var res tempoSearchResponse
	decodeStrict(t, r.body, &res)
	assert.Empty(t, res.Traces)
	r = getWith(t, h, "/api/echo", map[string]string{"X-Scope-OrgID": "bad tenant!"})
	assert.Equal(t, http.StatusBadRequest, r.code)
	assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"))
}

func TestTempoRateLimit(t *testing.T) {
	h := fixtureHandler(t, Options{RateLimits: RateLimits{Tempo: RateLimit{RequestsPerMinute: 1}}})
	assert.Equal(t, http.StatusOK, get(t, h, http.MethodGet, "/api/echo").code)
	r := get(t, h, http.MethodGet, "/api/echo")
	assert.Equal(t, http.StatusTooManyRequests, r.code)
	assert.NotEmpty(t, r.hdr.Get("Retry-After"))
	// Other contracts keep their own budget.
	assert.Equal(t, http.StatusOK, get(t, h, http.MethodGet, "/api/services").code)
}
