// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The shapes of Jaeger's JSON query API (its UI model: the envelope,
// traces, spans, processes), decoded strictly.
type jaegerEnvelope[T any] struct {
	Data   T   `json:"data"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type jaegerTraceJSON struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		Flags         uint32 `json:"flags"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			TraceID string `json:"traceID"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime uint64     `json:"startTime"`
		Duration  uint64     `json:"duration"`
		Tags      []jaegerKV `json:"tags"`
		Logs      []struct {
			Timestamp uint64     `json:"timestamp"`
			Fields    []jaegerKV `json:"fields"`
		} `json:"logs"`
		ProcessID string   `json:"processID"`
		Warnings  []string `json:"warnings"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string     `json:"serviceName"`
		Tags        []jaegerKV `json:"tags"`
	} `json:"processes"`
	Warnings []string `json:"warnings"`
}

func tagOf(tags []jaegerKV, key string) (jaegerKV, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t, true
		}
	}
	return jaegerKV{}, false
}

func jaegerTraces(t *testing.T, h http.Handler, target string) (jaegerEnvelope[[]jaegerTraceJSON], response) {
	t.Helper()
	r := get(t, h, http.MethodGet, target)
	var env jaegerEnvelope[[]jaegerTraceJSON]
	decodeStrict(t, r.body, &env)
	return env, r
}

func TestJaegerServicesAndOperations(t *testing.T) {
	h := fixtureHandler(t, Options{})
	for _, prefix := range []string{"", "/jaeger"} {
		var services jaegerEnvelope[[]string]
		decodeStrict(t, get(t, h, http.MethodGet, prefix+"/api/services").body, &services)
		assert.Equal(t, []string{"frontend", "payment"}, services.Data)
		assert.Equal(t, 2, services.Total)
		assert.Nil(t, services.Errors)

		var names jaegerEnvelope[[]string]
		decodeStrict(t, get(t, h, http.MethodGet, prefix+"/api/services/payment/operations").body, &names)
		assert.Equal(t, []string{"SELECT card", "async audit", "charge card"}, names.Data)

		type op struct {
			Name     string `json:"name"`
			SpanKind string `json:"spanKind"`
		}
		var ops jaegerEnvelope[[]op]
		decodeStrict(t, get(t, h, http.MethodGet, prefix+"/api/operations?service=frontend&spanKind=server").body, &ops)
		assert.Equal(t, []op{{"GET /checkout", "server"}}, ops.Data)
		decodeStrict(t, get(t, h, http.MethodGet, prefix+"/api/operations?service=payment").body, &ops)
		assert.ElementsMatch(t, []op{{"charge card", "internal"}, {"async audit", "consumer"}, {"SELECT card", "client"}}, ops.Data)
	}
	r := get(t, h, http.MethodGet, "/api/operations")
	assert.Equal(t, http.StatusBadRequest, r.code)
	var env jaegerEnvelope[any]
	decodeStrict(t, r.body, &env)
	require.Len(t, env.Errors, 1)
	assert.Equal(t, 400, env.Errors[0].Code)
	assert.Nil(t, env.Data)
}

