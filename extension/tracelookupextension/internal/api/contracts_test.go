// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares body with testdata/golden/name, both indented the same way.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, body, "", "  "))
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), pretty.String())
}

func defaultOptions() Options {
	return Options{MaxResponseSpans: 10000, MaxResponseBytes: 64 << 20}
}

func TestGoldenResponses(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	for name, target := range map[string]string{
		"native_tree.json":                 "/api/v1/traces/" + fixtureHex,
		"native_flat.json":                 "/api/v1/traces/" + fixtureHex + "?flat=true",
		"contract_000.json":                "/v1/trace/call/" + callID,
		"contract_003.json":                "/api/v2/trace/" + fixtureHex,
		"contract_003_include_fields.json": "/api/v2/trace/" + fixtureHex + "?include_fields=spanID,parentID&include_fields=name,service,self_time",
	} {
		t.Run(name, func(t *testing.T) {
			r := get(t, h, http.MethodGet, target)
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			golden(t, name, r.body)
		})
	}
}

// contractSchema compiles one schema of the 000 document's components.
func contractSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "contract_000_schemas.json"))
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource("contract-000.json", doc))
	s, err := c.Compile("contract-000.json#/$defs/" + name)
	require.NoError(t, err)
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, body []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	require.NoError(t, err)
	assert.NoError(t, s.Validate(inst), string(body))
}

