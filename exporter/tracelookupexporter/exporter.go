// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupexporter // import "github.com/otelcol-tracelookup/otelcol-tracelookup/exporter/tracelookupexporter"

import (
	"context"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
)

// indexExporter writes each batch into the span index.
type indexExporter struct {
	cfg   *Config
	set   exporter.Settings
	index tracelookupextension.SpanIndex
}

// start finds the index, as the tracelookup receiver does.
func (e *indexExporter) start(_ context.Context, host component.Host) error {
	index, err := tracelookupextension.FindSpanIndex(host.GetExtensions(), e.cfg.Extension, "exporter", e.set.ID)
	if err != nil {
		return err
	}
	e.index = index
	return nil
}

// consumeTraces indexes td under the tenant its request named: the
// receiver's client metadata (with include_metadata: true) carries the
// tenant header; without it the spans' resource attribute or the default
// tenant decides. Indexing never fails the pipeline.
func (e *indexExporter) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	tenant := tracelookupextension.TenantOf(client.FromContext(ctx).Metadata.Get(e.index.TenantHeader()))
	tracelookupextension.IndexSafely(e.index, e.set.Logger, tenant, td)
	return nil
}
