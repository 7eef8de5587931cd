// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/hostile"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// hostileConfig is a collector with the index bounded at 256 MiB, the
// receiver's defaults but for a short read_header_timeout (so that the slow
// client probe ends soon), and a nop exporter.
func hostileConfig(apiPort, grpcPort, httpPort int) string {
	return nopCollector{api: apiPort, grpc: grpcPort, http: httpPort,
		extension:   "    index:\n      max_memory_mib: 256\n",
		httpOptions: "        read_header_timeout: 1s\n"}.config()
}

// rssMiB is the resident memory of process pid, from /proc.
func rssMiB(t *testing.T, pid int, field string) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			require.NoError(t, err)
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func post(t *testing.T, url, contentType string, body []byte, gzipped bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := postClient.Do(req)
	require.NoError(t, err, "the collector must answer, not die")
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// TestHostileClients runs the probes that crashed the collector, hid a
// trace or exhausted its memory against the built collector, as a separate
// process: a crash fails the test instead of taking it down.
func TestHostileClients(t *testing.T) {
	collectorBinary(t)
	apiPort, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	col := startCollector(t, hostileConfig(apiPort, grpcPort, httpPort))
	col.waitReady(t, apiPort, nil, grpcPort, httpPort)
	api := "http://" + addr(apiPort)
	otlp := "http://" + addr(httpPort) + "/v1/traces"
	pid := col.cmd.Process.Pid
	alive := func(probe string) {
		t.Helper()
		gone, err := col.exited()
		require.False(t, gone, "%s: the collector died: %v", probe, err)
	}

	t.Run("value nested 1.3 million levels", func(t *testing.T) {
		code, body := post(t, otlp, "application/x-protobuf", hostile.DeepProto(1_300_000), false)
		assert.Equal(t, http.StatusBadRequest, code, "%.200s", body)
		assert.Contains(t, string(body), "nested deeper than 64 levels")
		// 3.5 MB gzip, as the issue sent it.
		code, _ = post(t, otlp, "application/x-protobuf", gz(t, hostile.DeepProto(1_300_000)), true)
		assert.Equal(t, http.StatusBadRequest, code)
		code, _ = post(t, otlp, "application/json", hostile.DeepJSON(600_000), false)
		assert.Equal(t, http.StatusBadRequest, code)

		conn, err := grpc.NewClient(addr(grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", rawProto(hostile.DeepProto(450_000)), rawProto(nil))
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		alive("nested value")
	})

	t.Run("value nested 101 levels", func(t *testing.T) {
		// Past the receiver's limit, refused; and a trace with such a value
		// never reaches the index to hide there.
		code, _ := post(t, otlp, "application/x-protobuf", hostile.DeepProto(101), false)
		assert.Equal(t, http.StatusBadRequest, code)
		code, _ = post(t, otlp, "application/x-protobuf", hostile.DeepProto(64), false)
		require.Equal(t, http.StatusOK, code)
		id := hex.EncodeToString(hostile.DeepTraceID[:])
		r := mustDo(t, http.MethodGet, api+"/api/v1/traces/"+id, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Equal(t, http.StatusOK, mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id, nil).Status)
	})

	t.Run("compressible 19 MiB attribute", func(t *testing.T) {
		// 50 gzip requests of a few KiB, one span each with a 19 MiB
		// attribute of one character: a lookup decoded 996 MB of it, and four
		// at once ran the collector out of memory.
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		id := pcommon.TraceID{0x19}
		sp.SetTraceID(id)
		sp.Attributes().PutStr("payload", strings.Repeat("x", 19<<20))
		for i := range 50 {
			sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
			body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			require.NoError(t, err)
			code, resp := post(t, otlp, "application/x-protobuf", gz(t, body), true)
			require.Equal(t, http.StatusOK, code, "%.200s", resp)
		}
		var wg sync.WaitGroup
		for _, path := range []string{"/api/v1/traces/", "/api/v1/traces/", "/api/v2/trace/", "/api/v2/trace/"} {
			wg.Go(func() {
				r, err := get(api+path+hex.EncodeToString(id[:]), nil)
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, http.StatusOK, r.Status)
				assert.Less(t, len(r.Body), 1<<20, "50 spans of 4 KiB values, not of 19 MiB")
				if path == "/api/v1/traces/" {
					var trace struct {
						Spans []struct {
							Attributes map[string]any `json:"attributes"`
						} `json:"spans"`
					}
					if assert.NoError(t, json.Unmarshal(r.Body, &trace)) && assert.Len(t, trace.Spans, 50) {
						a := trace.Spans[0].Attributes
						assert.Len(t, a["payload"], 4096)
						assert.EqualValues(t, 1, a["tracelookup.truncated_values"])
					}
				}
			})
		}
		wg.Wait()
		alive("huge attribute")
		// The issue saw 4.1 GB for one lookup; the whole collector now stays
		// far below that, its index bounded at 256 MiB.
		assert.Less(t, rssMiB(t, pid, "VmHWM"), 1024.0, "peak resident memory, MiB")
	})

	t.Run("10,001 query parameters", func(t *testing.T) {
		id := hex.EncodeToString(hostile.DeepTraceID[:])
		r := mustDo(t, http.MethodGet, api+"/api/v1/traces/"+id+"?flat=maybe"+strings.Repeat("&x=1", 10_000), nil)
		requireError(t, r, http.StatusBadRequest, "INVALID_PARAMETER")
		r = mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id+"?include_fields=bogus"+strings.Repeat("&x=1", 10_000), nil)
		assert.Equal(t, http.StatusBadRequest, r.Status)
	})

	t.Run("1 MB path", func(t *testing.T) {
		long := strings.Repeat("a", 1_000_000)
		for _, path := range []string{"/nope/", "/api/v1/traces/", "/v1/trace/call/"} {
			r := mustDo(t, http.MethodGet, api+path+long, nil)
			assert.GreaterOrEqual(t, r.Status, 400)
			assert.Less(t, len(r.Body), 1024, "%s: the error repeats a short prefix", path)
		}
	})

	t.Run("slow headers and bodies on OTLP/HTTP", func(t *testing.T) {
		// read_header_timeout is 1s here (1m by default) and read_timeout 30s
		// by default: the server, not the client, ends the connection.
		conn, err := net.Dial("tcp", addr(httpPort))
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, err = io.ReadAll(conn)
		assert.NoError(t, err, "the connection was closed by the server")
	})

	t.Run("10,000-deep parent chain", func(t *testing.T) {
		id := pcommon.TraceID{0xc4, 0xa1}
		call := "0c4a1000-0000-4000-8000-000000000001"
		body, err := ptraceotlp.NewExportRequestFromTraces(hostile.Chain(id, 10_000, call)).MarshalProto()
		require.NoError(t, err)
		code, _ := post(t, otlp, "application/x-protobuf", body, false)
		require.Equal(t, http.StatusOK, code)
		for _, url := range []string{api + "/api/v1/traces/" + hex.EncodeToString(id[:]), api + "/v1/trace/call/" + call} {
			r := mustDo(t, http.MethodGet, url, nil)
			require.Equal(t, http.StatusOK, r.Status, "%.300s", r.Body)
			var v map[string]any
			require.NoError(t, json.Unmarshal(r.Body, &v), "encoding/json parses it back")
			assert.Equal(t, "max_tree_depth", r.Header.Get("X-Trace-Truncated"))
		}
	})

	t.Run("200 concurrent lookups of a 10,000-span trace", func(t *testing.T) {
		for part := range 20 {
			body, err := ptraceotlp.NewExportRequestFromTraces(spangen.Batch(1, 1, part*500, 500)).MarshalProto()
			require.NoError(t, err)
			code, _ := post(t, otlp, "application/x-protobuf", body, false)
			require.Equal(t, http.StatusOK, code)
		}
		id := spangen.TraceID(1)
		before := rssMiB(t, pid, "VmRSS")
		statuses := make([]int, 200)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() {
				r, err := lookupClient.Get(api + "/api/v1/traces/" + hex.EncodeToString(id[:]) + "?flat=true")
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				_ = r.Body.Close()
				statuses[i] = r.StatusCode
				if r.StatusCode == http.StatusServiceUnavailable {
					assert.Equal(t, "1", r.Header.Get("Retry-After"))
				}
			})
		}
		wg.Wait()
		served := 0
		for _, s := range statuses {
			assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, s)
			if s == http.StatusOK {
				served++
			}
		}
		assert.Positive(t, served)
		alive("concurrent lookups")
		t.Logf("200 concurrent lookups: %d served, %d answered 503; RSS %.0f MiB before, %.0f MiB after, peak %.0f MiB",
			served, len(statuses)-served, before, rssMiB(t, pid, "VmRSS"), rssMiB(t, pid, "VmHWM"))
	})
}

// postClient and lookupClient allow for large bodies and slow answers.
var (
	postClient   = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	lookupClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
)

type rawMessage struct{ b []byte }

func rawProto(b []byte) *rawMessage { return &rawMessage{b: b} }

func (m *rawMessage) SizeProto() int                { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int   { return copy(buf, m.b) }
func (m *rawMessage) UnmarshalProto(b []byte) error { m.b = append(m.b[:0], b...); return nil }