func TestContract000MatchesItsSchemas(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	traceSchema := contractSchema(t, "TraceResponse")
	errSchema := contractSchema(t, "ErrorResponseSchema")
	validationSchema := contractSchema(t, "HTTPValidationError")

	// The schema validator itself must reject a wrong body, or this test proves nothing.
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"id":"x","span_count":"1"}`))
	require.Error(t, traceSchema.Validate(bad))

	for _, id := range []string{callID, strings.ToUpper(callID), strings.ReplaceAll(callID, "-", ""), "{" + callID + "}", "urn:uuid:" + callID} {
		r := get(t, h, http.MethodGet, "/v1/trace/call/"+id)
		require.Equal(t, http.StatusOK, r.code, id)
		validate(t, traceSchema, r.body)
		assert.Equal(t, callID, r.json(t)["call_id"])
	}

	r := get(t, h, http.MethodGet, "/v1/trace/call/9b2c1d4e-0000-4000-8000-000000000000")
	require.Equal(t, http.StatusNotFound, r.code)
	validate(t, errSchema, r.body)
	assert.JSONEq(t, `{"status":"error","error_code":"TRACE_NOT_FOUND","message":"Trace not found"}`, string(r.body))

	for _, bad := range []string{"abc", "3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a4z", "3f2b6c1e_8d4a_4f3b_9a51_2c7e0d9b1a42", strings.Repeat("a", 300), "%20"} {
		r := get(t, h, http.MethodGet, "/v1/trace/call/"+bad)
		require.Equal(t, http.StatusUnprocessableEntity, r.code, bad)
		validate(t, validationSchema, r.body)
		detail := r.json(t)["detail"].([]any)[0].(map[string]any)
		assert.Equal(t, []any{"path", "call_id"}, detail["loc"])
		assert.Equal(t, "uuid_parsing", detail["type"])
		assert.Contains(t, detail["msg"], "valid UUID")
	}
}

func TestContract000Errors(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	r := get(t, h, http.MethodPost, "/v1/trace/call/"+callID)
	require.Equal(t, http.StatusMethodNotAllowed, r.code)
	validate(t, contractSchema(t, "ErrorResponseSchema"), r.body)
	r = get(t, h, http.MethodGet, "/v1/trace/call/"+callID+"/spans")
	require.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "NOT_FOUND", r.json(t)["error_code"])
	r = get(t, h, http.MethodGet, "/v1/trace/call/")
	require.Equal(t, http.StatusUnprocessableEntity, r.code)
}

func TestContract003Spans(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	m := get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex).json(t)
	data := m["data"].(map[string]any)
	assert.Equal(t, fixtureHex, data["id"])
	assert.Equal(t, "trace", data["type"])
	attrs := data["attributes"].(map[string]any)
	assert.Equal(t, false, attrs["is_truncated"])
	spans := attrs["spans"].([]any)
	require.Len(t, spans, 5)
	var prevStart float64
	for _, raw := range spans {
		s := raw.(map[string]any)
		assert.Len(t, s, len(apmFields), "every field the document lists")
		assert.GreaterOrEqual(t, s["startTime"].(float64), prevStart, "sorted by start time")
		prevStart = s["startTime"].(float64)
		assert.Equal(t, fixtureHex, s["traceIDFull"])
		for k := range s["meta"].(map[string]any) {
			assert.False(t, strings.HasPrefix(k, "_"), k)
		}
	}
	// Exact unsigned 64-bit ids need a decoder that keeps integers whole.
	dec := json.NewDecoder(bytes.NewReader(get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex).body))
	dec.UseNumber()
	var exact struct {
		Data struct {
			Attributes struct {
				Spans []map[string]json.Number `json:"-"`
				Raw   []map[string]any         `json:"spans"`
			} `json:"attributes"`
		} `json:"data"`
	}
	require.NoError(t, dec.Decode(&exact))
	root := exact.Data.Attributes.Raw[0]
	assert.Equal(t, json.Number("17213210219539181940"), root["spanID"])  // 0xeee19b7ec3c1b174
	assert.Equal(t, json.Number("15161849952847513100"), root["traceID"]) // 0xd269b633813fc60c
	assert.Equal(t, json.Number("0"), root["parentID"])
	assert.Equal(t, json.Number("1700000000250000000"), root["endTime"])
	orphan := exact.Data.Attributes.Raw[3]
	assert.Equal(t, json.Number("11068046444225730969"), orphan["parentID"], "a span whose parent never arrived keeps its parent id")
}

func TestContract003Mapping(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	spans := get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex).json(t)["data"].(map[string]any)["attributes"].(map[string]any)["spans"].([]any)
	byName := map[string]map[string]any{}
	for _, s := range spans {
		byName[s.(map[string]any)["resource"].(string)] = s.(map[string]any)
	}
	root := byName["GET /checkout"]
	assert.Equal(t, "http.server.request", root["name"])
	assert.Equal(t, "web", root["type"])
	assert.Equal(t, "frontend", root["service"])
	assert.Equal(t, map[string]any{"http.status_code": float64(500)}, root["metrics"])
	meta := root["meta"].(map[string]any)
	assert.Equal(t, "GET", meta["http.method"])
	assert.Equal(t, "server", meta["span.kind"])
	assert.Equal(t, "demo", meta["env"])
	assert.NotContains(t, meta, "_internal")
	assert.NotContains(t, meta, "service.name")
	assert.InDelta(t, 60_000_000, root["self_time"], 0, "250ms minus the client's 10..200ms")

	client := byName["POST"]
	assert.Equal(t, "http.client.request", client["name"])
	assert.Equal(t, "http", client["type"])
	charge := byName["charge card"]
	assert.InDelta(t, 1, charge["error"], 0)
	assert.Equal(t, "Internal", charge["name"])
	assert.Equal(t, "custom", charge["type"])
	assert.Equal(t, "card declined", charge["meta"].(map[string]any)["error.msg"])
	assert.InDelta(t, 42.5, charge["metrics"].(map[string]any)["amount"], 0)
	db := byName["SELECT card"]
	assert.Equal(t, "postgresql.query", db["name"])
	assert.Equal(t, "sql", db["type"])
}

func TestContract003Truncation(t *testing.T) {
	opts := defaultOptions()
	opts.MaxResponseSpans = 2
	h := fixtureHandler(t, opts)
	attrs := get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex).json(t)["data"].(map[string]any)["attributes"].(map[string]any)
	assert.Equal(t, true, attrs["is_truncated"])
	require.Len(t, attrs["spans"], 2)
	assert.Equal(t, "GET /checkout", attrs["spans"].([]any)[0].(map[string]any)["resource"], "the first spans by start time")

	// A byte limit that fits three spans cuts there.
	opts = defaultOptions()
	full := get(t, fixtureHandler(t, opts), http.MethodGet, "/api/v2/trace/"+fixtureHex).body
	opts.MaxResponseBytes = len(full) - 100
	r := get(t, fixtureHandler(t, opts), http.MethodGet, "/api/v2/trace/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code)
	attrs = r.json(t)["data"].(map[string]any)["attributes"].(map[string]any)
	assert.Equal(t, true, attrs["is_truncated"])
	assert.Len(t, attrs["spans"], 4)
	assert.LessOrEqual(t, len(r.body), opts.MaxResponseBytes)

	// One that no span fits in is 413.
	opts.MaxResponseBytes = 200
	r = get(t, fixtureHandler(t, opts), http.MethodGet, "/api/v2/trace/"+fixtureHex)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.code)
	e := r.json(t)["errors"].([]any)[0].(map[string]any)
	assert.Equal(t, "413", e["status"])
	assert.Equal(t, "Request Entity Too Large", e["title"])
}

func TestContract003TruncatedInIndex(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 1 << 20, MaxSpansPerTrace: 1})
	first, _ := fixtureBatches()
	st.Ingest("", first)
	h := NewHandler(st, defaultOptions())
	attrs := get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex).json(t)["data"].(map[string]any)["attributes"].(map[string]any)
	assert.Equal(t, true, attrs["is_truncated"])
	assert.Len(t, attrs["spans"], 1)
	assert.Equal(t, true, get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex).json(t)["is_truncated"])
}

func TestContract003Errors(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	for _, tt := range []struct {
		method, target string
		status         int
		detail         string
		parameter      string
	}{
		{http.MethodGet, "/api/v2/trace/xyz", 400, "32-character hex", "trace_id"},
		{http.MethodGet, "/api/v2/trace/0af7651916cd43dd8448eb211c80319", 400, "32-character hex", "trace_id"},
		{http.MethodGet, "/api/v2/trace/" + strings.Repeat("9", 40), 400, "39 digits", "trace_id"},
		{http.MethodGet, "/api/v2/trace/340282366920938463463374607431768211456", 400, "2^128", "trace_id"},
		{http.MethodGet, "/api/v2/trace/00000000000000000000000000000000", 400, "all-zero", "trace_id"},
		{http.MethodGet, "/api/v2/trace/0", 400, "all-zero", "trace_id"},
		{http.MethodGet, "/api/v2/trace/" + fixtureHex + "?include_fields=spanID,nope", 400, `"nope"`, "include_fields"},
		{http.MethodGet, "/api/v2/trace/0af7651916cd43dd8448eb211c80319c", 404, "not found", ""},
		{http.MethodGet, "/api/v2/trace/" + fixtureHex + "/x", 404, "no route", ""},
		{http.MethodPut, "/api/v2/trace/" + fixtureHex, 405, "GET", ""},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := get(t, h, tt.method, tt.target)
			require.Equal(t, tt.status, r.code, string(r.body))
			errs := r.json(t)["errors"].([]any)
			require.Len(t, errs, 1)
			e := errs[0].(map[string]any)
			assert.Equal(t, fmt.Sprint(tt.status), e["status"])
			assert.Equal(t, http.StatusText(tt.status), e["title"])
			assert.Contains(t, e["detail"], tt.detail)
			if tt.parameter != "" {
				assert.Equal(t, map[string]any{"parameter": tt.parameter}, e["source"])
			}
		})
	}
	// include_fields with only empty entries means every field.
	r := get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex+"?include_fields=,")
	require.Equal(t, http.StatusOK, r.code)
}

// spanWith returns a one-span trace for mapping tests.
func spanWith(kind ptrace.SpanKind, name string, attrs map[string]any) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "My Service!")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{9, 9})
	s.SetSpanID(pcommon.SpanID{1})
	s.SetKind(kind)
	s.SetName(name)
	_ = s.Attributes().FromRaw(attrs)
	return td
}

func TestContract003OperationResourceAndType(t *testing.T) {
	for _, tt := range []struct {
		kind                ptrace.SpanKind
		attrs               map[string]any
		name, resource, typ string
	}{
		{ptrace.SpanKindServer, map[string]any{"http.method": "GET", "http.route": "/a/{id}"}, "http.server.request", "GET /a/{id}", "web"},
		{ptrace.SpanKindServer, map[string]any{"http.request.method": "_OTHER"}, "http.server.request", "HTTP", "web"},
		{ptrace.SpanKindClient, map[string]any{"http.request.method": "POST", "url.template": "/b/{id}", "http.route": "/ignored"}, "http.client.request", "POST /b/{id}", "http"},
		{ptrace.SpanKindClient, map[string]any{"db.system": "Redis", "db.statement": "GET k"}, "redis.query", "GET k", "redis"},
		{ptrace.SpanKindClient, map[string]any{"db.system.name": "neo4j", "db.query.text": "MATCH (n)"}, "neo4j.query", "MATCH (n)", "db"},
		{ptrace.SpanKindServer, map[string]any{"db.system": "mysql"}, "server.request", "op", "web"},
		{ptrace.SpanKindProducer, map[string]any{"messaging.system": "kafka", "messaging.operation": "publish", "messaging.destination.name": "orders"}, "kafka.publish", "publish orders", "custom"},
		{ptrace.SpanKindClient, map[string]any{"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": "GetObject"}, "aws.s3.request", "GetObject S3", "http"},
		{ptrace.SpanKindClient, map[string]any{"rpc.system": "aws-api"}, "aws.client.request", "op", "http"},
		{ptrace.SpanKindServer, map[string]any{"rpc.system": "grpc", "rpc.service": "Greeter", "rpc.method": "Hello"}, "grpc.server.request", "Hello Greeter", "web"},
		{ptrace.SpanKindClient, map[string]any{"faas.invoked_provider": "aws", "faas.invoked_name": "fn"}, "aws.fn.invoke", "op", "http"},
		{ptrace.SpanKindServer, map[string]any{"faas.trigger": "http"}, "http.invoke", "op", "web"},
		{ptrace.SpanKindInternal, map[string]any{"graphql.operation.type": "query", "graphql.operation.name": "Q"}, "graphql.server.request", "query Q", "custom"},
		{ptrace.SpanKindClient, map[string]any{"network.protocol.name": "amqp"}, "amqp.client.request", "op", "http"},
		{ptrace.SpanKindClient, map[string]any{}, "client.request", "op", "http"},
		{ptrace.SpanKindUnspecified, map[string]any{}, "Internal", "op", "custom"},
		{ptrace.SpanKindConsumer, map[string]any{}, "Consumer", "op", "custom"},
		{ptrace.SpanKindServer, map[string]any{"operation.name": "Custom Op", "resource.name": "res", "span.type": "queue"}, "custom_op", "res", "queue"},
		{ptrace.SpanKindClient, map[string]any{"gen_ai.system": "openai", "span.type": "queue"}, "client.request", "op", "llm"},
	} {
		t.Run(tt.name+" "+tt.resource, func(t *testing.T) {
			st := store.New(store.Config{MaxBytes: 1 << 20})
			st.Ingest("", spanWith(tt.kind, "op", tt.attrs))
			h := NewHandler(st, defaultOptions())
			r := get(t, h, http.MethodGet, "/api/v2/trace/09090000000000000000000000000000")
			require.Equal(t, http.StatusOK, r.code)
			s := r.json(t)["data"].(map[string]any)["attributes"].(map[string]any)["spans"].([]any)[0].(map[string]any)
			assert.Equal(t, tt.name, s["name"])
			assert.Equal(t, tt.resource, s["resource"])
			assert.Equal(t, tt.typ, s["type"])
			assert.Equal(t, "my_service", s["service"])
			meta := s["meta"].(map[string]any)
			for _, k := range []string{"operation.name", "resource.name", "span.type"} {
				assert.NotContains(t, meta, k)
			}
		})
	}
}

func TestNormalizeTagValue(t *testing.T) {
	assert.Equal(t, "my_service", normalizeTagValue("My Service!"))
	assert.Equal(t, "a.b/c-d:e_f", normalizeTagValue("A.B/C-D:E_F"))
	assert.Equal(t, "café", normalizeTagValue("Café"))
	assert.Empty(t, normalizeTagValue("!!!"))
	assert.Len(t, normalizeTagValue(strings.Repeat("x", 300)), 200)
}
