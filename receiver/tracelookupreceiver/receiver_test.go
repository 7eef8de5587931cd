// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/metadata"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// fakeIndex records what it was given; it can be made to panic.
type fakeIndex struct {
	component.StartFunc
	component.ShutdownFunc
	mu      sync.Mutex
	spans   int
	tenants map[string]int // spans by the tenant the request named
	panic   bool
}

func (*fakeIndex) TenantHeader() string { return "X-Scope-OrgID" }

func (f *fakeIndex) IndexTraces(tenant string, td ptrace.Traces) {
	if f.panic {
		panic("index broke")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spans += td.SpanCount()
	if f.tenants == nil {
		f.tenants = make(map[string]int)
	}
	f.tenants[tenant] += td.SpanCount()
}

func (f *fakeIndex) byTenant() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.tenants)
}

func (f *fakeIndex) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spans
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

type started struct {
	grpcAddr, httpURL string
	tel               *componenttest.Telemetry
}

// configWith returns a config with both protocols on free loopback ports.
func configWith(t *testing.T, extension string) (cfg *Config, grpcAddr, httpAddr string) {
	t.Helper()
	grpcAddr, httpAddr = freeAddr(t), freeAddr(t)
	cfg = NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"extension": extension,
		"protocols": map[string]any{
			"grpc": map[string]any{"endpoint": grpcAddr},
			"http": map[string]any{"endpoint": httpAddr},
		},
	}).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	return cfg, grpcAddr, httpAddr
}

func startReceiver(t *testing.T, index component.Component, next consumer.Traces) started {
	t.Helper()
	cfg, grpcAddr, httpAddr := configWith(t, "tracelookup")
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host{map[component.ID]component.Component{defaultExtension: index}}))
	t.Cleanup(func() {
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return started{grpcAddr: grpcAddr, httpURL: "http://" + httpAddr + "/v1/traces", tel: tel}
}

func testTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(i + 1)})
		s.SetName("op")
		s.Attributes().PutInt("i", int64(i))
	}
	return td
}

func grpcExport(t *testing.T, addr string, td ptrace.Traces) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}

func httpPost(t *testing.T, url, contentType string, body []byte) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestIndexesThenPassesOnUnchanged(t *testing.T) {
	index := &fakeIndex{}
	sink := &consumertest.TracesSink{}
	s := startReceiver(t, index, sink)

	sent := testTraces(3)
	want, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(sent)
	require.NoError(t, err)
	require.NoError(t, grpcExport(t, s.grpcAddr, sent))

	req := ptraceotlp.NewExportRequestFromTraces(testTraces(2))
	pb, err := req.MarshalProto()
	require.NoError(t, err)
	code, ct, _ := httpPost(t, s.httpURL, "application/x-protobuf", pb)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "application/x-protobuf", ct)

	js, err := req.MarshalJSON()
	require.NoError(t, err)
	code, ct, body := httpPost(t, s.httpURL, "application/json; charset=utf-8", js)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "application/json", ct)
	assert.JSONEq(t, `{"partialSuccess":{}}`, string(body))

	assert.Equal(t, 7, index.count())
	assert.Equal(t, 7, sink.SpanCount())
	got, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(sink.AllTraces()[0])
	require.NoError(t, err)
	assert.Equal(t, want, got, "the next consumer gets the data as sent")

	m, err := s.tel.GetMetric("otelcol_receiver_accepted_spans")
	require.NoError(t, err)
	var accepted int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		accepted += dp.Value
	}
	assert.Equal(t, int64(7), accepted)
}

