// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func traceID(hi, lo uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id
}

func spanID(n uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

// spanSpec describes a span to build.
type spanSpec struct {
	trace  [16]byte
	span   uint64
	parent uint64
	attrs  map[string]string
}

func makeTraces(service string, specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for _, sp := range specs {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(sp.trace)
		s.SetSpanID(spanID(sp.span))
		if sp.parent != 0 {
			s.SetParentSpanID(spanID(sp.parent))
		}
		s.SetName(fmt.Sprintf("span-%d", sp.span))
		s.SetStartTimestamp(pcommon.Timestamp(sp.span * 1000))
		s.SetEndTimestamp(pcommon.Timestamp(sp.span*1000 + 500))
		for k, v := range sp.attrs {
			s.Attributes().PutStr(k, v)
		}
	}
	return td
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestStore(cfg Config) (*Store, *fakeClock) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 30
	}
	cfg.Now = clock.Now
	return New(cfg), clock
}

func spanNames(t *testing.T, tr Trace) []string {
	t.Helper()
	spans, err := tr.Spans()
	require.NoError(t, err)
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	return names
}

func TestIngestAndGet(t *testing.T) {
	s, clock := newTestStore(Config{})
	id := traceID(1, 2)
	td := makeTraces("a", spanSpec{trace: id, span: 1}, spanSpec{trace: id, span: 2, parent: 1})
	before := td.SpanCount()
	s.Ingest("", td)
	assert.Equal(t, before, td.SpanCount(), "ingest must not change the batch")

	clock.Add(time.Second)
	// A late span of the same trace, from another service, appends.
	s.Ingest("", makeTraces("b", spanSpec{trace: id, span: 3, parent: 2}))

	tr, ok := s.Get("", id)
	require.True(t, ok)
	assert.Equal(t, 3, tr.SpanCount)
	assert.Equal(t, []string{"span-1", "span-2", "span-3"}, spanNames(t, tr))
	assert.Equal(t, time.Unix(1_700_000_000, 0).UnixNano(), tr.FirstSeen)
	assert.Equal(t, time.Unix(1_700_000_001, 0).UnixNano(), tr.LastSeen)
	spans, err := tr.Spans()
	require.NoError(t, err)
	assert.Equal(t, "a", spans[0].ServiceName())
	assert.Equal(t, "b", spans[2].ServiceName())

	_, ok = s.Get("", traceID(1, 3))
	assert.False(t, ok)
	st := s.Stats()
	assert.Equal(t, int64(1), st.Traces)
	assert.Equal(t, int64(3), st.Spans)
	assert.Positive(t, st.Bytes)
}

func TestSnapshotIsStableWhileTraceGrows(t *testing.T) {
	s, _ := newTestStore(Config{})
	id := traceID(0, 9)
	s.Ingest("", makeTraces("a", spanSpec{trace: id, span: 1}))
	snap, ok := s.Get("", id)
	require.True(t, ok)
	for i := uint64(2); i < 50; i++ {
		s.Ingest("", makeTraces("a", spanSpec{trace: id, span: i}))
	}
	assert.Equal(t, []string{"span-1"}, spanNames(t, snap))
}

func TestDuplicateSpansStoredOnce(t *testing.T) {
	s, _ := newTestStore(Config{})
	id := traceID(1, 1)
	batch := makeTraces("a", spanSpec{trace: id, span: 1}, spanSpec{trace: id, span: 1}, spanSpec{trace: id, span: 2})
	s.Ingest("", batch)
	s.Ingest("", batch) // a retrying client
	tr, _ := s.Get("", id)
	assert.Equal(t, 2, tr.SpanCount)
	assert.Equal(t, []string{"span-1", "span-2"}, spanNames(t, tr))
	assert.Equal(t, int64(2), s.Stats().Spans)
}

