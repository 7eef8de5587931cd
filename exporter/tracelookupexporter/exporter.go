// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupexporter // import "github.com/otelcol-tracelookup/otelcol-tracelookup/exporter/tracelookupexporter"

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	if err := checkQueue(e.cfg, index.TenantHeader()); err != nil {
		return fmt.Errorf("exporter %q: %w", e.set.ID, err)
	}
	e.index = index
	return nil
}

// checkQueue refuses a sending queue that would lose the tenant: batches
// merged across requests, or kept on disk, carry no client metadata but
// what the batch's partition keys keep.
func checkQueue(cfg *Config, tenantHeader string) error {
	if !cfg.QueueConfig.HasValue() {
		return nil
	}
	q := cfg.QueueConfig.Get()
	if q.StorageID != nil {
		return errors.New(`"sending_queue::storage" keeps no tenant and saves nothing an in-memory index could use after a restart; remove it (index::snapshot keeps the index across restarts)`)
	}
	if q.Batch.HasValue() && !slices.ContainsFunc(q.Batch.Get().Partition.MetadataKeys, func(k string) bool { return strings.EqualFold(k, tenantHeader) }) {
		return fmt.Errorf(`"sending_queue::batch" would merge the batches of different tenants into the default tenant; add %q to "sending_queue::batch::partition::metadata_keys"`, tenantHeader)
	}
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
