// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"net/http"
	"slices"
	"strings"
	"unsafe"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Every contract renders a trace the same way: a head, the spans (flat, or
// as a tree whose span objects hold their children), and a tail. A response
// that fits in fastResponseBytes is rendered whole and sent with its length.
// A larger one is measured first, span by span, so that what is cut to fit
// max_response_spans and max_response_bytes is known before the first byte
// goes out (the head carries the flags), then written as it renders, a
// chunk at a time: its memory stays flat however large the trace.

// view is one contract's JSON layout of a trace.
type view interface {
	// head appends everything before the first span.
	head(b []byte, t *traceview.Trace, c *cut) []byte
	// span appends span i's own fields. In a tree, it ends inside the span's
	// open children array, which the renderer fills and closes with "]}".
	span(b []byte, t *traceview.Trace, i int) []byte
	// tail appends everything after the last span.
	tail(b []byte, t *traceview.Trace, c *cut) []byte
	// tree says whether spans nest under their parents.
	tree() bool
	// needsASpan says whether a response of none of a trace's spans is an
	// error (413) rather than an empty, flagged answer.
	needsASpan() bool
	// workBytes is what rendering f allocates besides the response itself.
	workBytes(f store.Found) int
}

// Truncation reasons, as the native contract and the X-Trace-Truncated header name them.
const (
	reasonSpansPerTrace = "max_spans_per_trace"
	reasonUnreadable    = "unreadable_spans"
	reasonTreeDepth     = "max_tree_depth"
	reasonResponseSpans = "max_response_spans"
	reasonResponseBytes = "max_response_bytes"
)

// truncatedHeader lists why a response is not the whole trace, on every contract.
const truncatedHeader = "X-Trace-Truncated"

// cut says which spans a response leaves out, and why.
type cut struct {
	keep    []bool // nil keeps every span
	reasons []string
}

func (c *cut) truncated() bool { return len(c.reasons) > 0 }

func (c *cut) kept(i int) bool { return c.keep == nil || c.keep[i] }

// baseCut is what the trace itself says is missing from it.
func baseCut(t *traceview.Trace, tree bool) cut {
	var c cut
	if t.Truncated {
		c.reasons = append(c.reasons, reasonSpansPerTrace)
	}
	if t.Unreadable > 0 {
		c.reasons = append(c.reasons, reasonUnreadable)
	}
	if t.Partial != "" {
		c.reasons = append(c.reasons, reasonPartial)
	}
	if tree && t.Hoisted > 0 {
		c.reasons = append(c.reasons, reasonTreeDepth)
	}
	return c
}

// fastResponseBytes is the largest response rendered whole before it is sent.
const fastResponseBytes = 1 << 20

// streamChunk is how much a streamed response renders before writing it out.
const streamChunk = 64 << 10

// maxPooledBuf keeps a rare large buffer from being pinned by the pool.
const maxPooledBuf = 2 * fastResponseBytes

// bufs recycles response buffers (a 100-span trace renders to about 100 KB),
// bounded in count and counted (see package pool).
var bufs = pool.New(8, maxPooledBuf,
	func() *[]byte { return new([]byte) },
	func(b *[]byte) int { return cap(*b) })

func getBuf() *[]byte { return bufs.Get() }

func putBuf(b *[]byte) {
	*b = (*b)[:0]
	bufs.Put(b)
}

// emitter collects rendered JSON, and either stops once it passes limit
// (rendering whole) or writes it out every streamChunk (streaming).
type emitter struct {
	b     []byte
	limit int                 // whole: the most it may hold
	w     http.ResponseWriter // streaming: where it goes
	over  bool
	err   error
}

// full reports whether rendering should stop, writing out a full chunk first.
func (e *emitter) full() bool {
	if e.w == nil {
		e.over = e.over || len(e.b) > e.limit
		return e.over
	}
	if len(e.b) >= streamChunk && e.err == nil {
		_, e.err = e.w.Write(e.b)
		e.b = e.b[:0]
	}
	return e.err != nil // the client went away
}

func render(e *emitter, v view, t *traceview.Trace, c *cut) {
	e.b = v.head(e.b, t, c)
	first := true
	if v.tree() {
		for _, r := range t.Roots {
			if c.kept(r) && !e.over && e.err == nil {
				if !first {
					e.b = append(e.b, ',')
				}
				first = false
				renderSubtree(e, v, t, c, r)
			}
		}
	} else {
		for i := range t.Spans {
			if !c.kept(i) {
				continue
			}
			if !first {
				e.b = append(e.b, ',')
			}
			first = false
			e.b = v.span(e.b, t, i)
			if e.full() {
				return
			}
		}
	}
	e.b = v.tail(e.b, t, c)
}

// renderSubtree renders span i and its kept descendants. Recursion is
// bounded by the tree's depth limit (see traceview.Build).
func renderSubtree(e *emitter, v view, t *traceview.Trace, c *cut, i int) {
	e.b = v.span(e.b, t, i)
	if e.full() {
		return
	}
	first := true
	for _, k := range t.Children[i] {
		if !c.kept(k) {
			continue
		}
		if !first {
			e.b = append(e.b, ',')
		}
		first = false
		renderSubtree(e, v, t, c, k)
		if e.over || e.err != nil {
			return
		}
	}
	e.b = append(e.b, "]}"...)
}

// respond answers a found trace, rendered by v within the response limits.
// f, when known, says about how large the response is: one that will not
// fit fastResponseBytes is streamed straight away, and buffers are sized
// once, not grown (a large buffer grown by append leaves several times its
// size behind as garbage).
func (h *Handler) respond(w http.ResponseWriter, c contract, v view, t *traceview.Trace, f *store.Found) Outcome {
	estimate, span := 0, 0
	if f != nil {
		estimate, span = responseEstimate(*f), spanJSONBound(*f)
	}
	cut := baseCut(t, v.tree())
	buf := getBuf()
	defer putBuf(buf)
	limit := h.opts.MaxResponseBytes
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	fast := min(limit, fastResponseBytes)
	if (h.opts.MaxResponseSpans <= 0 || len(t.Spans) <= h.opts.MaxResponseSpans) && estimate <= fast {
		e := emitter{b: slices.Grow((*buf)[:0], estimate), limit: fast}
		render(&e, v, t, &cut)
		*buf = e.b
		// The brackets that close a tree and the tail come after the last
		// check: what overshoots goes the measured way.
		if !e.over && len(e.b) <= limit {
			setTruncated(w, &cut)
			writeJSON(w, http.StatusOK, e.b)
			return OutcomeFound
		}
	}
	// Too large to render whole: choose what fits, then stream it.
	if !h.choose(v, t, &cut, limit, slices.Grow((*buf)[:0], span)) {
		c.writeError(w, http.StatusRequestEntityTooLarge, "RESPONSE_TOO_LARGE", "even one span of this trace exceeds the response size limit")
		return OutcomeError
	}
	setTruncated(w, &cut)
	writeJSONHeader(w, http.StatusOK)
	e := emitter{b: slices.Grow((*buf)[:0], streamChunk+span), w: w}
	render(&e, v, t, &cut)
	*buf = e.b
	if e.err == nil {
		_, _ = w.Write(e.b)
	}
	return OutcomeFound
}

func setTruncated(w http.ResponseWriter, c *cut) {
	if c.truncated() {
		w.Header().Set(truncatedHeader, strings.Join(c.reasons, ", "))
	}
}

// choose keeps the spans that fit max_response_spans and the byte limit,
// measuring each span as rendered: flat, the first spans in order; as a
// tree, the first spans in the order the tree is written, so that what is
// cut is whole subtrees. It returns false when spans exist, none fits, and
// v needs one.
func (h *Handler) choose(v view, t *traceview.Trace, c *cut, limit int, scratch []byte) bool {
	// The head and tail are measured as they will be when spans are cut.
	worst := cut{reasons: append(append([]string(nil), c.reasons...), reasonResponseBytes)}
	scratch = v.tail(v.head(scratch[:0], t, &worst), t, &worst)
	fixed := len(scratch)
	budget := limit - fixed
	maxSpans := h.opts.MaxResponseSpans
	if maxSpans <= 0 {
		maxSpans = len(t.Spans)
	}
	c.keep = make([]bool, len(t.Spans))
	kept, reason := 0, ""
	take := func(i, extra int) bool {
		if kept == maxSpans {
			reason = reasonResponseSpans
			return false
		}
		scratch = v.span(scratch[:0], t, i) // kept, so that it grows once
		size := len(scratch) + extra
		if size > budget {
			reason = reasonResponseBytes
			return false
		}
		budget -= size
		c.keep[i] = true
		kept++
		return true
	}
	if v.tree() {
		// Depth first, in the order rendering visits the spans; each span
		// also costs its separator and the "]}" that closes it.
		stack := make([]int, 0, 64)
		for k := len(t.Roots) - 1; k >= 0; k-- {
			stack = append(stack, t.Roots[k])
		}
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !take(i, 3) {
				break
			}
			kids := t.Children[i]
			for k := len(kids) - 1; k >= 0; k-- {
				stack = append(stack, kids[k])
			}
		}
	} else {
		for i := range t.Spans {
			if !take(i, 1) {
				break
			}
		}
	}
	if reason != "" {
		c.reasons = append(c.reasons, reason)
	}
	if kept == len(t.Spans) {
		c.keep = nil
	}
	return !v.needsASpan() || kept > 0 || len(t.Spans) == 0
}

