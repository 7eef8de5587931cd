// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package store is the span index: recent spans held encoded and compressed
// in a log of fixed-size chunks outside the Go heap, grouped by trace,
// bounded in bytes, trace count and age, with secondary indexes on the low
// 64 bits of the trace id and on one configured attribute (a call id).
//
// The files split it by job: store.go the types and the accounting,
// ingest.go writing spans, chunks.go the chunk log, evict.go the bounds,
// lookup.go reading traces back.
package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"encoding/binary"
	"hash/maphash"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// Config bounds the store. Zero values mean "no limit" except for MaxBytes,
// which must be positive.
type Config struct {
	// MaxBytes is the most memory the store may hold (see Store.Stats for
	// what it counts); whole traces are evicted, oldest first, to stay under it.
	MaxBytes int64
	// MaxTraces is the most traces held; 0 means no count limit.
	MaxTraces int
	// MaxSpansPerTrace caps one trace; later spans are dropped and the trace is marked truncated. 0 means no cap.
	MaxSpansPerTrace int
	// Retention evicts traces first seen longer ago than this; 0 keeps them
	// until memory or count evicts them. Values below MinRetention are raised to it.
	Retention time.Duration
	// CallIDAttribute is the span or resource attribute indexed for lookups by call id; "" disables that index.
	CallIDAttribute string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MinRetention is the shortest retention the store keeps to: expiry runs on
// a timer, and a shorter period would only make it spin.
const MinRetention = time.Second

// Reason says why a trace left the store.
type Reason int

// Eviction reasons.
const (
	ReasonMemory Reason = iota
	ReasonCount
	ReasonRetention
	numReasons
)

func (r Reason) String() string {
	switch r {
	case ReasonMemory:
		return "memory"
	case ReasonCount:
		return "count"
	default:
		return "retention"
	}
}

// Stats are the store's counters.
type Stats struct {
	Traces int64
	Spans  int64
	// Bytes is every byte the store holds: the chunks it has mapped (in use
	// and spare), the per-trace entries, the secondary indexes, the
	// resource table and the owner lists, by allocated capacity.
	Bytes int64
	// ChunkBytes is the part of Bytes in chunks; HeapBytes the part on the Go heap.
	ChunkBytes int64
	HeapBytes  int64
	Evicted    [numReasons]int64
	// DroppedSpans were not stored because their trace had reached MaxSpansPerTrace.
	DroppedSpans int64
	// DuplicateSpans were not stored because the trace already held the same
	// span (same span id, parent and kind): a client retried.
	DuplicateSpans int64
}

// EvictedBy returns how many traces were evicted for reason r.
func (s Stats) EvictedBy(r Reason) int64 { return s.Evicted[r] }

const numShards = 64 // a power of two

// Store is safe for concurrent use.
type Store struct {
	cfg       Config
	now       func() time.Time
	shards    [numShards]shard
	log       *chunkLog
	calls     callIndex
	resources resources
	keySeed   maphash.Seed
	// heapFactor is what one byte of live heap costs in resident memory, the
	// collector's headroom included (see heapFactor).
	heapFactor float64
	// fifo says whether traces are kept in first-seen order per shard, for
	// the count and retention bounds; memory eviction needs no queue.
	fifo bool

	traceSeq atomic.Uint64
	closed   atomic.Bool
	// lastExpiry is when retention last ran (unix nanoseconds).
	lastExpiry atomic.Int64

	traces     atomic.Int64
	spans      atomic.Int64
	bytes      atomic.Int64 // per-trace entries and their call ids
	queueBytes atomic.Int64
	dropped    atomic.Int64
	duplicates atomic.Int64
	evicted    [numReasons]atomic.Int64
	sealedIn   atomic.Int64 // record bytes compressed, each once
	evictMu    sync.Mutex   // one evictor at a time: two would free a chunk each for one chunk over
}

type shard struct {
	mu sync.RWMutex
	// traces is keyed by the low 64 bits of the trace id; ids that share them are chained through traceRec.next.
	traces map[uint64]*traceRec
	// queue lists this shard's traces in first-seen order (when the store keeps one).
	queue fifo
}

type traceRef struct {
	id  [16]byte
	seq uint64
}

// traceRec is one stored trace: the extents of its entries in the chunk log
// (see entry.go), and what ingest needs to add to it.
type traceRec struct {
	id        [16]byte
	seq       uint64
	firstSeen int64
	lastSeen  int64
	blocks    []extent
	callIDs   []string
	res       []*resource // the resources its records name, each holding a reference
	next      *traceRec
	charged   int64 // bytes this trace adds to Store.bytes
	spanCount int32
	truncated bool
}

// Heap costs besides data, measured on amd64 (BenchmarkHeapPerSpan reports
// accounted bytes against the live heap): the record and its map slot.
const (
	traceRecBytes  = 176
	mapEntryBytes  = 24
	callIndexEntry = 72
	extentBytes    = 16
)

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.Retention > 0 && cfg.Retention < MinRetention {
		cfg.Retention = MinRetention
	}
	s := &Store{
		cfg:        cfg,
		now:        cfg.Now,
		log:        &chunkLog{size: chunkSizeFor(cfg.MaxBytes)},
		keySeed:    maphash.MakeSeed(),
		heapFactor: heapFactor(),
		fifo:       cfg.MaxTraces > 0 || cfg.Retention > 0,
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range s.shards {
		s.shards[i].traces = make(map[uint64]*traceRec)
	}
	s.calls.init()
	s.resources.init()
	// A store dropped without Close still gives its chunks back.
	runtime.AddCleanup(s, func(l *chunkLog) { l.close() }, s.log)
	return s
}

// heapFactor is what a byte of live heap costs the process: the garbage
// collector lets the heap grow by GOGC percent of the live heap before it
// collects, and the runtime keeps up to a tenth more than that goal before
// it returns free pages to the system (the scavenger's retained share).
func heapFactor() float64 {
	percent := 100
	if v, err := strconv.Atoi(os.Getenv("GOGC")); err == nil && v > 0 {
		percent = v
	}
	return (1 + float64(percent)/100) * 1.1
}

// Close removes every trace and unmaps the chunks; the store stores nothing
// after it. Lookups in flight finish first.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, head := range sh.traces {
			for r := head; r != nil; r = r.next {
				s.dropRec(r)
			}
		}
		clear(sh.traces)
		sh.queue = fifo{}
		sh.mu.Unlock()
	}
	s.queueBytes.Store(0)
	s.log.close()
}

