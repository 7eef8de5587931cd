// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package search

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

func TestAttributeListings(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	st.Ingest("", batch([]genSpan{
		{trace: 1, id: 1, service: "frontend", name: "a", start: 10, dur: 1, attrs: map[string]any{"tier": "gold", "code": int64(500)}},
		{trace: 1, id: 2, parent: 1, service: "frontend", name: "b", start: 11, dur: 1, attrs: map[string]any{"tier": "gold", "ratio": 0.5}},
		{trace: 2, id: 3, service: "payment", name: "c", start: 20, dur: 1, attrs: map[string]any{"tier": "silver", "cached": true, "code": "500"}},
	}))
	st.Ingest("team-b", batch([]genSpan{{trace: 3, id: 4, service: "other", name: "d", start: 30, dur: 1, attrs: map[string]any{"secret": "x"}}}))
	ctx := context.Background()

	keys, read := AttributeKeys(ctx, st, "", Options{})
	assert.Equal(t, 2, read)
	assert.Equal(t, []KeyStat{
		{Key: "cached", Scope: ScopeSpan, TraceCount: 1},
		{Key: "code", Scope: ScopeSpan, TraceCount: 2},
		{Key: "ratio", Scope: ScopeSpan, TraceCount: 1},
		{Key: "region", Scope: ScopeResource, TraceCount: 2},
		{Key: "service.name", Scope: ScopeResource, TraceCount: 2},
		{Key: "tier", Scope: ScopeSpan, TraceCount: 2},
	}, keys)

	// A value counts the traces that carry it, by its type; gold is on two
	// spans of one trace.
	vals, _ := AttributeValues(ctx, st, "", "tier", 10, Options{})
	assert.Equal(t, []ValueStat{{Value: "gold", Type: "string", TraceCount: 1}, {Value: "silver", Type: "string", TraceCount: 1}}, vals)
	vals, _ = AttributeValues(ctx, st, "", "code", 10, Options{})
	assert.Equal(t, []ValueStat{{Value: "500", Type: "int", TraceCount: 1}, {Value: "500", Type: "string", TraceCount: 1}}, vals)
	vals, _ = AttributeValues(ctx, st, "", "ratio", 1, Options{})
	assert.Equal(t, []ValueStat{{Value: "0.5", Type: "double", TraceCount: 1}}, vals)
	vals, _ = AttributeValues(ctx, st, "", "service.name", 1, Options{})
	assert.Len(t, vals, 1, "limit")

	// Tenants read their own.
	keys, _ = AttributeKeys(ctx, st, "team-b", Options{})
	assert.Contains(t, keys, KeyStat{Key: "secret", Scope: ScopeSpan, TraceCount: 1})
	vals, _ = AttributeValues(ctx, st, "", "secret", 10, Options{})
	assert.Empty(t, vals)
	keys, read = AttributeKeys(ctx, st, "team-c", Options{})
	assert.Empty(t, keys)
	assert.Zero(t, read)
}

// Listings read the newest traces only, within the budget, and nothing
// once the traces have left.
func TestAttributeListingsAreBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := store.New(store.Config{MaxBytes: 64 << 20, Retention: time.Minute, Now: func() time.Time { return now }})
	defer st.Close()
	var spans []genSpan
	for i := range AttributeTraces + 200 {
		spans = append(spans, genSpan{trace: uint64(i + 1), id: uint64(i + 1), service: "svc", name: "n", start: uint64(1000 + i), dur: 1,
			attrs: map[string]any{"old": i < 200}})
	}
	st.Ingest("", batch(spans))
	vals, read := AttributeValues(context.Background(), st, "", "old", 10, Options{})
	assert.Equal(t, AttributeTraces, read)
	assert.Equal(t, []ValueStat{{Value: "false", Type: "bool", TraceCount: AttributeTraces}}, vals, "the 200 oldest were not read")
	_, read = AttributeKeys(context.Background(), st, "", Options{MaxScannedSpans: 5})
	assert.Equal(t, 5, read, "the span budget")

	now = now.Add(2 * time.Minute)
	st.Maintain()
	keys, read := AttributeKeys(context.Background(), st, "", Options{})
	require.Zero(t, read)
	assert.Empty(t, keys)
}

// Decoded strings live in memory the next trace overwrites: the listings
// keep copies (a map assignment once stored a decoded key again).
func TestAttributeListingsKeepTheirStrings(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	for i := range 30 {
		tier := "silver"
		if i%10 == 3 {
			tier = "gold"
		}
		tn := uint64(i + 1)
		st.Ingest("", batch([]genSpan{{trace: tn, id: tn*10 + 1, parent: tn * 10, service: "payments", name: "charge", start: uint64(1000 + i*10 + 1), dur: 1, attrs: map[string]any{"customer.tier": tier}}}))
		st.Ingest("", batch([]genSpan{{trace: tn, id: tn * 10, service: "shop", name: "GET", start: uint64(1000 + i*10), dur: 5, attrs: map[string]any{"customer.tier": tier}}}))
	}
	vals, _ := AttributeValues(context.Background(), st, "", "customer.tier", 10, Options{})
	assert.Equal(t, []ValueStat{{Value: "silver", Type: "string", TraceCount: 27}, {Value: "gold", Type: "string", TraceCount: 3}}, vals)
	keys, _ := AttributeKeys(context.Background(), st, "", Options{})
	assert.Contains(t, keys, KeyStat{Key: "customer.tier", Scope: ScopeSpan, TraceCount: 30})
}
