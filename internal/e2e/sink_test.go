// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"maps"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// sink is an OTLP/gRPC trace server standing in for the collector's next
// hop: it records every span the collector's exporter delivers.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer

	port int

	mu    sync.Mutex
	spans int            // spans received, duplicates included
	ids   map[string]int // times each span id (hex) was received
}

// startSink serves on a free 127.0.0.1 port until the test ends.
func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &sink{port: ln.Addr().(*net.TCPAddr).Port, ids: map[string]int{}}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-served)
	})
	return s
}

// Export implements ptraceotlp.GRPCServer.
func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s.spans++
				s.ids[spans.At(k).SpanID().String()]++
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// received returns the span count and a copy of the per-id counts.
func (s *sink) received() (int, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans, maps.Clone(s.ids)
}
