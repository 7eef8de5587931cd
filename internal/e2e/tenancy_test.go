// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// fixedIDs gives every trace the same id, so that three tenants send the
// very same trace id, and numbers the spans.
type fixedIDs struct {
	trace trace.TraceID
	next  byte
}

func (g *fixedIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	return g.trace, g.NewSpanID(context.Background(), g.trace)
}

func (g *fixedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.next++
	return trace.SpanID{0xaa, 0, 0, 0, 0, 0, 0, g.next}
}

const tenantCallID = "6a1f0c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"

// sendAs sends n spans of one trace with the SDK's exporter, the first
// carrying the call id, under the resource attributes given.
func sendAs(t *testing.T, exp sdktrace.SpanExporter, id trace.TraceID, n int, res ...attribute.KeyValue) {
	t.Helper()
	res = append(res, attribute.String("service.name", "tenant-svc"))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(sdkresource.NewSchemaless(res...)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(&fixedIDs{trace: id}),
		sdktrace.WithSyncer(exp),
	)
	tr := tp.Tracer("e2e/tenants")
	ctx, root := tr.Start(context.Background(), "root", trace.WithAttributes(attribute.String("call.id", tenantCallID)))
	for i := 1; i < n; i++ {
		_, s := tr.Start(ctx, fmt.Sprintf("child-%d", i))
		s.End()
	}
	root.End()
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	defer cancel()
	require.NoError(t, tp.Shutdown(ctx))
}

