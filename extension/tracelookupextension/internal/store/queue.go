// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"sync"
	"sync/atomic"
)

// queueEntryBytes is the size of one newTrace in the ring.
const queueEntryBytes = 40

// evictionQueue holds every stored trace in first-seen order, so eviction
// pops the oldest in O(1). Every removal from the store goes through it.
type evictionQueue struct {
	mu       sync.Mutex
	ring     []newTrace
	head     int
	n        int
	capBytes atomic.Int64
}

func (q *evictionQueue) push(entries []newTrace) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range entries {
		if q.n == len(q.ring) {
			q.grow()
		}
		q.ring[(q.head+q.n)%len(q.ring)] = e
		q.n++
	}
}

func (q *evictionQueue) grow() {
	next := make([]newTrace, max(64, 2*len(q.ring)))
	for i := 0; i < q.n; i++ {
		next[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = next, 0
	q.capBytes.Store(int64(len(next)) * queueEntryBytes)
}

// pop removes the oldest entry; with onlyBefore set, only if it was first seen before cutoff.
func (q *evictionQueue) pop(onlyBefore bool, cutoff int64) (newTrace, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return newTrace{}, false
	}
	e := q.ring[q.head]
	if onlyBefore && e.firstSeen >= cutoff {
		return newTrace{}, false
	}
	q.ring[q.head] = newTrace{}
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if q.n == 0 && len(q.ring) > 1024 {
		// Give back a ring that a burst grew.
		q.ring, q.head = nil, 0
		q.capBytes.Store(0)
	}
	return e, true
}

// oldest returns the first-seen time of the oldest entry.
func (q *evictionQueue) oldest() (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, false
	}
	return q.ring[q.head].firstSeen, true
}

// bytes is the heap the ring holds.
func (q *evictionQueue) bytes() int64 { return q.capBytes.Load() }
