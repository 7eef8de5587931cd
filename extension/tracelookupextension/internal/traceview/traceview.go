// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package traceview assembles one stored trace for output: spans in order,
// parent/child links, roots, a summary and per-span self time. Every API
// contract maps this one model to its own JSON.
package traceview // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"

import (
	"bytes"
	"cmp"
	"slices"
	"unsafe"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// Trace status values.
const (
	StatusSuccess = "success"
	StatusError   = "error"
	StatusRunning = "running"
)

// Trace is one trace ready for output.
type Trace struct {
	ID [16]byte
	// Spans are sorted by start time, then span id.
	Spans []spancodec.Span
	// Roots are indexes into Spans: spans without a parent, spans whose parent
	// is not in the trace, and one span per parent-id cycle. Sorted as Spans.
	Roots []int
	// Children lists, per span index, the indexes of its children, sorted as Spans.
	Children [][]int

	// Root is the index of the span that names the trace: the earliest span
	// without a parent, else the earliest root; -1 for an empty trace.
	Root int
	// StartUnixNano and EndUnixNano are the earliest start and the latest end.
	StartUnixNano uint64
	EndUnixNano   uint64
	ErrorCount    int
	// Status is error when any span has status ERROR, else running while no
	// span without a parent has arrived, else success.
	Status string
	// FirstSeen and LastSeen are when the index first and last received a span (unix nanoseconds).
	FirstSeen int64
	LastSeen  int64
	// Truncated is set when the index dropped spans of this trace.
	Truncated bool
	// Hoisted counts the spans made roots because their depth in the tree
	// passed MaxTreeDepth; each keeps its parent_span_id.
	Hoisted int
	// Orphans counts the spans whose parent is not in the trace (yet).
	Orphans int
	// Partial, when set, says parts of the trace may be missing from it:
	// peer replicas that did not answer in time, a long-term store that
	// could not be read. The reader sets it; Build leaves it empty.
	Partial string
	// Unreadable counts the stored spans that could not be decoded; the
	// trace is served without them. UnreadableErr says why.
	Unreadable    int
	UnreadableErr error

	// Memory kept between uses when the trace came from Build.
	scratch spancodec.Scratch
	sorted  []spancodec.Span
	order   []int32
	byID    map[[8]byte]int
	parent  []int
	seen    []bool
	stack   []int
	mark    []int32
	levels  []int
	pooled  bool
}

// maxPooledBytes bounds what a pooled Trace keeps of one large trace.
const maxPooledBytes = 8 << 20

// traces recycles assembly memory between lookups, bounded in count and
// counted (see package pool).
var traces = pool.New(8, 2*maxPooledBytes,
	func() *Trace { return &Trace{byID: make(map[[8]byte]int)} },
	(*Trace).heldBytes)

// DefaultMaxTreeDepth is the deepest tree Build makes unless told otherwise.
// Each level of a tree is two levels of JSON (a span object and its
// children array), and attribute values may nest 64 more: Python's json
// refuses about 1,000 levels (its recursion limit), Go's encoding/json
// 10,000. 400 leaves both room.
const DefaultMaxTreeDepth = 400

// Build decodes and assembles a stored trace, and releases st's memory.
// Call Release when done with the result: its memory serves the next Build.
// Spans that cannot be decoded are left out and counted in Unreadable: one
// bad span never hides its trace. Spans deeper than maxTreeDepth levels are
// made roots (0 means DefaultMaxTreeDepth).
func Build(st store.Trace, maxTreeDepth int) *Trace {
	t := traces.Get()
	t.pooled = true
	spans, err := st.SpansInto(&t.scratch)
	st.Release()
	t.ID, t.Spans, t.FirstSeen, t.LastSeen, t.Truncated = st.ID, spans, st.FirstSeen, st.LastSeen, st.Truncated
	t.Unreadable, t.UnreadableErr = 0, err
	if err != nil {
		t.Unreadable = max(1, st.SpanCount-len(spans))
	}
	t.assemble()
	t.limitDepth(cmp.Or(maxTreeDepth, DefaultMaxTreeDepth))
	return t
}

// BuildAll is Build for a trace held in parts: what the index holds, and
// what peer replicas and a long-term store hold (see store.Import). Parts
// go newest data first: a span in more than one part (the same span id,
// parent and kind, as the store tells spans apart) is kept from the first.
// It releases every part's memory.
func BuildAll(parts []store.Trace, maxTreeDepth int) *Trace {
	if len(parts) == 1 {
		return Build(parts[0], maxTreeDepth)
	}
	t := traces.Get()
	t.pooled = true
	t.Spans, t.FirstSeen, t.LastSeen, t.Truncated, t.Unreadable, t.UnreadableErr = nil, 0, 0, false, 0, nil
	var spans []spancodec.Span
	for i, st := range parts {
		before := len(spans)
		var err error
		if i == 0 {
			t.ID = st.ID
			spans, err = st.SpansInto(&t.scratch)
		} else {
			spans, err = st.MoreSpansInto(&t.scratch)
		}
		st.Release()
		if err != nil {
			t.Unreadable += max(1, st.SpanCount-(len(spans)-before))
			t.UnreadableErr = cmp.Or(t.UnreadableErr, err)
		}
		if st.SpanCount > 0 {
			if t.FirstSeen == 0 || st.FirstSeen < t.FirstSeen {
				t.FirstSeen = st.FirstSeen
			}
			t.LastSeen = max(t.LastSeen, st.LastSeen)
		}
		t.Truncated = t.Truncated || st.Truncated
	}
	t.Spans = dedupe(spans)
	t.assemble()
	t.limitDepth(cmp.Or(maxTreeDepth, DefaultMaxTreeDepth))
	return t
}

// spanKey tells spans apart as the store does: the client and server
// halves of a Zipkin-style shared span (one id, two kinds) are two spans.
type spanKey struct {
	id, parent [8]byte
	kind       int32
}

// dedupe keeps the first of spans with the same key, in order.
func dedupe(spans []spancodec.Span) []spancodec.Span {
	seen := make(map[spanKey]struct{}, len(spans))
	out := spans[:0]
	for i := range spans {
		k := spanKey{spans[i].SpanID, spans[i].ParentSpanID, spans[i].Kind}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, spans[i])
	}
	return out
}

