// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package snapshot writes the span index to a file at shutdown and reads
// it back at start, so a restarted collector answers for the traces it held.
//
// A snapshot holds every trace as OTLP protobuf, with its tenant and when
// it was first seen, and is read back through the index's own ingest
// (store.Restore): the restored index is built by the code that built the
// original, under the configuration in force now (a smaller memory bound
// simply evicts the oldest). The file is an 8-byte header, then an S2
// stream (checksummed per block) of frames:
//
//	0x01 | uvarint(len tenant) | tenant | varint(first seen, unix ns) | flags | uvarint(len otlp) | otlp
//	0x00 | uvarint(trace count)    -- the end: without it the file is truncated
//
// flags bit 0: the index had cut the trace (max_spans_per_trace).
//
// A file that is not whole and sound (a checksum fails, it is cut short,
// of another version, or larger than the bound) is refused before any of
// it is restored: a restart starts empty rather than with a part of the
// window. A frame that passes its checksum but does not decode as OTLP,
// which only a file this package did not write can hold, stops the
// restore there.
package snapshot // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/snapshot"

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// header opens every snapshot: a magic string and the format's version. A
// file written by another version is refused, not guessed at.
var header = [8]byte{'t', 'l', 's', 'n', 'a', 'p', 0, version}

const version = 1

const (
	frameTrace byte = 1
	frameEnd   byte = 0
	// flagTruncated marks a trace the index had cut.
	flagTruncated byte = 1
	// blockSize is the S2 stream's block: what reading one allocates.
	blockSize = 1 << 20
	// MaxTraceBytes is the largest trace a snapshot holds, encoded: Write
	// leaves a larger one out (counted in Result.Skipped), Load refuses it.
	MaxTraceBytes = 256 << 20
	// maxTenantBytes bounds a frame's tenant id (store.ValidTenant allows fewer).
	maxTenantBytes = 1 << 10
)

// Errors Load returns for a file it refuses.
var (
	ErrCorrupt       = errors.New("the snapshot is corrupt")
	ErrTruncated     = errors.New("the snapshot is truncated")
	ErrVersion       = errors.New("the snapshot was written by another version")
	ErrOversized     = errors.New("the snapshot is larger than the index could have written")
	ErrTimeout       = errors.New("the snapshot did not finish within its timeout")
	ErrRenamePending = errors.New("the snapshot was whole, but its rename into place had not finished within the timeout: it is in place if the rename finishes")
	ErrNotRemoved    = errors.New("the snapshot was read back but could not be removed")
	errFrameTooLarge = errors.New("a trace in the snapshot is larger than the bound")
)

// Result says what a Write or Load did.
type Result struct {
	// Traces and Spans count what was written, or read back (the index
	// may keep fewer: its bounds hold, and a lowered max_spans_per_trace
	// or max_tenants refuses some).
	Traces int
	// Skipped counts the traces Write left out, each past MaxTraceBytes.
	Skipped  int
	Spans    int
	Bytes    int64 // the file's size
	Duration time.Duration
}

// tempFile is what Write writes to: an *os.File, or in tests one whose
// disk hangs.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// createTemp makes Write's temporary file, and rename puts it in place;
// tests stand in a slow disk. bufferBytes is what Write buffers before the
// file sees a write; tests make it small.
var (
	createTemp  = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
	rename      = os.Rename
	bufferBytes = 1 << 20
)