func TestSpanCapMarksTruncated(t *testing.T) {
	s, _ := newTestStore(Config{MaxSpansPerTrace: 3})
	id := traceID(1, 1)
	for i := uint64(1); i <= 5; i++ {
		s.Ingest("", makeTraces("a", spanSpec{trace: id, span: i}))
	}
	s.Ingest("", makeTraces("a", spanSpec{trace: id, span: 1})) // a duplicate is not a drop
	tr, _ := s.Get("", id)
	assert.True(t, tr.Truncated)
	assert.Equal(t, []string{"span-1", "span-2", "span-3"}, spanNames(t, tr))
	assert.Equal(t, int64(2), s.Stats().DroppedSpans)

	other := traceID(2, 2)
	s.Ingest("", makeTraces("a", spanSpec{trace: other, span: 1}))
	tr, _ = s.Get("", other)
	assert.False(t, tr.Truncated)
}

func TestZeroTraceIDIsNotIndexed(t *testing.T) {
	s, _ := newTestStore(Config{})
	s.Ingest("", makeTraces("a", spanSpec{trace: [16]byte{}, span: 1}))
	assert.Equal(t, int64(0), s.Stats().Traces)
}

func TestEvictsOldestFirstForMemory(t *testing.T) {
	s, clock := newTestStore(Config{MaxBytes: 2 << 20})
	var ids [][16]byte
	for i := uint64(1); i <= 20000; i++ {
		id := traceID(0, i)
		ids = append(ids, id)
		s.Ingest("", makeTraces("svc", spanSpec{trace: id, span: 1}, spanSpec{trace: id, span: 2, parent: 1}))
		clock.Add(time.Millisecond)
	}
	st := s.Stats()
	assert.LessOrEqual(t, st.Bytes, int64(2<<20))
	assert.Positive(t, st.EvictedBy(ReasonMemory))
	assert.Equal(t, int64(20000), st.Traces+st.EvictedBy(ReasonMemory))
	// The survivors are exactly the newest traces.
	held := int(st.Traces)
	for i, id := range ids {
		_, ok := s.Get("", id)
		assert.Equal(t, i >= len(ids)-held, ok, "trace %d", i)
	}
	assert.Equal(t, 2*st.Traces, st.Spans)
}

func TestEvictsForCount(t *testing.T) {
	s, _ := newTestStore(Config{MaxTraces: 10})
	for i := uint64(1); i <= 25; i++ {
		s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(0, i), span: 1}))
	}
	st := s.Stats()
	assert.Equal(t, int64(10), st.Traces)
	assert.Equal(t, int64(15), st.EvictedBy(ReasonCount))
	_, ok := s.Get("", traceID(0, 15))
	assert.False(t, ok)
	_, ok = s.Get("", traceID(0, 16))
	assert.True(t, ok)
}

func TestRetention(t *testing.T) {
	s, clock := newTestStore(Config{Retention: time.Minute})
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(0, 1), span: 1}))
	clock.Add(30 * time.Second)
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(0, 2), span: 1}))
	clock.Add(31 * time.Second)
	s.Maintain()
	_, ok := s.Get("", traceID(0, 1))
	assert.False(t, ok)
	_, ok = s.Get("", traceID(0, 2))
	assert.True(t, ok)
	assert.Equal(t, int64(1), s.Stats().EvictedBy(ReasonRetention))
	clock.Add(time.Minute)
	s.Maintain()
	assert.Equal(t, int64(0), s.Stats().Traces)
	assert.Equal(t, int64(0), s.Stats().Spans)
}

func TestLow64Lookup(t *testing.T) {
	s, clock := newTestStore(Config{})
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(7, 42), span: 1}))
	clock.Add(time.Second)
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(8, 42), span: 1}))
	tr, ok := s.GetByLow64("", 42)
	require.True(t, ok)
	assert.Equal(t, traceID(8, 42), tr.ID, "newest first")
	clock.Add(time.Second)
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(7, 42), span: 2}))
	tr, _ = s.GetByLow64("", 42)
	assert.Equal(t, traceID(7, 42), tr.ID, "most recently updated first")
	_, ok = s.GetByLow64("", 43)
	assert.False(t, ok)
	// Both ids that share low bits stay reachable by their full id.
	_, ok = s.Get("", traceID(8, 42))
	assert.True(t, ok)
}

