// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
)

var _ receiver.Traces = (*tracelookupReceiver)(nil)

type tracelookupReceiver struct {
	cfg      *Config
	set      receiver.Settings
	next     consumer.Traces
	obsGRPC  *receiverhelper.ObsReport
	obsHTTP  *receiverhelper.ObsReport
	serverGR *grpc.Server
	serverHT *http.Server
	wg       sync.WaitGroup
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Traces) (*tracelookupReceiver, error) {
	r := &tracelookupReceiver{cfg: cfg, set: set, next: next}
	var err error
	if r.obsGRPC, err = receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "grpc", ReceiverCreateSettings: set}); err != nil {
		return nil, err
	}
	if r.obsHTTP, err = receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set}); err != nil {
		return nil, err
	}
	return r, nil
}

// Start finds the index, then serves OTLP on the enabled protocols.
func (r *tracelookupReceiver) Start(ctx context.Context, host component.Host) error {
	index, err := tracelookupextension.FindSpanIndex(host.GetExtensions(), r.cfg.Extension, "receiver", r.set.ID)
	if err != nil {
		return err
	}
	if err := r.startGRPC(ctx, host, index); err != nil {
		return err
	}
	if err := r.startHTTP(ctx, host, index); err != nil {
		return errors.Join(err, r.Shutdown(ctx))
	}
	return nil
}

func (r *tracelookupReceiver) startGRPC(ctx context.Context, host component.Host, index tracelookupextension.SpanIndex) error {
	if !r.cfg.Protocols.GRPC.HasValue() {
		return nil
	}
	cfg := r.cfg.Protocols.GRPC.Get()
	var err error
	if r.serverGR, err = cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings); err != nil {
		return err
	}
	r.serverGR.RegisterService(&traceServiceDesc, r.newExporter(index, r.obsGRPC))
	ln, err := cfg.NetAddr.Listen(ctx)
	if err != nil {
		return err
	}
	r.set.Logger.Info("Starting GRPC server", zap.String("endpoint", ln.Addr().String()))
	r.wg.Go(func() {
		if errGRPC := r.serverGR.Serve(ln); errGRPC != nil && !errors.Is(errGRPC, grpc.ErrServerStopped) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errGRPC))
		}
	})
	return nil
}

func (r *tracelookupReceiver) startHTTP(ctx context.Context, host component.Host, index tracelookupextension.SpanIndex) error {
	if !r.cfg.Protocols.HTTP.HasValue() {
		return nil
	}
	cfg := r.cfg.Protocols.HTTP.Get()
	exp := r.newExporter(index, r.obsHTTP)
	mux := http.NewServeMux()
	mux.HandleFunc(string(cfg.TracesURLPath), func(w http.ResponseWriter, req *http.Request) { handleTraces(w, req, exp) })
	ln, err := cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return err
	}
	if r.serverHT, err = cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux, errorHandlerOption()); err != nil {
		_ = ln.Close()
		return err
	}
	r.set.Logger.Info("Starting HTTP server", zap.String("endpoint", ln.Addr().String()))
	r.wg.Go(func() {
		if errHTTP := r.serverHT.Serve(ln); errHTTP != nil && !errors.Is(errHTTP, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errHTTP))
		}
	})
	return nil
}

// Shutdown stops both servers; it is safe to call when Start never ran.
func (r *tracelookupReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.serverHT != nil {
		err = r.serverHT.Shutdown(ctx)
	}
	if r.serverGR != nil {
		r.serverGR.GracefulStop()
	}
	r.wg.Wait()
	return err
}

func (r *tracelookupReceiver) newExporter(index tracelookupextension.SpanIndex, obs *receiverhelper.ObsReport) *exporter {
	return &exporter{index: index, next: r.next, obs: obs, logger: r.set.Logger, maxDepth: r.cfg.MaxAttributeDepth}
}

// exporter handles one OTLP export for either transport: the batch goes into
// the index, then on to the next consumer, unchanged.
type exporter struct {
	index    tracelookupextension.SpanIndex
	next     consumer.Traces
	obs      *receiverhelper.ObsReport
	logger   *zap.Logger
	maxDepth int
}

const dataFormatProtobuf = "protobuf"

// export indexes td under tenant, the value of the index's tenant header
// ("" when the request has none), and passes it on.
func (e *exporter) export(ctx context.Context, tenant string, td ptrace.Traces, format string) (ptraceotlp.ExportResponse, error) {
	n := td.SpanCount()
	if n == 0 {
		return ptraceotlp.NewExportResponse(), nil
	}
	ctx = e.obs.StartTracesOp(ctx)
	tracelookupextension.IndexSafely(e.index, e.logger, tenant, td)
	err := e.next.ConsumeTraces(ctx, td)
	e.obs.EndTracesOp(ctx, format, n, err)
	if err != nil {
		return ptraceotlp.NewExportResponse(), statusFromError(err)
	}
	return ptraceotlp.NewExportResponse(), nil
}

// statusFromError maps a consumer error to a gRPC status as the otlp receiver
// does: permanent errors are not retryable, the rest are.
func statusFromError(err error) error {
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	code := codes.Unavailable
	if consumererror.IsPermanent(err) {
		code = codes.Internal
	}
	return status.New(code, err.Error()).Err()
}
