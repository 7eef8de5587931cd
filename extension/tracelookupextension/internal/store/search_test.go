// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func scanAll(s *Store, tenant string, f Filter) [][16]byte {
	var ids [][16]byte
	s.Scan(tenant, f, Key{}, 0, func(h Hit) bool {
		tr, ok := s.FetchHit(h)
		if ok {
			ids = append(ids, tr.ID)
			tr.Release()
		}
		return true
	})
	return ids
}

func anySpan() SpanTerms { return SpanTerms{Kind: -1} }

func TestCatalogCounts(t *testing.T) {
	s, _ := newTestStore(Config{})
	// Two traces of checkout, one reaching payment too.
	s.Ingest("", makeTraces("checkout",
		spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"tier": "gold"}},
		spanSpec{trace: traceID(1, 1), span: 2, parent: 1, attrs: map[string]string{"tier": "gold"}},
		spanSpec{trace: traceID(1, 2), span: 1, attrs: map[string]string{"tier": "silver"}}))
	s.Ingest("", makeTraces("payment", spanSpec{trace: traceID(1, 1), span: 3, parent: 2}))
	s.Ingest("", makeTraces("checkout", spanSpec{trace: traceID(1, 2), span: 2, parent: 1})) // a later part: the trace counts once

	assert.Equal(t, []ServiceStat{{Name: "checkout", SpanCount: 4, TraceCount: 2}, {Name: "payment", SpanCount: 1, TraceCount: 1}}, s.Services(""))
	ops, ok := s.Operations("", "checkout")
	require.True(t, ok)
	assert.Equal(t, []OperationStat{{Name: "span-1", Kind: 0, SpanCount: 2}, {Name: "span-2", Kind: 0, SpanCount: 2}}, ops)
	_, ok = s.Operations("", "nope")
	assert.False(t, ok)
	assert.Equal(t, []KeyStat{
		{Key: "service.name", Scope: ScopeResource, SpanCount: 5, Values: 2},
		{Key: "tier", Scope: ScopeSpan, SpanCount: 3, Values: 2},
	}, s.AttributeKeys(""))
	vals, ok := s.AttributeValues("", "tier", 10)
	require.True(t, ok)
	assert.Equal(t, []ValueStat{{Value: "gold", Type: "string", SpanCount: 2}, {Value: "silver", Type: "string", SpanCount: 1}}, vals)
	vals, _ = s.AttributeValues("", "tier", 1)
	assert.Len(t, vals, 1)
}

// Tenants see only their own traces, services and values.
func TestSearchIsPerTenant(t *testing.T) {
	s, _ := newTestStore(Config{})
	s.Ingest("team-a", makeTraces("alpha", spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"k": "a"}}))
	s.Ingest("team-b", makeTraces("beta", spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"k": "b"}}))
	assert.Equal(t, []ServiceStat{{Name: "alpha", SpanCount: 1, TraceCount: 1}}, s.Services("team-a"))
	assert.Equal(t, []ServiceStat{{Name: "beta", SpanCount: 1, TraceCount: 1}}, s.Services("team-b"))
	assert.Empty(t, s.Services(""))
	assert.Empty(t, s.Services("team-c"))
	vals, _ := s.AttributeValues("team-b", "k", 10)
	assert.Equal(t, []ValueStat{{Value: "b", Type: "string", SpanCount: 1}}, vals)
	assert.Len(t, scanAll(s, "team-a", Filter{Spans: anySpan()}), 1)
	assert.Empty(t, scanAll(s, "team-a", Filter{Spans: SpanTerms{Kind: -1, Service: "beta"}}))
	assert.Empty(t, scanAll(s, "", Filter{Spans: anySpan()}))
}

// Eviction takes traces out of every index: once all have left, the
// records, their blocks and the catalog are gone.
func TestEvictionEmptiesSearchIndexes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		evict func(s *Store, clock *fakeClock)
	}{
		{"retention", Config{Retention: time.Minute}, func(s *Store, clock *fakeClock) {
			clock.Add(2 * time.Minute)
			s.Maintain()
		}},
		{"count", Config{MaxTraces: 10}, func(s *Store, _ *fakeClock) {
			// The newest ten traces stay; they are then pushed out by a tenant of their own.
			for lo := uint64(1); lo <= 10; lo++ {
				s.Ingest("other", makeTraces("x", spanSpec{trace: traceID(9, lo), span: 1}))
			}
		}},
		{"memory", Config{MaxBytes: 2 << 20}, func(s *Store, _ *fakeClock) {
			for lo := uint64(1); lo <= 20000; lo++ {
				s.Ingest("other", makeTraces("x", spanSpec{trace: traceID(9, lo), span: 1, attrs: map[string]string{"pad": fmt.Sprint(lo * 7919)}}))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := newTestStore(tc.cfg)
			for lo := uint64(1); lo <= 2000; lo++ {
				s.Ingest("", makeTraces(fmt.Sprintf("svc-%d", lo%7), spanSpec{trace: traceID(1, lo), span: 1, attrs: map[string]string{"v": fmt.Sprint(lo % 300)}}))
			}
			require.NotEmpty(t, s.Services(""))
			tc.evict(s, clock)
			assert.Empty(t, scanAll(s, "", Filter{Spans: anySpan()}))
			assert.Empty(t, s.Services(""))
			assert.Empty(t, s.AttributeKeys(""))
			id, ok := s.tenants.lookup(DefaultTenant)
			require.True(t, ok)
			x := s.tenants.at(id).index
			x.mu.RLock()
			defer x.mu.RUnlock()
			assert.Empty(t, x.cat.byHash)
			assert.Zero(t, x.cat.bytes)
			for _, b := range x.blocks {
				assert.Nil(t, b)
			}
		})
	}
}

