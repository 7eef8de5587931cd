// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Where an answer's spans came from, as the X-Trace-Sources header lists them.
const (
	sourceMemory        = "memory"
	sourcePeers         = "peers"
	sourceLongTermStore = "long_term_store"
)

// sourcesHeader lists where an answer's spans came from.
const sourcesHeader = "X-Trace-Sources"

// reasonPartial says peers that may hold part of the trace did not
// answer in time, or the long-term store could not complete it.
const reasonPartial = "partial"

// held is a trace an answer is made of: what the index holds of it, and
// what peers and the long-term store hold (imported, see store.Import).
type held struct {
	tenant string
	f      store.Found // valid when local
	local  bool
	remote []store.Trace
	// remoteFound sums the remote parts' figures, for admission.
	remoteFound store.Found
	sources     []string
	// missing says what may be missing: the peers that did not answer,
	// the long-term store's error.
	missing []string
	// asked says the long-term store was asked already, and fanOut that
	// this replica may ask peers and the store (not a peer's own request).
	asked  bool
	fanOut bool
}

// ID is the trace's id.
func (hd *held) ID() [16]byte {
	if hd.local {
		return hd.f.ID
	}
	return hd.remoteFound.ID
}

// found describes all of the trace's parts together, for admission and sizing.
func (hd *held) found() store.Found {
	f := hd.f
	if !hd.local {
		f = store.Found{}
	}
	addFound(&f, hd.remoteFound)
	f.ID = hd.ID()
	return f
}

// addFound adds what reading part takes to what reading f takes.
func addFound(f *store.Found, part store.Found) {
	f.BlockBytes += part.BlockBytes
	f.RawBytes += part.RawBytes
	f.Items += part.Items
	f.SpanCount += part.SpanCount
	f.MaxSpanBytes = max(f.MaxSpanBytes, part.MaxSpanBytes)
	f.LastSeen = max(f.LastSeen, part.LastSeen)
}

// addMissing notes once what may be missing from the answer.
func (hd *held) addMissing(what string) {
	if !slices.Contains(hd.missing, what) {
		hd.missing = append(hd.missing, what)
	}
}

// any says whether any source holds spans of the trace.
func (hd *held) any() bool { return hd.local || len(hd.remote) > 0 }

// UseRemote sets the peers and the long-term store (nil: none); call it
// before the handler serves.
func (h *Handler) UseRemote(peers *remote.Peers, lts *remote.LongTermStore) {
	h.opts.Peers, h.opts.LongTermStore = peers, lts
}

// fansOut says whether r may be fanned out: peers or a store are
// configured, and r is not itself a peer's request.
func (h *Handler) fansOut(r *http.Request) bool {
	return (h.opts.Peers != nil || h.opts.LongTermStore != nil) && r.Header.Get(remote.HopHeader) == ""
}

// localHeld is what the index holds, found by f.
func (h *Handler) localHeld(r *http.Request, tenant string, f store.Found) held {
	return held{tenant: tenant, f: f, local: true, sources: []string{sourceMemory}, fanOut: h.fansOut(r)}
}

