// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package remote asks what the index does not hold: the other replicas
// of the collector (peers), in parallel and within a deadline, and a
// long-term store (Tempo or Jaeger) behind them. Peers are asked in
// Tempo's API for traces, as the long-term store is, and in the native
// search API, carrying the search as JSON, for searches.
package remote // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
)

// HopHeader marks a request one replica sends another: it is answered
// from the replica's own index, and never fanned out again, so that two
// replicas that list each other ask each other once.
const HopHeader = "X-Tracelookup-Hop"

// Outcomes of one request to a peer or to the long-term store, for self-telemetry.
const (
	OutcomeFound    = "found"
	OutcomeNotFound = "not_found"
	OutcomeError    = "error"
	OutcomeTimeout  = "timeout"
	// OutcomeCancelled is a request its lookup no longer needed (another
	// form of the id was found first), or whose client went away.
	OutcomeCancelled = "cancelled"
)

// Observer is told the outcome and latency of every request to a peer
// (target "peer", with its endpoint) or the long-term store (target
// "long_term_store").
type Observer func(target, endpoint, outcome string, latency time.Duration)

// Resolver finds a DNS name's addresses; net.DefaultResolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// PeersConfig configures Peers.
type PeersConfig struct {
	// Endpoints are the peers' base URLs (http://10.0.0.2:8088).
	Endpoints []string
	// DNSName, when set, is re-resolved every DNSInterval; each of its
	// addresses, at DNSPort, is a peer (as a Kubernetes headless Service
	// lists the pods behind it). Scheme is the peers' URL scheme.
	DNSName     string
	DNSPort     int
	DNSInterval time.Duration
	Scheme      string
	// Timeout is the deadline of one fan-out: a peer that has not answered
	// by then is left out and the answer flagged partial.
	Timeout time.Duration
	// TenantHeader carries the tenant the request reads.
	TenantHeader string
	// MaxResponseBytes bounds what one peer's answer may take.
	MaxResponseBytes int64
}

// Peers fans requests out to the other replicas.
type Peers struct {
	cfg      PeersConfig
	client   *http.Client
	resolver Resolver
	self     func(ip net.IP, port int) bool
	observe  Observer
	logger   *zap.Logger

	mu      sync.RWMutex
	current []string // base URLs, sorted

	stop chan struct{}
	done chan struct{}
}

// NewPeers makes the fan-out. self says whether an address and port are
// this replica's own (it is skipped); observe may be nil.
func NewPeers(cfg PeersConfig, client *http.Client, resolver Resolver, self func(net.IP, int) bool, observe Observer, logger *zap.Logger) *Peers {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if observe == nil {
		observe = func(string, string, string, time.Duration) {}
	}
	if cfg.Scheme == "" {
		cfg.Scheme = "http"
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	return &Peers{cfg: cfg, client: client, resolver: resolver, self: self, observe: observe, logger: logger}
}

// Start resolves the peers once, then keeps them current in the
// background until Shutdown.
func (p *Peers) Start(ctx context.Context) {
	p.refresh(ctx)
	if p.cfg.DNSName == "" {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.cfg.DNSInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.Background(), max(p.cfg.DNSInterval/2, time.Second))
				p.refresh(rctx)
				cancel()
			}
		}
	}()
}

// Shutdown stops the DNS refresh.
func (p *Peers) Shutdown() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}

// refresh recomputes the peers: the static endpoints and the DNS name's
// addresses, less this replica's own. A failed DNS lookup keeps the
// addresses it gave before: a DNS outage must not hide every peer.
func (p *Peers) refresh(ctx context.Context) {
	var urls []string
	for _, e := range p.cfg.Endpoints {
		if !p.isSelfURL(ctx, e) {
			urls = append(urls, e)
		}
	}
	if p.cfg.DNSName != "" {
		addrs, err := p.resolver.LookupIPAddr(ctx, p.cfg.DNSName)
		if err != nil {
			p.logger.Warn("Peers could not be resolved; the last known ones are kept", zap.String("dns_name", p.cfg.DNSName), zap.Error(err))
			p.mu.RLock()
			for _, u := range p.current {
				if !slices.Contains(urls, u) && !slices.Contains(p.cfg.Endpoints, u) {
					urls = append(urls, u)
				}
			}
			p.mu.RUnlock()
		}
		for _, a := range addrs {
			if p.self != nil && p.self(a.IP, p.cfg.DNSPort) {
				continue
			}
			u := p.cfg.Scheme + "://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(p.cfg.DNSPort))
			if !slices.Contains(urls, u) {
				urls = append(urls, u)
			}
		}
	}
	slices.Sort(urls)
	p.mu.Lock()
	changed := !slices.Equal(urls, p.current)
	p.current = urls
	p.mu.Unlock()
	if changed {
		p.logger.Info("Peers", zap.Strings("endpoints", urls))
	}
}

