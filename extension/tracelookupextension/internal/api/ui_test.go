// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The viewer's page and files are served under their path, the API keeps
// its own answers, and an error before the page is a page that says so.
func TestViewerRoutes(t *testing.T) {
	for _, base := range []string{"/", "/viewer/"} {
		h := fixtureHandler(t, Options{UIPath: base})
		for _, p := range []string{base, base + "trace/" + fixtureHex} {
			r := get(t, h, http.MethodGet, p)
			require.Equal(t, http.StatusOK, r.code, p)
			assert.Equal(t, "text/html; charset=utf-8", r.hdr.Get("Content-Type"))
			assert.Contains(t, string(r.body), `<meta name="tracelookup-base" content="`+base+`">`)
			assert.Contains(t, r.hdr.Get("Content-Security-Policy"), "default-src 'self'")
		}
		for file, ct := range map[string]string{"app.js": "text/javascript; charset=utf-8", "model.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
			r := get(t, h, http.MethodGet, base+"ui/"+file)
			require.Equal(t, http.StatusOK, r.code, file)
			assert.Equal(t, ct, r.hdr.Get("Content-Type"))
		}
		assert.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, base+"ui/nothing.js").code)
		assert.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, base+"ui/index.html").code)
		// The API is unchanged beside it.
		r := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex)
		assert.Equal(t, http.StatusOK, r.code)
		assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
		r = get(t, h, http.MethodGet, "/nothing/here")
		assert.Equal(t, http.StatusNotFound, r.code)
		assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))

		// An authentication failure on the page is a page.
		rec := httptest.NewRecorder()
		h.WriteError(rec, httptest.NewRequest(http.MethodGet, base, nil), "missing or empty authorization header", http.StatusUnauthorized)
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.True(t, strings.Contains(rec.Body.String(), "401 Unauthorized: missing or empty authorization header"))
		rec = httptest.NewRecorder()
		h.WriteError(rec, httptest.NewRequest(http.MethodGet, "/api/v1/traces/"+fixtureHex, nil), "missing", http.StatusUnauthorized)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"), "the API answers in its own format")
	}
	// Off: no page, the root is the API's 404.
	h := fixtureHandler(t, Options{})
	r := get(t, h, http.MethodGet, "/")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
}