func TestRealExtensionIndexes(t *testing.T) {
	extCfg := tracelookupextension.NewFactory().CreateDefaultConfig().(*tracelookupextension.Config)
	extCfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	ext, err := tracelookupextension.NewFactory().Create(context.Background(), extensiontest.NewNopSettings(component.MustNewType("tracelookup")), extCfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })

	sink := &consumertest.TracesSink{}
	s := startReceiver(t, ext, sink)
	require.NoError(t, grpcExport(t, s.grpcAddr, testTraces(4)))

	resp, err := http.Get("http://" + extCfg.ServerConfig.NetAddr.Endpoint + "/api/v1/traces/0102030405060708090a0b0c0d0e0f10?flat=true")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"span_count":4`)
	assert.Equal(t, 4, sink.SpanCount())
}

func TestConsumerErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		grpcCode codes.Code
		httpCode int
	}{
		{"retryable", errors.New("queue full"), codes.Unavailable, http.StatusServiceUnavailable},
		{"permanent", consumererror.NewPermanent(errors.New("bad data")), codes.Internal, http.StatusInternalServerError},
		{"status", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			index := &fakeIndex{}
			s := startReceiver(t, index, consumertest.NewErr(tt.err))
			err := grpcExport(t, s.grpcAddr, testTraces(1))
			assert.Equal(t, tt.grpcCode, status.Code(err))

			pb, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(1)).MarshalProto()
			code, ct, body := httpPost(t, s.httpURL, "application/x-protobuf", pb)
			assert.Equal(t, tt.httpCode, code)
			assert.Equal(t, "application/x-protobuf", ct)
			assert.NotEmpty(t, body)
			js, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(1)).MarshalJSON()
			code, _, body = httpPost(t, s.httpURL, "application/json", js)
			assert.Equal(t, tt.httpCode, code)
			assert.Contains(t, string(body), `"message"`)
			assert.Equal(t, 3, index.count(), "spans are indexed before the next consumer is called")
		})
	}
}

func TestBadHTTPRequests(t *testing.T) {
	s := startReceiver(t, &fakeIndex{}, consumertest.NewNop())
	code, _, _ := httpPost(t, s.httpURL, "text/plain", []byte("x"))
	assert.Equal(t, http.StatusUnsupportedMediaType, code)
	code, ct, body := httpPost(t, s.httpURL, "application/json", []byte("{not json"))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "application/json", ct)
	assert.Contains(t, string(body), `"code":3`)
	code, _, _ = httpPost(t, s.httpURL, "application/x-protobuf", []byte{0xff, 0xff, 0xff})
	assert.Equal(t, http.StatusBadRequest, code)
	resp, err := http.Get(s.httpURL)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	// An empty request is accepted and passes nothing on.
	code, _, _ = httpPost(t, s.httpURL, "application/json", []byte("{}"))
	assert.Equal(t, http.StatusOK, code)
}

func TestIndexFailureDoesNotLoseData(t *testing.T) {
	sink := &consumertest.TracesSink{}
	s := startReceiver(t, &fakeIndex{panic: true}, sink)
	require.NoError(t, grpcExport(t, s.grpcAddr, testTraces(2)))
	assert.Equal(t, 2, sink.SpanCount())
}

func TestStartNeedsTheExtension(t *testing.T) {
	cfg, _, _ := configWith(t, "tracelookup")
	r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)

	err = r.Start(context.Background(), host{})
	require.ErrorIs(t, err, tracelookupextension.ErrExtensionMissing)
	assert.ErrorContains(t, err, "service::extensions")
	assert.ErrorContains(t, err, `"tracelookup"`)

	other := component.MustNewID("health_check")
	cfg.Extension = other
	err = r.Start(context.Background(), host{map[component.ID]component.Component{other: &notAnIndex{}}})
	require.ErrorIs(t, err, tracelookupextension.ErrNotSpanIndex)
	require.NoError(t, r.Shutdown(context.Background()))
}

type notAnIndex struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestNamedInstancesSideBySide(t *testing.T) {
	a, b := &fakeIndex{}, &fakeIndex{}
	idA, idB := component.MustNewIDWithName("tracelookup", "a"), component.MustNewIDWithName("tracelookup", "b")
	exts := map[component.ID]component.Component{idA: a, idB: b}
	var addrs []string
	for _, id := range []component.ID{idA, idB} {
		cfg, addr, _ := configWith(t, id.String())
		r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), host{exts}))
		t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
		addrs = append(addrs, addr)
	}
	require.NoError(t, grpcExport(t, addrs[0], testTraces(1)))
	require.NoError(t, grpcExport(t, addrs[1], testTraces(2)))
	assert.Equal(t, 1, a.count())
	assert.Equal(t, 2, b.count())
}

func TestShutdownWithoutStart(t *testing.T) {
	r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), NewFactory().CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestLifecycleTwice(t *testing.T) {
	for range 2 {
		startReceiver(t, &fakeIndex{}, consumertest.NewNop())
	}
}

// The tenant header reaches the index from gRPC metadata and from HTTP
// headers; a request without it is indexed with "" (the index decides).
func TestTenantHeaderReachesTheIndex(t *testing.T) {
	index := &fakeIndex{}
	sink := &consumertest.TracesSink{}
	s := startReceiver(t, index, sink)

	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// gRPC clients send metadata keys in lower case; any case is the same key.
	ctx = grpcmetadata.AppendToOutgoingContext(ctx, "X-Scope-OrgID", "team-grpc")
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(testTraces(3)))
	require.NoError(t, err)

	pb, err := ptraceotlp.NewExportRequestFromTraces(testTraces(2)).MarshalProto()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.httpURL, bytes.NewReader(pb))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("x-scope-orgid", "team-http")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, grpcExport(t, s.grpcAddr, testTraces(1)))

	// Two values name no single tenant: the index gets one it refuses.
	req, err = http.NewRequest(http.MethodPost, s.httpURL, bytes.NewReader(pb))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Add("X-Scope-OrgID", "team-a")
	req.Header.Add("X-Scope-OrgID", "team-b")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	assert.Equal(t, map[string]int{"team-grpc": 3, "team-http": 2, "": 1, "team-a,team-b": 2}, index.byTenant())
	assert.Equal(t, 8, sink.SpanCount(), "every span goes on down the pipeline")
}

// A throttled request says when to retry when the pipeline said so (a
// RetryInfo detail), as the otlp receiver's HTTP server does; without one
// it says nothing.
func TestRetryAfterFromRetryInfo(t *testing.T) {
	st, err := status.New(codes.Unavailable, "memory limit").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"with retry info", "7", st.Err()},
		{"without", "", errors.New("queue full")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startReceiver(t, &fakeIndex{}, consumertest.NewErr(tc.err))
			js, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(1)).MarshalJSON()
			resp, err := http.Post(s.httpURL, "application/json", bytes.NewReader(js))
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, tc.want, resp.Header.Get("Retry-After"))
		})
	}
}
