// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package search

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// genSpan is one span of the random data, kept to build expectations from.
type genSpan struct {
	trace   uint64
	id      uint64
	parent  uint64
	service string
	name    string
	kind    ptrace.SpanKind
	start   uint64
	dur     uint64
	err     bool
	attrs   map[string]any
}

var (
	genServices = []string{"frontend", "checkout", "payment", "inventory"}
	genNames    = []string{"GET /", "POST /pay", "SELECT", "publish", "consume"}
)

func traceIDOf(n uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], n*0x9E3779B97F4A7C15|1)
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

func spanIDOf(n uint64) [8]byte {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

// genTraces makes n random traces, their spans in random order.
func genTraces(rnd *rand.Rand, n int, firstTrace uint64) []genSpan {
	var out []genSpan
	next := uint64(1)
	for t := range n {
		tn := firstTrace + uint64(t)
		base := uint64(1_700_000_000_000_000_000) + rnd.Uint64N(1_000_000_000_000)
		spans := 1 + rnd.IntN(6)
		first := next
		for k := range spans {
			s := genSpan{
				trace: tn, id: next, service: genServices[rnd.IntN(len(genServices))],
				name: genNames[rnd.IntN(len(genNames))], kind: ptrace.SpanKind(rnd.IntN(6)),
				start: base + rnd.Uint64N(1_000_000), dur: rnd.Uint64N(2_000_000_000), err: rnd.IntN(10) == 0,
				attrs: map[string]any{},
			}
			if k > 0 && rnd.IntN(5) > 0 {
				s.parent = first + rnd.Uint64N(uint64(k))
			} else if k > 0 {
				s.parent = 999_999_999 // an orphan
			}
			if k == 0 && rnd.IntN(4) == 0 {
				s.parent = first + 1000 // a root not (yet) received: running
			}
			if rnd.IntN(2) == 0 {
				s.attrs["http.status_code"] = int64(200 + 100*rnd.IntN(4))
			}
			if rnd.IntN(3) == 0 {
				s.attrs["ratio"] = []float64{0.5, 1, 2.25}[rnd.IntN(3)]
			}
			if rnd.IntN(3) == 0 {
				s.attrs["cached"] = rnd.IntN(2) == 0
			}
			if rnd.IntN(2) == 0 {
				s.attrs["tier"] = []string{"gold", "silver", "500"}[rnd.IntN(3)]
			}
			out = append(out, s)
			next++
		}
	}
	rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// batch builds one export request of spans, one resource per service.
func batch(spans []genSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, g := range spans {
		ss, ok := bySvc[g.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", g.service)
			rs.Resource().Attributes().PutStr("region", "eu-"+g.service[:2])
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[g.service] = ss
		}
		s := ss.AppendEmpty()
		s.SetTraceID(traceIDOf(g.trace))
		s.SetSpanID(spanIDOf(g.id))
		if g.parent != 0 {
			s.SetParentSpanID(spanIDOf(g.parent))
		}
		s.SetName(g.name)
		s.SetKind(g.kind)
		s.SetStartTimestamp(pcommon.Timestamp(g.start))
		s.SetEndTimestamp(pcommon.Timestamp(g.start + g.dur))
		if g.err {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		for k, v := range g.attrs {
			switch v := v.(type) {
			case int64:
				s.Attributes().PutInt(k, v)
			case float64:
				s.Attributes().PutDouble(k, v)
			case bool:
				s.Attributes().PutBool(k, v)
			case string:
				s.Attributes().PutStr(k, v)
			}
		}
	}
	return td
}

// ingest stores spans in random batches; it returns the trace numbers in
// the order each trace first arrived.
func ingest(t *testing.T, st *store.Store, tenant string, rnd *rand.Rand, spans []genSpan) []uint64 {
	t.Helper()
	var order []uint64
	seen := map[uint64]bool{}
	for len(spans) > 0 {
		n := min(len(spans), 1+rnd.IntN(20))
		for _, s := range spans[:n] {
			if !seen[s.trace] {
				seen[s.trace] = true
				order = append(order, s.trace)
			}
		}
		st.Ingest(tenant, batch(spans[:n]))
		spans = spans[n:]
	}
	return order
}

// bruteForce answers q by reading every trace whole.
func bruteForce(t *testing.T, st *store.Store, tenant string, order []uint64, q Query) [][16]byte {
	t.Helper()
	type found struct {
		id    [16]byte
		start uint64
		seq   int
	}
	var all []found
	for seq, tn := range order {
		tr, ok := st.Get(tenant, traceIDOf(tn))
		if !ok {
			continue
		}
		v := traceview.Build(tr, 0)
		dur := v.DurationNanos()
		ok = (q.Status == 0 || q.Status&statusOf(v.Status) != 0) &&
			(q.MinDuration == 0 || dur >= q.MinDuration) && (q.MaxDuration == 0 || dur <= q.MaxDuration) &&
			(q.StartFrom == 0 || v.StartUnixNano >= q.StartFrom) && (q.StartTo == 0 || v.StartUnixNano <= q.StartTo)
		if ok && q.hasSpanConditions() {
			ok = slices.ContainsFunc(v.Spans, func(s spancodec.Span) bool { return q.Matches(v, &s) })
		}
		if ok {
			all = append(all, found{id: v.ID, start: v.StartUnixNano, seq: seq})
		}
		v.Release()
	}
	slices.SortFunc(all, func(a, b found) int { return cmp.Or(cmp.Compare(b.start, a.start), cmp.Compare(b.seq, a.seq)) })
	var ids [][16]byte
	for _, f := range all {
		ids = append(ids, f.id)
	}
	return ids
}

func statusOf(s string) store.Status {
	switch s {
	case traceview.StatusError:
		return store.StatusError
	case traceview.StatusRunning:
		return store.StatusRunning
	}
	return store.StatusSuccess
}

// randomQuery picks a few conditions, each from the values the data holds.
func randomQuery(rnd *rand.Rand) Query {
	q := Query{Kind: AnyKind}
	if rnd.IntN(3) == 0 {
		q.Service = genServices[rnd.IntN(len(genServices))]
	}
	if rnd.IntN(3) == 0 {
		q.Name = genNames[rnd.IntN(len(genNames))]
	}
	if rnd.IntN(4) == 0 {
		q.Kind = int32(rnd.IntN(6))
	}
	for range rnd.IntN(3) {
		kv := [][2]string{
			{"http.status_code", "200"}, {"http.status_code", "500"}, {"http.status_code", "5e2"},
			{"ratio", "1"}, {"ratio", "2.25"}, {"ratio", "0.50"}, {"cached", "true"}, {"cached", "false"},
			{"tier", "gold"}, {"tier", "500"}, {"region", "eu-fr"}, {"region", "eu-pa"}, {"service.name", "payment"},
		}[rnd.IntN(13)]
		q.Attrs = append(q.Attrs, store.ParseAttrQuery(kv[0], kv[1]))
	}
	if rnd.IntN(4) == 0 {
		q.Status = store.Status(1 + rnd.IntN(7))
	}
	if rnd.IntN(4) == 0 {
		q.MinDuration = rnd.Uint64N(1_000_000_000)
	}
	if rnd.IntN(4) == 0 {
		q.MaxDuration = rnd.Uint64N(2_000_000_000)
	}
	if rnd.IntN(4) == 0 {
		q.StartFrom = 1_700_000_000_000_000_000 + rnd.Uint64N(500_000_000_000)
	}
	if rnd.IntN(4) == 0 {
		q.StartTo = 1_700_000_000_000_000_000 + 500_000_000_000 + rnd.Uint64N(500_000_000_000)
	}
	q.Limit = 1 + rnd.IntN(40)
	return q
}

// pages follows a search's cursors to its end.
func pages(t *testing.T, st *store.Store, tenant string, q Query, o Options) ([][16]byte, int) {
	t.Helper()
	var ids [][16]byte
	n := 0
	for {
		res := Run(context.Background(), st, tenant, q, o)
		n++
		for _, s := range res.Traces {
			ids = append(ids, s.ID)
			require.LessOrEqual(t, len(s.Matched), MaxMatchedSpans)
			require.Positive(t, s.MatchedCount)
		}
		require.LessOrEqual(t, len(res.Traces), max(q.Limit, 1))
		if !res.HasNext {
			return ids, n
		}
		require.NotEqual(t, q.After, res.Next, "a page moves on")
		q.After = res.Next
		require.Less(t, n, 10_000)
	}
}

// Every filter and their combinations, against reading every trace.
func TestSearchMatchesBruteForce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	st := store.New(store.Config{MaxBytes: 64 << 20})
	defer st.Close()
	order := ingest(t, st, "", rnd, genTraces(rnd, 1500, 1))
	for i := range 300 {
		q := randomQuery(rnd)
		want := bruteForce(t, st, "", order, q)
		got, _ := pages(t, st, "", q, Options{})
		require.Equal(t, want, got, "query %d: %+v", i, q)
	}
}

// A small budget makes searches partial; following their cursors still
// finds every trace, once.
func TestPartialSearchesResume(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	st := store.New(store.Config{MaxBytes: 64 << 20})
	defer st.Close()
	order := ingest(t, st, "", rnd, genTraces(rnd, 800, 1))
	for i := range 40 {
		q := randomQuery(rnd)
		want := bruteForce(t, st, "", order, q)
		got, n := pages(t, st, "", q, Options{MaxScannedSpans: 1 + rnd.IntN(30), MaxScannedTraces: 1 + rnd.IntN(600)})
		require.Equal(t, want, got, "query %d: %+v", i, q)
		_ = n
	}
	res := Run(context.Background(), st, "", Query{Kind: AnyKind, Limit: 1000}, Options{MaxScannedSpans: 10})
	assert.True(t, res.Partial)
	assert.True(t, res.HasNext)
}

// Paging while new traces arrive: the pages hold every trace stored when
// the search began that matches, once, in order.
func TestPagingWhileIngesting(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	st := store.New(store.Config{MaxBytes: 64 << 20})
	defer st.Close()
	order := ingest(t, st, "", rnd, genTraces(rnd, 600, 1))
	q := Query{Kind: AnyKind, Limit: 25}
	want := bruteForce(t, st, "", order, q)
	var got [][16]byte
	next := uint64(100_000)
	for {
		res := Run(context.Background(), st, "", q, Options{})
		for _, s := range res.Traces {
			got = append(got, s.ID)
		}
		// New traces, newer and older than the pages read so far.
		ingest(t, st, "", rnd, genTraces(rnd, 10, next))
		next += 10
		if !res.HasNext {
			break
		}
		q.After = res.Next
	}
	seen := map[[16]byte]bool{}
	for _, id := range got {
		require.False(t, seen[id], "trace listed twice")
		seen[id] = true
	}
	for _, id := range want {
		require.True(t, seen[id], "a trace stored before the search began is missing")
	}
}

func TestSummary(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	const base = 1_700_000_000_000_000_000
	spans := []genSpan{
		{trace: 1, id: 1, service: "frontend", name: "GET /", start: base, dur: 100, attrs: map[string]any{}},
		{trace: 1, id: 2, parent: 1, service: "payment", name: "charge", start: base + 10, dur: 50, err: true, attrs: map[string]any{"tier": "gold"}},
		{trace: 1, id: 3, parent: 2, service: "payment", name: "charge", start: base + 20, dur: 10, attrs: map[string]any{"tier": "gold"}},
		{trace: 1, id: 4, parent: 77, service: "frontend", name: "late", start: base + 30, dur: 5, attrs: map[string]any{}},
	}
	st.Ingest("", batch(spans))
	res := Run(context.Background(), st, "", Query{Kind: AnyKind, Attrs: []store.AttrQuery{store.ParseAttrQuery("tier", "gold")}}, Options{})
	require.Len(t, res.Traces, 1)
	s := res.Traces[0]
	assert.Equal(t, traceIDOf(1), s.ID)
	assert.Equal(t, "GET /", s.RootName)
	assert.Equal(t, "frontend", s.RootService)
	assert.Equal(t, traceview.StatusError, s.Status)
	assert.Equal(t, uint64(base), s.Start)
	assert.Equal(t, uint64(100), s.DurationNanos())
	assert.Equal(t, 4, s.SpanCount)
	assert.Equal(t, 1, s.ErrorCount)
	assert.Equal(t, 1, s.Orphans)
	assert.Equal(t, []ServiceSpans{{Name: "frontend", Spans: 2}, {Name: "payment", Spans: 2, Errors: 1}}, s.Services)
	assert.Equal(t, 2, s.ServiceCount)
	assert.Equal(t, 2, s.MatchedCount)
	require.Len(t, s.Matched, 2)
	assert.Equal(t, MatchedSpan{SpanID: spanIDOf(2), Name: "charge", ServiceName: "payment", Start: base + 10, Duration: 50}, s.Matched[0])
	assert.False(t, res.HasNext)
}

// The span-level conditions hold on one span: a trace whose one span has
// the service and another the name does not match both.
func TestSpanConditionsHoldOnOneSpan(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	st.Ingest("", batch([]genSpan{
		{trace: 1, id: 1, service: "frontend", name: "GET /", start: 10, dur: 1, attrs: map[string]any{}},
		{trace: 1, id: 2, parent: 1, service: "payment", name: "charge", start: 11, dur: 1, attrs: map[string]any{}},
	}))
	res := Run(context.Background(), st, "", Query{Kind: AnyKind, Service: "frontend", Name: "charge"}, Options{})
	assert.Empty(t, res.Traces)
	res = Run(context.Background(), st, "", Query{Kind: AnyKind, Service: "payment", Name: "charge"}, Options{})
	assert.Len(t, res.Traces, 1)
}

// A value the index cut (limits::max_value_bytes) is found by the text
// kept, and not by the whole value sent: the index's bloom filters may
// pass it along, the search's own check refuses it.
func TestSearchSeesCutValues(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20, Limits: spancodec.Limits{MaxValueBytes: 8}})
	defer st.Close()
	st.Ingest("", batch([]genSpan{
		{trace: 1, id: 1, service: "frontend", name: "GET /", start: 10, dur: 1, attrs: map[string]any{"k": "abcdefghijkl"}},
	}))
	query := func(value string) Query {
		cond, err := NewCompare(FieldAttr, ScopeAny, "k", OpEq, Literal{Type: LitString, Str: value})
		require.NoError(t, err)
		return Query{Kind: AnyKind, Where: cond, Attrs: []store.AttrQuery{store.ParseAttrQuery("k", value)}}
	}
	assert.Len(t, Run(context.Background(), st, "", query("abcdefgh"), Options{}).Traces, 1)
	assert.Empty(t, Run(context.Background(), st, "", query("abcdefghijkl"), Options{}).Traces)
}

