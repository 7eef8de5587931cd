// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package api serves the trace lookup HTTP API from the store. Each contract
// has one file holding its routes, its field mapping and its error format.
package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/ui"
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
	// OutcomeForbidden is a request for a tenant its client may not read.
	OutcomeForbidden Outcome = "forbidden"
	// OutcomeRateLimited is a request past its tenant's rate limit.
	OutcomeRateLimited Outcome = "rate_limited"
)

// Route says what a request asked, for self-telemetry.
type Route string

// Routes.
const (
	// RouteLookup is one trace by id or call id, on any contract.
	RouteLookup Route = "lookup"
	// RouteSearch is a search: GET /api/v1/traces, Tempo's /api/search,
	// Jaeger's /api/traces and api_v3's traces and trace-summaries.
	RouteSearch Route = "search"
	// RouteListing is services, operations, attribute keys and values
	// (tags and tag values, in Tempo's words).
	RouteListing Route = "listing"
	// RouteHealth is Tempo's /api/echo and /api/status/buildinfo, which
	// data sources call to check that the API answers and what it is.
	RouteHealth Route = "health"
)

// Options configure the API.
type Options struct {
	// Tenancy says which tenant each request reads (see Handler.tenantOf).
	Tenancy Tenancy
	// RateLimits limit each tenant's requests, per contract.
	RateLimits RateLimits
	// Now is the rate limits' clock; nil means time.Now.
	Now func() time.Time
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
	// Peers, when set, are the other replicas: lookups and searches ask
	// them too (see package remote), unless the request is a peer's own.
	Peers *remote.Peers
	// LongTermStore, when set, is asked for traces the index and the peers
	// do not hold, or hold only part of.
	LongTermStore *remote.LongTermStore
	// CallIDAttribute is the attribute the 000 contract's call ids are in.
	CallIDAttribute string
	// OnLookup, when set, is told the kind, outcome, tenant and latency of
	// every request on a route ("" when no tenant was settled).
	OnLookup func(route Route, outcome Outcome, tenant string, latency time.Duration)
	// Logger reports stored spans that could not be read; nil logs nothing.
	Logger *zap.Logger
	// Search bounds each search's work (see search.Options).
	Search search.Options
	// NoSearch answers the search and listing routes that search is off.
	NoSearch bool
	// UIPath, when set, serves the trace viewer page under it (see package ui).
	UIPath string
}

// Handler serves every contract.
type Handler struct {
	store  *store.Store
	opts   Options
	routes []route
	mux    *http.ServeMux
	admit  *admission
	ui     *ui.Handler // nil: no viewer
	// patterns are the API's routes, as registered (the OpenAPI document
	// must name each).
	patterns []string
}

// RateLimits are the contracts' rate limits.
type RateLimits struct {
	Native    RateLimit
	APMTrace  RateLimit
	CallTrace RateLimit
	Tempo     RateLimit
	Jaeger    RateLimit
	Zipkin    RateLimit
}

// DefaultAPMTraceRateLimit is the 003 document's limit: 60 requests per
// minute per organization.
const DefaultAPMTraceRateLimit = 60

// route is one contract: the path prefix its routes share, which picks
// the format of an error on an unknown path, and its rate limit.
type route struct {
	prefix string
	c      contract
	limit  *limiter // nil: no limit
}

