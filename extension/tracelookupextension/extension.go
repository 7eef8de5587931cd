// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/metadata"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/pool"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

var (
	_ extension.Extension = (*tracelookupExtension)(nil)
	_ SpanIndex           = (*tracelookupExtension)(nil)
)

// How often the index expires old traces, at most: a tenth of the
// retention period, so a trace outlives it by at most that much.
const maintenanceInterval = 250 * time.Millisecond

type tracelookupExtension struct {
	cfg       *Config
	set       extension.Settings
	store     *store.Store
	handler   *api.Handler
	telemetry *metadata.TelemetryBuilder

	server *http.Server
	peers  *remote.Peers // nil: no peers
	// snapshotRead says Start read the snapshot back (or found none), so
	// Shutdown writes one.
	snapshotRead bool
	stop         chan struct{}
	wg           sync.WaitGroup
}

func newExtension(cfg *Config, set extension.Settings) (*tracelookupExtension, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &tracelookupExtension{
		cfg:       cfg,
		set:       set,
		telemetry: tb,
		store: store.New(store.Config{
			MaxBytes:         cfg.storeBytes(),
			MaxTraces:        cfg.Index.MaxTraces,
			MaxSpansPerTrace: cfg.Index.MaxSpansPerTrace,
			Retention:        cfg.Index.Retention,
			CallIDAttribute:  cfg.Index.CallIDAttribute,
			DefaultTenant:    cfg.Tenancy.DefaultTenant,
			TenantAttribute:  cfg.Tenancy.ResourceAttribute,
			MaxTenants:       cfg.Tenancy.MaxTenants,
			TenantShare:      float64(cfg.Tenancy.MaxSharePercent) / 100,
			NoSearch:         !cfg.Search.Enabled,
			Limits: spancodec.Limits{
				MaxValueBytes: cfg.Index.MaxAttributeValueBytes,
				MaxAttributes: cfg.Index.MaxAttributesPerSpan,
				MaxEvents:     cfg.Index.MaxEventsPerSpan,
				MaxLinks:      cfg.Index.MaxLinksPerSpan,
			},
		}),
	}
	e.handler = api.NewHandler(e.store, api.Options{
		MaxResponseSpans:  cfg.MaxResponseSpans,
		MaxResponseBytes:  cfg.MaxResponseMiB << 20,
		MaxTreeDepth:      cfg.MaxTreeDepth,
		LookupMemoryBytes: cfg.lookupMemoryBytes(),
		Tenancy: api.Tenancy{
			Header:        cfg.Tenancy.Header,
			AuthAttribute: cfg.Tenancy.AuthAttribute,
			DefaultTenant: cfg.Tenancy.DefaultTenant,
			Permissions:   cfg.Tenancy.Permissions,
		},
		RateLimits: api.RateLimits{
			Native:    api.RateLimit{RequestsPerMinute: cfg.RateLimits.Native.RequestsPerMinute},
			APMTrace:  api.RateLimit{RequestsPerMinute: cfg.RateLimits.APMTrace.RequestsPerMinute},
			CallTrace: api.RateLimit{RequestsPerMinute: cfg.RateLimits.CallTrace.RequestsPerMinute},
			Tempo:     api.RateLimit{RequestsPerMinute: cfg.RateLimits.Tempo.RequestsPerMinute},
			Jaeger:    api.RateLimit{RequestsPerMinute: cfg.RateLimits.Jaeger.RequestsPerMinute},
			Zipkin:    api.RateLimit{RequestsPerMinute: cfg.RateLimits.Zipkin.RequestsPerMinute},
		},
		Search: search.Options{
			MaxScannedTraces: cfg.Search.MaxScannedTraces,
			MaxScannedSpans:  cfg.Search.MaxScannedSpans,
			Timeout:          cfg.Search.Timeout,
			MaxTreeDepth:     cfg.MaxTreeDepth,
		},
		NoSearch:        !cfg.Search.Enabled,
		UIPath:          cfg.uiPath(),
		OnLookup:        e.recordLookup,
		CallIDAttribute: cfg.Index.CallIDAttribute,
		Logger:          set.Logger,
	})
	if err := e.registerGauges(); err != nil {
		tb.Shutdown()
		return nil, err
	}
	return e, nil
}

