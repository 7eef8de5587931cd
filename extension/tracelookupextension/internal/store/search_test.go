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
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
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
}

// Tenants see only their own traces and services.
func TestSearchIsPerTenant(t *testing.T) {
	s, _ := newTestStore(Config{})
	s.Ingest("team-a", makeTraces("alpha", spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"k": "a"}}))
	s.Ingest("team-b", makeTraces("beta", spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"k": "b"}}))
	assert.Equal(t, []ServiceStat{{Name: "alpha", SpanCount: 1, TraceCount: 1}}, s.Services("team-a"))
	assert.Equal(t, []ServiceStat{{Name: "beta", SpanCount: 1, TraceCount: 1}}, s.Services("team-b"))
	assert.Empty(t, s.Services(""))
	assert.Empty(t, s.Services("team-c"))
	// Each tenant's index holds its own trace alone (a scan by term may
	// also pass a bloom filter's false positive, so none is asked here).
	assert.Len(t, scanAll(s, "team-a", Filter{Spans: anySpan()}), 1)
	assert.Len(t, scanAll(s, "team-b", Filter{Spans: anySpan()}), 1)
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
			id, ok := s.tenants.lookup(DefaultTenant)
			require.True(t, ok)
			x := s.tenants.at(id).index
			x.mu.RLock()
			defer x.mu.RUnlock()
			assert.Empty(t, x.cat.byHash)
			assert.Empty(t, x.cat.services)
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

// startedAt builds one single-span trace of svc starting at start.
func startedAt(lo, start uint64) ptrace.Traces {
	td := makeTraces("svc", spanSpec{trace: traceID(3, lo), span: 1})
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.SetStartTimestamp(pcommonTS(start))
	sp.SetEndTimestamp(pcommonTS(start + 10))
	return td
}

// pageAll follows a scan's resume keys to its end; it returns the keys
// in the order met and the records read by the first page.
func pageAll(t *testing.T, s *Store, pageSize, maxRecords int) ([]Key, int) {
	t.Helper()
	var keys []Key
	after := Key{}
	first := -1
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100_000)
		n := 0
		var last Key
		more := false
		res := s.Scan("", Filter{Spans: anySpan()}, after, maxRecords, func(h Hit) bool {
			if n == pageSize {
				more = true
				return false
			}
			n++
			keys = append(keys, h.Key)
			last = h.Key
			return true
		})
		if first < 0 {
			first = res.Scanned
		}
		switch {
		case res.Stopped:
			require.Negative(t, compareKeys(res.Resume, after.orMax()), "each page moves on")
			after = res.Resume
		case more:
			after = last
		default:
			return keys, first
		}
	}
}

func (k Key) orMax() Key {
	if k == (Key{}) {
		return Key{Start: ^uint64(0), Seq: ^uint64(0)}
	}
	return k
}

func requireNewestFirstOnce(t *testing.T, keys []Key, n int) {
	t.Helper()
	require.Len(t, keys, n)
	seen := map[uint64]bool{}
	for i, k := range keys {
		require.False(t, seen[k.Seq], "trace %d twice", k.Seq)
		seen[k.Seq] = true
		if i > 0 {
			require.Negative(t, compareKeys(k, keys[i-1]), "newest first at %d", i)
		}
	}
}

// A few traces with a start far from the others' (a clock ahead, a zero
// start) do not make a search read every block: blocks follow them one
// by one.
func TestSkewedStartsStayCheap(t *testing.T) {
	s, _ := newTestStore(Config{})
	const n = 20_000
	for lo := uint64(1); lo <= n; lo++ {
		start := 1e18 + lo*1e6
		switch lo % 100 {
		case 7:
			start += 3600e9 // an hour ahead
		case 42:
			start = 0
		}
		s.Ingest("", startedAt(lo, start))
	}
	keys, first := pageAll(t, s, 20, 0)
	requireNewestFirstOnce(t, keys, n)
	assert.Less(t, first, 4*blockRecs, "the first page read %d records", first)
	keys, _ = pageAll(t, s, 250, 2000)
	requireNewestFirstOnce(t, keys, n)
}

// With starts in no order at all, a scan holds a bounded number of
// candidates, and its pages still meet every trace once, in order.
func TestScanBoundsItsCandidates(t *testing.T) {
	defer func(m int) { maxHits = m }(maxHits)
	maxHits = 64
	s, _ := newTestStore(Config{})
	const n = 3000
	for lo := uint64(1); lo <= n; lo++ {
		s.Ingest("", startedAt(lo, 1e18+(lo*7919%n)*1e6))
	}
	keys, _ := pageAll(t, s, 1000, 0)
	requireNewestFirstOnce(t, keys, n)
}