// NewHandler returns the API's HTTP handler.
func NewHandler(st *store.Store, opts Options) *Handler {
	if opts.Tenancy.DefaultTenant == "" {
		opts.Tenancy.DefaultTenant = store.DefaultTenant
	}
	if opts.Tenancy.Header == "" {
		opts.Tenancy.Header = DefaultTenantHeader
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{store: st, opts: opts, admit: newAdmission(opts.LookupMemoryBytes), mux: http.NewServeMux()}
	n := native{h}
	tp, jg, j3 := tempo{h}, jaeger{h}, jaegerV3{h}
	tempoLimit := newLimiter("trace_lookup_tempo", opts.RateLimits.Tempo, opts.Now)
	jaegerLimit := newLimiter("trace_lookup_jaeger", opts.RateLimits.Jaeger, opts.Now)
	// The first prefix a path starts with picks the format of its errors.
	h.routes = []route{
		{"/api/v2/trace/", apmTrace{h}, newLimiter("trace_lookup_apm_trace", opts.RateLimits.APMTrace, opts.Now)},
		{"/v1/trace/call/", callTrace{h}, newLimiter("trace_lookup_call_trace", opts.RateLimits.CallTrace, opts.Now)},
		{"/tempo/", tp, tempoLimit},
		{"/api/v2/traces/", tp, tempoLimit},
		{"/api/v2/search/", tp, tempoLimit},
		{"/api/search", tp, tempoLimit},
		{"/api/echo", tp, tempoLimit},
		{"/api/status/", tp, tempoLimit},
		{"/jaeger/api/v3/", j3, jaegerLimit},
		{"/api/v3/", j3, jaegerLimit},
		{"/jaeger/", jg, jaegerLimit},
		{"/api/services", jg, jaegerLimit},
		{"/api/operations", jg, jaegerLimit},
		{"/api/traces", jg, jaegerLimit},
		{"/zipkin/", zipkin{h}, newLimiter("trace_lookup_zipkin", opts.RateLimits.Zipkin, opts.Now)},
		{"/", n, newLimiter("trace_lookup_native", opts.RateLimits.Native, opts.Now)},
	}
	at := func(prefix string) *route {
		for i := range h.routes {
			if h.routes[i].prefix == prefix {
				return &h.routes[i]
			}
		}
		panic("no route " + prefix)
	}
	apm, call, nat := at("/api/v2/trace/"), at("/v1/trace/call/"), at("/")
	tpr, jgr, j3r := at("/tempo/"), at("/jaeger/"), at("/api/v3/")
	// An empty id ({$}) is the contract's bad id, not an unknown route.
	for _, p := range []string{"{id}", "{$}"} {
		h.handle("/api/v2/trace/"+p, apm, RouteLookup, lookupBy(apm.c))
		h.handle("/v1/trace/call/"+p, call, RouteLookup, lookupBy(call.c))
		h.handle("/api/v1/traces/"+p, nat, RouteLookup, lookupBy(n))
	}
	h.handle("/api/openapi.json", nat, RouteHealth, serveOpenAPI)
	h.handle("/api/v1/traces", nat, RouteSearch, n.search)
	h.handle("/api/v1/services", nat, RouteListing, n.services)
	h.handle("/api/v1/services/{service}/operations", nat, RouteListing, n.operations)
	h.handle("/api/v1/attributes", nat, RouteListing, n.attributeKeys)
	h.handle("/api/v1/attributes/{key}/values", nat, RouteListing, n.attributeValues)
	// Tempo and Jaeger, at the paths their clients call and under their
	// own prefix. GET /api/traces/{id} is both Tempo's (v1) and Jaeger's:
	// Grafana's Tempo data source asks it for protobuf, Jaeger's clients
	// for JSON, so the Accept header picks.
	tempoV1 := func(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
		return tp.trace(w, r, tenant, r.PathValue("id"), query, false)
	}
	for _, p := range []string{"{id}", "{$}"} {
		h.handleBy("/api/traces/"+p, RouteLookup, func(r *http.Request) (*route, endpoint) {
			if wantsProtobuf(r) {
				return tpr, tempoV1
			}
			return jgr, lookupBy(jg)
		})
		h.handle("/tempo/api/traces/"+p, tpr, RouteLookup, tempoV1)
		h.handle("/jaeger/api/traces/"+p, jgr, RouteLookup, lookupBy(jg))
	}
	for _, prefix := range []string{"", "/tempo"} {
		h.handle(prefix+"/api/echo", tpr, RouteHealth, tp.echo)
		h.handle(prefix+"/api/status/buildinfo", tpr, RouteHealth, tp.buildinfo)
		for _, p := range []string{"{id}", "{$}"} {
			h.handle(prefix+"/api/v2/traces/"+p, tpr, RouteLookup, lookupBy(tp))
		}
		h.handle(prefix+"/api/search", tpr, RouteSearch, tp.search)
		h.handle(prefix+"/api/search/tags", tpr, RouteListing, tp.tags(false))
		h.handle(prefix+"/api/v2/search/tags", tpr, RouteListing, tp.tags(true))
		h.handle(prefix+"/api/search/tag/{tag}/values", tpr, RouteListing, tp.tagValues(false))
		h.handle(prefix+"/api/v2/search/tag/{tag}/values", tpr, RouteListing, tp.tagValues(true))
	}
	for _, prefix := range []string{"", "/jaeger"} {
		h.handle(prefix+"/api/services", jgr, RouteListing, jg.services)
		h.handle(prefix+"/api/services/{service}/operations", jgr, RouteListing, jg.operationNames)
		h.handle(prefix+"/api/operations", jgr, RouteListing, jg.operations)
		h.handle(prefix+"/api/traces", jgr, RouteSearch, jg.search)
		h.handle(prefix+"/api/v3/services", j3r, RouteListing, j3.services)
		h.handle(prefix+"/api/v3/operations", j3r, RouteListing, j3.operations)
		h.handle(prefix+"/api/v3/traces", j3r, RouteSearch, j3.search)
		h.handle(prefix+"/api/v3/trace-summaries", j3r, RouteSearch, j3.summaries)
		for _, p := range []string{"{id}", "{$}"} {
			h.handle(prefix+"/api/v3/traces/"+p, j3r, RouteLookup, lookupBy(j3))
		}
	}
	zk, zkr := zipkin{h}, at("/zipkin/")
	h.handle("/zipkin/api/v2/services", zkr, RouteListing, zk.services)
	h.handle("/zipkin/api/v2/spans", zkr, RouteListing, zk.spanNames)
	h.handle("/zipkin/api/v2/remoteServices", zkr, RouteListing, zk.remoteServices)
	h.handle("/zipkin/api/v2/traces", zkr, RouteSearch, zk.traces)
	for _, p := range []string{"{id}", "{$}"} {
		h.handle("/zipkin/api/v2/trace/"+p, zkr, RouteLookup, lookupBy(zk))
	}
	if opts.UIPath != "" {
		h.ui = ui.New(opts.UIPath, opts.Tenancy.Header)
		base := h.ui.Base()
		page := func(w http.ResponseWriter, r *http.Request) { h.ui.ServePage(w, r) }
		for _, p := range []string{base + "{$}", base + "trace/{id}", base + "ui/{file}"} {
			h.mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { ui.WriteMethodNotAllowed(w) })
		}
		h.mux.HandleFunc("GET "+base+"{$}", page)
		h.mux.HandleFunc("GET "+base+"trace/{id}", page)
		h.mux.HandleFunc("GET "+base+"ui/{file}", func(w http.ResponseWriter, r *http.Request) { h.ui.ServeAsset(w, r, r.PathValue("file")) })
	}
	// Everything else is the contract's 404; ServeMux would redirect a
	// path that names a {$} pattern but its last slash.
	for _, p := range []string{"/", "/api/v2/trace", "/v1/trace/call", "/api/v2/traces", "/tempo/api/v2/traces", "/tempo/api/traces", "/zipkin/api/v2/trace"} {
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { h.notFound(w, r) })
	}
	return h
}

