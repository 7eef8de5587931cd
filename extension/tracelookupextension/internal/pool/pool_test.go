// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package pool

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPoolIsBoundedAndCounted(t *testing.T) {
	base := HeldBytes()
	p := New(2, 100, func() *[]byte { b := make([]byte, 0, 10); return &b }, func(b *[]byte) int { return cap(*b) })
	a, b, c := p.Get(), p.Get(), p.Get()
	big := make([]byte, 0, 101)
	p.Put(&big)
	assert.Equal(t, base, HeldBytes(), "an item over the size limit is not kept")
	p.Put(a)
	p.Put(b)
	p.Put(c)
	assert.Equal(t, base+20, HeldBytes(), "two items kept, the third dropped")
	got := p.Get()
	assert.Same(t, a, got)
	assert.Equal(t, base+10, HeldBytes())
	p.Get()
	assert.Equal(t, base, HeldBytes())
	assert.NotNil(t, p.Get(), "an empty pool makes a new item")
}
