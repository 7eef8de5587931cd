// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestDefaultConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	assert.Equal(t, "localhost:8088", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, 512, cfg.Index.MaxMemoryMiB)
	assert.Equal(t, 0, cfg.Index.MaxTraces)
	assert.Equal(t, 10000, cfg.Index.MaxSpansPerTrace)
	assert.Equal(t, time.Duration(0), cfg.Index.Retention)
	assert.Equal(t, "call.id", cfg.Index.CallIDAttribute)
	assert.Equal(t, 10000, cfg.MaxResponseSpans)
	assert.Equal(t, 64, cfg.MaxResponseMiB)
	assert.Equal(t, 4096, cfg.Index.MaxAttributeValueBytes)
	assert.Equal(t, 128, cfg.Index.MaxAttributesPerSpan)
	assert.Equal(t, 128, cfg.Index.MaxEventsPerSpan)
	assert.Equal(t, 128, cfg.Index.MaxLinksPerSpan)
	assert.Equal(t, SnapshotConfig{Timeout: 30 * time.Second}, cfg.Index.Snapshot, "off until a path is given")
	assert.Equal(t, 400, cfg.MaxTreeDepth)
	assert.Equal(t, 0, cfg.MaxLookupMemoryMiB)
	// Lookups get an eighth of the index's memory, the store the rest.
	assert.Equal(t, int64(64<<20), cfg.lookupMemoryBytes())
	assert.Equal(t, int64(448<<20), cfg.storeBytes())
	assert.Equal(t, TenancyConfig{Header: "X-Scope-OrgID", DefaultTenant: "default", MaxTenants: 1000}, cfg.Tenancy)
	assert.Equal(t, 60, cfg.RateLimits.APMTrace.RequestsPerMinute, "the 003 document's limit")
	assert.Zero(t, cfg.RateLimits.Native.RequestsPerMinute)
	assert.Zero(t, cfg.RateLimits.CallTrace.RequestsPerMinute)
	assert.Equal(t, SearchConfig{Enabled: true, MaxScannedTraces: 2_000_000, MaxScannedSpans: 200_000, Timeout: 10 * time.Second}, cfg.Search)
	assert.Equal(t, UIConfig{Enabled: true, Path: "/"}, cfg.UI)
	require.NoError(t, confmap.Validate(cfg))
}