// TestTenants: three tenants send the same trace id, one over OTLP/gRPC
// with the tenant header in its metadata, one over OTLP/HTTP with the
// header, one with neither but a resource attribute. Each reads only its
// own on every contract, behind a DD-API-KEY authenticator; 003 is rate
// limited per tenant.
func TestTenants(t *testing.T) {
	collectorBinary(t)
	apiPort, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	col := startCollector(t, nopCollector{api: apiPort, grpc: grpcPort, http: httpPort,
		others:     "  bearertokenauth/dd:\n    header: DD-API-KEY\n    scheme: \"\"\n    token: dd-key\n",
		otherNames: []string{"bearertokenauth/dd"},
		extension: `    auth:
      authenticator: bearertokenauth/dd
    tenancy:
      resource_attribute: tenant.id
    rate_limits:
      apm_trace:
        requests_per_minute: 4
`}.config())
	key := map[string]string{"DD-API-KEY": "dd-key"}
	col.waitReady(t, apiPort, key, grpcPort, httpPort)

	id := trace.TraceID{0x7e, 0x11, 0x4a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7}
	ctx := context.Background()
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(addr(grpcPort)),
		otlptracegrpc.WithTimeout(exportTimeout), otlptracegrpc.WithHeaders(map[string]string{"X-Scope-OrgID": "team-grpc"}))
	require.NoError(t, err)
	sendAs(t, grpcExp, id, 2)
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithInsecure(), otlptracehttp.WithEndpoint(addr(httpPort)),
		otlptracehttp.WithTimeout(exportTimeout), otlptracehttp.WithHeaders(map[string]string{"X-Scope-OrgID": "team-http"}))
	require.NoError(t, err)
	sendAs(t, httpExp, id, 3)
	plainExp, err := otlptracehttp.New(ctx, otlptracehttp.WithInsecure(), otlptracehttp.WithEndpoint(addr(httpPort)), otlptracehttp.WithTimeout(exportTimeout))
	require.NoError(t, err)
	sendAs(t, plainExp, id, 4, attribute.String("tenant.id", "team-res"))

	api := "http://" + addr(apiPort)
	as := func(tenant string) map[string]string {
		return map[string]string{"DD-API-KEY": "dd-key", "X-Scope-OrgID": tenant}
	}
	for tenant, spans := range map[string]int{"team-grpc": 2, "team-http": 3, "team-res": 4} {
		var got apiTrace
		poll(t, 10*time.Second, tenant+"'s trace", func() error {
			resp, err := get(api+"/api/v1/traces/"+id.String(), as(tenant))
			if err != nil {
				return err
			}
			if resp.Status != http.StatusOK {
				return fmt.Errorf("status %d: %s", resp.Status, resp.Body)
			}
			return resp.decode(&got)
		})
		assert.Equal(t, tenant, got.OrganizationID)
		assert.Equal(t, spans, got.SpanCount, tenant)

		resp := mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id.String(), as(tenant))
		require.Equal(t, http.StatusOK, resp.Status, "%s: %s", tenant, resp.Body)
		var apm struct {
			Data struct {
				Attributes struct {
					Spans []map[string]any `json:"spans"`
				} `json:"attributes"`
			} `json:"data"`
		}
		require.NoError(t, resp.decode(&apm))
		assert.Len(t, apm.Data.Attributes.Spans, spans, tenant)
		assert.Equal(t, "4", resp.Header.Get("X-RateLimit-Limit"))

		resp = mustDo(t, http.MethodGet, api+"/v1/trace/call/"+tenantCallID, as(tenant))
		require.Equal(t, http.StatusOK, resp.Status, "%s: %s", tenant, resp.Body)
	}

	// Another tenant, and the default one, are told the trace does not exist.
	for _, hdr := range []map[string]string{as("team-other"), key} {
		resp := mustDo(t, http.MethodGet, api+"/api/v1/traces/"+id.String(), hdr)
		assert.Equal(t, http.StatusNotFound, resp.Status)
		assert.Equal(t, `{"status":"error","error_code":"TRACE_NOT_FOUND","message":"trace `+id.String()+` not found"}`, string(resp.Body))
		resp = mustDo(t, http.MethodGet, api+"/v1/trace/call/"+tenantCallID, hdr)
		assert.Equal(t, http.StatusNotFound, resp.Status)
		assert.Equal(t, `{"status":"error","error_code":"TRACE_NOT_FOUND","message":"Trace not found"}`, string(resp.Body))
	}
	resp := mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id.String(), as("team-other"))
	assert.Equal(t, http.StatusNotFound, resp.Status)
	assert.Equal(t, `{"errors":[{"status":"404","title":"Not Found","detail":"trace `+id.String()+` not found","meta":{}}]}`, string(resp.Body))

	// No key: 401, in each contract's format.
	resp = mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id.String(), map[string]string{"X-Scope-OrgID": "team-grpc"})
	assert.Equal(t, http.StatusUnauthorized, resp.Status)
	assert.Equal(t, `{"errors":[{"status":"401","title":"Unauthorized","detail":"missing or empty authorization header: DD-API-KEY","meta":{}}]}`, string(resp.Body))
	resp = mustDo(t, http.MethodGet, api+"/api/v1/traces/"+id.String(), map[string]string{"DD-API-KEY": "nope"})
	assert.Equal(t, http.StatusUnauthorized, resp.Status)
	assert.Equal(t, `{"status":"error","error_code":"UNAUTHORIZED","message":"provided authorization does not match expected scheme or token"}`, string(resp.Body))

	// team-other made one 003 request above; three more pass, the next is limited.
	for i := 0; i < 3; i++ {
		resp = mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id.String(), as("team-other"))
		assert.Equal(t, http.StatusNotFound, resp.Status)
	}
	resp = mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id.String(), as("team-other"))
	assert.Equal(t, http.StatusTooManyRequests, resp.Status)
	assert.Equal(t, `{"errors":["Too many requests"]}`, string(resp.Body))
	// One request comes back every 15 s: at most that long to wait.
	wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.True(t, wait >= 1 && wait <= 15, "Retry-After %d", wait)
	assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
	assert.Equal(t, "60", resp.Header.Get("X-RateLimit-Period"))
	// The other tenants' buckets are their own.
	resp = mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id.String(), as("team-grpc"))
	assert.Equal(t, http.StatusOK, resp.Status)

	require.NoError(t, col.stop(), "collector exit after SIGTERM")
}