// endpoint answers one route's request for tenant.
type endpoint func(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome

// lookupBy is the endpoint of a contract's one lookup route.
func lookupBy(c contract) endpoint {
	return func(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
		return c.serve(w, r, tenant, r.PathValue("id"), query)
	}
}

// handle serves GET (and HEAD) on pattern, and answers any other method
// with the contract's own 405.
func (h *Handler) handle(pattern string, rt *route, kind Route, ep endpoint) {
	h.handleBy(pattern, kind, func(*http.Request) (*route, endpoint) { return rt, ep })
}

// handleBy is handle with the contract picked per request.
func (h *Handler) handleBy(pattern string, kind Route, pick func(*http.Request) (*route, endpoint)) {
	h.patterns = append(h.patterns, pattern)
	h.mux.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt, ep := pick(r)
		outcome, tenant := h.serve(w, r, rt, ep)
		if h.opts.OnLookup != nil {
			h.opts.OnLookup(kind, outcome, tenant, time.Since(start))
		}
	})
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rt, _ := pick(r)
		w.Header().Set("Allow", "GET, HEAD")
		rt.c.writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", Echo(r.Method)+" is not allowed; use GET")
	})
}

// contract is one API contract: how it answers its lookup and its errors.
type contract interface {
	// serve answers tenant's lookup of the id the path names.
	serve(w http.ResponseWriter, r *http.Request, tenant, id string, query url.Values) Outcome
	// writeError answers an error in the contract's own format.
	writeError(w http.ResponseWriter, status int, code, message string)
}

// refusals is a contract whose document gives its own answers to a busy
// lookup and a request past the rate limit; the others answer both as
// errors, 503 and 429.
type refusals interface {
	writeBusy(w http.ResponseWriter)
	writeRateLimited(w http.ResponseWriter)
}

// writeBusy answers a lookup the memory budget could not admit, to be
// retried in a second.
func writeBusy(w http.ResponseWriter, c contract) {
	w.Header().Set("Retry-After", "1")
	if r, ok := c.(refusals); ok {
		r.writeBusy(w)
		return
	}
	c.writeError(w, http.StatusServiceUnavailable, "SERVICE_BUSY", busyMessage)
}

// writeRateLimited answers a request past its tenant's rate limit.
func writeRateLimited(w http.ResponseWriter, c contract) {
	if r, ok := c.(refusals); ok {
		r.writeRateLimited(w)
		return
	}
	c.writeError(w, http.StatusTooManyRequests, "RATE_LIMITED", rateLimitedMessage)
}