func TestCustomConfig(t *testing.T) {
	cfg := loadConfig(t, "custom")
	assert.Equal(t, "0.0.0.0:9099", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, 256, cfg.Index.MaxMemoryMiB)
	assert.Equal(t, 100000, cfg.Index.MaxTraces)
	assert.Equal(t, 500, cfg.Index.MaxSpansPerTrace)
	assert.Equal(t, 15*time.Minute, cfg.Index.Retention)
	assert.Equal(t, "session.id", cfg.Index.CallIDAttribute)
	assert.Equal(t, 2000, cfg.MaxResponseSpans)
	assert.Equal(t, 8, cfg.MaxResponseMiB)
	assert.Equal(t, 1024, cfg.Index.MaxAttributeValueBytes)
	assert.Equal(t, 64, cfg.Index.MaxAttributesPerSpan)
	assert.Equal(t, 32, cfg.Index.MaxEventsPerSpan)
	assert.Equal(t, 16, cfg.Index.MaxLinksPerSpan)
	assert.Equal(t, 200, cfg.MaxTreeDepth)
	assert.Equal(t, int64(48<<20), cfg.lookupMemoryBytes())
	assert.Equal(t, int64(208<<20), cfg.storeBytes())
	assert.Equal(t, TenancyConfig{
		Header: "X-Tenant", ResourceAttribute: "tenant.id", DefaultTenant: "shared", AuthAttribute: "subject",
		Permissions: map[string][]string{"alice": {"team-a"}, "ops": {"*"}},
		MaxTenants:  50, MaxSharePercent: 25, TelemetryPerTenant: true,
	}, cfg.Tenancy)
	assert.Equal(t, 600, cfg.RateLimits.Native.RequestsPerMinute)
	assert.Equal(t, 120, cfg.RateLimits.APMTrace.RequestsPerMinute)
	assert.Equal(t, SearchConfig{MaxScannedTraces: 50000, MaxScannedSpans: 20000, Timeout: 3 * time.Second}, cfg.Search)
	assert.Equal(t, 30, cfg.RateLimits.CallTrace.RequestsPerMinute)
	assert.Equal(t, 300, cfg.RateLimits.Tempo.RequestsPerMinute)
	assert.Equal(t, 240, cfg.RateLimits.Jaeger.RequestsPerMinute)
	assert.Equal(t, 60, cfg.RateLimits.Zipkin.RequestsPerMinute)
	assert.Equal(t, UIConfig{Enabled: true, Path: "/viewer/"}, cfg.UI)
	assert.Equal(t, []string{"http://10.0.0.2:8088", "http://10.0.0.3:8088"}, cfg.Peers.Endpoints)
	assert.Equal(t, PeersDNSConfig{Name: "tracelookup-headless.observability.svc", Port: 8088, Interval: 30 * time.Second, Scheme: "http"}, cfg.Peers.DNS)
	assert.Equal(t, 500*time.Millisecond, cfg.Peers.ClientConfig.Timeout)
	assert.Equal(t, "tempo", cfg.LongTermStore.Kind)
	assert.Equal(t, "http://tempo-query-frontend:3200", cfg.LongTermStore.ClientConfig.Endpoint)
	assert.Equal(t, 5*time.Second, cfg.LongTermStore.ClientConfig.Timeout)
	assert.Equal(t, 24*time.Hour, cfg.LongTermStore.CallIDLookback)
	require.NoError(t, confmap.Validate(cfg))
}

