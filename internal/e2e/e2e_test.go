// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2e runs the built collector (TRACELOOKUP_COLLECTOR, set by
// `make test`) as a process and checks it from the outside: OTLP in through
// the tracelookup receiver, every span on to the next hop, the trace back out
// of the tracelookup extension's HTTP API.
package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lookupTimeout bounds the wait for spans to show up in the API or the sink.
const lookupTimeout = 15 * time.Second

// TestTraceLookup sends traces over OTLP/gRPC and OTLP/HTTP with the
// OpenTelemetry SDK, reads them back from the API, checks that the pipeline's
// next consumer got every span, and checks the API's error answers.
func TestTraceLookup(t *testing.T) {
	collectorBinary(t) // skip early when there is no binary
	snk := startSink(t)
	apiPort, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	col := startCollector(t, pipelineConfig(apiPort, grpcPort, httpPort, snk.port))
	col.waitReady(t, apiPort, nil, grpcPort, httpPort)
	api := "http://" + addr(apiPort)

	var sent []sentTrace
	cases := []struct {
		name        string
		newExporter newExporterFunc
	}{
		{"grpc", func(ctx context.Context) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx,
				otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithEndpoint(addr(grpcPort)),
				otlptracegrpc.WithTimeout(exportTimeout))
		}},
		{"http", func(ctx context.Context) (sdktrace.SpanExporter, error) {
			// Our own transport, so that its idle connections can be closed.
			tr := &http.Transport{}
			exp, err := otlptracehttp.New(ctx,
				otlptracehttp.WithInsecure(),
				otlptracehttp.WithEndpoint(addr(httpPort)),
				otlptracehttp.WithTimeout(exportTimeout),
				otlptracehttp.WithHTTPClient(&http.Client{Transport: tr}))
			if err != nil {
				return nil, err
			}
			return closeIdleOnShutdown{exp, tr}, nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			s := sendTrace(t, tc.newExporter)
			sent = append(sent, s)
			checkTrace(t, api, s, before)
			checkLookupForms(t, api, s)
		})
	}

	t.Run("next consumer received every span", func(t *testing.T) {
		require.NotEmpty(t, sent)
		want := map[string]int{}
		for _, s := range sent {
			for id, n := range s.timesSent() {
				want[id] += n
			}
		}
		total := exportsPerTrace * len(sent)
		poll(t, lookupTimeout, "the sink to receive every span", func() error {
			if n, _ := snk.received(); n < total {
				return fmt.Errorf("the sink has %d spans, want %d", n, total)
			}
			return nil
		})
		n, ids := snk.received()
		require.Equal(t, total, n, "spans received by the sink")
		require.Equal(t, want, ids, "span ids received by the sink (id -> times)")
	})

	t.Run("errors", func(t *testing.T) {
		traces := api + "/api/v1/traces/"
		requireError(t, mustDo(t, http.MethodGet, traces+"not-hex", nil), http.StatusBadRequest, "INVALID_TRACE_ID")
		requireError(t, mustDo(t, http.MethodGet, traces+strings.Repeat("0", 32), nil), http.StatusBadRequest, "INVALID_TRACE_ID")
		requireError(t, mustDo(t, http.MethodGet, traces+strings.Repeat("0", 16), nil), http.StatusBadRequest, "INVALID_TRACE_ID")
		requireError(t, mustDo(t, http.MethodGet, traces+randomTraceID(t), nil), http.StatusNotFound, "TRACE_NOT_FOUND")
		requireError(t, mustDo(t, http.MethodGet, traces+randomTraceID(t)+"?flat=maybe", nil), http.StatusBadRequest, "INVALID_PARAMETER")
		resp := mustDo(t, http.MethodPost, traces+randomTraceID(t), nil)
		requireError(t, resp, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		require.Contains(t, resp.Header.Get("Allow"), "GET")
		requireError(t, mustDo(t, http.MethodGet, api+"/nope", nil), http.StatusNotFound, "NOT_FOUND")
	})

	// A clean run shuts down cleanly.
	require.NoError(t, col.stop(), "collector exit after SIGTERM")
	out := col.output.String()
	require.NotContains(t, out, "panic")
	require.NotContains(t, out, "span index failed")
}

