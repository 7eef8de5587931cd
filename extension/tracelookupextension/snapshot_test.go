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
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

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

// startWithSnapshot starts an extension whose snapshots go to dir, and
// returns it, its API's base URL and its logs; the caller shuts it down.
func startWithSnapshot(t *testing.T, dir string) (*tracelookupExtension, string, *observer.ObservedLogs) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	cfg.Index.Snapshot.Path = dir
	set := metadatatest.NewSettings(componenttest.NewTelemetry())
	core, logs := observer.New(zap.InfoLevel)
	set.Logger = zap.New(core)
	ext, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext.(*tracelookupExtension), "http://" + cfg.ServerConfig.NetAddr.Endpoint, logs
}

func TestSnapshotKeepsTheWindowAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made-at-start")
	ext, _, _ := startWithSnapshot(t, dir)
	ext.IndexTraces("acme", oneSpan(pcommon.TraceID{1}))
	ext.IndexTraces("", oneSpan(pcommon.TraceID{2}))
	require.NoError(t, ext.Shutdown(context.Background()))
	file := filepath.Join(dir, "tracelookup.snapshot")
	require.FileExists(t, file)

	ext, base, _ := startWithSnapshot(t, dir)
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	// Read back before Start returns: before any receiver writes.
	assert.Equal(t, http.StatusOK, lookupStatus(t, base, "acme", pcommon.TraceID{1}))
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
	ext, base, logs := startWithSnapshot(t, dir)
	assert.FileExists(t, file+".refused")
	assert.Equal(t, 1, logs.FilterMessage("The snapshot could not be read back").Len())
	assert.NoFileExists(t, stale, "a stale temporary file is removed at start")
	assert.Equal(t, http.StatusNotFound, lookupStatus(t, base, "", pcommon.TraceID{1}))
	ext.IndexTraces("", oneSpan(pcommon.TraceID{3}))
	require.NoError(t, ext.Shutdown(context.Background()))
	assert.FileExists(t, file, "the next snapshot is written beside the refused one")
}

// A collector whose start failed (its port is taken) keeps the window it
// read back: its shutdown writes it again.
func TestFailedStartKeepsTheWindow(t *testing.T) {
	dir := t.TempDir()
	ext, _, _ := startWithSnapshot(t, dir)
	ext.IndexTraces("", oneSpan(pcommon.TraceID{7}))
	require.NoError(t, ext.Shutdown(context.Background()))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = ln.Addr().String()
	cfg.Index.Snapshot.Path = dir
	failed, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.Error(t, failed.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, failed.Shutdown(context.Background()))

	ext, base, _ := startWithSnapshot(t, dir)
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	assert.Equal(t, http.StatusOK, lookupStatus(t, base, "", pcommon.TraceID{7}))
}

func TestSnapshotStopsAtItsTimeout(t *testing.T) {
	dir := t.TempDir()
	ext, _, logs := startWithSnapshot(t, dir)
	ext.IndexTraces("", oneSpan(pcommon.TraceID{1}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown's own deadline has passed
	require.NoError(t, ext.Shutdown(ctx))
	// The writer left behind removes its temporary file.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		entries, err := os.ReadDir(dir)
		require.NoError(c, err)
		assert.Empty(c, entries, "no snapshot, and no temporary file left")
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, logs.FilterMessage("The index's snapshot was not written; a restart starts empty").Len())
}

// A collector stopped right after it started (a crash loop, or another
// component failing to start) keeps the whole window it read back.
func TestStopRightAfterStartKeepsTheWindow(t *testing.T) {
	dir := t.TempDir()
	ext, _, _ := startWithSnapshot(t, dir)
	for i := range 2000 {
		ext.IndexTraces("", oneSpan(pcommon.TraceID{byte(i >> 8), byte(i), 1}))
	}
	require.NoError(t, ext.Shutdown(context.Background()))
	ext, _, _ = startWithSnapshot(t, dir)
	require.NoError(t, ext.Shutdown(context.Background()))
	ext, _, _ = startWithSnapshot(t, dir)
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	assert.Equal(t, int64(2000), ext.store.Stats().Traces)
}

// A snapshot not read back within the timeout is set aside, not written
// over by the next shutdown.
func TestSnapshotNotReadInTimeIsSetAside(t *testing.T) {
	dir := t.TempDir()
	ext, _, _ := startWithSnapshot(t, dir)
	ext.IndexTraces("", oneSpan(pcommon.TraceID{9}))
	require.NoError(t, ext.Shutdown(context.Background()))
	file := filepath.Join(dir, "tracelookup.snapshot")

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	cfg.Index.Snapshot = SnapshotConfig{Path: dir, Timeout: time.Nanosecond}
	slow, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.NoError(t, slow.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, slow.Shutdown(context.Background()))
	require.FileExists(t, file+".unread")

	require.NoError(t, os.Rename(file+".unread", file)) // as an operator would, with a longer timeout
	ext, base, _ := startWithSnapshot(t, dir)
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	assert.Equal(t, http.StatusOK, lookupStatus(t, base, "", pcommon.TraceID{9}))
}
