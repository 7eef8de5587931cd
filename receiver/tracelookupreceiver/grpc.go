// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/nesting"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
)

// The OTLP trace service is registered by hand rather than with
// ptraceotlp.RegisterGRPCServer, for one reason: the request must be checked
// before pdata unmarshals it (see package nesting), and a request refused
// there must get InvalidArgument. gRPC turns every error of the codec into
// Internal, so the check runs in the handler, on the raw bytes.
const traceServiceExport = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: exportHandler}},
	Metadata:    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// rawMessage holds a message's encoding. It implements the interface of the
// "proto" codec that pdata registers, which hands it the bytes as they came.
type rawMessage struct{ b []byte }

func (m *rawMessage) SizeProto() int                { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int   { return copy(buf, m.b) }
func (m *rawMessage) UnmarshalProto(b []byte) error { m.b = append(m.b[:0], b...); return nil }

func exportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &rawMessage{}
	if err := dec(in); err != nil {
		return nil, err
	}
	e := srv.(*exporter)
	handle := func(ctx context.Context, req any) (any, error) {
		return e.exportProto(ctx, req.(*rawMessage).b)
	}
	if interceptor == nil {
		return handle(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: traceServiceExport}, handle)
}

// exportProto checks, unmarshals and exports one protobuf request.
func (e *exporter) exportProto(ctx context.Context, body []byte) (*rawMessage, error) {
	if err := nesting.CheckProto(body, e.maxDepth); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		return nil, status.Error(codes.InvalidArgument, "the request is not a valid OTLP ExportTraceServiceRequest: "+err.Error())
	}
	resp, err := e.export(ctx, tracelookupextension.TenantOf(metadata.ValueFromIncomingContext(ctx, strings.ToLower(e.index.TenantHeader()))), req.Traces(), dataFormatProtobuf)
	if err != nil {
		return nil, err
	}
	out, err := resp.MarshalProto()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rawMessage{b: out}, nil
}