// closeIdleOnShutdown closes the HTTP exporter's idle connections when it is
// shut down, which the exporter itself does not do.
type closeIdleOnShutdown struct {
	*otlptrace.Exporter
	tr *http.Transport
}

func (c closeIdleOnShutdown) Shutdown(ctx context.Context) error {
	err := c.Exporter.Shutdown(ctx)
	c.tr.CloseIdleConnections()
	return err
}

// getTrace polls the native API until the trace has all its spans.
func getTrace(t *testing.T, url string) apiTrace {
	t.Helper()
	var tr apiTrace
	poll(t, lookupTimeout, "GET "+url+" to return every span", func() error {
		resp, err := get(url, nil)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK {
			return fmt.Errorf("status %d, body %s", resp.Status, resp.Body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			return stopPolling{fmt.Errorf("Content-Type %q", ct)}
		}
		tr = apiTrace{}
		if err := resp.decode(&tr); err != nil {
			return stopPolling{err}
		}
		switch {
		case tr.SpanCount > spansPerTrace:
			return stopPolling{fmt.Errorf("span_count %d, want %d: was the retried span stored twice?", tr.SpanCount, spansPerTrace)}
		case tr.SpanCount < spansPerTrace:
			return fmt.Errorf("span_count %d, want %d", tr.SpanCount, spansPerTrace)
		}
		return nil
	})
	return tr
}

func parseTime(t *testing.T, field, v string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, v)
	require.NoErrorf(t, err, "%s %q is not RFC 3339", field, v)
	return ts
}

// checkTrace reads the trace back as a tree and flat and checks every field
// the test controls.
func checkTrace(t *testing.T, api string, s sentTrace, before time.Time) {
	t.Helper()
	id := s.TraceID.String()
	tr := getTrace(t, api+"/api/v1/traces/"+id)

	// The summary.
	require.Equal(t, id, tr.ID)
	require.Equal(t, id, tr.TraceID)
	require.Equal(t, spansPerTrace, tr.SpanCount)
	require.Equal(t, 1, tr.ErrorCount)
	require.Equal(t, "error", tr.Status)
	require.Equal(t, rootName, tr.Name)
	require.NotNil(t, tr.ServiceName)
	require.Equal(t, "frontend", *tr.ServiceName)
	require.NotNil(t, tr.RootService)
	require.Equal(t, "frontend", *tr.RootService)
	require.False(t, tr.IsTruncated)
	require.NotEmpty(t, tr.OrganizationID)
	require.True(t, s.Base.Add(rootStart).Equal(parseTime(t, "started_at", tr.StartedAt)), "started_at %s, want %s", tr.StartedAt, s.Base.UTC())
	require.True(t, s.Base.Add(rootEnd).Equal(parseTime(t, "ended_at", tr.EndedAt)), "ended_at %s, want %s", tr.EndedAt, s.Base.Add(rootEnd).UTC())
	require.Equal(t, uint64((rootEnd-rootStart)/time.Millisecond), tr.DurationMS)
	// created_at and updated_at are when the index saw the first and last span.
	created, updated := parseTime(t, "created_at", tr.CreatedAt), parseTime(t, "updated_at", tr.UpdatedAt)
	require.WithinRange(t, created, before.Add(-time.Second), time.Now().Add(time.Second), "created_at")
	require.WithinRange(t, updated, created, time.Now().Add(time.Second), "updated_at")

	// The tree: the real root and the orphan, by start time.
	require.Len(t, tr.Spans, 2, "roots")
	root, orphan := tr.Spans[0], tr.Spans[1]
	checkSpan(t, root, s, s.Root, nil, rootName, "SERVER", "UNSET", "frontend", rootStart, rootEnd)
	require.Equal(t, "/checkout", root.Attributes["http.route"])
	checkSpan(t, orphan, s, s.Orphan, &s.MissingParent, orphanName, "CONSUMER", "UNSET", "payment", orphanStart, orphanEnd)
	require.Empty(t, orphan.Children)

	require.Len(t, root.Children, 1, "children of the root")
	client := root.Children[0]
	rootID := s.Root.SpanID()
	checkSpan(t, client, s, s.Client, &rootID, clientName, "CLIENT", "UNSET", "frontend", clientStart, clientEnd)

	require.Len(t, client.Children, 1, "children of the client span")
	payment := client.Children[0]
	clientID := s.Client.SpanID()
	checkSpan(t, payment, s, s.Payment, &clientID, paymentName, "SERVER", "ERROR", "payment", paymentStart, paymentEnd)
	require.Empty(t, payment.Children)
	require.Equal(t, "card declined", payment.StatusMessage)
	// Attribute types survive: integers and floats as JSON numbers, arrays as arrays.
	require.Equal(t, json.Number("2"), payment.Attributes["retries"])
	require.Equal(t, json.Number("42.5"), payment.Attributes["amount"])
	require.Equal(t, []any{"card", "eu"}, payment.Attributes["tags"])
	require.Equal(t, false, payment.Attributes["captured"])
	require.Len(t, payment.Events, 1)
	ev := payment.Events[0]
	require.Equal(t, "exception", ev.Name)
	require.Equal(t, uint64(s.Base.Add(eventAt).UnixNano()), ev.TimeUnixNano)
	require.True(t, s.Base.Add(eventAt).Equal(parseTime(t, "events[0].time", ev.Time)), "event time %s", ev.Time)
	require.Equal(t, map[string]any{"exception.type": "CardDeclined"}, ev.Attributes)

	// Flat: every span in one list, by start time, no children.
	resp := mustDo(t, http.MethodGet, api+"/api/v1/traces/"+id+"?flat=true", nil)
	require.Equal(t, http.StatusOK, resp.Status, "body %s", resp.Body)
	var flat apiTrace
	require.NoError(t, resp.decode(&flat))
	require.Equal(t, id, flat.ID)
	require.Equal(t, spansPerTrace, flat.SpanCount)
	var got []string
	for _, sp := range flat.Spans {
		got = append(got, sp.SpanID)
		require.NotNil(t, sp.Children, "span %s: children must be an empty list", sp.SpanID)
		require.Empty(t, sp.Children, "span %s", sp.SpanID)
	}
	want := []string{s.Root.SpanID().String(), s.Client.SpanID().String(), s.Payment.SpanID().String(), s.Orphan.SpanID().String()}
	require.Equal(t, want, got, "flat spans by start time")

	// flat=false is the tree again.
	resp = mustDo(t, http.MethodGet, api+"/api/v1/traces/"+id+"?flat=false", nil)
	require.Equal(t, http.StatusOK, resp.Status, "body %s", resp.Body)
	var tree apiTrace
	require.NoError(t, resp.decode(&tree))
	require.Len(t, tree.Spans, 2)
}