// findTrace resolves a parsed trace id in the index, at the peers and,
// when neither holds it, in the long-term store. An error is the store's
// (wrapping remote.ErrUnavailable or remote.ErrTimeout), when nothing
// else holds the trace.
func (h *Handler) findTrace(r *http.Request, tenant string, cands []traceid.Candidate) (held, bool, error) {
	var hd held
	if f, ok := h.findLocal(tenant, cands); ok {
		hd = h.localHeld(r, tenant, f)
	} else {
		hd = held{tenant: tenant, fanOut: h.fansOut(r)}
	}
	if !hd.fanOut {
		return hd, hd.local, nil
	}
	if hd.local {
		h.askPeers(r.Context(), &hd, hd.f.ID, hex.EncodeToString(hd.f.ID[:]))
		return hd, true, nil
	}
	// A peer is asked once, for the first reading: a 16-digit id goes as
	// its 16 hex digits, which the peer reads both ways again. The store
	// is asked for every reading at once, and the first held is taken.
	h.askPeers(r.Context(), &hd, cands[0].ID, peerIDText(cands[0]))
	if hd.any() || h.opts.LongTermStore == nil {
		return hd, hd.any(), nil
	}
	hd.asked = true
	i, answers := firstFound(r.Context(), len(cands), func(ctx context.Context, i int) storeAnswer {
		td, ok, err := h.opts.LongTermStore.Trace(ctx, tenant, cands[i].ID)
		return storeAnswer{id: cands[i].ID, td: td, ok: ok && holdsTrace(td, cands[i].ID), err: err}
	}, func(a storeAnswer) bool { return a.ok })
	return hd, h.addStoreAnswer(&hd, i, answers), h.storeError(i, answers)
}

// storeAnswer is what the long-term store answered for one reading of an
// id (or one form of a call id): ok when it holds spans of the trace id.
type storeAnswer struct {
	id  [16]byte
	td  ptrace.Traces
	ok  bool
	err error
}

// addStoreAnswer adds answer i, the one firstFound found (-1: none), and
// says whether it did.
func (h *Handler) addStoreAnswer(hd *held, i int, answers []storeAnswer) bool {
	if i < 0 {
		return false
	}
	h.addRemote(hd, answers[i].id, answers[i].td, sourceLongTermStore)
	return hd.any()
}

// storeError is the store's first error when no answer held the trace
// (i < 0): the store could not say. It is logged here, with its cause; the
// client's answer names only the kind (unavailable, or timed out).
func (h *Handler) storeError(i int, answers []storeAnswer) error {
	if i >= 0 {
		return nil
	}
	for _, a := range answers {
		if a.err != nil {
			h.opts.Logger.Debug("The long-term store could not be read", zap.Error(a.err))
			return a.err
		}
	}
	return nil
}

// holdsTrace says whether td holds a span of trace id.
func holdsTrace(td ptrace.Traces, id [16]byte) bool {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if [16]byte(s.TraceID()) == id {
					return true
				}
			}
		}
	}
	return false
}

// firstFound asks for 0..n-1 at once (one alone, in this goroutine) and
// returns the first, in that order, whose answer is found, once every
// earlier one has come back not found; the asks still running then are
// cancelled. It returns -1 when none is found, with every answer. Asking
// for every form of an id at once keeps a lookup within one deadline, not
// one per form, and a form found early is not held up by a slow one.
func firstFound[T any](ctx context.Context, n int, ask func(ctx context.Context, i int) T, found func(T) bool) (int, []T) {
	out := make([]T, n)
	if n == 1 {
		if out[0] = ask(ctx, 0); found(out[0]) {
			return 0, out
		}
		return -1, out
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		i int
		v T
	}
	answers := make(chan answer, n) // never blocks an ask left running
	for i := range n {
		go func() { answers <- answer{i, ask(ctx, i)} }()
	}
	back := make([]bool, n)
	next := 0 // the first form whose answer is still to be judged
	for range n {
		a := <-answers
		out[a.i], back[a.i] = a.v, true
		for ; next < n && back[next]; next++ {
			if found(out[next]) {
				return next, out
			}
		}
	}
	return -1, out
}

// findOrAnswer finds a trace as findTrace does and, when there is none to
// answer, answers why in c's format: the long-term store's error, or
// notFound. ok says the lookup goes on with hd.
func (h *Handler) findOrAnswer(w http.ResponseWriter, r *http.Request, c contract, tenant string, cands []traceid.Candidate, notFound func()) (hd held, _ Outcome, ok bool) {
	hd, ok, err := h.findTrace(r, tenant, cands)
	switch {
	case err != nil:
		return hd, writeStoreError(w, c, err), false
	case !ok:
		notFound()
		return hd, OutcomeNotFound, false
	}
	return hd, OutcomeFound, true
}

