// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// tenantStore holds the fixture under team-a, and only its late span, under
// the same trace id, under team-b.
func tenantStore(t *testing.T) *store.Store {
	t.Helper()
	st := store.New(store.Config{MaxBytes: 64 << 20, CallIDAttribute: "call.id"})
	t.Cleanup(st.Close)
	first, late := fixtureBatches()
	st.Ingest("team-a", first)
	st.Ingest("team-a", late)
	_, late = fixtureBatches()
	st.Ingest("team-b", late)
	return st
}

// authData is what an authenticator extension puts in client.Info.
type authData map[string]any

func (a authData) GetAttribute(name string) any { return a[name] }

func (a authData) GetAttributeNames() []string {
	var names []string
	for n := range a {
		names = append(names, n)
	}
	return names
}

// request sends one request with the given headers and, when subject is
// set, as a client that authenticated with that username.
func request(t *testing.T, h http.Handler, method, target string, header map[string]string, subject string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if subject != "" {
		req = req.WithContext(client.NewContext(context.Background(), client.Info{Auth: authData{"username": subject}}))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, body: rec.Body.Bytes(), hdr: rec.Header()}
}

var (
	nativePath = "/api/v1/traces/" + fixtureHex + "?flat=true"
	apmPath    = "/api/v2/trace/" + fixtureHex
	callPath   = "/v1/trace/call/" + callID
)

// Each tenant sees its own trace on every contract; any other tenant gets
// exactly the answer it gets for a trace that was never received.
func TestTenantIsolationOnEveryContract(t *testing.T) {
	h := NewHandler(tenantStore(t), Options{})
	as := func(tenant string) map[string]string { return map[string]string{"X-Scope-OrgID": tenant} }

	r := request(t, h, http.MethodGet, nativePath, as("team-a"), "")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.Equal(t, "team-a", r.json(t)["organization_id"])
	assert.EqualValues(t, 5, r.json(t)["span_count"])
	r = request(t, h, http.MethodGet, nativePath, as("team-b"), "")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "team-b", r.json(t)["organization_id"])
	assert.EqualValues(t, 1, r.json(t)["span_count"])

	r = request(t, h, http.MethodGet, apmPath, as("team-a"), "")
	require.Equal(t, http.StatusOK, r.code)
	assert.Len(t, r.json(t)["data"].(map[string]any)["attributes"].(map[string]any)["spans"], 5)
	r = request(t, h, http.MethodGet, apmPath, as("team-b"), "")
	require.Equal(t, http.StatusOK, r.code)
	assert.Len(t, r.json(t)["data"].(map[string]any)["attributes"].(map[string]any)["spans"], 1)

	r = request(t, h, http.MethodGet, callPath, as("team-a"), "")
	require.Equal(t, http.StatusOK, r.code)

	// Not found, byte for byte as for an id no tenant holds.
	never := map[string]string{
		nativePath: "/api/v1/traces/" + strings.Repeat("ab", 16) + "?flat=true",
		apmPath:    "/api/v2/trace/" + strings.Repeat("ab", 16),
		callPath:   "/v1/trace/call/11111111-2222-4333-8444-555555555555",
	}
	for _, hdr := range []map[string]string{as("team-c"), as("default"), nil} {
		for path, other := range never {
			got := request(t, h, http.MethodGet, path, hdr, "")
			want := request(t, h, http.MethodGet, other, hdr, "")
			assert.Equal(t, http.StatusNotFound, got.code, "%v %s", hdr, path)
			assert.Equal(t, strings.ReplaceAll(string(want.body), idOf(other), "ID"), strings.ReplaceAll(string(got.body), idOf(path), "ID"), "%v %s", hdr, path)
		}
	}
	// team-b holds the trace id, but not the call id's span.
	r = request(t, h, http.MethodGet, callPath, as("team-b"), "")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.JSONEq(t, `{"status":"error","error_code":"TRACE_NOT_FOUND","message":"Trace not found"}`, string(r.body))
}

// idOf is the id a lookup path names.
func idOf(path string) string {
	path, _, _ = strings.Cut(path, "?")
	return path[strings.LastIndexByte(path, '/')+1:]
}

