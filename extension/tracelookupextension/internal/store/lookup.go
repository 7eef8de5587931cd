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

// snapshot copies r's entries out of the chunk log, keeping their blocks;
// r's shard is locked, so no chunk it reads can be recycled meanwhile.
func (sh *shard) snapshot(r *traceRec) Trace {
	n := 0
	for _, e := range r.blocks {
		n += int(e.n)
	}
	buf := blockBufs.Get()
	entries := copyExtents(slices.Grow((*buf)[:0], n), r.blocks)
	blocks, err := blocksOnly(entries)
	if err != nil {
		blocks = entries[:0] // cannot happen: the log holds what ingest wrote
	}
	return Trace{
		ID:        r.id,
		FirstSeen: r.firstSeen,
		LastSeen:  r.lastSeen,
		SpanCount: int(r.spanCount),
		Truncated: r.truncated,
		blocks:    blocks,
		buf:       buf,
		resources: slices.Clone(r.res),
	}
}

// Get returns the trace with id. Release the result when done with it.
func (s *Store) Get(id [16]byte) (Trace, bool) {
	sh := s.shardOf(low64(id))
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if r := sh.find(id); r != nil {
		return sh.snapshot(r), true
	}
	return Trace{}, false
}

// getRef returns the trace ref names, if that very trace is still stored.
func (s *Store) getRef(ref traceRef) (Trace, bool) {
	sh := s.shardOf(low64(ref.id))
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if r := sh.find(ref.id); r != nil && r.seq == ref.seq {
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
