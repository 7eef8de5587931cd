// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Command loadbench measures the built collector under a bounded load on
// loopback and prints one table: ingest through the tracelookup receiver
// against the plain otlp receiver in the same run, the heap per stored span,
// lookup latency with 1M spans stored, and the memory bound. Every load has a
// fixed count and a deadline; every process it starts, it stops.
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
}

func main() {
	var o options
	flag.StringVar(&o.collector, "collector", "bin/otelcol-tracelookup", "the built collector")
	flag.IntVar(&o.ingestSpans, "ingest-spans", 1_000_000, "spans sent per ingest measurement")
	flag.IntVar(&o.rounds, "rounds", 2, "ingest measurements per receiver, alternating otlp and tracelookup")
	flag.IntVar(&o.senders, "senders", 4, "concurrent gRPC senders")
	flag.IntVar(&o.storedSpans, "stored-spans", 1_000_000, "spans stored (in 100-span traces) before the memory and lookup measurements")
	flag.IntVar(&o.lookups, "lookups", 5000, "trace lookups sent")
	flag.IntVar(&o.lookupWorkers, "lookup-workers", 2, "concurrent lookup clients in the second lookup measurement (the first uses one)")
	flag.IntVar(&o.boundMiB, "bound-mib", 256, "max_memory_mib for the memory-bound measurement")
	flag.IntVar(&o.boundFactor, "bound-factor", 10, "OTLP bytes sent in the bound measurement, as a multiple of bound-mib")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 3*time.Minute, "the most one load phase may take")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "if set, save a CPU profile of each ingest measurement (2s) in this directory")
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
	pipeline pipeline
	spansPS  float64
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
	elapsed, err := send(ctx, c.grpcPort, o.senders, reqs)
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
	return ingestResult{pipeline: p, spansPS: accepted / elapsed.Seconds()}, nil
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

// waitSealed waits until the index has sealed what it holds: its accounted
// bytes stop falling.
func waitSealed(c *collector) {
	prev := -1.0
	for i := 0; i < 40; i++ {
		time.Sleep(500 * time.Millisecond)
		b, err := c.metric("otelcol_tracelookup_index_bytes")
		if err == nil && b == prev && i >= 4 {
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
	table := [][2]string{}
	row := func(k, v string) { table = append(table, [2]string{k, v}) }

	// 1. Ingest: the same requests into the otlp and the tracelookup receiver, alternating.
	perReq := 100
	reqs, _ := requests(1, o.ingestSpans/perReq, 10, 10, 1)
	spans := len(reqs) * perReq
	var otlp, tl []float64
	for r := 0; r < o.rounds; r++ {
		for _, p := range []pipeline{otlpPipeline, tracelookupPipeline} {
			res, err := measureIngest(o, dir, p, reqs, spans)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "ingest round %d %-11s %10.0f spans/s\n", r+1, p, res.spansPS)
			if p == otlpPipeline {
				otlp = append(otlp, res.spansPS)
			} else {
				tl = append(tl, res.spansPS)
			}
		}
	}
	reqs = nil
	a, b := median(otlp), median(tl)
	row("ingest: otlp receiver -> nop (spans/s, median)", fmt.Sprintf("%.0f", a))
	row("ingest: tracelookup receiver -> nop (spans/s, median)", fmt.Sprintf("%.0f", b))
	row("ingest ratio tracelookup/otlp", fmt.Sprintf("%.2f", b/a))

	// 2. Memory and lookups with 1M spans stored: 100-span traces, each sent in ten parts.
	c, err := startCollector(o.collector, dir, tracelookupPipeline, 4096)
	if err != nil {
		return err
	}
	baseHeap, err := c.liveHeap()
	if err != nil {
		c.stop()
		return err
	}
	baseRSS, _ := c.rss()
	traces := o.storedSpans / 100
	stored, protoBytes := requests(0, traces/10, 10, 10, 10)
	ctx, cancel := context.WithTimeout(context.Background(), o.phaseTimeout)
	_, err = send(ctx, c.grpcPort, o.senders, stored)
	cancel()
	stored = nil
	if err != nil {
		c.stop()
		return err
	}
	waitSealed(c)
	heap, err := c.liveHeap()
	if err != nil {
		c.stop()
		return err
	}
	rss, _ := c.rss()
	held, _ := c.metric("otelcol_tracelookup_index_spans")
	accounted, _ := c.metric("otelcol_tracelookup_index_bytes")
	n := float64(traces * 100)
	if int(held) != traces*100 {
		c.stop()
		return fmt.Errorf("the index holds %d spans, %d were sent", int(held), traces*100)
	}
	heapPer := float64(heap-baseHeap) / n
	protoPer := float64(protoBytes) / n
	row("stored spans (100-span traces)", fmt.Sprintf("%d", traces*100))
	row("OTLP protobuf bytes per span", fmt.Sprintf("%.1f", protoPer))
	row("Go heap per stored span (live, after GC, less idle baseline)", fmt.Sprintf("%.1f B", heapPer))
	row("heap per span / protobuf per span", fmt.Sprintf("%.3f", heapPer/protoPer))
	row("RSS per stored span (less idle baseline)", fmt.Sprintf("%.1f B", float64(rss-baseRSS)/n))
	row("index accounted bytes / heap growth", fmt.Sprintf("%.3f", accounted/float64(heap-baseHeap)))

	for _, workers := range []int{1, o.lookupWorkers} {
		lr, err := measureLookups(o, c, traces, workers)
		if err != nil {
			c.stop()
			return err
		}
		row(fmt.Sprintf("lookup GET /api/v1/traces/{id}, 100 spans, %d requests, %d client(s)", o.lookups, workers),
			fmt.Sprintf("p50 %s  p99 %s  max %s  %.0f req/s", ms(lr.p50), ms(lr.p99), ms(lr.max), lr.perSecond))
	}
	c.stop()

	// 3. The bound: boundFactor x max_memory_mib of OTLP into an index of max_memory_mib.
	c, err = startCollector(o.collector, dir, tracelookupPipeline, o.boundMiB)
	if err != nil {
		return err
	}
	defer c.stop()
	idle, err := c.liveHeap()
	if err != nil {
		return err
	}
	sent, err := sendGenerated(c, o, int64(o.boundFactor)*int64(o.boundMiB)*mib)
	if err != nil {
		return err
	}
	waitSealed(c)
	heap, err = c.liveHeap()
	if err != nil {
		return err
	}
	evicted, _ := c.metric("otelcol_tracelookup_index_traces_evicted")
	limit := float64(o.boundMiB) * 1.15
	row(fmt.Sprintf("bound: max_memory_mib %d, %.0f MiB of OTLP sent", o.boundMiB, float64(sent)/mib),
		fmt.Sprintf("live heap %.1f MiB (idle collector %.1f MiB; bar %.1f MiB + idle), %d traces evicted",
			float64(heap)/mib, float64(idle)/mib, limit, int(evicted)))

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nmeasure\tvalue\n-------\t-----\n")
	for _, r := range table {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	fmt.Fprintf(w, "machine\t%d cores (GOMAXPROCS), %s\n", runtime.NumCPU(), cpuModel())
	return w.Flush()
}

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
