// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/metadatatest"
)

func lookupStatus(t *testing.T, base, tenant string, id pcommon.TraceID) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/traces/"+id.String(), http.NoBody)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// startWithSnapshot starts an extension whose snapshots go to dir; the
// caller shuts it down.
func startWithSnapshot(t *testing.T, dir string) (*tracelookupExtension, string) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	cfg.Index.Snapshot.Path = dir
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext.(*tracelookupExtension), "http://" + cfg.ServerConfig.NetAddr.Endpoint
}

func TestSnapshotKeepsTheWindowAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made-at-start")
	ext, _ := startWithSnapshot(t, dir)
	ext.IndexTraces("acme", oneSpan(pcommon.TraceID{1}))
	ext.IndexTraces("", oneSpan(pcommon.TraceID{2}))
	require.NoError(t, ext.Shutdown(context.Background()))
	file := filepath.Join(dir, "tracelookup.snapshot")
	require.FileExists(t, file)

	ext, base := startWithSnapshot(t, dir)
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return lookupStatus(t, base, "acme", pcommon.TraceID{1}) == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, http.StatusOK, lookupStatus(t, base, "", pcommon.TraceID{2}))
	assert.Equal(t, http.StatusNotFound, lookupStatus(t, base, "", pcommon.TraceID{1}), "a tenant's trace stays its own")
	assert.NoFileExists(t, file, "read back, then removed")
}

func TestRefusedSnapshotStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tracelookup.snapshot")
	stale := file + ".123456.tmp" // a collector killed while writing
	require.NoError(t, os.WriteFile(stale, []byte("half"), 0o600))
	require.NoError(t, os.WriteFile(file, []byte("tlsnap\x00\x01 but not a snapshot"), 0o600))
	ext, base := startWithSnapshot(t, dir)
	require.Eventually(t, func() bool { _, err := os.Stat(file + ".refused"); return err == nil }, 10*time.Second, 10*time.Millisecond)
	assert.NoFileExists(t, stale, "a stale temporary file is removed at start")
	assert.Equal(t, http.StatusNotFound, lookupStatus(t, base, "", pcommon.TraceID{1}))
	ext.IndexTraces("", oneSpan(pcommon.TraceID{3}))
	require.NoError(t, ext.Shutdown(context.Background()))
	assert.FileExists(t, file, "the next snapshot is written beside the refused one")
}

// A collector whose start failed shuts down without writing over the
// snapshot it never read.
func TestFailedStartKeepsTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tracelookup.snapshot")
	require.NoError(t, os.WriteFile(file, []byte("the previous run's"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = ln.Addr().String()
	cfg.Index.Snapshot.Path = dir
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.Error(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, ext.Shutdown(context.Background()))
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "the previous run's", string(b))
}

func TestSnapshotStopsAtItsTimeout(t *testing.T) {
	dir := t.TempDir()
	ext, _ := startWithSnapshot(t, dir)
	ext.IndexTraces("", oneSpan(pcommon.TraceID{1}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown's own deadline has passed
	require.NoError(t, ext.Shutdown(ctx))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no snapshot, and no temporary file left")
}