func low64(id [16]byte) uint64 { return binary.BigEndian.Uint64(id[8:]) }

func (s *Store) shardOf(low uint64) *shard {
	// Mix the bits: ids made from small integers would otherwise share a shard.
	h := low * 0x9E3779B97F4A7C15
	return &s.shards[h>>(64-6)]
}

func (sh *shard) find(id [16]byte) *traceRec {
	for r := sh.traces[low64(id)]; r != nil; r = r.next {
		if r.id == id {
			return r
		}
	}
	return nil
}

func (sh *shard) link(r *traceRec) {
	low := low64(r.id)
	r.next = sh.traces[low]
	sh.traces[low] = r
}

// remove unlinks the record with id and seq, returning it, or nil.
func (sh *shard) remove(ref traceRef) *traceRec {
	low := low64(ref.id)
	var prev *traceRec
	for r := sh.traces[low]; r != nil; prev, r = r, r.next {
		if r.id != ref.id || r.seq != ref.seq {
			continue
		}
		switch {
		case prev != nil:
			prev.next = r.next
		case r.next != nil:
			sh.traces[low] = r.next
		default:
			delete(sh.traces, low)
		}
		r.next = nil
		return r
	}
	return nil
}

// size is what the trace's entry costs the heap, by allocated capacity.
func (r *traceRec) size() int64 {
	n := int64(traceRecBytes + mapEntryBytes + extentBytes*cap(r.blocks) + 8*cap(r.res))
	for _, c := range r.callIDs {
		n += int64(len(c)) + callIndexEntry
	}
	return n
}

// recharge brings Store.bytes up to date with r's size; r's shard is locked.
func (s *Store) recharge(r *traceRec) {
	size := r.size()
	s.bytes.Add(size - r.charged)
	r.charged = size
}

// heapBytes is what the store holds on the Go heap.
func (s *Store) heapBytes() int64 {
	return s.bytes.Load() + s.queueBytes.Load() + s.resources.bytes.Load() + s.log.owners.Load()
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Traces:         s.traces.Load(),
		Spans:          s.spans.Load(),
		ChunkBytes:     s.log.mapped.Load(),
		HeapBytes:      s.heapBytes(),
		DroppedSpans:   s.dropped.Load(),
		DuplicateSpans: s.duplicates.Load(),
	}
	st.Bytes = st.ChunkBytes + st.HeapBytes
	for i := range st.Evicted {
		st.Evicted[i] = s.evicted[i].Load()
	}
	return st
}

// Trace is a read-only copy of one stored trace.
type Trace struct {
	ID [16]byte
	// FirstSeen and LastSeen are when the store first and last received a span of the trace (unix nanoseconds).
	FirstSeen int64
	LastSeen  int64
	SpanCount int
	// Truncated is set once a span was dropped because the trace reached MaxSpansPerTrace.
	Truncated bool
	// blocks are the trace's blocks, copied out of the chunk log.
	blocks []byte
	buf    *[]byte // the pooled buffer blocks is in, if any
	// resources are the resource bodies the records name.
	resources []*resource
}

// Spans decodes the trace's spans in the order they arrived.
func (t *Trace) Spans() ([]spancodec.Span, error) {
	var sc spancodec.Scratch
	return t.SpansInto(&sc)
}

// SpansInto decodes the spans into sc's memory; they are valid until sc's
// next use, and do not need t's memory (see Release).
func (t *Trace) SpansInto(sc *spancodec.Scratch) ([]spancodec.Span, error) {
	return sc.Decode(t.ID, t.blocks, resolver(t.resources), t.SpanCount)
}

// BlockBytes is the size of the trace's blocks as stored.
func (t *Trace) BlockBytes() int { return len(t.blocks) }

// Release returns the trace's copy of its blocks for reuse; t must not be
// decoded after it. Spans already decoded stay valid.
func (t *Trace) Release() {
	if t.buf != nil {
		*t.buf = t.blocks[:0]
		blockBufs.Put(t.buf)
		t.buf, t.blocks = nil, nil
	}
}
