// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

type searchSummary struct {
	TraceID     string `json:"trace_id"`
	Name        string `json:"name"`
	RootService string `json:"root_service"`
	Status      string `json:"status"`
	SpanCount   int    `json:"span_count"`
	ErrorCount  int    `json:"error_count"`
	Services    []struct {
		Name       string `json:"name"`
		SpanCount  int    `json:"span_count"`
		ErrorCount int    `json:"error_count"`
	} `json:"services"`
	MatchedSpans []struct {
		Name        string `json:"name"`
		ServiceName string `json:"service_name"`
	} `json:"matched_spans"`
}

type searchPage struct {
	Traces  []searchSummary `json:"traces"`
	Next    *string         `json:"next"`
	Partial bool            `json:"partial"`
}

// TestSearch sends 30 traces of two services with the OTel SDK over
// OTLP/gRPC, then finds them in the built collector by search, page by
// page, by span conditions, by status, and lists services, operations
// and attribute values.
func TestSearch(t *testing.T) {
	collectorBinary(t)
	apiPort, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	col := startCollector(t, nopConfig(apiPort, grpcPort, httpPort, ""))
	col.waitReady(t, apiPort, nil, grpcPort, httpPort)

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(addr(grpcPort)), otlptracegrpc.WithTimeout(exportTimeout))
	require.NoError(t, err)
	provider := func(service string) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(
			sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", service))),
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithSyncer(exp),
		)
	}
	shop, payments := provider("shop"), provider("payments")
	base := time.Now().Add(-time.Hour)
	var sent []string // oldest first
	for i := range 30 {
		start := base.Add(time.Duration(i) * time.Second)
		tier := "silver"
		if i%10 == 3 {
			tier = "gold"
		}
		rctx, root := shop.Tracer("e2e/search").Start(ctx, "GET /cart", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("customer.tier", tier)))
		_, charge := payments.Tracer("e2e/search").Start(rctx, "charge", trace.WithTimestamp(start.Add(time.Millisecond)),
			trace.WithAttributes(attribute.String("customer.tier", tier), attribute.Int("attempt", 1)))
		if i == 17 {
			charge.SetStatus(codes.Error, "declined")
		}
		charge.End(trace.WithTimestamp(start.Add(20 * time.Millisecond)))
		root.End(trace.WithTimestamp(start.Add(30 * time.Millisecond)))
		sent = append(sent, root.SpanContext().TraceID().String())
	}
	for _, tp := range []*sdktrace.TracerProvider{shop, payments} {
		sctx, cancel := context.WithTimeout(ctx, exportTimeout)
		require.NoError(t, tp.Shutdown(sctx))
		cancel()
	}

	api := "http://" + addr(apiPort)
	searchFor := func(query string) searchPage {
		t.Helper()
		resp := mustDo(t, http.MethodGet, api+"/api/v1/traces?"+query, nil)
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var page searchPage
		require.NoError(t, resp.decode(&page))
		return page
	}
	poll(t, 10*time.Second, "all 30 traces to be searchable", func() error {
		if n := len(searchFor("limit=100").Traces); n != 30 {
			return fmt.Errorf("%d traces", n)
		}
		return nil
	})

	// Newest first, page by page, each trace once.
	var got []string
	query := "limit=7"
	for range 10 {
		page := searchFor(query)
		for _, s := range page.Traces {
			got = append(got, s.TraceID)
		}
		if page.Next == nil {
			break
		}
		query = "limit=7&next=" + url.QueryEscape(*page.Next)
	}
	require.Len(t, got, 30)
	for i, id := range got {
		assert.Equal(t, sent[29-i], id, "position %d", i)
	}

	// Span conditions on one span; the summary.
	page := searchFor("service=payments&name=charge&attr=customer.tier=gold&attr=attempt=1")
	require.Len(t, page.Traces, 3)
	for k, s := range page.Traces {
		assert.Equal(t, sent[23-10*k], s.TraceID)
		assert.Equal(t, "GET /cart", s.Name)
		assert.Equal(t, "shop", s.RootService)
		assert.Equal(t, 2, s.SpanCount)
		require.Len(t, s.MatchedSpans, 1)
		assert.Equal(t, "charge", s.MatchedSpans[0].Name)
		assert.Equal(t, "payments", s.MatchedSpans[0].ServiceName)
		require.Len(t, s.Services, 2)
		assert.Equal(t, "shop", s.Services[0].Name)
	}
	assert.Empty(t, searchFor("service=shop&name=charge").Traces, "the conditions hold on one span")
	page = searchFor("status=error")
	require.Len(t, page.Traces, 1)
	assert.Equal(t, sent[17], page.Traces[0].TraceID)
	assert.Equal(t, 1, page.Traces[0].ErrorCount)
	assert.Len(t, searchFor("min_duration=30ms&limit=100").Traces, 30)
	assert.Empty(t, searchFor("min_duration=31ms").Traces)

	// Listings.
	resp := mustDo(t, http.MethodGet, api+"/api/v1/services", nil)
	assert.JSONEq(t, `[{"name":"payments","span_count":30,"trace_count":30},{"name":"shop","span_count":30,"trace_count":30}]`, string(resp.Body))
	resp = mustDo(t, http.MethodGet, api+"/api/v1/services/payments/operations", nil)
	assert.JSONEq(t, `[{"name":"charge","kind":"INTERNAL","span_count":30}]`, string(resp.Body))
	resp = mustDo(t, http.MethodGet, api+"/api/v1/attributes/customer.tier/values", nil)
	assert.JSONEq(t, `[{"value":"silver","type":"string","trace_count":27},{"value":"gold","type":"string","trace_count":3}]`, string(resp.Body))

	// Bad input names the parameter.
	resp = mustDo(t, http.MethodGet, api+"/api/v1/traces?min_duration=soon", nil)
	requireError(t, resp, http.StatusBadRequest, "INVALID_PARAMETER")
	assert.Contains(t, string(resp.Body), "min_duration")

	checkTempoJaegerZipkin(t, api, sent)
}