// Write writes every trace st holds to path, through a temporary file in
// the same directory renamed into place once whole and synced, so a crash
// or a deadline never leaves a partial snapshot under path.
//
// Write returns by ctx's deadline even when the disk does not answer (a
// hung network volume): the file is written by a goroutine Write leaves
// behind at the deadline. That goroutine touches only copies of the
// traces, never the store, so the caller may close the store at once; it
// removes its temporary file when the disk answers again, and never starts
// a rename into place after the deadline (ErrRenamePending: one started
// before it had not finished).
func Write(ctx context.Context, path string, st *store.Store, maxTreeDepth int) (Result, error) {
	start := time.Now()
	f, err := createTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return Result{}, err
	}
	// Two stages on two cores: this goroutine reads traces out of the
	// index and builds them as pdata, the other marshals and writes them.
	work := make(chan built, 256)
	// The hooks are read here: a writer left behind by an earlier Write
	// never reads them while a test sets them.
	w := &fileWriter{ctx: ctx, f: f, path: path, rename: rename, bufferBytes: bufferBytes, done: make(chan struct{})}
	go w.run(work)
	// Stopping short at the deadline needs no flag here: the writer finds
	// the deadline passed when work closes, and fails the file.
	st.Each(func(tr store.Trace) bool {
		if ctx.Err() != nil {
			tr.Release()
			return false
		}
		t := traceview.Build(tr, maxTreeDepth) // releases tr
		select {
		case work <- built{tenant: tr.Tenant, first: tr.FirstSeen, truncated: t.Truncated, td: t.OTLP(nil), spans: len(t.Spans), release: t.Release}:
			return true
		case <-ctx.Done(): // the writer is stuck on the disk
			t.Release()
			return false
		}
	})
	close(work)
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	select {
	case <-w.done: // finished, if only just: its outcome stands
	default:
		// The writer is blocked on the disk: leave it, abandoned unless
		// its rename has begun (then one that began is told apart).
		w.phase.CompareAndSwap(phaseWriting, phaseAbandoned)
		switch w.phase.Load() {
		case phaseRenamed: // only the directory's sync is left
			res := w.res
			res.Duration = time.Since(start)
			return res, nil
		case phaseRenaming:
			return Result{Traces: int(w.written.Load())}, ErrRenamePending
		default:
			return Result{Traces: int(w.written.Load())}, ErrTimeout
		}
	}
	res := w.res
	if w.err != nil {
		return res, w.err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// built is one trace on its way from the index to the file.
type built struct {
	tenant    string
	first     int64
	truncated bool
	td        ptrace.Traces
	spans     int
	// release frees the decoded spans, which td's strings may still
	// point into: once td is marshalled.
	release func()
}

// fileWriter is Write's second stage: it owns the temporary file.
type fileWriter struct {
	ctx    context.Context
	f      tempFile
	closed bool // f is closed
	path   string
	// rename and bufferBytes are the package's, as Write found them.
	rename      func(from, to string) error
	bufferBytes int
	written     atomic.Int64 // traces written so far, for a Write that gave up
	// phase tells a Write that gave up how far the file got; res is not
	// written once the rename starts.
	phase atomic.Int32
	// res and err are the outcome, read once done is closed.
	res  Result
	err  error
	done chan struct{}
}

// How far a fileWriter got.
const (
	phaseWriting   int32 = iota
	phaseAbandoned       // Write gave up: the file is never renamed into place
	phaseRenaming
	phaseRenamed // in place; the directory's sync may be pending
)

// countingWriter counts what reaches the file: the snapshot's size.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func (w *fileWriter) run(work <-chan built) {
	defer close(w.done)
	err := w.write(work)
	if err == nil && w.ctx.Err() != nil {
		err = ErrTimeout // too late to rename: the caller has moved on
	}
	if err == nil {
		if !w.phase.CompareAndSwap(phaseWriting, phaseRenaming) {
			err = ErrTimeout // Write gave up between the check above and here
		} else if err = w.rename(w.f.Name(), w.path); err == nil {
			w.phase.Store(phaseRenamed)
		}
	}
	if err != nil {
		for b := range work {
			b.release() // what the reader handed over after the failure
		}
		if !w.closed {
			_ = w.f.Close()
		}
		_ = os.Remove(w.f.Name())
		w.err = err
		return
	}
	// The rename itself reaches the disk with the directory.
	if dir, dirErr := os.Open(filepath.Dir(w.path)); dirErr == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
}

// write writes the header, every trace sent on work and the end frame,
// then syncs and closes the file.
func (w *fileWriter) write(work <-chan built) error {
	counted := &countingWriter{w: w.f}
	bw := bufio.NewWriterSize(counted, w.bufferBytes)
	if _, err := bw.Write(header[:]); err != nil {
		return err
	}
	zw := s2.NewWriter(bw, s2.WriterConcurrency(1), s2.WriterBlockSize(blockSize))
	var (
		marshaler ptrace.ProtoMarshaler
		frame     []byte
	)
	for b := range work {
		if w.ctx.Err() != nil {
			b.release()
			return ErrTimeout
		}
		otlp, err := marshaler.MarshalTraces(b.td)
		b.release()
		if err != nil {
			return err
		}
		if len(otlp) > MaxTraceBytes {
			w.res.Skipped++
			continue
		}
		frame = append(frame[:0], frameTrace)
		frame = binary.AppendUvarint(frame, uint64(len(b.tenant)))
		frame = append(frame, b.tenant...)
		frame = binary.AppendVarint(frame, b.first)
		var flags byte
		if b.truncated {
			flags |= flagTruncated
		}
		frame = append(frame, flags)
		frame = binary.AppendUvarint(frame, uint64(len(otlp)))
		if _, err := zw.Write(frame); err != nil {
			return err
		}
		if _, err := zw.Write(otlp); err != nil {
			return err
		}
		w.res.Traces++
		w.res.Spans += b.spans
		w.written.Add(1)
	}
	if w.ctx.Err() != nil {
		return ErrTimeout // the reader stopped short: the file is not whole
	}
	frame = binary.AppendUvarint(append(frame[:0], frameEnd), uint64(w.res.Traces))
	if _, err := zw.Write(frame); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return err
	}
	w.res.Bytes = counted.n
	return nil
}

// Limits bound what Load reads.
type Limits struct {
	// MaxFileBytes is the largest snapshot read; a larger file is refused
	// (ErrOversized) without being read.
	MaxFileBytes int64
	// MaxTraceBytes is the largest trace a frame may hold, encoded (0:
	// the package's MaxTraceBytes).
	MaxTraceBytes int
}

