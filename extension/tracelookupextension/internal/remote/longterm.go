// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package remote // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Kinds of long-term store.
const (
	KindTempo  = "tempo"
	KindJaeger = "jaeger"
)

// StoreConfig configures a LongTermStore.
type StoreConfig struct {
	// Kind is KindTempo or KindJaeger.
	Kind string
	// Endpoint is the store's query API base URL (Tempo's query frontend,
	// Jaeger's query service HTTP port).
	Endpoint string
	// Timeout bounds one lookup in the store, its searches included.
	Timeout time.Duration
	// CallIDAttribute is the attribute call-id lookups search for.
	CallIDAttribute string
	// CallIDLookback is how far back a call-id search in Jaeger looks
	// (Jaeger's search needs a time range and a service).
	CallIDLookback time.Duration
	// MaxResponseBytes bounds one answer of the store.
	MaxResponseBytes int64
	// TenantHeader carries the tenant to the store ("": the kind's own,
	// DefaultTenantHeader).
	TenantHeader string
}

// DefaultTenantHeader is the header each kind of store reads its tenant
// from: Tempo's X-Scope-OrgID, and Jaeger's multi_tenancy default.
func DefaultTenantHeader(kind string) string {
	if kind == KindJaeger {
		return "x-tenant"
	}
	return "X-Scope-OrgID"
}

// LongTermStore reads traces back from Tempo or Jaeger.
type LongTermStore struct {
	cfg     StoreConfig
	base    string
	client  *http.Client
	observe Observer
	now     func() time.Time
}

// maxJaegerServices bounds the services a call-id search in Jaeger asks.
const maxJaegerServices = 64

