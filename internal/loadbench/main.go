// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Command loadbench measures the built collector under a bounded load on
// loopback and prints one table: ingest through the tracelookup receiver
// against the plain otlp receiver in the same run, the resident memory the
// index adds per stored span against the otlp collector's under the same
// load, lookup latency with 1M spans stored at rest and while ingest runs,
// and the memory bound at ten times max_memory_mib. Every load has a fixed
// count and a deadline; every process it starts, it stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

type options struct {
	collector     string
	ingestSpans   int
	rounds        int
	senders       int
	storedSpans   int
	lookups       int
	lookupWorkers int
	boundMiB      int
	boundFactor   int
	phaseTimeout  time.Duration
	profileDir    string
	phases        string
	memStats      bool
	// lookupIngestRate is the ingest rate during lookups when the ingest phase does not run to measure it.
	lookupIngestRate float64
	// soakDuration is how long the soak runs, soakSample how often it samples.
	soakDuration, soakSample time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.collector, "collector", "bin/otelcol-tracelookup", "the built collector")
	flag.IntVar(&o.ingestSpans, "ingest-spans", 1_000_000, "spans sent per ingest measurement")
	flag.IntVar(&o.rounds, "rounds", 2, "ingest measurements per receiver, in turn: otlp, tracelookup, tracelookup with search off")
	flag.IntVar(&o.senders, "senders", 4, "concurrent gRPC senders")
	flag.IntVar(&o.storedSpans, "stored-spans", 1_000_000, "spans stored in the memory (10-span traces) and lookup (100-span traces) measurements")
	flag.IntVar(&o.lookups, "lookups", 5000, "trace lookups sent")
	flag.IntVar(&o.lookupWorkers, "lookup-workers", 2, "concurrent lookup clients in the second lookup measurement (the first uses one)")
	flag.IntVar(&o.boundMiB, "bound-mib", 256, "max_memory_mib for the memory-bound measurement")
	flag.IntVar(&o.boundFactor, "bound-factor", 10, "OTLP bytes sent in the bound measurement, as a multiple of bound-mib")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 3*time.Minute, "the most one load phase may take")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "if set, save a CPU profile of each ingest measurement (2s), and an execution trace of the lookups under ingest (2s), in this directory")
	flag.Float64Var(&o.lookupIngestRate, "lookup-ingest-rate", 150000, "spans/s sent during the lookup measurement when the ingest phase does not run (it uses half the measured saturation rate)")
	flag.BoolVar(&o.memStats, "memstats", false, "print each bound collector's Go memory statistics to stderr after the load")
	flag.StringVar(&o.phases, "phases", "ingest,memory,lookup,bound", "the measurements to run, comma-separated; soak (make soak) runs alone")
	flag.DurationVar(&o.soakDuration, "soak-duration", 10*time.Minute, "how long the soak runs at 80% of the measured capacity")
	flag.DurationVar(&o.soakSample, "soak-sample", 30*time.Second, "how often the soak reports RSS, goroutines and index bytes")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// rawCodec sends pre-encoded protobuf as it is, so the sender spends no CPU
// marshalling while it competes with the collector for the same cores.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("rawCodec: %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = data.Materialize()
		return nil
	}
	return fmt.Errorf("rawCodec: %T", v)
}

func (rawCodec) Name() string { return "proto" }

var _ encoding.CodecV2 = rawCodec{}

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// requests pre-encodes export requests of spangen batches. Each request holds
// tracesPer traces with spansPer spans each, spans [part*spansPer, ...).
func requests(firstTrace uint64, count, tracesPer, spansPer, parts int) ([][]byte, int) {
	var m ptrace.ProtoMarshaler
	out := make([][]byte, 0, count*parts)
	bytes := 0
	for part := 0; part < parts; part++ {
		for i := 0; i < count; i++ {
			td := spangen.Batch(firstTrace+uint64(i*tracesPer), tracesPer, part*spansPer, spansPer)
			b, err := m.MarshalTraces(td)
			if err != nil {
				panic(err)
			}
			bytes += len(b)
			out = append(out, b)
		}
	}
	return out, bytes
}

