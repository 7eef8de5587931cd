// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/snapshot"
)

// snapshotPath is this extension's file in the snapshot directory: named
// by its component ID, so extensions may share a directory.
func (e *tracelookupExtension) snapshotPath() string {
	return filepath.Join(e.cfg.Index.Snapshot.Path, strings.ReplaceAll(e.set.ID.String(), "/", "_")+".snapshot")
}

// maxSnapshotBytes bounds the snapshot read back: compressed OTLP of an
// index is smaller than the index; four times its memory bound is far
// more than this configuration could have written, and refuses a file
// that was not written for it.
func (e *tracelookupExtension) maxSnapshotBytes() int64 {
	return 4 * int64(e.cfg.Index.MaxMemoryMiB) << 20
}

// readSnapshot makes the snapshot directory and reads a snapshot back,
// within the timeout, before Start goes on: the receivers start after the
// extensions, so what was held before the restart goes into the index
// before anything new, in the order it first arrived. A snapshot that
// cannot be read is logged and kept as <file>.refused for an operator to
// look at.
func (e *tracelookupExtension) readSnapshot() error {
	sc := e.cfg.Index.Snapshot
	if sc.Path == "" {
		return nil
	}
	if err := os.MkdirAll(sc.Path, 0o700); err != nil {
		return fmt.Errorf(`"index::snapshot::path": %w`, err)
	}
	path := e.snapshotPath()
	// A collector killed while writing leaves its temporary file behind.
	if stale, err := filepath.Glob(path + ".*.tmp"); err == nil {
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	e.snapshotRead = true // from here on, Shutdown writes the snapshot
	ctx, cancel := context.WithTimeout(context.Background(), sc.Timeout)
	defer cancel()
	res, err := snapshot.Load(ctx, path, e.store, snapshot.Limits{MaxFileBytes: e.maxSnapshotBytes()})
	log := e.set.Logger.With(zap.String("path", path), zap.Int64("bytes", res.Bytes))
	restored := []zap.Field{zap.Int("traces", res.Traces), zap.Int("spans", res.Spans), zap.Duration("duration", res.Duration)}
	switch {
	case errors.Is(err, os.ErrNotExist):
		log.Info("No snapshot of the index to read back; it starts empty")
	case errors.Is(err, snapshot.ErrTimeout) && res.Traces == 0:
		// Still checking it: nothing was read back. Set aside, so that the
		// next shutdown does not write over it.
		kept := path + ".unread"
		if renameErr := os.Rename(path, kept); renameErr != nil {
			kept = path
		}
		log.Error("The snapshot was not read back within index::snapshot::timeout; raise it, and move the file back to read it", append(restored, zap.String("kept_as", kept))...)
	case errors.Is(err, snapshot.ErrTimeout):
		log.Warn("Reading the snapshot back stopped at index::snapshot::timeout; the index holds the traces read until then, and the next shutdown writes them with what arrives", restored...)
	case errors.Is(err, snapshot.ErrNotRemoved):
		log.Warn("The index was read back from its snapshot, which could not be removed", append(restored, zap.Error(err))...)
	case err != nil:
		// Kept beside the next snapshot for an operator to look at.
		kept := path + ".refused"
		if renameErr := os.Rename(path, kept); renameErr != nil {
			kept = path
		}
		log.Error("The snapshot could not be read back", append(restored, zap.Error(err), zap.String("kept_as", kept))...)
	default:
		log.Info("The index was read back from its snapshot", restored...)
	}
	return nil
}

// writeSnapshot writes the index to the snapshot directory within the
// timeout (and ctx's deadline); past it, shutdown goes on without one.
func (e *tracelookupExtension) writeSnapshot(ctx context.Context) {
	sc := e.cfg.Index.Snapshot
	if sc.Path == "" || !e.snapshotRead {
		return // off, or Start did not get as far: the snapshot there stays
	}
	ctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	path := e.snapshotPath()
	res, err := snapshot.Write(ctx, path, e.store, e.cfg.MaxTreeDepth)
	log := e.set.Logger.With(zap.String("path", path))
	if errors.Is(err, snapshot.ErrRenamePending) {
		log.Warn("The index's snapshot was written, but its rename into place had not finished within the timeout; a restart reads it if the rename finished", zap.Int("traces_written", res.Traces))
		return
	}
	if err != nil {
		log.Error("The index's snapshot was not written; a restart starts empty", zap.Error(err), zap.Int("traces_written", res.Traces))
		return
	}
	if res.Skipped > 0 {
		log.Warn("Traces larger than a snapshot holds were left out of it", zap.Int("traces", res.Skipped))
	}
	log.Info("The index was written to its snapshot",
		zap.Int("traces", res.Traces), zap.Int("spans", res.Spans), zap.Int64("bytes", res.Bytes), zap.Duration("duration", res.Duration))
}
