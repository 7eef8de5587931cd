// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
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

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// searchPage is GET /api/v1/traces's answer, decoded strictly.
type searchPage struct {
	Traces []struct {
		ID              string  `json:"id"`
		TraceID         string  `json:"trace_id"`
		OrganizationID  string  `json:"organization_id"`
		Name            string  `json:"name"`
		Status          string  `json:"status"`
		StartedAt       string  `json:"started_at"`
		CreatedAt       string  `json:"created_at"`
		ServiceName     *string `json:"service_name"`
		ExecutionID     *string `json:"execution_id"`
		ExecutionType   *string `json:"execution_type"`
		UserID          *string `json:"user_id"`
		UserEmail       *string `json:"user_email"`
		UserName        *string `json:"user_name"`
		UserAvatar      *string `json:"user_avatar"`
		EndedAt         string  `json:"ended_at"`
		DurationMS      int64   `json:"duration_ms"`
		SpanCount       int     `json:"span_count"`
		ErrorCount      int     `json:"error_count"`
		UpdatedAt       string  `json:"updated_at"`
		RootService     *string `json:"root_service"`
		RootName        *string `json:"root_name"`
		ServiceCount    int     `json:"service_count"`
		StartNano       uint64  `json:"start_time_unix_nano"`
		DurationNS      uint64  `json:"duration_ns"`
		IsTruncated     bool    `json:"is_truncated"`
		OrphanSpanCount int     `json:"orphan_span_count"`
		Services        []struct {
			Name       string `json:"name"`
			SpanCount  int    `json:"span_count"`
			ErrorCount int    `json:"error_count"`
		} `json:"services"`
		MatchedSpanCount int `json:"matched_span_count"`
		MatchedSpans     []struct {
			SpanID      string `json:"span_id"`
			Name        string `json:"name"`
			ServiceName string `json:"service_name"`
			StartNano   uint64 `json:"start_time_unix_nano"`
			DurationNS  uint64 `json:"duration_ns"`
		} `json:"matched_spans"`
	} `json:"traces"`
	Next    *string `json:"next"`
	Partial bool    `json:"partial"`
}

func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), string(body))
}

func TestSearchFindsTheFixture(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	r := get(t, h, http.MethodGet, "/api/v1/traces?service=payment&name=charge+card&attr=amount=42.50&kind=internal&status=error&min_duration=250ms&max_duration=1s&start=2023-11-14T22:13:20Z&end=1700000000000000001")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	var page searchPage
	decodeStrict(t, r.body, &page)
	require.Len(t, page.Traces, 1)
	s := page.Traces[0]
	hexID := hex.EncodeToString(fixtureID[:])
	assert.Equal(t, hexID, s.ID)
	assert.Equal(t, hexID, s.TraceID)
	assert.Equal(t, "default", s.OrganizationID)
	assert.Equal(t, "GET /checkout", s.Name)
	assert.Equal(t, "GET /checkout", *s.RootName)
	assert.Equal(t, "frontend", *s.ServiceName)
	assert.Equal(t, "frontend", *s.RootService)
	assert.Equal(t, "error", s.Status)
	assert.Equal(t, "2023-11-14T22:13:20.000000000Z", s.StartedAt)
	assert.Equal(t, "2023-11-14T22:13:20.250000000Z", s.EndedAt)
	assert.Equal(t, "2026-01-02T03:04:05.000000006Z", s.CreatedAt)
	assert.Equal(t, "2026-01-02T03:04:06.000000006Z", s.UpdatedAt)
	assert.Equal(t, int64(250), s.DurationMS)
	assert.Equal(t, uint64(250*time.Millisecond), s.DurationNS)
	assert.Equal(t, uint64(t0), s.StartNano)
	assert.Equal(t, 5, s.SpanCount)
	assert.Equal(t, 1, s.ErrorCount)
	assert.Equal(t, 1, s.OrphanSpanCount)
	assert.False(t, s.IsTruncated)
	assert.Nil(t, s.ExecutionID)
	require.Len(t, s.Services, 2)
	assert.Equal(t, 2, s.ServiceCount)
	assert.Equal(t, "frontend", s.Services[0].Name)
	assert.Equal(t, 2, s.Services[0].SpanCount)
	assert.Equal(t, "payment", s.Services[1].Name)
	assert.Equal(t, 3, s.Services[1].SpanCount)
	assert.Equal(t, 1, s.Services[1].ErrorCount)
	assert.Equal(t, 1, s.MatchedSpanCount)
	require.Len(t, s.MatchedSpans, 1)
	assert.Equal(t, hex.EncodeToString(chargeID[:]), s.MatchedSpans[0].SpanID)
	assert.Equal(t, "charge card", s.MatchedSpans[0].Name)
	assert.Equal(t, "payment", s.MatchedSpans[0].ServiceName)
	assert.Equal(t, uint64(t0)+uint64(20*time.Millisecond), s.MatchedSpans[0].StartNano)
	assert.Equal(t, uint64(170*time.Millisecond), s.MatchedSpans[0].DurationNS)
	assert.Nil(t, page.Next)
	assert.False(t, page.Partial)

	// Conditions on two spans do not match together; typed values compare typed.
	for _, q := range []string{
		"service=frontend&name=charge+card",
		"attr=http.response.status_code=500&name=POST+payment",
		"attr=retried=1",
		"status=success",
		"attr=deployment.environment=demo&name=async+audit", // the resource of one, the name of another
		"min_duration=251ms",
		"start=1700000000000000001",
	} {
		r := get(t, h, http.MethodGet, "/api/v1/traces?"+q)
		require.Equal(t, http.StatusOK, r.code, q)
		decodeStrict(t, r.body, &page)
		assert.Empty(t, page.Traces, q)
	}
	for _, q := range []string{"", "attr=http.response.status_code=5e2", "attr=retried=true", "attr=deployment.environment=demo&name=POST+payment", "kind=SPAN_KIND_CONSUMER", "status=running,error"} {
		r := get(t, h, http.MethodGet, "/api/v1/traces?"+q)
		decodeStrict(t, r.body, &page)
		assert.Len(t, page.Traces, 1, q)
	}
}

