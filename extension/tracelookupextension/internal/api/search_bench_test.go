// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

var (
	searchStoreOnce sync.Once
	searchStore     *store.Store
)

// searchBenchStore holds 1M spans in 100,000 traces of 10 spans, sent as
// an SDK sends them (10 traces a request). One trace in 100 has a root
// span with feature.flag=beta; one in 1,000 calls payment's
// "POST /api/payment/refund" instead of its usual operation.
func searchBenchStore() *store.Store {
	searchStoreOnce.Do(func() {
		st := store.New(store.Config{MaxBytes: 4 << 30, CallIDAttribute: "call.id"})
		for t := uint64(0); t < 100_000; t += 10 {
			td := spangen.Batch(t, 10, 0, 10)
			number := make(map[[16]byte]uint64, 10)
			for n := t; n < t+10; n++ {
				number[spangen.TraceID(n)] = n
			}
			for _, rs := range td.ResourceSpans().All() {
				for _, s := range rs.ScopeSpans().At(0).Spans().All() {
					n := number[s.TraceID()]
					switch {
					case n%100 == 0 && s.ParentSpanID().IsEmpty():
						s.Attributes().PutStr("feature.flag", "beta")
					case n%1000 == 0 && s.Name() == "GET /api/payment/{id}":
						s.SetName("POST /api/payment/refund")
					}
				}
			}
			st.Ingest("", td)
		}
		searchStore = st
	})
	return searchStore
}

// benchSearch times each request and reports the median and the 99th percentile.
func benchSearch(b *testing.B, paths ...string) {
	h := NewHandler(searchBenchStore(), Options{MaxResponseSpans: 10000, MaxResponseBytes: 64 << 20})
	reqs := make([]*http.Request, len(paths))
	for i, p := range paths {
		reqs[i] = httptest.NewRequest(http.MethodGet, p, nil)
	}
	for _, p := range paths {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusOK || rec.Body.Len() < 50 {
			b.Fatalf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
	w := &discard{h: http.Header{}}
	times := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-us")
}

// BenchmarkSearchNewest20: GET /api/v1/traces, the 20 newest of 100,000 traces.
func BenchmarkSearchNewest20(b *testing.B) { benchSearch(b, "/api/v1/traces") }

// BenchmarkSearchServiceName: a selective service and name, held by one trace in 1,000.
func BenchmarkSearchServiceName(b *testing.B) {
	benchSearch(b, "/api/v1/traces?service=payment&name=POST+%2Fapi%2Fpayment%2Frefund")
}

// BenchmarkSearchAttr1Percent: an attribute value held by one trace in 100.
func BenchmarkSearchAttr1Percent(b *testing.B) {
	benchSearch(b, "/api/v1/traces?attr=feature.flag=beta")
}

// BenchmarkListServices: GET /api/v1/services.
func BenchmarkListServices(b *testing.B) { benchSearch(b, "/api/v1/services") }

// BenchmarkListOperations: GET /api/v1/services/{service}/operations.
func BenchmarkListOperations(b *testing.B) {
	benchSearch(b, "/api/v1/services/payment/operations", "/api/v1/services/frontend/operations")
}
