// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Search indexes. Every stored trace has one search record in its tenant's
// index: its start and end, its span, error and root counts, and a bloom
// filter of the terms its spans carry (service, name, kind, and each
// attribute with its value). Records live in blocks mapped outside the Go
// heap, as the entries do, filled in the order traces arrive; each block
// keeps an upper bound of its records' (start, seq) keys, so a search reads
// the blocks that may hold the newest traces first and stops as soon as no
// unread block can hold a newer one. The bloom filter only says which
// traces may match: the caller decodes each candidate and checks its spans.
//
// Locks: a record changes under its tenant index's lock, taken inside the
// lock of its trace's shard; the catalog counts a request left pending are
// made under the index's lock alone, at the request's end. A search takes
// the index's lock alone, block by block, and never a shard's lock while
// it holds it.

const (
	bloomBits  = 512
	bloomWords = bloomBits / 64
	// blockRecs is the most records a block holds; a tenant's first block
	// holds a page's worth, so that a small tenant costs little.
	blockRecs = 256
	recBytes  = int(unsafe.Sizeof(searchRec{}))
	pageBytes = 4096
)

// bloom is a trace's term filter: each term sets three of its bits.
type bloom [bloomWords]uint64

func (b *bloom) add(h uint64) {
	for i := range 3 {
		p := (h >> (9 * i)) & (bloomBits - 1)
		b[p>>6] |= 1 << (p & 63)
	}
}

