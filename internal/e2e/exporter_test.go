// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The stock otlp receiver -> attributes and redaction processors -> the
// tracelookup exporter: the index holds the spans as the processors left
// them, under the tenant the request named.
func TestExporterIndexesProcessedSpans(t *testing.T) {
	apiPort, grpcPort := freePort(t), freePort(t)
	col := startCollector(t, fmt.Sprintf(`
extensions:
  tracelookup:
    endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
        include_metadata: true
processors:
  attributes:
    actions:
      - {key: user.email, action: delete}
      - {key: deployment.environment, value: prod, action: insert}
  redaction:
    allow_all_keys: true
    blocked_values: ["4[0-9]{15}"]
    summary: silent
exporters:
  tracelookup:
    extension: tracelookup
service:
  extensions: [tracelookup]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [attributes, redaction]
      exporters: [tracelookup]
  telemetry:
    metrics:
      level: none
`, apiPort, grpcPort))
	col.waitReady(t, apiPort, nil, grpcPort)

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(addr(grpcPort)),
		otlptracegrpc.WithTimeout(exportTimeout), otlptracegrpc.WithHeaders(map[string]string{"X-Scope-OrgID": "payments"}))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	_, span := tp.Tracer("e2e").Start(ctx, "charge card", trace.WithAttributes(
		attribute.String("user.email", "jane@example.com"),
		attribute.String("card.number", "4111111111111111"),
		attribute.String("order.id", "o-1234")))
	span.End()
	require.NoError(t, tp.Shutdown(ctx))
	id := span.SpanContext().TraceID().String()

	resp := mustDo(t, "GET", "http://"+addr(apiPort)+"/api/v1/traces/"+id+"?flat=true", map[string]string{"X-Scope-OrgID": "payments"})
	require.Equal(t, 200, resp.Status, string(resp.Body))
	var tr struct{ Spans []apiSpan }
	require.NoError(t, json.Unmarshal(resp.Body, &tr))
	require.Len(t, tr.Spans, 1)
	attrs := tr.Spans[0].Attributes
	assert.NotContains(t, attrs, "user.email", "deleted by the attributes processor")
	assert.Equal(t, "prod", attrs["deployment.environment"], "inserted by the attributes processor")
	assert.Equal(t, "****", attrs["card.number"], "masked by the redaction processor")
	assert.Equal(t, "o-1234", attrs["order.id"])

	other := mustDo(t, "GET", "http://"+addr(apiPort)+"/api/v1/traces/"+id, nil)
	assert.Equal(t, 404, other.Status, "indexed under the request's tenant, not the default one")
}

// The agent and gateway of deploy/helm: the agent turns the request's
// tenant header into the tenant.id resource attribute (resource processor,
// from the client metadata), its otlp exporter sends on, and the gateway
// indexes the spans under that tenant (tenancy::resource_attribute). A
// client's own tenant.id is not trusted.
func TestAgentCarriesTheTenantToTheGateway(t *testing.T) {
	gw := node{api: freePort(t), grpc: freePort(t)}
	gw.c = startCollector(t, nopConfig(gw.api, gw.grpc, freePort(t), "    tenancy:\n      resource_attribute: tenant.id\n"))
	gw.c.waitReady(t, gw.api, nil, gw.grpc)
	agent := node{api: freePort(t), grpc: freePort(t)}
	agent.c = startCollector(t, fmt.Sprintf(`
extensions:
  tracelookup:
    endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
        include_metadata: true
processors:
  resource/tenant:
    attributes:
      - {key: tenant.id, action: delete}
      - {key: tenant.id, from_context: metadata.X-Scope-OrgID, action: insert}
exporters:
  tracelookup:
  otlp_grpc/gateway:
    endpoint: 127.0.0.1:%d
    tls:
      insecure: true
    sending_queue:
      enabled: false
service:
  extensions: [tracelookup]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resource/tenant]
      exporters: [tracelookup, otlp_grpc/gateway]
  telemetry:
    metrics:
      level: none
`, agent.api, agent.grpc, gw.grpc))
	agent.c.waitReady(t, agent.api, nil, agent.grpc)

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(addr(agent.grpc)),
		otlptracegrpc.WithTimeout(exportTimeout), otlptracegrpc.WithHeaders(map[string]string{"X-Scope-OrgID": "payments"}))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("tenant.id", "someone-else"))))
	_, span := tp.Tracer("e2e").Start(ctx, "charge card")
	span.End()
	require.NoError(t, tp.Shutdown(ctx))
	id := span.SpanContext().TraceID().String()

	for _, n := range []node{agent, gw} {
		assert.Equal(t, 200, mustDo(t, "GET", n.url()+"/api/v1/traces/"+id, map[string]string{"X-Scope-OrgID": "payments"}).Status, n.url())
		assert.Equal(t, 404, mustDo(t, "GET", n.url()+"/api/v1/traces/"+id, map[string]string{"X-Scope-OrgID": "someone-else"}).Status, n.url())
		assert.Equal(t, 404, mustDo(t, "GET", n.url()+"/api/v1/traces/"+id, nil).Status, n.url())
	}
}
