// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// callTrace is the 000 contract, GET /v1/trace/call/{call_id}: the trace whose
// spans carry the call id in the configured attribute, as a TraceResponse
// with a SpanResponse tree. Errors: {"status","error_code","message"}, and
// HTTPValidationError for an id that is not a UUID (422).
type callTrace struct{ h *Handler }

// unknownService stands for a span without service.name, as OpenTelemetry SDKs name it.
const unknownService = "unknown_service"

func (callTrace) writeError(w http.ResponseWriter, status int, code, message string) {
	writeStatusError(w, status, code, message)
}

func (c callTrace) serve(w http.ResponseWriter, r *http.Request, tenant, segment string, _ url.Values) Outcome {
	callID, reason := parseUUID(segment)
	if reason != "" {
		writeValidationError(w, segment, reason)
		return OutcomeBadRequest
	}
	notFound := func() { c.writeError(w, http.StatusNotFound, "TRACE_NOT_FOUND", "Trace not found") }
	v := &callView{callID: callID}
	// The canonical form first (as SDKs write UUIDs), then the form as given.
	f, ok := c.h.store.FindByCallID(tenant, callID)
	if !ok && segment != callID {
		f, ok = c.h.store.FindByCallID(tenant, segment)
	}
	if ok {
		hd := c.h.localHeld(r, tenant, f)
		if hd.fanOut {
			c.h.askPeers(r.Context(), &hd, f.ID, hex.EncodeToString(f.ID[:]))
		}
		return c.h.lookup(w, r, c, hd, v, notFound)
	}
	forms := []string{callID}
	if segment != callID {
		forms = append(forms, segment)
	}
	hd, ok, err := c.h.findCall(r, tenant, forms)
	switch {
	case err != nil:
		return writeStoreError(w, c, err)
	case !ok:
		notFound()
		return OutcomeNotFound
	}
	return c.h.lookup(w, r, c, hd, v, notFound)
}

// findCall looks a call id the index does not hold up at the peers (a
// search for the call-id attribute, then the trace it names from every
// peer), then in the long-term store. Every form of the id (canonical
// first, then as given) is asked for at once, at the peers and then at the
// store, and the first form found is taken. An error is the store's, when
// nothing else holds the call.
func (h *Handler) findCall(r *http.Request, tenant string, forms []string) (held, bool, error) {
	hd := held{tenant: tenant, fanOut: h.fansOut(r)}
	if !hd.fanOut || h.opts.CallIDAttribute == "" {
		return hd, false, nil
	}
	if h.opts.Peers != nil {
		i, searches := firstFound(r.Context(), len(forms), func(ctx context.Context, i int) peerCallSearch {
			return h.searchPeersForCall(ctx, tenant, forms[i])
		}, peerCallSearch.found)
		judged := searches // every answer, when none was found
		if i >= 0 {
			judged = searches[:i] // addPeersCall notes the found one's
		}
		for _, s := range judged {
			for _, p := range s.failed {
				hd.addMissing("peer " + p + " did not answer")
			}
		}
		if i >= 0 && h.addPeersCall(r, &hd, searches[i]) {
			return hd, true, nil
		}
	}
	if h.opts.LongTermStore == nil {
		return hd, false, nil
	}
	hd.asked = true
	i, answers := firstFound(r.Context(), len(forms), func(ctx context.Context, i int) storeAnswer {
		td, ok, err := h.opts.LongTermStore.CallTrace(ctx, tenant, forms[i])
		if !ok {
			return storeAnswer{err: err}
		}
		// The call names the trace: the first span's id is the trace's.
		return storeAnswer{id: firstTraceID(td, [16]byte{}), td: td, ok: td.SpanCount() > 0, err: err}
	}, func(a storeAnswer) bool { return a.ok })
	return hd, h.addStoreAnswer(&hd, i, answers), h.storeError(i, answers)
}

// peerCallSearch is what the peers answered to a search for one form of a
// call id.
type peerCallSearch struct {
	answers [][]search.Summary
	failed  []string
}

// found says whether a peer listed a trace.
func (s peerCallSearch) found() bool {
	for _, sums := range s.answers {
		if len(sums) > 0 {
			return true
		}
	}
	return false
}

// searchPeersForCall searches the peers for the trace holding callID.
func (h *Handler) searchPeersForCall(ctx context.Context, tenant, callID string) peerCallSearch {
	cond, err := search.NewCompare(search.FieldAttr, search.ScopeAny, h.opts.CallIDAttribute, search.OpEq, search.Literal{Type: search.LitString, Str: callID})
	if err != nil {
		return peerCallSearch{}
	}
	q := search.Query{Kind: search.AnyKind, Where: cond, Limit: 1, Attrs: []store.AttrQuery{store.ParseAttrQuery(h.opts.CallIDAttribute, callID)}}
	answers, _, failed := h.opts.Peers.Search(ctx, tenant, q)
	return peerCallSearch{answers: answers, failed: failed}
}