// peerIDText is how a peer is asked for candidate c: a 64-bit id as its 16
// hex digits, which the peer also matches by the low half of a stored id.
func peerIDText(c traceid.Candidate) string {
	text := hex.EncodeToString(c.ID[:])
	if c.Is64Bit {
		return text[16:]
	}
	return text
}

// askPeers adds what the peers hold of trace id (text as they are asked).
func (h *Handler) askPeers(ctx context.Context, hd *held, id [16]byte, text string) {
	if h.opts.Peers == nil {
		return
	}
	tds, failed := h.opts.Peers.Trace(ctx, hd.tenant, text)
	for _, p := range failed {
		hd.addMissing("peer " + p + " did not answer")
	}
	for _, td := range tds {
		if !hd.local && hd.remoteFound.SpanCount == 0 {
			id = firstTraceID(td, id) // a 64-bit id names the whole one at the peer
		}
		h.addRemote(hd, id, td, sourcePeers)
	}
}

// askStore adds what the long-term store holds of trace id, once.
func (h *Handler) askStore(ctx context.Context, hd *held, id [16]byte) error {
	if h.opts.LongTermStore == nil || hd.asked || !hd.fanOut {
		return nil
	}
	hd.asked = true
	td, ok, err := h.opts.LongTermStore.Trace(ctx, hd.tenant, id)
	if err != nil {
		h.opts.Logger.Debug("The long-term store could not be read", zap.Error(err))
		return err
	}
	if ok {
		h.addRemote(hd, id, td, sourceLongTermStore)
	}
	return nil
}

// addRemote imports td's spans of trace id as one more part.
func (h *Handler) addRemote(hd *held, id [16]byte, td ptrace.Traces, source string) {
	part, f := h.store.Import(id, hd.tenant, td, time.Now().UnixNano())
	if part.SpanCount == 0 {
		return
	}
	hd.remote = append(hd.remote, part)
	hd.remoteFound.ID = id
	addFound(&hd.remoteFound, f)
	if !slices.Contains(hd.sources, source) {
		hd.sources = append(hd.sources, source)
	}
}

// firstTraceID is the id of td's first span, else def.
func firstTraceID(td ptrace.Traces, def [16]byte) [16]byte {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			if sss.At(j).Spans().Len() > 0 {
				return [16]byte(sss.At(j).Spans().At(0).TraceID())
			}
		}
	}
	return def
}

// build fetches and assembles every part of hd; false when the index's
// part left it in between and nothing else holds the trace. A trace that
// looks incomplete (a span's parent is missing, or no span is a root) is
// looked for in the long-term store too: the index may have evicted the
// rest. Release the result.
func (h *Handler) build(ctx context.Context, hd *held) (*traceview.Trace, bool) {
	t, ok := h.buildOnce(hd)
	if !ok {
		return nil, false
	}
	if hd.fanOut && h.opts.LongTermStore != nil && !hd.asked && (t.Orphans > 0 || !hasParentless(t)) {
		before := len(hd.remote)
		if err := h.askStore(ctx, hd, t.ID); err != nil {
			hd.addMissing("the long-term store could not be read: " + storeErrorText(err))
		}
		if len(hd.remote) > before {
			t.Release()
			if t, ok = h.buildOnce(hd); !ok {
				return nil, false
			}
		}
	}
	t.Partial = strings.Join(hd.missing, "; ")
	h.logUnreadable(t)
	return t, true
}

func (h *Handler) buildOnce(hd *held) (*traceview.Trace, bool) {
	parts := make([]store.Trace, 0, 1+len(hd.remote))
	if hd.local {
		st, ok := h.store.Fetch(hd.f)
		if ok {
			parts = append(parts, st)
		} else {
			hd.local = false
			hd.sources = slices.DeleteFunc(hd.sources, func(s string) bool { return s == sourceMemory })
		}
	}
	parts = append(parts, hd.remote...) // imported parts hold no pooled memory: reusable
	if len(parts) == 0 {
		return nil, false
	}
	return traceview.BuildAll(parts, h.opts.MaxTreeDepth), true
}

