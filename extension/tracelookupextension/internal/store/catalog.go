// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"cmp"
	"slices"
	"strings"
)

// The catalog lists what a tenant's traces hold: services with their span
// and trace counts, each service's operations (name and kind) with their
// span counts, and attribute keys (span and resource scopes) with their
// most frequent values, by the traces that carry them.
//
// Counts live in the record block (see recBlock) of the trace that brought
// them; when a block's last trace leaves, its counts go with it. Services
// and operations, few, also keep their sums in the catalog, updated with
// each count, so that their listings are quick. Attribute values, many,
// keep only a count per block (one map update per value met, the hot path
// of ingest) and the number of blocks that count them; a listing of a
// key's values sums its values' counts over the blocks. So the catalog
// follows eviction a block at a time: it holds what the blocks still held
// hold, and is empty when they are. Bounded: past the limits below, new
// services, operations and values are not listed (their spans are still
// stored and searchable).

const (
	maxCatalogNodes   = 50_000 // per tenant
	maxServices       = 1_000
	maxOpsPerService  = 1_000
	maxKeys           = 2_000
	maxValuesPerKey   = 100
	maxBlockStats     = 4_096 // per record block
	catNodeBytes      = 176   // a node, its map slots, its kids map header
	blockCountBytes   = 64    // a block count and its map slot
	blockValueBytes   = 24    // a block's value count: its map slot
	catalogValueBytes = 256   // the longest value text kept
)

// Catalog node kinds.
const (
	nodeService uint8 = iota
	nodeOp
	nodeKey
	nodeValue
)

// Attribute scopes.
const (
	ScopeSpan     = "span"
	ScopeResource = "resource"
)

type catNode struct {
	hash   uint64
	kind   uint8
	name   string
	sub    int32 // an operation's span kind, a value's type, a key's scope (0 span, 1 resource)
	spans  int64 // a service's or an operation's
	traces int64 // a service's: the traces with a span of it
	// blocks counts the record blocks that count a value. A key is listed
	// while it has values listed.
	blocks int32
	parent *catNode
	kids   map[uint64]*catNode // a service's operations, a key's values
	// capped says kids were refused for want of room.
	capped bool
}

type blockCount struct {
	node          *catNode
	spans, traces int64
}

type catalog struct {
	byHash   map[uint64]*catNode
	services map[uint64]*catNode
	keys     map[uint64]*catNode
	bytes    int64
}

func newCatalog() catalog {
	return catalog{byHash: make(map[uint64]*catNode), services: make(map[uint64]*catNode), keys: make(map[uint64]*catNode)}
}

// count adds spans (and traces) to the node with hash h, as counted in
// block b, making the node with mk when it is new; mk returns nil when
// the node is not to be listed, or another node to count on instead.
func (c *catalog) count(b *recBlock, h uint64, spans, traces int64, mk func() *catNode) {
	if bc := b.stats[h]; bc != nil {
		bc.spans += spans
		bc.traces += traces
		bc.node.spans += spans
		bc.node.traces += traces
		return
	}
	if len(b.stats) >= maxBlockStats {
		return
	}
	n := c.byHash[h]
	if n == nil {
		if n = mk(); n == nil {
			return
		}
		if n.hash != h {
			// Counted on another node (a value not listed, on its key):
			// the block counts it under that node's hash, once.
			c.count(b, n.hash, spans, traces, func() *catNode { return n })
			return
		}
	}
	b.stats[h] = &blockCount{node: n, spans: spans, traces: traces}
	c.bytes += blockCountBytes
	n.spans += spans
	n.traces += traces
}