// checkSpan checks one span of the native document.
func checkSpan(t *testing.T, got apiSpan, s sentTrace, sc trace.SpanContext, parent *trace.SpanID,
	name, kind, status, service string, start, end time.Duration,
) {
	t.Helper()
	id := sc.SpanID().String()
	require.Equal(t, id, got.SpanID, "span_id of %q", name)
	require.Equal(t, id, got.ID, "id of %q", name)
	require.Equal(t, s.TraceID.String(), got.TraceID, "trace_id of %q", name)
	if parent == nil {
		require.Nil(t, got.ParentSpanID, "parent_span_id of %q", name)
	} else {
		require.NotNil(t, got.ParentSpanID, "parent_span_id of %q", name)
		require.Equal(t, parent.String(), *got.ParentSpanID, "parent_span_id of %q", name)
	}
	require.Equal(t, name, got.Name)
	require.Equal(t, kind, got.Kind, "kind of %q", name)
	require.Equal(t, status, got.StatusCode, "status_code of %q", name)
	require.Equal(t, service, got.ResourceAttributes["service.name"], "resource service.name of %q", name)
	require.Equal(t, uint64(s.Base.Add(start).UnixNano()), got.StartTimeUnixNano, "start of %q", name)
	require.Equal(t, uint64(s.Base.Add(end).UnixNano()), got.EndTimeUnixNano, "end of %q", name)
	require.Equal(t, uint64(end-start), got.DurationNS, "duration_ns of %q", name)
	require.NotNil(t, got.Events, "events of %q must be a list", name)
	require.NotNil(t, got.Children, "children of %q must be a list", name)
}

