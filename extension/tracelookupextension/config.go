// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"
	"golang.org/x/net/http/httpguts"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/ui"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/configkeys"
)

// Config is the tracelookup extension's configuration.
type Config struct {
	// ServerConfig is the API's HTTP server: endpoint, tls, auth, cors and the rest
	// sit at the top of the extension's config.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`

	// Index bounds the in-memory span index.
	Index IndexConfig `mapstructure:"index"`

	// MaxResponseSpans caps the spans of one response, on every contract; the
	// rest are cut and the cut is flagged in the contract's way.
	MaxResponseSpans int `mapstructure:"max_response_spans"`

	// MaxResponseMiB is the size limit of one response body, on every
	// contract; spans past it are cut and the cut is flagged (003 answers
	// 413 when not even one span fits).
	MaxResponseMiB int `mapstructure:"max_response_mib"`

	// MaxTreeDepth is the deepest a response's span tree nests; spans deeper
	// become roots, keeping their parent_span_id, and the cut is flagged.
	MaxTreeDepth int `mapstructure:"max_tree_depth"`

	// MaxLookupMemoryMiB is the memory the lookups in flight may use
	// together, out of index::max_memory_mib; 0 means an eighth of it.
	MaxLookupMemoryMiB int `mapstructure:"max_lookup_memory_mib"`

	// Tenancy says which tenant spans are stored under and lookups read.
	Tenancy TenancyConfig `mapstructure:"tenancy"`

	// RateLimits limit each tenant's requests, per contract.
	RateLimits RateLimitsConfig `mapstructure:"rate_limits"`

	// Search configures the search indexes and bounds each search.
	Search SearchConfig `mapstructure:"search"`
	// UI serves the trace viewer page.
	UI UIConfig `mapstructure:"ui"`

	// Peers are the collector's other replicas: lookups and searches ask
	// them too, and merge what they hold.
	Peers PeersConfig `mapstructure:"peers"`
	// LongTermStore is the Tempo or Jaeger asked for traces the index and
	// the peers do not hold, or hold only part of.
	LongTermStore LongTermStoreConfig `mapstructure:"long_term_store"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PeersConfig lists the collector's other replicas, statically and/or by
// a DNS name, and how to reach them: timeout (the fan-out's deadline),
// tls, auth (a client authenticator extension), headers and the rest of
// confighttp's client settings.
type PeersConfig struct {
	// Endpoints are the peers' base URLs, such as http://10.0.0.2:8088.
	Endpoints []string `mapstructure:"endpoints"`
	// DNS names the peers by a DNS name, re-resolved every interval.
	DNS PeersDNSConfig `mapstructure:"dns"`
	// ClientConfig reaches the peers; its endpoint is not used (see Endpoints).
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PeersDNSConfig finds the peers by a DNS name: each of its A and AAAA
// records is a replica (a Kubernetes headless Service lists its pods so);
// the replica's own address is recognised and skipped.
type PeersDNSConfig struct {
	Name     string        `mapstructure:"name"`
	Port     int           `mapstructure:"port"`
	Interval time.Duration `mapstructure:"interval"`
	// Scheme is the peers' URL scheme: http, or https (with tls settings).
	Scheme string `mapstructure:"scheme"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LongTermStoreConfig is the long-term store: kind tempo or jaeger, its
// query API's endpoint, timeout, and the rest of confighttp's client
// settings (tls, auth, headers).
type LongTermStoreConfig struct {
	// Kind is tempo or jaeger; "" means no long-term store.
	Kind string `mapstructure:"kind"`
	// CallIDLookback is how far back a call-id lookup searches Jaeger,
	// whose search needs a time range.
	CallIDLookback time.Duration `mapstructure:"call_id_lookback"`
	// TenantHeader carries the lookup's tenant to the store; "" is the
	// kind's own: X-Scope-OrgID for Tempo, x-tenant for Jaeger.
	TenantHeader string `mapstructure:"tenant_header"`
	// ClientConfig reaches the store: endpoint, timeout, tls, auth...
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SearchConfig configures search (GET /api/v1/traces and the listings).
type SearchConfig struct {
	// Enabled keeps the search indexes; off, ingest does a little less
	// and the search and listing routes answer that search is off.
	Enabled bool `mapstructure:"enabled"`
	// MaxScannedTraces is the most trace records one search reads, and
	// MaxScannedSpans the most spans it decodes to check its candidates;
	// past either, it answers what it found with "partial": true and a
	// cursor to go on from.
	MaxScannedTraces int `mapstructure:"max_scanned_traces"`
	MaxScannedSpans  int `mapstructure:"max_scanned_spans"`
	// Timeout is the most time one search may take (a costly regular
	// expression on every span, say); past it, the same.
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// UIConfig configures the trace viewer page.
type UIConfig struct {
	// Enabled serves the page; off, the extension serves the API only.
	Enabled bool `mapstructure:"enabled"`
	// Path is where the page is served (its deep links are Path +
	// "trace/{id}", its files under Path + "ui/").
	Path string `mapstructure:"path"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// TenancyConfig says which tenant spans are stored under and lookups read.
type TenancyConfig struct {
	// Header is the request header naming the tenant, read from the
	// receiver's OTLP requests (HTTP headers, gRPC metadata) and from lookups.
	Header string `mapstructure:"header"`
	// ResourceAttribute names the tenant of spans whose request names none; "" turns it off.
	ResourceAttribute string `mapstructure:"resource_attribute"`
	// DefaultTenant holds spans that name no tenant, and is read by lookups that name none.
	DefaultTenant string `mapstructure:"default_tenant"`
	// AuthAttribute names the authenticated client's attribute (an oidc
	// claim, the basicauth username) that identifies it to Permissions;
	// without Permissions, the client reads the tenant named like it.
	AuthAttribute string `mapstructure:"auth_attribute"`
	// Permissions maps the AuthAttribute's values to the tenants they may read ("*": all).
	Permissions map[string][]string `mapstructure:"permissions"`
	// MaxTenants is the most tenants the index holds at once.
	MaxTenants int `mapstructure:"max_tenants"`
	// MaxSharePercent is the most of index::max_memory_mib and
	// index::max_traces one tenant may hold; 0 means no share.
	MaxSharePercent int `mapstructure:"max_share_percent"`
	// TelemetryPerTenant adds the tenant to the lookup metrics and reports
	// each tenant's traces and bytes: tenant ids are unbounded label values.
	TelemetryPerTenant bool `mapstructure:"telemetry_per_tenant"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RateLimitsConfig are the contracts' per-tenant rate limits.
type RateLimitsConfig struct {
	// Native limits the native routes: GET /api/v1/traces/{trace_id}, the search and the listings.
	Native RateLimitConfig `mapstructure:"native"`
	// APMTrace limits GET /api/v2/trace/{trace_id} (003).
	APMTrace RateLimitConfig `mapstructure:"apm_trace"`
	// CallTrace limits GET /v1/trace/call/{call_id} (000).
	CallTrace RateLimitConfig `mapstructure:"call_trace"`
	// Tempo limits Tempo's query API (/api/echo, /api/traces, /api/v2/traces, /api/search...).
	Tempo RateLimitConfig `mapstructure:"tempo"`
	// Jaeger limits Jaeger's query APIs (/api/services, /api/traces?..., /api/v3/...).
	Jaeger RateLimitConfig `mapstructure:"jaeger"`
	// Zipkin limits Zipkin's read API under /zipkin.
	Zipkin RateLimitConfig `mapstructure:"zipkin"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RateLimitConfig is one contract's per-tenant limit.
type RateLimitConfig struct {
	// RequestsPerMinute a tenant may make; it may spend them at once, and
	// they come back at this rate. 0 means no limit.
	RequestsPerMinute int `mapstructure:"requests_per_minute"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// IndexConfig bounds the span index.
type IndexConfig struct {
	// MaxMemoryMiB is the most memory the index holds; the oldest traces are evicted to stay under it.
	MaxMemoryMiB int `mapstructure:"max_memory_mib"`
	// MaxTraces is the most traces held; 0 means no count limit.
	MaxTraces int `mapstructure:"max_traces"`
	// MaxSpansPerTrace caps one trace; later spans are dropped and the trace is marked truncated. 0 means no cap.
	MaxSpansPerTrace int `mapstructure:"max_spans_per_trace"`
	// Retention evicts traces first seen longer ago than this; 0 keeps them until evicted for memory or count.
	Retention time.Duration `mapstructure:"retention"`
	// CallIDAttribute is the span or resource attribute indexed for GET /v1/trace/call/{call_id}; "" turns that index off.
	CallIDAttribute string `mapstructure:"call_id_attribute"`
	// MaxAttributeValueBytes cuts each attribute value, key, span name and status message the index keeps to this many bytes; 0 means no limit.
	MaxAttributeValueBytes int `mapstructure:"max_attribute_value_bytes"`
	// MaxAttributesPerSpan is the most attributes kept per span, event, link and resource, and elements per array or map value; 0 means no limit.
	MaxAttributesPerSpan int `mapstructure:"max_attributes_per_span"`
	// MaxEventsPerSpan is the most events kept per span; 0 means no limit.
	MaxEventsPerSpan int `mapstructure:"max_events_per_span"`
	// MaxLinksPerSpan is the most links kept per span; 0 means no limit.
	MaxLinksPerSpan int `mapstructure:"max_links_per_span"`
	// Snapshot keeps the index across restarts.
	Snapshot SnapshotConfig `mapstructure:"snapshot"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SnapshotConfig writes the index to a file in Path at shutdown and reads
// it back at start.
type SnapshotConfig struct {
	// Path is the directory the snapshot is written to; "" turns snapshots off.
	Path string `mapstructure:"path"`
	// Timeout bounds writing the snapshot at shutdown, and reading it back
	// at start; past it, shutdown goes on without one.
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var (
	_ component.Config    = (*Config)(nil)
	_ confmap.Unmarshaler = (*Config)(nil)
)

// Unmarshal decodes the configuration and refuses unknown keys.
// confighttp.ServerConfig decodes itself ignoring unused keys, and squashed
// into this struct it would silently swallow a misspelt option of ours.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	known := map[string]bool{
		"index": true, "max_response_spans": true, "max_response_mib": true, "max_tree_depth": true, "max_lookup_memory_mib": true,
		"tenancy": true, "rate_limits": true, "search": true, "ui": true, "peers": true, "long_term_store": true,
	}
	for key := range configkeys.Of(reflect.TypeFor[confighttp.ServerConfig]()) {
		known[key] = true
	}
	if err := configkeys.Check(conf.ToStringMap(), known, "", "tracelookup extension's README"); err != nil {
		return err
	}
	type plain Config // no methods: decodes the fields without calling back here
	if err := conf.Unmarshal((*plain)(cfg)); err != nil {
		return err
	}
	// The client sections squash confighttp's client settings, which
	// ignore unknown keys: their keys are checked here.
	clientKeys := configkeys.Of(reflect.TypeFor[confighttp.ClientConfig]())
	for key, own := range map[string][]string{"peers": {"endpoints", "dns"}, "long_term_store": {"kind", "call_id_lookback", "tenant_header"}} {
		sub, err := conf.Sub(key)
		if err != nil {
			return err
		}
		known := map[string]bool{}
		for k := range clientKeys {
			known[k] = true
		}
		for _, k := range own {
			known[k] = true
		}
		if err := configkeys.Check(sub.ToStringMap(), known, key+"::", "tracelookup extension's README"); err != nil {
			return err
		}
	}
	// The sections again, strictly, so that their typos are reported too.
	for key, section := range map[string]any{"index": &cfg.Index, "tenancy": &cfg.Tenancy, "rate_limits": &cfg.RateLimits, "search": &cfg.Search, "ui": &cfg.UI, "peers::dns": &cfg.Peers.DNS} {
		sub, err := conf.Sub(key)
		if err != nil {
			return err
		}
		if err := sub.Unmarshal(section); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// Validate checks every option and names the one that is wrong.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.ServerConfig.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New(`"endpoint" must be set, for example "localhost:8088"`))
	}
	if cfg.Index.MaxMemoryMiB <= 0 {
		errs = append(errs, fmt.Errorf(`"index::max_memory_mib" must be positive, got %d`, cfg.Index.MaxMemoryMiB))
	}
	if cfg.Index.MaxTraces < 0 {
		errs = append(errs, fmt.Errorf(`"index::max_traces" must be 0 (no limit) or positive, got %d`, cfg.Index.MaxTraces))
	}
	if cfg.Index.MaxSpansPerTrace < 0 {
		errs = append(errs, fmt.Errorf(`"index::max_spans_per_trace" must be 0 (no cap) or positive, got %d`, cfg.Index.MaxSpansPerTrace))
	}
	if cfg.Index.Snapshot.Path != "" && cfg.Index.Snapshot.Timeout <= 0 {
		errs = append(errs, fmt.Errorf(`"index::snapshot::timeout" must be positive, got %s`, cfg.Index.Snapshot.Timeout))
	}
	if r := cfg.Index.Retention; r < 0 || (r > 0 && r < store.MinRetention) {
		errs = append(errs, fmt.Errorf(`"index::retention" must be 0 (no limit) or at least %s, got %s`, store.MinRetention, r))
	}
	if cfg.MaxResponseSpans <= 0 {
		errs = append(errs, fmt.Errorf(`"max_response_spans" must be positive, got %d`, cfg.MaxResponseSpans))
	}
	if cfg.MaxResponseMiB <= 0 {
		errs = append(errs, fmt.Errorf(`"max_response_mib" must be positive, got %d`, cfg.MaxResponseMiB))
	}
	for key, v := range map[string]int{
		"index::max_attribute_value_bytes": cfg.Index.MaxAttributeValueBytes,
		"index::max_attributes_per_span":   cfg.Index.MaxAttributesPerSpan,
		"index::max_events_per_span":       cfg.Index.MaxEventsPerSpan,
		"index::max_links_per_span":        cfg.Index.MaxLinksPerSpan,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf(`%q must be 0 (no limit) or positive, got %d`, key, v))
		}
	}
	if cfg.MaxTreeDepth <= 0 {
		errs = append(errs, fmt.Errorf(`"max_tree_depth" must be positive, got %d`, cfg.MaxTreeDepth))
	}
	errs = append(errs, cfg.Tenancy.validate(cfg.ServerConfig.Auth.HasValue())...)
	if p := cfg.Tenancy.MaxSharePercent; p > 0 && cfg.Index.MaxTraces > 0 && p*cfg.Index.MaxTraces < 100 {
		errs = append(errs, fmt.Errorf(`"tenancy::max_share_percent" (%d) of "index::max_traces" (%d) is less than one trace`, p, cfg.Index.MaxTraces))
	}
	for key, l := range map[string]RateLimitConfig{
		"rate_limits::native":     cfg.RateLimits.Native,
		"rate_limits::apm_trace":  cfg.RateLimits.APMTrace,
		"rate_limits::call_trace": cfg.RateLimits.CallTrace,
		"rate_limits::tempo":      cfg.RateLimits.Tempo,
		"rate_limits::jaeger":     cfg.RateLimits.Jaeger,
		"rate_limits::zipkin":     cfg.RateLimits.Zipkin,
	} {
		if l.RequestsPerMinute < 0 {
			errs = append(errs, fmt.Errorf(`"%s::requests_per_minute" must be 0 (no limit) or positive, got %d`, key, l.RequestsPerMinute))
		}
	}
	if cfg.Search.MaxScannedTraces <= 0 {
		errs = append(errs, fmt.Errorf(`"search::max_scanned_traces" must be positive, got %d`, cfg.Search.MaxScannedTraces))
	}
	if cfg.Search.MaxScannedSpans <= 0 {
		errs = append(errs, fmt.Errorf(`"search::max_scanned_spans" must be positive, got %d`, cfg.Search.MaxScannedSpans))
	}
	if cfg.UI.Enabled {
		if p := cfg.UI.Path; !uiPathRE.MatchString(p) {
			errs = append(errs, fmt.Errorf(`"ui::path" must be a path that starts with "/" of letters, digits and - _ . /, got %q`, p))
		} else if b := ui.Base(p); b != "/" && apiPathTaken(b) {
			errs = append(errs, fmt.Errorf(`"ui::path" %q is under the API's routes; pick a path of its own, such as /ui/`, p))
		}
	}
	if cfg.Search.Timeout <= 0 {
		errs = append(errs, fmt.Errorf(`"search::timeout" must be positive, got %s`, cfg.Search.Timeout))
	}
	errs = append(errs, cfg.Peers.validate()...)
	errs = append(errs, cfg.LongTermStore.validate()...)
	if m := cfg.MaxLookupMemoryMiB; m < 0 || (m > 0 && m >= cfg.Index.MaxMemoryMiB) {
		errs = append(errs, fmt.Errorf(`"max_lookup_memory_mib" must be 0 (an eighth of "index::max_memory_mib") or positive and less than "index::max_memory_mib" (%d), got %d`, cfg.Index.MaxMemoryMiB, m))
	}
	return errors.Join(errs...)
}

func (p *PeersConfig) validate() []error {
	var errs []error
	for _, e := range p.Endpoints {
		if err := checkBaseURL(e); err != nil {
			errs = append(errs, fmt.Errorf(`"peers::endpoints" %q: %w`, e, err))
		}
	}
	if p.ClientConfig.Endpoint != "" {
		errs = append(errs, errors.New(`"peers::endpoint" is not used: list the peers in "peers::endpoints" or name them in "peers::dns"`))
	}
	if d := p.DNS; d.Name != "" {
		if d.Port < 1 || d.Port > 65535 {
			errs = append(errs, fmt.Errorf(`"peers::dns::port" must be a port number, got %d`, d.Port))
		}
		if d.Scheme != "http" && d.Scheme != "https" {
			errs = append(errs, fmt.Errorf(`"peers::dns::scheme" must be http or https, got %q`, d.Scheme))
		}
		if d.Interval < time.Second {
			errs = append(errs, fmt.Errorf(`"peers::dns::interval" must be at least 1s, got %s`, d.Interval))
		}
	}
	if p.enabled() && p.ClientConfig.Timeout <= 0 {
		errs = append(errs, fmt.Errorf(`"peers::timeout" must be positive, got %s`, p.ClientConfig.Timeout))
	}
	return errs
}

// enabled says whether any peer is configured.
func (p *PeersConfig) enabled() bool { return len(p.Endpoints) > 0 || p.DNS.Name != "" }

func (s *LongTermStoreConfig) validate() []error {
	switch s.Kind {
	case "":
		if s.ClientConfig.Endpoint != "" {
			return []error{errors.New(`"long_term_store::kind" must be set (tempo or jaeger) with "long_term_store::endpoint"`)}
		}
		return nil
	case remote.KindTempo, remote.KindJaeger:
	default:
		return []error{fmt.Errorf(`"long_term_store::kind" must be tempo or jaeger, got %q`, s.Kind)}
	}
	var errs []error
	if err := checkBaseURL(s.ClientConfig.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf(`"long_term_store::endpoint" %q: %w`, s.ClientConfig.Endpoint, err))
	}
	if s.ClientConfig.Timeout <= 0 {
		errs = append(errs, fmt.Errorf(`"long_term_store::timeout" must be positive, got %s`, s.ClientConfig.Timeout))
	}
	if s.CallIDLookback <= 0 {
		errs = append(errs, fmt.Errorf(`"long_term_store::call_id_lookback" must be positive, got %s`, s.CallIDLookback))
	}
	if s.TenantHeader != "" && !httpguts.ValidHeaderFieldName(s.TenantHeader) {
		errs = append(errs, fmt.Errorf(`"long_term_store::tenant_header" must be an HTTP header name, got %q`, s.TenantHeader))
	}
	return errs
}

// checkBaseURL accepts an http or https URL with a host and no query.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("it must start with http:// or https://")
	case u.Host == "":
		return errors.New("it names no host")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("it must not have a query or a fragment")
	}
	return nil
}