func (b *bloom) has(h uint64) bool {
	for i := range 3 {
		p := (h >> (9 * i)) & (bloomBits - 1)
		if b[p>>6]&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}

func (b *bloom) or(o *bloom) {
	for i := range b {
		b[i] |= o[i]
	}
}

// searchRec is one trace's search record; seq 0 marks a free slot.
type searchRec struct {
	seq    uint64
	low    uint64
	start  uint64 // the earliest span start
	end    uint64 // the latest span end
	spans  uint32
	errors uint32 // spans with status ERROR
	roots  uint32 // spans without a parent
	_      uint32
	bloom  bloom
}

// Key orders traces for search: newest first by start, then by arrival.
// The zero Key is "from the newest".
type Key struct {
	Start uint64
	Seq   uint64
}

func compareKeys(a, b Key) int {
	if c := cmp.Compare(a.Start, b.Start); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

func (r *searchRec) key() Key { return Key{Start: r.start, Seq: r.seq} }

// recBlock is one block of records and what its traces added to the
// tenant's catalog (see catalog), taken back when the block is freed.
type recBlock struct {
	mem  []byte
	recs []searchRec
	gen  uint64 // distinguishes the blocks that reuse one index
	used int    // slots handed out, in order
	live int
	// hi are the slots of the records with the highest keys, lo of those
	// with the lowest starts, each followed one by one: a few traces with
	// a start far from the others' (a client's clock ahead or behind, a
	// zero start) would otherwise stretch the block's bounds over every
	// search. maxKey bounds the keys of the other records from above,
	// minStart their starts from below (a record's start only ever
	// decreases, and records that leave leave the bounds as they were).
	hi, lo   [trackedRecs]uint8
	nHi, nLo uint8
	maxKey   Key
	minStart uint64
	// stats count the block's spans of each service and operation (see catalog).
	stats map[uint64]*blockCount
}

// trackedRecs is how many records a block follows one by one, each way.
const trackedRecs = 3

// tenantIndex is one tenant's search records and catalog.
type tenantIndex struct {
	mu     sync.RWMutex
	blocks []*recBlock // by index; nil where free
	free   []uint32
	cur    *recBlock // where new records go
	curIdx uint32
	gens   uint64
	// scans counts the searches reading the blocks: while one is, records
	// stay where they are (see relocate).
	scans atomic.Int32
	cat   catalog
	// catBytes is cat.bytes, for reading without the lock (see heldShare).
	catBytes atomic.Int64
}

// recRef names a record: its block's index plus one, and its slot.
type recRef uint32

const slotBits = 8

func makeRecRef(block uint32, slot int) recRef { return recRef((block+1)<<slotBits | uint32(slot)) }
func (r recRef) block() uint32                 { return uint32(r>>slotBits) - 1 }
func (r recRef) slot() int                     { return int(r & (1<<slotBits - 1)) }

func newTenantIndex() *tenantIndex {
	return &tenantIndex{cat: newCatalog()}
}

func (x *tenantIndex) rec(ref recRef) (*recBlock, *searchRec) {
	b := x.blocks[ref.block()]
	return b, &b.recs[ref.slot()]
}

// alloc gives the trace tr a record; x is locked. It returns the bytes
// newly mapped.
func (x *tenantIndex) alloc(tr traceRef) (recRef, int64) {
	var mapped int64
	if x.cur == nil || x.cur.used == len(x.cur.recs) {
		mapped = x.newBlock()
	}
	b := x.cur
	slot := b.used
	b.used++
	b.live++
	b.recs[slot] = searchRec{seq: tr.seq, low: tr.low, start: ^uint64(0)}
	return makeRecRef(x.curIdx, slot), mapped
}

func (x *tenantIndex) newBlock() int64 {
	n := blockRecs
	if len(x.blocks) == len(x.free) {
		n = pageBytes / recBytes
	}
	size := (n*recBytes + pageBytes - 1) / pageBytes * pageBytes
	mem := mapChunk(size)
	x.gens++
	b := &recBlock{
		mem:      mem,
		recs:     unsafe.Slice((*searchRec)(unsafe.Pointer(&mem[0])), min(size/recBytes, 1<<slotBits)),
		gen:      x.gens,
		minStart: ^uint64(0),
		stats:    make(map[uint64]*blockCount),
	}
	if k := len(x.free); k > 0 {
		x.curIdx = x.free[k-1]
		x.free = x.free[:k-1]
		x.blocks[x.curIdx] = b
	} else {
		x.curIdx = uint32(len(x.blocks))
		x.blocks = append(x.blocks, b)
	}
	x.cur = b
	return int64(size)
}

// remove frees ref's record; x is locked. A block whose records have all
// left is given back with what it added to the catalog, even the block new
// records go to: so the catalog is empty once the tenant's traces are. It
// returns the bytes unmapped.
func (x *tenantIndex) remove(ref recRef) int64 {
	b, r := x.rec(ref)
	*r = searchRec{}
	b.live--
	if b.live > 0 {
		return 0
	}
	return x.freeBlock(ref.block())
}

func (x *tenantIndex) freeBlock(i uint32) int64 {
	b := x.blocks[i]
	x.cat.forget(b)
	if b == x.cur {
		x.cur = nil
	}
	x.blocks[i] = nil
	x.free = append(x.free, i)
	for k := len(x.blocks) - 1; k >= 0 && x.blocks[k] == nil; k-- {
		x.blocks = x.blocks[:k]
		x.free = slices.DeleteFunc(x.free, func(f uint32) bool { return f == uint32(k) })
	}
	unmapChunk(b.mem)
	return int64(len(b.mem))
}

// spanFacts is what one span adds to its trace's record.
type spanFacts struct {
	start, end uint64
	err, root  bool
}

// note adds a span's facts to the record in slot.
func (b *recBlock) note(slot int, f spanFacts) {
	r := &b.recs[slot]
	r.spans++
	r.end = max(r.end, f.end)
	if f.err {
		r.errors++
	}
	if f.root {
		r.roots++
	}
	if f.start < r.start {
		r.start = f.start
		b.track(slot)
	}
}

// track updates the bounds for the record in slot, new or with an
// earlier start: it joins hi or lo when it beats a record followed there
// (or takes a free place), and what leaves hi or lo, or does not join,
// goes into maxKey and minStart.
func (b *recBlock) track(slot int) {
	r := &b.recs[slot]
	s8 := uint8(slot)
	if !slices.Contains(b.hi[:b.nHi], s8) {
		k := r.key()
		if int(b.nHi) < trackedRecs {
			b.hi[b.nHi] = s8
			b.nHi++
		} else {
			j := 0 // the lowest key followed; a record that left has key zero
			for i := 1; i < int(b.nHi); i++ {
				if compareKeys(b.recs[b.hi[i]].key(), b.recs[b.hi[j]].key()) < 0 {
					j = i
				}
			}
			if low := b.recs[b.hi[j]].key(); compareKeys(k, low) > 0 {
				b.hi[j], k = s8, low
			}
			if compareKeys(k, b.maxKey) > 0 {
				b.maxKey = k
			}
		}
	}
	if !slices.Contains(b.lo[:b.nLo], s8) {
		start, counts := r.start, true
		if int(b.nLo) < trackedRecs {
			b.lo[b.nLo] = s8
			b.nLo++
			counts = false
		} else {
			j := 0 // the highest start followed, or a record that left
			for i := 0; i < int(b.nLo); i++ {
				if o := &b.recs[b.lo[i]]; o.seq == 0 {
					j = i
					break
				} else if o.start > b.recs[b.lo[j]].start {
					j = i
				}
			}
			if o := &b.recs[b.lo[j]]; o.seq == 0 || start < o.start {
				b.lo[j] = s8
				start, counts = o.start, o.seq != 0
			}
		}
		if counts {
			b.minStart = min(b.minStart, start)
		}
	}
}

// Status says how a trace stands, as the trace summaries say it: error
// when a span has status ERROR, else running while no span without a
// parent has arrived, else success.
type Status uint8

// Trace statuses, as a set for filters.
const (
	StatusSuccess Status = 1 << iota
	StatusError
	StatusRunning
)

func (r *searchRec) status() Status {
	switch {
	case r.errors > 0:
		return StatusError
	case r.roots > 0:
		return StatusSuccess
	default:
		return StatusRunning
	}
}

func (r *searchRec) duration() uint64 {
	if r.end < r.start {
		return 0
	}
	return r.end - r.start
}

// Filter narrows a scan. The trace-level conditions are exact; the span
// terms only rule traces out (see package doc): a trace that passes may
// still have no span that matches them all.
type Filter struct {
	// Status, when not 0, is the set of statuses a trace may have.
	Status Status
	// MinDuration and MaxDuration bound the trace's duration (nanoseconds); 0 is no bound.
	MinDuration, MaxDuration uint64
	// StartFrom and StartTo bound the trace's start (unix nanoseconds,
	// inclusive); 0 is no bound.
	StartFrom, StartTo uint64
	// Spans are the span-level conditions (see SpanTerms).
	Spans SpanTerms
}

// SpanTerms are span-level conditions that must hold on one span.
type SpanTerms struct {
	Service string // the span's resource attribute service.name; "" is any
	Name    string // "" is any
	Kind    int32  // -1 is any
	// Attrs are key=value conditions on a span or resource attribute
	// (typed, see AttrQuery).
	Attrs []AttrQuery
}

// probes turns span terms into bloom probes: each condition is a set of
// alternatives, one of which the trace's filter must hold.
func (s *Store) probes(t SpanTerms) [][]uint64 {
	var out [][]uint64
	if t.Service != "" {
		out = append(out, []uint64{s.terms.strAttr(serviceNameKey, t.Service)})
	}
	if t.Name != "" {
		out = append(out, []uint64{s.terms.name(t.Name)})
	}
	if t.Kind >= 0 {
		out = append(out, []uint64{s.terms.kind(t.Kind)})
	}
	for _, a := range t.Attrs {
		out = append(out, s.terms.query(a))
	}
	return out
}

func (f *Filter) admits(r *searchRec, probes [][]uint64) bool {
	if f.Status != 0 && f.Status&r.status() == 0 {
		return false
	}
	if d := r.duration(); (f.MinDuration > 0 && d < f.MinDuration) || (f.MaxDuration > 0 && d > f.MaxDuration) {
		return false
	}
	if (f.StartFrom > 0 && r.start < f.StartFrom) || (f.StartTo > 0 && r.start > f.StartTo) {
		return false
	}
	for _, alts := range probes {
		if !slices.ContainsFunc(alts, r.bloom.has) {
			return false
		}
	}
	return true
}

// Hit is one trace a scan found.
type Hit struct {
	Key
	ref traceRef
}

// ScanResult says how a scan ended.
type ScanResult struct {
	// Scanned counts the records read.
	Scanned int
	// Stopped is set when the record budget ran out before the scan
	// finished; Resume is then the key to continue below (as After).
	Stopped bool
	Resume  Key
}

// bound is what a scan has left to read: the records of a block it does
// not follow one by one (slot -1), or one followed record; key bounds
// the keys it may yield.
type bound struct {
	key  Key
	idx  uint32
	gen  uint64
	slot int
	seq  uint64 // the followed record's
	// skip are the block's followed slots when the scan began: they are
	// read as bounds of their own.
	skip  [2 * trackedRecs]uint8
	nSkip int
}

// boundHeap is a max-heap of bounds by key.
type boundHeap []bound

func boundKey(b *bound) Key { return b.key }

func (h *boundHeap) push(x bound) { *h = heapPush(*h, x, boundKey) }
func (h *boundHeap) pop() bound {
	var top bound
	*h, top = heapPop(*h, boundKey)
	return top
}

// boundsOf adds what a scan has to read of block b: its records, under
// one bound, and apart, each under its own, the followed records whose
// start lies further above or below the others' than those span (a clock
// ahead or behind): so that a few such records neither make every search
// read the block first nor keep a later page from skipping it. x is
// read-locked.
func (s *Store) boundsOf(bounds boundHeap, b *recBlock, idx uint32, after Key, below func(*searchRec) bool) boundHeap {
	bb := bound{idx: idx, gen: b.gen, key: b.maxKey, slot: -1}
	low := b.minStart
	others := b.minStart != ^uint64(0) // records besides the followed ones were seen
	var width uint64
	if others && b.maxKey.Start >= b.minStart {
		width = b.maxKey.Start - b.minStart
	}
	var followed [2 * trackedRecs]uint8
	n := copy(followed[:], b.hi[:b.nHi])
	n += copy(followed[n:], b.lo[:b.nLo])
	apart := 0
	for k, t := range followed[:n] {
		r := &b.recs[t]
		if r.seq == 0 || slices.Contains(followed[:k], t) {
			continue
		}
		far := others && ((r.start > b.maxKey.Start && r.start-b.maxKey.Start > width) || (r.start < b.minStart && b.minStart-r.start > width))
		if !far {
			if k := r.key(); compareKeys(k, bb.key) > 0 {
				bb.key = k
			}
			low = min(low, r.start)
			continue
		}
		bb.skip[bb.nSkip] = t
		bb.nSkip++
		apart++
		if below(r) {
			bounds.push(bound{idx: idx, gen: b.gen, key: r.key(), slot: int(t), seq: r.seq})
		}
	}
	// The others, unless every one of them is at or past after (read by
	// the pages before).
	if b.live > apart && compareKeys(Key{Start: low}, after) < 0 {
		bounds.push(bb)
	}
	return bounds
}

// maxHits bounds the candidates a scan holds at once: past it, the lowest
// half is dropped and the scan stops above them (ScanResult.Resume).
var maxHits = 1 << 16 // a variable for tests

// hitHeap is a max-heap of hits by key.
type hitHeap []Hit

func hitKey(h *Hit) Key { return h.Key }

func (h *hitHeap) push(x Hit) { *h = heapPush(*h, x, hitKey) }
func (h *hitHeap) pop() Hit {
	var top Hit
	*h, top = heapPop(*h, hitKey)
	return top
}

// heapPush and heapPop keep q a max-heap by key.
func heapPush[T any](q []T, x T, key func(*T) Key) []T {
	q = append(q, x)
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if compareKeys(key(&q[i]), key(&q[p])) <= 0 {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
	return q
}

func heapPop[T any](q []T, key func(*T) Key) ([]T, T) {
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	var zero T
	q[n] = zero
	q = q[:n]
	for i := 0; ; {
		l, best := 2*i+1, i
		if l < n && compareKeys(key(&q[l]), key(&q[best])) > 0 {
			best = l
		}
		if l+1 < n && compareKeys(key(&q[l+1]), key(&q[best])) > 0 {
			best = l + 1
		}
		if best == i {
			break
		}
		q[i], q[best] = q[best], q[i]
		i = best
	}
	return q, top
}

// Scan calls fn with tenant's traces that pass f and whose key is below
// after (all of them when after is zero), newest first by start, until fn
// returns false or maxRecords records have been read (0: no limit; the
// scan always reads on until it can resume below after). Traces that
// arrive while it runs are left out: their place may be above what fn
// has seen.
func (s *Store) Scan(tenant string, f Filter, after Key, maxRecords int, fn func(Hit) bool) ScanResult {
	var res ScanResult
	tn, ok := s.indexOf(tenant)
	if !ok {
		return res
	}
	x := tn.index
	horizon := s.traceSeq.Load()
	probes := s.probes(f.Spans)
	if after == (Key{}) {
		after = Key{Start: ^uint64(0), Seq: ^uint64(0)}
	}
	below := func(r *searchRec) bool {
		return r.seq != 0 && r.seq <= horizon && compareKeys(r.key(), after) < 0
	}

	var bounds boundHeap
	x.mu.RLock()
	x.scans.Add(1)
	defer x.scans.Add(-1)
	bounds = make(boundHeap, 0, len(x.blocks)+16)
	for i, b := range x.blocks {
		if b == nil || b.live == 0 {
			continue
		}
		bounds = s.boundsOf(bounds, b, uint32(i), after, below)
	}
	x.mu.RUnlock()

	var (
		hits     hitHeap
		floor    Key
		floorSet bool
	)
	push := func(r *searchRec) {
		if !below(r) || (floorSet && compareKeys(r.key(), floor) <= 0) || !f.admits(r, probes) {
			return
		}
		hits.push(Hit{Key: r.key(), ref: traceRef{low: r.low, seq: r.seq}})
	}
	stopAt := func(k Key) ScanResult {
		res.Stopped, res.Resume = true, Key{Start: k.Start, Seq: k.Seq + 1}
		return res
	}
	for {
		// Emit what no unread bound can beat.
		for len(hits) > 0 && (len(bounds) == 0 || compareKeys(hits[0].Key, bounds[0].key) > 0) {
			if !fn(hits.pop()) {
				return res
			}
		}
		if len(bounds) == 0 {
			if floorSet {
				return stopAt(floor)
			}
			return res
		}
		next := bounds[0].key
		switch {
		case floorSet && compareKeys(next, floor) <= 0:
			// Candidates below floor were dropped: resume above them.
			return stopAt(floor)
		case f.StartFrom > 0 && next.Start < f.StartFrom:
			// Every other bound starts before the window too; no hit is left.
			return res
		case maxRecords > 0 && res.Scanned >= maxRecords && next.Seq != ^uint64(0) && compareKeys(Key{Start: next.Start, Seq: next.Seq + 1}, after) < 0:
			// Past the budget, stop where every key above the next bound
			// has been read, if that moves on from after.
			return stopAt(next)
		}
		bb := bounds.pop()
		x.mu.RLock()
		if int(bb.idx) < len(x.blocks) {
			if b := x.blocks[bb.idx]; b != nil && b.gen == bb.gen {
				if bb.slot >= 0 {
					if r := &b.recs[bb.slot]; r.seq == bb.seq {
						res.Scanned++
						push(r)
					}
				} else {
					res.Scanned += b.used
					for k := 0; k < b.used; k++ {
						if !slices.Contains(bb.skip[:bb.nSkip], uint8(k)) {
							push(&b.recs[k])
						}
					}
				}
			}
		}
		x.mu.RUnlock()
		if len(hits) > maxHits {
			// Keep the highest half; drop the rest and stop above them.
			slices.SortFunc(hits, func(a, b Hit) int { return compareKeys(b.Key, a.Key) })
			floor, floorSet = hits[maxHits/2].Key, true
			clear(hits[maxHits/2:])
			hits = hits[:maxHits/2] // sorted from the highest: a heap
		}
	}
}

// indexOf returns tenant's table entry, if it holds traces. The slot is
// read without a reference: it may have been given to another tenant in
// between, so the name is checked (a search of a tenant that just left
// finds nothing).
func (s *Store) indexOf(tenant string) (*tenant, bool) {
	name, slot, ok := s.readSlot(tenant)
	if !ok {
		return nil, false
	}
	tn := s.tenants.at(slot)
	if tn == nil || tn.name != name {
		return nil, false
	}
	return tn, true
}

// FetchHit copies out the trace h names, if that very trace is still
// stored. Release the result when done with it.
func (s *Store) FetchHit(h Hit) (Trace, bool) {
	sh := s.shardOf(h.ref.low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if ref, e := sh.findRef(h.ref); e != nil {
		return s.snapshot(sh, ref, e, nil), true
	}
	return Trace{}, false
}
