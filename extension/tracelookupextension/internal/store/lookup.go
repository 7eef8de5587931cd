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
// blocks; the shard is locked, so no chunk it reads can be recycled
// meanwhile. With f, it copies only what the trace held when f found it
// (entries are only ever appended), so that a lookup reads no more than it
// was admitted for.
func (s *Store) snapshot(sh *shard, ref entryRef, e *traceEntry, f *Found) Trace {
	var exts [inlineExtents]extent
	ext := sh.entries.extents(exts[:0], ref, e)
	spanCount := int(e.spanCount)
	if f != nil && f.BlockBytes < totalBytes(ext) {
		ext = trimExtents(ext, f.BlockBytes)
		spanCount = f.SpanCount
	}
	n := totalBytes(ext)
	buf := blockBufs.Get()
	entries := s.log.copyExtents(slices.Grow((*buf)[:0], n), ext)
	blocks, err := blocksOnly(entries)
	if err != nil {
		blocks = entries[:0] // cannot happen: the log holds what ingest wrote
	}
	res := s.log.resourcesOf(nil, ext)
	return Trace{
		ID:        e.id,
		Tenant:    s.tenants.at(e.tenant).name,
		FirstSeen: e.firstSeen,
		LastSeen:  e.lastSeen,
		SpanCount: spanCount,
		Truncated: e.truncated,
		blocks:    blocks,
		buf:       buf,
		resources: res,
	}
}

func totalBytes(ext []extent) int {
	n := 0
	for _, x := range ext {
		n += int(x.n)
	}
	return n
}

// trimExtents keeps the first n bytes that ext spans.
func trimExtents(ext []extent, n int) []extent {
	for i := range ext {
		if int(ext[i].n) >= n {
			ext[i].n = uint32(n)
			return ext[:i+1]
		}
		n -= int(ext[i].n)
	}
	return ext
}

// Found names a stored trace and says what reading it takes, before any of
// it is copied: a lookup is admitted on these figures (see package api).
type Found struct {
	ref traceRef
	// ID is the trace's id.
	ID [16]byte
	// BlockBytes is the size of the trace's blocks, copied out by Fetch.
	BlockBytes int
	// RawBytes is the size of its records once unsealed.
	RawBytes int
	// Items counts the attributes, elements, events and links its records hold.
	Items int
	// MaxSpanBytes bounds the records of its largest span with its resource's.
	MaxSpanBytes int
	SpanCount    int
	LastSeen     int64
}

// found describes the entry at ref; the shard is locked.
func (sh *shard) found(ref entryRef, e *traceEntry) Found {
	var exts [inlineExtents]extent
	return Found{
		ref:          traceRef{low: low64(e.id), seq: e.seq},
		ID:           e.id,
		BlockBytes:   totalBytes(sh.entries.extents(exts[:0], ref, e)),
		RawBytes:     int(e.rawBytes),
		Items:        int(e.items),
		MaxSpanBytes: int(e.maxSpanKiB) << 10,
		SpanCount:    int(e.spanCount),
		LastSeen:     e.lastSeen,
	}
}

// Lookups name their tenant: "" is the default tenant. A tenant sees only
// its own traces, and a tenant holding none finds nothing.

// readSlot returns the slot of tenant, if it holds traces. A slot is
// only given to another tenant once no trace holds it, and locate checks
// the name under the shard's lock, so a slot reused in between finds nothing.
func (s *Store) readSlot(tenant string) (string, uint16, bool) {
	if tenant == "" {
		tenant = s.cfg.DefaultTenant
	}
	id, ok := s.tenants.lookup(tenant)
	return tenant, id, ok
}

// Find locates tenant's trace with id.
func (s *Store) Find(tenant string, id [16]byte) (Found, bool) {
	s.lookups.Add(1)
	name, slot, ok := s.readSlot(tenant)
	if !ok {
		return Found{}, false
	}
	return s.locate(low64(id), name, func(sh *shard) (entryRef, *traceEntry) { return sh.find(id, slot) })
}

// FindByLow64 locates tenant's most recently updated trace whose id ends in low.
func (s *Store) FindByLow64(tenant string, low uint64) (Found, bool) {
	s.lookups.Add(1)
	name, slot, ok := s.readSlot(tenant)
	if !ok {
		return Found{}, false
	}
	return s.locate(low, name, func(sh *shard) (entryRef, *traceEntry) {
		var (
			best    *traceEntry
			bestRef entryRef
		)
		for ref := sh.traces[low]; ref != 0; {
			e := sh.entries.at(ref)
			if e.tenant == slot && (best == nil || e.lastSeen > best.lastSeen) {
				best, bestRef = e, ref
			}
			ref = e.next
		}
		return bestRef, best
	})
}

// FindByCallID locates tenant's most recently updated trace that carries
// callID in the configured call-id attribute. Only the very traces the
// index names answer: a trace evicted and received again under the same id
// is another trace, and need not carry the call id.
func (s *Store) FindByCallID(tenant, callID string) (Found, bool) {
	s.lookups.Add(1)
	name, slot, ok := s.readSlot(tenant)
	if !ok {
		return Found{}, false
	}
	var (
		best  Found
		found bool
	)
	for _, tr := range s.calls.get(callID) {
		f, ok := s.locate(tr.low, name, func(sh *shard) (entryRef, *traceEntry) {
			if ref, e := sh.findRef(tr); e != nil && e.tenant == slot {
				return ref, e
			}
			return 0, nil
		})
		if ok && (!found || f.LastSeen > best.LastSeen) {
			best, found = f, true
		}
	}
	return best, found
}

// locate describes the trace pick finds in the shard of low, under its
// lock, if it belongs to tenant.
func (s *Store) locate(low uint64, tenant string, pick func(*shard) (entryRef, *traceEntry)) (Found, bool) {
	sh := s.shardOf(low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if ref, e := pick(sh); e != nil && s.tenants.at(e.tenant).name == tenant {
		return sh.found(ref, e), true
	}
	return Found{}, false
}

// Fetch copies out the trace f names, if that very trace is still stored.
// Release the result when done with it.
func (s *Store) Fetch(f Found) (Trace, bool) {
	sh := s.shardOf(f.ref.low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if ref, e := sh.findRef(f.ref); e != nil {
		return s.snapshot(sh, ref, e, &f), true
	}
	return Trace{}, false
}

// Get returns tenant's trace with id. Release the result when done with it.
func (s *Store) Get(tenant string, id [16]byte) (Trace, bool) {
	return s.fetchFound(s.Find(tenant, id))
}

// GetByLow64 returns tenant's most recently updated trace whose id ends in low.
func (s *Store) GetByLow64(tenant string, low uint64) (Trace, bool) {
	return s.fetchFound(s.FindByLow64(tenant, low))
}

// GetByCallID returns tenant's most recently updated trace that carries
// callID (see FindByCallID).
func (s *Store) GetByCallID(tenant, callID string) (Trace, bool) {
	return s.fetchFound(s.FindByCallID(tenant, callID))
}

func (s *Store) fetchFound(f Found, ok bool) (Trace, bool) {
	if !ok {
		return Trace{}, false
	}
	return s.Fetch(f)
}
