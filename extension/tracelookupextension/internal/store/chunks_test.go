// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"crypto/rand"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

func TestChunkSizeFollowsTheBudget(t *testing.T) {
	assert.Equal(t, 4<<10, chunkSizeFor(64<<10))
	assert.Equal(t, 64<<10, chunkSizeFor(4<<20))
	assert.Equal(t, 1<<20, chunkSizeFor(256<<20))
	assert.Equal(t, 1<<20, chunkSizeFor(8<<30))
}

// Regression: a trace whose data does not compress was re-sealed on every
// batch, and every seal copied all its sealed bytes again (quadratic).
func TestIncompressibleTraceIsWrittenOnce(t *testing.T) {
	s, _ := newTestStore(Config{})
	id := traceID(5, 5)
	const batches = 300
	for i := uint64(1); i <= batches; i++ {
		noise := make([]byte, 256)
		_, _ = rand.Read(noise)
		s.Ingest("", makeTraces("svc", spanSpec{trace: id, span: i, attrs: map[string]string{"noise": string(noise)}}))
	}
	tr, ok := s.Get("", id)
	require.True(t, ok)
	spans, err := tr.Spans()
	require.NoError(t, err)
	require.Len(t, spans, batches)
	raw := s.sealedIn.Load()
	// Each batch's records went through the compressor once, and the blocks
	// hold them once (raw, as compression did not pay, plus a header each).
	assert.Less(t, raw, int64(batches*400), "compressed once each: linear in the data")
	assert.LessOrEqual(t, int64(tr.BlockBytes()), raw+int64(batches*3))
}

func TestChunksBoundTheMemory(t *testing.T) {
	const budget = 2 << 20
	s, _ := newTestStore(Config{MaxBytes: budget})
	for i := uint64(0); i < 1000; i++ {
		s.Ingest("", spangen.Batch(i*10, 10, 0, 10)) // about 27 MiB of OTLP
	}
	st := s.Stats()
	assert.Positive(t, st.EvictedBy(ReasonMemory))
	assert.LessOrEqual(t, st.Bytes, int64(budget))
	assert.LessOrEqual(t, st.MappedBytes, int64(budget))
	assert.False(t, s.overMemory(), "within the budget, collector headroom on the heap included")
	size := int64(s.log.size)
	assert.LessOrEqual(t, s.log.mapped.Load(), int64(s.log.chunksInUse()+spareChunks)*size, "no chunk is mapped but in use or spare")
	// Every trace still held reads back whole.
	held := 0
	for i := uint64(0); i < 10000; i++ {
		if tr, ok := s.Get("", spangen.TraceID(i)); ok {
			spans, err := tr.Spans()
			require.NoError(t, err)
			require.Len(t, spans, 10)
			held++
		}
	}
	assert.Equal(t, int(st.Traces), held)
	assert.Equal(t, st.Spans, int64(10*held))
}

func TestEvictingAChunkEvictsItsTracesWhole(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 1 << 20}) // 16 KiB chunks
	early := traceID(9, 1)
	s.Ingest("", makeTraces("svc", spanSpec{trace: early, span: 1}))
	// Fill a few chunks, then a late span of the early trace lands in a new one.
	for i := uint64(0); i < 200; i++ {
		s.Ingest("", spangen.Batch(i*10, 10, 0, 10))
		if i == 100 {
			s.Ingest("", makeTraces("svc", spanSpec{trace: early, span: 2, parent: 1}))
		}
	}
	if _, ok := s.Get("", early); ok {
		t.Skip("the budget held every trace; nothing to check")
	}
	// Gone whole, with its late block: no part of it answers.
	_, ok := s.GetByLow64("", low64(early))
	assert.False(t, ok)
}

func TestCloseUnmapsAndStopsStoring(t *testing.T) {
	s, _ := newTestStore(Config{CallIDAttribute: "call.id"})
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(1, 1), span: 1, attrs: map[string]string{"call.id": "c"}}))
	require.Positive(t, s.Stats().MappedBytes)
	s.Close()
	st := s.Stats()
	assert.Zero(t, st.Traces)
	assert.Zero(t, st.MappedBytes)
	assert.Zero(t, s.calls.size())
	assert.Zero(t, s.resources.count())
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(1, 2), span: 1}))
	_, ok := s.Get("", traceID(1, 2))
	assert.False(t, ok)
	s.Close() // twice is fine
}