func TestSearchParameterErrors(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	for q, param := range map[string]string{
		"servce=x":                        "servce",
		"service=a&service=b":             "service",
		"kind=sideways":                   "kind",
		"attr=novalue":                    "attr",
		"attr==x":                         "attr",
		"status=ok":                       "status",
		"min_duration=fast":               "min_duration",
		"max_duration=-1s":                "max_duration",
		"min_duration=2s&max_duration=1s": "max_duration",
		"start=yesterday":                 "start",
		"end=2026-13-01T00:00:00Z":        "end",
		"start=20&end=10":                 "end",
		"limit=0":                         "limit",
		"limit=1001":                      "limit",
		"limit=ten":                       "limit",
		"next=bogus":                      "next",
	} {
		r := get(t, h, http.MethodGet, "/api/v1/traces?"+q)
		require.Equal(t, http.StatusBadRequest, r.code, q)
		m := r.json(t)
		assert.Equal(t, "error", m["status"])
		assert.Equal(t, "INVALID_PARAMETER", m["error_code"], q)
		assert.Contains(t, m["message"], param, q)
	}
	for path, allowed := range map[string]string{
		"/api/v1/services?x=1":                     "none",
		"/api/v1/services/frontend/operations?x=1": "none",
		"/api/v1/attributes?x=1":                   "none",
		"/api/v1/attributes/k/values?x=1":          "limit",
		"/api/v1/attributes/k/values?limit=101":    "100",
	} {
		r := get(t, h, http.MethodGet, path)
		require.Equal(t, http.StatusBadRequest, r.code, path)
		assert.Contains(t, r.json(t)["message"], allowed, path)
	}
	r := get(t, h, http.MethodPost, "/api/v1/traces")
	require.Equal(t, http.StatusMethodNotAllowed, r.code)
	assert.Equal(t, "METHOD_NOT_ALLOWED", r.json(t)["error_code"])
	assert.Equal(t, "GET, HEAD", r.hdr.Get("Allow"))
	r = get(t, h, http.MethodGet, "/api/v1/services/frontend/operations/x")
	require.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "NOT_FOUND", r.json(t)["error_code"])
}

func TestListings(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	r := get(t, h, http.MethodGet, "/api/v1/services")
	require.Equal(t, http.StatusOK, r.code)
	assert.JSONEq(t, `[{"name":"frontend","span_count":2,"trace_count":1},{"name":"payment","span_count":3,"trace_count":1}]`, string(r.body))
	r = get(t, h, http.MethodGet, "/api/v1/services/payment/operations")
	assert.JSONEq(t, `[{"name":"SELECT card","kind":"CLIENT","span_count":1},{"name":"async audit","kind":"CONSUMER","span_count":1},{"name":"charge card","kind":"INTERNAL","span_count":1}]`, string(r.body))
	r = get(t, h, http.MethodGet, "/api/v1/services/nobody/operations")
	require.Equal(t, http.StatusOK, r.code)
	assert.JSONEq(t, `[]`, string(r.body))
	r = get(t, h, http.MethodGet, "/api/v1/attributes")
	var keys []struct {
		Key   string `json:"key"`
		Scope string `json:"scope"`
	}
	require.NoError(t, json.Unmarshal(r.body, &keys))
	assert.Contains(t, keys, struct {
		Key   string `json:"key"`
		Scope string `json:"scope"`
	}{"deployment.environment", "resource"})
	assert.Contains(t, keys, struct {
		Key   string `json:"key"`
		Scope string `json:"scope"`
	}{"http.request.method", "span"})
	r = get(t, h, http.MethodGet, "/api/v1/attributes/http.request.method/values")
	assert.JSONEq(t, `[{"value":"GET","type":"string","trace_count":1},{"value":"POST","type":"string","trace_count":1}]`, string(r.body))
	r = get(t, h, http.MethodGet, "/api/v1/attributes/http.response.status_code/values")
	assert.JSONEq(t, `[{"value":"500","type":"int","trace_count":1}]`, string(r.body))
	r = get(t, h, http.MethodGet, "/api/v1/attributes/amount/values?limit=1")
	assert.JSONEq(t, `[{"value":"42.5","type":"double","trace_count":1}]`, string(r.body))
	// Names in paths are URL-escaped, slashes and dots included.
	r = get(t, h, http.MethodGet, "/api/v1/attributes/http.route/values")
	assert.JSONEq(t, `[{"value":"/checkout","type":"string","trace_count":1}]`, string(r.body))
	r = get(t, h, http.MethodGet, "/api/v1/services/a%2F..%2Fb/operations")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.JSONEq(t, `[]`, string(r.body))
}

