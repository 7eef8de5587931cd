// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"hash/maphash"
	"slices"
	"sync"
)

const callShards = 16

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

// add and remove run under the lock of the trace's shard (see ingestTrace).
func (c *callIndex) add(callID string, ref traceRef) {
	sh := &c.shards[c.shard(callID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	refs := sh.m[callID]
	if !slices.Contains(refs, ref) {
		sh.m[callID] = append(refs, ref)
	}
}

func (c *callIndex) remove(callID string, ref traceRef) {
	sh := &c.shards[c.shard(callID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	refs := slices.DeleteFunc(sh.m[callID], func(r traceRef) bool { return r == ref })
	if len(refs) == 0 {
		delete(sh.m, callID)
	} else {
		sh.m[callID] = refs
	}
}

// size is how many call ids are indexed.
func (c *callIndex) size() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func (c *callIndex) get(callID string) []traceRef {
	sh := &c.shards[c.shard(callID)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return slices.Clone(sh.m[callID])
}