func TestInvalidTenantHeader(t *testing.T) {
	h := NewHandler(tenantStore(t), Options{})
	req := httptest.NewRequest(http.MethodGet, nativePath, nil)
	req.Header.Add("X-Scope-OrgID", "team-b")
	req.Header.Add("X-Scope-OrgID", "team-a")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Equal(t, `{"status":"error","error_code":"INVALID_TENANT","message":"the X-Scope-OrgID header must be sent once"}`, rec.Body.String())

	r := request(t, h, http.MethodGet, nativePath, map[string]string{"X-Scope-OrgID": "../a"}, "")
	assert.Equal(t, http.StatusBadRequest, r.code)
	assert.Equal(t, `{"status":"error","error_code":"INVALID_TENANT","message":"the X-Scope-OrgID header does not name a valid tenant: use 1 to 150 letters, digits or !-_.*'(), and neither . nor .."}`, string(r.body))
	r = request(t, h, http.MethodGet, apmPath, map[string]string{"X-Scope-OrgID": "a b"}, "")
	assert.Equal(t, http.StatusBadRequest, r.code)
	assert.Equal(t, `{"errors":[{"status":"400","title":"Bad Request","detail":"the X-Scope-OrgID header does not name a valid tenant: use 1 to 150 letters, digits or !-_.*'(), and neither . nor ..","meta":{}}]}`, string(r.body))
}

// The 403 bodies, byte for byte, and who may read what.
func TestPermissions(t *testing.T) {
	st := tenantStore(t)
	h := NewHandler(st, Options{Tenancy: Tenancy{
		AuthAttribute: "username",
		Permissions: map[string][]string{
			"alice": {"team-a"},
			"bob":   {"team-b", "team-a"},
			"ops":   {"*"},
		},
	}})
	hdr := func(tenant string) map[string]string { return map[string]string{"X-Scope-OrgID": tenant} }

	forbidden := map[string]string{
		nativePath: `{"status":"error","error_code":"FORBIDDEN","message":"alice may not read tenant team-b"}`,
		callPath:   `{"status":"error","error_code":"FORBIDDEN","message":"alice may not read tenant team-b"}`,
		apmPath:    `{"errors":[{"status":"403","title":"Forbidden","detail":"alice may not read tenant team-b","meta":{}}]}`,
	}
	lookups := st.Stats().Lookups
	for path, body := range forbidden {
		r := request(t, h, http.MethodGet, path, hdr("team-b"), "alice")
		assert.Equal(t, http.StatusForbidden, r.code, path)
		assert.Equal(t, body, string(r.body), path)
		assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	}
	assert.Equal(t, lookups, st.Stats().Lookups, "a refused request looks nothing up")

	// A subject reads its first tenant when the request names none.
	r := request(t, h, http.MethodGet, nativePath, nil, "alice")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "team-a", r.json(t)["organization_id"])
	r = request(t, h, http.MethodGet, nativePath, nil, "bob")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "team-b", r.json(t)["organization_id"])
	r = request(t, h, http.MethodGet, nativePath, hdr("team-a"), "bob")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "team-a", r.json(t)["organization_id"])
	r = request(t, h, http.MethodGet, apmPath, hdr("team-b"), "ops")
	assert.Equal(t, http.StatusOK, r.code)

	// Not in the map: may read nothing.
	r = request(t, h, http.MethodGet, nativePath, nil, "mallory")
	assert.Equal(t, http.StatusForbidden, r.code)
	assert.Equal(t, `{"status":"error","error_code":"FORBIDDEN","message":"mallory may not read any tenant"}`, string(r.body))
	// Authenticated without the attribute: refused, never let through.
	r = request(t, h, http.MethodGet, apmPath, nil, "")
	assert.Equal(t, http.StatusForbidden, r.code)
	assert.Equal(t, `{"errors":[{"status":"403","title":"Forbidden","detail":"the authenticated client has no username to grant it a tenant by","meta":{}}]}`, string(r.body))
}

// Without a permissions map, an authenticated client reads the tenant named
// like it, and no other.
func TestOwnTenantWithoutPermissions(t *testing.T) {
	h := NewHandler(tenantStore(t), Options{Tenancy: Tenancy{AuthAttribute: "username"}})
	r := request(t, h, http.MethodGet, nativePath, nil, "team-b")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "team-b", r.json(t)["organization_id"])
	r = request(t, h, http.MethodGet, nativePath, map[string]string{"X-Scope-OrgID": "team-b"}, "team-b")
	assert.Equal(t, http.StatusOK, r.code)
	r = request(t, h, http.MethodGet, nativePath, map[string]string{"X-Scope-OrgID": "team-a"}, "team-b")
	assert.Equal(t, http.StatusForbidden, r.code)
	assert.Equal(t, `{"status":"error","error_code":"FORBIDDEN","message":"team-b may not read tenant team-a"}`, string(r.body))
	// An identity that cannot be a tenant id is told so, not sent to a 404.
	r = request(t, h, http.MethodGet, nativePath, nil, "auth0|123")
	assert.Equal(t, http.StatusForbidden, r.code)
	assert.Equal(t, `{"status":"error","error_code":"FORBIDDEN","message":"the authenticated client's username is not a valid tenant id, so it has no tenant to read; map it to tenants with tenancy::permissions"}`, string(r.body))
}

