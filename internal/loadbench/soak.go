// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// sink is the pipeline's far end: it counts the spans of every trace the
// collector's otlp exporter delivered.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64
	mu    sync.Mutex
	by    map[[16]byte]uint32
}

func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	s.mu.Lock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s.by[[16]byte(sp.TraceID())]++
			}
		}
	}
	s.mu.Unlock()
	s.spans.Add(int64(td.SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

// check compares the traces whose export was acknowledged (by their first
// trace number, soakTracesPerRequest each) with what the sink received:
// the spans missing and the spans delivered more than once.
func (s *sink) check(acked []uint64) (missing, duplicated int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, first := range acked {
		for k := range uint64(soakTracesPerRequest) {
			got := int64(s.by[[16]byte(spangen.TraceID(first+k))])
			missing += max(0, soakSpansPerTrace-got)
			duplicated += max(0, got-soakSpansPerTrace)
		}
	}
	return missing, duplicated
}

func startSink() (*sink, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := grpc.NewServer()
	s := &sink{by: map[[16]byte]uint32{}}
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(ln) }()
	soakSinkPort = ln.Addr().(*net.TCPAddr).Port
	return s, srv.Stop, nil
}

// soakLoad sends fresh 10-trace x 10-span requests, each trace new, and
// records the requests whose export the collector acknowledged.
type soakLoad struct {
	port   int
	next   atomic.Uint64 // the next trace number
	acked  atomic.Int64  // spans
	failed atomic.Int64  // spans of exports that failed or were refused
	mu     sync.Mutex
	firsts []uint64 // the first trace number of each acknowledged request
}

const (
	soakTracesPerRequest = 10
	soakSpansPerTrace    = 10
	soakSpansPerRequest  = soakTracesPerRequest * soakSpansPerTrace
)

// lastAcked is the newest trace number whose export was acknowledged.
var lastAcked atomic.Uint64

// run sends from `senders` connections until ctx is done, perSecond spans
// a second in all (0: as fast as the collector takes them).
func (l *soakLoad) run(ctx context.Context, senders int, perSecond float64) {
	var (
		issued atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range senders {
		wg.Go(func() {
			conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", l.port),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
			if err != nil {
				return
			}
			defer conn.Close()
			var (
				m     ptrace.ProtoMarshaler
				reply []byte
			)
			for ctx.Err() == nil {
				if perSecond > 0 {
					i := issued.Add(1) - 1
					due := start.Add(time.Duration(float64(i*soakSpansPerRequest) / perSecond * float64(time.Second)))
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(due)):
					}
				}
				first := l.next.Add(soakTracesPerRequest) - soakTracesPerRequest
				req, err := m.MarshalTraces(spangen.Batch(first, soakTracesPerRequest, 0, soakSpansPerTrace))
				if err != nil {
					return
				}
				// The export itself is not cut off by ctx: an export begun
				// is answered, so acknowledged spans are counted exactly.
				callCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = conn.Invoke(callCtx, exportMethod, req, &reply)
				cancel()
				if err != nil {
					l.failed.Add(soakSpansPerRequest)
					continue
				}
				l.acked.Add(soakSpansPerRequest)
				l.mu.Lock()
				l.firsts = append(l.firsts, first)
				l.mu.Unlock()
				lastAcked.Store(first + soakTracesPerRequest - 1)
			}
		})
	}
	wg.Wait()
}

// soakQueries looks up a recently acknowledged trace 20 times a second and
// runs a search every 500 ms until stop closes, counting the answers that
// were not 200.
func soakQueries(c *collector, stop <-chan struct{}, lookups, failures, evicted *atomic.Int64) {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	services := []string{"frontend", "checkout", "payment", "inventory"}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/traces/%s", c.apiPort, spangen.TraceID(lastAcked.Load()-uint64(i%1000)))
		if i%10 == 0 {
			url = fmt.Sprintf("http://127.0.0.1:%d/api/v1/traces?service=%s&limit=20", c.apiPort, services[(i/10)%len(services)])
		}
		lookups.Add(1)
		resp, err := client.Get(url)
		if err != nil {
			failures.Add(1)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// A lookup of a trace the index evicted is a 404, not a failure.
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound:
			evicted.Add(1)
		default:
			failures.Add(1)
		}
	}
}