// After everything is gone, nothing is mapped for search and the catalog
// holds nothing on the heap.
func TestSearchMemoryIsGivenBack(t *testing.T) {
	s, clock := newTestStore(Config{Retention: time.Minute})
	for lo := uint64(1); lo <= 3000; lo++ {
		s.Ingest(fmt.Sprintf("t%d", lo%3), makeTraces("svc", spanSpec{trace: traceID(1, lo), span: 1, attrs: map[string]string{"v": fmt.Sprint(lo)}}))
	}
	assert.Positive(t, s.searchMapped.Load())
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.searchMapped.Load())
	require.Len(t, s.Tenants(), 1, "the tenants left with their traces")
	assert.Zero(t, s.tenants.at(0).index.catBytes.Load())
}

func TestScanOrderAndFilters(t *testing.T) {
	s, _ := newTestStore(Config{})
	// Trace n starts at n ms and lasts n µs; even ones fail.
	for lo := uint64(1); lo <= 600; lo++ {
		td := makeTraces("svc", spanSpec{trace: traceID(2, lo), span: 1})
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		start := 1_000_000 * (lo*7919%600 + 1)
		sp.SetStartTimestamp(1e18 + pcommonTS(start))
		sp.SetEndTimestamp(1e18 + pcommonTS(start+1000*lo))
		if lo%2 == 0 {
			sp.Status().SetCode(2)
		}
		s.Ingest("", td)
	}
	var prev Key
	n := 0
	s.Scan("", Filter{Spans: anySpan()}, Key{}, 0, func(h Hit) bool {
		if n > 0 {
			assert.Negative(t, compareKeys(h.Key, prev), "newest first")
		}
		prev, n = h.Key, n+1
		return true
	})
	assert.Equal(t, 600, n)
	assert.Len(t, scanAll(s, "", Filter{Status: StatusError, Spans: anySpan()}), 300)
	assert.Len(t, scanAll(s, "", Filter{MinDuration: 100_001, Spans: anySpan()}), 500)
	assert.Len(t, scanAll(s, "", Filter{StartFrom: 1e18 + 1_000_000, StartTo: 1e18 + 10_000_000, Spans: anySpan()}), 10)
}

func pcommonTS(n uint64) pcommon.Timestamp { return pcommon.Timestamp(n) }

// Traces moved instead of evicted (a tenant well under its share) stay
// searchable and listed, and their old record blocks are given back.
func TestMovedTracesStaySearchable(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 4 << 20, TenantShare: 0.5})
	for lo := uint64(1); lo <= 20; lo++ {
		s.Ingest("quiet", makeTraces("quiet-svc", spanSpec{trace: traceID(1, lo), span: 1, attrs: map[string]string{"k": "v"}}))
	}
	pad := strings.Repeat("x", 2000)
	for lo := uint64(1); lo <= 20000; lo++ {
		s.Ingest("noisy", makeTraces("noisy-svc", spanSpec{trace: traceID(2, lo), span: 1, attrs: map[string]string{"p": pad + fmt.Sprint(lo)}}))
	}
	require.Positive(t, s.Stats().Moved)
	assert.Len(t, scanAll(s, "quiet", Filter{Spans: SpanTerms{Kind: -1, Service: "quiet-svc", Attrs: []AttrQuery{ParseAttrQuery("k", "v")}}}), 20)
	svcs := s.Services("quiet")
	require.Len(t, svcs, 1)
	assert.Equal(t, "quiet-svc", svcs[0].Name)
	assert.GreaterOrEqual(t, svcs[0].SpanCount, int64(20))
	// The noisy tenant's records fill few blocks: those of its evicted traces went back.
	id, _ := s.tenants.lookup("noisy")
	x := s.tenants.at(id).index
	x.mu.RLock()
	live := 0
	for _, b := range x.blocks {
		if b != nil {
			live++
		}
	}
	x.mu.RUnlock()
	traces := int(s.tenants.at(id).traces.Load())
	assert.LessOrEqual(t, live, traces/blockRecs+3, "%d blocks for %d traces", live, traces)
}
