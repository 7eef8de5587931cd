// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// node is one collector of a replica set: its API and OTLP/gRPC ports.
type node struct {
	c         *collector
	api, grpc int
}

func (n node) url() string { return "http://" + addr(n.api) }

// startNode starts a collector whose extension holds extra options.
func startNode(t *testing.T, extra string) node {
	n := node{api: freePort(t), grpc: freePort(t)}
	n.c = startCollector(t, nopConfig(n.api, n.grpc, freePort(t), extra))
	n.c.waitReady(t, n.api, nil, n.grpc)
	return n
}

// sendSpan exports one span of service to n, as the child of parent (or a
// root), and returns its context.
func sendSpan(t *testing.T, n node, service, name string, parent trace.SpanContext, attrs ...attribute.KeyValue) trace.SpanContext {
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(addr(n.grpc)), otlptracegrpc.WithTimeout(exportTimeout))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	defer func() { require.NoError(t, tp.Shutdown(ctx)) }()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	_, span := tp.Tracer("e2e").Start(ctx, name, trace.WithAttributes(attrs...))
	span.End()
	return span.SpanContext()
}

// contractSpans reads how many spans each contract answers for trace id.
func contractSpans(t *testing.T, base, id, callID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	read := func(path string, v any) *response {
		resp := mustDo(t, "GET", base+path, nil)
		require.Equal(t, 200, resp.Status, "%s: %s", path, resp.Body)
		require.NoError(t, json.Unmarshal(resp.Body, v), path)
		return resp
	}
	var native struct{ Spans []any }
	read("/api/v1/traces/"+id+"?flat=true", &native)
	out["native"] = len(native.Spans)
	var apm struct {
		Data struct{ Attributes struct{ Spans []any } }
	}
	read("/api/v2/trace/"+id, &apm)
	out["003"] = len(apm.Data.Attributes.Spans)
	var call struct {
		SpanCount int `json:"span_count"`
	}
	read("/v1/trace/call/"+callID, &call)
	out["000"] = call.SpanCount
	var tempo struct {
		Trace struct {
			ResourceSpans []struct{ ScopeSpans []struct{ Spans []any } }
		}
	}
	read("/api/v2/traces/"+id, &tempo)
	for _, rs := range tempo.Trace.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			out["tempo"] += len(ss.Spans)
		}
	}
	var jaeger struct{ Data []struct{ Spans []any } }
	read("/api/traces/"+id, &jaeger)
	require.Len(t, jaeger.Data, 1)
	out["jaeger"] = len(jaeger.Data[0].Spans)
	var zipkin []any
	read("/zipkin/api/v2/trace/"+id, &zipkin)
	out["zipkin"] = len(zipkin)
	return out
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

