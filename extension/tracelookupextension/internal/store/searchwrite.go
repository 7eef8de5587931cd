// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"slices"
	"strconv"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// What ingest writes to the search indexes: it gathers each span's facts
// and terms while it encodes the span, outside any index lock, then
// writes them to the trace's record and its tenant's catalog at once.

// catOcc is one attribute value met, for the catalog: from a request
// (value), or decoded from the log (text and typ).
type catOcc struct {
	h     uint64 // the value's catalog hash (see valueNode)
	key   string
	value pcommon.Value
	text  string
	typ   int32
}

func (o *catOcc) valueText(lim spancodec.Limits) (string, int32) {
	if o.typ != 0 {
		return o.text, o.typ
	}
	if o.value.Type() == pcommon.ValueTypeStr {
		return lim.Cut(o.value.Str()), int32(pcommon.ValueTypeStr)
	}
	return o.value.AsString(), int32(o.value.Type())
}

// groupInfo is what a resource group brings to each of its spans.
type groupInfo struct {
	bloom   bloom
	service string // "" when the resource names none
	svc     uint64 // the service's term
	occ     [2]int // its attribute values in searchScratch.res
}

// searchScratch is one batch's search work, reused between batches.
type searchScratch struct {
	groups []groupInfo
	res    []catOcc // resource attribute values, by group
	// Per trace of the batch:
	facts  []spanFacts
	terms  []uint64
	ops    []opOcc
	attrs  []catOcc
	counts []int32 // spans stored per group, by group
	used   []int32 // the groups the trace's spans came in
}

type opOcc struct {
	group int32
	name  string
	h     uint64 // the name's term
	kind  int32
}

func (sc *searchScratch) reset() {
	clear(sc.groups) // service names: the request must not stay alive through the pool
	sc.groups = sc.groups[:0]
	sc.counts = sc.counts[:0]
	sc.used = sc.used[:0]
	clear(sc.res) // pdata values: the request must not stay alive through the pool
	sc.res = sc.res[:0]
	clear(sc.ops)
	sc.ops = sc.ops[:0]
	clear(sc.attrs)
	sc.attrs = sc.attrs[:0]
}

// heldBytes is what the scratch keeps between batches, by capacity.
func (sc *searchScratch) heldBytes() int {
	return int(unsafe.Sizeof(groupInfo{}))*cap(sc.groups) + int(unsafe.Sizeof(catOcc{}))*(cap(sc.res)+cap(sc.attrs)) +
		int(unsafe.Sizeof(spanFacts{}))*cap(sc.facts) + 8*cap(sc.terms) + int(unsafe.Sizeof(opOcc{}))*cap(sc.ops) + 4*(cap(sc.counts)+cap(sc.used))
}

func (sc *searchScratch) startTrace() {
	sc.facts = sc.facts[:0]
	sc.terms = sc.terms[:0]
	clear(sc.ops)
	sc.ops = sc.ops[:0]
	clear(sc.attrs)
	sc.attrs = sc.attrs[:0]
	for _, g := range sc.used {
		sc.counts[g] = 0
	}
	sc.used = sc.used[:0]
}

// valueNode is the catalog hash of an attribute value in a scope (0 span,
// 1 resource), of a type: the term, salted by both.
func valueNode(term uint64, scope int32, typ pcommon.ValueType) uint64 {
	return mixTerm(term, uint64(scope)<<8|uint64(typ), 'v')
}

// groupTerms gathers what a resource group brings to its spans: the
// attributes the encoder keeps, as it keeps them.
func (s *Store) groupTerms(sc *searchScratch, res pcommon.Resource) {
	g := groupInfo{occ: [2]int{len(sc.res), len(sc.res)}}
	s.keptTerms(res.Attributes(), func(k string, v pcommon.Value, h uint64) {
		g.bloom.add(h)
		if k == serviceNameKey && v.Type() == pcommon.ValueTypeStr {
			g.service, g.svc = s.terms.lim.Cut(v.Str()), h
		}
		sc.res = append(sc.res, catOcc{h: valueNode(h, 1, v.Type()), key: k, value: v})
	})
	g.occ[1] = len(sc.res)
	sc.groups = append(sc.groups, g)
	sc.counts = append(sc.counts, 0)
}