// spanBytes is the size of one decoded span; assembly copies each once more.
const spanBytes = int(unsafe.Sizeof(spancodec.Span{}))

// spanJSONBound is about the most one span of f renders to: six bytes for
// each byte of its records (\u escapes), and its fields' names and times.
func spanJSONBound(f store.Found) int { return 6*f.MaxSpanBytes + 4096 }

// responseEstimate is about how large the response of f is: hex ids,
// field names and times take about 1 KB a span, and JSON about four
// bytes for each byte of records.
func responseEstimate(f store.Found) int { return 4*f.RawBytes + 1024*f.SpanCount }

// lookupCost is what a lookup of f through v allocates, from the figures
// the store keeps: the copied blocks, the unsealed records (resources
// included), the decoded spans (twice: decoded, then sorted) with their
// attributes, events and links, the tree's own memory, the response buffer,
// the largest span rendered (see spanJSONBound) in each of the three
// buffers that hold one: its resource's cached JSON (sized for the worst
// case, then copied down), the measuring scratch and the stream buffer;
// and what v's mapping allocates as it renders. Garbage is counted with what stays live, so the
// live peak is below it (see TestLookupCostCoversAllocations).
func lookupCost(f store.Found, v view) int64 {
	return assemblyCost(f) + int64(v.workBytes(f))
}

// assemblyCost is lookupCost without what a view's mapping allocates.
func assemblyCost(f store.Found) int64 {
	const (
		itemBytes      = int(unsafe.Sizeof(spancodec.KeyValue{})) + 16 // an attribute, element, event or link
		assemblyBytes  = 160                                           // per span: children, parent, order, id map
		streamingBytes = 2 * streamChunk
	)
	response := min(fastResponseBytes, responseEstimate(f)) + streamingBytes + 4*spanJSONBound(f)
	return int64(f.BlockBytes + f.RawBytes + f.SpanCount*(2*spanBytes+assemblyBytes) + f.Items*itemBytes + response)
}