func TestJaegerTrace(t *testing.T) {
	h := fixtureHandler(t, Options{})
	env, r := jaegerTraces(t, h, "/api/traces/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Len(t, env.Data, 1)
	assert.Equal(t, 1, env.Total)
	tr := env.Data[0]
	assert.Equal(t, fixtureHex, tr.TraceID)
	require.Len(t, tr.Spans, 5)
	assert.Nil(t, tr.Warnings)
	bySpan := map[string]int{}
	for i, s := range tr.Spans {
		bySpan[s.SpanID] = i
		assert.Equal(t, fixtureHex, s.TraceID)
	}
	root := tr.Spans[bySpan[hex.EncodeToString(rootID[:])]]
	assert.Equal(t, "GET /checkout", root.OperationName)
	assert.Empty(t, root.References)
	assert.Equal(t, uint64(t0)/1000, root.StartTime, "microseconds")
	assert.Equal(t, uint64(250_000), root.Duration)
	kind, _ := tagOf(root.Tags, "span.kind")
	assert.Equal(t, jaegerKV{"span.kind", "string", "server"}, kind)
	code, _ := tagOf(root.Tags, "http.response.status_code")
	assert.Equal(t, jaegerKV{"http.response.status_code", "int64", float64(500)}, code)
	scope, _ := tagOf(root.Tags, "otel.scope.name")
	assert.Equal(t, "example", scope.Value)
	proc := tr.Processes[root.ProcessID]
	assert.Equal(t, "frontend", proc.ServiceName)
	assert.Equal(t, []jaegerKV{{"deployment.environment", "string", "demo"}}, proc.Tags)

	charge := tr.Spans[bySpan[hex.EncodeToString(chargeID[:])]]
	require.Len(t, charge.References, 2)
	assert.Equal(t, "CHILD_OF", charge.References[0].RefType)
	assert.Equal(t, hex.EncodeToString(clientID[:]), charge.References[0].SpanID)
	assert.Equal(t, "FOLLOWS_FROM", charge.References[1].RefType)
	assert.Equal(t, "01000000000000000000000000000000", charge.References[1].TraceID, "the link's trace")
	assert.Equal(t, "0200000000000000", charge.References[1].SpanID)
	for key, want := range map[string]jaegerKV{
		"error":                   {"error", "bool", true},
		"otel.status_code":        {"otel.status_code", "string", "ERROR"},
		"otel.status_description": {"otel.status_description", "string", "card declined"},
		"amount":                  {"amount", "float64", 42.5},
		"tags":                    {"tags", "string", `["card","eu"]`},
	} {
		got, ok := tagOf(charge.Tags, key)
		assert.True(t, ok, key)
		assert.Equal(t, want, got, key)
	}
	require.Len(t, charge.Logs, 1)
	assert.Equal(t, (uint64(t0)+uint64(150*time.Millisecond))/1000, charge.Logs[0].Timestamp)
	assert.Equal(t, []jaegerKV{{"event", "string", "exception"}, {"exception.message", "string", "card declined"}}, charge.Logs[0].Fields)
	assert.Equal(t, "payment", tr.Processes[charge.ProcessID].ServiceName)
	assert.Len(t, tr.Processes, 2, "one process per distinct resource")

	// Not found is a 404 with the error in the envelope, never empty data.
	env, r = jaegerTraces(t, h, "/api/traces/0123456789abcdef0123456789abcdef")
	assert.Equal(t, http.StatusNotFound, r.code)
	require.Len(t, env.Errors, 1)
	assert.Equal(t, 404, env.Errors[0].Code)
	assert.Equal(t, "trace not found", env.Errors[0].Msg)
	assert.Nil(t, env.Data)
	_, r = jaegerTraces(t, h, "/api/traces/not-an-id")
	assert.Equal(t, http.StatusBadRequest, r.code)

	// Truncation is said in the trace's warnings.
	h = fixtureHandler(t, Options{MaxResponseSpans: 2})
	env, _ = jaegerTraces(t, h, "/jaeger/api/traces/"+fixtureHex)
	require.Len(t, env.Data, 1)
	assert.Len(t, env.Data[0].Spans, 2)
	require.Len(t, env.Data[0].Warnings, 1)
	assert.Contains(t, env.Data[0].Warnings[0], "max_response_spans")
}

// Grafana's Tempo data source asks GET /api/traces/{id} for protobuf;
// Jaeger's clients ask it for JSON.
func TestTracesPathSharedByTempoAndJaeger(t *testing.T) {
	h := fixtureHandler(t, Options{})
	r := getWith(t, h, "/api/traces/"+fixtureHex, protobufAccept)
	require.Equal(t, http.StatusOK, r.code)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r.body)
	require.NoError(t, err)
	assert.Equal(t, 5, td.SpanCount())
	r = getWith(t, h, "/api/traces/"+fixtureHex, map[string]string{"Accept": "application/json"})
	var env jaegerEnvelope[[]jaegerTraceJSON]
	decodeStrict(t, r.body, &env)
	assert.Len(t, env.Data, 1)
	r = getWith(t, h, "/api/traces/ffff", protobufAccept)
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"), "Tempo's errors for Tempo's client")
}