// add makes a node under parent (nil: a service or a key), within the
// bounds; nil when there is no room.
func (c *catalog) add(h uint64, kind uint8, name string, sub int32, parent *catNode) *catNode {
	if len(c.byHash) >= maxCatalogNodes {
		return nil
	}
	switch {
	case parent != nil:
		limit := maxOpsPerService
		if kind == nodeValue {
			limit = maxValuesPerKey
		}
		if len(parent.kids) >= limit {
			parent.capped = true
			return nil
		}
	case kind == nodeService && len(c.services) >= maxServices, kind == nodeKey && len(c.keys) >= maxKeys:
		return nil
	}
	if len(name) > catalogValueBytes {
		name = name[:catalogValueBytes]
	}
	n := &catNode{hash: h, kind: kind, name: strings.Clone(name), sub: sub, parent: parent}
	switch {
	case parent != nil:
		if parent.kids == nil {
			parent.kids = make(map[uint64]*catNode)
		}
		parent.kids[h] = n
	case kind == nodeService:
		c.services[h] = n
	default:
		c.keys[h] = n
	}
	c.byHash[h] = n
	c.bytes += catNodeBytes + int64(len(n.name))
	return n
}

// countValue counts n more traces of block b with the value whose node
// hash is h; mk makes its node the first time the catalog meets it (nil:
// not listed). A value not listed is not counted at all: a key with more
// values than it lists (ids, paths) would otherwise cost each of them.
func (c *catalog) countValue(b *recBlock, h uint64, n int32, mk func() *catNode) {
	had := len(b.vals)
	b.vals[h] += n // one map update when the block has met the value before
	if len(b.vals) == had {
		return
	}
	var v *catNode
	if had < maxBlockStats {
		if v = c.byHash[h]; v == nil {
			v = mk()
		}
	}
	if v == nil {
		delete(b.vals, h) // not listed: not counted
		return
	}
	c.bytes += blockValueBytes
	v.blocks++
}

// forget takes back what block b counted, dropping the nodes left with
// nothing: children before their parents, as a block counts a parent
// whenever it counts a child.
func (c *catalog) forget(b *recBlock) {
	for _, bc := range b.stats {
		bc.node.spans -= bc.spans
		bc.node.traces -= bc.traces
	}
	var values []*catNode
	for h, n := range b.vals {
		if v := c.byHash[h]; v != nil && n > 0 {
			v.blocks--
			values = append(values, v)
		}
	}
	c.bytes -= int64(len(b.stats))*blockCountBytes + int64(len(b.vals))*blockValueBytes
	for _, bc := range b.stats {
		c.drop(bc.node)
	}
	for _, v := range values {
		c.drop(v)
	}
	b.stats, b.vals = nil, nil
}

// drop removes n when nothing counts it any more.
func (c *catalog) drop(n *catNode) {
	if n.spans > 0 || n.traces > 0 || n.blocks > 0 || len(n.kids) > 0 || c.byHash[n.hash] != n {
		return
	}
	delete(c.byHash, n.hash)
	c.bytes -= catNodeBytes + int64(len(n.name))
	switch {
	case n.parent != nil:
		delete(n.parent.kids, n.hash)
		n.parent.capped = false // room again: the next new value is listed
		c.drop(n.parent)
	case n.kind == nodeService:
		delete(c.services, n.hash)
	default:
		delete(c.keys, n.hash)
	}
}

// ServiceStat is one service of a tenant's traces.
type ServiceStat struct {
	Name       string
	SpanCount  int64
	TraceCount int64
}

// OperationStat is one operation (span name and kind) of a service.
type OperationStat struct {
	Name      string
	Kind      int32
	SpanCount int64
}

// KeyStat is one attribute key.
type KeyStat struct {
	Key   string
	Scope string // ScopeSpan or ScopeResource
	// Values counts its values listed; ValuesCapped says it has more
	// values than the catalog lists.
	Values       int
	ValuesCapped bool
}

// ValueStat is one value of an attribute key.
type ValueStat struct {
	Value string
	Type  string // string, int, double or bool
	// TraceCount counts the traces with a span (or resource) that carries it.
	TraceCount int64
}

