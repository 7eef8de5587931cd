// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package snapshot

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// BenchmarkSnapshot512MiB fills an index to its 512 MiB bound with traces
// of 10 spans, writes its snapshot and reads it back into an empty index
// of the same bound, and reports each step's time and the file's size.
func BenchmarkSnapshot512MiB(b *testing.B) {
	const bound = 512 << 20
	cfg := store.Config{MaxBytes: bound, CallIDAttribute: "call.id"}
	for range b.N {
		src := store.New(cfg)
		next := uint64(1)
		// Fill until the bound evicts: the index is then full.
		for src.Stats().EvictedBy(store.ReasonMemory) == 0 {
			src.Ingest("", spangen.Batch(next, 100, 0, 10))
			next += 100
		}
		stats := src.Stats()
		path := filepath.Join(b.TempDir(), "s")
		b.ResetTimer()
		w, err := Write(context.Background(), path, src, 0)
		require.NoError(b, err)
		src.Close()
		dst := store.New(cfg)
		start := time.Now()
		r, err := Load(context.Background(), path, dst, Limits{MaxFileBytes: 4 * bound})
		load := time.Since(start)
		require.NoError(b, err)
		b.StopTimer()
		require.Equal(b, w.Traces, r.Traces)
		b.ReportMetric(float64(stats.Bytes)/(1<<20), "index_MiB")
		b.ReportMetric(float64(stats.Traces), "traces")
		b.ReportMetric(float64(stats.Spans), "spans")
		b.ReportMetric(w.Duration.Seconds(), "write_s")
		b.ReportMetric(load.Seconds(), "load_s")
		b.ReportMetric(float64(w.Bytes)/(1<<20), "file_MiB")
		b.ReportMetric(float64(dst.Stats().Traces), "traces_restored")
		dst.Close()
	}
}
