// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// Responses reuse decode and output memory between requests; none may show
// another request's data, whatever the order or concurrency.
func TestReusedMemoryNeverLeaksBetweenRequests(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 1 << 30, CallIDAttribute: "call.id"})
	for part := 0; part < 4; part++ {
		st.Ingest("", spangen.Batch(0, 20, part*10, 10))
	}
	st.Ingest("", spangen.Batch(0, 20, 40, 3)) // a later batch of the same traces
	h := NewHandler(st, defaultOptions())

	var paths []string
	for i := uint64(0); i < 20; i++ {
		id := spangen.TraceID(i).String()
		paths = append(paths, "/api/v1/traces/"+id, "/api/v1/traces/"+id+"?flat=true", "/api/v2/trace/"+id)
	}
	want := map[string]string{}
	for _, p := range paths {
		r := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusOK, r.code)
		want[p] = string(r.body)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; i < 3*len(paths); i++ {
				p := paths[(i*7+w*13)%len(paths)]
				r := get(t, h, http.MethodGet, p)
				assert.Equal(t, want[p], string(r.body), p)
			}
		})
	}
	wg.Wait()
}
