// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, now time.Time) *store.Store {
	st := store.New(store.Config{MaxBytes: 64 << 20, CallIDAttribute: "call.id", Now: func() time.Time { return now }})
	t.Cleanup(st.Close)
	return st
}

// filled is a store holding 50 traces of 6 spans under "acme" and 20 under
// the default tenant, received one second apart.
func filled(t *testing.T) *store.Store {
	now := t0
	st := store.New(store.Config{MaxBytes: 64 << 20, CallIDAttribute: "call.id", Now: func() time.Time { return now }})
	t.Cleanup(st.Close)
	for i := range 50 {
		now = t0.Add(time.Duration(i) * time.Second)
		st.Ingest("acme", spangen.Batch(uint64(i+1), 1, 0, 6))
	}
	for i := range 20 {
		now = t0.Add(time.Duration(50+i) * time.Second)
		st.Ingest("", spangen.Batch(uint64(1000+i), 1, 0, 6))
	}
	return st
}

// otlpOf is what the store answers for a trace, as OTLP, and when it was
// first seen.
func otlpOf(t *testing.T, st *store.Store, tenant string, n uint64) (ptrace.Traces, int64) {
	t.Helper()
	tr, ok := st.Get(tenant, [16]byte(spangen.TraceID(n)))
	require.True(t, ok, "trace %d of %q", n, tenant)
	v := traceview.Build(tr, 0) // releases tr
	defer v.Release()
	td := ptrace.NewTraces()
	v.OTLP(nil).CopyTo(td) // a copy that outlives v
	return td, tr.FirstSeen
}

func TestRoundTrip(t *testing.T) {
	src := filled(t)
	path := filepath.Join(t.TempDir(), "tracelookup.snapshot")
	w, err := Write(context.Background(), path, src, 0)
	require.NoError(t, err)
	assert.Equal(t, 70, w.Traces)
	assert.Equal(t, 420, w.Spans)
	assert.Positive(t, w.Bytes)

	dst := newStore(t, t0.Add(2*time.Minute))
	r, err := Load(context.Background(), path, dst, Limits{MaxFileBytes: 1 << 30})
	require.NoError(t, err)
	assert.Equal(t, 70, r.Traces)
	assert.Equal(t, 420, r.Spans)
	assert.NoFileExists(t, path, "a restored snapshot is removed")

	for _, c := range []struct {
		tenant string
		n      uint64
	}{{"acme", 1}, {"acme", 50}, {"", 1000}, {"", 1019}} {
		want, wantFirst := otlpOf(t, src, c.tenant, c.n)
		got, gotFirst := otlpOf(t, dst, c.tenant, c.n)
		assert.Equal(t, want, got, "trace %d comes back span for span", c.n)
		assert.Equal(t, wantFirst, gotFirst, "it keeps its age")
	}
	_, ok := dst.Get("", [16]byte(spangen.TraceID(1)))
	assert.False(t, ok, "a tenant's traces stay its own")
	_, ok = dst.GetByCallID("acme", "00000007-0000-4000-8000-000000000007")
	assert.True(t, ok, "the call-id index is rebuilt")
	assert.Equal(t, src.Stats().Traces, dst.Stats().Traces)
}

// A restored index keeps to the bounds in force now: with retention, the
// traces first seen too long ago leave it.
func TestRestoredTracesKeepTheirAge(t *testing.T) {
	src := filled(t)
	path := filepath.Join(t.TempDir(), "s")
	_, err := Write(context.Background(), path, src, 0)
	require.NoError(t, err)
	now := t0.Add(60 * time.Second)
	dst := store.New(store.Config{MaxBytes: 64 << 20, Retention: 30 * time.Second, Now: func() time.Time { return now }})
	defer dst.Close()
	_, err = Load(context.Background(), path, dst, Limits{})
	require.NoError(t, err)
	dst.Maintain()
	// First seen at t0+i s; at t0+60 s a 30 s retention keeps i >= 30.
	_, ok := dst.Get("acme", [16]byte(spangen.TraceID(10)))
	assert.False(t, ok)
	_, ok = dst.Get("acme", [16]byte(spangen.TraceID(40)))
	assert.True(t, ok)
}

func writeSnapshot(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	_, err := Write(context.Background(), path, filled(t), 0)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return path, b
}

