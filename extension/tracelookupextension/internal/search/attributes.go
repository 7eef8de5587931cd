// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package search // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// Attribute keys and values are read from a tenant's newest traces when a
// client asks for them, not counted as spans arrive: counting every value
// of every span cost ingest more than all the other search indexes
// together, and the newest traces are what a search box needs. So they
// cost ingest nothing, follow eviction exactly, and are bounded by the
// traces they read.

// Bounds of an attribute listing.
const (
	// AttributeTraces is how many of the newest traces a listing reads.
	AttributeTraces = 1000
	maxListedKeys   = 2000
	maxListedValues = 10000
)

// Attribute scopes.
const (
	ScopeSpan     = "span"
	ScopeResource = "resource"
)

// KeyStat is one attribute key: in how many of the traces read it is.
type KeyStat struct {
	Key        string
	Scope      string // ScopeSpan or ScopeResource
	TraceCount int
}

// ValueStat is one value of a key, of one type (string, int, double or
// bool), in either scope: in how many of the traces read it is.
type ValueStat struct {
	Value      string
	Type       string
	TraceCount int
}

// newest calls fn with the spans of tenant's newest traces, at most
// AttributeTraces of them and the spans o allows to decode (at least one
// trace); it returns how many traces it read.
func newest(ctx context.Context, st *store.Store, tenant string, o Options, fn func(spans []spancodec.Span)) int {
	maxSpans := cmp.Or(o.MaxScannedSpans, DefaultMaxScannedSpans)
	read, decoded := 0, 0
	var sc spancodec.Scratch
	st.Scan(tenant, store.Filter{Spans: store.SpanTerms{Kind: AnyKind}}, store.Key{}, cmp.Or(o.MaxScannedTraces, DefaultMaxScannedTraces), func(h store.Hit) bool {
		if read == AttributeTraces || ctx.Err() != nil || (read > 0 && decoded >= maxSpans) {
			return false
		}
		tr, ok := st.FetchHit(h)
		if !ok {
			return true
		}
		spans, _ := tr.SpansInto(&sc) // a span that cannot be read is left out
		tr.Release()
		read++
		decoded += len(spans)
		fn(spans)
		return true
	})
	return read
}

// newestAttrs calls fn with each attribute list (a span's, its
// resource's) of tenant's newest traces, and begin before each trace.
func newestAttrs(ctx context.Context, st *store.Store, tenant string, o Options, begin func(), fn func(attrs []spancodec.KeyValue, scope string)) int {
	return newest(ctx, st, tenant, o, func(spans []spancodec.Span) {
		begin()
		for i := range spans {
			fn(spans[i].Attributes, ScopeSpan)
			if spans[i].Resource != nil {
				fn(spans[i].Resource.Attributes, ScopeResource)
			}
		}
	})
}

// ValueType names the type of a value that can be searched for (see
// store.AttrQuery): string, int, double or bool; false for the others.
func ValueType(v spancodec.Value) (string, bool) {
	switch v.Type {
	case spancodec.ValueStr:
		return "string", true
	case spancodec.ValueInt:
		return "int", true
	case spancodec.ValueDouble:
		return "double", true
	case spancodec.ValueBool:
		return "bool", true
	}
	return "", false
}

// tally counts, among the traces read, those each entry is met in. Its
// index is only read with decoded strings: an assignment to an existing
// key stores the key again, and decoded strings live in memory the next
// trace overwrites; entries are added with copies (own).
type tally[K comparable] struct {
	index  map[K]int
	keys   []K
	traces []int
	seen   map[int]bool // the entries met in the current trace
	max    int
}

func newTally[K comparable](max int) *tally[K] {
	return &tally[K]{index: map[K]int{}, seen: map[int]bool{}, max: max}
}

func (t *tally[K]) note(k K, own func(K) K) {
	j, ok := t.index[k]
	if !ok {
		if len(t.keys) == t.max {
			return
		}
		j = len(t.keys)
		t.keys = append(t.keys, own(k))
		t.traces = append(t.traces, 0)
		t.index[t.keys[j]] = j
	}
	if !t.seen[j] {
		t.seen[j] = true
		t.traces[j]++
	}
}

// AttributeKeys lists the attribute keys of tenant's newest traces, by key
// then scope; it returns how many traces it read.
func AttributeKeys(ctx context.Context, st *store.Store, tenant string, o Options) ([]KeyStat, int) {
	type scoped struct{ key, scope string }
	t := newTally[scoped](maxListedKeys)
	own := func(k scoped) scoped { return scoped{strings.Clone(k.key), k.scope} }
	read := newestAttrs(ctx, st, tenant, o, func() { clear(t.seen) }, func(attrs []spancodec.KeyValue, scope string) {
		for i := range attrs {
			if attrs[i].Key != spancodec.TruncatedValuesKey {
				t.note(scoped{attrs[i].Key, scope}, own)
			}
		}
	})
	out := make([]KeyStat, len(t.keys))
	for j, k := range t.keys {
		out[j] = KeyStat{Key: k.key, Scope: k.scope, TraceCount: t.traces[j]}
	}
	slices.SortFunc(out, func(a, b KeyStat) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Scope, b.Scope))
	})
	return out, read
}

// AttributeValues lists the most frequent values of key, in either scope,
// among tenant's newest traces, at most limit; it returns how many traces
// it read.
func AttributeValues(ctx context.Context, st *store.Store, tenant, key string, limit int, o Options) ([]ValueStat, int) {
	return ScopedAttributeValues(ctx, st, tenant, key, "", limit, o)
}

// ScopedAttributeValues is AttributeValues in one scope (ScopeSpan or
// ScopeResource; "" for either).
func ScopedAttributeValues(ctx context.Context, st *store.Store, tenant, key, scope string, limit int, o Options) ([]ValueStat, int) {
	type typed struct{ value, typ string }
	t := newTally[typed](maxListedValues)
	own := func(v typed) typed { return typed{strings.Clone(v.value), v.typ} }
	read := newestAttrs(ctx, st, tenant, o, func() { clear(t.seen) }, func(attrs []spancodec.KeyValue, in string) {
		if scope != "" && in != scope {
			return
		}
		for i := range attrs {
			if attrs[i].Key != key {
				continue
			}
			if typ, ok := ValueType(attrs[i].Value); ok {
				t.note(typed{attrs[i].Value.AsString(), typ}, own)
			}
		}
	})
	out := make([]ValueStat, len(t.keys))
	for j, v := range t.keys {
		out[j] = ValueStat{Value: v.value, Type: v.typ, TraceCount: t.traces[j]}
	}
	slices.SortFunc(out, func(a, b ValueStat) int {
		return cmp.Or(cmp.Compare(b.TraceCount, a.TraceCount), strings.Compare(a.Value, b.Value), strings.Compare(a.Type, b.Type))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, read
}
