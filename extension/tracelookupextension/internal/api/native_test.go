// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fixtureHex = "5b8efff798038103d269b633813fc60c"

func TestNativeTree(t *testing.T) {
	h := fixtureHandler(t, Options{})
	r := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	m := r.json(t)

	assert.Equal(t, fixtureHex, m["id"])
	assert.Equal(t, fixtureHex, m["trace_id"])
	assert.Equal(t, "default", m["organization_id"])
	assert.Equal(t, "GET /checkout", m["name"])
	assert.Equal(t, "frontend", m["service_name"])
	assert.Equal(t, "frontend", m["root_service"])
	assert.Equal(t, "error", m["status"])
	assert.Equal(t, "2023-11-14T22:13:20.000000000Z", m["started_at"])
	assert.Equal(t, "2023-11-14T22:13:20.250000000Z", m["ended_at"])
	assert.InDelta(t, 250, m["duration_ms"], 0)
	assert.InDelta(t, 5, m["span_count"], 0)
	assert.InDelta(t, 1, m["error_count"], 0)
	assert.Equal(t, "2026-01-02T03:04:05.000000006Z", m["created_at"])
	assert.Equal(t, "2026-01-02T03:04:06.000000006Z", m["updated_at"])
	assert.Equal(t, false, m["is_truncated"])
	for _, k := range []string{"execution_id", "execution_type", "user_id", "user_email", "user_name", "user_avatar"} {
		v, ok := m[k]
		assert.True(t, ok, k)
		assert.Nil(t, v, k)
	}

	roots := m["spans"].([]any)
	require.Len(t, roots, 2, "the root and the span whose parent never arrived")
	root := roots[0].(map[string]any)
	orphan := roots[1].(map[string]any)
	assert.Equal(t, "eee19b7ec3c1b174", root["id"])
	assert.Nil(t, root["parent_span_id"])
	assert.Equal(t, "ccc19b7ec3c1b177", orphan["span_id"])
	assert.Equal(t, "9999999999999999", orphan["parent_span_id"])
	assert.Equal(t, "CONSUMER", orphan["kind"])

	assert.Equal(t, "SERVER", root["kind"])
	assert.Equal(t, "UNSET", root["status_code"])
	assert.InDelta(t, 1_700_000_000_000_000_000, root["start_time_unix_nano"], 0)
	assert.InDelta(t, 250_000_000, root["duration_ns"], 0)
	assert.InDelta(t, 250, root["duration_ms"], 0)
	attrs := root["attributes"].(map[string]any)
	assert.InDelta(t, 500, attrs["http.response.status_code"], 0, "numbers stay numbers")
	assert.Equal(t, map[string]any{"service.name": "frontend", "deployment.environment": "demo"}, root["resource_attributes"])

	client := root["children"].([]any)[0].(map[string]any)
	assert.Equal(t, "POST payment", client["name"])
	assert.Equal(t, true, client["attributes"].(map[string]any)["retried"])
	charge := client["children"].([]any)[0].(map[string]any)
	assert.Equal(t, "charge card", charge["name"])
	assert.Equal(t, "ERROR", charge["status_code"])
	assert.Equal(t, "card declined", charge["status_message"])
	assert.Equal(t, []any{"card", "eu"}, charge["attributes"].(map[string]any)["tags"], "arrays stay arrays")
	assert.Equal(t, map[string]any{"service.name": "payment"}, charge["resource_attributes"])
	events := charge["events"].([]any)
	require.Len(t, events, 1)
	assert.Equal(t, "exception", events[0].(map[string]any)["name"])
	assert.Equal(t, "2023-11-14T22:13:20.150000000Z", events[0].(map[string]any)["time"])
	links := charge["links"].([]any)
	require.Len(t, links, 1)
	assert.Equal(t, "01000000000000000000000000000000", links[0].(map[string]any)["trace_id"])
	late := charge["children"].([]any)[0].(map[string]any)
	assert.Equal(t, "SELECT card", late["name"])
	assert.Equal(t, "2026-01-02T03:04:06.000000006Z", late["created_at"], "a late span keeps its own arrival time")
}

func TestNativeFlat(t *testing.T) {
	h := fixtureHandler(t, Options{})
	for _, q := range []string{"true", "1", "TRUE"} {
		m := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?flat="+q).json(t)
		spans := m["spans"].([]any)
		require.Len(t, spans, 5)
		var names []string
		for _, s := range spans {
			names = append(names, s.(map[string]any)["name"].(string))
			assert.Empty(t, s.(map[string]any)["children"])
		}
		assert.Equal(t, []string{"GET /checkout", "POST payment", "charge card", "async audit", "SELECT card"}, names)
	}
	m := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?flat=false").json(t)
	assert.Len(t, m["spans"], 2)
}

