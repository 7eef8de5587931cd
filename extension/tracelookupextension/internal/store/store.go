// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package store is the span index: recent spans held encoded, grouped by
// trace, bounded in bytes, trace count and age, with secondary indexes on the
// low 64 bits of the trace id and on one configured attribute (a call id).
package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// Config bounds the store. Zero values mean "no limit" except for MaxBytes,
// which must be positive.
type Config struct {
	// MaxBytes is the most heap the store may hold; whole traces are evicted, oldest first-seen first, to stay under it.
	MaxBytes int64
	// MaxTraces is the most traces held; 0 means no count limit.
	MaxTraces int
	// MaxSpansPerTrace caps one trace; later spans are dropped and the trace is marked truncated. 0 means no cap.
	MaxSpansPerTrace int
	// Retention evicts traces first seen longer ago than this; 0 keeps them until memory or count evicts them.
	Retention time.Duration
	// CallIDAttribute is the span or resource attribute indexed for lookups by call id; "" disables that index.
	CallIDAttribute string
	// SealAfter is how long a trace stays open, its spans appended as they
	// come, after its last span arrived; then its spans are compressed. 0 means DefaultSealAfter.
	SealAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultSealAfter is how long a trace stays open for late spans before its
// spans are compressed. Spans that arrive later still append; they open the
// trace again.
const DefaultSealAfter = time.Second

// sealOpenBytes seals an open trace at once when its open records reach this
// size, so that a busy trace does not wait to be compressed.
const sealOpenBytes = 32 << 10

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

// Trace is a read-only snapshot of one stored trace.
type Trace struct {
	ID [16]byte
	// FirstSeen and LastSeen are when the store first and last received a span of the trace (unix nanoseconds).
	FirstSeen int64
	LastSeen  int64
	SpanCount int
	// Truncated is set once a span was dropped because the trace reached MaxSpansPerTrace.
	Truncated bool
	// Sealed holds compressed blocks of encoded spans, Data the spans after
	// them (see spancodec); neither is written to after the snapshot is taken.
	Sealed []byte
	Data   []byte
	// resources are the resource bodies the records name.
	resources []*resource
}

// Spans decodes the trace's spans in the order they arrived.
func (t *Trace) Spans() ([]spancodec.Span, error) {
	var sc spancodec.Scratch
	return t.SpansInto(&sc)
}

// SpansInto decodes the spans into sc's memory; they are valid until sc's next use.
func (t *Trace) SpansInto(sc *spancodec.Scratch) ([]spancodec.Span, error) {
	return sc.Decode(t.ID, t.Sealed, t.Data, resolver(t.resources), t.SpanCount)
}

// Stats are the store's counters.
type Stats struct {
	Traces       int64
	Spans        int64
	Bytes        int64
	Evicted      [numReasons]int64
	DroppedSpans int64
}

// EvictedBy returns how many traces were evicted for reason r.
func (s Stats) EvictedBy(r Reason) int64 { return s.Evicted[r] }

const numShards = 64 // a power of two

// Store is safe for concurrent use.
type Store struct {
	cfg       Config
	now       func() time.Time
	shards    [numShards]shard
	queue     evictionQueue
	calls     callIndex
	resources resources

	traceSeq atomic.Uint64

	traces  atomic.Int64
	spans   atomic.Int64
	bytes   atomic.Int64
	dropped atomic.Int64
	evicted [numReasons]atomic.Int64
}

type shard struct {
	mu sync.RWMutex
	// traces is keyed by the low 64 bits of the trace id; ids that share them are chained through traceRec.next.
	traces map[uint64]*traceRec
	// open lists the traces with records not yet sealed.
	open []*traceRec
}

// traceRec is one stored trace: sealed (compressed) blocks, then open
// records. Both only grow by appending or are replaced whole, so a snapshot
// of them stays valid without a copy.
type traceRec struct {
	id        [16]byte
	seq       uint64
	firstSeen int64
	lastSeen  int64
	sealed    []byte
	data      []byte
	spanIDs   []uint64 // sorted, to store a span delivered twice only once
	callIDs   []string
	res       []*resource // the resources its records name, each holding a reference
	next      *traceRec
	charged   int64 // bytes this trace adds to Store.bytes
	spanCount int32
	truncated bool
	removed   bool   // evicted: the sealer leaves it alone
	queued    bool   // listed in its shard's open list
	sealGen   uint32 // counts seals, so that two sealers never both move the same records
}

// Overheads counted per trace besides its data, measured on amd64 (see
// BenchmarkHeapPerSpan, which reports accounted bytes against the live heap):
// the record, its map slot, its queue slot.
const (
	traceRecBytes     = 176
	mapEntryBytes     = 24
	callIndexEntry    = 72
	spanIDBytes       = 8
	perTraceOverheads = traceRecBytes + mapEntryBytes + queueEntryBytes
)

// New returns an empty store.
func New(cfg Config) *Store {
	s := &Store{cfg: cfg, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range s.shards {
		s.shards[i].traces = make(map[uint64]*traceRec)
	}
	s.calls.init()
	s.resources.init()
	return s
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

// remove unlinks the record with id and seq, returning it, or nil.
func (sh *shard) remove(id [16]byte, seq uint64) *traceRec {
	low := low64(id)
	var prev *traceRec
	for r := sh.traces[low]; r != nil; prev, r = r, r.next {
		if r.id != id || r.seq != seq {
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

// size is what the trace costs the heap, by allocated capacity.
func (r *traceRec) size() int64 {
	n := int64(perTraceOverheads + cap(r.sealed) + cap(r.data) + spanIDBytes*cap(r.spanIDs) + 8*cap(r.res))
	for _, c := range r.callIDs {
		n += int64(len(c)) + callIndexEntry
	}
	return n
}

// addSpanID records id and reports whether it was new.
func (r *traceRec) addSpanID(id uint64) bool {
	i, found := slices.BinarySearch(r.spanIDs, id)
	if found {
		return false
	}
	r.spanIDs = slices.Insert(r.spanIDs, i, id)
	return true
}

type newTrace struct {
	id        [16]byte
	seq       uint64
	firstSeen int64
}

type callRef struct {
	callID string
	id     [16]byte
	seq    uint64
}

// spanRef is one span of a batch, with the resource group it came in.
type spanRef struct {
	trace int32 // index into the batch's traces
	group int32 // index into the batch's resource headers
	span  ptrace.Span
}

// batch is one Ingest call's work, grouped by trace.
type batch struct {
	ids     [][16]byte
	byID    map[[16]byte]int32
	refs    []spanRef
	groups  []*resource // each group's resource; the batch holds a reference
	resCall []string    // the call id on each group's resource, if any
	body    []byte
	added   []newTrace
	calls   []callRef
	seal    []*traceRec
	buf     []byte
}

var batchPool = sync.Pool{New: func() any { return &batch{byID: make(map[[16]byte]int32)} }}

func (b *batch) reset() {
	b.ids = b.ids[:0]
	clear(b.byID)
	b.refs = b.refs[:0]
	clear(b.groups)
	b.groups = b.groups[:0]
	b.resCall = b.resCall[:0]
	b.added = b.added[:0]
	b.calls = b.calls[:0]
	b.seal = b.seal[:0]
}

// Ingest stores every span of td. It copies what it keeps and never changes td.
// When a bound is reached it evicts whole traces; it never fails.
func (s *Store) Ingest(td ptrace.Traces) {
	now := s.now().UnixNano()
	b := batchPool.Get().(*batch)
	defer batchPool.Put(b)
	b.reset()

	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			if spans.Len() == 0 {
				continue
			}
			w := spancodec.Watch{Key: s.cfg.CallIDAttribute}
			group := int32(len(b.groups))
			b.body = spancodec.AppendResourceBody(b.body[:0], rs.Resource(), ss.Scope(), &w)
			b.groups = append(b.groups, s.resources.acquire(b.body))
			b.resCall = append(b.resCall, w.Value)
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				id := [16]byte(sp.TraceID())
				if id == ([16]byte{}) {
					continue // not a valid trace id: nothing could look it up
				}
				t, ok := b.byID[id]
				if !ok {
					t = int32(len(b.ids))
					b.ids = append(b.ids, id)
					b.byID[id] = t
				}
				b.refs = append(b.refs, spanRef{trace: t, group: group, span: sp})
			}
		}
	}
	// Spans of one trace together, in the order they came.
	slices.SortStableFunc(b.refs, func(x, y spanRef) int { return int(x.trace) - int(y.trace) })
	for start := 0; start < len(b.refs); {
		end := start + 1
		for end < len(b.refs) && b.refs[end].trace == b.refs[start].trace {
			end++
		}
		s.ingestTrace(b, b.ids[b.refs[start].trace], b.refs[start:end], now)
		start = end
	}
	if len(b.added) > 0 {
		s.queue.push(b.added)
	}
	for _, c := range b.calls {
		s.calls.add(c)
	}
	for _, r := range b.seal {
		s.sealTrace(r)
	}
	for _, g := range b.groups {
		s.resources.release(g)
	}
	s.enforce(now)
}

// ingestTrace stores the spans of one trace from one batch, under one lock.
func (s *Store) ingestTrace(b *batch, id [16]byte, refs []spanRef, now int64) {
	sh := s.shardOf(low64(id))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.find(id)
	if r == nil {
		r = &traceRec{id: id, seq: s.traceSeq.Add(1), firstSeen: now}
		low := low64(id)
		r.next = sh.traces[low]
		sh.traces[low] = r
		s.traces.Add(1)
		b.added = append(b.added, newTrace{id: id, seq: r.seq, firstSeen: now})
	}
	r.lastSeen = now
	lastGroup := int32(-1)
	stored := 0
	// Encode into the batch's scratch buffer, then append once: one growth
	// of the trace's buffer per batch, not one per span.
	buf := b.buf[:0]
	r.spanIDs = slices.Grow(r.spanIDs, len(refs))
	for _, ref := range refs {
		spanID := ref.span.SpanID()
		sid := binary.BigEndian.Uint64(spanID[:])
		if s.cfg.MaxSpansPerTrace > 0 && int(r.spanCount) >= s.cfg.MaxSpansPerTrace {
			if _, dup := slices.BinarySearch(r.spanIDs, sid); !dup {
				r.truncated = true
				s.dropped.Add(1)
			}
			continue
		}
		if !r.addSpanID(sid) {
			continue // delivered twice: stored once
		}
		if ref.group != lastGroup {
			res := b.groups[ref.group]
			buf = spancodec.AppendResource(buf, now, res.id)
			if !slices.Contains(r.res, res) {
				res.refs.Add(1) // the batch's reference keeps it alive meanwhile
				r.res = append(r.res, res)
			}
			lastGroup = ref.group
		}
		w := spancodec.Watch{Key: s.cfg.CallIDAttribute}
		buf = spancodec.AppendSpan(buf, ref.span, &w)
		r.spanCount++
		stored++
		callID := w.Value
		if callID == "" {
			callID = b.resCall[ref.group]
		}
		if callID != "" && !slices.Contains(r.callIDs, callID) {
			callID = strings.Clone(callID) // the batch's memory must not stay alive through the index
			r.callIDs = append(r.callIDs, callID)
			b.calls = append(b.calls, callRef{callID: callID, id: id, seq: r.seq})
		}
	}
	r.data = append(r.data, buf...)
	b.buf = buf
	s.spans.Add(int64(stored))
	if len(r.data) > 0 && !r.queued {
		r.queued = true
		sh.open = append(sh.open, r)
	}
	if len(r.data) >= sealOpenBytes {
		b.seal = append(b.seal, r)
	}
	s.recharge(r)
}

// recharge brings Store.bytes up to date with r's size; r's shard is locked.
func (s *Store) recharge(r *traceRec) {
	size := r.size()
	s.bytes.Add(size - r.charged)
	r.charged = size
}

// sealTrace compresses r's open records into a sealed block. The compression
// runs outside the shard's lock; spans that arrive meanwhile stay open.
func (s *Store) sealTrace(r *traceRec) {
	sh := s.shardOf(low64(r.id))
	sh.mu.RLock()
	if r.removed || len(r.data) == 0 {
		sh.mu.RUnlock()
		return
	}
	open := r.data[:len(r.data):len(r.data)]
	gen := r.sealGen
	sh.mu.RUnlock()

	block, ok := spancodec.Seal(nil, open)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r.removed || r.sealGen != gen {
		return // evicted, or sealed by another goroutine meanwhile
	}
	r.sealGen++
	if ok {
		r.sealed = slices.Concat(r.sealed, block)
		r.data = slices.Clone(r.data[len(open):])
	} else {
		// Compression does not pay: keep the records, without spare capacity.
		r.data = slices.Clone(r.data)
	}
	if len(r.data) == 0 {
		r.data = nil
	}
	r.spanIDs = slices.Clip(slices.Clone(r.spanIDs))
	s.recharge(r)
}

// SealIdle compresses the traces that received no span for SealAfter. The
// owner calls it periodically.
func (s *Store) SealIdle() {
	after := s.cfg.SealAfter
	if after <= 0 {
		after = DefaultSealAfter
	}
	s.sealOpen(s.now().Add(-after).UnixNano())
}

// Seal compresses every open trace now.
func (s *Store) Seal() { s.sealOpen(math.MaxInt64) }

func (s *Store) sealOpen(cutoff int64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		open := sh.open
		sh.open = nil
		var idle []*traceRec
		for _, r := range open {
			switch {
			case r.removed || len(r.data) == 0:
				r.queued = false
			case r.lastSeen <= cutoff:
				r.queued = false
				idle = append(idle, r)
			default:
				sh.open = append(sh.open, r)
			}
		}
		sh.mu.Unlock()
		for _, r := range idle {
			s.sealTrace(r)
		}
	}
}

// enforce evicts the oldest traces until every bound holds.
func (s *Store) enforce(now int64) {
	for {
		reason, over := s.overBound(now)
		if !over {
			return
		}
		e, ok := s.queue.pop(reason == ReasonRetention, now-int64(s.cfg.Retention))
		if !ok {
			return
		}
		s.evict(e, reason)
	}
}

func (s *Store) overBound(now int64) (Reason, bool) {
	if s.heldBytes() > s.cfg.MaxBytes && s.traces.Load() > 0 {
		return ReasonMemory, true
	}
	if s.cfg.MaxTraces > 0 && s.traces.Load() > int64(s.cfg.MaxTraces) {
		return ReasonCount, true
	}
	if s.cfg.Retention > 0 {
		if first, ok := s.queue.oldest(); ok && first < now-int64(s.cfg.Retention) {
			return ReasonRetention, true
		}
	}
	return 0, false
}

func (s *Store) evict(e newTrace, reason Reason) {
	sh := s.shardOf(low64(e.id))
	sh.mu.Lock()
	r := sh.remove(e.id, e.seq)
	if r != nil {
		r.removed = true
	}
	sh.mu.Unlock()
	if r == nil {
		return
	}
	s.bytes.Add(-r.charged)
	s.traces.Add(-1)
	s.spans.Add(-int64(r.spanCount))
	s.evicted[reason].Add(1)
	for _, c := range r.callIDs {
		s.calls.remove(callRef{callID: c, id: e.id, seq: e.seq})
	}
	for _, res := range r.res {
		s.resources.release(res)
	}
}

// ExpireOld evicts traces past the retention period; the owner calls it
// periodically so that old traces leave even when no spans arrive.
func (s *Store) ExpireOld() { s.enforce(s.now().UnixNano()) }

// Maintain expires old traces and seals idle ones; the owner calls it periodically.
func (s *Store) Maintain() {
	s.ExpireOld()
	s.SealIdle()
}

func (sh *shard) snapshot(r *traceRec) Trace {
	return Trace{
		ID:        r.id,
		FirstSeen: r.firstSeen,
		LastSeen:  r.lastSeen,
		SpanCount: int(r.spanCount),
		Truncated: r.truncated,
		Sealed:    r.sealed,
		Data:      r.data[:len(r.data):len(r.data)],
		resources: slices.Clip(r.res),
	}
}

// Get returns the trace with id.
func (s *Store) Get(id [16]byte) (Trace, bool) {
	sh := s.shardOf(low64(id))
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if r := sh.find(id); r != nil {
		return sh.snapshot(r), true
	}
	return Trace{}, false
}

// GetByLow64 returns the most recently updated trace whose id ends in low.
func (s *Store) GetByLow64(low uint64) (Trace, bool) {
	sh := s.shardOf(low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	var best *traceRec
	for r := sh.traces[low]; r != nil; r = r.next {
		if best == nil || r.lastSeen > best.lastSeen {
			best = r
		}
	}
	if best == nil {
		return Trace{}, false
	}
	return sh.snapshot(best), true
}

// GetByCallID returns the most recently updated trace that carries callID in
// the configured call-id attribute.
func (s *Store) GetByCallID(callID string) (Trace, bool) {
	var (
		best  Trace
		found bool
	)
	for _, ref := range s.calls.get(callID) {
		t, ok := s.Get(ref.id)
		if ok && (!found || t.LastSeen > best.LastSeen) {
			best, found = t, true
		}
	}
	return best, found
}

// heldBytes is every byte the store accounts for.
func (s *Store) heldBytes() int64 {
	return s.bytes.Load() + s.queue.bytes() + s.resources.bytes.Load()
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Traces:       s.traces.Load(),
		Spans:        s.spans.Load(),
		Bytes:        s.heldBytes(),
		DroppedSpans: s.dropped.Load(),
	}
	for i := range st.Evicted {
		st.Evicted[i] = s.evicted[i].Load()
	}
	return st
}
