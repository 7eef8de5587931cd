// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// The span data lives in a log of fixed-size chunks, allocated outside the
// Go heap (see mapChunk) and reused: blocks are appended at the head, and
// memory is reclaimed a whole chunk at a time, oldest first, by evicting every
// trace that has a block in it. So the memory the data takes is the chunks
// mapped, which the bound counts exactly, and the collector neither scans
// nor copies span data.
//
// Safety: a chunk is only reused or unmapped after every trace that owns a
// block in it has left its shard, under that shard's lock; readers copy
// block bytes while they hold the same lock. So no reader ever sees a chunk
// change under it.

const (
	minChunkBytes = 4 << 10
	maxChunkBytes = 1 << 20
	// spareChunks are kept mapped for reuse when eviction frees them, within
	// the budget, so that steady ingest neither maps nor unmaps.
	spareChunks = 2
	// ownerBytes is what one owner entry costs.
	ownerBytes = 16
)

// chunkSizeFor picks the chunk size for a budget: a power of two, at most
// 1/64 of the budget, so that eviction frees memory in small steps.
func chunkSizeFor(maxBytes int64) int {
	size := minChunkBytes
	for size < maxChunkBytes && int64(size)*2*64 <= maxBytes {
		size *= 2
	}
	return size
}

// extent is a run of entry bytes in one chunk, named by its slot in the
// chunk table, so that the entries that hold extents hold no pointer.
type extent struct {
	chunk uint32
	off   uint32
	n     uint32
}

type chunk struct {
	slot uint32
	mem  []byte
	used int
	// owners are the traces with a block in this chunk, in write order.
	owners []traceRef
	// res are the resources its blocks name, each holding a reference, so
	// that a resource stays while any block that names it does.
	res []*resource
}

type chunkLog struct {
	size int
	// release drops a chunk's reference to a resource.
	release func(*resource)

	// table maps slots to chunks. Readers load it without the log's lock:
	// it is replaced, never changed in place, when it grows, and a slot only
	// changes while no stored trace has an extent in it.
	table     atomic.Pointer[[]*chunk]
	freeSlots []uint32

	mu     sync.Mutex
	ring   []*chunk // chunks holding data, oldest first; the last is the head
	head   *chunk   // where blocks are appended
	free   []*chunk // recycled, ready for reuse
	closed bool

	mapped atomic.Int64 // bytes of chunks mapped
	spare  atomic.Int64 // bytes of those on the free list
	owners atomic.Int64 // bytes of owner entries
}

// write appends block to the log for owner, adding its extents to ext.
// A block larger than the room left in a chunk continues in the next one.
// Every chunk it lands in holds a reference to each resource in res; the
// caller holds one meanwhile.
func (l *chunkLog) write(ext []extent, owner traceRef, block []byte, res []*resource) []extent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ext
	}
	for len(block) > 0 {
		c := l.head
		if c == nil || c.used == len(c.mem) {
			c = l.newHead()
		}
		n := copy(c.mem[c.used:], block)
		if k := len(ext) - 1; k >= 0 && ext[k].chunk == c.slot && int(ext[k].off+ext[k].n) == c.used {
			ext[k].n += uint32(n) // continues the last extent: one entry, not two
		} else {
			ext = append(ext, extent{chunk: c.slot, off: uint32(c.used), n: uint32(n)})
		}
		if k := len(c.owners) - 1; k < 0 || c.owners[k] != owner {
			before := cap(c.owners)
			c.owners = append(c.owners, owner)
			l.owners.Add(ownerBytes * int64(cap(c.owners)-before)) // by capacity, as the heap holds it
		}
		for _, r := range res {
			if !slices.Contains(c.res, r) {
				r.refs.Add(1)
				c.res = append(c.res, r)
			}
		}
		c.used += n
		block = block[n:]
	}
	return ext
}

// newHead starts a new head chunk, reusing a free one when there is one.
// It never evicts: the caller holds a shard lock, and eviction takes shard
// locks; the store evicts once the lock is released (see Store.enforce).
func (l *chunkLog) newHead() *chunk {
	var c *chunk
	if n := len(l.free); n > 0 {
		c, l.free = l.free[n-1], l.free[:n-1]
		l.spare.Add(-int64(l.size))
	} else {
		c = &chunk{mem: mapChunk(l.size)}
		l.mapped.Add(int64(l.size))
		l.place(c)
	}
	l.head = c
	l.ring = append(l.ring, c)
	return c
}

// popOldest takes the oldest chunk with data out of the log; the caller
// evicts its owners, then hands it to recycle.
func (l *chunkLog) popOldest() *chunk {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) == 0 {
		return nil
	}
	return l.dropOldest()
}

