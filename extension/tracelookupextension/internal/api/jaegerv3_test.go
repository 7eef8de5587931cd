// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// The api_v3 shapes, as jaeger-idl's OpenAPI document (swagger/api_v3)
// defines them, decoded strictly.
type v3Error struct {
	Error struct {
		GRPCCode   int    `json:"grpcCode"`
		HTTPCode   int    `json:"httpCode"`
		Message    string `json:"message"`
		HTTPStatus string `json:"httpStatus"`
	} `json:"error"`
}

type v3Summaries struct {
	Summaries []struct {
		TraceID              string `json:"traceId"`
		RootServiceName      string `json:"rootServiceName"`
		RootOperationName    string `json:"rootOperationName"`
		MinStartTimeUnixNano string `json:"minStartTimeUnixNano"`
		MaxEndTimeUnixNano   string `json:"maxEndTimeUnixNano"`
		SpanCount            int32  `json:"spanCount"`
		ErrorSpanCount       int32  `json:"errorSpanCount"`
		OrphanSpanCount      int32  `json:"orphanSpanCount"`
		Services             []struct {
			Name           string `json:"name"`
			SpanCount      int32  `json:"spanCount"`
			ErrorSpanCount int32  `json:"errorSpanCount"`
		} `json:"services"`
	} `json:"summaries"`
	NextPageToken string `json:"nextPageToken"`
}

// v3Result reads the result envelope with OTLP's own JSON unmarshaller.
func v3Result(t *testing.T, r response) ptrace.Traces {
	t.Helper()
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	decodeStrict(t, r.body, &env)
	require.NotEmpty(t, env.Result, "result is always present on a 200")
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(env.Result)
	require.NoError(t, err)
	return td
}

func v3Window() string {
	from := time.Unix(0, int64(t0)).Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	to := time.Unix(0, int64(t0)).Add(time.Minute).UTC().Format(time.RFC3339Nano)
	return "query.start_time_min=" + url.QueryEscape(from) + "&query.start_time_max=" + url.QueryEscape(to)
}

func TestJaegerV3Listings(t *testing.T) {
	h := fixtureHandler(t, Options{})
	var services struct {
		Services []string `json:"services"`
	}
	decodeStrict(t, get(t, h, http.MethodGet, "/api/v3/services").body, &services)
	assert.Equal(t, []string{"frontend", "payment"}, services.Services)

	empty := NewHandler(store.New(store.Config{MaxBytes: 1 << 20}), Options{})
	r := get(t, empty, http.MethodGet, "/api/v3/services")
	assert.JSONEq(t, `{"services":[]}`, string(r.body), "the key is always present")

	type op struct {
		Name     string `json:"name"`
		SpanKind string `json:"spanKind"`
	}
	var ops struct {
		Operations []op `json:"operations"`
	}
	decodeStrict(t, get(t, h, http.MethodGet, "/jaeger/api/v3/operations?service=payment&spanKind=client").body, &ops)
	assert.Equal(t, []op{{"SELECT card", "client"}}, ops.Operations)
	r = get(t, h, http.MethodGet, "/api/v3/operations?service=payment")
	assert.NotContains(t, string(r.body), "null")

	r = get(t, h, http.MethodGet, "/api/v3/operations")
	assert.Equal(t, http.StatusBadRequest, r.code)
	var e v3Error
	decodeStrict(t, r.body, &e)
	assert.Equal(t, 3, e.Error.GRPCCode)
	assert.Equal(t, 400, e.Error.HTTPCode)
	assert.Equal(t, "Bad Request", e.Error.HTTPStatus)
}

func TestJaegerV3Trace(t *testing.T) {
	h := fixtureHandler(t, Options{})
	r := get(t, h, http.MethodGet, "/api/v3/traces/"+fixtureHex+"?startTime=2023-11-14T22:13:20Z")
	td := v3Result(t, r)
	assert.Equal(t, 5, td.SpanCount())
	assert.Contains(t, string(r.body), `"traceId":"`+fixtureHex+`"`, "hex ids")

	r = get(t, h, http.MethodGet, "/api/v3/traces/0123456789abcdef0123456789abcdef")
	assert.Equal(t, http.StatusNotFound, r.code)
	var e v3Error
	decodeStrict(t, r.body, &e)
	assert.Equal(t, 5, e.Error.GRPCCode)
	assert.Equal(t, "trace not found", e.Error.Message)
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/api/v3/traces/xyz").code)
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/api/v3/traces/"+fixtureHex+"?endTime=today").code)
}

func TestJaegerV3Search(t *testing.T) {
	h := fixtureHandler(t, Options{})
	for _, tc := range []struct {
		query string
		spans int
	}{
		{"query.service_name=payment", 5},
		{"query.serviceName=payment&query.operationName=charge+card", 5},
		{"query.service_name=payment&query.operation_name=GET+%2Fcheckout", 0},
		{"query.service_name=payment&query.attributes=" + url.QueryEscape(`{"db.system":"postgresql"}`), 5},
		{"query.service_name=frontend&query.duration_min=200ms", 5},
		{"query.service_name=frontend&query.durationMax=0.1s", 0},
		{"query.service_name=nobody", 0},
	} {
		td := v3Result(t, get(t, h, http.MethodGet, "/api/v3/traces?"+tc.query+"&"+v3Window()))
		assert.Equal(t, tc.spans, td.SpanCount(), tc.query)
	}
	for _, q := range []string{
		"query.service_name=payment", // no window
		"query.service_name=payment&query.start_time_min=yesterday&query.start_time_max=2030-01-01T00:00:00Z",
		"query.service_name=payment&query.filter=%7B%7D&" + v3Window(),
		"query.service_name=payment&query.duration_min=fast&" + v3Window(),
		"query.service_name=payment&query.search_depth=-1&" + v3Window(),
		"query.service_name=payment&query.attributes=nope&" + v3Window(),
		"query.service_name=payment&query.pagination.page_token=bad&" + v3Window(),
		"query.service_name=payment&query.pagination.page_size=0&" + v3Window(),
		"query.service_name=payment&query.start_time_min=2030-01-01T00:00:00Z&query.start_time_max=2030-01-01T00:00:00Z",
	} {
		r := get(t, h, http.MethodGet, "/api/v3/traces?"+q)
		assert.Equal(t, http.StatusBadRequest, r.code, q)
		var e v3Error
		decodeStrict(t, r.body, &e)
		assert.Equal(t, 3, e.Error.GRPCCode)
	}
}

