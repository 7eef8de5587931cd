// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAPIDocument reads the document; span trees are recursive, which an
// array or a null ends.
func openAPIDocument(t *testing.T) libopenapi.Document {
	t.Helper()
	doc, err := libopenapi.NewDocumentWithConfiguration(OpenAPI(), &datamodel.DocumentConfiguration{
		IgnoreArrayCircularReferences:       true,
		IgnorePolymorphicCircularReferences: true,
	})
	require.NoError(t, err)
	return doc
}

func openAPIValidator(t *testing.T) validator.Validator {
	t.Helper()
	doc := openAPIDocument(t)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	return v
}

// The document is a valid OpenAPI 3.1 document, as an OpenAPI validator
// reads it.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	v := openAPIValidator(t)
	ok, errs := v.ValidateDocument()
	for _, e := range errs {
		t.Errorf("%s: %s", e.Message, e.Reason)
	}
	assert.True(t, ok)
	r := get(t, fixtureHandler(t, defaultOptions()), http.MethodGet, "/api/openapi.json")
	assert.Equal(t, http.StatusOK, r.code)
	assert.JSONEq(t, string(OpenAPI()), string(r.body), "served at /api/openapi.json")
}

// Every route the API registers is in the document.
func TestOpenAPINamesEveryRoute(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	model, err := openAPIDocument(t).BuildV3Model()
	require.NoError(t, err)
	documented := map[string]bool{}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for p, item := range model.Model.Paths.PathItems.FromOldest() {
		documented[param.ReplaceAllString(p, "{}")] = true
		assert.NotNil(t, item.Get, "%s has no GET", p)
		assert.NotNil(t, item.Head, "%s has no HEAD, which every route answers", p)
	}
	for _, p := range h.patterns {
		if strings.HasSuffix(p, "{$}") {
			continue // the empty id of a lookup route: its 400
		}
		assert.True(t, documented[param.ReplaceAllString(p, "{}")], "%s is not in the OpenAPI document", p)
	}
}

// Each route's answers, found and refused, are what the document says,
// to GET and to HEAD (the same status and headers, no body).
func TestAnswersMatchTheOpenAPIDocument(t *testing.T) {
	v := openAPIValidator(t)
	h := fixtureHandler(t, defaultOptions())
	window := "query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2030-01-01T00:00:00Z"
	for _, tt := range []struct {
		path   string
		accept string
		status int
	}{
		{"/api/v1/traces/" + fixtureHex, "", 200},
		{"/api/v1/traces/" + fixtureHex + "?flat=true", "", 200},
		{"/api/v1/traces/zz", "", 400},
		{"/api/v1/traces/0000000000000000000000000000beef", "", 404},
		{"/api/v1/traces?service=frontend&limit=2", "", 200},
		{"/api/v1/traces?limit=0", "", 400},
		{"/api/v1/services", "", 200},
		{"/api/v1/services/frontend/operations", "", 200},
		{"/api/v1/attributes", "", 200},
		{"/api/v1/attributes/http.route/values", "", 200},
		{"/api/openapi.json", "", 200},
		{"/v1/trace/call/" + callID, "", 200},
		{"/v1/trace/call/zz", "", 422},
		{"/v1/trace/call/9b2c1d4e-0000-4000-8000-000000000000", "", 404},
		{"/api/v2/trace/" + fixtureHex, "", 200},
		{"/api/v2/trace/zz", "", 400},
		{"/api/v2/trace/0000000000000000000000000000beef", "", 404},
		{"/api/v2/traces/" + fixtureHex, "", 200},
		{"/api/v2/traces/" + fixtureHex, "application/protobuf", 200},
		{"/tempo/api/v2/traces/" + fixtureHex, "", 200},
		{"/api/v2/traces/zz", "", 400},
		{"/api/v2/traces/beef", "", 404},
		{"/tempo/api/traces/" + fixtureHex, "application/protobuf", 200},
		{"/api/search?limit=2", "", 200},
		{"/api/search?q=%7B", "", 400},
		{"/api/search/tags", "", 200},
		{"/api/v2/search/tags", "", 200},
		{"/api/search/tag/http.route/values", "", 200},
		{"/api/v2/search/tag/.http.route/values", "", 200},
		{"/api/echo", "", 200},
		{"/api/status/buildinfo", "", 200},
		{"/api/traces/" + fixtureHex, "", 200},
		{"/jaeger/api/traces/" + fixtureHex, "", 200},
		{"/api/traces/0000000000000000000000000000beef", "", 404},
		{"/api/traces/0000000000000000000000000000beef", "application/protobuf", 404},
		{"/api/traces/zz", "application/protobuf", 400},
		{"/api/traces?service=frontend&limit=2", "", 200},
		{"/api/services", "", 200},
		{"/api/services/frontend/operations", "", 200},
		{"/api/operations?service=frontend", "", 200},
		{"/api/v3/traces/" + fixtureHex, "", 200},
		{"/api/v3/traces/zz", "", 400},
		{"/api/v3/traces?query.service_name=frontend&" + window, "", 200},
		{"/api/v3/trace-summaries?query.service_name=frontend&" + window, "", 200},
		{"/api/v3/services", "", 200},
		{"/api/v3/operations?service=frontend", "", 200},
		{"/zipkin/api/v2/trace/" + fixtureHex, "", 200},
		{"/zipkin/api/v2/trace/zz", "", 400},
		{"/zipkin/api/v2/traces?serviceName=frontend&limit=2", "", 200},
		{"/zipkin/api/v2/services", "", 200},
		{"/zipkin/api/v2/spans?serviceName=frontend", "", 200},
		{"/zipkin/api/v2/remoteServices?serviceName=frontend", "", 200},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(method+" "+tt.path, func(t *testing.T) {
				req := httptest.NewRequest(method, "http://localhost"+tt.path, nil)
				if tt.accept != "" {
					req.Header.Set("Accept", tt.accept)
				}
				srv := httptest.NewServer(h) // a real server: it leaves out HEAD's body
				defer srv.Close()
				out, err := http.NewRequest(method, srv.URL+tt.path, nil)
				require.NoError(t, err)
				out.Header = req.Header
				resp, err := srv.Client().Do(out)
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, tt.status, resp.StatusCode)
				if tt.status == http.StatusOK {
					ok, errs := v.ValidateHttpRequest(req)
					for _, e := range errs {
						t.Errorf("request: %s: %s", e.Message, e.Reason)
					}
					assert.True(t, ok)
				}
				ok, errs := v.ValidateHttpResponse(req, resp)
				for _, e := range errs {
					t.Errorf("response: %s: %s %v", e.Message, e.Reason, e.SchemaValidationErrors)
				}
				assert.True(t, ok)
			})
		}
	}
}

