// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

// A collector with index::snapshot answers, after a restart, for the
// traces it held before it; a snapshot that cannot be read is set aside
// and the collector starts empty.
func TestRestartKeepsTheWindow(t *testing.T) {
	collectorBinary(t)
	dir := t.TempDir()
	opts := fmt.Sprintf("    index:\n      snapshot:\n        path: %s\n        timeout: 10s\n", dir)
	n := startNode(t, opts)
	root := sendSpan(t, n, "frontend", "GET /checkout", trace.SpanContext{})
	sendSpan(t, n, "payment", "charge", root)
	id := root.TraceID().String()
	require.Equal(t, 200, mustDo(t, "GET", n.url()+"/api/v1/traces/"+id, nil).Status)
	require.NoError(t, n.c.stop())
	assert.Contains(t, n.c.output.String(), "The index was written to its snapshot")
	require.FileExists(t, filepath.Join(dir, "tracelookup.snapshot"))

	n = startNode(t, opts)
	poll(t, readyTimeout, "the snapshot to be read back", func() error {
		if resp := mustDo(t, "GET", n.url()+"/api/v1/traces/"+id+"?flat=true", nil); resp.Status != 200 {
			return fmt.Errorf("status %d", resp.Status)
		}
		return nil
	})
	resp := mustDo(t, "GET", n.url()+"/api/v1/traces/"+id+"?flat=true", nil)
	assert.Contains(t, string(resp.Body), `"charge"`, "both spans came back")
	assert.Contains(t, string(resp.Body), `"GET /checkout"`)
	require.NoError(t, n.c.stop())

	// A truncated snapshot: set aside, never a crash.
	file := filepath.Join(dir, "tracelookup.snapshot")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b[:len(b)/2], 0o600))
	n = startNode(t, opts)
	poll(t, readyTimeout, "the snapshot to be refused", func() error {
		if !strings.Contains(n.c.output.String(), "The snapshot could not be read back") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	assert.Equal(t, 404, mustDo(t, "GET", n.url()+"/api/v1/traces/"+id, nil).Status)
	assert.FileExists(t, file+".refused")
	require.NoError(t, n.c.stop())
}
