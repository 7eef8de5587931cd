// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkTempoJaegerZipkin searches and opens the traces TestSearch sent
// (30 traces of GET /cart on shop calling charge on payments; trace 17's
// charge failed) through Tempo's, Jaeger's and Zipkin's APIs, as their
// clients call them: Grafana's Tempo data source asks for protobuf,
// Jaeger's and Zipkin's clients for JSON.
func checkTempoJaegerZipkin(t *testing.T, api string, sent []string) {
	failed := sent[17]

	// Tempo: the data source's health check, a TraceQL search, the trace.
	resp := mustDo(t, http.MethodGet, api+"/api/echo", nil)
	require.Equal(t, http.StatusOK, resp.Status)
	assert.Equal(t, "echo", string(resp.Body))
	resp = mustDo(t, http.MethodGet, api+"/api/status/buildinfo", nil)
	require.Equal(t, http.StatusOK, resp.Status)
	var info struct {
		Version string `json:"version"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &info))
	assert.NotEmpty(t, info.Version)
	q := `{ resource.service.name = "payments" && status = error }`
	resp = mustDo(t, http.MethodGet, api+"/api/search?q="+url.QueryEscape(q)+"&limit=20&spss=3", nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var search struct {
		Traces []struct {
			TraceID         string `json:"traceID"`
			RootServiceName string `json:"rootServiceName"`
			RootTraceName   string `json:"rootTraceName"`
			SpanSets        []struct {
				Spans []struct {
					Name string `json:"name"`
				} `json:"spans"`
				Matched int `json:"matched"`
			} `json:"spanSets"`
		} `json:"traces"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &search))
	require.Len(t, search.Traces, 1)
	assert.Equal(t, failed, search.Traces[0].TraceID)
	assert.Equal(t, "shop", search.Traces[0].RootServiceName)
	assert.Equal(t, "GET /cart", search.Traces[0].RootTraceName)
	assert.Equal(t, "charge", search.Traces[0].SpanSets[0].Spans[0].Name)

	resp = mustDo(t, http.MethodGet, api+"/api/v2/traces/"+failed, map[string]string{"Accept": "application/protobuf"})
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	td := traceByIDResponseTrace(t, resp.Body)
	assert.Equal(t, 2, td.SpanCount())
	resp = mustDo(t, http.MethodGet, api+"/api/traces/"+failed, map[string]string{"Accept": "application/protobuf"})
	require.Equal(t, http.StatusOK, resp.Status)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, 2, td.SpanCount())

	// Jaeger's JSON API: the data source's health check, a search, the trace.
	resp = mustDo(t, http.MethodGet, api+"/api/services", nil)
	assert.JSONEq(t, `{"data":["payments","shop"],"total":2,"limit":0,"offset":0,"errors":null}`, string(resp.Body))
	now := time.Now()
	us := func(ts time.Time) string { return strconv.FormatInt(ts.UnixMicro(), 10) }
	resp = mustDo(t, http.MethodGet, api+"/api/traces?service=payments&operation=charge&tags="+url.QueryEscape(`{"error":"true"}`)+
		"&start="+us(now.Add(-2*time.Hour))+"&end="+us(now)+"&limit=20", nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var jaeger struct {
		Data []struct {
			TraceID string `json:"traceID"`
			Spans   []struct {
				OperationName string `json:"operationName"`
			} `json:"spans"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &jaeger))
	require.Len(t, jaeger.Data, 1, "error=true is the failed span's status, as the mapping makes it a tag")
	assert.Equal(t, failed, jaeger.Data[0].TraceID)
	resp = mustDo(t, http.MethodGet, api+"/api/traces?service=payments&operation=charge&limit=5", nil)
	require.NoError(t, json.Unmarshal(resp.Body, &jaeger))
	require.Len(t, jaeger.Data, 5)
	assert.Equal(t, sent[29], jaeger.Data[0].TraceID, "newest first")
	assert.Len(t, jaeger.Data[0].Spans, 2)
	resp = mustDo(t, http.MethodGet, api+"/api/traces/"+failed, nil)
	require.Equal(t, http.StatusOK, resp.Status)
	require.NoError(t, json.Unmarshal(resp.Body, &jaeger))
	require.Len(t, jaeger.Data, 1)
	assert.Equal(t, failed, jaeger.Data[0].TraceID)

	// api_v3: summaries and the trace in OTLP/JSON.
	window := "query.start_time_min=" + url.QueryEscape(now.Add(-2*time.Hour).Format(time.RFC3339Nano)) +
		"&query.start_time_max=" + url.QueryEscape(now.Format(time.RFC3339Nano))
	resp = mustDo(t, http.MethodGet, api+"/api/v3/trace-summaries?query.service_name=payments&query.search_depth=100&"+window, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var summaries struct {
		Summaries []struct {
			TraceID        string `json:"traceId"`
			ErrorSpanCount int    `json:"errorSpanCount"`
		} `json:"summaries"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &summaries))
	require.Len(t, summaries.Summaries, 30)
	assert.Equal(t, 1, summaries.Summaries[29-17].ErrorSpanCount)
	resp = mustDo(t, http.MethodGet, api+"/api/v3/traces/"+failed, nil)
	require.Equal(t, http.StatusOK, resp.Status)
	var result struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &result))
	td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(result.Result)
	require.NoError(t, err)
	assert.Equal(t, 2, td.SpanCount())

	// Zipkin, under /zipkin.
	resp = mustDo(t, http.MethodGet, api+"/zipkin/api/v2/services", nil)
	assert.JSONEq(t, `["payments","shop"]`, string(resp.Body))
	resp = mustDo(t, http.MethodGet, api+"/zipkin/api/v2/traces?serviceName=payments&annotationQuery=error&lookback=86400000", nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var zipkin [][]struct {
		TraceID string            `json:"traceId"`
		Name    string            `json:"name"`
		Tags    map[string]string `json:"tags"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &zipkin))
	require.Len(t, zipkin, 1)
	require.Len(t, zipkin[0], 2)
	assert.Equal(t, failed, zipkin[0][0].TraceID)
	resp = mustDo(t, http.MethodGet, api+"/zipkin/api/v2/trace/"+failed, nil)
	require.Equal(t, http.StatusOK, resp.Status)
	require.NoError(t, json.Unmarshal(resp.Body, &zipkin[0]))
	assert.Len(t, zipkin[0], 2)
}

// traceByIDResponseTrace reads field 1 (the trace) of Tempo's TraceByIDResponse.
func traceByIDResponseTrace(t *testing.T, b []byte) ptrace.Traces {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, n, 0)
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		require.GreaterOrEqual(t, n, 0)
		if num == 1 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(v)
			require.NoError(t, err)
			return td
		}
		b = b[n:]
	}
	t.Fatal("no trace in the TraceByIDResponse")
	return ptrace.Traces{}
}