// catalogOf runs fn with tenant's catalog read-locked; false when the
// tenant holds no trace.
func (s *Store) catalogOf(tenant string, fn func(*catalog)) bool {
	tn, ok := s.indexOf(tenant)
	if !ok {
		return false
	}
	tn.index.mu.RLock()
	defer tn.index.mu.RUnlock()
	fn(&tn.index.cat)
	return true
}

// Services lists tenant's services, by name.
func (s *Store) Services(tenant string) []ServiceStat {
	out := []ServiceStat{}
	s.catalogOf(tenant, func(c *catalog) {
		for _, n := range c.services {
			if n.spans > 0 {
				out = append(out, ServiceStat{Name: n.name, SpanCount: n.spans, TraceCount: n.traces})
			}
		}
	})
	slices.SortFunc(out, func(a, b ServiceStat) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Operations lists the operations of tenant's service, by name then kind;
// false when the service is not listed.
func (s *Store) Operations(tenant, service string) ([]OperationStat, bool) {
	out := []OperationStat{}
	found := false
	s.catalogOf(tenant, func(c *catalog) {
		n := c.services[s.terms.strAttr(serviceNameKey, service)]
		if n == nil || n.spans <= 0 {
			return
		}
		found = true
		for _, op := range n.kids {
			if op.spans > 0 {
				out = append(out, OperationStat{Name: op.name, Kind: op.sub, SpanCount: op.spans})
			}
		}
	})
	slices.SortFunc(out, func(a, b OperationStat) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
	return out, found
}

func scopeName(sub int32) string {
	if sub == 1 {
		return ScopeResource
	}
	return ScopeSpan
}

// AttributeKeys lists tenant's attribute keys, by key then scope.
func (s *Store) AttributeKeys(tenant string) []KeyStat {
	out := []KeyStat{}
	s.catalogOf(tenant, func(c *catalog) {
		for _, k := range c.keys {
			if len(k.kids) > 0 {
				out = append(out, KeyStat{Key: k.name, Scope: scopeName(k.sub), Values: len(k.kids), ValuesCapped: k.capped})
			}
		}
	})
	slices.SortFunc(out, func(a, b KeyStat) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Scope, b.Scope))
	})
	return out
}

// valueTypeNames name the types of listed values, numbered as pcommon's.
var valueTypeNames = [...]string{"empty", "string", "int", "double", "bool"}

func valueTypeName(t int32) string {
	if t < 0 || int(t) >= len(valueTypeNames) {
		return "other"
	}
	return valueTypeNames[t]
}

// AttributeValues lists the most frequent values of tenant's attribute
// key, in either scope, most frequent first, at most limit; false when
// the key is not listed.
func (s *Store) AttributeValues(tenant, key string, limit int) ([]ValueStat, bool) {
	out := []ValueStat{}
	found := false
	tn, ok := s.indexOf(tenant)
	if !ok {
		return out, false
	}
	x := tn.index
	x.mu.RLock()
	for scope := range int32(2) {
		k := x.cat.keys[s.keyHash(key, scope)]
		if k == nil {
			continue
		}
		found = true
		for _, v := range k.kids {
			var traces int64
			for _, b := range x.blocks {
				if b != nil {
					traces += int64(b.vals[v.hash])
				}
			}
			if traces == 0 {
				continue
			}
			i := slices.IndexFunc(out, func(o ValueStat) bool { return o.Value == v.name && o.Type == valueTypeName(v.sub) })
			if i >= 0 {
				out[i].TraceCount += traces
				continue
			}
			out = append(out, ValueStat{Value: v.name, Type: valueTypeName(v.sub), TraceCount: traces})
		}
	}
	x.mu.RUnlock()
	slices.SortFunc(out, func(a, b ValueStat) int {
		return cmp.Or(cmp.Compare(b.TraceCount, a.TraceCount), strings.Compare(a.Value, b.Value), strings.Compare(a.Type, b.Type))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, found
}

func (s *Store) keyHash(key string, scope int32) uint64 {
	return s.terms.str('k'+byte(scope), key, "")
}
