// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"context"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// The contracts that answer in OTLP (Tempo's, Jaeger's api_v3) build the
// trace back into pdata and let pdata's marshallers write it: they always
// write resource, scope and status, which Grafana dereferences, and their
// JSON is OTLP/JSON (hex ids, int64 as strings).

// otlpCost is what answering f in OTLP allocates: the assembly (see
// lookupCost), pdata's copy of every span and item, and the marshalled
// response, which may grow to twice its size as it is written.
func otlpCost(f store.Found) int64 {
	const pdataSpan, pdataItem = 512, 128
	return assemblyCost(f) + int64(f.SpanCount*pdataSpan+f.Items*pdataItem+2*responseEstimate(f))
}

// assemble admits a lookup of hd costing cost (of hd.found()), then
// fetches and assembles it: OutcomeBusy when the lookup memory stays
// full, OutcomeNotFound when the trace left the index in between and
// nothing else holds it. Call release when done with t.
func (h *Handler) assemble(ctx context.Context, hd *held, cost func(store.Found) int64) (t *traceview.Trace, release func(), _ Outcome) {
	free, ok := h.admit.acquire(ctx, cost(hd.found()))
	if !ok {
		return nil, nil, OutcomeBusy
	}
	t, ok = h.build(ctx, hd)
	if !ok {
		free()
		return nil, nil, OutcomeNotFound
	}
	return t, func() { t.Release(); free() }, OutcomeFound
}

// otlpCut picks the spans an OTLP answer keeps under maxSpans and
// maxBytes (0: no limit): the first maxSpans by start, then fewer while
// the marshalled size passes maxBytes (see fitSpans). It returns the
// answer, the spans it holds, and the reasons it is not the whole trace
// (baseCut's and the limits').
func otlpCut(t *traceview.Trace, marshal func(ptrace.Traces) ([]byte, error), maxSpans, maxBytes int) ([]byte, int, []string, error) {
	reasons := baseCut(t, false).reasons
	n := len(t.Spans)
	if maxSpans > 0 && n > maxSpans {
		n = maxSpans
		reasons = append(reasons, reasonResponseSpans)
	}
	var err error
	body, kept, byBytes := fitSpans(n, maxBytes, func(k int) []byte {
		b, e := marshal(t.OTLP(func(i int) bool { return i < k }))
		if e != nil {
			err = e
			return nil // fits any budget: fitSpans stops
		}
		return b
	})
	if err != nil {
		return nil, 0, nil, err
	}
	if byBytes {
		reasons = append(reasons, reasonResponseBytes)
	}
	return body, kept, reasons, nil
}

// fitSpans renders the first n spans of a trace with render, and fewer,
// in proportion, while the answer passes budget bytes (0: no budget). It
// returns the answer, the spans it holds, and whether bytes cut it.
func fitSpans(n, budget int, render func(n int) []byte) ([]byte, int, bool) {
	cut := false
	for {
		b := render(n)
		if budget <= 0 || len(b) <= budget || n == 0 {
			return b, n, cut
		}
		n = fewerSpans(n, budget, len(b))
		cut = true
	}
}

// reasonLookupMemory says a search answer left traces out because the
// lookup memory stayed full.
const reasonLookupMemory = "lookup_memory"

// leftOutReason is why a search answer stopped adding traces: the lookup
// memory stayed full, or not one more span fit in the bytes left.
func leftOutReason(o Outcome) string {
	if o == OutcomeBusy {
		return reasonLookupMemory
	}
	return reasonResponseBytes
}

// fewerSpans is how many of n spans to try next when they rendered to
// size bytes, over budget: fewer in proportion, with a margin, and one
// before none (a large later span must not hide that the first fits).
func fewerSpans(n, budget, size int) int {
	next := min(n-1, int(float64(n)*float64(budget)/float64(size)*0.9))
	if next < 1 && n > 1 {
		return 1
	}
	return max(next, 0)
}