func hasParentless(t *traceview.Trace) bool {
	return t.Root >= 0 && !t.Spans[t.Root].HasParent()
}

func (h *Handler) logUnreadable(t *traceview.Trace) {
	if t.Unreadable > 0 {
		h.opts.Logger.Warn("Stored spans could not be read; the trace is served without them",
			zap.String("trace_id", hex.EncodeToString(t.ID[:])), zap.Int("unreadable_spans", t.Unreadable), zap.Error(t.UnreadableErr))
	}
}

// setSources says where the answer's spans came from, when that is not
// the index alone.
func setSources(w http.ResponseWriter, hd *held) {
	if len(hd.sources) > 0 && (len(hd.sources) > 1 || hd.sources[0] != sourceMemory) {
		w.Header().Set(sourcesHeader, strings.Join(hd.sources, ","))
	}
}

// storeErrorText is a store error as an answer may say it: which of the
// two it was, without the store's address.
func storeErrorText(err error) string {
	if errors.Is(err, remote.ErrTimeout) {
		return "it timed out"
	}
	return "it is unavailable"
}

// writeStoreError answers a store error in c's format: 504 past the
// store's timeout, else 503; the 000 contract's bodies are its document's.
func writeStoreError(w http.ResponseWriter, c contract, err error) Outcome {
	if _, ok := c.(callTrace); ok {
		if errors.Is(err, remote.ErrTimeout) {
			c.writeError(w, http.StatusGatewayTimeout, "TEMPO_TIMEOUT_API", "Timeout fetching trace")
		} else {
			c.writeError(w, http.StatusServiceUnavailable, "TEMPO_UNAVAILABLE", "Tempo service unavailable")
		}
		return OutcomeError
	}
	if errors.Is(err, remote.ErrTimeout) {
		c.writeError(w, http.StatusGatewayTimeout, "LONG_TERM_STORE_TIMEOUT", "the trace is not in memory, and the long-term store did not answer within its timeout")
	} else {
		c.writeError(w, http.StatusServiceUnavailable, "LONG_TERM_STORE_UNAVAILABLE", "the trace is not in memory, and the long-term store could not be reached")
	}
	return OutcomeError
}

