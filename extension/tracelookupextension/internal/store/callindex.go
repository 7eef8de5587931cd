// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"hash/maphash"
	"slices"
	"sync"
)

const callShards = 16

type traceRef struct {
	id  [16]byte
	seq uint64
}

// callIndex maps a call id to the traces that carry it. Entries leave with
// their trace on eviction.
type callIndex struct {
	seed   maphash.Seed
	shards [callShards]struct {
		mu sync.RWMutex
		m  map[string][]traceRef
	}
}

func (c *callIndex) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[string][]traceRef)
	}
}

func (c *callIndex) shard(callID string) int {
	return int(maphash.String(c.seed, callID) % callShards)
}

func (c *callIndex) add(ref callRef) {
	sh := &c.shards[c.shard(ref.callID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	refs := sh.m[ref.callID]
	if !slices.Contains(refs, traceRef{ref.id, ref.seq}) {
		sh.m[ref.callID] = append(refs, traceRef{ref.id, ref.seq})
	}
}

func (c *callIndex) remove(ref callRef) {
	sh := &c.shards[c.shard(ref.callID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	refs := slices.DeleteFunc(sh.m[ref.callID], func(r traceRef) bool { return r.id == ref.id && r.seq == ref.seq })
	if len(refs) == 0 {
		delete(sh.m, ref.callID)
	} else {
		sh.m[ref.callID] = refs
	}
}

func (c *callIndex) get(callID string) []traceRef {
	sh := &c.shards[c.shard(callID)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return slices.Clone(sh.m[callID])
}