func TestNativeIncludeFields(t *testing.T) {
	h := fixtureHandler(t, Options{})
	m := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?include_fields=span_id,name&include_fields=kind").json(t)
	root := m["spans"].([]any)[0].(map[string]any)
	assert.Len(t, root, 4, "the fields asked for, and children, which carry the tree")
	assert.Equal(t, "GET /checkout", root["name"])
	child := root["children"].([]any)[0].(map[string]any)
	assert.Equal(t, "CLIENT", child["kind"])
	assert.Equal(t, "5b8efff798038103d269b633813fc60c", m["trace_id"], "trace fields are always there")

	m = get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?flat=true&include_fields=span_id").json(t)
	for _, s := range m["spans"].([]any) {
		assert.Len(t, s, 1)
	}
	r := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?include_fields=span_id,bogus")
	require.Equal(t, http.StatusBadRequest, r.code)
	assert.Equal(t, "INVALID_PARAMETER", r.json(t)["error_code"])
	assert.Contains(t, r.json(t)["message"], `"bogus"`)
}

func TestNativeIDForms(t *testing.T) {
	h := fixtureHandler(t, Options{})
	for _, id := range []string{
		strings.ToUpper(fixtureHex),
		"d269b633813fc60c",                        // low 64 bits, hex
		"15161849952847513100",                    // low 64 bits, decimal
		"121702245401190319682828931810593850892", // the whole id, decimal
	} {
		r := get(t, h, http.MethodGet, "/api/v1/traces/"+id)
		require.Equal(t, http.StatusOK, r.code, id)
		assert.Equal(t, fixtureHex, r.json(t)["id"], id)
	}
}

func TestNativeErrors(t *testing.T) {
	var outcomes []Outcome
	h := fixtureHandler(t, Options{OnLookup: func(_ Route, o Outcome, _ string, _ time.Duration) { outcomes = append(outcomes, o) }})
	tests := []struct {
		method, target string
		code           int
		errorCode      string
		msg            string
	}{
		{http.MethodGet, "/api/v1/traces/not-hex", 400, "INVALID_TRACE_ID", "32-character hex"},
		{http.MethodGet, "/api/v1/traces/00000000000000000000000000000000", 400, "INVALID_TRACE_ID", "all-zero"},
		{http.MethodGet, "/api/v1/traces/" + strings.Repeat("1", 40), 400, "INVALID_TRACE_ID", "39 digits"},
		{http.MethodGet, "/api/v1/traces/340282366920938463463374607431768211456", 400, "INVALID_TRACE_ID", "2^128"},
		{http.MethodGet, "/api/v1/traces/", 400, "INVALID_TRACE_ID", "must be"},
		{http.MethodGet, "/api/v1/traces/%00", 400, "INVALID_TRACE_ID", "must be"},
		{http.MethodGet, "/api/v1/traces/" + fixtureHex + "?flat=maybe", 400, "INVALID_PARAMETER", "flat"},
		{http.MethodGet, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c", 404, "TRACE_NOT_FOUND", "not found"},
		{http.MethodGet, "/api/v1/traces/1", 404, "TRACE_NOT_FOUND", "not found"},
		{http.MethodGet, "/api/v1/traces/" + fixtureHex + "/spans", 404, "NOT_FOUND", "no route"},
		{http.MethodGet, "/nope", 404, "NOT_FOUND", "no route"},
		{http.MethodGet, "/", 404, "NOT_FOUND", "no route"},
		{http.MethodPost, "/api/v1/traces/" + fixtureHex, 405, "METHOD_NOT_ALLOWED", "GET"},
		{http.MethodDelete, "/api/v1/traces/" + fixtureHex, 405, "METHOD_NOT_ALLOWED", "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := get(t, h, tt.method, tt.target)
			require.Equal(t, tt.code, r.code, string(r.body))
			m := r.json(t)
			assert.Equal(t, "error", m["status"])
			assert.Equal(t, tt.errorCode, m["error_code"])
			assert.Contains(t, m["message"], tt.msg)
			assert.Len(t, m, 3)
		})
	}
	assert.Contains(t, outcomes, OutcomeBadRequest)
	assert.Contains(t, outcomes, OutcomeNotFound)
	r := get(t, h, http.MethodPost, "/api/v1/traces/"+fixtureHex)
	assert.Equal(t, "GET, HEAD", r.hdr.Get("Allow"))
}
