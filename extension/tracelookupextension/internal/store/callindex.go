// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"hash/maphash"
	"slices"
	"sync"
)

const callShards = 16

// callIndexEntry is what one indexed call id costs: its map slot, as
// measured with the maps' growth and compaction (see compactAfter).
const callIndexEntry = 64

// callIndex maps a call id to the traces that carry it. It is keyed by a
// 64-bit hash of the call id, so it holds no strings and no pointers, and
// the garbage collector has nothing to scan in it; two call ids that share
// a hash (one chance in 2^64 for a pair) would answer for each other.
// Entries join and leave under the lock of their trace's shard, with the
// trace (see ingestTrace and evict).
type callIndex struct {
	seed   maphash.Seed
	shards [callShards]struct {
		mu sync.RWMutex
		// one holds the first trace of each call id; more the rest, rare.
		one     map[uint64]traceRef
		more    map[uint64][]traceRef
		deletes int // from one since it was built (see compactAfter)
	}
}

func (c *callIndex) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].one = make(map[uint64]traceRef)
		c.shards[i].more = make(map[uint64][]traceRef)
	}
}

func (c *callIndex) hash(callID string) uint64 { return maphash.String(c.seed, callID) }

// add indexes ref under h and reports whether it is new.
func (c *callIndex) add(h uint64, ref traceRef) bool {
	sh := &c.shards[h%callShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	first, ok := sh.one[h]
	switch {
	case !ok:
		sh.one[h] = ref
	case first == ref || slices.Contains(sh.more[h], ref):
		return false
	default:
		sh.more[h] = append(sh.more[h], ref)
	}
	return true
}

func (c *callIndex) remove(h uint64, ref traceRef) {
	sh := &c.shards[h%callShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	first, ok := sh.one[h]
	if !ok {
		return
	}
	more := sh.more[h]
	if first == ref {
		if len(more) == 0 {
			delete(sh.one, h)
			if sh.deletes++; compactAfter(sh.deletes, len(sh.one)) {
				sh.one = rebuilt(sh.one)
				sh.deletes = 0
			}
			return
		}
		sh.one[h], more = more[len(more)-1], more[:len(more)-1]
	} else {
		more = slices.DeleteFunc(more, func(r traceRef) bool { return r == ref })
	}
	if len(more) == 0 {
		delete(sh.more, h)
	} else {
		sh.more[h] = more
	}
}

func (c *callIndex) get(callID string) []traceRef {
	h := c.hash(callID)
	sh := &c.shards[h%callShards]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	first, ok := sh.one[h]
	if !ok {
		return nil
	}
	return append([]traceRef{first}, sh.more[h]...)
}

// size is how many call ids are indexed.
func (c *callIndex) size() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.one)
		sh.mu.RUnlock()
	}
	return n
}