func TestJaegerSearch(t *testing.T) {
	h := fixtureHandler(t, Options{})
	us := func(ts time.Duration) string { return strconv.FormatInt((int64(t0)+int64(ts))/1000, 10) }
	window := "&start=" + us(-time.Second) + "&end=" + us(time.Second)
	for _, tc := range []struct {
		query string
		found bool
	}{
		{"service=payment", true},
		{"service=payment&operation=charge+card", true},
		{"service=payment&operation=GET+%2Fcheckout", false}, // the operation is frontend's
		{"service=payment&tags=" + url.QueryEscape(`{"db.system":"postgresql"}`), true},
		{"service=frontend&tags=" + url.QueryEscape(`{"db.system":"postgresql"}`), false},
		{"service=frontend&tags=" + url.QueryEscape(`{"http.response.status_code":"500"}`), true},
		{"service=frontend&tag=retried:true", true},
		{"service=frontend&minDuration=200ms", true},
		{"service=frontend&minDuration=300ms", false},
		{"service=frontend&maxDuration=100ms", false}, // span durations: 250 and 190 ms
		{"service=payment&maxDuration=10ms", true},
		{"service=payment&start=" + us(time.Hour), false},
		{"service=payment" + window + "&limit=1", true},
	} {
		env, r := jaegerTraces(t, h, "/api/traces?"+tc.query)
		require.Equal(t, http.StatusOK, r.code, tc.query+": "+string(r.body))
		if !tc.found {
			assert.Empty(t, env.Data, tc.query)
			continue
		}
		require.Len(t, env.Data, 1, tc.query)
		assert.Len(t, env.Data[0].Spans, 5, "whole traces, as Jaeger's search answers")
		assert.Equal(t, 1, env.Total)
	}
	env, _ := jaegerTraces(t, h, "/api/traces?traceID="+fixtureHex+"&traceID=0123456789abcdef")
	assert.Len(t, env.Data, 1)

	for _, q := range []string{"", "operation=x", "service=a&tags=notjson", "service=a&tag=nocolon", "service=a&minDuration=fast", "service=a&limit=-1", "service=a&start=yesterday", "traceID=zz"} {
		env, r := jaegerTraces(t, h, "/api/traces?"+q)
		assert.Equal(t, http.StatusBadRequest, r.code, q)
		require.Len(t, env.Errors, 1, q)
		assert.Equal(t, 400, env.Errors[0].Code)
	}

	// Past the response limits, the traces left out are named.
	st := fixtureCopies(3, 0)
	h2 := NewHandler(st, Options{MaxResponseSpans: 4})
	env, _ = jaegerTraces(t, h2, "/api/traces?service=frontend")
	assert.Len(t, env.Data, 1)
	assert.Equal(t, 1, env.Total)
	require.Len(t, env.Errors, 1)
	assert.Contains(t, env.Errors[0].Msg, "2 more matching traces")
}

func TestJaegerErrorsInTheirFormat(t *testing.T) {
	h := fixtureHandler(t, Options{RateLimits: RateLimits{Jaeger: RateLimit{RequestsPerMinute: 1}}})
	assert.Equal(t, http.StatusOK, get(t, h, http.MethodGet, "/api/services").code)
	r := get(t, h, http.MethodGet, "/api/services")
	assert.Equal(t, http.StatusTooManyRequests, r.code)
	var env jaegerEnvelope[any]
	decodeStrict(t, r.body, &env)
	assert.Equal(t, 429, env.Errors[0].Code)

	r = get(t, h, http.MethodDelete, "/api/services")
	assert.Equal(t, http.StatusMethodNotAllowed, r.code)
	decodeStrict(t, r.body, &env)

	var m map[string]any
	require.NoError(t, json.Unmarshal(get(t, h, http.MethodGet, "/jaeger/api/nothing").body, &m))
	assert.Contains(t, m, "errors")
}

// The tags the mapping makes of status and kind are searched as such.
func TestJaegerStatusAndKindTags(t *testing.T) {
	h := fixtureHandler(t, Options{})
	for _, tc := range []struct {
		tags  string
		found bool
	}{
		{`{"error":"true"}`, true},
		{`{"error":"true","amount":"42.5"}`, true},
		{`{"error":"true","db.system":"postgresql"}`, false}, // one span
		{`{"otel.status_code":"ERROR"}`, true},
		{`{"span.kind":"consumer"}`, true},
		{`{"span.kind":"server"}`, false}, // payment has no server span
	} {
		env, r := jaegerTraces(t, h, "/api/traces?service=payment&tags="+url.QueryEscape(tc.tags))
		require.Equal(t, http.StatusOK, r.code)
		assert.Equal(t, tc.found, len(env.Data) == 1, tc.tags)
	}
}
