// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package api serves the trace lookup HTTP API from the store. Each contract
// has one file holding its routes, its field mapping and its error format.
package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

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
	// OutcomeBusy is a lookup refused because the lookup memory budget was
	// full for longer than admissionWait.
	OutcomeBusy Outcome = "busy"
)

// Options configure the API.
type Options struct {
	// OrganizationID is reported as organization_id (the tenant).
	OrganizationID string
	// MaxResponseSpans caps the spans of one response; the rest are cut and the cut is flagged.
	MaxResponseSpans int
	// MaxResponseBytes is the hard limit of one response body; spans past it
	// are cut and the cut is flagged (003 answers 413 when not even one fits).
	MaxResponseBytes int
	// MaxTreeDepth is the deepest a response's span tree nests; deeper spans
	// become roots (0: traceview.DefaultMaxTreeDepth).
	MaxTreeDepth int
	// LookupMemoryBytes is the memory lookups in flight may use together;
	// a lookup waits up to admissionWait for its share, else is refused. 0: no limit.
	LookupMemoryBytes int64
	// CallTraceFallback, when set, is asked for call ids the index does not hold.
	CallTraceFallback CallTraceFallback
	// OnLookup, when set, is told the outcome and latency of every lookup.
	OnLookup func(Outcome, time.Duration)
	// Logger reports stored spans that could not be read; nil logs nothing.
	Logger *zap.Logger
}

// Handler serves every contract.
type Handler struct {
	store  *store.Store
	opts   Options
	routes []route
	admit  *admission
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
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	h := &Handler{store: st, opts: opts, admit: newAdmission(opts.LookupMemoryBytes)}
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
	serve(w http.ResponseWriter, r *http.Request, segment string, query url.Values) Outcome
	// writeError answers an error in the contract's own format.
	writeError(w http.ResponseWriter, status int, code, message string)
	// writeBusy answers a lookup the memory budget could not admit.
	writeBusy(w http.ResponseWriter)
}

func (h *Handler) route(path string) (contract, string, bool) {
	for _, r := range h.routes {
		if rest, ok := strings.CutPrefix(path, r.prefix); ok {
			return r.c, rest, true
		}
	}
	return h.routes[0].c, "", false // unknown routes answer in the native format
}

// maxEcho is the most of a client's input an error message repeats.
const maxEcho = 128

// echo cuts s for repeating in an error message, at a character boundary.
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	n := maxEcho
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// ServeHTTP routes to the contract the path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c, segment, ok := h.route(r.URL.Path)
	if !ok || strings.Contains(segment, "/") {
		c.writeError(w, http.StatusNotFound, "NOT_FOUND", "no route for "+echo(r.URL.Path)+"; see the API reference for the paths served")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		c.writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", echo(r.Method)+" is not allowed; use GET")
		return
	}
	// r.URL.Query drops what it cannot parse, and every parameter past Go's
	// limit of 10,000: a parameter the client sent must never be ignored.
	query, err := url.ParseQuery(r.URL.RawQuery)
	outcome := OutcomeBadRequest
	if err != nil {
		c.writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", "the query string could not be read: "+echo(err.Error()))
	} else {
		outcome = c.serve(w, r, segment, query)
	}
	if h.opts.OnLookup != nil {
		h.opts.OnLookup(outcome, time.Since(start))
	}
}

// findTrace resolves a parsed trace id: an exact match first, then, for a
// 64-bit id, the newest trace whose low 64 bits match.
func (h *Handler) findTrace(cands []traceid.Candidate) (store.Found, bool) {
	for _, c := range cands {
		if f, ok := h.store.Find(c.ID); ok {
			return f, true
		}
	}
	for _, c := range cands {
		if c.Is64Bit {
			if f, ok := h.store.FindByLow64(c.Low64()); ok {
				return f, true
			}
		}
	}
	return store.Found{}, false
}

// lookup admits, reads, assembles and answers one found trace; every
// contract answers a found trace this way. It answers 404 when the trace
// left the index in between.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, c contract, f store.Found, v view, notFound func()) Outcome {
	release, ok := h.admit.acquire(r.Context(), lookupCost(f, v))
	if !ok {
		w.Header().Set("Retry-After", "1")
		c.writeBusy(w)
		return OutcomeBusy
	}
	defer release()
	st, ok := h.store.Fetch(f)
	if !ok {
		notFound()
		return OutcomeNotFound
	}
	t := traceview.Build(st, h.opts.MaxTreeDepth)
	defer t.Release()
	if t.Unreadable > 0 {
		h.opts.Logger.Warn("Stored spans could not be read; the trace is served without them",
			zap.String("trace_id", hex.EncodeToString(t.ID[:])), zap.Int("unreadable_spans", t.Unreadable), zap.Error(t.UnreadableErr))
	}
	return h.respond(w, c, v, t, &f)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	writeJSONHeader(w, status)
	_, _ = w.Write(body)
}

// writeJSONHeader writes the status and the headers every JSON answer has.
func writeJSONHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
}

const rfc3339Nanos = "2006-01-02T15:04:05.000000000Z07:00"

// appendTime appends unix nanoseconds as a JSON string, RFC 3339 UTC with nanoseconds.
func appendTime(b []byte, unixNano int64) []byte {
	b = append(b, '"')
	b = time.Unix(0, unixNano).UTC().AppendFormat(b, rfc3339Nanos)
	return append(b, '"')
}
