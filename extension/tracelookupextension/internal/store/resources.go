// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"slices"
	"sync"
	"sync/atomic"
)

// resourceOverhead is what one table entry costs besides its body: the
// entry, its two map slots and the key string's header.
const resourceOverhead = 128

// resource is one distinct resource-and-scope body. Every chunk that holds
// blocks naming it, and every batch being ingested with it, holds a reference.
type resource struct {
	id   uint32
	body []byte
	refs atomic.Int32
}

// resources keeps each distinct resource body once for the whole store, so
// a trace's records name their resource by id instead of repeating it.
type resources struct {
	mu    sync.RWMutex
	byKey map[string]*resource
	byID  map[uint32]*resource
	next  uint32
	bytes atomic.Int64
}

func newResources() *resources {
	return &resources{byKey: make(map[string]*resource), byID: make(map[uint32]*resource)}
}

// acquire returns the entry for body with one more reference, adding it if new.
func (t *resources) acquire(body []byte) *resource {
	t.mu.RLock()
	r := t.byKey[string(body)]
	if r != nil {
		r.refs.Add(1) // under the read lock: release cannot delete it meanwhile
	}
	t.mu.RUnlock()
	if r != nil {
		return r
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r = t.byKey[string(body)]; r == nil {
		// Ids wrap after 2^32 resources have come and gone: skip the ones
		// still held, so that no two live resources ever share one.
		for t.next++; t.next == 0 || t.byID[t.next] != nil; t.next++ {
		}
		r = &resource{id: t.next, body: slices.Clone(body)}
		t.byKey[string(r.body)] = r
		t.byID[r.id] = r
		t.bytes.Add(int64(len(r.body)) + resourceOverhead)
	}
	r.refs.Add(1)
	return r
}

// release drops one reference, removing the entry with its last one.
func (t *resources) release(r *resource) {
	if r.refs.Add(-1) > 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.refs.Load() == 0 && t.byID[r.id] == r {
		delete(t.byID, r.id)
		delete(t.byKey, string(r.body))
		t.bytes.Add(-int64(len(r.body)) - resourceOverhead)
	}
}

// count is how many distinct resources are held.
func (t *resources) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byID)
}

// resolver finds bodies among the resources a trace's chunks hold. The
// decoder asks once per distinct resource of the trace.
func resolver(held []*resource) func(uint32) []byte {
	if len(held) > 32 {
		byID := make(map[uint32][]byte, len(held))
		for _, r := range held {
			byID[r.id] = r.body
		}
		return func(id uint32) []byte { return byID[id] }
	}
	return func(id uint32) []byte {
		for _, r := range held {
			if r.id == id {
				return r.body
			}
		}
		return nil
	}
}
