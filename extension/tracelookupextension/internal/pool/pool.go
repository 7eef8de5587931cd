// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package pool keeps reusable memory bounded: a pool holds at most a fixed
// number of items, none larger than a fixed size, and every pool counts the
// bytes it holds, so that the index's memory figure includes them.
// sync.Pool bounds neither, and a burst of large lookups would leave its
// buffers behind until the collector's next two cycles.
package pool // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"

import "sync/atomic"

// held is the bytes held by every pool of the process.
var held atomic.Int64

// HeldBytes is the memory every pool holds now.
func HeldBytes() int64 { return held.Load() }

// Pool is a bounded free list of T. The zero value is not usable; see New.
type Pool[T any] struct {
	items   chan T
	newItem func() T
	size    func(T) int
	maxSize int
}

// New returns a pool of at most count items, each at most maxSize bytes as
// size measures them; newItem makes one when the pool is empty.
func New[T any](count, maxSize int, newItem func() T, size func(T) int) *Pool[T] {
	return &Pool[T]{items: make(chan T, count), newItem: newItem, size: size, maxSize: maxSize}
}

// Get returns a pooled item, or a new one.
func (p *Pool[T]) Get() T {
	select {
	case it := <-p.items:
		held.Add(-int64(p.size(it)))
		return it
	default:
		return p.newItem()
	}
}

// Put offers it back; an item too large, or one more than the pool keeps, is
// left to the garbage collector.
func (p *Pool[T]) Put(it T) {
	n := p.size(it)
	if n > p.maxSize {
		return
	}
	select {
	case p.items <- it:
		held.Add(int64(n))
	default:
	}
}
