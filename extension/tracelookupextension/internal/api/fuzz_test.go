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
// is always JSON (plain text for Tempo's and Zipkin's routes, as they
// answer errors),
// never a panic and never a server error.
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
		"/api/echo",
		"/api/v2/traces/5b8efff7?start=1&end=2",
		"/tempo/api/traces/" + fixtureHex,
		"/api/search?q=%7B+resource.service.name+%3D+%22payment%22+%26%26+(status+%3D+error+%7C%7C+duration+%3E+1ms)+%7D&limit=2&spss=1&start=1&end=2000000000",
		"/api/v2/search/tags?scope=span",
		"/api/v2/search/tag/resource.service.name/values?q=%7Bkind%3Dserver%7D",
		"/api/search/tag/http.route/values",
		"/api/services/payment/operations",
		"/api/operations?service=frontend&spanKind=server",
		"/api/traces?service=payment&tags=%7B%22amount%22%3A%2242.5%22%7D&minDuration=1ms&limit=3&start=1&end=9999999999999999",
		"/jaeger/api/traces/" + fixtureHex,
		"/api/v3/traces/" + fixtureHex,
		"/api/v3/trace-summaries?query.service_name=payment&query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2030-01-01T00:00:00Z&query.pagination.page_size=1",
		"/api/v3/operations?service=payment",
		"/zipkin/api/v2/traces?serviceName=payment&spanName=charge+card&annotationQuery=error+and+amount%3D42.5&minDuration=1000&endTs=1700000001000&lookback=86400000&limit=3",
		"/zipkin/api/v2/trace/" + fixtureHex,
		"/zipkin/api/v2/spans?serviceName=payment",
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
		ct := rec.Header().Get("Content-Type")
		switch h.routeOf(u.Path).c.(type) {
		case tempo, zipkin:
			if ct == "text/plain; charset=utf-8" {
				return
			}
		}
		if ct != "application/json" {
			t.Fatalf("%s: content type %q", target, ct)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: invalid JSON %q", target, rec.Body)
		}
	})
}
