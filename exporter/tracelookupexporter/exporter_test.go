// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupexporter

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/exporter/tracelookupexporter/internal/metadata"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
)

type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

var traceID = pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}

func testTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	for i := range 3 {
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(traceID)
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
		if i > 0 {
			s.SetParentSpanID(pcommon.SpanID{1})
		}
		s.SetName("work")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(time.Millisecond)))
	}
	return td
}

// startIndex starts a tracelookup extension serving its API on a free
// loopback port; it is shut down with the test.
func startIndex(t *testing.T) (component.Component, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	f := tracelookupextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*tracelookupextension.Config)
	cfg.ServerConfig.NetAddr.Endpoint = addr
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext, "http://" + addr
}

func startExporter(t *testing.T, cfg *Config, ext component.Component) exporter.Traces {
	t.Helper()
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), host{map[component.ID]component.Component{cfg.Extension: ext}}))
	return exp
}

func lookup(t *testing.T, base, tenant string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/traces/"+traceID.String(), http.NoBody)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

func TestIndexesEveryBatchUnchanged(t *testing.T) {
	ext, base := startIndex(t)
	exp := startExporter(t, NewFactory().CreateDefaultConfig().(*Config), ext)
	assert.False(t, exp.Capabilities().MutatesData)

	td := testTraces()
	before := ptrace.NewTraces()
	td.CopyTo(before)
	require.Equal(t, http.StatusNotFound, lookup(t, base, ""))
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	assert.Equal(t, before, td, "the batch is not changed")
	assert.Equal(t, http.StatusOK, lookup(t, base, ""))
	require.NoError(t, exp.Shutdown(context.Background()))
}

// The tenant header reaches the exporter as client metadata (the otlp
// receiver's include_metadata: true), and the batch is indexed under it.
func TestIndexesUnderTheTenantOfTheRequest(t *testing.T) {
	ext, base := startIndex(t)
	exp := startExporter(t, NewFactory().CreateDefaultConfig().(*Config), ext)
	defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

	ctx := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{"x-scope-orgid": {"acme"}})})
	require.NoError(t, exp.ConsumeTraces(ctx, testTraces()))
	assert.Equal(t, http.StatusOK, lookup(t, base, "acme"))
	assert.Equal(t, http.StatusNotFound, lookup(t, base, "globex"))
	assert.Equal(t, http.StatusNotFound, lookup(t, base, ""), "not under the default tenant")
}

// With a sending queue, batches are indexed from the queue, and shutdown
// drains it.
func TestSendingQueueIsDrainedOnShutdown(t *testing.T) {
	ext, base := startIndex(t)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	qc := exporterhelper.NewDefaultQueueConfig()
	qc.QueueSize = 100
	cfg.QueueConfig = configoptional.Some(qc)
	exp := startExporter(t, cfg, ext)
	require.NoError(t, exp.ConsumeTraces(context.Background(), testTraces()))
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.Equal(t, http.StatusOK, lookup(t, base, ""))
}

// panicIndex is an index that fails.
type panicIndex struct {
	component.StartFunc
	component.ShutdownFunc
	mu    sync.Mutex
	calls int
}

func (*panicIndex) TenantHeader() string { return "X-Scope-OrgID" }

func (p *panicIndex) IndexTraces(string, ptrace.Traces) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	panic("index broke")
}

func TestIndexFailureDoesNotFailThePipeline(t *testing.T) {
	idx := &panicIndex{}
	exp := startExporter(t, NewFactory().CreateDefaultConfig().(*Config), idx)
	assert.NoError(t, exp.ConsumeTraces(context.Background(), testTraces()))
	assert.Equal(t, 1, idx.calls)
	require.NoError(t, exp.Shutdown(context.Background()))
}

type notAnIndex struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestStartNeedsTheExtension(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	err = exp.Start(context.Background(), host{})
	require.ErrorIs(t, err, tracelookupextension.ErrExtensionMissing)
	assert.ErrorContains(t, err, "service::extensions")
	assert.ErrorContains(t, err, `exporter "tracelookup/`)

	other := component.MustNewID("health_check")
	cfg.Extension = other
	err = exp.Start(context.Background(), host{map[component.ID]component.Component{other: &notAnIndex{}}})
	require.ErrorIs(t, err, tracelookupextension.ErrNotSpanIndex)
	require.NoError(t, exp.Shutdown(context.Background()))
}

// Batches merged in the sending queue keep their tenant only when the
// tenant header partitions them; without it the exporter refuses to start.
func TestBatchingQueueKeepsTenantsApart(t *testing.T) {
	ext, base := startIndex(t)
	batching := func(keys ...string) *Config {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		qc := exporterhelper.NewDefaultQueueConfig()
		bc := exporterhelper.NewDefaultBatchConfig()
		bc.Partition.MetadataKeys = keys
		qc.Sizer = exporterhelper.RequestSizerTypeItems
		qc.Batch = configoptional.Some(bc)
		cfg.QueueConfig = configoptional.Some(qc)
		return cfg
	}
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), batching())
	require.NoError(t, err)
	err = exp.Start(context.Background(), host{map[component.ID]component.Component{defaultExtension: ext}})
	require.ErrorContains(t, err, `add "X-Scope-OrgID" to "sending_queue::batch::partition::metadata_keys"`)
	require.NoError(t, exp.Shutdown(context.Background()))

	exp = startExporter(t, batching("x-scope-orgid"), ext)
	for i, tenant := range []string{"acme", "globex"} {
		td := testTraces()
		for _, s := range td.ResourceSpans().At(0).ScopeSpans().All() {
			for _, sp := range s.Spans().All() {
				id := sp.TraceID()
				id[15] = byte(i)
				sp.SetTraceID(id)
			}
		}
		ctx := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{"X-Scope-OrgID": {tenant}})})
		require.NoError(t, exp.ConsumeTraces(ctx, td))
	}
	require.NoError(t, exp.Shutdown(context.Background())) // flushes the batches
	for i, tenant := range []string{"acme", "globex"} {
		id := traceID
		id[15] = byte(i)
		req, err := http.NewRequest(http.MethodGet, base+"/api/v1/traces/"+id.String(), http.NoBody)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode, tenant)
	}
}

func TestPersistentQueueIsRefused(t *testing.T) {
	storage := component.MustNewID("file_storage")
	qc := exporterhelper.NewDefaultQueueConfig()
	qc.StorageID = &storage
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.QueueConfig = configoptional.Some(qc)
	assert.ErrorContains(t, checkQueue(cfg, "X-Scope-OrgID"), "sending_queue::storage")
}