func TestCursor(t *testing.T) {
	k := store.Key{Start: 12345, Seq: 678}
	got, err := DecodeCursor(EncodeCursor(k))
	require.NoError(t, err)
	assert.Equal(t, k, got)
	for _, bad := range []string{"", "x", "AAAA", EncodeCursor(store.Key{}), "!" + EncodeCursor(k)[1:]} {
		_, err := DecodeCursor(bad)
		assert.ErrorIs(t, err, ErrBadCursor, bad)
	}
}

func ExampleEncodeCursor() {
	fmt.Println(EncodeCursor(store.Key{Start: 1, Seq: 2}))
	// Output: AQAAAAAAAAABAAAAAAAAAAI
}

// A trace of many services lists the first MaxSummaryServices, and counts them all.
func TestSummaryBoundsServices(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	var spans []genSpan
	for i := range 120 {
		spans = append(spans, genSpan{trace: 1, id: uint64(i + 1), service: fmt.Sprintf("svc-%03d", i), name: "op", start: uint64(10 + i), dur: 1, attrs: map[string]any{}})
	}
	st.Ingest("", batch(spans))
	res := Run(context.Background(), st, "", Query{Kind: AnyKind}, Options{})
	require.Len(t, res.Traces, 1)
	s := res.Traces[0]
	assert.Equal(t, 120, s.ServiceCount)
	require.Len(t, s.Services, MaxSummaryServices)
	for i, sv := range s.Services {
		assert.Equal(t, ServiceSpans{Name: fmt.Sprintf("svc-%03d", i), Spans: 1}, sv)
	}
}