// loadBytes loads b as a snapshot into an empty store and says what it holds.
func loadBytes(t *testing.T, b []byte, lim Limits) (Result, error, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	st := newStore(t, t0.Add(time.Hour))
	r, err := Load(context.Background(), path, st, lim)
	return r, err, st.Stats().Traces
}

func TestRefusedSnapshotsRestoreNothing(t *testing.T) {
	_, good := writeSnapshot(t)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x40
	foreign := append([]byte(nil), good...)
	foreign[7] = version + 1
	for name, c := range map[string]struct {
		b    []byte
		lim  Limits
		want error
	}{
		"a flipped bit":     {flipped, Limits{}, ErrCorrupt},
		"another version":   {foreign, Limits{}, ErrVersion},
		"not a snapshot":    {[]byte("GIF89a, or anything else really"), Limits{}, ErrCorrupt},
		"empty":             {nil, Limits{}, ErrTruncated},
		"oversized":         {good, Limits{MaxFileBytes: int64(len(good) - 1)}, ErrOversized},
		"a trace too large": {good, Limits{MaxTraceBytes: 16}, ErrCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			_, err, held := loadBytes(t, c.b, c.lim)
			require.ErrorIs(t, err, c.want)
			assert.Zero(t, held, "nothing restored")
		})
	}
}

// Cut anywhere, a snapshot is refused whole.
func TestEveryTruncationIsRefused(t *testing.T) {
	_, good := writeSnapshot(t)
	step := max(1, len(good)/300)
	for n := 0; n < len(good); n += step {
		_, err, held := loadBytes(t, good[:n], Limits{})
		require.Error(t, err, "cut at %d of %d", n, len(good))
		require.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt), "cut at %d: %v", n, err)
		require.Zero(t, held)
	}
	_, err, held := loadBytes(t, append(append([]byte(nil), good...), 0), Limits{})
	require.ErrorIs(t, err, ErrCorrupt, "data after the end")
	require.Zero(t, held)
}

func TestMissingSnapshot(t *testing.T) {
	_, err := Load(context.Background(), filepath.Join(t.TempDir(), "none"), newStore(t, t0), Limits{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// Past its deadline a snapshot is abandoned: no file, no temporary left.
func TestWriteStopsAtItsDeadline(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Write(ctx, filepath.Join(dir, "s"), filled(t), 0)
	require.ErrorIs(t, err, ErrTimeout)
	assertEmptied(t, dir)
}

// assertEmptied waits for the writer Write left behind to remove its
// temporary file, and checks nothing else is there.
func assertEmptied(t *testing.T, dir string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		entries, err := os.ReadDir(dir)
		require.NoError(c, err)
		assert.Empty(c, entries)
	}, 10*time.Second, 5*time.Millisecond)
}

// hungFile is a temporary file on a disk that stops answering: in a write
// or in the sync (hangIn), until unblock is closed. It closes hung when it
// starts to wait.
type hungFile struct {
	*os.File
	hangIn  string
	hung    chan struct{}
	once    sync.Once
	unblock chan struct{}
}

func (f *hungFile) hang(in string) {
	if f.hangIn == in {
		f.once.Do(func() { close(f.hung) })
		<-f.unblock
	}
}

func (f *hungFile) Write(b []byte) (int, error) {
	f.hang("write")
	return f.File.Write(b)
}

func (f *hungFile) Sync() error {
	f.hang("sync")
	return f.File.Sync()
}

// A disk that stops answering, in a write or at the sync, does not hold
// Write past its deadline; the store can be closed at once, and the file
// left behind is never renamed into place. "mid-write" hangs at the first
// write while the reader still has more traces than the writer's queue
// takes: the reader stops at the deadline too.
func TestWriteReturnsByItsDeadlineWhenTheDiskHangs(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		traces   int
	}{
		{"at the end's write", "write", 10},
		{"mid-write", "write", 600},
		{"at the sync", "sync", 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hung, unblock := make(chan struct{}), make(chan struct{})
			var release sync.Once
			t.Cleanup(func() { release.Do(func() { close(unblock) }) }) // even when the test fails
			createTemp = func(dir, pattern string) (tempFile, error) {
				f, err := os.CreateTemp(dir, pattern)
				return &hungFile{File: f, hangIn: tt.in, hung: hung, unblock: unblock}, err
			}
			bufferBytes = 4 << 10 // the first write comes after a trace or two
			t.Cleanup(func() {
				createTemp = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
				bufferBytes = 1 << 20
			})
			st := store.New(store.Config{MaxBytes: 64 << 20})
			for i := range tt.traces {
				st.Ingest("", spangen.Batch(uint64(i+1), 1, 0, 8))
			}
			dir := t.TempDir()
			// The deadline passes once the writer hangs, however slow the
			// machine: a Write that returned without hanging fails below.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-hung:
					cancel()
				case <-ctx.Done():
				}
			}()
			_, err := Write(ctx, filepath.Join(dir, "s"), st, 0)
			require.ErrorIs(t, err, ErrTimeout, "the writer never reached the hung "+tt.in)
			st.Close() // the writer holds nothing of the store's
			release.Do(func() { close(unblock) })
			assertEmptied(t, dir)
		})
	}
}

