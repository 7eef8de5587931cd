// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"slices"
	"unsafe"
)

// Each stored trace is one fixed-size, pointer-free entry in its shard's
// slabs: blocks of entries mapped outside the Go heap like the chunks, and
// reused through a free list. The garbage collector has nothing to scan in
// them and does not count them towards its heap goal, so an entry costs its
// 128 bytes and no collector headroom. What does not fit inline (a trace
// written in more than four pieces, or with more than one call id) goes
// to a small overflow record on the heap. The resources a trace's records
// name are held by the chunks its blocks are in (see chunk.res), not by the
// trace: a chunk names a few resources for thousands of traces.

const (
	inlineExtents = 4
	inlineCalls   = 1
	entryBytes    = 128
)

type traceEntry struct {
	id        [16]byte
	seq       uint64
	firstSeen int64
	lastSeen  int64
	calls     [inlineCalls]uint64 // hashes of the call ids the trace carries (see callIndex)
	next      entryRef            // the next entry with the same low 64 bits of trace id
	spanCount int32
	ext       [inlineExtents]extent
	nExt      uint16
	// tenant is the trace's slot in the tenant table.
	tenant uint16
	// rec is the trace's search record in its tenant's index (0: none).
	rec recRef
	// rawBytes is the size of the trace's records unsealed (saturating):
	// what a lookup will decode, known before it copies anything.
	rawBytes uint32
	// items counts the attributes, array and map elements, events and links
	// the records hold (saturating): what decoding them allocates besides spans.
	items uint32
	// maxSpanKiB is the largest span's records with its resource's, in KiB
	// (saturating): what rendering one span of the trace takes.
	maxSpanKiB uint16
	nCalls     uint8
	truncated  bool
}

var _ [entryBytes - unsafe.Sizeof(traceEntry{})]struct{} // entries fit their slot

// entryRef is an entry's index in its shard's slabs plus one; 0 is none.
type entryRef uint32

// overflow holds what does not fit in an entry.
type overflow struct {
	ext   []extent
	calls []uint64
}

// overflowBytes is what one overflow record costs besides its slices: the
// record and its slot in the overflow map.
const overflowBytes = 48 + 32

func (o *overflow) size() int64 {
	return overflowBytes + int64(cap(o.ext))*extentBytes + 8*int64(cap(o.calls))
}

// slabs are one shard's entries. Every method runs under the shard's lock.
// New entries go to the lowest slab with room, so that the highest slabs
// empty out as traces leave, and an empty last slab is unmapped: what the
// slabs hold follows the trace count down as well as up.
type slabs struct {
	perSlab int // entries in one slab, a power of two
	shift   uint
	mem     []*slab
	// firstFree is the lowest slab that may have a free entry.
	firstFree int
	more      map[entryRef]*overflow
}

type slab struct {
	mem  []byte
	free []uint16 // free entries, by index in the slab
}

func (sl *slabs) at(ref entryRef) *traceEntry {
	i := int(ref - 1)
	m := sl.mem[i>>sl.shift].mem
	return (*traceEntry)(unsafe.Pointer(&m[(i&(sl.perSlab-1))*entryBytes]))
}

func (sl *slabs) slabBytes() int64 { return int64(sl.perSlab * entryBytes) }

// alloc returns a zeroed entry, mapping a new slab when none has room; it
// reports the bytes newly mapped.
func (sl *slabs) alloc() (entryRef, int64) {
	for sl.firstFree < len(sl.mem) && len(sl.mem[sl.firstFree].free) == 0 {
		sl.firstFree++
	}
	var mapped int64
	if sl.firstFree == len(sl.mem) {
		sb := &slab{mem: mapChunk(sl.perSlab * entryBytes), free: make([]uint16, sl.perSlab)}
		for i := range sb.free {
			sb.free[i] = uint16(sl.perSlab - 1 - i) // lowest first
		}
		sl.mem = append(sl.mem, sb)
		mapped = sl.slabBytes()
	}
	sb := sl.mem[sl.firstFree]
	local := sb.free[len(sb.free)-1]
	sb.free = sb.free[:len(sb.free)-1]
	ref := entryRef(sl.firstFree*sl.perSlab + int(local) + 1)
	*sl.at(ref) = traceEntry{}
	return ref, mapped
}

