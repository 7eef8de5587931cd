// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"slices"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"
)

// maxPooledBlocks is the largest block copy kept for reuse.
const maxPooledBlocks = 1 << 20

// blockBufs recycles the copies lookups make of a trace's blocks.
var blockBufs = pool.New(16, maxPooledBlocks,
	func() *[]byte { return new([]byte) },
	func(b *[]byte) int { return cap(*b) })

// snapshot copies a trace's entries out of the chunk log, keeping their
// blocks; the shard is locked, so no chunk it reads can be recycled meanwhile.
func (s *Store) snapshot(sh *shard, ref entryRef, e *traceEntry) Trace {
	var exts [inlineExtents]extent
	ext := sh.entries.extents(exts[:0], ref, e)
	n := 0
	for _, x := range ext {
		n += int(x.n)
	}
	buf := blockBufs.Get()
	entries := s.log.copyExtents(slices.Grow((*buf)[:0], n), ext)
	blocks, err := blocksOnly(entries)
	if err != nil {
		blocks = entries[:0] // cannot happen: the log holds what ingest wrote
	}
	res := s.log.resourcesOf(nil, ext)
	return Trace{
		ID:        e.id,
		FirstSeen: e.firstSeen,
		LastSeen:  e.lastSeen,
		SpanCount: int(e.spanCount),
		Truncated: e.truncated,
		blocks:    blocks,
		buf:       buf,
		resources: res,
	}
}

// Get returns the trace with id. Release the result when done with it.
func (s *Store) Get(id [16]byte) (Trace, bool) {
	return s.read(low64(id), func(sh *shard) (entryRef, *traceEntry) { return sh.find(id) })
}

// getRef returns the trace tr names, if that very trace is still stored.
func (s *Store) getRef(tr traceRef) (Trace, bool) {
	return s.read(tr.low, func(sh *shard) (entryRef, *traceEntry) { return sh.findRef(tr) })
}

// read copies out the trace pick finds in the shard of low, under its lock.
func (s *Store) read(low uint64, pick func(*shard) (entryRef, *traceEntry)) (Trace, bool) {
	sh := s.shardOf(low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if ref, e := pick(sh); e != nil {
		return s.snapshot(sh, ref, e), true
	}
	return Trace{}, false
}

// GetByLow64 returns the most recently updated trace whose id ends in low.
func (s *Store) GetByLow64(low uint64) (Trace, bool) {
	sh := s.shardOf(low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	var (
		best    *traceEntry
		bestRef entryRef
	)
	for ref := sh.traces[low]; ref != 0; {
		e := sh.entries.at(ref)
		if best == nil || e.lastSeen > best.lastSeen {
			best, bestRef = e, ref
		}
		ref = e.next
	}
	if best == nil {
		return Trace{}, false
	}
	return s.snapshot(sh, bestRef, best), true
}

// GetByCallID returns the most recently updated trace that carries callID in
// the configured call-id attribute. Only the very traces the index names
// answer: a trace evicted and received again under the same id is another
// trace, and need not carry the call id.
func (s *Store) GetByCallID(callID string) (Trace, bool) {
	var (
		best  Trace
		found bool
	)
	for _, ref := range s.calls.get(callID) {
		t, ok := s.getRef(ref)
		if !ok {
			continue
		}
		if !found || t.LastSeen > best.LastSeen {
			best.Release()
			best, found = t, true
		} else {
			t.Release()
		}
	}
	return best, found
}
