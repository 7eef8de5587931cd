// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// exportTimeout bounds one export request of the SDK exporters.
const exportTimeout = 10 * time.Second

// newExporterFunc makes one SDK exporter; each tracer provider gets its own,
// since shutting a provider down shuts its exporter down.
type newExporterFunc func(ctx context.Context) (sdktrace.SpanExporter, error)

// recordingExporter wraps an SDK exporter to count the export requests and
// keep their errors, which the SDK's synchronous processor would only log.
type recordingExporter struct {
	sdktrace.SpanExporter

	mu       sync.Mutex
	requests int
	spans    int
	errs     []error
}

func (e *recordingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests++
	e.spans += len(spans)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return err
}

// sentTrace is what sendTrace sent: the spans and the times it gave them.
type sentTrace struct {
	TraceID trace.TraceID
	Base    time.Time // the root span's start

	Root, Client, Payment, Orphan trace.SpanContext
	// MissingParent is the orphan's parent span id; no span has it.
	MissingParent trace.SpanID
}

// timesSent returns how many times each span (hex id) was sent.
func (s sentTrace) timesSent() map[string]int {
	return map[string]int{
		s.Root.SpanID().String():    1,
		s.Client.SpanID().String():  1,
		s.Payment.SpanID().String(): 2, // sent again, as a retry would
		s.Orphan.SpanID().String():  1,
	}
}

const (
	// spansPerTrace is how many distinct spans sendTrace sends.
	spansPerTrace = 4
	// exportsPerTrace is how many spans it sends, the retried one twice.
	exportsPerTrace = 5
)

// Span names and offsets from the root's start (start, end).
const (
	rootName    = "GET /checkout"
	clientName  = "POST /payment/charge"
	paymentName = "charge card"
	orphanName  = "refund worker"
)

var (
	rootStart, rootEnd       = 0 * time.Millisecond, 500 * time.Millisecond
	clientStart, clientEnd   = 10 * time.Millisecond, 400 * time.Millisecond
	paymentStart, paymentEnd = 20 * time.Millisecond, 300 * time.Millisecond
	eventAt                  = 150 * time.Millisecond
	orphanStart, orphanEnd   = 50 * time.Millisecond, 100 * time.Millisecond
)

// sendTrace sends one multi-service trace with the OpenTelemetry SDK, each
// span in its own export request, children before their parents, then the
// payment span a second time:
//
//	frontend GET /checkout (SERVER, root)
//	└─ frontend POST /payment/charge (CLIENT)
//	   └─ payment charge card (SERVER, status ERROR, one event)
//	payment refund worker (CONSUMER, parent never sent)
func sendTrace(t *testing.T, newExporter newExporterFunc) sentTrace {
	t.Helper()
	ctx := context.Background()
	newProvider := func(service string) (*sdktrace.TracerProvider, *recordingExporter) {
		exp, err := newExporter(ctx)
		require.NoError(t, err)
		rec := &recordingExporter{SpanExporter: exp}
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", service))),
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
			// WithSyncer exports every span as it ends: one request per span.
			sdktrace.WithSyncer(rec),
		)
		return tp, rec
	}
	frontendTP, frontendExp := newProvider("frontend")
	paymentTP, paymentExp := newProvider("payment")
	shutdown := func(tp *sdktrace.TracerProvider) {
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		defer cancel()
		require.NoError(t, tp.Shutdown(ctx))
	}
	defer shutdown(paymentTP)
	defer shutdown(frontendTP)
	frontend := frontendTP.Tracer("e2e/frontend")
	payment := paymentTP.Tracer("e2e/payment")

	base := time.Now().Add(-time.Second)
	at := func(d time.Duration) time.Time { return base.Add(d) }

	rootCtx, root := frontend.Start(ctx, rootName,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(at(rootStart)),
		trace.WithAttributes(attribute.String("http.route", "/checkout")))
	_, client := frontend.Start(rootCtx, clientName,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(at(clientStart)))

	// The payment service continues the trace from propagated context.
	remote := trace.ContextWithRemoteSpanContext(ctx, client.SpanContext())
	_, charge := payment.Start(remote, paymentName,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(at(paymentStart)),
		trace.WithAttributes(
			attribute.Int("retries", 2),
			attribute.Float64("amount", 42.5),
			attribute.StringSlice("tags", []string{"card", "eu"}),
			attribute.Bool("captured", false),
		))
	charge.AddEvent("exception",
		trace.WithTimestamp(at(eventAt)),
		trace.WithAttributes(attribute.String("exception.type", "CardDeclined")))
	charge.SetStatus(codes.Error, "card declined")

	// An orphan: its parent is a span that is never exported.
	var missing trace.SpanID
	_, err := rand.Read(missing[:])
	require.NoError(t, err)
	missing[0] |= 1
	orphanParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    root.SpanContext().TraceID(),
		SpanID:     missing,
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	_, orphan := payment.Start(trace.ContextWithRemoteSpanContext(ctx, orphanParent), orphanName,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(at(orphanStart)))

	// Leaves first: the index sees children before their parents.
	charge.End(trace.WithTimestamp(at(paymentEnd)))
	orphan.End(trace.WithTimestamp(at(orphanEnd)))
	client.End(trace.WithTimestamp(at(clientEnd)))
	root.End(trace.WithTimestamp(at(rootEnd)))

	// A retry: the payment span once more, in a request of its own. The
	// index must keep it once; the pipeline passes it on again.
	retryCtx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	require.NoError(t, paymentExp.ExportSpans(retryCtx, []sdktrace.ReadOnlySpan{charge.(sdktrace.ReadOnlySpan)}))

	for _, want := range []struct {
		name               string
		rec                *recordingExporter
		requests, exported int
	}{
		{"frontend", frontendExp, 2, 2},
		{"payment", paymentExp, 3, 3},
	} {
		want.rec.mu.Lock()
		require.Emptyf(t, want.rec.errs, "%s exporter errors", want.name)
		require.Equalf(t, want.requests, want.rec.requests, "%s export requests", want.name)
		require.Equalf(t, want.exported, want.rec.spans, "%s spans exported", want.name)
		want.rec.mu.Unlock()
	}
	return sentTrace{
		TraceID:       root.SpanContext().TraceID(),
		Base:          base,
		Root:          root.SpanContext(),
		Client:        client.SpanContext(),
		Payment:       charge.SpanContext(),
		Orphan:        orphan.SpanContext(),
		MissingParent: missing,
	}
}
