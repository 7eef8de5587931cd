// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"cmp"
	"slices"
	"strings"
)

// The catalog lists the services of a tenant's traces, with their span
// and trace counts, and each service's operations (name and kind) with
// their span counts. Counts live in the record block (see recBlock) of
// the traces that brought them, and their sums in the catalog; when a
// block's last trace leaves, its counts are taken back. So the catalog
// follows eviction a block at a time: it holds what the blocks still held
// hold, and is empty when they are. Bounded: past the limits below, new
// services and operations are not listed (their spans are still stored
// and searchable). Attribute keys and values are not kept here: they are
// read from the newest traces when asked for (see package search), which
// costs ingest nothing.

const (
	maxCatalogNodes  = 50_000 // per tenant
	maxServices      = 1_000
	maxOpsPerService = 1_000
	maxBlockStats    = 4_096 // per record block
	catNodeBytes     = 176   // a node, its map slots, its kids map header
	blockCountBytes  = 64    // a block count and its map slot
)

// Catalog node kinds.
const (
	nodeService uint8 = iota
	nodeOp
)

type catNode struct {
	hash   uint64
	kind   uint8
	name   string
	sub    int32 // an operation's span kind
	spans  int64 // a service's or an operation's
	traces int64 // a service's: the traces with a span of it
	parent *catNode
	kids   map[uint64]*catNode // a service's operations
}

type blockCount struct {
	node          *catNode
	spans, traces int64
}

type catalog struct {
	byHash   map[uint64]*catNode
	services map[uint64]*catNode
	bytes    int64
}

func newCatalog() catalog {
	return catalog{byHash: make(map[uint64]*catNode), services: make(map[uint64]*catNode)}
}

// count adds spans (and traces) to the node with hash h, as counted in
// block b, making the node with mk when it is new; mk returns nil when
// the node is not to be listed.
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
	}
	b.stats[h] = &blockCount{node: n, spans: spans, traces: traces}
	c.bytes += blockCountBytes
	n.spans += spans
	n.traces += traces
}

// add makes a node under parent (nil: a service), within the bounds; nil
// when there is no room.
func (c *catalog) add(h uint64, kind uint8, name string, sub int32, parent *catNode) *catNode {
	if len(c.byHash) >= maxCatalogNodes {
		return nil
	}
	switch {
	case parent != nil:
		if len(parent.kids) >= maxOpsPerService {
			return nil
		}
	case len(c.services) >= maxServices:
		return nil
	}
	n := &catNode{hash: h, kind: kind, name: strings.Clone(name), sub: sub, parent: parent}
	switch {
	case parent != nil:
		if parent.kids == nil {
			parent.kids = make(map[uint64]*catNode)
		}
		parent.kids[h] = n
	default:
		c.services[h] = n
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
		c.drop(n.parent)
	default:
		delete(c.services, n.hash)
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
