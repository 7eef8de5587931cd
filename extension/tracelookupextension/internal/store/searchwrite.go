// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"slices"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// What ingest writes to the search indexes: it gathers each span's facts
// and terms while it encodes the span, outside any index lock, then
// writes them to the trace's record and its tenant's catalog at once.

// groupInfo is what a resource group brings to each of its spans.
type groupInfo struct {
	tenant  uint16
	bloom   bloom
	service string // "" when the resource names none
	svc     uint64 // the service's term
	// The service's spans and traces not counted yet, and their block.
	pend pending
}

// pending is what a batch has yet to count in one record block: the
// traces of one request mostly share their block, so that a service or an
// operation is counted once a block per request, not once a trace.
type pending struct {
	spans, traces int64
	ref           recRef
	gen           uint64
}

// add adds to p what trace rec in blk brings; false when p holds counts of
// another block, to be counted first.
func (p *pending) add(ref recRef, blk *recBlock, spans, traces int64) bool {
	if (p.spans > 0 || p.traces > 0) && (p.ref.block() != ref.block() || p.gen != blk.gen) {
		return false
	}
	p.ref, p.gen = ref, blk.gen
	p.spans += spans
	p.traces += traces
	return true
}

// take empties p and returns its block, if that block still holds traces
// (those evicted meanwhile need no count); x is locked.
func (p *pending) take(x *tenantIndex) (*recBlock, int64, int64) {
	spans, traces := p.spans, p.traces
	if spans == 0 && traces == 0 {
		return nil, 0, 0 // nothing pending: ref names no block
	}
	p.spans, p.traces = 0, 0
	if i := p.ref.block(); uint64(i) < uint64(len(x.blocks)) {
		if b := x.blocks[i]; b != nil && b.gen == p.gen {
			return b, spans, traces
		}
	}
	return nil, 0, 0
}

// searchScratch is one batch's search work, reused between batches.
type searchScratch struct {
	groups []groupInfo
	ops    []opOcc         // the batch's operations
	opIdx  map[opKey]int32 // where each is in ops, once there are many
	// Per trace of the batch: its spans' facts, the terms of their names,
	// kinds and attributes, and the operations it has spans of.
	facts  []spanFacts
	terms  bloom
	opsNow []int32
	counts []int32 // spans stored per group, by group
	used   []int32 // the groups the trace's spans came in
}

// opKey finds an operation of a batch: its group, its name's term and its kind.
type opKey struct {
	group int32
	kind  int32
	h     uint64
}

// manyOps is how many operations a batch looks through one by one.
const manyOps = 16

type opOcc struct {
	group int32
	name  string
	h     uint64 // the name's term
	kind  int32
	spans int64 // the current trace's
	pend  pending
}

func (sc *searchScratch) reset() {
	clear(sc.groups) // service names: the request must not stay alive through the pool
	sc.groups = sc.groups[:0]
	sc.counts = sc.counts[:0]
	sc.used = sc.used[:0]
	clear(sc.ops)
	sc.ops = sc.ops[:0]
	clear(sc.opIdx)
	sc.opsNow = sc.opsNow[:0]
}

// heldBytes is what the scratch keeps between batches, by capacity.
func (sc *searchScratch) heldBytes() int {
	return int(unsafe.Sizeof(groupInfo{}))*cap(sc.groups) + int(unsafe.Sizeof(spanFacts{}))*cap(sc.facts) + int(unsafe.Sizeof(opOcc{}))*cap(sc.ops) + 4*(cap(sc.counts)+cap(sc.used)+cap(sc.opsNow))
}

func (sc *searchScratch) startTrace() {
	sc.facts = sc.facts[:0]
	sc.terms = bloom{}
	for _, i := range sc.opsNow {
		sc.ops[i].spans = 0 // a trace left without being indexed
	}
	sc.opsNow = sc.opsNow[:0]
	for _, g := range sc.used {
		sc.counts[g] = 0
	}
	sc.used = sc.used[:0]
}

// groupTerms gathers what a resource group brings to its spans: the
// attributes the encoder keeps, as it keeps them.
func (s *Store) groupTerms(sc *searchScratch, res pcommon.Resource, tenant uint16) {
	g := groupInfo{tenant: tenant}
	s.keptTerms(res.Attributes(), func(k string, v pcommon.Value, h uint64) {
		g.bloom.add(h)
		if k == serviceNameKey && v.Type() == pcommon.ValueTypeStr {
			g.service, g.svc = s.terms.lim.Cut(v.Str()), h
		}
	})
	sc.groups = append(sc.groups, g)
	sc.counts = append(sc.counts, 0)
}

