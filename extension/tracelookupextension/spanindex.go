// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// SpanIndex is what the tracelookup extension offers other components: the
// tracelookup receiver and exporter find the extension by its component ID
// and write every batch they see into it.
type SpanIndex interface {
	// TenantHeader is the request header (HTTP) or metadata key (gRPC)
	// that names the tenant of a request's spans.
	TenantHeader() string
	// IndexTraces stores the spans of td under tenant, the value of the
	// tenant header ("" when the request has none: the spans' resource
	// attribute or the default tenant decides). It copies what it keeps,
	// never changes td, never blocks on a full index (it evicts) and never fails.
	IndexTraces(tenant string, td ptrace.Traces)
}

// Errors FindSpanIndex returns when the configured extension cannot be used.
var (
	ErrExtensionMissing = errors.New("extension not found")
	ErrNotSpanIndex     = errors.New("extension is not a tracelookup extension")
)

// FindSpanIndex finds extension id among the host's extensions and checks
// that it is a span index; user is the component asking, for the error.
func FindSpanIndex(extensions map[component.ID]component.Component, id component.ID, kind string, user component.ID) (SpanIndex, error) {
	ext, ok := extensions[id]
	if !ok {
		return nil, fmt.Errorf("%s %q: %w: %q; add a tracelookup extension with that ID to the extensions: section and to service::extensions", kind, user, ErrExtensionMissing, id)
	}
	index, ok := ext.(SpanIndex)
	if !ok {
		return nil, fmt.Errorf("%s %q: %w: %q is a %q extension; point \"extension\" at a tracelookup extension", kind, user, ErrNotSpanIndex, id, id.Type())
	}
	return index, nil
}

// TenantOf is a batch's tenant from the values of its tenant header (gRPC
// metadata keys are lower case): "" without one. Several values name no
// single tenant: they are joined into an id the index refuses, so the
// spans go on down the pipeline unindexed, and counted, rather than land
// under whichever value came first.
func TenantOf(values []string) string {
	switch len(values) {
	case 0:
		return ""
	case 1:
		return values[0]
	default:
		return strings.Join(values, ",")
	}
}

// IndexSafely writes td into index. Whatever happens there, the caller
// still passes the data on down the pipeline.
func IndexSafely(index SpanIndex, logger *zap.Logger, tenant string, td ptrace.Traces) {
	defer func() {
		if p := recover(); p != nil {
			logger.Error("span index failed; the batch was passed on unindexed", zap.Any("panic", p))
		}
	}()
	index.IndexTraces(tenant, td)
}
