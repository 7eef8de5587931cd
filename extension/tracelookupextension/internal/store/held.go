// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"cmp"
	"math"
	"slices"
)

// heldRef names one stored trace and when it was first seen: 24 bytes a
// trace, so listing a full index costs little next to what it holds.
type heldRef struct {
	ref   traceRef
	first int64
}

// Each calls fn with every trace the store holds, copied out as Fetch
// copies it, oldest first seen first, until fn returns false; fn releases
// each. A trace that leaves the store in between is skipped, and one that
// arrives in between is not listed.
func (s *Store) Each(fn func(Trace) bool) {
	var refs []heldRef
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		refs = slices.Grow(refs, sh.count)
		for low, head := range sh.traces {
			for ref := head; ref != 0; {
				e := sh.entries.at(ref)
				refs = append(refs, heldRef{ref: traceRef{low: low, seq: e.seq}, first: e.firstSeen})
				ref = e.next
			}
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(refs, func(a, b heldRef) int {
		return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.ref.seq, b.ref.seq))
	})
	for _, h := range refs {
		t, ok := s.Fetch(Found{ref: h.ref, BlockBytes: math.MaxInt})
		if !ok {
			continue
		}
		if !fn(t) {
			return
		}
	}
}