func (e *tracelookupExtension) registerGauges() error {
	gauge := func(read func(store.Stats) int64) metric.Int64Callback {
		return func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(read(e.store.Stats()))
			return nil
		}
	}
	return errors.Join(
		e.telemetry.RegisterTracelookupIndexSpansCallback(gauge(func(s store.Stats) int64 { return s.Spans })),
		e.telemetry.RegisterTracelookupIndexTracesCallback(gauge(func(s store.Stats) int64 { return s.Traces })),
		// The lookup buffers kept for reuse are the index's memory too.
		e.telemetry.RegisterTracelookupIndexBytesCallback(gauge(func(s store.Stats) int64 { return s.Bytes + pool.HeldBytes() })),
		e.telemetry.RegisterTracelookupIndexSpansDroppedCallback(func(_ context.Context, o metric.Int64Observer) error {
			st := e.store.Stats()
			o.Observe(st.DroppedSpans, metric.WithAttributes(attribute.String("reason", "max_spans_per_trace")))
			o.Observe(st.DuplicateSpans, metric.WithAttributes(attribute.String("reason", "duplicate")))
			o.Observe(st.InvalidIDSpans, metric.WithAttributes(attribute.String("reason", "invalid_trace_id")))
			o.Observe(st.InvalidTenantSpans, metric.WithAttributes(attribute.String("reason", "invalid_tenant")))
			o.Observe(st.TenantLimitSpans, metric.WithAttributes(attribute.String("reason", "max_tenants")))
			return nil
		}),
		e.telemetry.RegisterTracelookupIndexSpanCutsCallback(func(_ context.Context, o metric.Int64Observer) error {
			c := e.store.Stats().Cuts
			o.Observe(c.Values, metric.WithAttributes(attribute.String("limit", "max_attribute_value_bytes")))
			o.Observe(c.Attributes, metric.WithAttributes(attribute.String("limit", "max_attributes_per_span")))
			o.Observe(c.Events, metric.WithAttributes(attribute.String("limit", "max_events_per_span")))
			o.Observe(c.Links, metric.WithAttributes(attribute.String("limit", "max_links_per_span")))
			return nil
		}),
		e.telemetry.RegisterTracelookupTenantTracesCallback(e.perTenant(func(t store.TenantStats) int64 { return t.Traces })),
		e.telemetry.RegisterTracelookupTenantBytesCallback(e.perTenant(func(t store.TenantStats) int64 { return t.Bytes })),
		e.telemetry.RegisterTracelookupLookupMemoryCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(e.handler.AdmissionStats().InUseBytes)
			return nil
		}),
		e.telemetry.RegisterTracelookupIndexTracesEvictedCallback(func(_ context.Context, o metric.Int64Observer) error {
			st := e.store.Stats()
			for _, r := range []store.Reason{store.ReasonMemory, store.ReasonCount, store.ReasonRetention, store.ReasonTenantShare} {
				o.Observe(st.EvictedBy(r), metric.WithAttributes(attribute.String("reason", r.String())))
			}
			return nil
		}),
	)
}

// perTenant observes read of every tenant, with tenancy::telemetry_per_tenant only.
func (e *tracelookupExtension) perTenant(read func(store.TenantStats) int64) metric.Int64Callback {
	return func(_ context.Context, o metric.Int64Observer) error {
		if !e.cfg.Tenancy.TelemetryPerTenant {
			return nil
		}
		for _, t := range e.store.Tenants() {
			o.Observe(read(t), metric.WithAttributes(attribute.String("tenant", t.Tenant)))
		}
		return nil
	}
}

