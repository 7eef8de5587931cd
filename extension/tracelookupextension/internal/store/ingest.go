// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"hash/maphash"
	"math"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// traceKey names a trace within a batch: its id and its tenant's slot.
type traceKey struct {
	id     [16]byte
	tenant uint16
}

// spanRef is one span of a batch, with the resource group it came in.
type spanRef struct {
	trace int32 // index into the batch's traces
	group int32 // index into the batch's resource headers
	span  ptrace.Span
}

// batch is one Ingest call's work, grouped by trace, and its scratch memory.
type batch struct {
	// truncated marks every trace of the batch truncated: a restored
	// trace that had been cut before.
	truncated bool
	ids       []traceKey
	byID      map[traceKey]int32
	slots     map[string]uint16 // the tenant slots the batch holds a reference to
	refs      []spanRef
	groups    []*resource // each group's resource; the batch holds a reference
	resCall   []string    // the call id on each group's resource, if any
	body      []byte      // a resource body being encoded
	records   []byte      // one trace's records being encoded
	scratch   []byte      // the compressor's
	entry     []byte      // the keys and the block, as the log holds them
	stored    []byte      // a copy of a trace's entries, to read its keys
	known     []uint64    // the keys a trace already holds, sorted
	keys      []uint64    // the keys of the spans this batch adds to a trace
	fresh     map[uint64]struct{}
	exts      []extent
	blockRes  []*resource
	newCalls  []uint64
	enc       spancodec.Encoder
	resCuts   []int   // the values cut from each group's resource
	resItems  []int64 // the attributes and elements of each group's resource
	search    searchScratch
}

// maxBatchScratch is the most a pooled batch keeps of one large request.
const maxBatchScratch = 1 << 20

var batchPool = pool.New(8, maxBatchScratch,
	func() *batch {
		return &batch{byID: make(map[traceKey]int32), slots: make(map[string]uint16), fresh: make(map[uint64]struct{})}
	},
	func(b *batch) int {
		return cap(b.body) + cap(b.records) + cap(b.scratch) + cap(b.entry) + cap(b.stored) +
			8*(cap(b.known)+cap(b.keys)+cap(b.newCalls)) + 12*cap(b.exts) + 8*cap(b.blockRes) + 64*cap(b.refs) +
			b.search.heldBytes()
	})

func (b *batch) reset() {
	b.truncated = false
	b.ids = b.ids[:0]
	clear(b.byID)
	clear(b.slots)
	clear(b.refs) // drop the spans: the request's memory must not stay alive through the pool
	b.refs = b.refs[:0]
	clear(b.groups)
	b.groups = b.groups[:0]
	clear(b.resCall)
	b.resCall = b.resCall[:0]
	b.resCuts = b.resCuts[:0]
	b.resItems = b.resItems[:0]
	b.search.reset()
}

// Rejected counts the spans of one Ingest call that were not stored, by reason.
type Rejected struct {
	// InvalidID spans have an all-zero trace id, which no lookup could name.
	InvalidID int
	// InvalidTenant spans name a tenant id that is not valid (see ValidTenant).
	InvalidTenant int
	// TenantLimit spans belong to a new tenant while MaxTenants others hold traces.
	TenantLimit int
}

// Ingest stores every span of td under its tenant: tenant when it is not
// "" (the request's tenant), else the value of the configured tenant
// attribute on the span's resource, else the default tenant. It copies
// what it keeps and never changes td. When a bound is reached it evicts
// whole traces; it never fails. It returns the spans it did not store
// for want of a trace id or a tenant.
func (s *Store) Ingest(tenant string, td ptrace.Traces) Rejected {
	return s.ingestAt(tenant, td, s.now().UnixNano(), false)
}

// Restore stores td as Ingest does, as if received at seen (unix
// nanoseconds, no later than now): a snapshot's traces keep their age, so
// retention and eviction treat them as before the restart. tenant names
// the tenant the trace was held under; truncated marks it cut before.
func (s *Store) Restore(tenant string, td ptrace.Traces, seen int64, truncated bool) Rejected {
	return s.ingestAt(tenant, td, min(seen, s.now().UnixNano()), truncated)
}