// Search and listings read the request's tenant only.
func TestSearchTenants(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 64 << 20})
	defer st.Close()
	first, _ := fixtureBatches()
	st.Ingest("team-a", first)
	h := NewHandler(st, defaultOptions())
	call := func(tenant, path string) []byte {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if tenant != "" {
			req.Header.Set("X-Scope-OrgID", tenant)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		return rec.Body.Bytes()
	}
	var page searchPage
	decodeStrict(t, call("team-a", "/api/v1/traces"), &page)
	require.Len(t, page.Traces, 1)
	assert.Equal(t, "team-a", page.Traces[0].OrganizationID)
	for _, tenant := range []string{"", "team-b"} {
		decodeStrict(t, call(tenant, "/api/v1/traces"), &page)
		assert.Empty(t, page.Traces)
		assert.JSONEq(t, `[]`, string(call(tenant, "/api/v1/services")))
		assert.JSONEq(t, `[]`, string(call(tenant, "/api/v1/attributes")))
		assert.JSONEq(t, `[]`, string(call(tenant, "/api/v1/attributes/http.route/values")))
	}
}

// Pages follow each other by next, newest first, each trace once.
func TestSearchPages(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 64 << 20})
	defer st.Close()
	for i := range 95 {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{byte(i + 1), 1})
		s.SetSpanID(pcommon.SpanID{1})
		s.SetStartTimestamp(t0 + pcommon.Timestamp(i)*pcommon.Timestamp(time.Second))
		s.SetEndTimestamp(t0 + pcommon.Timestamp(i)*pcommon.Timestamp(time.Second) + 1)
		st.Ingest("", td)
	}
	h := NewHandler(st, defaultOptions())
	var ids []string
	path := "/api/v1/traces?limit=20"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		r := get(t, h, http.MethodGet, path)
		require.Equal(t, http.StatusOK, r.code)
		var page searchPage
		decodeStrict(t, r.body, &page)
		for _, tr := range page.Traces {
			ids = append(ids, tr.ID)
		}
		if page.Next == nil {
			break
		}
		path = "/api/v1/traces?limit=20&next=" + url.QueryEscape(*page.Next)
	}
	require.Len(t, ids, 95)
	for i, id := range ids {
		want := pcommon.TraceID{byte(95 - i), 1}
		assert.Equal(t, hex.EncodeToString(want[:]), id, "position %d", i)
	}
}

func TestSearchPartial(t *testing.T) {
	opts := defaultOptions()
	opts.Search.MaxScannedSpans = 1
	st := store.New(store.Config{MaxBytes: 64 << 20})
	defer st.Close()
	for i := range 3 {
		first, _ := fixtureBatches()
		for _, rs := range first.ResourceSpans().All() {
			for _, s := range rs.ScopeSpans().At(0).Spans().All() {
				s.SetTraceID(pcommon.TraceID{byte(i + 1)})
			}
		}
		st.Ingest("", first)
	}
	h := NewHandler(st, opts)
	r := get(t, h, http.MethodGet, "/api/v1/traces")
	var page searchPage
	decodeStrict(t, r.body, &page)
	assert.True(t, page.Partial)
	assert.Len(t, page.Traces, 1, "one candidate is always read")
	require.NotNil(t, page.Next)
}

func TestSearchDisabled(t *testing.T) {
	opts := defaultOptions()
	opts.NoSearch = true
	h := fixtureHandler(t, opts)
	for _, path := range []string{"/api/v1/traces", "/api/v1/services", "/api/v1/attributes", "/api/v1/services/x/operations", "/api/v1/attributes/x/values"} {
		r := get(t, h, http.MethodGet, path)
		require.Equal(t, http.StatusNotFound, r.code, path)
		assert.Equal(t, "SEARCH_DISABLED", r.json(t)["error_code"], path)
	}
	r := get(t, h, http.MethodGet, fmt.Sprintf("/api/v1/traces/%x", fixtureID[:]))
	assert.Equal(t, http.StatusOK, r.code, "lookups still work")
}