// Load restores the snapshot at path into st, then removes the file, so a
// later crash does not bring back a window long gone. A missing file is no
// error: os.ErrNotExist is returned for the caller to tell. A file that is
// not whole and sound (corrupt, truncated, another version, oversized) is
// refused before anything is restored, and left for an operator to look
// at. Past ctx's deadline Load stops, with what it restored so far.
func Load(ctx context.Context, path string, st *store.Store, lim Limits) (res Result, err error) {
	start := time.Now()
	fi, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	res.Bytes = fi.Size()
	if lim.MaxTraceBytes <= 0 {
		lim.MaxTraceBytes = MaxTraceBytes
	}
	if lim.MaxFileBytes > 0 && fi.Size() > lim.MaxFileBytes {
		return res, fmt.Errorf("%w: %d bytes, the bound is %d", ErrOversized, fi.Size(), lim.MaxFileBytes)
	}
	// First the whole file is checked, then it is restored: a refused
	// file restores nothing.
	if _, err = readFile(ctx, path, lim, nil); err != nil {
		return res, err
	}
	// Two stages on two cores: this goroutine decodes, the other ingests.
	type decoded struct {
		tenant    string
		first     int64
		truncated bool
		td        ptrace.Traces
	}
	work := make(chan decoded, 256)
	restored := make(chan struct{})
	go func() {
		for d := range work {
			res.Spans += d.td.SpanCount()
			st.Restore(d.tenant, d.td, d.first, d.truncated)
		}
		close(restored)
	}()
	var unmarshaler ptrace.ProtoUnmarshaler
	res.Traces, err = readFile(ctx, path, lim, func(tenant string, first int64, flags byte, otlp []byte) error {
		td, err := unmarshaler.UnmarshalTraces(otlp)
		if err != nil {
			return fmt.Errorf("%w: a trace does not decode: %w", ErrCorrupt, err)
		}
		work <- decoded{tenant: tenant, first: first, truncated: flags&flagTruncated != 0, td: td}
		return nil
	})
	close(work)
	<-restored
	res.Duration = time.Since(start)
	if err != nil {
		return res, err
	}
	if err := os.Remove(path); err != nil {
		return res, fmt.Errorf("%w: %w", ErrNotRemoved, err)
	}
	return res, nil
}

func readFile(ctx context.Context, path string, lim Limits, restore func(tenant string, first int64, flags byte, otlp []byte) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return read(ctx, f, lim, restore)
}

// read reads a snapshot, calling restore (when not nil) with each trace,
// and returns how many it read.
func read(ctx context.Context, r io.Reader, lim Limits, restore func(tenant string, first int64, flags byte, otlp []byte) error) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h [len(header)]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, fmt.Errorf("%w: no header", ErrTruncated)
	}
	if h != header {
		if string(h[:6]) == string(header[:6]) {
			return 0, fmt.Errorf("%w: format %d, this collector reads %d", ErrVersion, h[7], version)
		}
		return 0, fmt.Errorf("%w: not a tracelookup snapshot", ErrCorrupt)
	}
	zr := bufio.NewReaderSize(s2.NewReader(br, s2.ReaderMaxBlockSize(blockSize)), 64<<10)
	var buf []byte
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return n, ErrTimeout
		}
		kind, err := zr.ReadByte()
		if err != nil {
			return n, streamError(err)
		}
		if kind == frameEnd {
			count, err := binary.ReadUvarint(zr)
			if err != nil {
				return n, streamError(err)
			}
			if count != uint64(n) {
				return n, fmt.Errorf("%w: it ends after %d traces, and says %d", ErrCorrupt, n, count)
			}
			if _, err := zr.ReadByte(); err != io.EOF {
				return n, fmt.Errorf("%w: data after its end", ErrCorrupt)
			}
			return n, nil
		}
		if kind != frameTrace {
			return n, fmt.Errorf("%w: unknown frame %d", ErrCorrupt, kind)
		}
		tenantLen, err := binary.ReadUvarint(zr)
		if err != nil {
			return n, streamError(err)
		}
		if tenantLen > maxTenantBytes {
			return n, fmt.Errorf("%w: a tenant id of %d bytes", ErrCorrupt, tenantLen)
		}
		if buf, err = readN(zr, buf, int(tenantLen)); err != nil {
			return n, err
		}
		tenant := string(buf)
		first, err := binary.ReadVarint(zr)
		if err != nil {
			return n, streamError(err)
		}
		flags, err := zr.ReadByte()
		if err != nil {
			return n, streamError(err)
		}
		size, err := binary.ReadUvarint(zr)
		if err != nil {
			return n, streamError(err)
		}
		if lim.MaxTraceBytes > 0 && size > uint64(lim.MaxTraceBytes) {
			return n, fmt.Errorf("%w: %w (%d bytes)", ErrCorrupt, errFrameTooLarge, size)
		}
		if restore == nil {
			if _, err := zr.Discard(int(size)); err != nil {
				return n, streamError(err)
			}
			continue
		}
		if buf, err = readN(zr, buf, int(size)); err != nil {
			return n, err
		}
		if err := restore(tenant, first, flags, buf); err != nil {
			return n, err
		}
	}
}

func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, streamError(err)
	}
	return buf, nil
}

// streamError says what a read error means for the file.
func streamError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}
