// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/hostile"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/metadata"
)

func grpcRaw(t *testing.T, addr string, body []byte) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return conn.Invoke(ctx, traceServiceExport, &rawMessage{b: body}, &rawMessage{})
}

// The first crash of the issue: a value nested 1.3 million levels deep
// overflowed pdata's stack. Refused before unmarshaling, on every
// transport, with the status the OTLP specification gives bad data.
func TestDeeplyNestedValueRefused(t *testing.T) {
	index, sink := &fakeIndex{}, new(consumertest.TracesSink)
	s := startReceiver(t, index, sink)
	// As deep as each transport's default size limit lets through: gRPC
	// takes 4 MiB, OTLP/HTTP 20 MiB (the crash took 12 MB).
	const grpcLevels, httpLevels, jsonLevels = 450_000, 1_300_000, 600_000

	err := grpcRaw(t, s.grpcAddr, hostile.DeepProto(grpcLevels))
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "nested deeper than 64 levels")

	code, ct, body := httpPost(t, s.httpURL, pbContentType, hostile.DeepProto(httpLevels))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, pbContentType, ct)
	var st spb.Status
	require.NoError(t, proto.Unmarshal(body, &st))
	assert.Equal(t, int32(codes.InvalidArgument), st.Code)
	assert.Contains(t, st.Message, "nested deeper than 64 levels")

	code, _, body = httpPost(t, s.httpURL, jsonContentType, hostile.DeepJSON(jsonLevels))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(body), "nested deeper than 64 levels")

	// At the limit, the same shape is accepted on every transport.
	require.NoError(t, grpcRaw(t, s.grpcAddr, hostile.DeepProto(64)))
	code, _, _ = httpPost(t, s.httpURL, pbContentType, hostile.DeepProto(64))
	assert.Equal(t, http.StatusOK, code)
	code, _, body = httpPost(t, s.httpURL, jsonContentType, hostile.DeepJSON(64))
	assert.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, 3, sink.SpanCount())
	assert.Equal(t, 3, index.count())
}

func TestMalformedGRPCIsInvalidArgument(t *testing.T) {
	s := startReceiver(t, &fakeIndex{}, consumertest.NewNop())
	err := grpcRaw(t, s.grpcAddr, []byte{0x0a, 0x7f})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	// A well-formed request still answers an ExportTraceServiceResponse a real client reads.
	require.NoError(t, grpcExport(t, s.grpcAddr, testTraces(2)))
}

func TestNonUTF8JSONIsBadRequest(t *testing.T) {
	s := startReceiver(t, &fakeIndex{}, consumertest.NewNop())
	body := []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"stringValue":"` + "\xff\xfe" + `"}}]}}]}`)
	code, ct, resp := httpPost(t, s.httpURL, jsonContentType, body)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, jsonContentType, ct)
	assert.Contains(t, string(resp), "not valid UTF-8")
}

func TestDefaultHTTPTimeouts(t *testing.T) {
	cfg, _, _ := configWith(t, "tracelookup")
	httpCfg := cfg.Protocols.HTTP.Get().ServerConfig
	assert.Equal(t, time.Minute, httpCfg.ReadHeaderTimeout)
	assert.Equal(t, 30*time.Second, httpCfg.ReadTimeout)
	assert.Equal(t, 30*time.Second, httpCfg.WriteTimeout)
	assert.Equal(t, 64, cfg.MaxAttributeDepth)
}

func TestMaxAttributeDepthValidated(t *testing.T) {
	for _, depth := range []int{0, -1, 10_001} {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.MaxAttributeDepth = depth
		assert.ErrorContains(t, cfg.Validate(), "max_attribute_depth")
	}
}

// A client that sends its headers slowly, or its body, is cut off once the
// server's timeouts pass, instead of holding the connection open.
func TestSlowClientsAreCutOff(t *testing.T) {
	cfg, _, httpAddr := configWith(t, "tracelookup")
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"http": map[string]any{
			"endpoint": httpAddr, "read_header_timeout": "200ms", "read_timeout": "400ms",
		}},
	}).Unmarshal(cfg))
	set := receivertest.NewNopSettings(metadata.Type)
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host{map[component.ID]component.Component{defaultExtension: &fakeIndex{}}}))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	for name, send := range map[string]string{
		"slow headers": "POST /v1/traces HTTP/1.1\r\nHost: x\r\n",
		"slow body":    "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nab",
	} {
		conn, err := net.Dial("tcp", httpAddr)
		require.NoError(t, err)
		_, err = io.WriteString(conn, send)
		require.NoError(t, err)
		// The server, not this deadline, must end the connection.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, err = io.ReadAll(conn)
		assert.NoError(t, err, "%s: the server kept the connection open", name)
		require.NoError(t, conn.Close())
	}
}
