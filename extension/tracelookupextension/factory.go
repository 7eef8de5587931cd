// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"

import (
	"time"

	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/metadata"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Defaults.
const (
	defaultEndpoint         = "localhost:8088"
	defaultMaxMemoryMiB     = 512
	defaultMaxSpansPerTrace = 10000
	defaultCallIDAttribute  = "call.id"
	defaultMaxResponseSpans = 10000
	defaultMaxResponseMiB   = 64
	// The fan-out waits this long for peers on loopback or a cluster network;
	// the long-term store, a query frontend searching object storage, longer.
	defaultPeersTimeout         = 500 * time.Millisecond
	defaultPeersDNSInterval     = 30 * time.Second
	defaultLongTermStoreTimeout = 5 * time.Second
	defaultCallIDLookback       = 24 * time.Hour
	// The defaults of the OpenTelemetry SDKs' span limits, and Tempo's
	// attribute value limit.
	defaultMaxAttributeValueBytes = 4096
	defaultMaxAttributesPerSpan   = 128
	defaultMaxEventsPerSpan       = 128
	defaultMaxLinksPerSpan        = 128
	// A full 512 MiB index writes in about 17 s and reads back in about
	// as long on two cores (BenchmarkSnapshot512MiB).
	defaultSnapshotTimeout = 30 * time.Second
)

// NewFactory returns the tracelookup extension's factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	peersClient := confighttp.NewDefaultClientConfig()
	peersClient.Timeout = defaultPeersTimeout
	storeClient := confighttp.NewDefaultClientConfig()
	storeClient.Timeout = defaultLongTermStoreTimeout
	server.NetAddr.Endpoint = defaultEndpoint
	return &Config{
		ServerConfig: server,
		Index: IndexConfig{
			MaxMemoryMiB:     defaultMaxMemoryMiB,
			MaxSpansPerTrace: defaultMaxSpansPerTrace,
			CallIDAttribute:  defaultCallIDAttribute,

			MaxAttributeValueBytes: defaultMaxAttributeValueBytes,
			MaxAttributesPerSpan:   defaultMaxAttributesPerSpan,
			MaxEventsPerSpan:       defaultMaxEventsPerSpan,
			MaxLinksPerSpan:        defaultMaxLinksPerSpan,
			Snapshot:               SnapshotConfig{Timeout: defaultSnapshotTimeout},
		},
		Tenancy: TenancyConfig{
			Header:        api.DefaultTenantHeader,
			DefaultTenant: store.DefaultTenant,
			MaxTenants:    store.DefaultMaxTenants,
		},
		RateLimits: RateLimitsConfig{
			APMTrace: RateLimitConfig{RequestsPerMinute: api.DefaultAPMTraceRateLimit},
		},
		Search: SearchConfig{
			Enabled:          true,
			MaxScannedTraces: search.DefaultMaxScannedTraces,
			MaxScannedSpans:  search.DefaultMaxScannedSpans,
			Timeout:          search.DefaultTimeout,
		},
		UI:               UIConfig{Enabled: true, Path: "/"},
		Peers:            PeersConfig{DNS: PeersDNSConfig{Interval: defaultPeersDNSInterval, Scheme: "http"}, ClientConfig: peersClient},
		LongTermStore:    LongTermStoreConfig{CallIDLookback: defaultCallIDLookback, ClientConfig: storeClient},
		MaxResponseSpans: defaultMaxResponseSpans,
		MaxResponseMiB:   defaultMaxResponseMiB,
		MaxTreeDepth:     traceview.DefaultMaxTreeDepth,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set)
}
