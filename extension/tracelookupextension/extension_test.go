// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/metadatatest"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func oneSpan(traceID pcommon.TraceID) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(traceID)
	s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	s.SetName("op")
	s.SetStartTimestamp(1)
	s.SetEndTimestamp(2)
	return td
}

func startExtension(t *testing.T, tt *componenttest.Telemetry, mutate func(*Config)) (*tracelookupExtension, string) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	if mutate != nil {
		mutate(cfg)
	}
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*tracelookupExtension), "http://" + cfg.ServerConfig.NetAddr.Endpoint
}

func TestServesIndexedTraces(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	ext, base := startExtension(t, tt, nil)

	var index SpanIndex = ext
	id := pcommon.TraceID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	index.IndexTraces("", oneSpan(id))

	resp, err := http.Get(base + "/api/v1/traces/" + id.String())
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	assert.Equal(t, id.String(), m["trace_id"])
	assert.Equal(t, "svc", m["service_name"])

	resp, err = http.Get(base + "/api/v1/traces/zz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	for _, path := range []string{"/api/v1/traces?service=svc", "/api/v1/services"} {
		resp, err = http.Get(base + path)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}

	// Self-telemetry: what the index holds and the lookups by outcome.
	metadatatest.AssertEqualTracelookupIndexSpans(t, tt, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualTracelookupIndexTraces(t, tt, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualTracelookupLookups(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "lookup"), attribute.String("outcome", "found"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "lookup"), attribute.String("outcome", "bad_request"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "search"), attribute.String("outcome", "found"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "listing"), attribute.String("outcome", "found"))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualTracelookupIndexTracesEvicted(t, tt, []metricdata.DataPoint[int64]{
		{Value: 0, Attributes: attribute.NewSet(attribute.String("reason", "memory"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("reason", "count"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("reason", "retention"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("reason", "tenant_share"))},
	}, metricdatatest.IgnoreTimestamp())
	bytes, err := tt.GetMetric("otelcol_tracelookup_index_bytes")
	require.NoError(t, err)
	assert.Positive(t, bytes.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
}

func TestRetentionRunsWithoutTraffic(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	ext, _ := startExtension(t, tt, func(cfg *Config) { cfg.Index.Retention = time.Second })
	ext.IndexTraces("", oneSpan(pcommon.TraceID{1}))
	// The trace leaves its shard before the eviction is counted: wait for both.
	require.Eventually(t, func() bool {
		st := ext.store.Stats()
		return st.Traces == 0 && st.EvictedBy(store.ReasonRetention) == 1
	}, 10*time.Second, 10*time.Millisecond)
}

// Regression: when requests outlived the shutdown context, Shutdown returned
// the error of Close (nil) instead of the context's.
func TestShutdownReportsWhyItWasNotGraceful(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	// A request that has begun but never ends keeps its connection active.
	conn, err := net.Dial("tcp", cfg.ServerConfig.NetAddr.Endpoint)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /api/v1/traces/1 HTTP/1.1\r\nHost: x\r\n"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // let the server read it
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = ext.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestStartFailsWhenPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = ln.Addr().String()
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.Error(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestShutdownWithoutStart(t *testing.T) {
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), NewFactory().CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestFactoryType(t *testing.T) {
	assert.Equal(t, component.MustNewType("tracelookup"), NewFactory().Type())
}

// Tenant labels only with the switch on: tenant ids are unbounded.
func TestTelemetryPerTenant(t *testing.T) {
	for _, on := range []bool{false, true} {
		tt := componenttest.NewTelemetry()
		ext, base := startExtension(t, tt, func(cfg *Config) { cfg.Tenancy.TelemetryPerTenant = on })
		id := pcommon.TraceID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		ext.IndexTraces("team-a", oneSpan(id))
		ext.IndexTraces("team-b", oneSpan(id))
		for tenant, want := range map[string]int{"team-a": http.StatusOK, "made-up": http.StatusNotFound} {
			req, err := http.NewRequest(http.MethodGet, base+"/api/v1/traces/"+id.String(), nil)
			require.NoError(t, err)
			req.Header.Set("X-Scope-OrgID", tenant)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, want, resp.StatusCode)
		}

		if !on {
			metadatatest.AssertEqualTracelookupLookups(t, tt, []metricdata.DataPoint[int64]{
				{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "lookup"), attribute.String("outcome", "found"))},
				{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "lookup"), attribute.String("outcome", "not_found"))},
			}, metricdatatest.IgnoreTimestamp())
			_, err := tt.GetMetric("otelcol_tracelookup_tenant_traces")
			assert.Error(t, err, "no per-tenant gauge without the switch")
		} else {
			metadatatest.AssertEqualTracelookupLookups(t, tt, []metricdata.DataPoint[int64]{
				{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "lookup"), attribute.String("outcome", "found"), attribute.String("tenant", "team-a"))},
				// A tenant that holds nothing is not a label value of its own.
				{Value: 1, Attributes: attribute.NewSet(attribute.String("route", "lookup"), attribute.String("outcome", "not_found"), attribute.String("tenant", "_other"))},
			}, metricdatatest.IgnoreTimestamp())
			metadatatest.AssertEqualTracelookupTenantTraces(t, tt, []metricdata.DataPoint[int64]{
				{Value: 0, Attributes: attribute.NewSet(attribute.String("tenant", "default"))},
				{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "team-a"))},
				{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "team-b"))},
			}, metricdatatest.IgnoreTimestamp())
		}
		require.NoError(t, tt.Shutdown(context.Background()))
	}
}