func (t *TenancyConfig) validate(authenticated bool) []error {
	var errs []error
	if !httpguts.ValidHeaderFieldName(t.Header) {
		errs = append(errs, fmt.Errorf(`"tenancy::header" must be an HTTP header name, got %q`, t.Header))
	}
	if !store.ValidTenant(t.DefaultTenant) {
		errs = append(errs, fmt.Errorf(`"tenancy::default_tenant" must be %s, got %q`, store.TenantRule, t.DefaultTenant))
	}
	if t.MaxTenants < 1 || t.MaxTenants > 65536 {
		errs = append(errs, fmt.Errorf(`"tenancy::max_tenants" must be between 1 and 65536, got %d`, t.MaxTenants))
	}
	if t.MaxSharePercent < 0 || t.MaxSharePercent > 100 {
		errs = append(errs, fmt.Errorf(`"tenancy::max_share_percent" must be between 0 (no share) and 100, got %d`, t.MaxSharePercent))
	}
	if t.AuthAttribute != "" && !authenticated {
		errs = append(errs, errors.New(`"tenancy::auth_attribute" needs "auth" set: it names an attribute of the authenticated client`))
	}
	if t.Permissions != nil && t.AuthAttribute == "" {
		errs = append(errs, errors.New(`"tenancy::permissions" needs "tenancy::auth_attribute": it maps that attribute's values to tenants`))
	}
	for subject, tenants := range t.Permissions {
		for _, tenant := range tenants {
			if tenant != api.AnyTenant && !store.ValidTenant(tenant) {
				errs = append(errs, fmt.Errorf(`"tenancy::permissions::%s" names %q, which is not a valid tenant id`, subject, tenant))
			}
		}
	}
	return errs
}