func (s *Store) ingestAt(tenant string, td ptrace.Traces, now int64, truncated bool) (rejected Rejected) {
	if s.closed.Load() {
		return Rejected{}
	}
	b := batchPool.Get()
	b.enc = spancodec.Encoder{Limits: s.cfg.Limits}
	b.truncated = truncated
	// Deferred, so that even a panic releases the batch's resource references.
	defer func() {
		for _, g := range b.groups {
			s.resources.release(g)
		}
		for _, id := range b.slots {
			s.tenants.release(id)
		}
		c := b.enc.Cuts
		s.cuts.values.Add(c.Values)
		s.cuts.attributes.Add(c.Attributes)
		s.cuts.events.Add(c.Events)
		s.cuts.links.Add(c.Links)
		s.invalidIDs.Add(int64(rejected.InvalidID))
		s.badTenant.Add(int64(rejected.InvalidTenant))
		s.tenantFull.Add(int64(rejected.TenantLimit))
		b.reset()
		batchPool.Put(b)
	}()

	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		slot, ok := s.tenantSlot(b, tenant, rs, &rejected)
		if !ok {
			continue
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			if spans.Len() == 0 {
				continue
			}
			w := spancodec.Watch{Key: s.cfg.CallIDAttribute}
			group := int32(len(b.groups))
			var cuts int
			items := b.enc.Items
			b.body, cuts = b.enc.AppendResourceBody(b.body[:0], rs.Resource(), ss.Scope(), &w)
			b.groups = append(b.groups, s.resources.acquire(b.body))
			b.resCall = append(b.resCall, w.Value)
			b.resCuts = append(b.resCuts, cuts)
			b.resItems = append(b.resItems, b.enc.Items-items)
			if s.search {
				s.groupTerms(&b.search, rs.Resource(), slot)
			}
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				id := [16]byte(sp.TraceID())
				if id == ([16]byte{}) {
					rejected.InvalidID++ // not a valid trace id: nothing could look it up
					continue
				}
				key := traceKey{id: id, tenant: slot}
				t, ok := b.byID[key]
				if !ok {
					t = int32(len(b.ids))
					b.ids = append(b.ids, key)
					b.byID[key] = t
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
		key := b.ids[b.refs[start].trace]
		s.ingestTrace(b, key, b.refs[start:end], now)
		if ingestHook != nil {
			ingestHook()
		}
		// Evict as soon as a bound is passed, not once per request: one large
		// request then overshoots the bound by one trace's block at most.
		s.enforceShare(key.tenant)
		s.enforce(now)
		start = end
	}
	if s.search {
		// The counts left pending take memory too: the bounds again.
		s.flushPending(&b.search)
		for _, id := range b.slots {
			s.enforceShare(id)
		}
		s.enforce(now)
	}
	return rejected
}

// tenantSlot returns the slot of the tenant of rs's spans (see Ingest),
// holding a reference for the batch; false, with the spans counted in
// rejected, when they cannot be stored under a tenant.
func (s *Store) tenantSlot(b *batch, requestTenant string, rs ptrace.ResourceSpans, rejected *Rejected) (uint16, bool) {
	name := requestTenant
	if name == "" && s.cfg.TenantAttribute != "" {
		if v, ok := rs.Resource().Attributes().Get(s.cfg.TenantAttribute); ok {
			name = v.AsString()
		}
	}
	if name == "" {
		name = s.cfg.DefaultTenant
	}
	if id, ok := b.slots[name]; ok {
		return id, true
	}
	if !ValidTenant(name) {
		rejected.InvalidTenant += spanCount(rs)
		return 0, false
	}
	id, ok := s.tenants.acquire(name)
	if !ok {
		rejected.TenantLimit += spanCount(rs)
		return 0, false
	}
	b.slots[name] = id
	return id, true
}

func spanCount(rs ptrace.ResourceSpans) int {
	n := 0
	for i := 0; i < rs.ScopeSpans().Len(); i++ {
		n += rs.ScopeSpans().At(i).Spans().Len()
	}
	return n
}

// ingestHook, when set by a test, runs after each trace of a batch.
var ingestHook func()

// spanKey identifies a span within its trace: its id, its parent and its
// kind, so that the client and server halves of a Zipkin-style shared span
// (one span id, two kinds) are both kept, and a retried span is stored once.
func (s *Store) spanKey(sp ptrace.Span) uint64 {
	var k [17]byte
	sid, pid := sp.SpanID(), sp.ParentSpanID()
	copy(k[:8], sid[:])
	copy(k[8:16], pid[:])
	k[16] = byte(sp.Kind())
	return maphash.Bytes(s.keySeed, k[:])
}

// ingestTrace stores the spans of one trace from one batch, as one entry
// in the log, under one lock.
func (s *Store) ingestTrace(b *batch, key traceKey, refs []spanRef, now int64) {
	id := key.id
	sh := s.shardOf(low64(id))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return
	}
	ref, e := sh.find(id, key.tenant)
	tn := s.tenants.at(key.tenant)
	isNew := e == nil
	var tr traceRef
	// The keys the trace already holds, from its entries in the log.
	known := b.known[:0]
	if isNew {
		tr = traceRef{low: low64(id), seq: s.traceSeq.Add(1)}
	} else {
		tr = traceRef{low: low64(id), seq: e.seq}
		b.exts = sh.entries.extents(b.exts[:0], ref, e)
		b.stored = s.log.copyExtents(b.stored[:0], b.exts)
		var err error
		if known, err = appendKeys(known, b.stored); err != nil {
			known = known[:0] // cannot happen: the log holds what ingest wrote
		}
		slices.Sort(known)
	}
	b.known = known
	clear(b.fresh)
	keys := b.keys[:0]
	spanCount := 0
	if !isNew {
		spanCount = int(e.spanCount)
	}
	truncated := b.truncated
	lastGroup := int32(-1)
	stored := 0
	items := b.enc.Items
	// What decoding and rendering the trace takes besides its records: each
	// resource its block names decodes once, and renders with each span.
	var resRaw, resItems, maxSpan int64
	records := b.records[:0]
	blockRes := b.blockRes[:0]
	newCalls := b.newCalls[:0]
	b.search.startTrace()
	for _, sr := range refs {
		key := s.spanKey(sr.span)
		_, dup := slices.BinarySearch(known, key)
		if _, again := b.fresh[key]; dup || again {
			s.duplicates.Add(1)
			continue // delivered twice: stored once
		}
		if s.cfg.MaxSpansPerTrace > 0 && spanCount+stored >= s.cfg.MaxSpansPerTrace {
			truncated = true
			s.dropped.Add(1)
			continue
		}
		b.fresh[key] = struct{}{}
		keys = append(keys, key)
		res := b.groups[sr.group]
		if sr.group != lastGroup {
			if !slices.Contains(blockRes, res) {
				blockRes = append(blockRes, res)
				resRaw += int64(len(res.body))
				resItems += b.resItems[sr.group]
			}
			records = spancodec.AppendResource(records, now, res.id)
			lastGroup = sr.group
		}
		w := spancodec.Watch{Key: s.cfg.CallIDAttribute}
		if s.search {
			w.Each = func(k string, v pcommon.Value, enc []byte) { s.attrTerm(&b.search, k, v, enc) }
		}
		start := len(records)
		records = b.enc.AppendSpan(records, sr.span, &w, b.resCuts[sr.group])
		maxSpan = max(maxSpan, int64(len(records)-start+len(res.body)))
		stored++
		if s.search {
			s.spanTerms(&b.search, int(sr.group), sr.span)
		}
		callID := w.Value
		if callID == "" {
			callID = b.resCall[sr.group]
		}
		if callID != "" {
			h := s.calls.hash(callID)
			if !slices.Contains(newCalls, h) && (isNew || !sh.entries.hasCall(ref, e, h)) {
				newCalls = append(newCalls, h)
			}
		}
	}
	b.records, b.keys, b.blockRes, b.newCalls = records, keys, blockRes, newCalls
	// The keys, then the block compressed straight after them.
	if stored > 0 {
		b.entry, b.scratch = spancodec.Seal(appendEntryKeys(b.entry[:0], keys), records, b.scratch)
	}
	// An entry counts its pieces in 16 bits: a trace written in that many
	// pieces takes no more, as if it had reached MaxSpansPerTrace.
	if stored > 0 && !isNew && int(e.nExt)+len(b.entry)/s.log.size+2 > math.MaxUint16 {
		s.dropped.Add(int64(stored))
		truncated, stored = true, 0
	}
	if stored == 0 {
		if truncated && !isNew {
			e.truncated = true
		}
		return
	}
	s.sealedIn.Add(int64(len(records)))
	b.exts = s.log.write(b.exts[:0], tr, b.entry, blockRes)
	clear(b.blockRes)

	var heap int64
	if isNew {
		var mapped int64
		ref, mapped = sh.entries.alloc()
		s.slabBytes.Add(mapped)
		e = sh.entries.at(ref)
		e.id, e.seq, e.firstSeen, e.tenant = id, tr.seq, now, key.tenant
		sh.link(ref, e)
		heap += mapEntryBytes
		s.traces.Add(1)
		if s.fifo {
			sh.front() // drops the entries of traces evicted for memory, which mostly leave from the head
			s.queueBytes.Add(sh.compactQueue())
			s.queueBytes.Add(sh.queue.push(tr, now))
		}
		s.tenants.retain(key.tenant) // the batch holds one: the slot cannot go meanwhile
		tn.traces.Add(1)
		if s.cfg.TenantShare > 0 {
			tn.mu.Lock()
			s.tenants.bytes.Add(tn.queue.push(tr, now))
			tn.mu.Unlock()
		}
	}
	tn.bytes.Add(int64(len(b.entry)))
	tn.spans.Add(int64(stored))
	e.truncated = e.truncated || truncated
	for _, x := range b.exts {
		heap += sh.entries.addExtent(ref, e, x)
	}
	// Call ids join the index under the shard's lock, so that an eviction,
	// which removes them under the same lock, never leaves one behind.
	for _, h := range newCalls {
		grown, ok := sh.entries.addCall(ref, e, h)
		heap += grown
		if ok && s.calls.add(h, tr) {
			heap += callIndexEntry
		}
	}
	if s.search {
		heap += s.indexTrace(&b.search, tn, ref, e, tr, isNew)
	}
	e.lastSeen = now
	e.spanCount += int32(stored)
	e.rawBytes = uint32(min(int64(e.rawBytes)+int64(len(records))+resRaw, math.MaxUint32))
	e.items = uint32(min(int64(e.items)+b.enc.Items-items+resItems, math.MaxUint32))
	e.maxSpanKiB = uint16(max(int64(e.maxSpanKiB), min((maxSpan+1023)>>10, math.MaxUint16)))
	s.spans.Add(int64(stored))
	s.bytes.Add(heap)
}
