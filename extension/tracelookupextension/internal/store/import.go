// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// Import encodes the spans of td whose trace id is id as ingest encodes
// them, within the same limits, without storing them: a trace that comes
// from outside the index (a peer replica, a long-term store) then decodes,
// merges and renders as a stored one. received stamps the spans' arrival.
// The Found describes it as Find describes a stored trace, for admission;
// it names no stored trace (Fetch finds nothing by it). The Trace holds no
// pooled memory, and is empty (SpanCount 0) when td has no span of id.
func (s *Store) Import(id [16]byte, tenant string, td ptrace.Traces, received int64) (Trace, Found) {
	enc := spancodec.Encoder{Limits: s.cfg.Limits}
	var (
		records, body []byte
		held          []*resource
		spans         int
		maxSpan       int
		resRaw        int
	)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			var res *resource
			var cuts int
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				if [16]byte(sp.TraceID()) != id {
					continue
				}
				if res == nil {
					// Resource ids are the import's own: the decoder resolves
					// them among held, never in the store's table.
					body, cuts = enc.AppendResourceBody(body[:0], rs.Resource(), ss.Scope(), nil)
					res = &resource{id: uint32(len(held) + 1), body: append([]byte(nil), body...)}
					held = append(held, res)
					resRaw += len(res.body)
					records = spancodec.AppendResource(records, received, res.id)
				}
				start := len(records)
				records = enc.AppendSpan(records, sp, nil, cuts)
				maxSpan = max(maxSpan, len(records)-start+len(res.body))
				spans++
			}
		}
	}
	if spans == 0 {
		return Trace{ID: id, Tenant: tenant}, Found{}
	}
	blocks, _ := spancodec.Seal(nil, records, nil)
	t := Trace{
		ID:        id,
		Tenant:    tenant,
		FirstSeen: received,
		LastSeen:  received,
		SpanCount: spans,
		blocks:    blocks,
		resources: held,
	}
	f := Found{
		ID:           id,
		BlockBytes:   len(blocks),
		RawBytes:     len(records) + resRaw,
		Items:        int(enc.Items),
		MaxSpanBytes: maxSpan,
		SpanCount:    spans,
		LastSeen:     received,
	}
	return t, f
}
