// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package store is the span index: recent spans held encoded, grouped by
// trace, bounded in bytes, trace count and age, with secondary indexes on the
// low 64 bits of the trace id and on one configured attribute (a call id).
package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

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
	// Data holds the encoded spans (see spancodec); it is never written to after the snapshot is taken.
	Data []byte
}

// Spans decodes the trace's spans in the order they arrived.
func (t *Trace) Spans() ([]spancodec.Span, error) {
	return spancodec.DecodeAll(t.Data, t.ID)
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
	cfg    Config
	now    func() time.Time
	shards [numShards]shard
	queue  evictionQueue
	calls  callIndex

	batchSeq atomic.Uint64
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
}

// traceRec is one stored trace. Its data only grows by appending, so a
// snapshot of data[:len] stays valid without a copy.
type traceRec struct {
	id        [16]byte
	seq       uint64
	firstSeen int64
	lastSeen  int64
	data      []byte
	spanIDs   []uint64 // sorted, to store a span delivered twice only once
	callIDs   []string
	next      *traceRec
	charged   int64 // bytes this trace adds to Store.bytes
	spanCount int32
	truncated bool
	// lastBatch and lastGroup name the resource record last written, so a
	// batch writes each resource once per trace.
	lastBatch uint64
	lastGroup int32
}

// Overheads counted per trace besides its data, measured on amd64 (see
// store_memory_test.go): the record, its map slot, its queue slot.
const (
	traceRecBytes     = 160
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
	n := int64(perTraceOverheads + cap(r.data) + spanIDBytes*cap(r.spanIDs))
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

// Ingest stores every span of td. It copies what it keeps and never changes td.
// When a bound is reached it evicts whole traces; it never fails.
func (s *Store) Ingest(td ptrace.Traces) {
	now := s.now().UnixNano()
	batch := s.batchSeq.Add(1)
	var (
		hdr     []byte
		group   int32
		added   []newTrace
		callIDs []callRef
	)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resCallID := s.callIDOf(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			if spans.Len() == 0 {
				continue
			}
			group++
			hdr = spancodec.AppendResource(hdr[:0], now, rs.Resource(), ss.Scope())
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				callID := s.callIDOf(sp.Attributes())
				if callID == "" {
					callID = resCallID
				}
				added, callIDs = s.ingestSpan(sp, now, batch, group, hdr, callID, added, callIDs)
			}
		}
	}
	if len(added) > 0 {
		s.queue.push(added)
	}
	for _, c := range callIDs {
		s.calls.add(c)
	}
	s.enforce(now)
}

func (s *Store) callIDOf(attrs pcommon.Map) string {
	if s.cfg.CallIDAttribute == "" {
		return ""
	}
	v, ok := attrs.Get(s.cfg.CallIDAttribute)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (s *Store) ingestSpan(sp ptrace.Span, now int64, batch uint64, group int32, hdr []byte, callID string, added []newTrace, calls []callRef) ([]newTrace, []callRef) {
	id := [16]byte(sp.TraceID())
	if id == ([16]byte{}) {
		return added, calls // not a valid trace id: nothing could look it up
	}
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
		added = append(added, newTrace{id: id, seq: r.seq, firstSeen: now})
	}
	r.lastSeen = now
	spanID := sp.SpanID()
	sid := binary.BigEndian.Uint64(spanID[:])
	if s.cfg.MaxSpansPerTrace > 0 && int(r.spanCount) >= s.cfg.MaxSpansPerTrace {
		if _, dup := slices.BinarySearch(r.spanIDs, sid); !dup {
			r.truncated = true
			s.dropped.Add(1)
		}
		return added, calls
	}
	if !r.addSpanID(sid) {
		return added, calls // delivered twice: stored once
	}
	if r.lastBatch != batch || r.lastGroup != group {
		r.data = append(r.data, hdr...)
		r.lastBatch, r.lastGroup = batch, group
	}
	r.data = spancodec.AppendSpan(r.data, sp)
	r.spanCount++
	s.spans.Add(1)
	if callID != "" && !slices.Contains(r.callIDs, callID) {
		callID = strings.Clone(callID) // the batch's memory must not stay alive through the index
		r.callIDs = append(r.callIDs, callID)
		calls = append(calls, callRef{callID: callID, id: id, seq: r.seq})
	}
	size := r.size()
	s.bytes.Add(size - r.charged)
	r.charged = size
	return added, calls
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
	if s.bytes.Load()+s.queue.bytes() > s.cfg.MaxBytes && s.traces.Load() > 0 {
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
}

// ExpireOld evicts traces past the retention period; the owner calls it
// periodically so that old traces leave even when no spans arrive.
func (s *Store) ExpireOld() { s.enforce(s.now().UnixNano()) }

func (sh *shard) snapshot(r *traceRec) Trace {
	return Trace{
		ID:        r.id,
		FirstSeen: r.firstSeen,
		LastSeen:  r.lastSeen,
		SpanCount: int(r.spanCount),
		Truncated: r.truncated,
		Data:      r.data[:len(r.data):len(r.data)],
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

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Traces:       s.traces.Load(),
		Spans:        s.spans.Load(),
		Bytes:        s.bytes.Load() + s.queue.bytes(),
		DroppedSpans: s.dropped.Load(),
	}
	for i := range st.Evicted {
		st.Evicted[i] = s.evicted[i].Load()
	}
	return st
}