// spanTerms gathers one stored span's facts, name and kind, as the
// encoder keeps them; attrTerm gathers its attributes.
func (s *Store) spanTerms(sc *searchScratch, group int, sp ptrace.Span) {
	sc.facts = append(sc.facts, spanFacts{
		start: uint64(sp.StartTimestamp()),
		end:   uint64(sp.EndTimestamp()),
		err:   sp.Status().Code() == ptrace.StatusCodeError,
		root:  sp.ParentSpanID().IsEmpty(),
	})
	if sc.counts[group] == 0 {
		sc.used = append(sc.used, int32(group))
	}
	sc.counts[group]++
	spanName := s.terms.lim.Cut(sp.Name())
	name := s.terms.name(spanName)
	kind := int32(sp.Kind())
	sc.terms.add(name)
	sc.terms.add(s.terms.kind(kind))
	i := -1
	if sc.opIdx != nil {
		if j, ok := sc.opIdx[opKey{group: int32(group), kind: kind, h: name}]; ok {
			i = int(j)
		}
	} else {
		for j := range sc.ops {
			if o := &sc.ops[j]; o.h == name && o.kind == kind && o.group == int32(group) {
				i = j
				break
			}
		}
	}
	if i >= 0 && sc.ops[i].name == spanName { // a name's term stands for it (see callIndex on hash collisions)
		o := &sc.ops[i]
		if o.spans == 0 {
			sc.opsNow = append(sc.opsNow, int32(i))
		}
		o.spans++
		return
	}
	if len(sc.ops) >= manyOps && sc.opIdx == nil {
		sc.opIdx = make(map[opKey]int32, 2*manyOps)
		for j := range sc.ops {
			o := &sc.ops[j]
			sc.opIdx[opKey{group: o.group, kind: o.kind, h: o.h}] = int32(j)
		}
	}
	if sc.opIdx != nil {
		sc.opIdx[opKey{group: int32(group), kind: kind, h: name}] = int32(len(sc.ops))
	}
	sc.opsNow = append(sc.opsNow, int32(len(sc.ops)))
	sc.ops = append(sc.ops, opOcc{group: int32(group), name: spanName, h: name, kind: kind, spans: 1})
}

// attrTerm gathers one attribute of a stored span, its key as the encoder
// keeps it and enc as it encoded it (it calls this while it encodes the
// span: see spancodec.Watch).
func (s *Store) attrTerm(sc *searchScratch, k string, v pcommon.Value, enc []byte) {
	if h, ok := s.terms.encoded(k, v, enc); ok {
		sc.terms.add(h)
	}
}

// keptTerms calls fn with each searchable attribute the encoder keeps (the
// first ones), its key cut as the encoder cuts it, and its term.
func (s *Store) keptTerms(attrs pcommon.Map, fn func(k string, v pcommon.Value, h uint64)) {
	kept, i := s.terms.lim.Kept(attrs.Len()), 0
	for k, v := range attrs.All() {
		if i == kept {
			return
		}
		i++
		k = s.terms.lim.Cut(k)
		if h, ok := s.terms.attr(k, v); ok {
			fn(k, v, h)
		}
	}
}

// indexTrace writes what sc gathered for one trace to its record, making
// it for a new trace, and to its tenant's catalog. The trace's shard is
// locked. It returns the change in the catalog's heap bytes.
func (s *Store) indexTrace(sc *searchScratch, tn *tenant, ref entryRef, e *traceEntry, tr traceRef, isNew bool) int64 {
	x := tn.index
	x.mu.Lock()
	defer x.mu.Unlock()
	if isNew || e.rec == 0 {
		r, mapped := x.alloc(tr)
		e.rec = r
		s.searchMapped.Add(mapped)
	}
	blk, rec := x.rec(e.rec)
	c := &x.cat
	before := c.bytes
	for _, g := range sc.used {
		gi := &sc.groups[g]
		if gi.service != "" {
			var traces int64
			if !rec.bloom.has(gi.svc) {
				traces = 1 // the trace's first span of the service
			}
			if !gi.pend.add(e.rec, blk, int64(sc.counts[g]), traces) {
				s.flushService(x, gi)
				gi.pend.add(e.rec, blk, int64(sc.counts[g]), traces)
			}
		}
		rec.bloom.or(&gi.bloom)
	}
	rec.bloom.or(&sc.terms)
	for _, f := range sc.facts {
		blk.note(e.rec.slot(), f)
	}
	for _, i := range sc.opsNow {
		o := &sc.ops[i]
		if !o.pend.add(e.rec, blk, o.spans, 0) {
			s.flushOp(x, sc, o)
			o.pend.add(e.rec, blk, o.spans, 0)
		}
		o.spans = 0
	}
	x.catBytes.Store(c.bytes)
	return c.bytes - before
}