// dropOldest takes the oldest chunk out of the ring; the log's lock is held.
func (l *chunkLog) dropOldest() *chunk {
	c := l.ring[0]
	l.ring[0] = nil
	l.ring = l.ring[1:]
	if c == l.head {
		l.head = nil
	}
	return c
}

// oldest returns the oldest chunk with data and a copy of its owners as
// they are now (the head's grow as blocks are written).
func (l *chunkLog) oldest() (*chunk, []traceRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) == 0 {
		return nil, nil
	}
	c := l.ring[0]
	return c, slices.Clone(c.owners)
}

// popIfUnchanged takes c out of the log if it is still the oldest and has
// gained no owner since it had owners; false otherwise.
func (l *chunkLog) popIfUnchanged(c *chunk, owners int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) == 0 || l.ring[0] != c || len(c.owners) != owners {
		return false
	}
	l.dropOldest()
	return true
}

// recycle makes a chunk whose owners have all been evicted free for reuse,
// or unmaps it when enough are spare.
func (l *chunkLog) recycle(c *chunk) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		// Popped before the log closed: close did not see it, nor count it since.
		l.releaseResources(c)
		unmapChunk(c.mem)
		c.mem = nil
		return
	}
	clear(c.owners)
	c.owners = c.owners[:0]
	if cap(c.owners) > 4096 { // kept for reuse, unless a chunk of tiny blocks grew it large
		l.owners.Add(-ownerBytes * int64(cap(c.owners)))
		c.owners = nil
	}
	l.releaseResources(c)
	c.used = 0
	if len(l.free) < spareChunks {
		l.free = append(l.free, c)
		l.spare.Add(int64(l.size))
		return
	}
	l.owners.Add(-ownerBytes * int64(cap(c.owners)))
	c.owners = nil
	unmapChunk(c.mem)
	c.mem = nil
	l.mapped.Add(-int64(l.size))
	if p := l.table.Load(); p != nil {
		(*p)[c.slot] = nil
		l.freeSlots = append(l.freeSlots, c.slot)
	}
}

// place gives a new chunk a slot in the table; the log's lock is held.
func (l *chunkLog) place(c *chunk) {
	var table []*chunk
	if p := l.table.Load(); p != nil {
		table = *p
	}
	if n := len(l.freeSlots); n > 0 {
		c.slot, l.freeSlots = l.freeSlots[n-1], l.freeSlots[:n-1]
		table[c.slot] = c
		return
	}
	c.slot = uint32(len(table))
	// Readers holding the old header never index past its length, so the
	// new one may share its array.
	grown := append(table, c)
	l.table.Store(&grown)
}

// chunkAt returns the chunk in slot; the caller holds the lock of the shard
// of a trace with an extent there.
func (l *chunkLog) chunkAt(slot uint32) *chunk { return (*l.table.Load())[slot] }

func (l *chunkLog) releaseResources(c *chunk) {
	for _, r := range c.res {
		l.release(r)
	}
	clear(c.res)
	c.res = c.res[:0]
}

// resourcesOf appends to dst the resources of the chunks ext lies in: a
// superset of those the blocks there name, possibly repeated. The caller holds the
// lock of the shard of a trace with those extents, so the chunks and their
// references stay.
func (l *chunkLog) resourcesOf(dst []*resource, ext []extent) []*resource {
	l.mu.Lock() // the head's list grows under it
	defer l.mu.Unlock()
	var last uint32 = math.MaxUint32
	for _, x := range ext {
		if x.chunk == last {
			continue
		}
		last = x.chunk
		dst = append(dst, l.chunkAt(x.chunk).res...)
	}
	return dst
}

// chunksInUse is how many chunks hold data.
func (l *chunkLog) chunksInUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ring)
}

// close unmaps every chunk; the store has already removed every trace.
func (l *chunkLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for _, c := range append(l.ring, l.free...) {
		l.releaseResources(c)
		unmapChunk(c.mem)
		c.mem = nil
	}
	l.ring, l.free, l.head, l.freeSlots = nil, nil, nil, nil
	l.table.Store(nil)
	l.mapped.Store(0)
	l.spare.Store(0)
	l.owners.Store(0)
}

// copyExtents appends the bytes of ext to dst. The caller holds the lock of
// the shard of the trace that owns them.
func (l *chunkLog) copyExtents(dst []byte, ext []extent) []byte {
	for _, e := range ext {
		dst = append(dst, l.chunkAt(e.chunk).mem[e.off:e.off+e.n]...)
	}
	return dst
}
