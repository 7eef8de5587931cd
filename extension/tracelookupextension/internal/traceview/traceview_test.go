// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package traceview

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

var res = &spancodec.Resource{Attributes: []spancodec.KeyValue{{Key: "service.name", Value: spancodec.StrValue("svc")}}}

func sp(id, parent byte, start, end uint64) spancodec.Span {
	s := spancodec.Span{SpanID: [8]byte{7: id}, StartUnixNano: start, EndUnixNano: end, Name: string('a' + rune(id)), Resource: res}
	if parent != 0 {
		s.ParentSpanID = [8]byte{7: parent}
	}
	return s
}

// ids returns the last byte of the span ids at idx.
func ids(t *Trace, idx []int) []byte {
	out := []byte{}
	for _, i := range idx {
		out = append(out, t.Spans[i].SpanID[7])
	}
	return out
}

func child(t *Trace, id byte) []byte {
	for i := range t.Spans {
		if t.Spans[i].SpanID[7] == id {
			return ids(t, t.Children[i])
		}
	}
	return nil
}

func TestTreeOrderAndOrphans(t *testing.T) {
	tr := FromSpans([16]byte{1}, []spancodec.Span{
		sp(3, 1, 30, 40),
		sp(2, 1, 10, 20),
		sp(1, 0, 0, 100),
		sp(4, 9, 5, 6), // parent 9 never arrived
		sp(5, 2, 12, 13),
		sp(6, 1, 10, 15), // same start as 2: span id breaks the tie
	}, 0)
	assert.Equal(t, []byte{1, 4, 2, 6, 5, 3}, ids(tr, seq(len(tr.Spans))), "sorted by start, then span id")
	assert.Equal(t, []byte{1, 4}, ids(tr, tr.Roots))
	assert.Equal(t, []byte{2, 6, 3}, child(tr, 1))
	assert.Equal(t, []byte{5}, child(tr, 2))
	assert.Equal(t, "b", tr.RootSpan().Name)
	assert.True(t, tr.Spans[1].HasParent(), "an orphan root keeps its parent id")
	assert.Equal(t, uint64(0), tr.StartUnixNano)
	assert.Equal(t, uint64(100), tr.EndUnixNano)
	assert.Equal(t, StatusSuccess, tr.Status)
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestCyclesAndSelfParents(t *testing.T) {
	tr := FromSpans([16]byte{1}, []spancodec.Span{
		sp(1, 2, 10, 20), // 1 -> 2 -> 3 -> 1
		sp(2, 3, 20, 30),
		sp(3, 1, 30, 40),
		sp(4, 4, 5, 50), // its own parent
		sp(5, 4, 6, 7),
	}, 0)
	assert.Len(t, tr.Spans, 5)
	assert.Equal(t, []byte{4, 1}, ids(tr, tr.Roots))
	assert.Equal(t, []byte{5}, child(tr, 4))
	assert.Equal(t, []byte{3}, child(tr, 1))
	assert.Equal(t, []byte{2}, child(tr, 3))
	assert.Empty(t, child(tr, 2))
	assert.Equal(t, StatusRunning, tr.Status, "no span without a parent has arrived")
	assert.Equal(t, "e", tr.RootSpan().Name, "with no parentless span the earliest root names the trace")
	// Every span appears exactly once in the tree.
	seen := map[int]int{}
	var walk func(i int)
	walk = func(i int) {
		seen[i]++
		for _, c := range tr.Children[i] {
			walk(c)
		}
	}
	for _, r := range tr.Roots {
		walk(r)
	}
	assert.Len(t, seen, 5)
	for _, n := range seen {
		assert.Equal(t, 1, n)
	}
}

func TestStatus(t *testing.T) {
	errSpan := sp(2, 1, 1, 2)
	errSpan.StatusCode = spancodec.StatusError
	tr := FromSpans([16]byte{1}, []spancodec.Span{sp(1, 0, 0, 10), errSpan}, 0)
	assert.Equal(t, StatusError, tr.Status)
	assert.Equal(t, 1, tr.ErrorCount)

	tr = FromSpans([16]byte{1}, []spancodec.Span{errSpan}, 0)
	assert.Equal(t, StatusError, tr.Status, "error wins over running")

	tr = FromSpans([16]byte{1}, nil, 0)
	assert.Equal(t, StatusRunning, tr.Status)
	assert.Nil(t, tr.RootSpan())
	assert.Equal(t, uint64(0), tr.DurationNanos())
}

func TestSelfTime(t *testing.T) {
	tr := FromSpans([16]byte{1}, []spancodec.Span{
		sp(1, 0, 100, 200),
		sp(2, 1, 90, 120),  // clipped to [100,120]
		sp(3, 1, 110, 130), // overlaps 2: union [100,130]
		sp(4, 1, 150, 160),
		sp(5, 1, 190, 250), // clipped to [190,200]
		sp(6, 4, 150, 160), // grandchild: does not count for 1
		sp(7, 1, 300, 400), // outside the parent entirely
	}, 0)
	find := func(id byte) int {
		for i := range tr.Spans {
			if tr.Spans[i].SpanID[7] == id {
				return i
			}
		}
		require.FailNow(t, "no span")
		return -1
	}
	assert.Equal(t, uint64(100-30-10-10), tr.SelfTime(find(1)))
	assert.Equal(t, uint64(0), tr.SelfTime(find(4)))
	assert.Equal(t, uint64(30), tr.SelfTime(find(2)))
	neg := FromSpans([16]byte{1}, []spancodec.Span{sp(1, 0, 10, 5)}, 0)
	assert.Equal(t, uint64(0), neg.SelfTime(0))
}

// Regression: the cycle breaker made the earliest unreached span a root, even
// when that span hangs below a cycle and its parent is in the trace.
func TestCycleWithAnEarlyDescendant(t *testing.T) {
	tr := FromSpans([16]byte{1}, []spancodec.Span{
		sp(1, 2, 20, 40), // 1 <-> 2
		sp(2, 1, 30, 35),
		sp(3, 1, 5, 10), // below the cycle, and earlier than all of it
		sp(4, 3, 6, 7),
	}, 0)
	assert.Equal(t, []byte{1}, ids(tr, tr.Roots), "the cycle's earliest span is the only root")
	assert.Equal(t, []byte{3, 2}, child(tr, 1), "the early descendant stays under its parent")
	assert.Equal(t, []byte{4}, child(tr, 3))
	assert.True(t, tr.Spans[2].HasParent(), "the broken link keeps its parent id")
}

// A parent chain deeper than the limit is cut into subtrees no deeper than
// it: each cut span becomes a root and keeps its parent id.
func TestTreeDepthLimited(t *testing.T) {
	const n, limit = 10, 3
	spans := make([]spancodec.Span, n)
	for i := range spans {
		spans[i] = sp(byte(i+1), byte(i), uint64(i), 100) // span i+1's parent is span i
	}
	tr := FromSpans([16]byte{1}, spans, limit)
	assert.Equal(t, []int{0, 3, 6, 9}, tr.Roots)
	assert.Equal(t, 3, tr.Hoisted)
	for _, r := range tr.Roots[1:] {
		assert.True(t, tr.Spans[r].HasParent(), "a hoisted span keeps its parent id")
	}
	depth := func(root int) int {
		d := 0
		for i := root; ; i = tr.Children[i][0] {
			d++
			if len(tr.Children[i]) == 0 {
				return d
			}
		}
	}
	assert.Equal(t, 3, depth(0))
	assert.Equal(t, 1, depth(9))

	tr = FromSpans([16]byte{1}, spans, 0)
	assert.Equal(t, []int{0}, tr.Roots, "the default limit is far above ten levels")
	assert.Zero(t, tr.Hoisted)
}