// release frees an entry and its overflow; it returns the heap bytes freed
// and the slab bytes unmapped.
func (sl *slabs) release(ref entryRef) (heap, unmapped int64) {
	if o := sl.more[ref]; o != nil {
		heap = o.size()
		delete(sl.more, ref)
	}
	*sl.at(ref) = traceEntry{}
	i := int(ref - 1)
	n := i >> sl.shift
	sl.mem[n].free = append(sl.mem[n].free, uint16(i&(sl.perSlab-1)))
	sl.firstFree = min(sl.firstFree, n)
	for k := len(sl.mem) - 1; k >= 0 && len(sl.mem[k].free) == sl.perSlab; k-- {
		unmapChunk(sl.mem[k].mem)
		sl.mem[k] = nil
		sl.mem = sl.mem[:k]
		unmapped += sl.slabBytes()
	}
	sl.firstFree = min(sl.firstFree, len(sl.mem))
	return heap, unmapped
}

// unmap gives every slab back; the shard holds no trace any more.
func (sl *slabs) unmap() {
	for _, sb := range sl.mem {
		unmapChunk(sb.mem)
	}
	sl.mem, sl.more, sl.firstFree = nil, nil, 0
}

// overflowSize is what ref's overflow costs the heap; 0 when it has none.
func (sl *slabs) overflowSize(ref entryRef) int64 {
	if o := sl.more[ref]; o != nil {
		return o.size()
	}
	return 0
}

func (sl *slabs) overflowOf(ref entryRef) *overflow {
	o := sl.more[ref]
	if o == nil {
		o = &overflow{}
		if sl.more == nil {
			sl.more = make(map[entryRef]*overflow)
		}
		sl.more[ref] = o
	}
	return o
}

// extents appends the entry's extents, in write order, to dst.
func (sl *slabs) extents(dst []extent, ref entryRef, e *traceEntry) []extent {
	dst = append(dst, e.ext[:min(int(e.nExt), inlineExtents)]...)
	if int(e.nExt) > inlineExtents {
		dst = append(dst, sl.more[ref].ext...)
	}
	return dst
}

// addExtent records one more extent; it returns the heap bytes added.
func (sl *slabs) addExtent(ref entryRef, e *traceEntry, x extent) int64 {
	n := int(e.nExt)
	last := func() *extent {
		if n <= inlineExtents {
			return &e.ext[n-1]
		}
		o := sl.more[ref]
		return &o.ext[len(o.ext)-1]
	}
	if n > 0 {
		if l := last(); l.chunk == x.chunk && l.off+l.n == x.off {
			l.n += x.n // continues the last extent
			return 0
		}
	}
	if n < inlineExtents {
		e.ext[n] = x
		e.nExt++
		return 0
	}
	before := sl.overflowSize(ref)
	o := sl.overflowOf(ref)
	o.ext = append(o.ext, x)
	e.nExt++
	return o.size() - before
}

// clearExtents forgets the entry's extents, to record new ones.
func (sl *slabs) clearExtents(ref entryRef, e *traceEntry) {
	e.ext = [inlineExtents]extent{}
	e.nExt = 0
	if o := sl.more[ref]; o != nil {
		o.ext = nil
	}
}

// calls appends the entry's call-id hashes to dst.
func (sl *slabs) calls(dst []uint64, ref entryRef, e *traceEntry) []uint64 {
	dst = append(dst, e.calls[:min(int(e.nCalls), inlineCalls)]...)
	if int(e.nCalls) > inlineCalls {
		dst = append(dst, sl.more[ref].calls...)
	}
	return dst
}

func (sl *slabs) hasCall(ref entryRef, e *traceEntry, h uint64) bool {
	if slices.Contains(e.calls[:min(int(e.nCalls), inlineCalls)], h) {
		return true
	}
	return int(e.nCalls) > inlineCalls && slices.Contains(sl.more[ref].calls, h)
}

// addCall records one more call-id hash; false when the trace already has
// as many as an entry counts, and the rest go unindexed.
func (sl *slabs) addCall(ref entryRef, e *traceEntry, h uint64) (int64, bool) {
	if e.nCalls < inlineCalls {
		e.calls[e.nCalls] = h
		e.nCalls++
		return 0, true
	}
	if e.nCalls == 255 {
		return 0, false
	}
	before := sl.overflowSize(ref)
	o := sl.overflowOf(ref)
	o.calls = append(o.calls, h)
	e.nCalls++
	return o.size() - before, true
}