// A search whose client went away stops.
func TestSearchStopsWithItsContext(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	rnd := rand.New(rand.NewPCG(9, 9))
	ingest(t, st, "", rnd, genTraces(rnd, 50, 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Run(ctx, st, "", Query{Kind: AnyKind, Limit: 100}, Options{})
	assert.Empty(t, res.Traces)
}

// A search past its time says so, and its cursor goes on: the first
// candidate of a page is always read, so that paging always moves, and
// the pages still hold every match once.
func TestSearchStopsAtItsTimeout(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 8 << 20})
	defer st.Close()
	rnd := rand.New(rand.NewPCG(9, 10))
	order := ingest(t, st, "", rnd, genTraces(rnd, 50, 1))
	q := Query{Kind: AnyKind, Limit: 100}
	res := Run(context.Background(), st, "", q, Options{Timeout: time.Nanosecond})
	assert.True(t, res.Partial)
	assert.True(t, res.HasNext)
	assert.Len(t, res.Traces, 1, "the first candidate, read whole")
	_, err := DecodeCursor(EncodeCursor(res.Next))
	require.NoError(t, err, "the cursor is one this search reads back")

	want := bruteForce(t, st, "", order, q)
	for _, timeout := range []time.Duration{time.Nanosecond, time.Minute} {
		got, _ := pages(t, st, "", q, Options{Timeout: timeout})
		assert.Equal(t, want, got, timeout)
	}
}