// goroutines is the collector's goroutine count, from pprof.
func (c *collector) goroutines() (int, error) {
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", c.pprofPort))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(body), "\n")
	n, ok := strings.CutPrefix(line, "goroutine profile: total ")
	if !ok {
		return 0, errors.New("no goroutine total")
	}
	return strconv.Atoi(strings.TrimSpace(n))
}

// waitDelivered waits until the sink has every span the collector
// acknowledged (or 30 s pass) and returns the sink's count.
func waitDelivered(s *sink, acked int64) int64 {
	deadline := time.Now().Add(30 * time.Second)
	for s.spans.Load() < acked && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return s.spans.Load()
}

// soakPhase: the ingest capacity of the pipeline (tracelookup receiver ->
// otlp exporter -> a sink here), then o.soakDuration at 80% of it with
// lookups and searches running, sampled every o.soakSample; then a
// shutdown in the middle of the same load.
func soakPhase(o options, dir string, t *table) error {
	s, stopSink, err := startSink()
	if err != nil {
		return err
	}
	defer stopSink()
	c, err := startCollector(o.collector, dir, soakPipeline, o.boundMiB)
	if err != nil {
		return err
	}
	defer func() {
		if c != nil {
			c.stop()
		}
	}()
	l := &soakLoad{port: c.grpcPort}
	l.next.Store(1)

	// Capacity: as fast as it takes them, for 20 s.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	start := time.Now()
	l.run(ctx, o.senders, 0)
	cancel()
	capacity := float64(l.acked.Load()) / time.Since(start).Seconds()
	rate := 0.8 * capacity
	t.row("soak: ingest capacity, tracelookup receiver -> otlp exporter (spans/s)", fmt.Sprintf("%.0f (%d senders, 20 s)", capacity, o.senders))
	fmt.Fprintf(os.Stderr, "soak: capacity %.0f spans/s; %v at %.0f spans/s with lookups and searches, 20/s\n", capacity, o.soakDuration, rate)
	waitDelivered(s, l.acked.Load())

	// The soak.
	stop := make(chan struct{})
	var queries, queryFailures, queryEvicted atomic.Int64
	var bg sync.WaitGroup
	bg.Go(func() { soakQueries(c, stop, &queries, &queryFailures, &queryEvicted) })
	failedBefore := l.failed.Load()
	ctx, cancel = context.WithTimeout(context.Background(), o.soakDuration)
	sent := make(chan struct{})
	ackedBefore, deliveredBefore := l.acked.Load(), s.spans.Load()
	go func() { l.run(ctx, o.senders, rate); close(sent) }()
	fmt.Fprintf(os.Stderr, "%8s %10s %11s %10s %12s %12s\n", "elapsed", "RSS MiB", "goroutines", "index MiB", "acked", "delivered")
	var rss, gor, idx []float64
	soakStart := time.Now()
	sample := func() {
		r, err1 := c.rss()
		g, err2 := c.goroutines()
		ib, err3 := c.metric("otelcol_tracelookup_index_bytes")
		if err := errors.Join(err1, err2, err3); err != nil {
			fmt.Fprintf(os.Stderr, "a sample failed: %v\n", err)
			return
		}
		rss, gor, idx = append(rss, mibOf(r)), append(gor, float64(g)), append(idx, ib/mib)
		fmt.Fprintf(os.Stderr, "%8s %10.1f %11d %10.1f %12d %12d\n", time.Since(soakStart).Round(time.Second), mibOf(r), g, ib/mib, l.acked.Load()-ackedBefore, s.spans.Load()-deliveredBefore)
	}
	tick := time.NewTicker(o.soakSample)
loop:
	for {
		select {
		case <-sent:
			break loop
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	cancel()
	close(stop)
	bg.Wait()
	sample()
	acked := l.acked.Load()
	waitDelivered(s, acked)
	soaked := acked - ackedBefore
	t.row("soak: duration, rate (spans/s), spans acknowledged", fmt.Sprintf("%v, target %.0f (80%% of capacity), %d acknowledged (%.0f/s), %d refused", o.soakDuration, rate, soaked, float64(soaked)/time.Since(soakStart).Seconds(), l.failed.Load()-failedBefore))
	t.row("soak: RSS every "+o.soakSample.String()+" (MiB)", series(rss))
	t.row("soak: goroutines", series(gor))
	t.row("soak: index bytes (MiB)", series(idx))
	missing, duplicated := s.check(l.firsts)
	t.row("soak: acknowledged spans missing / delivered twice at the exporter's end", fmt.Sprintf("%d / %d (of %d acknowledged, by trace)", missing, duplicated, acked))
	t.row("soak: lookups and searches (20/s), failed", fmt.Sprintf("%d, %d failed, %d lookups of a trace the index had evicted (404)", queries.Load(), queryFailures.Load(), queryEvicted.Load()))
	// Flat: once the index has filled its bound (the first sample at 95%
	// of its largest), RSS within 15% and goroutines within 20 of that
	// sample, to the end of the load.
	var leak error
	if len(idx) > 1 {
		full := slices.IndexFunc(idx, func(b float64) bool { return b >= 0.95*slices.Max(idx) })
		last := len(rss) - 1 // the sample after the load stopped: its goroutines are fewer
		if full < last && (slices.Max(rss[full:]) > 1.15*rss[full] || slices.Max(gor[full:last]) > gor[full]+20) {
			leak = fmt.Errorf("soak failed: RSS %s, goroutines %s are not flat", series(rss), series(gor))
		}
	}

	// Shutdown in the middle of the load: SIGTERM after 5 s at the same rate.
	ctx, cancel = context.WithCancel(context.Background())
	ackedBefore = l.acked.Load()
	done := make(chan struct{})
	go func() { l.run(ctx, o.senders, rate); close(done) }()
	time.Sleep(5 * time.Second)
	stopStart := time.Now()
	c.stop()
	stopTook := time.Since(stopStart)
	cancel()
	<-done
	out := c.out.String()
	exitCode := c.cmd.ProcessState.ExitCode()
	c = nil
	acked = l.acked.Load()
	waitDelivered(s, acked)
	panicked := strings.Contains(out, "panic:")
	lostAll, dupAll := s.check(l.firsts)
	t.row("soak: shutdown under load (SIGTERM after 5 s)", fmt.Sprintf("exit code %d after %v, panic: %v, spans acknowledged from the restart of the load until exit %d; over the whole run, acknowledged spans missing %d, delivered twice %d", exitCode, stopTook.Round(time.Millisecond), panicked, acked-ackedBefore, lostAll, dupAll))
	if panicked || lostAll != 0 || dupAll != 0 || exitCode != 0 || queryFailures.Load() != 0 {
		return fmt.Errorf("soak failed: exit code %d, panic %v, %d acknowledged spans missing, %d delivered twice, %d queries failed:\n%s", exitCode, panicked, lostAll, dupAll, queryFailures.Load(), out)
	}
	return leak
}

// series prints samples and their spread.
func series(v []float64) string {
	if len(v) == 0 {
		return "none"
	}
	lo, hi := v[0], v[0]
	parts := make([]string, len(v))
	for i, x := range v {
		lo, hi = min(lo, x), max(hi, x)
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return fmt.Sprintf("%s (min %.0f, max %.0f)", strings.Join(parts, " "), lo, hi)
}