func TestJaegerV3TraceSummaries(t *testing.T) {
	h := fixtureHandler(t, Options{})
	var s v3Summaries
	r := get(t, h, http.MethodGet, "/api/v3/trace-summaries?query.service_name=payment&"+v3Window())
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	decodeStrict(t, r.body, &s)
	require.Len(t, s.Summaries, 1)
	sum := s.Summaries[0]
	assert.Equal(t, fixtureHex, sum.TraceID)
	assert.Equal(t, "frontend", sum.RootServiceName)
	assert.Equal(t, "GET /checkout", sum.RootOperationName)
	assert.Equal(t, "1700000000000000000", sum.MinStartTimeUnixNano)
	assert.Equal(t, "1700000000250000000", sum.MaxEndTimeUnixNano)
	assert.Equal(t, int32(5), sum.SpanCount)
	assert.Equal(t, int32(1), sum.ErrorSpanCount)
	assert.Equal(t, int32(1), sum.OrphanSpanCount)
	require.Len(t, sum.Services, 2)
	assert.Equal(t, "frontend", sum.Services[0].Name, "sorted by name")
	assert.Equal(t, int32(2), sum.Services[0].SpanCount)
	assert.Equal(t, "payment", sum.Services[1].Name)
	assert.Equal(t, int32(3), sum.Services[1].SpanCount)
	assert.Equal(t, int32(1), sum.Services[1].ErrorSpanCount)
	assert.Empty(t, s.NextPageToken)
}

// Pages follow nextPageToken without duplicates or gaps.
func TestJaegerV3SummaryPages(t *testing.T) {
	st := fixtureCopies(5, time.Microsecond)
	h := NewHandler(st, Options{})
	seen := map[string]bool{}
	token := ""
	for page := 0; page < 10; page++ {
		target := "/api/v3/trace-summaries?query.service_name=frontend&query.pagination.page_size=2&" + v3Window()
		if token != "" {
			target += "&query.pagination.page_token=" + url.QueryEscape(token)
		}
		var s v3Summaries
		decodeStrict(t, get(t, h, http.MethodGet, target).body, &s)
		for _, sum := range s.Summaries {
			assert.False(t, seen[sum.TraceID], "no duplicates")
			seen[sum.TraceID] = true
		}
		if token = s.NextPageToken; token == "" {
			break
		}
	}
	assert.Len(t, seen, 5)
}

// query.start_time_max is exclusive, as the document says.
func TestJaegerV3WindowEnd(t *testing.T) {
	h := fixtureHandler(t, Options{})
	at := func(d time.Duration) string {
		return url.QueryEscape(time.Unix(0, int64(t0)).Add(d).UTC().Format(time.RFC3339Nano))
	}
	for end, want := range map[time.Duration]int{0: 0, time.Nanosecond: 5} {
		td := v3Result(t, get(t, h, http.MethodGet, "/api/v3/traces?query.service_name=payment&query.start_time_min="+at(-time.Hour)+"&query.start_time_max="+at(end)))
		assert.Equal(t, want, td.SpanCount(), end)
	}
}

// A summary lists every service of its trace, as the document asks, not
// the native summary's first 50.
func TestJaegerV3SummaryListsEveryService(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 16 << 20})
	td := ptrace.NewTraces()
	for i := range 60 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%02d", i))
		parent := pcommon.SpanID{}
		if i > 0 {
			parent = pcommon.SpanID{1}
		}
		addSpan(rs.ScopeSpans().AppendEmpty(), pcommon.SpanID{byte(i + 1)}, parent, "op", ptrace.SpanKindServer, time.Duration(i)*time.Millisecond, time.Second)
	}
	st.Ingest("", td)
	h := NewHandler(st, Options{})
	var s v3Summaries
	decodeStrict(t, get(t, h, http.MethodGet, "/api/v3/trace-summaries?query.service_name=svc-59&"+v3Window()).body, &s)
	require.Len(t, s.Summaries, 1)
	assert.Len(t, s.Summaries[0].Services, 60)
	assert.Equal(t, "svc-00", s.Summaries[0].Services[0].Name)
}

// Jaeger names the operations' kind parameter spanKind, and still reads
// its deprecated span_kind.
func TestJaegerV3OperationsKindParameter(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	for _, param := range []string{"spanKind", "span_kind"} {
		r := get(t, h, http.MethodGet, "/api/v3/operations?service=frontend&"+param+"=server")
		require.Equal(t, http.StatusOK, r.code)
		assert.JSONEq(t, `{"operations":[{"name":"GET /checkout","spanKind":"server"}]}`, string(r.body), param)
	}
}