// Release returns a Build's memory for reuse; t and its spans must not be
// used after it.
func (t *Trace) Release() {
	if !t.pooled {
		return
	}
	t.scratch.Shrink(maxPooledBytes)
	if len(t.sorted) > maxPooledBytes/512 {
		t.sorted, t.order, t.parent, t.seen, t.Children, t.levels = nil, nil, nil, nil, nil, nil
		t.byID = make(map[[8]byte]int)
	}
	t.Spans, t.Roots, t.UnreadableErr, t.Partial = nil, t.Roots[:0], nil, ""
	traces.Put(t)
}

// heldBytes is the memory a pooled Trace keeps, by capacity.
func (t *Trace) heldBytes() int {
	const spanSize = int(unsafe.Sizeof(spancodec.Span{}))
	n := t.scratch.Bytes() + spanSize*cap(t.sorted) + 4*cap(t.order) + 8*cap(t.parent) + cap(t.seen) + 8*cap(t.stack) + 4*cap(t.mark) + 8*cap(t.levels)
	n += 24*cap(t.Children) + 8*cap(t.Roots) + 24*len(t.byID)
	for _, c := range t.Children {
		n += 8 * cap(c)
	}
	return n
}

// FromSpans assembles a trace from decoded spans; the caller sets the index times.
func FromSpans(id [16]byte, spans []spancodec.Span, maxTreeDepth int) *Trace {
	t := &Trace{ID: id, Spans: spans, byID: make(map[[8]byte]int)}
	t.assemble()
	t.limitDepth(cmp.Or(maxTreeDepth, DefaultMaxTreeDepth))
	return t
}

// limitDepth makes roots of the spans more than max levels deep (a root is
// level 1), so that no subtree nests deeper: the children of a span at the
// last level leave it and become roots, keeping their parent_span_id.
func (t *Trace) limitDepth(maxLevels int) {
	t.Hoisted = 0
	t.levels = reuse(t.levels, len(t.Spans))
	level := t.levels
	stack := t.stack[:0]
	defer func() { t.stack = stack[:0] }()
	for _, r := range t.Roots {
		level[r] = 1
		stack = append(stack, r)
	}
	hoisted := false
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids := t.Children[i]
		if len(kids) == 0 {
			continue
		}
		next := level[i] + 1
		if next > maxLevels {
			t.Roots = append(t.Roots, kids...)
			t.Hoisted += len(kids)
			t.Children[i] = kids[:0]
			hoisted = true
			next = 1
		}
		for _, c := range kids {
			level[c] = next
			stack = append(stack, c)
		}
	}
	if hoisted {
		slices.Sort(t.Roots)
	}
}

func compareSpans(a, b *spancodec.Span) int {
	if c := cmp.Compare(a.StartUnixNano, b.StartUnixNano); c != 0 {
		return c
	}
	return bytes.Compare(a.SpanID[:], b.SpanID[:])
}