// send exports every request once over `senders` connections and returns how
// long it took from the first send to the last reply.
func send(ctx context.Context, port, senders int, reqs [][]byte) (time.Duration, error) {
	conns := make([]*grpc.ClientConn, senders)
	for i := range conns {
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		conns[i] = conn
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		sendErr error
	)
	start := time.Now()
	for _, conn := range conns {
		wg.Go(func() {
			var reply []byte
			for i := next.Add(1) - 1; i < int64(len(reqs)); i = next.Add(1) - 1 {
				if err := conn.Invoke(ctx, exportMethod, reqs[i], &reply); err != nil {
					errOnce.Do(func() { sendErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), sendErr
}

type ingestResult struct {
	pipeline    pipeline
	spansPS     float64
	senderShare float64 // of the CPU the sender and the collector used
	// cpuPerSpan is the collector's CPU time per span accepted: less
	// sensitive than spans/s to what else the machine runs.
	cpuPerSpan time.Duration
}

// measureIngest sends ingestSpans spans to a fresh collector with pipeline p
// and returns spans/s by the collector's own accepted-spans count.
func measureIngest(o options, dir string, p pipeline, reqs [][]byte, spans int) (ingestResult, error) {
	c, err := startCollector(o.collector, dir, p, 4096)
	if err != nil {
		return ingestResult{}, err
	}
	defer c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), o.phaseTimeout)
	defer cancel()
	var profiled sync.WaitGroup
	if o.profileDir != "" {
		profiled.Go(func() {
			prof, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=2", c.pprofPort))
			if err == nil {
				err = os.WriteFile(filepath.Join(o.profileDir, fmt.Sprintf("ingest-%s-%d.pprof", p, time.Now().UnixNano())), prof, 0o600)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
			}
		})
	}
	cpu0, self0 := mustCPU(c), selfCPU()
	elapsed, err := send(ctx, c.grpcPort, o.senders, reqs)
	cpu1, self1 := mustCPU(c), selfCPU()
	profiled.Wait()
	if err != nil {
		return ingestResult{}, fmt.Errorf("%s ingest: %w", p, err)
	}
	accepted, err := c.metric("otelcol_receiver_accepted_spans")
	if err != nil {
		return ingestResult{}, err
	}
	if int(accepted) != spans {
		return ingestResult{}, fmt.Errorf("%s: the collector accepted %d spans, %d were sent", p, int(accepted), spans)
	}
	sender := float64(self1 - self0)
	return ingestResult{pipeline: p, spansPS: accepted / elapsed.Seconds(), senderShare: sender / (sender + float64(cpu1-cpu0)),
		cpuPerSpan: (cpu1 - cpu0) / time.Duration(accepted)}, nil
}

func mustCPU(c *collector) time.Duration {
	d, _ := c.cpuTime()
	return d
}

type lookupResult struct {
	p50, p99, max time.Duration
	perSecond     float64
}

// measureLookups fetches random 100-span traces with a fixed count and concurrency.
func measureLookups(o options, c *collector, traces, workers int) (lookupResult, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, o.lookups)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		getErr  error
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := next.Add(1) - 1; i < int64(o.lookups); i = next.Add(1) - 1 {
				id := spangen.TraceID(uint64(rng.IntN(traces)))
				url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/traces/%s", c.apiPort, id)
				t0 := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: %s", url, resp.Status)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					errOnce.Do(func() { getErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if getErr != nil {
		return lookupResult{}, getErr
	}
	total := time.Since(start)
	slices.Sort(lat)
	return lookupResult{
		p50:       lat[len(lat)/2],
		p99:       lat[len(lat)*99/100],
		max:       lat[len(lat)-1],
		perSecond: float64(len(lat)) / total.Seconds(),
	}, nil
}

// settle waits until the index stops changing: its accounted bytes are the
// same twice in a row.
func settle(c *collector) {
	prev := -1.0
	for i := 0; i < 40; i++ {
		time.Sleep(500 * time.Millisecond)
		b, err := c.metric("otelcol_tracelookup_index_bytes")
		if err != nil || (b == prev && i >= 2) {
			return
		}
		prev = b
	}
}

const mib = 1 << 20

func run(o options) error {
	if _, err := os.Stat(o.collector); err != nil {
		return fmt.Errorf("no collector at %s: run `make build` first: %w", o.collector, err)
	}
	dir, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t := &table{}
	phases := strings.Split(o.phases, ",")
	saturation := o.lookupIngestRate * 2
	if slices.Contains(phases, "ingest") {
		if saturation, err = ingestPhase(o, dir, t); err != nil {
			return err
		}
	}
	if slices.Contains(phases, "memory") {
		if err := memoryPhase(o, dir, t); err != nil {
			return err
		}
	}
	if slices.Contains(phases, "lookup") {
		if err := lookupPhase(o, dir, t, saturation/2); err != nil {
			return err
		}
	}
	if slices.Contains(phases, "bound") {
		if err := boundPhase(o, dir, t); err != nil {
			return err
		}
	}
	if slices.Contains(phases, "soak") {
		if err := soakPhase(o, dir, t); err != nil {
			_ = t.print()
			return err
		}
	}
	return t.print()
}

type table struct{ rows [][2]string }

func (t *table) row(k, v string) { t.rows = append(t.rows, [2]string{k, v}) }

func (t *table) print() error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nmeasure\tvalue\n-------\t-----\n")
	for _, r := range t.rows {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	fmt.Fprintf(w, "machine\t%d cores (GOMAXPROCS), %s\n", runtime.NumCPU(), cpuModel())
	return w.Flush()
}

// ingestPhase sends the same requests into the otlp receiver, the
// tracelookup receiver and the tracelookup receiver without search
// indexes, in turn, and returns the tracelookup median in spans/s.
func ingestPhase(o options, dir string, t *table) (float64, error) {
	perReq := 100
	reqs, _ := requests(1, o.ingestSpans/perReq, 10, 10, 1)
	spans := len(reqs) * perReq
	rates := map[pipeline][]float64{}
	cpu := map[pipeline][]float64{}
	var share []float64
	for r := 0; r < o.rounds; r++ {
		for _, p := range []pipeline{otlpPipeline, tracelookupPipeline, noSearchPipeline} {
			res, err := measureIngest(o, dir, p, reqs, spans)
			if err != nil {
				return 0, err
			}
			fmt.Fprintf(os.Stderr, "ingest round %d %-11s %10.0f spans/s, collector CPU %5.2f us/span, sender %.0f%% of the CPU used\n", r+1, p, res.spansPS, float64(res.cpuPerSpan)/1e3, 100*res.senderShare)
			share = append(share, res.senderShare)
			rates[p] = append(rates[p], res.spansPS)
			cpu[p] = append(cpu[p], float64(res.cpuPerSpan)/1e3)
		}
	}
	a, b, c := median(rates[otlpPipeline]), median(rates[tracelookupPipeline]), median(rates[noSearchPipeline])
	t.row("ingest: otlp receiver -> nop (spans/s, median)", fmt.Sprintf("%.0f", a))
	t.row("ingest: tracelookup receiver -> nop (spans/s, median)", fmt.Sprintf("%.0f", b))
	t.row("ingest: tracelookup receiver, search off (spans/s, median)", fmt.Sprintf("%.0f", c))
	t.row("ingest ratio tracelookup/otlp", fmt.Sprintf("%.2f (search off: %.2f; the search indexes cost %.2f of the ratio)", b/a, c/a, (c-b)/a))
	ca, cb, cc := median(cpu[otlpPipeline]), median(cpu[tracelookupPipeline]), median(cpu[noSearchPipeline])
	t.row("ingest: collector CPU per span, otlp / tracelookup / search off (median)", fmt.Sprintf("%.2f / %.2f / %.2f us (the search indexes: %.2f us, %.0f%% of the tracelookup collector's)", ca, cb, cc, cb-cc, 100*(cb-cc)/cb))
	t.row("ingest: sender's share of the CPU used (median)", fmt.Sprintf("%.0f%% (%d gRPC senders, pre-encoded requests of 10 traces x 10 spans)", 100*median(share), o.senders))
	return b, nil
}

// memoryPhase stores 1M spans in 10-span traces in each kind of collector
// and compares their resident memory.
func memoryPhase(o options, dir string, t *table) error {
	reqs, protoBytes := requests(1, o.storedSpans/100, 10, 10, 1)
	n := float64(len(reqs) * 100)
	var rss [2]uint64
	var heap, accounted float64
	for i, p := range []pipeline{otlpPipeline, tracelookupPipeline} {
		c, err := startCollector(o.collector, dir, p, 4096)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.phaseTimeout)
		_, err = send(ctx, c.grpcPort, o.senders, reqs)
		cancel()
		if err == nil {
			settle(c)
			rss[i], err = c.rss()
		}
		if err == nil && p == tracelookupPipeline {
			held, _ := c.metric("otelcol_tracelookup_index_spans")
			if int(held) != len(reqs)*100 {
				err = fmt.Errorf("the index holds %d spans, %d were sent", int(held), len(reqs)*100)
			}
			accounted, _ = c.metric("otelcol_tracelookup_index_bytes")
			live, _ := c.liveHeap() // after RSS: it forces a collection
			heap = float64(live)
		}
		c.stop()
		if err != nil {
			return err
		}
	}
	delta := float64(rss[1]) - float64(rss[0])
	protoPer := float64(protoBytes) / n
	t.row("stored: spans (10-span traces, each in one request)", fmt.Sprintf("%d", int(n)))
	t.row("stored: OTLP protobuf bytes per span", fmt.Sprintf("%.1f", protoPer))
	t.row("stored: RSS otlp collector / tracelookup collector", fmt.Sprintf("%.1f MiB / %.1f MiB", float64(rss[0])/mib, float64(rss[1])/mib))
	t.row("stored: RSS added per span (tracelookup less otlp)", fmt.Sprintf("%.1f B", delta/n))
	t.row("stored: RSS added per span / protobuf per span", fmt.Sprintf("%.3f", delta/n/protoPer))
	t.row("stored: index_bytes / RSS added", fmt.Sprintf("%.3f (index_bytes %.1f MiB; live Go heap %.1f MiB)", accounted/delta, accounted/mib, heap/mib))
	return nil
}

// lookupPhase stores 1M spans in 100-span traces, each sent in ten parts,
// and times lookups at rest, then while new traces arrive at ingestRate.
func lookupPhase(o options, dir string, t *table, ingestRate float64) error {
	c, err := startCollector(o.collector, dir, tracelookupPipeline, 4096)
	if err != nil {
		return err
	}
	defer c.stop()
	traces := o.storedSpans / 100
	stored, _ := requests(0, traces/10, 10, 10, 10)
	ctx, cancel := context.WithTimeout(context.Background(), o.phaseTimeout)
	defer cancel()
	if _, err = send(ctx, c.grpcPort, o.senders, stored); err != nil {
		return err
	}
	stored = nil
	settle(c)
	for _, workers := range []int{1, o.lookupWorkers} {
		before, _ := c.lookupBuckets()
		lr, err := measureLookups(o, c, traces, workers)
		if err != nil {
			return err
		}
		after, _ := c.lookupBuckets()
		t.row(fmt.Sprintf("lookup GET /api/v1/traces/{id}, 100 spans, 1M stored, %d client(s), at rest", workers),
			fmt.Sprintf("%s; in the collector p99 %s", lr, serverQuantile(before, after, 0.99)))
	}
	// New traces at half the saturation rate while one client looks up.
	fresh, _ := requests(uint64(traces)*10, max(1000, int(ingestRate*6/100)), 10, 10, 1)
	stop := make(chan struct{})
	var sent atomic.Int64
	var paced sync.WaitGroup
	paced.Go(func() { sendPaced(ctx, c.grpcPort, 2, ingestRate/100, fresh, stop, &sent) })
	started := time.Now()
	before, _ := c.lookupBuckets()
	var traced sync.WaitGroup
	if o.profileDir != "" {
		traced.Go(func() {
			tr, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/trace?seconds=2", c.pprofPort))
			if err == nil {
				err = os.WriteFile(filepath.Join(o.profileDir, "lookup-under-ingest.trace"), tr, 0o600)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "trace:", err)
			}
		})
	}
	lr, err := measureLookups(o, c, traces, 1)
	traced.Wait()
	after, _ := c.lookupBuckets()
	close(stop)
	paced.Wait()
	if err != nil {
		return err
	}
	rate := float64(sent.Load()) * 100 / time.Since(started).Seconds()
	note := ""
	if int(sent.Load()) == len(fresh) {
		note = " (the sender ran out of requests before the lookups ended)"
	}
	t.row("lookup, 1 client, while ingest runs at half the saturation rate",
		fmt.Sprintf("%s; in the collector p99 %s; ingest %.0f spans/s%s", lr, serverQuantile(before, after, 0.99), rate, note))
	return nil
}

// sendPaced sends reqs at perSecond requests a second over `senders`
// connections until they run out or stop closes.
func sendPaced(ctx context.Context, port, senders int, perSecond float64, reqs [][]byte, stop <-chan struct{}, sent *atomic.Int64) {
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
			if err != nil {
				return
			}
			defer conn.Close()
			var reply []byte
			for i := next.Add(1) - 1; i < int64(len(reqs)); i = next.Add(1) - 1 {
				due := start.Add(time.Duration(float64(i) / perSecond * float64(time.Second)))
				select {
				case <-stop:
					return
				case <-time.After(time.Until(due)):
				}
				if conn.Invoke(ctx, exportMethod, reqs[i], &reply) != nil {
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
}

func (lr lookupResult) String() string {
	return fmt.Sprintf("p50 %s  p99 %s  max %s  %.0f req/s", ms(lr.p50), ms(lr.p99), ms(lr.max), lr.perSecond)
}

// boundPhase sends boundFactor x max_memory_mib of OTLP into each kind of
// collector and compares their resident memory during and after the load;
// lookups run against the tracelookup collector meanwhile.
func boundPhase(o options, dir string, t *table) error {
	type result struct {
		peak, final uint64
		sent        int64
	}
	var res [2]result
	var accounted, evicted float64
	var storm stormResult
	for i, p := range []pipeline{otlpPipeline, tracelookupPipeline} {
		c, err := startCollector(o.collector, dir, p, o.boundMiB)
		if err != nil {
			return err
		}
		stop := make(chan struct{})
		var sampler sync.WaitGroup
		var peak atomic.Uint64
		sampler.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				if r, err := c.rss(); err == nil && r > peak.Load() {
					peak.Store(r)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
		if p == tracelookupPipeline {
			sampler.Go(func() { lookupRecent(c, stop) })
		}
		sent, err := sendGenerated(c, o, int64(o.boundFactor)*int64(o.boundMiB)*mib)
		if err == nil && p == tracelookupPipeline {
			// With the index full, the lookups that used to exhaust memory.
			storm, err = lookupStorm(c, o)
		}
		if err == nil {
			time.Sleep(3 * time.Second) // what is left after the load
			res[i].final, err = c.rss()
		}
		close(stop)
		sampler.Wait()
		res[i].peak, res[i].sent = max(peak.Load(), res[i].final), sent
		if p == tracelookupPipeline {
			accounted, _ = c.metric("otelcol_tracelookup_index_bytes")
			evicted, _ = c.metric("otelcol_tracelookup_index_traces_evicted")
		}
		if o.memStats {
			fmt.Fprintln(os.Stderr, p, c.memStats())
		}
		c.stop()
		if err != nil {
			return err
		}
	}
	bar := float64(o.boundMiB) * 1.10
	t.row(fmt.Sprintf("bound: max_memory_mib %d, %.0f MiB of OTLP sent to each", o.boundMiB, float64(res[1].sent)/mib),
		fmt.Sprintf("peak RSS otlp %.1f MiB, tracelookup %.1f MiB; after the load %.1f / %.1f MiB", mibOf(res[0].peak), mibOf(res[1].peak), mibOf(res[0].final), mibOf(res[1].final)))
	t.row("bound: RSS delta (tracelookup less otlp), peak / after the load",
		fmt.Sprintf("%.1f MiB / %.1f MiB (bar %.1f MiB); index_bytes %.1f MiB; %d traces evicted",
			mibOf(res[1].peak)-mibOf(res[0].peak), mibOf(res[1].final)-mibOf(res[0].final), bar, accounted/mib, int(evicted)))
	t.row(fmt.Sprintf("bound: %d concurrent lookups of a %d-span trace, index full", stormLookups, stormSpans), storm.String())
	return nil
}

const (
	stormLookups = 200
	stormSpans   = 10_000
)

type stormResult struct {
	served, refused int
	p50, p99, max   time.Duration
}

func (r stormResult) String() string {
	return fmt.Sprintf("%d served (p50 %s, p99 %s, max %s), %d refused (503/429 with Retry-After) by the lookup memory budget",
		r.served, ms(r.p50), ms(r.p99), ms(r.max), r.refused)
}

// lookupStorm stores one trace of stormSpans spans, then looks it up
// stormLookups times at once, half native and half 003, each lookup once:
// the admitted ones are timed from request to last byte.
func lookupStorm(c *collector, o options) (stormResult, error) {
	const trace = 1 << 40 // far from the traces sendGenerated numbers
	var reqs [][]byte
	var m ptrace.ProtoMarshaler
	for part := range stormSpans / 500 {
		b, err := m.MarshalTraces(spangen.Batch(trace, 1, part*500, 500))
		if err != nil {
			return stormResult{}, err
		}
		reqs = append(reqs, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.phaseTimeout)
	defer cancel()
	if _, err := send(ctx, c.grpcPort, 1, reqs); err != nil {
		return stormResult{}, err
	}
	id := spangen.TraceID(trace)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: stormLookups}}
	defer client.CloseIdleConnections()
	var (
		mu     sync.Mutex
		res    stormResult
		served []time.Duration
		wg     sync.WaitGroup
		failed error
	)
	for i := range stormLookups {
		path := "/api/v1/traces/"
		if i%2 == 1 {
			path = "/api/v2/trace/"
		}
		wg.Go(func() {
			start := time.Now()
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s%s", c.apiPort, path, id))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failed = err
			case resp.StatusCode == http.StatusOK:
				served = append(served, d)
			case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
				res.refused++
			default:
				failed = fmt.Errorf("lookup answered %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return res, failed
	}
	slices.Sort(served)
	res.served = len(served)
	if n := len(served); n > 0 {
		res.p50, res.p99, res.max = served[n/2], served[min(n-1, n*99/100)], served[n-1]
	}
	return res, nil
}

func mibOf(b uint64) float64 { return float64(b) / mib }

// lookupRecent looks up recently sent traces, one request at a time, until
// stop closes: the bound must hold with lookups running.
func lookupRecent(c *collector, stop <-chan struct{}) {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for i := uint64(1); ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/traces/%s", c.apiPort, spangen.TraceID(lastSent.Load()-i%1000))
		if resp, err := client.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// lastSent is the newest trace number sendGenerated has sent.
var lastSent atomic.Uint64

// sendGenerated sends fresh batches until total OTLP bytes went out.
func sendGenerated(c *collector, o options, total int64) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.phaseTimeout)
	defer cancel()
	var sent int64
	next := uint64(1)
	for sent < total {
		reqs, n := requests(next, 200, 10, 10, 1)
		next += 2000
		if _, err := send(ctx, c.grpcPort, o.senders, reqs); err != nil {
			return sent, err
		}
		lastSent.Store(next)
		sent += int64(n)
		if ctx.Err() != nil {
			return sent, errors.New("bound phase ran out of time")
		}
	}
	return sent, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}