// addPeersCall adds, when a peer listed a trace for the call, every part
// of it; it says whether any part was found.
func (h *Handler) addPeersCall(r *http.Request, hd *held, s peerCallSearch) bool {
	for _, p := range s.failed {
		hd.addMissing("peer " + p + " did not answer")
	}
	for _, sums := range s.answers {
		if len(sums) > 0 {
			id := sums[0].ID
			if f, ok := h.store.Find(hd.tenant, id); ok {
				hd.f, hd.local, hd.sources = f, true, []string{sourceMemory} // spans without the call id
			}
			h.askPeers(r.Context(), hd, id, hex.EncodeToString(id[:]))
			break
		}
	}
	return hd.any()
}

// parseUUID accepts what the document's uuid format accepts: 32 hex digits,
// optionally hyphenated 8-4-4-4-12, optionally in braces or after "urn:uuid:".
// It returns the canonical lower-case hyphenated form, or why s is not a UUID.
func parseUUID(s string) (string, string) {
	in := s
	if rest, ok := strings.CutPrefix(strings.ToLower(in), "urn:uuid:"); ok {
		in = rest
	} else if len(in) >= 2 && in[0] == '{' && in[len(in)-1] == '}' {
		in = in[1 : len(in)-1]
	}
	var digits []byte
	switch len(in) {
	case 32:
		digits = []byte(in)
	case 36:
		for i := 0; i < len(in); i++ {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if in[i] != '-' {
					return "", "invalid group separator at position " + strconv.Itoa(i+1) + ": expected '-'"
				}
				continue
			}
			digits = append(digits, in[i])
		}
	default:
		return "", "invalid length: expected 32 hex digits, optionally hyphenated as 8-4-4-4-12, found " + strconv.Itoa(len(s)) + " characters"
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:], digits); err != nil {
		return "", "invalid character: expected a hex digit"
	}
	h := hex.EncodeToString(raw[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], ""
}

// writeValidationError writes the document's HTTPValidationError; the
// input it repeats is cut short.
func writeValidationError(w http.ResponseWriter, input, reason string) {
	b := append([]byte(nil), `{"detail":[{"type":"uuid_parsing","loc":["path","call_id"],"msg":`...)
	b = spancodec.AppendJSONString(b, "Input should be a valid UUID, "+reason)
	b = append(b, `,"input":`...)
	b = spancodec.AppendJSONString(b, Echo(input))
	b = append(b, `}]}`...)
	writeJSON(w, http.StatusUnprocessableEntity, b)
}

// callView renders the 000 contract: a TraceResponse whose spans nest as a
// tree. It has no truncation field: a cut is said in the X-Trace-Truncated header.
type callView struct{ callID string }

func (*callView) tree() bool { return true }

// needsASpan: an empty span list, flagged in the header, is a valid answer.
func (*callView) needsASpan() bool { return false }

// workBytes: the mapping renders straight from the decoded spans.
func (*callView) workBytes(store.Found) int { return 0 }

func (v *callView) head(b []byte, t *traceview.Trace, _ *cut) []byte {
	b = append(b, `{"id":`...)
	b = appendHexString(b, t.ID[:])
	b = append(b, `,"call_id":`...)
	b = spancodec.AppendJSONString(b, v.callID)
	b = append(b, `,"root_service":`...)
	if root := t.RootSpan(); root != nil && root.ServiceName() != "" {
		b = spancodec.AppendJSONString(b, root.ServiceName())
	} else {
		b = append(b, "null"...)
	}
	if len(t.Spans) > 0 {
		b = append(b, `,"start_time":`...)
		b = appendTime(b, int64(t.StartUnixNano))
		b = append(b, `,"end_time":`...)
		b = appendTime(b, int64(t.EndUnixNano))
		b = append(b, `,"duration_ms":`...)
		b = appendMillis(b, t.DurationNanos())
	} else {
		b = append(b, `,"start_time":null,"end_time":null,"duration_ms":null`...)
	}
	b = append(b, `,"span_count":`...)
	b = strconv.AppendInt(b, int64(len(t.Spans)), 10)
	return append(b, `,"spans":[`...)
}

func (*callView) tail(b []byte, _ *traceview.Trace, _ *cut) []byte { return append(b, "]}"...) }

// appendMillis appends nanoseconds as fractional milliseconds.
func appendMillis(b []byte, nanos uint64) []byte {
	return strconv.AppendFloat(b, float64(nanos)/1e6, 'f', -1, 64)
}

// span appends a SpanResponse up to its open children array.
func (*callView) span(b []byte, t *traceview.Trace, i int) []byte {
	s := &t.Spans[i]
	b = append(b, `{"id":`...)
	b = appendHexString(b, s.SpanID[:])
	b = append(b, `,"parent_span_id":`...)
	if s.HasParent() {
		b = appendHexString(b, s.ParentSpanID[:])
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"operation_name":`...)
	b = spancodec.AppendJSONString(b, s.Name)
	service := s.ServiceName()
	if service == "" {
		service = unknownService
	}
	b = append(b, `,"service_name":`...)
	b = spancodec.AppendJSONString(b, service)
	b = append(b, `,"start_time":`...)
	b = appendTime(b, int64(s.StartUnixNano))
	dur := uint64(0)
	if s.EndUnixNano > s.StartUnixNano {
		dur = s.EndUnixNano - s.StartUnixNano
	}
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, dur)
	b = append(b, `,"status":"`...)
	b = append(b, statusName(s.StatusCode)...)
	b = append(b, `","tags":`...)
	b = spancodec.AppendJSONObject(b, s.Attributes)
	return append(b, `,"children":[`...)
}