func (t *Trace) assemble() {
	t.sortSpans()
	n := len(t.Spans)
	t.Children = reuse(t.Children, n)
	for i := range t.Children {
		t.Children[i] = t.Children[i][:0]
	}
	t.Roots = t.Roots[:0]
	t.Root = -1
	t.Status = StatusRunning
	t.StartUnixNano, t.EndUnixNano, t.ErrorCount, t.Orphans = 0, 0, 0, 0
	byID := t.byID
	clear(byID)
	for i := range t.Spans {
		byID[t.Spans[i].SpanID] = i
	}
	t.parent = reuse(t.parent, n)
	parent := t.parent
	hasParentless := false
	for i := range t.Spans {
		s := &t.Spans[i]
		if i == 0 || s.StartUnixNano < t.StartUnixNano {
			t.StartUnixNano = s.StartUnixNano
		}
		t.EndUnixNano = max(t.EndUnixNano, s.EndUnixNano)
		if s.StatusCode == spancodec.StatusError {
			t.ErrorCount++
		}
		parent[i] = -1
		if !s.HasParent() {
			hasParentless = true
			if t.Root < 0 || t.Spans[t.Root].HasParent() {
				t.Root = i
			}
		} else if p, ok := byID[s.ParentSpanID]; ok && p != i {
			parent[i] = p
			t.Children[p] = append(t.Children[p], i) // i ascends, so children stay sorted
		} else if !ok {
			t.Orphans++
		}
		if parent[i] < 0 {
			t.Roots = append(t.Roots, i)
		}
	}
	t.breakCycles(parent)
	if t.Root < 0 && len(t.Roots) > 0 {
		t.Root = t.Roots[0]
	}
	switch {
	case t.ErrorCount > 0:
		t.Status = StatusError
	case hasParentless:
		t.Status = StatusSuccess
	}
}

// reuse returns s with length n, reusing its memory when it is large enough.
func reuse[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// sortSpans orders the spans by start time, then span id. It sorts indexes
// and moves each span once: spans are large, and swapping them costs more.
func (t *Trace) sortSpans() {
	if slices.IsSortedFunc(t.Spans, func(a, b spancodec.Span) int { return compareSpans(&a, &b) }) {
		return
	}
	t.order = reuse(t.order, len(t.Spans))
	order := t.order
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareSpans(&t.Spans[a], &t.Spans[b]) })
	t.sorted = reuse(t.sorted, len(t.Spans))
	for i, o := range order {
		t.sorted[i] = t.Spans[o]
	}
	t.Spans = t.sorted
}

// breakCycles makes every span reachable from a root. Spans on a parent-id
// cycle reach no root; the earliest of each cycle becomes a root (it keeps its
// parent_span_id) and leaves its parent's children.
func (t *Trace) breakCycles(parent []int) {
	t.seen = reuse(t.seen, len(t.Spans))
	seen := t.seen
	clear(seen)
	stack := t.stack[:0]
	defer func() { t.stack = stack[:0] }()
	visit := func(root int) {
		stack = append(stack[:0], root)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[i] {
				continue
			}
			seen[i] = true
			stack = append(stack, t.Children[i]...)
		}
	}
	for _, r := range t.Roots {
		visit(r)
	}
	// A span not reached from a root is in a parent-id cycle or below one.
	// Walk up from it to the cycle, and make the cycle's earliest span a
	// root: everything below the cycle then hangs from it again, and a span
	// whose parent is in the trace stays under that parent.
	t.mark = reuse(t.mark, len(t.Spans))
	mark := t.mark
	clear(mark)
	added := false
	for i := range t.Spans {
		if seen[i] {
			continue
		}
		stamp := int32(i + 1)
		j := i
		for mark[j] != stamp {
			mark[j] = stamp
			j = parent[j] // never -1: every root was visited
		}
		first := j
		for k := parent[j]; k != j; k = parent[k] {
			first = min(first, k)
		}
		p := parent[first]
		t.Children[p] = slices.DeleteFunc(t.Children[p], func(c int) bool { return c == first })
		parent[first] = -1
		t.Roots = append(t.Roots, first)
		added = true
		visit(first)
	}
	if added {
		slices.Sort(t.Roots)
	}
}

// SelfTime is the span's duration minus the union of its children's
// intervals, each clipped to the span.
func (t *Trace) SelfTime(i int) uint64 {
	s := &t.Spans[i]
	if s.EndUnixNano <= s.StartUnixNano {
		return 0
	}
	self := s.EndUnixNano - s.StartUnixNano
	// Children are sorted by start, so one sweep merges overlapping intervals.
	var curStart, curEnd uint64
	open := false
	for _, c := range t.Children[i] {
		cs := max(t.Spans[c].StartUnixNano, s.StartUnixNano)
		ce := min(t.Spans[c].EndUnixNano, s.EndUnixNano)
		if ce <= cs {
			continue
		}
		if open && cs <= curEnd {
			curEnd = max(curEnd, ce)
			continue
		}
		if open {
			self -= curEnd - curStart
		}
		curStart, curEnd, open = cs, ce, true
	}
	if open {
		self -= curEnd - curStart
	}
	return self
}

// RootSpan returns the span that names the trace, or nil.
func (t *Trace) RootSpan() *spancodec.Span {
	if t.Root < 0 {
		return nil
	}
	return &t.Spans[t.Root]
}

// DurationNanos is the time from the earliest start to the latest end.
func (t *Trace) DurationNanos() uint64 {
	if t.EndUnixNano < t.StartUnixNano {
		return 0
	}
	return t.EndUnixNano - t.StartUnixNano
}