// checkLookupForms looks the trace up by its other accepted id forms.
func checkLookupForms(t *testing.T, api string, s sentTrace) {
	t.Helper()
	id := s.TraceID.String()
	low := binary.BigEndian.Uint64(s.TraceID[8:])
	for _, form := range []struct{ name, segment string }{
		{"low 64 bits, hex", id[16:]},
		{"low 64 bits, decimal", strconv.FormatUint(low, 10)},
		{"uppercase hex", strings.ToUpper(id)},
	} {
		resp := mustDo(t, http.MethodGet, api+"/api/v1/traces/"+form.segment, nil)
		require.Equalf(t, http.StatusOK, resp.Status, "%s %q: body %s", form.name, form.segment, resp.Body)
		var tr apiTrace
		require.NoError(t, resp.decode(&tr))
		require.Equalf(t, id, tr.ID, "%s %q", form.name, form.segment)
		require.Equalf(t, id, tr.TraceID, "%s %q", form.name, form.segment)
		require.Equalf(t, spansPerTrace, tr.SpanCount, "%s %q", form.name, form.segment)
	}
}

// TestAuth checks that the API honours an authenticator extension.
func TestAuth(t *testing.T) {
	collectorBinary(t)
	apiPort, grpcPort := freePort(t), freePort(t)
	col := startCollector(t, nopCollector{api: apiPort, grpc: grpcPort,
		others: bearerTokenAuth, otherNames: []string{"bearertokenauth"},
		extension: "    auth:\n      authenticator: bearertokenauth\n"}.config())
	good := map[string]string{"Authorization": "Bearer s3cret"}
	col.waitReady(t, apiPort, good, grpcPort)

	url := fmt.Sprintf("http://%s/api/v1/traces/%s", addr(apiPort), randomTraceID(t))
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"no Authorization", nil},
		{"wrong token", map[string]string{"Authorization": "Bearer wrong"}},
		{"wrong scheme", map[string]string{"Authorization": "Basic s3cret"}},
	} {
		resp := mustDo(t, http.MethodGet, url, tc.headers)
		require.Equalf(t, http.StatusUnauthorized, resp.Status, "%s: body %s", tc.name, resp.Body)
	}
	requireError(t, mustDo(t, http.MethodGet, url, good), http.StatusNotFound, "TRACE_NOT_FOUND")
	// Every contract sits behind the same authenticator.
	for _, path := range []string{"/v1/trace/call/" + exampleCallID, "/api/v2/trace/" + exampleTraceID} {
		resp := mustDo(t, http.MethodGet, "http://"+addr(apiPort)+path, nil)
		require.Equalf(t, http.StatusUnauthorized, resp.Status, "%s without a token: body %s", path, resp.Body)
		resp = mustDo(t, http.MethodGet, "http://"+addr(apiPort)+path, good)
		require.Equalf(t, http.StatusNotFound, resp.Status, "%s with the token: body %s", path, resp.Body)
	}
	// Errors that routing finds come after authentication too.
	resp := mustDo(t, http.MethodGet, fmt.Sprintf("http://%s/nope", addr(apiPort)), nil)
	require.Equalf(t, http.StatusUnauthorized, resp.Status, "body %s", resp.Body)

	require.NoError(t, col.stop(), "collector exit after SIGTERM")
}

// TestReceiverNeedsItsExtension checks that the collector refuses to start
// when the receiver's extension is missing or is not a tracelookup extension.
func TestReceiverNeedsItsExtension(t *testing.T) {
	collectorBinary(t)
	for _, tc := range []struct {
		name      string
		extension string
		want      []string
	}{
		{"not configured", "tracelookup/missing", []string{`"tracelookup/missing"`, "extension not found"}},
		{"not a tracelookup extension", "health_check", []string{`"health_check"`, "not a tracelookup extension"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiPort, grpcPort, healthPort := freePort(t), freePort(t), freePort(t)
			col := startCollector(t, nopCollector{api: apiPort, grpc: grpcPort, receiverExtension: tc.extension,
				others: fmt.Sprintf("  health_check:\n    endpoint: 127.0.0.1:%d\n", healthPort), otherNames: []string{"health_check"}}.config())
			exited, err := col.waitExit(readyTimeout)
			require.True(t, exited, "the collector is still running %s after start", readyTimeout)
			var exitErr *exec.ExitError
			require.True(t, errors.As(err, &exitErr), "the collector must exit non-zero, got %v", err)
			require.NotZero(t, exitErr.ExitCode())
			out := col.output.String()
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			require.NotContains(t, out, "Everything is ready")
		})
	}
}
