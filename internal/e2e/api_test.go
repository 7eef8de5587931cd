// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// httpClient talks to the API. Keep-alives are off so that no idle
// connection outlives a test (goleak checks the whole package).
var httpClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// response is one HTTP answer, read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode reads the body as JSON; numbers in interface values stay json.Number
// so that an integer can be told from a float.
func (r *response) decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("status %d, body %q is not the expected JSON: %w", r.Status, r.Body, err)
	}
	return nil
}

func do(method, url string, headers map[string]string) (*response, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

func get(url string, headers map[string]string) (*response, error) {
	return do(http.MethodGet, url, headers)
}

// mustDo sends one request and fails the test when no answer arrives.
func mustDo(t *testing.T, method, url string, headers map[string]string) *response {
	t.Helper()
	resp, err := do(method, url, headers)
	require.NoErrorf(t, err, "%s %s", method, url)
	return resp
}

// stopPolling, returned from a poll condition, fails the poll at once.
type stopPolling struct{ err error }

func (s stopPolling) Error() string { return s.err.Error() }

// poll calls cond until it returns nil, and fails the test with the last
// error when that has not happened within timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		var stop stopPolling
		if errors.As(err, &stop) {
			require.FailNowf(t, "gave up waiting", "waiting for %s: %v", what, stop.err)
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "timed out", "waiting %s for %s; last error: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomTraceID(t *testing.T) string {
	t.Helper()
	var id [16]byte
	_, err := rand.Read(id[:])
	require.NoError(t, err)
	id[0] |= 1 // never all zero
	return hex.EncodeToString(id[:])
}

// apiError is the native error body.
type apiError struct {
	Status    string `json:"status"`
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// apiTrace is the native GET /api/v1/traces/{id} document (the fields the test reads).
type apiTrace struct {
	ID             string    `json:"id"`
	TraceID        string    `json:"trace_id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Status         string    `json:"status"`
	StartedAt      string    `json:"started_at"`
	EndedAt        string    `json:"ended_at"`
	CreatedAt      string    `json:"created_at"`
	UpdatedAt      string    `json:"updated_at"`
	ServiceName    *string   `json:"service_name"`
	RootService    *string   `json:"root_service"`
	DurationMS     uint64    `json:"duration_ms"`
	SpanCount      int       `json:"span_count"`
	ErrorCount     int       `json:"error_count"`
	IsTruncated    bool      `json:"is_truncated"`
	Spans          []apiSpan `json:"spans"`
}

type apiSpan struct {
	ID                 string         `json:"id"`
	TraceID            string         `json:"trace_id"`
	SpanID             string         `json:"span_id"`
	ParentSpanID       *string        `json:"parent_span_id"`
	Name               string         `json:"name"`
	Kind               string         `json:"kind"`
	StatusCode         string         `json:"status_code"`
	StatusMessage      string         `json:"status_message"`
	StartTimeUnixNano  uint64         `json:"start_time_unix_nano"`
	EndTimeUnixNano    uint64         `json:"end_time_unix_nano"`
	DurationNS         uint64         `json:"duration_ns"`
	Attributes         map[string]any `json:"attributes"`
	ResourceAttributes map[string]any `json:"resource_attributes"`
	Events             []apiEvent     `json:"events"`
	Children           []apiSpan      `json:"children"`
}

type apiEvent struct {
	Name         string         `json:"name"`
	TimeUnixNano uint64         `json:"time_unix_nano"`
	Time         string         `json:"time"`
	Attributes   map[string]any `json:"attributes"`
}

// requireError checks a native error answer.
func requireError(t *testing.T, resp *response, status int, code string) {
	t.Helper()
	require.Equalf(t, status, resp.Status, "body %s", resp.Body)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var e apiError
	require.NoError(t, resp.decode(&e))
	require.Equal(t, "error", e.Status)
	require.Equal(t, code, e.ErrorCode)
	require.NotEmpty(t, e.Message)
}