// flushService and flushOp count what a batch left pending (see
// pending); x is locked.
func (s *Store) flushService(x *tenantIndex, g *groupInfo) {
	if b, spans, traces := g.pend.take(x); b != nil {
		c := &x.cat
		c.count(b, g.svc, spans, traces, func() *catNode { return c.add(g.svc, nodeService, g.service, 0, nil) })
	}
}

func (s *Store) flushOp(x *tenantIndex, sc *searchScratch, o *opOcc) {
	b, spans, _ := o.pend.take(x)
	g := &sc.groups[o.group]
	if b == nil || g.service == "" {
		return
	}
	c := &x.cat
	h := mixTerm(g.svc, o.h, byte(o.kind))
	c.count(b, h, spans, 0, func() *catNode {
		if svc := c.byHash[g.svc]; svc != nil && svc.kind == nodeService {
			return c.add(h, nodeOp, o.name, o.kind, svc)
		}
		return nil
	})
}

// flushPending counts all a batch left pending, services before their
// operations; the batch holds its tenants' slots.
func (s *Store) flushPending(sc *searchScratch) {
	lock := func(x *tenantIndex) int64 {
		x.mu.Lock()
		return x.cat.bytes
	}
	unlock := func(x *tenantIndex, before int64) {
		s.bytes.Add(x.cat.bytes - before)
		x.catBytes.Store(x.cat.bytes)
		x.mu.Unlock()
	}
	for gi := range sc.groups {
		g := &sc.groups[gi]
		x := s.tenants.at(g.tenant).index
		before := lock(x)
		s.flushService(x, g)
		unlock(x, before)
	}
	// Operations after every service; a batch's are mostly of one tenant.
	var (
		x      *tenantIndex
		before int64
	)
	for i := range sc.ops {
		o := &sc.ops[i]
		if o.pend.spans == 0 {
			continue
		}
		if ox := s.tenants.at(sc.groups[o.group].tenant).index; ox != x {
			if x != nil {
				unlock(x, before)
			}
			x = ox
			before = lock(x)
		}
		s.flushOp(x, sc, o)
	}
	if x != nil {
		unlock(x, before)
	}
}

// unindex removes a leaving trace's record; its shard is locked. It
// returns the change in the catalog's heap bytes.
func (s *Store) unindex(tn *tenant, e *traceEntry) int64 {
	if e.rec == 0 {
		return 0
	}
	x := tn.index
	x.mu.Lock()
	defer x.mu.Unlock()
	before := x.cat.bytes
	s.searchMapped.Add(-x.remove(e.rec))
	e.rec = 0
	x.catBytes.Store(x.cat.bytes)
	return x.cat.bytes - before
}

// relocate moves a trace's record to its tenant's newest block, when the
// store moves the trace (see evictOrMove): otherwise the record would keep
// its old block, and all that block's catalog counts, for as long as the
// trace stays. The trace's catalog counts are made again in the new block
// from its decoded spans; the old block's go when it is freed. The shard
// is locked. It returns the change in the catalog's heap bytes.
func (s *Store) relocate(tn *tenant, e *traceEntry, tr traceRef, spans []spancodec.Span) int64 {
	x := tn.index
	x.mu.Lock()
	defer x.mu.Unlock()
	if e.rec == 0 {
		return 0
	}
	if x.scans.Load() > 0 {
		// A search is reading the blocks: a record moved under it could be
		// read twice or not at all. It stays, with its block's counts; the
		// next move takes it along.
		return 0
	}
	c := &x.cat
	before := c.bytes
	_, old := x.rec(e.rec)
	saved := *old
	unmapped := x.remove(e.rec)
	r, mapped := x.alloc(tr)
	s.searchMapped.Add(mapped - unmapped)
	e.rec = r
	blk, rec := x.rec(r)
	*rec = saved
	blk.track(r.slot())
	var services []uint64
	for i := range spans {
		sp := &spans[i]
		if v, ok := sp.ResourceAttr(serviceNameKey); ok && v.Type == spancodec.ValueStr && v.Str != "" {
			service := v.Str
			svc := s.terms.strAttr(serviceNameKey, service)
			var traces int64
			if !slices.Contains(services, svc) {
				services, traces = append(services, svc), 1
			}
			c.count(blk, svc, 1, traces, func() *catNode { return c.add(svc, nodeService, service, 0, nil) })
			h := mixTerm(svc, s.terms.name(sp.Name), byte(sp.Kind))
			c.count(blk, h, 1, 0, func() *catNode {
				if n := c.byHash[svc]; n != nil && n.kind == nodeService {
					return c.add(h, nodeOp, sp.Name, sp.Kind, n)
				}
				return nil
			})
		}
	}
	x.catBytes.Store(c.bytes)
	return c.bytes - before
}
