// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"cmp"
	"slices"
	"strings"
)

// The catalog lists what a tenant's traces hold: services with their span
// and trace counts, each service's operations (name and kind), and
// attribute keys (span and resource scopes) with their most frequent
// values. Each count is kept twice: in the catalog, and in the record
// block (see recBlock) of the trace that brought it; when a block's last
// trace leaves, the block's counts are taken back. So the catalog follows
// eviction a block at a time: it holds what the blocks still held hold,
// and is empty when they are. Bounded: past the limits below, new
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
	spans  int64
	traces int64 // services: the traces with a span of it
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

// forget takes back what block b counted, dropping the nodes left with
// nothing: children before their parents, as a block counts a parent
// whenever it counts a child.
func (c *catalog) forget(b *recBlock) {
	for _, bc := range b.stats {
		bc.node.spans -= bc.spans
		bc.node.traces -= bc.traces
	}
	c.bytes -= int64(len(b.stats)) * blockCountBytes
	for _, bc := range b.stats {
		c.drop(bc.node)
	}
	b.stats = nil
}

// drop removes n when nothing counts it any more.
func (c *catalog) drop(n *catNode) {
	if n.spans > 0 || n.traces > 0 || len(n.kids) > 0 || c.byHash[n.hash] != n {
		return
	}
	delete(c.byHash, n.hash)
	c.bytes -= catNodeBytes + int64(len(n.name))
	switch {
	case n.parent != nil:
		delete(n.parent.kids, n.hash)
		n.parent.capped = n.parent.capped && len(n.parent.kids) > 0
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
	// SpanCount counts the spans with the key, Values its values listed;
	// ValuesCapped says it has more values than the catalog lists.
	SpanCount    int64
	Values       int
	ValuesCapped bool
}

// ValueStat is one value of an attribute key.
type ValueStat struct {
	Value     string
	Type      string // string, int, double or bool
	SpanCount int64
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
		n := c.services[s.terms.str(termAttr, serviceNameKey, service)]
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
			st := KeyStat{Key: k.name, Scope: scopeName(k.sub), SpanCount: k.spans, Values: len(k.kids), ValuesCapped: k.capped}
			for _, v := range k.kids {
				st.SpanCount += v.spans
			}
			if st.SpanCount > 0 {
				out = append(out, st)
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
	s.catalogOf(tenant, func(c *catalog) {
		for scope := range int32(2) {
			k := c.keys[s.keyHash(key, scope)]
			if k == nil {
				continue
			}
			found = true
			for _, v := range k.kids {
				if v.spans <= 0 {
					continue
				}
				i := slices.IndexFunc(out, func(o ValueStat) bool { return o.Value == v.name && o.Type == valueTypeName(v.sub) })
				if i >= 0 {
					out[i].SpanCount += v.spans
					continue
				}
				out = append(out, ValueStat{Value: v.name, Type: valueTypeName(v.sub), SpanCount: v.spans})
			}
		}
	})
	slices.SortFunc(out, func(a, b ValueStat) int {
		return cmp.Or(cmp.Compare(b.SpanCount, a.SpanCount), strings.Compare(a.Value, b.Value), strings.Compare(a.Type, b.Type))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, found
}

func (s *Store) keyHash(key string, scope int32) uint64 {
	return s.terms.str('k'+byte(scope), key, "")
}