// runSearch searches the index and, fanned out, every peer: the answers
// are merged (a trace found by several replicas is listed once, summed up
// from all of its parts) and cut to the query's limit, newest first.
//
// Pages: each replica lists the traces whose own part starts below the
// cursor. A trace is placed by its whole start, the earliest of its
// parts', so the replica holding its earliest part lists it on the page
// where it belongs and the others' later parts do not list it again. The
// next cursor is where the replica that stopped shortest had got to, the
// newest start among those with more (the index at its budget or its
// page's end, a peer that filled its page), or the page's last trace when
// the merge holds more than the limit: traces below it wait for the next
// page.
func (h *Handler) runSearch(r *http.Request, tenant string, q search.Query) search.Result {
	res := search.Run(r.Context(), h.store, tenant, q, h.opts.Search)
	if h.opts.Peers == nil || r.Header.Get(remote.HopHeader) != "" {
		return res
	}
	pq := q
	if q.After != (store.Key{}) {
		// A page after the first: peers list what starts before the cursor.
		pq.After = store.Key{}
		if q.After.Start <= 1 {
			return res // nothing starts before 1 but at 0: a bound of 0 would be none
		}
		if pq.StartTo == 0 || pq.StartTo > q.After.Start-1 {
			pq.StartTo = q.After.Start - 1
		}
	}
	answers, partial, failed := h.opts.Peers.Search(r.Context(), tenant, pq)
	res.Partial = res.Partial || partial || len(failed) > 0
	if len(answers) == 0 && len(res.Traces) == 0 {
		return res
	}
	limit := q.Limit
	if limit <= 0 {
		limit = search.DefaultLimit
	}
	// Where the replicas that stopped short got to.
	var next store.Key
	more := res.HasNext
	if res.HasNext {
		next = res.Next
	}
	byID := make(map[[16]byte]int, len(res.Traces))
	merged := slices.Clone(res.Traces)
	for i := range merged {
		byID[merged[i].ID] = i
	}
	for _, sums := range answers {
		if len(sums) >= limit { // a full page: the peer may hold more
			more = true
			if last := sums[len(sums)-1].Start; last > next.Start {
				next = store.Key{Start: last}
			}
		}
		for _, s := range sums {
			if i, ok := byID[s.ID]; ok {
				merged[i].Start = min(merged[i].Start, s.Start)
				merged[i].End = max(merged[i].End, s.End)
				continue
			}
			byID[s.ID] = len(merged)
			merged = append(merged, s)
		}
	}
	slices.SortFunc(merged, newestFirst)
	below := func(s search.Summary) bool { return more && s.Start < next.Start }
	merged = slices.DeleteFunc(merged, below)
	if len(merged) > limit {
		merged = merged[:limit]
		if last := merged[len(merged)-1].Start; !more || last > next.Start {
			next = store.Key{Start: last}
		}
		more = true
	}
	// Each replica summed up only its own part of a trace: every trace
	// listed is summed up again from all of its parts. Whole, a trace may
	// start earlier than the parts listed here: below the cursor, the
	// replica holding its earliest part lists it on a later page.
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(4, len(merged)) {
		wg.Go(func() {
			for i := range work {
				if s, ok := h.summarizeAll(r, tenant, merged[i].ID, q); ok {
					merged[i] = s
				}
			}
		})
	}
	for i := range merged {
		work <- i
	}
	close(work)
	wg.Wait()
	merged = slices.DeleteFunc(merged, below)
	slices.SortFunc(merged, newestFirst)
	res.Traces = merged
	// A cursor at 0 could only list traces that start at 0 too: the end.
	res.HasNext = more && next.Start > 0
	res.Next = next
	return res
}

// newestFirst orders summaries by start, newest first, then by id.
func newestFirst(a, b search.Summary) int {
	if a.Start != b.Start {
		if a.Start > b.Start {
			return -1
		}
		return 1
	}
	return slices.Compare(a.ID[:], b.ID[:])
}

// summarizeAll sums up trace id from every replica's part.
func (h *Handler) summarizeAll(r *http.Request, tenant string, id [16]byte, q search.Query) (search.Summary, bool) {
	hd, ok, _ := h.findTrace(r, tenant, []traceid.Candidate{{ID: id}})
	if !ok {
		return search.Summary{}, false
	}
	release, ok := h.admit.acquire(r.Context(), assemblyCost(hd.found()))
	if !ok {
		return search.Summary{}, false
	}
	defer release()
	hd.asked = true // a summary does not wait for the long-term store
	t, ok := h.build(r.Context(), &hd)
	if !ok {
		return search.Summary{}, false
	}
	defer t.Release()
	// The parts matched where they were; summed up whole, the trace's
	// counts are its own.
	s, _ := search.Summarize(r.Context(), t, q)
	return s, true
}

// renderCost is what rendering a trace in JSON takes: its assembly, and a
// response that may grow to twice its estimate as it is written.
func renderCost(f store.Found) int64 { return assemblyCost(f) + int64(2*responseEstimate(f)) }

// heldOf finds each summed-up trace of a search, wherever it is held.
func (h *Handler) heldOf(r *http.Request, tenant string, sums []search.Summary) []held {
	out := make([]held, 0, len(sums))
	for i := range sums {
		if hd, ok, _ := h.findTrace(r, tenant, []traceid.Candidate{{ID: sums[i].ID}}); ok {
			out = append(out, hd)
		} // else it left in between
	}
	return out
}