// TenantHeader implements SpanIndex.
func (e *tracelookupExtension) TenantHeader() string { return e.cfg.Tenancy.Header }

// IndexTraces implements SpanIndex.
func (e *tracelookupExtension) IndexTraces(tenant string, td ptrace.Traces) {
	r := e.store.Ingest(tenant, td)
	if r.InvalidID > 0 {
		e.set.Logger.Debug("Spans with an all-zero trace id were not indexed: no lookup could name them", zap.Int("spans", r.InvalidID))
	}
	if r.InvalidTenant > 0 {
		fields := []zap.Field{zap.Int("spans", r.InvalidTenant)}
		if tenant != "" {
			fields = append(fields, zap.String("tenant_header", api.Echo(tenant)))
		} else {
			fields = append(fields, zap.String("resource_attribute", e.cfg.Tenancy.ResourceAttribute))
		}
		e.set.Logger.Warn("Spans with a tenant id that is not valid were not indexed; the pipeline still passes them on", fields...)
	}
	if r.TenantLimit > 0 {
		e.set.Logger.Warn("Spans of a new tenant were not indexed: tenancy::max_tenants other tenants hold traces",
			zap.Int("spans", r.TenantLimit), zap.Int("max_tenants", e.cfg.Tenancy.MaxTenants))
	}
}

// otherTenant labels the lookups of tenants that hold no trace: clients
// name any tenant they like, and only those the index holds (at most
// tenancy::max_tenants) are label values.
const otherTenant = "_other"

func (e *tracelookupExtension) recordLookup(route api.Route, outcome api.Outcome, tenant string, d time.Duration) {
	kv := []attribute.KeyValue{attribute.String("route", string(route)), attribute.String("outcome", string(outcome))}
	if e.cfg.Tenancy.TelemetryPerTenant && tenant != "" {
		if !e.store.Holds(tenant) {
			tenant = otherTenant
		}
		kv = append(kv, attribute.String("tenant", tenant))
	}
	attrs := metric.WithAttributes(kv...)
	ctx := context.Background()
	e.telemetry.TracelookupLookups.Add(ctx, 1, attrs)
	e.telemetry.TracelookupLookupDuration.Record(ctx, float64(d)/float64(time.Millisecond), attrs)
}

// Start binds the API's listener first, so that a taken port fails start-up
// at once, then reads the snapshot back, then serves in the background.
func (e *tracelookupExtension) Start(ctx context.Context, host component.Host) error {
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return err
	}
	if err = e.readSnapshot(); err != nil {
		_ = ln.Close()
		return err
	}
	// Errors before the API sees a request (authentication, decompression)
	// answer in the format of the contract the path names.
	e.server, err = e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, e.handler,
		confighttp.WithErrorHandler(e.handler.WriteError))
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err = e.startRemote(ctx, host, ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	e.set.Logger.Info("Trace lookup API listening", zap.String("endpoint", ln.Addr().String()))
	if e.cfg.ServerConfig.Auth.HasValue() && e.cfg.Tenancy.AuthAttribute == "" {
		e.set.Logger.Warn("Without tenancy::auth_attribute, every authenticated client reads whichever tenant its tenant header names",
			zap.String("header", e.cfg.Tenancy.Header))
	}
	e.stop = make(chan struct{})
	e.wg.Go(func() {
		if errHTTP := e.server.Serve(ln); errHTTP != nil && !errors.Is(errHTTP, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errHTTP))
		}
	})
	interval := maintenanceInterval
	if r := e.cfg.Index.Retention; r > 0 {
		interval = min(interval, r/10)
	}
	stop := e.stop
	e.wg.Go(func() { e.maintain(interval, stop) })
	return nil
}

