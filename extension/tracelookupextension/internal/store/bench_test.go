// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// batches are export requests of 10 traces x 10 spans each, as a batching SDK sends them.
func batches(n int, firstTrace uint64) []ptrace.Traces {
	out := make([]ptrace.Traces, n)
	for i := range out {
		out[i] = spangen.Batch(firstTrace+uint64(i)*10, 10, 0, 10)
	}
	return out
}

// benchIngest ingests distinct spans: the store starts afresh (untimed)
// whenever the batches run out, so no span is ever a duplicate.
func benchIngest(b *testing.B, parallel, noSearch bool) {
	in := batches(2000, 0)
	spans := in[0].SpanCount()
	newStore := func() *Store {
		return New(Config{MaxBytes: 1 << 30, MaxSpansPerTrace: 10000, CallIDAttribute: "call.id", NoSearch: noSearch})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(b.N-done, len(in))
		b.StopTimer()
		s := newStore()
		var next atomic.Int64
		b.StartTimer()
		if parallel {
			var wg sync.WaitGroup
			for range runtime.GOMAXPROCS(0) {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
						s.Ingest("", in[i])
					}
				})
			}
			wg.Wait()
		} else {
			for i := 0; i < n; i++ {
				s.Ingest("", in[i])
			}
		}
		done += n
	}
	b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkIngest: one goroutine, batches of 100 new spans.
func BenchmarkIngest(b *testing.B) { benchIngest(b, false, false) }

// BenchmarkIngestNoSearch: the same, without the search indexes.
func BenchmarkIngestNoSearch(b *testing.B) { benchIngest(b, false, true) }

// BenchmarkIngestParallel: one goroutine per core, as the receiver's servers do.
func BenchmarkIngestParallel(b *testing.B) { benchIngest(b, true, false) }

// BenchmarkIngestParallelNoSearch: the same, without the search indexes.
func BenchmarkIngestParallelNoSearch(b *testing.B) { benchIngest(b, true, true) }

// fill100 stores 1M spans: 10,000 traces of 100 spans, each trace arriving
// in ten batches of ten spans, as traces arrive from a busy system.
func fill100(b *testing.B) *Store {
	b.Helper()
	s := New(Config{MaxBytes: 4 << 30, MaxSpansPerTrace: 10000, CallIDAttribute: "call.id"})
	for part := 0; part < 10; part++ {
		for t := uint64(0); t < 10000; t += 10 {
			s.Ingest("", spangen.Batch(t, 10, part*10, 10))
		}
	}
	return s
}

// fill10 stores 1M spans as 100,000 traces of 10 spans, in requests of
// 10 traces, and returns their OTLP protobuf size.
func fill10(b *testing.B) (*Store, int) {
	b.Helper()
	s := New(Config{MaxBytes: 4 << 30, MaxSpansPerTrace: 10000, CallIDAttribute: "call.id"})
	protoBytes := 0
	var m ptrace.ProtoMarshaler
	for t := uint64(0); t < 100000; t += 10 {
		td := spangen.Batch(t, 10, 0, 10)
		protoBytes += m.TracesSize(td)
		s.Ingest("", td)
	}
	return s, protoBytes
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss is the process's resident memory, from /proc; 0 where there is none.
func rss() int64 {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(statm), &size, &resident); err != nil {
		return 0
	}
	return resident * int64(os.Getpagesize())
}

// BenchmarkHeapPerSpan stores 1M spans in 10-span traces and reports the
// memory they take per span (Go heap plus chunks), beside their OTLP
// protobuf size per span, and how the store's own count compares.
func BenchmarkHeapPerSpan(b *testing.B) {
	for i := 0; i < b.N; i++ {
		before := heapAlloc()
		s, protoBytes := fill10(b)
		after := heapAlloc()
		st := s.Stats()
		spans := float64(st.Spans)
		heap := float64(after - before)
		held := heap + float64(st.MappedBytes)
		b.ReportMetric(heap/spans, "heapB/span")
		b.ReportMetric(float64(st.MappedBytes)/spans, "mappedB/span")
		b.ReportMetric(float64(protoBytes)/spans, "protoB/span")
		b.ReportMetric(held/float64(protoBytes), "held/proto")
		b.ReportMetric(float64(st.Bytes)/held, "accounted/held")
		runtime.KeepAlive(s)
		s.Close()
	}
}

// BenchmarkRSSPerSpan is the same load measured as the process's resident
// memory: what an operator's pod limit sees, collector headroom and all.
func BenchmarkRSSPerSpan(b *testing.B) {
	if rss() == 0 {
		b.Skip("no /proc/self/statm")
	}
	for i := 0; i < b.N; i++ {
		runtime.GC()
		debug.FreeOSMemory()
		before := rss()
		s, protoBytes := fill10(b)
		runtime.GC()
		after := rss()
		st := s.Stats()
		spans := float64(st.Spans)
		b.ReportMetric(float64(after-before)/spans, "rssB/span")
		b.ReportMetric(float64(after-before)/float64(protoBytes), "rss/proto")
		b.ReportMetric(float64(st.Bytes)/float64(after-before), "accounted/rss")
		runtime.KeepAlive(s)
		s.Close()
	}
}

// BenchmarkRSSBound ingests ten times a 64 MiB budget and reports the
// resident memory the store added, against the budget.
func BenchmarkRSSBound(b *testing.B) {
	if rss() == 0 {
		b.Skip("no /proc/self/statm")
	}
	const budget = 64 << 20
	var m ptrace.ProtoMarshaler
	for i := 0; i < b.N; i++ {
		runtime.GC()
		debug.FreeOSMemory()
		before := rss()
		s := New(Config{MaxBytes: budget, MaxSpansPerTrace: 10000})
		sent, peak := 0, int64(0)
		for t := uint64(0); sent < 10*budget; t += 10 {
			td := spangen.Batch(t, 10, 0, 10)
			sent += m.TracesSize(td)
			s.Ingest("", td)
			if t%10000 == 0 {
				peak = max(peak, rss()-before)
			}
		}
		peak = max(peak, rss()-before)
		b.ReportMetric(float64(peak)/budget, "peakRSS/budget")
		b.ReportMetric(float64(s.Stats().Bytes)/budget, "accounted/budget")
		s.Close()
	}
}

// BenchmarkGet100 looks up a 100-span trace among 1M stored spans and decodes it.
func BenchmarkGet100(b *testing.B) {
	s := fill100(b)
	var sc spancodec.Scratch
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr, ok := s.Get("", spangen.TraceID(uint64(i%10000)))
		if !ok {
			b.Fatal("missing trace")
		}
		spans, err := tr.SpansInto(&sc)
		if err != nil || len(spans) != 100 {
			b.Fatal(err, len(spans))
		}
		tr.Release()
	}
}
