// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// collector is one collector process this benchmark started.
type collector struct {
	cmd                   *exec.Cmd
	out                   bytes.Buffer
	grpcPort, metricsPort int
	pprofPort, apiPort    int
	done                  chan error
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pipeline names the receiver under test.
type pipeline string

const (
	otlpPipeline        pipeline = "otlp"
	tracelookupPipeline pipeline = "tracelookup"
	// noSearchPipeline is the tracelookup receiver with search::enabled: false.
	noSearchPipeline pipeline = "no-search"
	// soakPipeline is the tracelookup receiver into an otlp exporter to
	// the soak's own OTLP sink at soakSinkPort.
	soakPipeline pipeline = "soak"
)

// soakSinkPort is where the soak pipeline's exporter sends.
var soakSinkPort int

func (c *collector) config(p pipeline, maxMemoryMiB int) string {
	receiver := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
`, c.grpcPort)
	extensions := "[pprof]"
	receiverName, search := "otlp", ""
	if p != otlpPipeline {
		receiverName = "tracelookup"
		if p == noSearchPipeline {
			search = "\n    search:\n      enabled: false"
		}
		receiver = fmt.Sprintf(`
receivers:
  tracelookup:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
`, c.grpcPort)
		extensions = "[pprof, tracelookup]"
	}
	exporter, exporterName := "\n  nop:\n", "nop"
	if p == soakPipeline {
		// No sending queue: an acknowledged export has reached the sink.
		exporter = fmt.Sprintf("\n  otlp_grpc:\n    endpoint: 127.0.0.1:%d\n    compression: none\n    sending_queue:\n      enabled: false\n    tls:\n      insecure: true\n", soakSinkPort)
		exporterName = "otlp_grpc"
	}
	return receiver + fmt.Sprintf(`
extensions:
  pprof:
    endpoint: 127.0.0.1:%d
  tracelookup:
    endpoint: 127.0.0.1:%d
    index:
      max_memory_mib: %d%s

exporters:%s
service:
  extensions: %s
  pipelines:
    traces:
      receivers: [%s]
      exporters: [%s]
  telemetry:
    logs:
      level: warn
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, c.pprofPort, c.apiPort, maxMemoryMiB, search, exporter, extensions, receiverName, exporterName, c.metricsPort)
}

// startCollector runs the binary with a pipeline of p into the nop exporter.
// The free ports it picks can be taken by another process before the
// collector binds them: then it tries again with new ones, three times.
func startCollector(bin, dir string, p pipeline, maxMemoryMiB int) (*collector, error) {
	var err error
	for range 3 {
		var c *collector
		if c, err = startCollectorOnce(bin, dir, p, maxMemoryMiB); err == nil {
			return c, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

func startCollectorOnce(bin, dir string, p pipeline, maxMemoryMiB int) (*collector, error) {
	c := &collector{done: make(chan error, 1)}
	for _, port := range []*int{&c.grpcPort, &c.metricsPort, &c.pprofPort, &c.apiPort} {
		var err error
		if *port, err = freePort(); err != nil {
			return nil, err
		}
	}
	cfg := filepath.Join(dir, string(p)+".yaml")
	if err := os.WriteFile(cfg, []byte(c.config(p, maxMemoryMiB)), 0o600); err != nil {
		return nil, err
	}
	c.cmd = exec.Command(bin, "--config", cfg)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { c.done <- c.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-c.done:
			return nil, fmt.Errorf("collector exited at start-up (%v):\n%s", err, c.out.String())
		default:
		}
		if _, err := c.scrape(); err == nil && dialable(c.grpcPort) {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("collector not ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dialable(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// stop ends the process this benchmark started: SIGTERM, then SIGKILL after 15s.
func (c *collector) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func httpGet(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// scrape returns the collector's own metrics: name{labels} -> value, summed by name too.
func (c *collector) scrape() (map[string]float64, error) {
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.metricsPort))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name, _, _ := strings.Cut(series, "{")
		if series != name {
			out[series] = v
		}
		out[name] += v
	}
	return out, sc.Err()
}

// metric is the sum of every series of name.
func (c *collector) metric(name string) (float64, error) {
	m, err := c.scrape()
	if err != nil {
		return 0, err
	}
	return m[name], nil
}

// liveHeap forces a garbage collection in the collector (pprof's gc=1) and
// returns the bytes of live heap objects after it.
func (c *collector) liveHeap() (uint64, error) {
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1&debug=1", c.pprofPort))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no HeapAlloc in the heap profile")
}

// rss is the process's resident set, from /proc.
func (c *collector) rss() (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuTime is the CPU the process has used, user and system, from /proc.
func (c *collector) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it do not.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ, 100 on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// selfCPU is the CPU this benchmark's own process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memStats returns the runtime's memory lines from the heap profile, without
// forcing a collection.
func (c *collector) memStats() string {
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?debug=1", c.pprofPort))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		for _, k := range []string{"HeapAlloc", "HeapSys", "HeapIdle", "HeapInuse", "HeapReleased", "Sys ", "NextGC", "NumGC", "Stack"} {
			if strings.HasPrefix(line, "# "+k) {
				out = append(out, strings.TrimPrefix(line, "# "))
			}
		}
	}
	return strings.Join(out, "; ")
}

// lookupBuckets returns the collector's own histogram of found lookups'
// durations: upper bound in ms -> cumulative count.
func (c *collector) lookupBuckets() (map[float64]float64, error) {
	m, err := c.scrape()
	if err != nil {
		return nil, err
	}
	out := map[float64]float64{}
	for series, v := range m {
		if !strings.HasPrefix(series, "otelcol_tracelookup_lookup_duration") || !strings.Contains(series, "_bucket{") ||
			!strings.Contains(series, `outcome="found"`) {
			continue
		}
		_, le, ok := strings.Cut(series, `le="`)
		if !ok {
			continue
		}
		le, _, _ = strings.Cut(le, `"`)
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			bound = math.Inf(1)
		}
		out[bound] += v
	}
	return out, nil
}

// serverQuantile is the bucket bound under which q of the lookups between
// two histogram readings finished, as the collector timed them.
func serverQuantile(before, after map[float64]float64, q float64) string {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	total := after[math.Inf(1)] - before[math.Inf(1)]
	if total <= 0 {
		return "n/a"
	}
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			if math.IsInf(b, 1) {
				return "> the largest bucket"
			}
			return fmt.Sprintf("<= %gms", b)
		}
	}
	return "n/a"
}
