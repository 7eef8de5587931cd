// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzHandler sends arbitrary paths and queries to every contract: the answer
// is always JSON, never a panic and never a server error.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"/api/v1/traces/" + fixtureHex + "?flat=true",
		"/api/v1/traces/15161849952847513100",
		"/api/v2/trace/" + fixtureHex + "?include_fields=spanID,name&include_fields=meta",
		"/api/v2/trace/%ff?include_fields=,",
		"/v1/trace/call/" + callID,
		"/v1/trace/call/{" + callID + "}",
		"/v1/trace/call/urn:uuid:" + callID,
		"/api/v1/traces/",
		"/api/v1/traces?service=frontend&attr=http.status_code=500&kind=server&status=error,running&min_duration=1ms&start=2026-01-02T15:04:05Z&limit=3",
		"/api/v1/traces?next=AQAAAAAAAAABAAAAAAAAAAI&end=1",
		"/api/v1/services/frontend/operations",
		"/api/v1/attributes/http.route/values?limit=5",
		"/api/v1//traces/x/../y",
		"/nope",
	} {
		f.Add(seed)
	}
	h := fixtureHandler(f, defaultOptions())
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.Parse(target)
		if err != nil || u.Path == "" || u.Path[0] != '/' || u.Host != "" || u.Scheme != "" {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: content type %q", target, ct)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: invalid JSON %q", target, rec.Body)
		}
	})
}