// routeOf is the contract whose prefix path has; unknown paths answer in
// the native format.
func (h *Handler) routeOf(path string) *route {
	for i := range h.routes {
		if strings.HasPrefix(path, h.routes[i].prefix) {
			return &h.routes[i]
		}
	}
	return &h.routes[len(h.routes)-1]
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.routeOf(r.URL.Path).c.writeError(w, http.StatusNotFound, "NOT_FOUND", "no route for "+Echo(r.URL.Path)+"; see the API reference for the paths served")
}

// WriteError answers an error that arose before the API saw the request
// (a failed authentication, a body that could not be decompressed) in
// the format of the contract its path names: the server's error handler.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, message string, status int) {
	if h.isPage(r.URL.Path) {
		ui.WriteError(w, status, Echo(message))
		return
	}
	rt := h.routeOf(r.URL.Path)
	code := "INVALID_REQUEST"
	switch status {
	case http.StatusUnauthorized:
		code = "UNAUTHORIZED"
	case http.StatusRequestEntityTooLarge:
		code = "REQUEST_TOO_LARGE"
	}
	rt.c.writeError(w, status, code, Echo(message))
}

// maxEcho is the most of a client's input an error message repeats.
const maxEcho = 128

// Echo cuts a client's input s for repeating in an error message or a
// log line, at a character boundary.
func Echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	n := maxEcho
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// ServeHTTP routes to the contract the path names. A path that is not in
// its clean form (// or . or .. segments, before unescaping, as ServeMux
// reads it) names no route: ServeMux would redirect it, in HTML.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.EscapedPath(); p == "" || p[0] != '/' || cleanPath(p) != p {
		h.notFound(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// cleanPath is path.Clean keeping a trailing slash, as ServeMux cleans.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// serve settles the request's tenant and its rate limit, both before any
// lookup work, then lets the endpoint answer.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt *route, ep endpoint) (Outcome, string) {
	c := rt.c
	a := h.tenantOf(r)
	if a.status != 0 {
		c.writeError(w, a.status, a.code, a.message)
		if a.status == http.StatusForbidden {
			return OutcomeForbidden, ""
		}
		return OutcomeBadRequest, ""
	}
	if rt.limit != nil && !rt.limit.take(w, a.tenant) {
		writeRateLimited(w, c)
		return OutcomeRateLimited, a.tenant
	}
	// r.URL.Query drops what it cannot parse, and every parameter past Go's
	// limit of 10,000: a parameter the client sent must never be ignored.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		c.writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", "the query string could not be read: "+Echo(err.Error()))
		return OutcomeBadRequest, a.tenant
	}
	return ep(w, r, a.tenant, query), a.tenant
}

// findLocal resolves a parsed trace id in the index: an exact match
// first, then, for a 64-bit id, the newest trace whose low 64 bits match.
func (h *Handler) findLocal(tenant string, cands []traceid.Candidate) (store.Found, bool) {
	for _, c := range cands {
		if f, ok := h.store.Find(tenant, c.ID); ok {
			return f, true
		}
	}
	for _, c := range cands {
		if c.Is64Bit {
			if f, ok := h.store.FindByLow64(tenant, c.Low64()); ok {
				return f, true
			}
		}
	}
	return store.Found{}, false
}

// lookup admits, reads, assembles and answers one found trace; every
// contract answers a found trace this way. It answers 404 when the trace
// left the index in between (and nothing else holds it).
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, c contract, hd held, v view, notFound func()) Outcome {
	f := hd.found()
	release, ok := h.admit.acquire(r.Context(), lookupCost(f, v))
	if !ok {
		writeBusy(w, c)
		return OutcomeBusy
	}
	defer release()
	t, ok := h.build(r.Context(), &hd)
	if !ok {
		notFound()
		return OutcomeNotFound
	}
	defer t.Release()
	setSources(w, &hd)
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

// searchOff answers a search or listing route in c's format while the
// search indexes are off; false when they are on.
func (h *Handler) searchOff(w http.ResponseWriter, c contract) (Outcome, bool) {
	if !h.opts.NoSearch {
		return "", false
	}
	c.writeError(w, http.StatusNotFound, "SEARCH_DISABLED", "search is turned off in this collector's configuration (search::enabled: false)")
	return OutcomeNotFound, true
}

// isPage says whether path names the viewer's page or its files.
func (h *Handler) isPage(p string) bool {
	if h.ui == nil {
		return false
	}
	rest, ok := strings.CutPrefix(p, h.ui.Base())
	return ok && (rest == "" || strings.HasPrefix(rest, "trace/") || strings.HasPrefix(rest, "ui/"))
}