func TestReplicasAndLongTermStore(t *testing.T) {
	collectorBinary(t)
	// The long-term store: a collector of ours, serving Tempo's API.
	store := startNode(t, "")
	apis := []int{freePort(t), freePort(t), freePort(t)}
	var endpoints []string
	for _, p := range apis {
		endpoints = append(endpoints, "http://"+addr(p))
	}
	remoteCfg := fmt.Sprintf(`    peers:
      endpoints: [%s]
      timeout: 1s
    long_term_store:
      kind: tempo
      endpoint: %s
      timeout: 2s
`, strings.Join(endpoints, ", "), store.url())
	var rs []node
	for _, p := range apis {
		n := node{api: p, grpc: freePort(t)}
		n.c = startCollector(t, nopConfig(n.api, n.grpc, freePort(t), remoteCfg))
		rs = append(rs, n)
	}
	for _, n := range rs {
		n.c.waitReady(t, n.api, nil, n.grpc)
	}

	// One trace, its spans sent to three replicas (and to the store, whole).
	callID := "5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
	root := sendSpan(t, rs[0], "frontend", "GET /checkout", trace.SpanContext{}, attribute.String("call.id", callID))
	child := sendSpan(t, rs[1], "payment", "charge", root)
	sendSpan(t, rs[2], "db", "SELECT", child)
	id := root.TraceID().String()
	whole := map[string]int{"native": 3, "003": 3, "000": 3, "tempo": 3, "jaeger": 3, "zipkin": 3}
	for i, n := range rs {
		poll(t, 10*time.Second, "the replicas to index their spans", func() error {
			if got := contractSpans(t, n.url(), id, callID); got["native"] != 3 {
				return fmt.Errorf("replica %d: %v", i, got)
			}
			return nil
		})
		assert.Equal(t, whole, contractSpans(t, n.url(), id, callID), "replica %d answers the whole trace on every contract", i)
		var res struct {
			Traces []struct {
				SpanCount int `json:"span_count"`
			}
		}
		resp := mustDo(t, "GET", n.url()+"/api/v1/traces?service=db", nil)
		require.NoError(t, json.Unmarshal(resp.Body, &res))
		require.Len(t, res.Traces, 1, "search lists the trace once")
		assert.Equal(t, 3, res.Traces[0].SpanCount)
	}

	// Latency: a trace of the same shape held whole by one collector with
	// no peers (the store's), against the split one looked up on a replica
	// that fans out to its two peers.
	aloneRoot := sendSpan(t, store, "frontend", "GET /checkout", trace.SpanContext{})
	sendSpan(t, store, "db", "SELECT", sendSpan(t, store, "payment", "charge", aloneRoot))
	aloneID := aloneRoot.TraceID().String()
	var alone, fanned []time.Duration
	for range 200 {
		start := time.Now()
		mustDo(t, "GET", store.url()+"/api/v1/traces/"+aloneID, nil)
		alone = append(alone, time.Since(start))
		start = time.Now()
		mustDo(t, "GET", rs[0].url()+"/api/v1/traces/"+id, nil)
		fanned = append(fanned, time.Since(start))
	}
	a50, a99 := percentiles(alone)
	f50, f99 := percentiles(fanned)
	t.Logf("lookup latency over loopback, 200 lookups each: one replica p50 %v p99 %v; fanned out to three p50 %v p99 %v", a50, a99, f50, f99)

	// A trace evicted from every replica (here: never in one) comes back
	// whole from the long-term store.
	old := sendSpan(t, store, "batch", "nightly job", trace.SpanContext{})
	sendSpan(t, store, "batch", "step", old)
	resp := mustDo(t, "GET", rs[0].url()+"/api/v1/traces/"+old.TraceID().String(), nil)
	require.Equal(t, 200, resp.Status, string(resp.Body))
	var got struct{ Spans []any }
	require.NoError(t, json.Unmarshal(resp.Body, &got))
	assert.Len(t, got.Spans, 1, "the root, its child nested under it")
	assert.Equal(t, "long_term_store", resp.Header.Get("X-Trace-Sources"))

	// A replica stops: the others answer what they hold, flagged partial, never a 5xx.
	require.NoError(t, rs[2].c.stop())
	for _, path := range []string{"/api/v1/traces/" + id, "/api/v2/trace/" + id, "/v1/trace/call/" + callID, "/api/v2/traces/" + id, "/api/traces/" + id, "/zipkin/api/v2/trace/" + id, "/api/v1/traces"} {
		start := time.Now()
		resp := mustDo(t, "GET", rs[0].url()+path, nil)
		t.Logf("a stopped replica: %s answered %d after %v", path, resp.Status, time.Since(start))
		assert.Equal(t, 200, resp.Status, path)
		if path != "/api/traces/"+id && path != "/api/v1/traces" {
			assert.Contains(t, resp.Header.Get("X-Trace-Truncated"), "partial", path)
		}
	}
	var apm struct {
		Data struct {
			Attributes struct {
				IsTruncated bool `json:"is_truncated"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(mustDo(t, "GET", rs[0].url()+"/api/v2/trace/"+id, nil).Body, &apm))
	assert.True(t, apm.Data.Attributes.IsTruncated, "003's is_truncated")
	var tempo struct{ Status string }
	require.NoError(t, json.Unmarshal(mustDo(t, "GET", rs[0].url()+"/api/v2/traces/"+id, nil).Body, &tempo))
	assert.Equal(t, "PARTIAL", tempo.Status)
}

func TestLongTermStoreUnreachable(t *testing.T) {
	collectorBinary(t)
	closed := freePort(t) // nothing listens there
	// A store that accepts connections and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tt := range []struct {
		endpoint     string
		status       int
		code, native string
	}{
		{"http://" + addr(closed), 503, "TEMPO_UNAVAILABLE", "LONG_TERM_STORE_UNAVAILABLE"},
		{"http://" + hung.Addr().String(), 504, "TEMPO_TIMEOUT_API", "LONG_TERM_STORE_TIMEOUT"},
	} {
		n := node{api: freePort(t), grpc: freePort(t)}
		n.c = startCollector(t, nopConfig(n.api, n.grpc, freePort(t), fmt.Sprintf("    long_term_store:\n      kind: tempo\n      endpoint: %s\n      timeout: 300ms\n", tt.endpoint)))
		// Not waitReady: a trace the index does not hold is the store's error here.
		poll(t, readyTimeout, "the collector to be ready", func() error {
			if !strings.Contains(n.c.output.String(), "Everything is ready") {
				return errors.New("not ready yet")
			}
			return nil
		})
		start := time.Now()
		resp := mustDo(t, "GET", n.url()+"/v1/trace/call/0e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", nil)
		t.Logf("store %s, timeout 300ms: %d after %v", tt.code, resp.Status, time.Since(start))
		require.Equal(t, tt.status, resp.Status, string(resp.Body))
		var body map[string]any
		require.NoError(t, json.Unmarshal(resp.Body, &body))
		want := map[string]any{"status": "error", "error_code": tt.code, "message": "Tempo service unavailable"}
		if tt.status == 504 {
			want["message"] = "Timeout fetching trace"
		}
		assert.Equal(t, want, body, "the 000 document's body")
		resp = mustDo(t, "GET", n.url()+"/api/v1/traces/"+randomTraceID(t), nil)
		require.Equal(t, tt.status, resp.Status)
		assert.Contains(t, string(resp.Body), tt.native)
	}

	// A peer that never answers: what the replica holds comes back
	// flagged partial once the peers' timeout has passed.
	n := startNode(t, fmt.Sprintf("    peers:\n      endpoints: [http://%s]\n      timeout: 300ms\n", hung.Addr()))
	root := sendSpan(t, n, "frontend", "GET /checkout", trace.SpanContext{})
	start := time.Now()
	resp := mustDo(t, "GET", n.url()+"/api/v1/traces/"+root.TraceID().String(), nil)
	t.Logf("a hung peer, peers timeout 300ms: %d partial after %v", resp.Status, time.Since(start))
	require.Equal(t, 200, resp.Status, string(resp.Body))
	assert.Contains(t, resp.Header.Get("X-Trace-Truncated"), "partial")
}
