// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"slices"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// queueEntryBytes is the size of one queue entry.
const queueEntryBytes = 24

type queued struct {
	ref   traceRef
	stamp int64 // first seen, never earlier than the entry before it
}

// fifo lists one shard's traces in first-seen order, for the count and
// retention bounds. Entries are pushed under the shard's lock, stamped no
// earlier than the last, so the order and the stamps agree even when
// batches race; entries of traces evicted for memory are skipped when they
// reach the head.
type fifo struct {
	ring []queued
	head int
	n    int
	last int64
}

// push appends ref and returns the bytes the queue grew by.
func (q *fifo) push(ref traceRef, now int64) int64 {
	var grown int64
	if q.n == len(q.ring) {
		grown = q.resize(max(16, 2*len(q.ring)))
	}
	q.last = max(q.last, now)
	q.ring[(q.head+q.n)%len(q.ring)] = queued{ref: ref, stamp: q.last}
	q.n++
	return grown
}

// front returns the oldest entry whose trace is still stored, dropping the
// ones before it. A chunk's eviction takes its traces from the front of each
// shard's queue (in one shard, blocks are written in first-seen order), so
// stale entries do not pile up behind a live one.
func (sh *shard) front() (queued, bool) {
	q := &sh.queue
	for q.n > 0 {
		e := q.ring[q.head]
		if _, te := sh.findRef(e.ref); te != nil {
			return e, true
		}
		q.pop()
	}
	return queued{}, false
}

// compactQueue drops the entries of traces no longer stored, once they
// outnumber the live ones: traces moved out of the oldest chunk (see
// evictOldestChunk) stay at the front while the ones behind them leave.
// It returns the bytes the queue grew by (negative: freed).
func (sh *shard) compactQueue() int64 {
	q := &sh.queue
	if q.n <= 2*sh.count+64 {
		return 0
	}
	live := 0
	for i := 0; i < q.n; i++ {
		e := q.ring[(q.head+i)%len(q.ring)]
		if _, te := sh.findRef(e.ref); te != nil {
			q.ring[(q.head+live)%len(q.ring)] = e
			live++
		}
	}
	for i := live; i < q.n; i++ {
		q.ring[(q.head+i)%len(q.ring)] = queued{}
	}
	q.n = live
	return -q.shrink()
}

// shrink gives back a ring that is mostly empty; it returns the bytes freed.
func (q *fifo) shrink() int64 {
	if len(q.ring) <= 64 || q.n > len(q.ring)/4 {
		return 0
	}
	return -q.resize(max(16, 2*q.n))
}