// lookupMemoryBytes is the lookup memory budget: max_lookup_memory_mib, or an
// eighth of the index's memory.
func (cfg *Config) lookupMemoryBytes() int64 {
	if cfg.MaxLookupMemoryMiB > 0 {
		return int64(cfg.MaxLookupMemoryMiB) << 20
	}
	return int64(cfg.Index.MaxMemoryMiB) << 20 / 8
}

// storeBytes is what the store may hold: the index's memory less the lookups'.
func (cfg *Config) storeBytes() int64 {
	return int64(cfg.Index.MaxMemoryMiB)<<20 - cfg.lookupMemoryBytes()
}

// uiPathRE is a path that needs no escaping in a URL or an HTML attribute.
var uiPathRE = regexp.MustCompile(`^/[A-Za-z0-9_./-]*$`)

// apiPathTaken says whether the viewer's base path would shadow an API route.
func apiPathTaken(base string) bool {
	for _, prefix := range []string{"/api/", "/v1/", "/tempo/", "/jaeger/", "/zipkin/"} {
		if strings.HasPrefix(base, prefix) || strings.HasPrefix(prefix, base) {
			return true
		}
	}
	return false
}

// uiPath is where the viewer is served, "" when it is off.
func (cfg *Config) uiPath() string {
	if !cfg.UI.Enabled {
		return ""
	}
	return cfg.UI.Path
}