// NewLongTermStore makes the store's client; observe may be nil.
func NewLongTermStore(cfg StoreConfig, client *http.Client, observe Observer) *LongTermStore {
	if observe == nil {
		observe = func(string, string, string, time.Duration) {}
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	if cfg.TenantHeader == "" {
		cfg.TenantHeader = DefaultTenantHeader(cfg.Kind)
	}
	return &LongTermStore{cfg: cfg, base: strings.TrimSuffix(cfg.Endpoint, "/"), client: client, observe: observe, now: time.Now}
}

// Trace returns tenant's trace id from the store; false when the store
// does not hold it. Errors wrap ErrUnavailable or ErrTimeout.
func (s *LongTermStore) Trace(ctx context.Context, tenant string, id [16]byte) (td ptrace.Traces, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	defer func() { s.observe("long_term_store", s.base, outcomeOf(found, err), time.Since(start)) }()
	hexID := hex.EncodeToString(id[:])
	if s.cfg.Kind == KindJaeger {
		return s.jaegerTraces(ctx, tenant, "/api/v3/traces/"+hexID, nil)
	}
	return getTempoTrace(ctx, s.client, s.base+"/api/v2/traces/"+hexID, s.header(tenant), s.cfg.MaxResponseBytes)
}

// CallTrace finds tenant's trace whose spans carry callID in the call-id
// attribute, and returns it; false when the store holds none.
func (s *LongTermStore) CallTrace(ctx context.Context, tenant, callID string) (td ptrace.Traces, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	defer func() { s.observe("long_term_store", s.base, outcomeOf(found, err), time.Since(start)) }()
	if s.cfg.Kind == KindJaeger {
		return s.jaegerCallTrace(ctx, tenant, callID)
	}
	// Tempo: a TraceQL search for the attribute, on the span or its
	// resource, then the trace it names.
	q := "{ ." + traceQLName(s.cfg.CallIDAttribute) + " = " + strconv.Quote(callID) + " }"
	// Without start and end Tempo searches its ingesters' recent data only.
	now := s.now()
	window := "&start=" + strconv.FormatInt(now.Add(-s.cfg.CallIDLookback).Unix(), 10) + "&end=" + strconv.FormatInt(now.Unix()+1, 10)
	body, err := get(ctx, s.client, s.base+"/api/search?limit=1"+window+"&q="+url.QueryEscape(q), s.header(tenant), s.cfg.MaxResponseBytes)
	if err != nil || body == nil {
		return ptrace.Traces{}, false, err
	}
	var res struct {
		Traces []struct {
			TraceID string `json:"traceID"`
		} `json:"traces"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%w: the search answer could not be read: %w", ErrUnavailable, err)
	}
	if len(res.Traces) == 0 {
		return ptrace.Traces{}, false, nil
	}
	id := res.Traces[0].TraceID
	if len(id) > 32 || !isHex(id) {
		return ptrace.Traces{}, false, fmt.Errorf("%w: the search answer names trace %q", ErrUnavailable, id)
	}
	id = strings.Repeat("0", 32-len(id)) + id // Tempo trims leading zeros
	return getTempoTrace(ctx, s.client, s.base+"/api/v2/traces/"+id, s.header(tenant), s.cfg.MaxResponseBytes)
}

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

// traceQLName writes an attribute name for TraceQL, quoted unless plain.
func traceQLName(name string) string {
	if plainName.MatchString(name) {
		return name
	}
	return strconv.Quote(name)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return s != ""
}

// header carries the tenant as the store's multi-tenancy reads it.
func (s *LongTermStore) header(tenant string) http.Header {
	h := http.Header{}
	if tenant != "" {
		h.Set(s.cfg.TenantHeader, tenant)
	}
	if s.cfg.Kind == KindJaeger {
		h.Set("Accept", "application/json")
	}
	return h
}

// jaegerTraces reads an api_v3 answer: {"result": TracesData}.
func (s *LongTermStore) jaegerTraces(ctx context.Context, tenant, path string, query url.Values) (ptrace.Traces, bool, error) {
	u := s.base + path
	if query != nil {
		u += "?" + query.Encode()
	}
	body, err := get(ctx, s.client, u, s.header(tenant), s.cfg.MaxResponseBytes)
	if err != nil || body == nil {
		return ptrace.Traces{}, false, err
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%w: the answer could not be read: %w", ErrUnavailable, err)
	}
	if len(bytes.TrimSpace(env.Result)) == 0 || string(env.Result) == "null" {
		return ptrace.Traces{}, false, nil
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(env.Result)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%w: the trace could not be read: %w", ErrUnavailable, err)
	}
	return td, td.SpanCount() > 0, nil
}

// jaegerCallTrace searches Jaeger for the call id: its search needs a
// service, so each service it lists is asked (in parallel), over the
// lookback window; the first trace found is the answer.
func (s *LongTermStore) jaegerCallTrace(ctx context.Context, tenant, callID string) (ptrace.Traces, bool, error) {
	body, err := get(ctx, s.client, s.base+"/api/v3/services", s.header(tenant), s.cfg.MaxResponseBytes)
	if err != nil || body == nil {
		return ptrace.Traces{}, false, err
	}
	var svc struct {
		Services []string `json:"services"`
	}
	if err := json.Unmarshal(body, &svc); err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%w: the services answer could not be read: %w", ErrUnavailable, err)
	}
	services := svc.Services
	if len(services) > maxJaegerServices {
		services = services[:maxJaegerServices]
	}
	attrs, _ := json.Marshal(map[string]string{s.cfg.CallIDAttribute: callID})
	now := s.now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		found ptrace.Traces
		ok    bool
		first error
		wg    sync.WaitGroup
		limit = make(chan struct{}, 8)
	)
	for _, service := range services {
		wg.Go(func() {
			limit <- struct{}{}
			defer func() { <-limit }()
			if ctx.Err() != nil {
				return
			}
			q := url.Values{
				"query.service_name":   {service},
				"query.attributes":     {string(attrs)},
				"query.start_time_min": {now.Add(-s.cfg.CallIDLookback).UTC().Format(time.RFC3339Nano)},
				"query.start_time_max": {now.UTC().Format(time.RFC3339Nano)},
				"query.search_depth":   {"1"},
			}
			td, f, err := s.jaegerTraces(ctx, tenant, "/api/v3/traces", q)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case f && !ok:
				found, ok = td, true
				cancel()
			case err != nil && !ok && first == nil:
				first = err
			}
		})
	}
	wg.Wait()
	if ok {
		return found, true, nil
	}
	return ptrace.Traces{}, false, first
}