// resize moves the entries to a ring of size entries and returns the bytes
// the ring grew by.
func (q *fifo) resize(size int) int64 {
	next := make([]queued, size)
	for i := 0; i < q.n; i++ {
		next[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	grown := int64(len(next)-len(q.ring)) * queueEntryBytes
	q.ring, q.head = next, 0
	return grown
}

func (q *fifo) pop() {
	q.ring[q.head] = queued{}
	q.head = (q.head + 1) % len(q.ring)
	q.n--
}

// enforce evicts until every bound holds. The caller holds no lock.
func (s *Store) enforce(now int64) {
	if !s.overMemory() && !s.overCount() && !s.overRetention(now) {
		return
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	moves := s.cfg.TenantShare > 0
	for s.overMemory() {
		before := s.held()
		if !s.evictOldestChunk(moves) {
			break
		}
		// Moving is only worth it while it frees memory: when what is held
		// lies outside the chunks, a chunk's moved traces could fill a new
		// one as fast as the old is reclaimed. Plain eviction from then on.
		moves = moves && s.held() < before
	}
	for s.overCount() {
		if !s.evictOldestTrace() {
			break
		}
	}
	if s.overRetention(now) {
		s.expire(now)
	}
}

// overMemory says whether the store holds more than its budget. The Go heap
// it holds counts with the collector's headroom on top, and the spare chunks
// are kept inside the budget, so that what the process holds for the index
// stays within MaxBytes.
func (s *Store) overMemory() bool { return s.held() > float64(s.cfg.MaxBytes) }

// held is what the memory bound counts the store as holding.
func (s *Store) held() float64 {
	l := s.log
	inUse := l.mapped.Load() - l.spare.Load() + s.slabBytes.Load() + s.searchMapped.Load()
	return float64(inUse) + float64(s.heapBytes())*s.heapFactor + float64(spareChunks*l.size)
}

func (s *Store) overCount() bool {
	return s.cfg.MaxTraces > 0 && s.traces.Load() > int64(s.cfg.MaxTraces)
}

// overRetention is a quick check; evictOldestTrace decides exactly.
func (s *Store) overRetention(now int64) bool {
	return s.cfg.Retention > 0 && s.traces.Load() > 0 && now-s.lastExpiry.Load() >= int64(s.cfg.Retention)/10
}

// evictOldestChunk evicts every trace with a block in the oldest chunk and
// recycles the chunk; false when there is none. With tenant shares, the
// traces of tenants well under their share are moved to the head instead,
// up to half a chunk: a tenant sending far more than the others then
// evicts its own traces, not theirs, and each chunk still frees at least
// half its size.
func (s *Store) evictOldestChunk(moves bool) bool {
	c := s.log.popOldest()
	if c == nil {
		return false
	}
	room := 0
	if moves {
		room = s.log.size / 2
	}
	for _, tr := range c.owners {
		s.evictOrMove(tr, c.slot, &room)
	}
	s.log.recycle(c)
	return true
}

// moveBelow is the part of its share under which a tenant's traces are
// moved rather than evicted for memory: a tenant at its share is evicting
// its own traces already.
const moveBelow = 0.9

// evictOrMove evicts the trace tr names, or moves it to the head when its
// tenant is well under its share and it fits in room, unless it has no
// block left in chunk slot (it was moved before).
func (s *Store) evictOrMove(tr traceRef, slot uint32, room *int) {
	sh := s.shardOf(tr.low)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ref, e := sh.findRef(tr)
	if e == nil {
		return
	}
	var exts [inlineExtents]extent
	ext := sh.entries.extents(exts[:0], ref, e)
	if !slices.ContainsFunc(ext, func(x extent) bool { return x.chunk == slot }) {
		return
	}
	if n := totalBytes(ext); n <= *room && s.heldShare(s.tenants.at(e.tenant)) < moveBelow {
		*room -= n
		s.move(sh, ref, e, tr, ext)
		return
	}
	sh.unlink(tr)
	s.dropEntry(sh, ref, e)
	s.evicted[ReasonMemory].Add(1)
}

// move rewrites a trace's entries at the log's head and points the trace
// at them; its old blocks are dead. The shard is locked, and the chunks
// the old blocks are in stay mapped until their owners are all handled.
func (s *Store) move(sh *shard, ref entryRef, e *traceEntry, tr traceRef, ext []extent) {
	buf := blockBufs.Get()
	*buf = s.log.copyExtents((*buf)[:0], ext)
	named, spans := s.namedResources(e, ext, *buf)
	moved := s.log.write(nil, tr, *buf, named)
	*buf = (*buf)[:0]
	blockBufs.Put(buf)
	before := sh.entries.overflowSize(ref)
	sh.entries.clearExtents(ref, e)
	for _, x := range moved {
		sh.entries.addExtent(ref, e, x)
	}
	s.bytes.Add(sh.entries.overflowSize(ref) - before)
	if s.search {
		s.bytes.Add(s.relocate(s.tenants.at(e.tenant), e, tr, spans))
	}
	s.moved.Add(1)
}

// evictOldestTrace evicts the trace first seen earliest, across shards.
func (s *Store) evictOldestTrace() bool {
	var (
		oldest queued
		found  bool
	)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock() // front drops stale entries
		e, ok := sh.front()
		s.queueBytes.Add(-sh.queue.shrink())
		sh.mu.Unlock()
		// Creation order: the sequence numbers follow it across shards, even
		// for traces of one request, which share a stamp.
		if ok && (!found || e.ref.seq < oldest.ref.seq) {
			oldest, found = e, true
		}
	}
	if !found {
		return false
	}
	s.evict(oldest.ref, ReasonCount)
	return true
}

// expire evicts, shard by shard, the traces first seen before now less the
// retention period: each shard's queue is in first-seen order, so each
// stops at its first younger trace.
func (s *Store) expire(now int64) {
	s.lastExpiry.Store(now)
	cutoff := now - int64(s.cfg.Retention)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for {
			e, ok := sh.front()
			if !ok || e.stamp >= cutoff {
				break
			}
			sh.queue.pop()
			if ref, te := sh.unlink(e.ref); te != nil {
				s.dropEntry(sh, ref, te)
				s.evicted[ReasonRetention].Add(1)
			}
		}
		s.queueBytes.Add(-sh.queue.shrink())
		sh.mu.Unlock()
	}
}

// evict removes one trace, if it is still stored.
func (s *Store) evict(tr traceRef, reason Reason) {
	sh := s.shardOf(tr.low)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ref, e := sh.unlink(tr)
	if e == nil {
		return
	}
	s.dropEntry(sh, ref, e)
	s.evicted[reason].Add(1)
}

// dropEntry releases what an unlinked trace holds, and its entry; the
// shard is locked.
func (s *Store) dropEntry(sh *shard, ref entryRef, e *traceEntry) {
	heap := int64(mapEntryBytes)
	tr := traceRef{low: low64(e.id), seq: e.seq}
	var scratch [8]uint64
	for _, h := range sh.entries.calls(scratch[:0], ref, e) {
		s.calls.remove(h, tr)
		heap += callIndexEntry
	}
	s.traces.Add(-1)
	s.spans.Add(-int64(e.spanCount))
	var exts [inlineExtents]extent
	tn := s.tenants.at(e.tenant)
	heap += -s.unindex(tn, e)
	tn.traces.Add(-1)
	tn.spans.Add(-int64(e.spanCount))
	tn.bytes.Add(-int64(totalBytes(sh.entries.extents(exts[:0], ref, e))))
	s.tenants.release(e.tenant)
	freed, unmapped := sh.entries.release(ref)
	s.bytes.Add(-heap - freed)
	s.slabBytes.Add(-unmapped)
}

// Maintain runs the periodic work: expiry by retention, so that old traces
// leave even when no spans arrive, and giving back the chunks whose traces
// have all left. The owner calls it periodically.
func (s *Store) Maintain() {
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	if s.cfg.Retention > 0 {
		s.expire(s.now().UnixNano())
	}
	s.reclaimDeadChunksLocked()
}

// namedResources are the resources a trace's records name, among those the
// chunks of ext hold (which hold them meanwhile): the chunk a trace moves
// to must hold those, and only those, or every resource would ride along
// with moved traces forever. It returns the spans it decoded to find them.
func (s *Store) namedResources(e *traceEntry, ext []extent, entries []byte) ([]*resource, []spancodec.Span) {
	held := s.log.resourcesOf(nil, ext)
	blocks, err := blocksOnly(slices.Clone(entries))
	if err != nil {
		return held, nil // cannot happen: the log holds what ingest wrote
	}
	var named []*resource
	var sc spancodec.Scratch
	spans, _ := sc.Decode(e.id, blocks, func(id uint32) []byte {
		for _, r := range held {
			if r.id == id {
				if !slices.Contains(named, r) {
					named = append(named, r)
				}
				return r.body
			}
		}
		return nil
	}, int(e.spanCount))
	return named, spans
}

// holdsIn says whether the trace tr names is stored and has a block in
// chunk slot.
func (s *Store) holdsIn(tr traceRef, slot uint32) bool {
	sh := s.shardOf(tr.low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	ref, e := sh.findRef(tr)
	if e == nil {
		return false
	}
	var exts [inlineExtents]extent
	return slices.ContainsFunc(sh.entries.extents(exts[:0], ref, e), func(x extent) bool { return x.chunk == slot })
}

// reclaimDeadChunksLocked recycles the oldest chunks while no trace they
// hold blocks of is still stored: after traces leave by retention or count,
// their memory and their resources go back without waiting for new blocks
// to push them out. The caller holds evictMu.
func (s *Store) reclaimDeadChunksLocked() {
	for {
		c, owners := s.log.oldest()
		if c == nil || slices.ContainsFunc(owners, func(tr traceRef) bool { return s.holdsIn(tr, c.slot) }) || !s.log.popIfUnchanged(c, len(owners)) {
			return
		}
		s.log.recycle(c)
	}
}
