// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// benchStore holds 1M spans: 10,000 traces of 100 spans, each in ten batches.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	st := store.New(store.Config{MaxBytes: 4 << 30, CallIDAttribute: "call.id"})
	for part := 0; part < 10; part++ {
		for t := uint64(0); t < 10000; t += 10 {
			st.Ingest("", spangen.Batch(t, 10, part*10, 10))
		}
	}
	return st
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchLookup(b *testing.B, path string) {
	h := NewHandler(benchStore(b), Options{MaxResponseSpans: 10000, MaxResponseBytes: 64 << 20})
	reqs := make([]*http.Request, 1000)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, path+spangen.TraceID(uint64(i*7)).String(), nil)
	}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, reqs[i%len(reqs)])
	}
}

// BenchmarkNativeLookup100: GET /api/v1/traces/{id} of a 100-span trace, 1M spans stored, without the network.
func BenchmarkNativeLookup100(b *testing.B) { benchLookup(b, "/api/v1/traces/") }

// BenchmarkAPMLookup100: the same through the 003 contract.
func BenchmarkAPMLookup100(b *testing.B) { benchLookup(b, "/api/v2/trace/") }

func oneTrace(b *testing.B) store.Trace {
	b.Helper()
	st := store.New(store.Config{MaxBytes: 1 << 30})
	for part := 0; part < 10; part++ {
		st.Ingest("", spangen.Batch(0, 1, part*10, 10))
	}
	t, _ := st.Get("", spangen.TraceID(0))
	return t
}

// BenchmarkBuildTrace: decode and assemble a 100-span trace (tree, summary).
func BenchmarkBuildTrace(b *testing.B) {
	t := oneTrace(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		traceview.Build(t, 0).Release()
	}
}

// BenchmarkEncodeNative: JSON of an assembled 100-span trace, as a tree.
func BenchmarkEncodeNative(b *testing.B) {
	tv := traceview.Build(oneTrace(b), 0)
	v := &nativeView{nativeSpanWriter{org: "default", tree: true}}
	e := emitter{limit: 1 << 30}
	render(&e, v, tv, &cut{})
	b.SetBytes(int64(len(e.b)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.b = e.b[:0]
		render(&e, v, tv, &cut{})
	}
}