// Regression: call-id entries were added after the shard lock was released,
// so an entry could outlive its evicted trace; and the lookup ignored the
// sequence number. After every trace is evicted, every index is empty.
func TestIndexesAreEmptyOnceEverythingIsEvicted(t *testing.T) {
	s, clock := newTestStore(Config{MaxBytes: 2 << 20, MaxTraces: 40, Retention: time.Minute, CallIDAttribute: "call.id"})
	var wg sync.WaitGroup
	for w := uint64(0); w < 4; w++ {
		wg.Go(func() {
			for i := uint64(1); i <= 400; i++ {
				id := traceID(w%2, i) // two writers share every id: traces are evicted and created again
				s.Ingest("", makeTraces("svc-"+fmt.Sprint(w),
					spanSpec{trace: id, span: w*1000 + i, attrs: map[string]string{"call.id": fmt.Sprint("c", i%7)}}))
			}
		})
		wg.Go(func() {
			for i := uint64(1); i <= 400; i++ {
				if tr, ok := s.GetByCallID("", fmt.Sprint("c", i%7)); ok {
					spans, err := tr.Spans()
					require.NoError(t, err)
					carries := false
					for _, sp := range spans {
						v, _ := sp.Attr("call.id")
						carries = carries || v.Str == fmt.Sprint("c", i%7)
					}
					assert.True(t, carries, "a call-id lookup answers only with a trace that carries it")
				}
			}
		})
	}
	wg.Wait()
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.Stats().Traces)
	assert.Zero(t, s.Stats().Spans)
	assert.Zero(t, s.calls.size(), "call-id index")
	for i := range s.shards {
		assert.Empty(t, s.shards[i].traces, "low-64 index")
	}
	assert.Zero(t, s.resources.count())
	assert.Zero(t, s.bytes.Load())
}

// Regression: a panic inside ingest left the batch's resource references
// held, so those resources never left the table.
func TestPanicInIngestReleasesResources(t *testing.T) {
	s, clock := newTestStore(Config{Retention: time.Minute})
	ingestHook = func() { panic("injected") }
	func() {
		defer func() { assert.Equal(t, "injected", recover()) }()
		s.Ingest("", spangen.Batch(0, 10, 0, 10))
	}()
	ingestHook = nil
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.Stats().Traces)
	assert.Zero(t, s.resources.count(), "no reference left behind")
}

func TestConcurrentIngestLookupAndChunkReuse(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 2 << 20})
	var writers, reader sync.WaitGroup
	stop := make(chan struct{})
	for w := uint64(0); w < 2; w++ {
		writers.Go(func() {
			for i := uint64(0); i < 500; i++ {
				s.Ingest("", spangen.Batch(w*100000+i*10, 10, 0, 10))
			}
		})
	}
	reader.Go(func() {
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, base := range []uint64{0, 100000} {
				if tr, ok := s.Get("", spangen.TraceID(base+i%5000)); ok {
					spans, err := tr.Spans()
					assert.NoError(t, err)
					assert.Len(t, spans, tr.SpanCount)
					tr.Release()
				}
			}
		}
	})
	writers.Wait()
	close(stop)
	reader.Wait()
	assert.LessOrEqual(t, s.Stats().Bytes, int64(2<<20))
}

// Regression (review): a trace with 256 resources wrapped a one-byte count,
// could no longer be read, and kept its resources' references forever.
func TestTraceWithManyResources(t *testing.T) {
	s, clock := newTestStore(Config{Retention: time.Minute})
	id := traceID(6, 6)
	for i := uint64(1); i <= 300; i++ {
		s.Ingest("", makeTraces(fmt.Sprint("pod-", i), spanSpec{trace: id, span: i}))
	}
	tr, ok := s.Get("", id)
	require.True(t, ok)
	spans, err := tr.Spans()
	require.NoError(t, err)
	assert.Len(t, spans, 300)
	assert.Equal(t, 300, s.resources.count())
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.resources.count(), "every reference released")
	assert.Zero(t, s.resources.bytes.Load())
}

// Regression (review): with max_traces set but memory the bound reached,
// the first-seen queue kept an entry for every trace ever stored, its
// growing cost pushed the store over budget for good, and it held nothing.
func TestQueueStaysBoundedUnderMemoryEviction(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 4 << 20, MaxTraces: 10_000_000})
	for i := uint64(1); i <= 100_000; i++ {
		s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(7, i), span: 1}))
	}
	st := s.Stats()
	assert.Positive(t, st.EvictedBy(ReasonMemory))
	assert.Greater(t, st.Traces, int64(1000), "the store still holds traces")
	queued := 0
	for i := range s.shards {
		queued += s.shards[i].queue.n
	}
	assert.LessOrEqual(t, queued, int(st.Traces)+numShards*64, "stale entries leave the queue")
	assert.False(t, s.overMemory())
}

