// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

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
func benchIngest(b *testing.B, parallel bool) {
	in := batches(2000, 0)
	spans := in[0].SpanCount()
	newStore := func() *Store {
		return New(Config{MaxBytes: 1 << 30, MaxSpansPerTrace: 10000, CallIDAttribute: "call.id"})
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
						s.Ingest(in[i])
					}
				})
			}
			wg.Wait()
		} else {
			for i := 0; i < n; i++ {
				s.Ingest(in[i])
			}
		}
		done += n
	}
	b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkIngest: one goroutine, batches of 100 new spans.
func BenchmarkIngest(b *testing.B) { benchIngest(b, false) }

// BenchmarkIngestParallel: one goroutine per core, as the receiver's servers do.
func BenchmarkIngestParallel(b *testing.B) { benchIngest(b, true) }

// fill stores 1M spans: 10,000 traces of 100 spans, each trace arriving in
// ten batches of ten spans, as traces arrive from a busy system.
func fill(b *testing.B) (*Store, int) {
	b.Helper()
	s := New(Config{MaxBytes: 4 << 30, MaxSpansPerTrace: 10000, CallIDAttribute: "call.id"})
	protoBytes := 0
	var m ptrace.ProtoMarshaler
	for part := 0; part < 10; part++ {
		for t := uint64(0); t < 10000; t += 10 {
			td := spangen.Batch(t, 10, part*10, 10)
			protoBytes += m.TracesSize(td)
			s.Ingest(td)
		}
	}
	s.Seal()
	return s, protoBytes
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkHeapPerSpan stores 1M spans and reports the live heap they take
// per span, beside their OTLP protobuf size per span, and the ratio.
func BenchmarkHeapPerSpan(b *testing.B) {
	for i := 0; i < b.N; i++ {
		before := heapAlloc()
		s, protoBytes := fill(b)
		after := heapAlloc()
		spans := float64(s.Stats().Spans)
		heap := float64(after - before)
		b.ReportMetric(heap/spans, "heapB/span")
		b.ReportMetric(float64(protoBytes)/spans, "protoB/span")
		b.ReportMetric(heap/float64(protoBytes), "heap/proto")
		b.ReportMetric(float64(s.Stats().Bytes)/heap, "accounted/heap")
		runtime.KeepAlive(s)
	}
}

// BenchmarkGet100 looks up a 100-span trace among 1M stored spans and decodes it.
func BenchmarkGet100(b *testing.B) {
	s, _ := fill(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr, ok := s.Get(spangen.TraceID(uint64(i % 10000)))
		if !ok {
			b.Fatal("missing trace")
		}
		spans, err := tr.Spans()
		if err != nil || len(spans) != 100 {
			b.Fatal(err, len(spans))
		}
	}
}

// BenchmarkSeal compresses stored traces of 50 spans (under the size that
// seals during ingest); the cost is reported per span.
func BenchmarkSeal(b *testing.B) {
	b.ReportAllocs()
	spans := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := New(Config{MaxBytes: 1 << 30})
		for part := 0; part < 5; part++ {
			for t := uint64(0); t < 200; t += 10 {
				s.Ingest(spangen.Batch(t, 10, part*10, 10))
			}
		}
		spans += int(s.Stats().Spans)
		b.StartTimer()
		s.Seal()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
}