// A trace that the store moves while a search reads the blocks keeps its
// record where it is: the search meets it once.
func TestMovesWaitForScans(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 4 << 20, TenantShare: 0.5})
	for lo := uint64(1); lo <= 300; lo++ {
		s.Ingest("quiet", makeTraces("quiet-svc", spanSpec{trace: traceID(1, lo), span: 1}))
	}
	pad := strings.Repeat("x", 2000)
	seen := map[uint64]int{}
	var prev Key
	flooded := false
	s.Scan("quiet", Filter{Spans: anySpan()}, Key{}, 0, func(h Hit) bool {
		if !flooded {
			flooded = true
			for lo := uint64(1); lo <= 20000; lo++ {
				s.Ingest("noisy", makeTraces("noisy-svc", spanSpec{trace: traceID(2, lo), span: 1, attrs: map[string]string{"p": pad + fmt.Sprint(lo)}}))
			}
		} else {
			assert.Negative(t, compareKeys(h.Key, prev))
		}
		prev = h.Key
		seen[h.Key.Seq]++
		return true
	})
	require.Positive(t, s.Stats().Moved, "quiet traces were moved meanwhile")
	assert.Len(t, seen, 300)
	for seq, c := range seen {
		assert.Equal(t, 1, c, "trace %d", seq)
	}
	// Once no search runs, moves take records along again.
	for lo := uint64(20001); lo <= 40000; lo++ {
		s.Ingest("noisy", makeTraces("noisy-svc", spanSpec{trace: traceID(2, lo), span: 1, attrs: map[string]string{"p": pad + fmt.Sprint(lo)}}))
	}
	assert.Len(t, scanAll(s, "quiet", Filter{Spans: anySpan()}), 300)
}

// Search reads what the index keeps: a value cut by the limits is found by
// the text kept. (Whether the whole value is refused is the search's exact
// check, tested there: Scan's bloom filters may pass any term, with a
// small chance that depends on the process's hash seed.)
func TestSearchSeesCutValues(t *testing.T) {
	s, _ := newTestStore(Config{Limits: spancodec.Limits{MaxValueBytes: 8}})
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"k": "abcdefghijkl"}}))
	assert.Len(t, scanAll(s, "", Filter{Spans: SpanTerms{Kind: -1, Attrs: []AttrQuery{ParseAttrQuery("k", "abcdefgh")}}}), 1)
}

// A request with many operations lists each with its spans.
func TestManyOperationsInOneRequest(t *testing.T) {
	s, _ := newTestStore(Config{})
	var specs []spanSpec
	for tr := uint64(1); tr <= 3; tr++ {
		for sp := uint64(1); sp <= 40; sp++ {
			specs = append(specs, spanSpec{trace: traceID(5, tr), span: sp}) // named span-<sp>
		}
	}
	s.Ingest("", makeTraces("svc", specs...))
	ops, ok := s.Operations("", "svc")
	require.True(t, ok)
	require.Len(t, ops, 40)
	for _, op := range ops {
		assert.Equal(t, int64(3), op.SpanCount, op.Name)
	}
	assert.Equal(t, []ServiceStat{{Name: "svc", SpanCount: 120, TraceCount: 3}}, s.Services(""))
}

// Numbers match whatever their type and spelling, exactly, at the ends of
// the int64 range too: the index's terms and Matches agree.
func TestNumberTermsAtTheEdges(t *testing.T) {
	s := New(Config{MaxBytes: 8 << 20})
	defer s.Close()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	values := []func(pcommon.Map){
		func(m pcommon.Map) { m.PutDouble("n", -9223372036854775808) },
		func(m pcommon.Map) { m.PutInt("n", -9223372036854775808) },
		func(m pcommon.Map) { m.PutDouble("n", 9007199254740992) },
		func(m pcommon.Map) { m.PutInt("n", 500) },
		func(m pcommon.Map) { m.PutDouble("n", 0.1) },
	}
	for i, put := range values {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{1})
		put(sp.Attributes())
	}
	s.Ingest("", td)
	for query, want := range map[string]int{
		"-9223372036854775808":     2,
		"-9223372036854775808.0":   2,
		"-9.223372036854775808e18": 2,
		"9007199254740992":         1,
		"9007199254740993":         0,
		"500":                      1,
		"5e2":                      1,
		"500.0":                    1,
		"0.1":                      1,
		"0.10":                     1,
		"0.2":                      0,
	} {
		// The scan's candidates hold every match (a bloom filter may add
		// others, by chance), and Matches picks the matches out of them.
		q := ParseAttrQuery("n", query)
		matched := 0
		s.Scan("", Filter{Spans: SpanTerms{Kind: -1, Attrs: []AttrQuery{q}}}, Key{}, 0, func(h Hit) bool {
			tr, ok := s.FetchHit(h)
			require.True(t, ok)
			defer tr.Release() // after reading its spans
			spans, err := tr.Spans()
			require.NoError(t, err)
			for _, sp := range spans {
				for _, kv := range sp.Attributes {
					if kv.Key == "n" && q.Matches(kv.Value) {
						matched++
					}
				}
			}
			return true
		})
		assert.Equal(t, want, matched, query)
	}
	q := ParseAttrQuery("n", "-9223372036854775808.0")
	assert.True(t, q.Matches(spancodec.IntValue(-9223372036854775808)))
	assert.True(t, q.Matches(spancodec.DoubleValue(-9223372036854775808)))
}