// Each contract's refusals (a rate limit, a lookup that cannot get memory)
// are what the document says, in the contract's own format.
func TestRefusalsMatchTheOpenAPIDocument(t *testing.T) {
	v := openAPIValidator(t)
	one := RateLimit{RequestsPerMinute: 1}
	opts := defaultOptions()
	opts.RateLimits = RateLimits{Native: one, APMTrace: one, CallTrace: one, Tempo: one, Jaeger: one, Zipkin: one}
	limited := fixtureHandler(t, opts)
	busyOpts := defaultOptions()
	busyOpts.LookupMemoryBytes = 1
	busy := fixtureHandler(t, busyOpts)
	release, ok := busy.admit.acquire(t.Context(), 1) // the whole budget, held: every lookup waits, then is refused
	require.True(t, ok)
	defer release()
	check := func(t *testing.T, h http.Handler, path string, status int) {
		req := httptest.NewRequest(http.MethodGet, "http://localhost"+path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, status, rec.Code, rec.Body.String())
		ok, errs := v.ValidateHttpResponse(req, rec.Result())
		for _, e := range errs {
			t.Errorf("%s: %s %v", e.Message, e.Reason, e.SchemaValidationErrors)
		}
		assert.True(t, ok)
	}
	for _, path := range []string{
		"/api/v1/traces/" + fixtureHex, "/v1/trace/call/" + callID, "/api/v2/trace/" + fixtureHex,
		"/api/v2/traces/" + fixtureHex, "/api/traces/" + fixtureHex, "/api/v3/traces/" + fixtureHex, "/zipkin/api/v2/trace/" + fixtureHex,
	} {
		t.Run(path, func(t *testing.T) {
			busyStatus := http.StatusServiceUnavailable
			if strings.HasPrefix(path, "/api/v2/trace/") {
				busyStatus = http.StatusTooManyRequests // the 003 document has no 503 for it
			}
			check(t, busy, path, busyStatus)
			limited.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
			check(t, limited, path, http.StatusTooManyRequests)
		})
	}
	check(t, limited, "/api/echo", http.StatusTooManyRequests) // Tempo's, spent above
}