func TestInvalidRemoteConfig(t *testing.T) {
	err := confmap.Validate(loadConfig(t, "bad_remote"))
	for _, opt := range []string{`"peers::endpoints" "10.0.0.2:8088"`, `"peers::endpoint" is not used`, `"peers::dns::port"`, `"peers::dns::interval"`,
		`"peers::dns::scheme"`, `"peers::timeout"`, `"long_term_store::kind" must be tempo or jaeger, got "loki"`} {
		assert.ErrorContains(t, err, opt)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.LongTermStore.Kind = "jaeger"
	cfg.LongTermStore.ClientConfig.Endpoint = "jaeger-query:16686"
	cfg.LongTermStore.TenantHeader = "bad header"
	assert.ErrorContains(t, cfg.Validate(), `"long_term_store::endpoint" "jaeger-query:16686": it must start with http://`)
	assert.ErrorContains(t, cfg.Validate(), `"long_term_store::tenant_header" must be an HTTP header name, got "bad header"`)
	for section, typo := range map[string]string{"peers": "endpionts", "long_term_store": "knd"} {
		conf := confmap.NewFromStringMap(map[string]any{"endpoint": "127.0.0.1:1", section: map[string]any{typo: 1}})
		assert.ErrorContains(t, conf.Unmarshal(NewFactory().CreateDefaultConfig()), typo)
	}
	conf := confmap.NewFromStringMap(map[string]any{"endpoint": "127.0.0.1:1", "peers": map[string]any{"dns": map[string]any{"nmae": "x"}}})
	assert.ErrorContains(t, conf.Unmarshal(NewFactory().CreateDefaultConfig()), "nmae")
}

func TestInvalidConfig(t *testing.T) {
	err := confmap.Validate(loadConfig(t, "bad_memory"))
	require.ErrorContains(t, err, "index::max_memory_mib")
	require.ErrorContains(t, err, `"index::snapshot::timeout" must be positive`)
	conf := confmap.NewFromStringMap(map[string]any{"endpoint": "127.0.0.1:1", "index": map[string]any{"snapshot": map[string]any{"pth": "/x"}}})
	assert.ErrorContains(t, conf.Unmarshal(NewFactory().CreateDefaultConfig()), "pth")

	err = confmap.Validate(loadConfig(t, "bad_many"))
	require.Error(t, err)
	for _, opt := range []string{`"endpoint"`, "index::max_traces", "index::max_spans_per_trace", "index::retention", "max_response_spans", "max_response_mib",
		"index::max_attribute_value_bytes", "index::max_attributes_per_span", "index::max_events_per_span", "index::max_links_per_span", `"max_tree_depth"`, `"max_lookup_memory_mib"`,
		`"tenancy::header"`, `"tenancy::default_tenant"`, `"tenancy::max_tenants"`, `"tenancy::max_share_percent"`, `"tenancy::auth_attribute" needs "auth"`,
		`"tenancy::permissions::alice" names "../x"`, `"rate_limits::apm_trace::requests_per_minute"`,
		`"search::max_scanned_traces"`, `"search::max_scanned_spans"`, `"search::timeout"`, `"rate_limits::tempo::requests_per_minute"`, `"ui::path" "/api/viewer"`} {
		assert.ErrorContains(t, err, opt)
	}
}

// Regression: a retention under 10ns crashed the collector (a ticker of 0)
// and 1us made expiry spin.
func TestShareOfLessThanOneTrace(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Index.MaxTraces = 10
	cfg.Tenancy.MaxSharePercent = 5
	assert.ErrorContains(t, cfg.Validate(), `"tenancy::max_share_percent" (5) of "index::max_traces" (10) is less than one trace`)
	cfg.Tenancy.MaxSharePercent = 10
	assert.NoError(t, cfg.Validate())
}

func TestRetentionHasAFloor(t *testing.T) {
	for _, r := range []time.Duration{time.Nanosecond, 5 * time.Nanosecond, time.Microsecond, 999 * time.Millisecond} {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.Index.Retention = r
		assert.ErrorContains(t, cfg.Validate(), `"index::retention" must be 0 (no limit) or at least 1s`, r.String())
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Index.Retention = time.Second
	assert.NoError(t, cfg.Validate())
}

func TestUnknownKeyIsRejected(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("tracelookup/custom")
	require.NoError(t, err)
	require.NoError(t, sub.Merge(confmap.NewFromStringMap(map[string]any{"index": map[string]any{"max_memroy_mib": 1}})))
	cfg := NewFactory().CreateDefaultConfig()
	assert.ErrorContains(t, sub.Unmarshal(cfg), "max_memroy_mib", "a misspelt key must not be swallowed by the squashed server config")

	for section, typo := range map[string]string{"tenancy": "defualt_tenant", "rate_limits": "apm_trace_", "search": "max_scaned_spans"} {
		conf := confmap.NewFromStringMap(map[string]any{"endpoint": "127.0.0.1:1", section: map[string]any{typo: 1}})
		assert.ErrorContains(t, conf.Unmarshal(NewFactory().CreateDefaultConfig()), typo)
	}

	top := confmap.NewFromStringMap(map[string]any{"endpoint": "127.0.0.1:1", "max_response_span": 3})
	assert.ErrorContains(t, top.Unmarshal(NewFactory().CreateDefaultConfig()), `"max_response_span"`)

	// The server's own options still decode.
	ok := confmap.NewFromStringMap(map[string]any{"endpoint": "127.0.0.1:1", "cors": map[string]any{"allowed_origins": []any{"https://x"}}, "max_request_body_size": 10})
	cfg = NewFactory().CreateDefaultConfig()
	require.NoError(t, ok.Unmarshal(cfg))
	assert.Equal(t, "127.0.0.1:1", cfg.(*Config).ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, int64(10), cfg.(*Config).ServerConfig.MaxRequestBodySize)
}