func TestCallIDIndex(t *testing.T) {
	s, clock := newTestStore(Config{CallIDAttribute: "call.id", MaxTraces: 2})
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(0, 1), span: 1, attrs: map[string]string{"call.id": "c1"}}))
	clock.Add(time.Second)
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(0, 2), span: 1, attrs: map[string]string{"call.id": "c1"}}))
	tr, ok := s.GetByCallID("", "c1")
	require.True(t, ok)
	assert.Equal(t, traceID(0, 2), tr.ID, "the trace that received spans most recently")

	// From a resource attribute too.
	td := makeTraces("svc", spanSpec{trace: traceID(0, 3), span: 1})
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("call.id", "c3")
	clock.Add(time.Second)
	s.Ingest("", td)
	tr, ok = s.GetByCallID("", "c3")
	require.True(t, ok)
	assert.Equal(t, traceID(0, 3), tr.ID)

	// Trace 1 was evicted for count: its entry left the index with it.
	tr, ok = s.GetByCallID("", "c1")
	require.True(t, ok)
	assert.Equal(t, traceID(0, 2), tr.ID)
	assert.Len(t, s.calls.get("c1"), 1)
	_, ok = s.GetByCallID("", "nope")
	assert.False(t, ok)
}

func TestConcurrentIngestAndLookup(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 2 << 20, CallIDAttribute: "call.id"})
	var wg sync.WaitGroup
	for w := uint64(0); w < 4; w++ {
		wg.Go(func() {
			for i := uint64(1); i <= 500; i++ {
				id := traceID(w, i)
				s.Ingest("", makeTraces("svc",
					spanSpec{trace: id, span: 1, attrs: map[string]string{"call.id": fmt.Sprint(i)}},
					spanSpec{trace: id, span: 2, parent: 1}))
			}
		})
		wg.Go(func() {
			for i := uint64(1); i <= 500; i++ {
				if tr, ok := s.Get("", traceID(w, i)); ok {
					_, err := tr.Spans()
					assert.NoError(t, err)
				}
				s.GetByLow64("", i)
				s.GetByCallID("", fmt.Sprint(i))
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	assert.LessOrEqual(t, st.Bytes, int64(2<<20))
	assert.Equal(t, int64(2000), st.Traces+st.EvictedBy(ReasonMemory))
}

// Regression: duplicates were detected by span id alone, so the second half
// of a Zipkin-style shared span (same id, other kind and parent) was dropped.
func TestSharedSpanHalvesAreBothKept(t *testing.T) {
	s, _ := newTestStore(Config{})
	id := traceID(3, 3)
	client := makeTraces("caller", spanSpec{trace: id, span: 7, parent: 1})
	client.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetKind(ptrace.SpanKindClient)
	server := makeTraces("callee", spanSpec{trace: id, span: 7, parent: 1})
	server.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetKind(ptrace.SpanKindServer)
	s.Ingest("", client)
	s.Ingest("", server)
	s.Ingest("", server) // retried: stored once
	s.Ingest("", client)
	tr, ok := s.Get("", id)
	require.True(t, ok)
	spans, err := tr.Spans()
	require.NoError(t, err)
	require.Len(t, spans, 2)
	assert.Equal(t, "caller", spans[0].ServiceName())
	assert.Equal(t, "callee", spans[1].ServiceName())
	st := s.Stats()
	assert.Equal(t, int64(2), st.DuplicateSpans, "what was really dropped is counted")
	assert.Zero(t, st.DroppedSpans)
}

// Regression: entries were stamped before they were queued, so racing
// batches queued them out of order, and retention, which checks the head
// only, kept expired traces behind a younger one.
func TestQueueStampsFollowQueueOrder(t *testing.T) {
	var q fifo
	for _, now := range []int64{10, 30, 20, 25, 40} {
		q.push(traceRef{seq: uint64(now)}, now)
	}
	var stamps []int64
	for q.n > 0 {
		stamps = append(stamps, q.ring[q.head].stamp)
		q.pop()
	}
	assert.Equal(t, []int64{10, 30, 30, 30, 40}, stamps)
}

func TestRetentionHasAFloor(t *testing.T) {
	s := New(Config{MaxBytes: 1 << 20, Retention: time.Nanosecond})
	assert.Equal(t, MinRetention, s.cfg.Retention)
}