// A rename into place that has not finished by the deadline is told apart
// from a snapshot not written: the file is whole, and in place once the
// rename finishes.
func TestWriteTellsARenameStillRunning(t *testing.T) {
	started, unblock := make(chan struct{}), make(chan struct{})
	rename = func(from, to string) error {
		close(started)
		<-unblock
		return os.Rename(from, to)
	}
	t.Cleanup(func() { rename = os.Rename })
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel() // the deadline passes while the rename runs
	}()
	_, err := Write(ctx, path, filled(t), 0)
	require.ErrorIs(t, err, ErrRenamePending)
	close(unblock)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st := newStore(t, t0.Add(time.Minute))
		res, err := Load(context.Background(), path, st, Limits{MaxFileBytes: 1 << 30})
		require.NoError(c, err)
		assert.Equal(c, 70, res.Traces)
	}, 10*time.Second, 5*time.Millisecond)
}

// FuzzRead feeds the reader arbitrary files: it refuses them with one of
// its errors, never panics, and never allocates past its bounds.
func FuzzRead(f *testing.F) {
	path := filepath.Join(f.TempDir(), "s")
	st := store.New(store.Config{MaxBytes: 16 << 20})
	for i := range 3 {
		st.Ingest("acme", spangen.Batch(uint64(i+1), 1, 0, 3))
	}
	_, err := Write(context.Background(), path, st, 0)
	st.Close()
	require.NoError(f, err)
	good, err := os.ReadFile(path)
	require.NoError(f, err)
	f.Add(good)
	f.Add(good[:len(good)/2])
	var unmarshaler ptrace.ProtoUnmarshaler
	errUndecodable := errors.New("a trace that does not decode")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := read(context.Background(), bytes.NewReader(b), Limits{MaxTraceBytes: 1 << 20}, func(_ string, _ int64, _ byte, otlp []byte) error {
			if _, err := unmarshaler.UnmarshalTraces(otlp); err != nil {
				return errUndecodable
			}
			return nil
		})
		if err != nil {
			require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrVersion) || errors.Is(err, errUndecodable), "%v", err)
		}
	})
}

// A trace the index had cut (max_spans_per_trace) is still flagged cut
// once read back.
func TestTruncatedTracesStayFlagged(t *testing.T) {
	now := t0
	src := store.New(store.Config{MaxBytes: 16 << 20, MaxSpansPerTrace: 3, Now: func() time.Time { return now }})
	defer src.Close()
	src.Ingest("", spangen.Batch(1, 1, 0, 6)) // cut to 3 spans
	src.Ingest("", spangen.Batch(2, 1, 0, 2)) // whole
	path := filepath.Join(t.TempDir(), "s")
	_, err := Write(context.Background(), path, src, 0)
	require.NoError(t, err)
	dst := newStore(t, t0)
	_, err = Load(context.Background(), path, dst, Limits{})
	require.NoError(t, err)
	for n, want := range map[uint64]bool{1: true, 2: false} {
		tr, ok := dst.Get("", [16]byte(spangen.TraceID(n)))
		require.True(t, ok)
		assert.Equal(t, want, tr.Truncated, "trace %d", n)
		tr.Release()
	}
}
