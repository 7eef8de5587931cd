// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package api serves the trace lookup HTTP API from the store. Each contract
// has one file holding its routes, its field mapping and its error format.
package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Outcome says how a lookup ended, for self-telemetry.
type Outcome string

// Lookup outcomes.
const (
	OutcomeFound      Outcome = "found"
	OutcomeNotFound   Outcome = "not_found"
	OutcomeBadRequest Outcome = "bad_request"
	OutcomeError      Outcome = "error"
)

// Options configure the API.
type Options struct {
	// OrganizationID is reported as organization_id (the tenant).
	OrganizationID string
	// MaxResponseSpans caps the spans of one 003 response; the rest are cut and is_truncated is set.
	MaxResponseSpans int
	// MaxResponseBytes is the hard limit of one 003 response body; past it the answer is 413.
	MaxResponseBytes int
	// CallTraceFallback, when set, is asked for call ids the index does not hold.
	CallTraceFallback CallTraceFallback
	// OnLookup, when set, is told the outcome and latency of every lookup.
	OnLookup func(Outcome, time.Duration)
}

// Handler serves every contract.
type Handler struct {
	store  *store.Store
	opts   Options
	routes []route
}

// route is one contract and the path prefix it serves.
type route struct {
	prefix string
	c      contract
}

// NewHandler returns the API's HTTP handler.
func NewHandler(st *store.Store, opts Options) *Handler {
	if opts.OrganizationID == "" {
		opts.OrganizationID = "default"
	}
	h := &Handler{store: st, opts: opts}
	h.routes = []route{
		{"/api/v1/traces/", native{h}},
		{"/api/v2/trace/", apmTrace{h}},
		{"/v1/trace/call/", callTrace{h}},
	}
	return h
}

// contract is one API contract: its path prefix and how it answers.
type contract interface {
	// serve answers a request for the single path segment after the prefix.
	serve(w http.ResponseWriter, r *http.Request, segment string) Outcome
	// writeError answers an error in the contract's own format.
	writeError(w http.ResponseWriter, status int, code, message string)
}

func (h *Handler) route(path string) (contract, string, bool) {
	for _, r := range h.routes {
		if rest, ok := strings.CutPrefix(path, r.prefix); ok {
			return r.c, rest, true
		}
	}
	return h.routes[0].c, "", false // unknown routes answer in the native format
}

// ServeHTTP routes to the contract the path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c, segment, ok := h.route(r.URL.Path)
	if !ok || strings.Contains(segment, "/") {
		c.writeError(w, http.StatusNotFound, "NOT_FOUND", "no route for "+r.URL.Path+"; see the API reference for the paths served")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		c.writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method+" is not allowed; use GET")
		return
	}
	outcome := c.serve(w, r, segment)
	if h.opts.OnLookup != nil {
		h.opts.OnLookup(outcome, time.Since(start))
	}
}

// findTrace resolves a parsed trace id: an exact match first, then, for a
// 64-bit id, the newest trace whose low 64 bits match.
func (h *Handler) findTrace(cands []traceid.Candidate) (store.Trace, bool) {
	for _, c := range cands {
		if t, ok := h.store.Get(c.ID); ok {
			return t, true
		}
	}
	for _, c := range cands {
		if c.Is64Bit {
			if t, ok := h.store.GetByLow64(c.Low64()); ok {
				return t, true
			}
		}
	}
	return store.Trace{}, false
}

// maxPooledBuf keeps a rare huge response from pinning its buffer.
const maxPooledBuf = 4 << 20

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

// renderError is a failure of rendering that the contract answers in its own format.
type renderError struct {
	status  int
	code    string
	message string
}

func (e *renderError) Error() string { return e.message }

// writeTrace assembles a stored trace, renders it into a pooled buffer and
// writes it; every contract answers a found trace this way.
func (h *Handler) writeTrace(w http.ResponseWriter, c contract, st store.Trace, render func([]byte, *traceview.Trace) ([]byte, *renderError)) Outcome {
	t, err := traceview.Build(st)
	if err != nil {
		c.writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "stored trace could not be read")
		return OutcomeError
	}
	defer t.Release()
	buf := getBuf()
	defer putBuf(buf)
	body, rerr := render(*buf, t)
	if rerr != nil {
		c.writeError(w, rerr.status, rerr.code, rerr.message)
		return OutcomeError
	}
	*buf = body
	writeJSON(w, http.StatusOK, body)
	return OutcomeFound
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

const rfc3339Nanos = "2006-01-02T15:04:05.000000000Z07:00"

// appendTime appends unix nanoseconds as a JSON string, RFC 3339 UTC with nanoseconds.
func appendTime(b []byte, unixNano int64) []byte {
	b = append(b, '"')
	b = time.Unix(0, unixNano).UTC().AppendFormat(b, rfc3339Nanos)
	return append(b, '"')
}