// startRemote makes the peers' and the long-term store's clients (through
// confighttp, so tls and client authenticators apply) and hands them to the
// API; the peers are resolved once before the API serves.
func (e *tracelookupExtension) startRemote(ctx context.Context, host component.Host, addr net.Addr) error {
	var peers *remote.Peers
	var lts *remote.LongTermStore
	if p := e.cfg.Peers; p.enabled() {
		client, err := p.ClientConfig.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
		if err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		port := 0
		if tcp, ok := addr.(*net.TCPAddr); ok {
			port = tcp.Port
		}
		self, err := remote.LocalAddresses(port)
		if err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		peers = remote.NewPeers(remote.PeersConfig{
			Endpoints:        p.Endpoints,
			DNSName:          p.DNS.Name,
			DNSPort:          p.DNS.Port,
			DNSInterval:      p.DNS.Interval,
			Scheme:           p.DNS.Scheme,
			Timeout:          p.ClientConfig.Timeout,
			TenantHeader:     e.cfg.Tenancy.Header,
			MaxResponseBytes: int64(e.cfg.MaxResponseMiB) << 20,
		}, client, nil, self, e.recordRemote, e.set.Logger)
		peers.Start(ctx)
		if err := e.telemetry.RegisterTracelookupPeersCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(len(peers.Endpoints())))
			return nil
		}); err != nil {
			peers.Shutdown()
			return err
		}
		e.peers = peers
	}
	if s := e.cfg.LongTermStore; s.Kind != "" {
		client, err := s.ClientConfig.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
		if err != nil {
			return fmt.Errorf("long_term_store: %w", err)
		}
		lts = remote.NewLongTermStore(remote.StoreConfig{
			Kind:             s.Kind,
			Endpoint:         s.ClientConfig.Endpoint,
			Timeout:          s.ClientConfig.Timeout,
			CallIDAttribute:  e.cfg.Index.CallIDAttribute,
			CallIDLookback:   s.CallIDLookback,
			TenantHeader:     s.TenantHeader,
			MaxResponseBytes: int64(e.cfg.MaxResponseMiB) << 20,
		}, client, e.recordRemote)
	}
	e.handler.UseRemote(peers, lts)
	return nil
}

// recordRemote counts a request to a peer or the long-term store.
func (e *tracelookupExtension) recordRemote(target, endpoint, outcome string, d time.Duration) {
	ctx := context.Background()
	ms := float64(d) / float64(time.Millisecond)
	if target == "peer" {
		attrs := metric.WithAttributes(attribute.String("peer", endpoint), attribute.String("outcome", outcome))
		e.telemetry.TracelookupPeerRequests.Add(ctx, 1, attrs)
		e.telemetry.TracelookupPeerRequestDuration.Record(ctx, ms, attrs)
		return
	}
	attrs := metric.WithAttributes(attribute.String("outcome", outcome))
	e.telemetry.TracelookupLongTermStoreRequests.Add(ctx, 1, attrs)
	e.telemetry.TracelookupLongTermStoreRequestDuration.Record(ctx, ms, attrs)
}

// maintain expires old traces in the background, so that they leave even
// when no spans arrive.
func (e *tracelookupExtension) maintain(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			e.store.Maintain()
		}
	}
}

// Shutdown lets lookups in flight finish until ctx ends, then closes the
// server and frees the index; it is safe to call when Start never ran.
// Receivers stop before extensions, so nothing writes to the index then.
func (e *tracelookupExtension) Shutdown(ctx context.Context) error {
	var err error
	if e.server != nil {
		if err = e.server.Shutdown(ctx); err != nil {
			// Requests still running when ctx ended: cut them off, and
			// report why the graceful shutdown did not finish.
			err = errors.Join(err, e.server.Close())
		}
	}
	if e.stop != nil {
		close(e.stop)
		e.stop = nil
	}
	if e.peers != nil {
		e.peers.Shutdown()
	}
	e.wg.Wait()
	e.writeSnapshot(ctx)
	e.store.Close()
	e.telemetry.Shutdown()
	return err
}
