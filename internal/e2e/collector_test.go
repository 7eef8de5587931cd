// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// collectorEnv names the built collector binary; `make test` sets it.
const collectorEnv = "TRACELOOKUP_COLLECTOR"

const (
	// stopTimeout bounds a graceful shutdown after SIGTERM before SIGKILL.
	stopTimeout = 15 * time.Second
	// readyTimeout bounds how long a collector may take to serve its API.
	readyTimeout = 30 * time.Second
)

// collectorBinary returns the binary under test, or skips the test.
func collectorBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(collectorEnv)
	if bin == "" {
		t.Skipf("%s is not set: run `make test`, which builds the collector and sets it "+
			"(or `make build` and set %s=$PWD/bin/otelcol-tracelookup)", collectorEnv, collectorEnv)
	}
	require.Truef(t, filepath.IsAbs(bin), "%s must be an absolute path, got %q", collectorEnv, bin)
	st, err := os.Stat(bin)
	require.NoErrorf(t, err, "%s=%q", collectorEnv, bin)
	require.Falsef(t, st.IsDir(), "%s=%q is a directory", collectorEnv, bin)
	return bin
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// syncBuffer collects the collector's output; the process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// collector is one running collector process started by the test.
type collector struct {
	t      *testing.T
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, read after done is closed

	stopOnce sync.Once
	stopErr  error
}

// startCollector writes config to a temporary file and starts the collector
// with it. The process is stopped, and its output logged if the test failed,
// when the test ends.
func startCollector(t *testing.T, config string) *collector {
	t.Helper()
	bin := collectorBinary(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o600))

	c := &collector{t: t, output: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, "--config", path)
	c.cmd.Stdout = c.output
	c.cmd.Stderr = c.output
	c.cmd.WaitDelay = 5 * time.Second
	// Cleanups run last-in first-out: the output is logged after the stop.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("collector config:\n%s\ncollector output:\n%s", config, c.output.String())
		}
	})
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { _ = c.stop() })
	return c
}

// stop sends SIGTERM to the process, waits for it to exit and kills it when
// it does not within stopTimeout. It returns how the process exited; a clean
// shutdown returns nil. It is safe to call more than once.
func (c *collector) stop() error {
	c.stopOnce.Do(func() {
		select {
		case <-c.done:
			c.stopErr = fmt.Errorf("collector had already exited: %w", c.err)
			return
		default:
		}
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			c.t.Logf("SIGTERM to collector pid %d: %v", c.cmd.Process.Pid, err)
		}
		select {
		case <-c.done:
			c.stopErr = c.err
		case <-time.After(stopTimeout):
			c.t.Errorf("collector pid %d did not exit within %s of SIGTERM; killing it", c.cmd.Process.Pid, stopTimeout)
			_ = c.cmd.Process.Kill()
			<-c.done
			c.stopErr = fmt.Errorf("killed after %s: %w", stopTimeout, c.err)
		}
	})
	return c.stopErr
}

// exited reports whether the process has exited, and how.
func (c *collector) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// waitExit waits up to timeout for the process to exit on its own.
func (c *collector) waitExit(timeout time.Duration) (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	case <-time.After(timeout):
		return false, nil
	}
}

// waitReady waits until the API answers an unknown trace id with the native
// 404 and every listed port accepts connections. headers go with each API
// request (for auth).
func (c *collector) waitReady(t *testing.T, apiPort int, headers map[string]string, ports ...int) {
	t.Helper()
	url := fmt.Sprintf("http://%s/api/v1/traces/%s", addr(apiPort), randomTraceID(t))
	poll(t, readyTimeout, "the collector to serve its API", func() error {
		if gone, err := c.exited(); gone {
			return stopPolling{fmt.Errorf("the collector exited during start-up: %v", err)}
		}
		resp, err := get(url, headers)
		if err != nil {
			return err
		}
		if resp.Status != 404 {
			return fmt.Errorf("status %d, body %s", resp.Status, resp.Body)
		}
		var e apiError
		if err := resp.decode(&e); err != nil {
			return err
		}
		if e.ErrorCode != "TRACE_NOT_FOUND" {
			return fmt.Errorf("error_code %q, body %s", e.ErrorCode, resp.Body)
		}
		return nil
	})
	// Extensions start before the pipelines: the receiver may not listen yet.
	for _, p := range ports {
		poll(t, readyTimeout, "port "+addr(p)+" to accept connections", func() error {
			conn, err := net.DialTimeout("tcp", addr(p), time.Second)
			if err != nil {
				return err
			}
			return conn.Close()
		})
	}
	poll(t, readyTimeout, "the collector to log that it is ready", func() error {
		if !strings.Contains(c.output.String(), "Everything is ready") {
			return errors.New(`no "Everything is ready" in the output yet`)
		}
		return nil
	})
}

// pipelineConfig is the collector under test in the main scenario:
// tracelookup receiver -> batch -> otlp_grpc exporter to the in-test sink.
func pipelineConfig(apiPort, grpcPort, httpPort, sinkPort int) string {
	return fmt.Sprintf(`
extensions:
  tracelookup:
    endpoint: 127.0.0.1:%d
    index:
      max_memory_mib: 64

receivers:
  tracelookup:
    extension: tracelookup
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d

processors:
  batch:
    timeout: 100ms

exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:%d
    tls:
      insecure: true

service:
  extensions: [tracelookup]
  pipelines:
    traces:
      receivers: [tracelookup]
      processors: [batch]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
`, apiPort, grpcPort, httpPort, sinkPort)
}

// nopConfig is a collector whose tracelookup receiver (gRPC and HTTP)
// feeds a nop exporter; extension holds more options of the tracelookup
// extension, indented under it ("" for none).
func nopConfig(apiPort, grpcPort, httpPort int, extension string) string {
	return nopCollector{api: apiPort, grpc: grpcPort, http: httpPort, extension: extension}.config()
}

// nopCollector is the configuration most end-to-end tests run: the
// tracelookup receiver feeding a nop exporter, the tracelookup extension
// and any others beside it, everything on 127.0.0.1.
type nopCollector struct {
	api, grpc int
	http      int    // 0: no OTLP/HTTP
	extension string // more tracelookup extension options, indented under it
	// httpOptions are more protocols::http options, indented under it.
	httpOptions string
	// others are more extensions, indented under extensions:, started
	// before tracelookup; otherNames name them.
	others     string
	otherNames []string
	// receiverExtension is the receiver's extension: setting ("" for
	// tracelookup).
	receiverExtension string
}

// bearerTokenAuth is a bearer token authenticator, as nopCollector.others.
const bearerTokenAuth = "  bearertokenauth:\n    token: \"s3cret\"\n"

func (c nopCollector) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "extensions:\n%s  tracelookup:\n    endpoint: 127.0.0.1:%d\n%s", c.others, c.api, c.extension)
	fmt.Fprintf(&b, "receivers:\n  tracelookup:\n    extension: %s\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:%d\n",
		cmp.Or(c.receiverExtension, "tracelookup"), c.grpc)
	if c.http != 0 {
		fmt.Fprintf(&b, "      http:\n        endpoint: 127.0.0.1:%d\n%s", c.http, c.httpOptions)
	}
	fmt.Fprintf(&b, `exporters:
  nop:
service:
  extensions: [%s]
  pipelines:
    traces:
      receivers: [tracelookup]
      exporters: [nop]
  telemetry:
    metrics:
      level: none
`, strings.Join(append(slices.Clone(c.otherNames), "tracelookup"), ", "))
	return b.String()
}
