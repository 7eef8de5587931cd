// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// zipkinSpan is Zipkin's JSON v2 span (zipkin2.Span), decoded strictly.
type zipkinSpan struct {
	TraceID       string `json:"traceId"`
	ParentID      string `json:"parentId"`
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	Name          string `json:"name"`
	Timestamp     uint64 `json:"timestamp"`
	Duration      uint64 `json:"duration"`
	Debug         bool   `json:"debug"`
	Shared        bool   `json:"shared"`
	LocalEndpoint *struct {
		ServiceName string `json:"serviceName"`
		IPv4        string `json:"ipv4"`
		IPv6        string `json:"ipv6"`
		Port        int    `json:"port"`
	} `json:"localEndpoint"`
	RemoteEndpoint *struct {
		ServiceName string `json:"serviceName"`
		IPv4        string `json:"ipv4"`
		IPv6        string `json:"ipv6"`
		Port        int    `json:"port"`
	} `json:"remoteEndpoint"`
	Annotations []struct {
		Timestamp uint64 `json:"timestamp"`
		Value     string `json:"value"`
	} `json:"annotations"`
	Tags map[string]string `json:"tags"`
}

func TestZipkinTrace(t *testing.T) {
	h := fixtureHandler(t, Options{})
	r := get(t, h, http.MethodGet, "/zipkin/api/v2/trace/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	var spans []zipkinSpan
	decodeStrict(t, r.body, &spans)
	require.Len(t, spans, 5)
	byID := map[string]zipkinSpan{}
	for _, s := range spans {
		assert.Equal(t, fixtureHex, s.TraceID)
		byID[s.ID] = s
	}
	root := byID[hex.EncodeToString(rootID[:])]
	assert.Empty(t, root.ParentID)
	assert.Equal(t, "SERVER", root.Kind)
	assert.Equal(t, "GET /checkout", root.Name)
	assert.Equal(t, uint64(t0)/1000, root.Timestamp)
	assert.Equal(t, uint64(250_000), root.Duration)
	assert.Equal(t, "frontend", root.LocalEndpoint.ServiceName)
	assert.Equal(t, "500", root.Tags["http.response.status_code"])

	charge := byID[hex.EncodeToString(chargeID[:])]
	assert.Equal(t, hex.EncodeToString(clientID[:]), charge.ParentID)
	assert.Empty(t, charge.Kind, "internal spans have no kind")
	assert.Equal(t, "ERROR", charge.Tags["otel.status_code"])
	assert.Equal(t, "card declined", charge.Tags["error"])
	assert.Equal(t, `["card","eu"]`, charge.Tags["tags"])
	require.Len(t, charge.Annotations, 1)
	assert.Equal(t, (uint64(t0)+uint64(150*time.Millisecond))/1000, charge.Annotations[0].Timestamp)
	assert.Equal(t, `exception {"exception.message":"card declined"}`, charge.Annotations[0].Value)

	r = get(t, h, http.MethodGet, "/zipkin/api/v2/trace/0123456789abcdef0123456789abcdef")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"))
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/zipkin/api/v2/trace/nope").code)
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/zipkin/api/v2/trace/").code)
	// The 003 contract keeps its unprefixed path.
	assert.Equal(t, http.StatusOK, get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex).code)
}

func TestZipkinListingsAndSearch(t *testing.T) {
	h := fixtureHandler(t, Options{})
	var names []string
	decodeStrict(t, get(t, h, http.MethodGet, "/zipkin/api/v2/services").body, &names)
	assert.Equal(t, []string{"frontend", "payment"}, names)
	decodeStrict(t, get(t, h, http.MethodGet, "/zipkin/api/v2/spans?serviceName=payment").body, &names)
	assert.Equal(t, []string{"SELECT card", "async audit", "charge card"}, names)
	decodeStrict(t, get(t, h, http.MethodGet, "/zipkin/api/v2/remoteServices?serviceName=payment").body, &names)
	assert.Empty(t, names)
	st := store.New(store.Config{MaxBytes: 16 << 20})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "payment")
	call := addSpan(rs.ScopeSpans().AppendEmpty(), chargeID, pcommon.SpanID{}, "authorize", ptrace.SpanKindClient, 0, time.Millisecond)
	call.Attributes().PutStr("peer.service", "bank")
	st.Ingest("", td)
	peers := NewHandler(st, Options{})
	decodeStrict(t, get(t, peers, http.MethodGet, "/zipkin/api/v2/remoteServices?serviceName=payment").body, &names)
	assert.Equal(t, []string{"bank"}, names)
	var spans []zipkinSpan
	decodeStrict(t, get(t, peers, http.MethodGet, "/zipkin/api/v2/trace/"+fixtureHex).body, &spans)
	require.Len(t, spans, 1)
	assert.Equal(t, "bank", spans[0].RemoteEndpoint.ServiceName)
	assert.Equal(t, "CLIENT", spans[0].Kind)
	assert.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/zipkin/api/v2/spans").code)

	endTs := strconv.FormatInt((int64(t0)+int64(time.Minute))/1e6, 10)
	for _, tc := range []struct {
		query string
		found bool
	}{
		{"serviceName=payment", true},
		{"serviceName=payment&spanName=CHARGE+CARD", true},
		{"serviceName=frontend&spanName=charge+card", false},
		{"serviceName=payment&annotationQuery=error", true},
		{"serviceName=frontend&annotationQuery=error", false},
		{"serviceName=payment&annotationQuery=" + url.QueryEscape("error and amount=42.5"), true},
		{"serviceName=payment&annotationQuery=" + url.QueryEscape("db.system=postgresql and amount=42.5"), false}, // one span
		{"serviceName=frontend&minDuration=200000", true},
		{"serviceName=frontend&minDuration=300000", false},
		{"serviceName=payment&maxDuration=10000", true},
	} {
		r := get(t, h, http.MethodGet, "/zipkin/api/v2/traces?"+tc.query+"&endTs="+endTs)
		require.Equal(t, http.StatusOK, r.code, tc.query+": "+string(r.body))
		var traces [][]zipkinSpan
		decodeStrict(t, r.body, &traces)
		if !tc.found {
			assert.Empty(t, traces, tc.query)
			continue
		}
		require.Len(t, traces, 1, tc.query)
		assert.Len(t, traces[0], 5)
	}
	// A long span name is compared as it is, never as a pattern.
	r := get(t, h, http.MethodGet, "/zipkin/api/v2/traces?serviceName=payment&endTs="+endTs+"&spanName="+strings.Repeat("a", 1100))
	require.Equal(t, http.StatusOK, r.code)
	assert.JSONEq(t, `[]`, string(r.body))
	r = get(t, h, http.MethodGet, "/zipkin/api/v2/traces?serviceName=payment&endTs="+endTs+"&spanName=charge.card")
	assert.JSONEq(t, `[]`, string(r.body), "a dot is a dot")

	// Zipkin's default window is the last day: the fixture is older.
	var traces [][]zipkinSpan
	decodeStrict(t, get(t, h, http.MethodGet, "/zipkin/api/v2/traces?serviceName=payment").body, &traces)
	assert.Empty(t, traces)
	for _, q := range []string{"minDuration=fast", "endTs=-1", "lookback=0", "limit=0", "annotationQuery=http.route", "annotationQuery=+and+"} {
		r := get(t, h, http.MethodGet, "/zipkin/api/v2/traces?"+q)
		assert.Equal(t, http.StatusBadRequest, r.code, q)
		assert.Equal(t, "text/plain; charset=utf-8", r.hdr.Get("Content-Type"))
	}
}