// Regression (review): a chunk popped by an evictor just before Close was
// subtracted again when recycled, and the counters went negative.
func TestCloseDuringEviction(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 2 << 20})
	for i := uint64(0); i < 200; i++ {
		s.Ingest("", spangen.Batch(i*10, 10, 0, 10))
	}
	c := s.log.popOldest()
	require.NotNil(t, c)
	s.Close()
	s.log.recycle(c)
	st := s.Stats()
	assert.Zero(t, st.MappedBytes)
	assert.Zero(t, s.log.owners.Load())
	assert.GreaterOrEqual(t, st.Bytes, int64(0))
}

// Once traces leave by retention, their chunks go back too.
func TestDeadChunksAreReclaimed(t *testing.T) {
	s, clock := newTestStore(Config{MaxBytes: 8 << 20, Retention: time.Minute})
	for i := uint64(0); i < 500; i++ {
		s.Ingest("", spangen.Batch(i*10, 10, 0, 10))
	}
	require.Greater(t, s.log.chunksInUse(), 4)
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.Stats().Traces)
	assert.LessOrEqual(t, s.log.chunksInUse(), 1, "only the head is left")
	assert.LessOrEqual(t, s.log.mapped.Load(), int64((1+spareChunks)*s.log.size))
	assert.LessOrEqual(t, s.log.owners.Load(), int64(ownerBytes*1000))
}

// Regression (review): traces of one request share a first-seen stamp, and
// count eviction picked among them by shard, not by arrival.
func TestCountEvictionFollowsArrivalWithinARequest(t *testing.T) {
	s, _ := newTestStore(Config{MaxTraces: 5})
	var specs []spanSpec
	for i := uint64(1); i <= 10; i++ {
		specs = append(specs, spanSpec{trace: traceID(8, i*7919), span: i})
	}
	s.Ingest("", makeTraces("svc", specs...))
	for i, sp := range specs {
		_, ok := s.Get("", sp.trace)
		assert.Equal(t, i >= 5, ok, "trace %d", i)
	}
}

func TestResourcesAreSharedAndLeaveWithTheirChunks(t *testing.T) {
	s, clock := newTestStore(Config{MaxTraces: 30, Retention: time.Minute})
	// 20 traces over five services: five distinct resources, whatever the trace count.
	s.Ingest("", spangen.Batch(0, 20, 0, 10))
	assert.Equal(t, 5, s.resources.count())
	for i := uint64(0); i < 20; i++ {
		tr, ok := s.Get("", spangen.TraceID(i))
		require.True(t, ok)
		spans, err := tr.Spans()
		require.NoError(t, err)
		require.Len(t, spans, 10)
		for _, sp := range spans {
			assert.NotEmpty(t, sp.ServiceName())
		}
	}
	for _, r := range s.resources.byID {
		assert.Equal(t, int32(1), r.refs.Load(), "one reference from the one chunk that names it")
	}
	// Once the traces are gone, their chunks and the resources go with them.
	clock.Add(2 * time.Minute)
	s.Maintain()
	s.Ingest("", makeTraces("only-service", spanSpec{trace: traceID(99, 1), span: 1}))
	assert.Equal(t, 1, s.resources.count(), "only the new trace's resource is left")
}

// Regression (review): resource ids wrapped after 2^32 resources and were
// handed out again while still held, so a trace decoded with another
// service's resource, and the older entry leaked.
func TestResourceIDsSkipLiveOnesWhenTheyWrap(t *testing.T) {
	s, clock := newTestStore(Config{Retention: time.Minute})
	s.Ingest("", makeTraces("A", spanSpec{trace: traceID(10, 1), span: 1}))
	s.resources.next = math.MaxUint32
	s.Ingest("", makeTraces("B", spanSpec{trace: traceID(10, 2), span: 1}))
	s.Ingest("", makeTraces("C", spanSpec{trace: traceID(10, 3), span: 1}))
	for i, want := range []string{"A", "B", "C"} {
		tr, ok := s.Get("", traceID(10, uint64(i+1)))
		require.True(t, ok)
		spans, err := tr.Spans()
		require.NoError(t, err)
		assert.Equal(t, want, spans[0].ServiceName())
	}
	clock.Add(2 * time.Minute)
	s.Maintain()
	assert.Zero(t, s.resources.count())
	assert.Empty(t, s.resources.byKey)
	assert.Zero(t, s.resources.bytes.Load())
}