// isSelfURL says whether a static endpoint names this replica.
func (p *Peers) isSelfURL(ctx context.Context, endpoint string) bool {
	if p.self == nil {
		return false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return false
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return p.self(ip, port)
	}
	addrs, err := p.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p.self(a.IP, port) {
			return true
		}
	}
	return false
}

// Endpoints are the peers known now.
func (p *Peers) Endpoints() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.current
}

// fanOut runs ask on every peer in parallel within the deadline, and
// returns the answers of those that found something, and the peers that
// failed (erred or missed the deadline).
func fanOut[T any](ctx context.Context, p *Peers, ask func(ctx context.Context, base string) (T, bool, error)) ([]T, []string) {
	peers := p.Endpoints()
	if len(peers) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	type answer struct {
		v     T
		found bool
		err   error
	}
	answers := make([]answer, len(peers))
	var wg sync.WaitGroup
	for i, base := range peers {
		wg.Go(func() {
			start := time.Now()
			v, found, err := ask(ctx, base)
			answers[i] = answer{v, found, err}
			p.observe("peer", base, outcomeOf(found, err), time.Since(start))
		})
	}
	wg.Wait()
	var out []T
	var failed []string
	for i, a := range answers {
		switch {
		case a.err != nil:
			failed = append(failed, peers[i])
			if !errors.Is(a.err, context.Canceled) { // the lookup's own doing
				p.logger.Debug("A peer did not answer", zap.String("peer", peers[i]), zap.Error(a.err))
			}
		case a.found:
			out = append(out, a.v)
		}
	}
	return out, failed
}

func outcomeOf(found bool, err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return OutcomeCancelled
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case err != nil:
		return OutcomeError
	case found:
		return OutcomeFound
	}
	return OutcomeNotFound
}

// Trace asks every peer for tenant's trace id, written as the client
// wrote it (16 or 32 hex digits), in Tempo's API.
func (p *Peers) Trace(ctx context.Context, tenant, id string) ([]ptrace.Traces, []string) {
	return fanOut(ctx, p, func(ctx context.Context, base string) (ptrace.Traces, bool, error) {
		return getTempoTrace(ctx, p.client, base+"/api/v2/traces/"+id, p.header(tenant), p.cfg.MaxResponseBytes)
	})
}

// Search asks every peer for tenant's traces that match q, in the native
// search API; it returns each peer's summaries, and whether any peer's
// answer was partial.
func (p *Peers) Search(ctx context.Context, tenant string, q search.Query) ([][]search.Summary, bool, []string) {
	body, err := search.MarshalQuery(q)
	if err != nil {
		return nil, true, p.Endpoints()
	}
	partial := false
	var mu sync.Mutex
	out, failed := fanOut(ctx, p, func(ctx context.Context, base string) ([]search.Summary, bool, error) {
		sums, part, err := getSummaries(ctx, p.client, base+"/api/v1/traces?query="+url.QueryEscape(string(body)), p.header(tenant), p.cfg.MaxResponseBytes)
		if part {
			mu.Lock()
			partial = true
			mu.Unlock()
		}
		return sums, len(sums) > 0, err
	})
	return out, partial, failed
}

func (p *Peers) header(tenant string) http.Header {
	h := http.Header{}
	h.Set(HopHeader, "1")
	if p.cfg.TenantHeader != "" && tenant != "" {
		h.Set(p.cfg.TenantHeader, tenant)
	}
	return h
}

// LocalAddresses is the self check of a replica listening on port: an
// address of one of its network interfaces (or a loopback address), at port.
func LocalAddresses(port int) (func(net.IP, int) bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing the network interfaces: %w", err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return func(ip net.IP, p int) bool {
		if p != port {
			return false
		}
		if ip.IsLoopback() {
			return true
		}
		return slices.ContainsFunc(ips, ip.Equal)
	}, nil
}