// spanTerms gathers one stored span's facts and terms, as the encoder
// keeps them.
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
	name := s.terms.str(termName, "", spanName)
	kind := int32(sp.Kind())
	sc.terms = append(sc.terms, name, s.terms.kind(kind))
	sc.ops = append(sc.ops, opOcc{group: int32(group), name: spanName, h: name, kind: kind})
	s.keptTerms(sp.Attributes(), func(k string, v pcommon.Value, h uint64) {
		sc.terms = append(sc.terms, h)
		sc.attrs = append(sc.attrs, catOcc{h: valueNode(h, 0, v.Type()), key: k, value: v})
	})
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
		n := int64(sc.counts[g])
		if gi.service != "" {
			var traces int64
			if !rec.bloom.has(gi.svc) {
				traces = 1 // the trace's first span of the service (or a rare false positive: then not counted)
			}
			c.count(blk, gi.svc, n, traces, func() *catNode { return c.add(gi.svc, nodeService, gi.service, 0, nil) })
		}
		rec.bloom.or(&gi.bloom)
		for _, o := range sc.res[gi.occ[0]:gi.occ[1]] {
			s.countValue(c, blk, o, 1, n)
		}
	}
	for _, f := range sc.facts {
		blk.note(e.rec.slot(), f)
	}
	for _, h := range sc.terms {
		rec.bloom.add(h)
	}
	for _, o := range sc.ops {
		gi := &sc.groups[o.group]
		if gi.service == "" {
			continue
		}
		h := mixTerm(gi.svc, o.h, byte(o.kind))
		c.count(blk, h, 1, 0, func() *catNode {
			if svc := c.byHash[gi.svc]; svc != nil && svc.kind == nodeService {
				return c.add(h, nodeOp, o.name, o.kind, svc)
			}
			return nil
		})
	}
	for _, o := range sc.attrs {
		s.countValue(c, blk, o, 0, 1)
	}
	x.catBytes.Store(c.bytes)
	return c.bytes - before
}

// countValue counts n spans with attribute value o in scope; a value the
// catalog has no room for counts on its key.
func (s *Store) countValue(c *catalog, blk *recBlock, o catOcc, scope int32, n int64) {
	c.count(blk, o.h, n, 0, func() *catNode {
		kh := s.keyHash(o.key, scope)
		key := c.byHash[kh]
		if key == nil {
			if key = c.add(kh, nodeKey, o.key, scope, nil); key == nil {
				return nil
			}
		}
		text, typ := o.valueText(s.terms.lim)
		if v := c.add(o.h, nodeValue, text, typ, key); v != nil {
			return v
		}
		return key
	})
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
			svc := s.terms.str(termAttr, serviceNameKey, service)
			var traces int64
			if !slices.Contains(services, svc) {
				services, traces = append(services, svc), 1
			}
			c.count(blk, svc, 1, traces, func() *catNode { return c.add(svc, nodeService, service, 0, nil) })
			h := mixTerm(svc, s.terms.str(termName, "", sp.Name), byte(sp.Kind))
			c.count(blk, h, 1, 0, func() *catNode {
				if n := c.byHash[svc]; n != nil && n.kind == nodeService {
					return c.add(h, nodeOp, sp.Name, sp.Kind, n)
				}
				return nil
			})
		}
		if sp.Resource != nil {
			s.countDecoded(c, blk, sp.Resource.Attributes, 1)
		}
		s.countDecoded(c, blk, sp.Attributes, 0)
	}
	x.catBytes.Store(c.bytes)
	return c.bytes - before
}

// countDecoded counts one span with each searchable attribute of attrs.
func (s *Store) countDecoded(c *catalog, blk *recBlock, attrs []spancodec.KeyValue, scope int32) {
	var buf [32]byte
	for i := range attrs {
		kv := &attrs[i]
		if kv.Key == spancodec.TruncatedValuesKey && scope == 0 {
			continue // the decoder's mark, not a sent attribute
		}
		var h uint64
		text := kv.Value.Str
		switch kv.Value.Type {
		case spancodec.ValueStr:
			h = s.terms.str(termAttr, kv.Key, kv.Value.Str)
		case spancodec.ValueInt:
			text = strconv.FormatInt(kv.Value.Int(), 10)
			h = s.terms.bytes(termNumber, kv.Key, strconv.AppendInt(buf[:0], kv.Value.Int(), 10))
		case spancodec.ValueDouble:
			text = pcommon.NewValueDouble(kv.Value.Double()).AsString() // as ingest names it
			h = s.terms.bytes(termNumber, kv.Key, appendNumber(buf[:0], kv.Value.Double()))
		case spancodec.ValueBool:
			text = strconv.FormatBool(kv.Value.Bool())
			h = s.terms.bytes(termBool, kv.Key, strconv.AppendBool(buf[:0], kv.Value.Bool()))
		default:
			continue
		}
		typ := int32(kv.Value.Type)
		s.countValue(c, blk, catOcc{h: valueNode(h, scope, pcommon.ValueType(typ)), key: kv.Key, text: text, typ: typ}, scope, 1)
	}
}
