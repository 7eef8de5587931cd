// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The trace in examples/trace.json, which the README's quick start posts.
const (
	exampleTraceID = "5b8efff798038103d269b633813fc60c"
	exampleCallID  = "3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a42"
)

// TestReadmeFlowAndContracts posts examples/trace.json exactly as the README's
// curl does, then reads the trace back through all three contracts.
func TestReadmeFlowAndContracts(t *testing.T) {
	collectorBinary(t)
	snk := startSink(t)
	apiPort, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	col := startCollector(t, pipelineConfig(apiPort, grpcPort, httpPort, snk.port))
	col.waitReady(t, apiPort, nil, grpcPort, httpPort)
	api := "http://" + addr(apiPort)

	body, err := os.ReadFile(filepath.Join("..", "..", "examples", "trace.json"))
	require.NoError(t, err)
	resp, err := http.Post("http://"+addr(httpPort)+"/v1/traces", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	reply, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(reply))

	var native map[string]any
	require.NoError(t, json.Unmarshal(mustDo(t, http.MethodGet, api+"/api/v1/traces/"+exampleTraceID, nil).Body, &native))
	require.Equal(t, exampleTraceID, native["id"])
	require.Equal(t, "GET /checkout", native["name"])
	require.Equal(t, "frontend", native["service_name"])
	require.Equal(t, "error", native["status"])
	require.EqualValues(t, 3, native["span_count"])

	t.Run("000 by call id", func(t *testing.T) {
		r := mustDo(t, http.MethodGet, api+"/v1/trace/call/"+exampleCallID, nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		var m map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &m))
		require.Equal(t, exampleTraceID, m["id"])
		require.Equal(t, exampleCallID, m["call_id"])
		require.Equal(t, "frontend", m["root_service"])
		require.EqualValues(t, 250, m["duration_ms"])
		root := m["spans"].([]any)[0].(map[string]any)
		require.Equal(t, "GET /checkout", root["operation_name"])
		require.Equal(t, "ERROR", root["status"])
		payment := root["children"].([]any)[0].(map[string]any)["children"].([]any)[0].(map[string]any)
		require.Equal(t, "payment", payment["service_name"])
		require.Equal(t, []any{"card", "eu"}, payment["tags"].(map[string]any)["tags"])

		r = mustDo(t, http.MethodGet, api+"/v1/trace/call/not-a-uuid", nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status)
		require.Contains(t, string(r.Body), `"loc":["path","call_id"]`)
		requireError(t, mustDo(t, http.MethodGet, api+"/v1/trace/call/00000000-0000-4000-8000-000000000000", nil), http.StatusNotFound, "TRACE_NOT_FOUND")
	})

	t.Run("003 by trace id", func(t *testing.T) {
		// The low 64 bits in decimal, as logs carry them, find the trace too.
		for _, id := range []string{exampleTraceID, "15161849952847513100"} {
			r := mustDo(t, http.MethodGet, api+"/api/v2/trace/"+id+"?include_fields=spanID,name,resource,service,type,error", nil)
			require.Equal(t, http.StatusOK, r.Status, string(r.Body))
			dec := json.NewDecoder(bytes.NewReader(r.Body))
			dec.UseNumber()
			var m struct {
				Data struct {
					ID         string `json:"id"`
					Type       string `json:"type"`
					Attributes struct {
						IsTruncated bool             `json:"is_truncated"`
						Spans       []map[string]any `json:"spans"`
					} `json:"attributes"`
				} `json:"data"`
			}
			require.NoError(t, dec.Decode(&m))
			require.Equal(t, exampleTraceID, m.Data.ID)
			require.Equal(t, "trace", m.Data.Type)
			require.False(t, m.Data.Attributes.IsTruncated)
			require.Len(t, m.Data.Attributes.Spans, 3)
			root := m.Data.Attributes.Spans[0]
			require.Len(t, root, 6)
			require.Equal(t, json.Number("17213210219539181940"), root["spanID"]) // 0xeee19b7ec3c1b174
			require.Equal(t, "http.server.request", root["name"])
			require.Equal(t, "GET /checkout", root["resource"])
			require.Equal(t, "web", root["type"])
			require.Equal(t, json.Number("1"), root["error"])
		}
		r := mustDo(t, http.MethodGet, api+"/api/v2/trace/xyz", nil)
		require.Equal(t, http.StatusBadRequest, r.Status)
		require.Contains(t, string(r.Body), `"errors":[{"status":"400","title":"Bad Request"`)
		r = mustDo(t, http.MethodGet, api+"/api/v2/trace/"+randomTraceID(t), nil)
		require.Equal(t, http.StatusNotFound, r.Status)
		require.Contains(t, string(r.Body), `"errors":[{"status":"404","title":"Not Found"`)
	})

	require.NoError(t, col.stop(), "collector exit after SIGTERM")
}