// A multi-valued claim, as oidc hands over claims.<name> decoded from
// JSON: its first value names the client.
func TestSubjectFromAClaimList(t *testing.T) {
	h := NewHandler(tenantStore(t), Options{Tenancy: Tenancy{AuthAttribute: "claims.tenants", Permissions: map[string][]string{"team-b": {"team-b"}}}})
	req := httptest.NewRequest(http.MethodGet, nativePath, nil)
	req = req.WithContext(client.NewContext(context.Background(), client.Info{Auth: authData{"claims.tenants": []any{"team-b", "team-a"}}}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"organization_id":"team-b"`)
}

type testClock struct{ now time.Time }

func (c *testClock) Now() time.Time { return c.now }

// The 003 limit: its headers on every answer, its 429 body, a refill, and a
// limited request that looks nothing up.
func TestRateLimit003(t *testing.T) {
	st := tenantStore(t)
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	h := NewHandler(st, Options{RateLimits: RateLimits{APMTrace: RateLimit{RequestsPerMinute: 2}}, Now: clock.Now})
	a := map[string]string{"X-Scope-OrgID": "team-a"}

	headers := func(r response) []string {
		return []string{r.hdr.Get("X-RateLimit-Limit"), r.hdr.Get("X-RateLimit-Period"), r.hdr.Get("X-RateLimit-Remaining"), r.hdr.Get("X-RateLimit-Reset"), r.hdr.Get("X-RateLimit-Name")}
	}
	r := request(t, h, http.MethodGet, apmPath, a, "")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, []string{"2", "60", "1", "30", "trace_lookup_apm_trace"}, headers(r))
	r = request(t, h, http.MethodGet, apmPath, a, "")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, []string{"2", "60", "0", "60", "trace_lookup_apm_trace"}, headers(r))

	lookups := st.Stats().Lookups
	r = request(t, h, http.MethodGet, apmPath, a, "")
	assert.Equal(t, http.StatusTooManyRequests, r.code)
	assert.Equal(t, `{"errors":["Too many requests"]}`, string(r.body))
	assert.Equal(t, "30", r.hdr.Get("Retry-After"))
	assert.Equal(t, []string{"2", "60", "0", "60", "trace_lookup_apm_trace"}, headers(r))
	assert.Equal(t, lookups, st.Stats().Lookups, "a limited request looks nothing up")

	// Another tenant has its own bucket; the other contracts have no limit.
	r = request(t, h, http.MethodGet, apmPath, map[string]string{"X-Scope-OrgID": "team-b"}, "")
	assert.Equal(t, http.StatusOK, r.code)
	r = request(t, h, http.MethodGet, nativePath, a, "")
	assert.Equal(t, http.StatusOK, r.code)
	assert.Empty(t, r.hdr.Get("X-RateLimit-Limit"))

	// Half a minute later, one request is back; a minute later, both.
	clock.now = clock.now.Add(30 * time.Second)
	r = request(t, h, http.MethodGet, apmPath, a, "")
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, []string{"2", "60", "0", "60", "trace_lookup_apm_trace"}, headers(r))
	clock.now = clock.now.Add(time.Minute)
	r = request(t, h, http.MethodGet, apmPath, a, "")
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "1", r.hdr.Get("X-RateLimit-Remaining"))
}

func TestRateLimitNativeAnd000(t *testing.T) {
	st := tenantStore(t)
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	h := NewHandler(st, Options{
		RateLimits: RateLimits{Native: RateLimit{RequestsPerMinute: 1}, CallTrace: RateLimit{RequestsPerMinute: 6}},
		Now:        clock.Now,
	})
	a := map[string]string{"X-Scope-OrgID": "team-a"}
	require.Equal(t, http.StatusOK, request(t, h, http.MethodGet, nativePath, a, "").code)
	r := request(t, h, http.MethodGet, nativePath, a, "")
	assert.Equal(t, http.StatusTooManyRequests, r.code)
	assert.Equal(t, `{"status":"error","error_code":"RATE_LIMITED","message":"this tenant made more requests than its rate limit allows; retry after the time in Retry-After"}`, string(r.body))
	assert.Equal(t, "60", r.hdr.Get("Retry-After"))

	for range 6 {
		require.Equal(t, http.StatusOK, request(t, h, http.MethodGet, callPath, a, "").code)
	}
	r = request(t, h, http.MethodGet, callPath, a, "")
	assert.Equal(t, http.StatusTooManyRequests, r.code)
	assert.Equal(t, `{"status":"error","error_code":"RATE_LIMITED","message":"this tenant made more requests than its rate limit allows; retry after the time in Retry-After"}`, string(r.body))
	assert.Equal(t, "10", r.hdr.Get("Retry-After"))
}

// Many tenants cannot grow the buckets past their bound, nor lock new
// tenants out: the least recently used bucket makes room.
func TestRateLimitBucketsBounded(t *testing.T) {
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	l := newLimiter("x", RateLimit{RequestsPerMinute: 1}, clock.Now)
	for i := range maxBuckets {
		require.True(t, l.take(httptest.NewRecorder(), "t"+strconv.Itoa(i)))
	}
	require.Len(t, l.buckets, maxBuckets)
	assert.False(t, l.take(httptest.NewRecorder(), "t9999"), "a spent bucket stays spent")
	// The table is full of spent buckets: a new tenant still gets its own.
	for i := range 20 {
		assert.True(t, l.take(httptest.NewRecorder(), "new"+strconv.Itoa(i)))
	}
	assert.Len(t, l.buckets, maxBuckets)
	assert.False(t, l.take(httptest.NewRecorder(), "t9999"), "recently used: kept")
	assert.True(t, l.take(httptest.NewRecorder(), "t0"), "least recently used: dropped, and new again")
}

// Authentication failures, reported by the server before the API sees the
// request, answer in the contract's format.
func TestUnauthorizedInEachContractsFormat(t *testing.T) {
	h := NewHandler(tenantStore(t), Options{})
	for path, want := range map[string]string{
		nativePath: `{"status":"error","error_code":"UNAUTHORIZED","message":"missing or empty authorization header: DD-API-KEY"}`,
		callPath:   `{"status":"error","error_code":"UNAUTHORIZED","message":"missing or empty authorization header: DD-API-KEY"}`,
		apmPath:    `{"errors":[{"status":"401","title":"Unauthorized","detail":"missing or empty authorization header: DD-API-KEY","meta":{}}]}`,
		"/nope":    `{"status":"error","error_code":"UNAUTHORIZED","message":"missing or empty authorization header: DD-API-KEY"}`,
	} {
		rec := httptest.NewRecorder()
		h.WriteError(rec, httptest.NewRequest(http.MethodGet, path, nil), "missing or empty authorization header: DD-API-KEY", http.StatusUnauthorized)
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Equal(t, want, rec.Body.String(), path)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	}
}

// HEAD answers every route as GET does, without a body.
func TestHeadOnEveryRoute(t *testing.T) {
	srv := httptest.NewServer(fixtureHandler(t, Options{RateLimits: RateLimits{APMTrace: RateLimit{RequestsPerMinute: 60}}}))
	t.Cleanup(srv.Close)
	do := func(method, path string) (*http.Response, []byte) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}
	for _, path := range []string{nativePath, "/api/v1/traces/" + fixtureHex, apmPath, callPath, "/api/v1/traces/" + strings.Repeat("ab", 16), "/api/v2/trace/zz", "/v1/trace/call/nope", "/nope"} {
		g, gBody := do(http.MethodGet, path)
		h, hBody := do(http.MethodHead, path)
		assert.Equal(t, g.StatusCode, h.StatusCode, path)
		assert.Equal(t, g.Header.Get("Content-Type"), h.Header.Get("Content-Type"), path)
		assert.Equal(t, strconv.Itoa(len(gBody)), h.Header.Get("Content-Length"), path)
		assert.Empty(t, hBody, path)
		assert.NotEmpty(t, gBody, path)
		if strings.HasPrefix(path, "/api/v2/") {
			assert.NotEmpty(t, h.Header.Get("X-RateLimit-Remaining"), path)
		}
	}
}
