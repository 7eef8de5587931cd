// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package remote // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
)

// Errors of a request to a peer or the long-term store. The 000 contract
// answers them with 503 TEMPO_UNAVAILABLE and 504 TEMPO_TIMEOUT_API.
var (
	ErrUnavailable = errors.New("trace store unavailable")
	ErrTimeout     = errors.New("trace store timed out")
)

// get sends a GET and returns the body of a 200, nil for a 404, and an
// error wrapping ErrUnavailable or ErrTimeout otherwise.
func get(ctx context.Context, client *http.Client, u string, header http.Header, maxBytes int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%w: %s answered %s: %s", ErrUnavailable, req.URL.Redacted(), resp.Status, msg)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, classify(err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("%w: %s answered more than %d bytes", ErrUnavailable, req.URL.Redacted(), maxBytes)
	}
	return body, nil
}

// classify wraps a transport error as a timeout or an unavailable store.
func classify(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// getTempoTrace reads Tempo's GET /api/v2/traces/{id} in protobuf: a
// TraceByIDResponse, whose trace (field 1) is encoded as OTLP's
// TracesData (its batches are resource spans, field 1 both).
func getTempoTrace(ctx context.Context, client *http.Client, u string, header http.Header, maxBytes int64) (ptrace.Traces, bool, error) {
	header.Set("Accept", "application/protobuf")
	body, err := get(ctx, client, u, header, maxBytes)
	if err != nil || body == nil {
		return ptrace.Traces{}, false, err
	}
	var trace []byte
	for b := body; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ptrace.Traces{}, false, fmt.Errorf("%w: the answer is not a TraceByIDResponse", ErrUnavailable)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return ptrace.Traces{}, false, fmt.Errorf("%w: the answer is not a TraceByIDResponse", ErrUnavailable)
			}
			trace, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return ptrace.Traces{}, false, fmt.Errorf("%w: the answer is not a TraceByIDResponse", ErrUnavailable)
		}
		b = b[m:]
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(trace)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%w: the trace could not be read: %w", ErrUnavailable, err)
	}
	return td, td.SpanCount() > 0, nil
}

// nativeSearch is the native search answer, as a peer writes it.
type nativeSearch struct {
	Traces []struct {
		TraceID      string `json:"trace_id"`
		Status       string `json:"status"`
		CreatedAt    string `json:"created_at"`
		UpdatedAt    string `json:"updated_at"`
		RootService  string `json:"root_service"`
		RootName     string `json:"root_name"`
		Start        uint64 `json:"start_time_unix_nano"`
		Duration     uint64 `json:"duration_ns"`
		SpanCount    int    `json:"span_count"`
		ErrorCount   int    `json:"error_count"`
		Truncated    bool   `json:"is_truncated"`
		Orphans      int    `json:"orphan_span_count"`
		ServiceCount int    `json:"service_count"`
		MatchedCount int    `json:"matched_span_count"`
		Services     []struct {
			Name       string `json:"name"`
			SpanCount  int    `json:"span_count"`
			ErrorCount int    `json:"error_count"`
		} `json:"services"`
		Matched []struct {
			SpanID      string `json:"span_id"`
			Name        string `json:"name"`
			ServiceName string `json:"service_name"`
			Start       uint64 `json:"start_time_unix_nano"`
			Duration    uint64 `json:"duration_ns"`
		} `json:"matched_spans"`
	} `json:"traces"`
	Partial bool `json:"partial"`
}

// getSummaries reads a peer's native search answer.
func getSummaries(ctx context.Context, client *http.Client, u string, header http.Header, maxBytes int64) ([]search.Summary, bool, error) {
	header.Set("Accept", "application/json")
	body, err := get(ctx, client, u, header, maxBytes)
	if err != nil {
		return nil, false, err
	}
	if body == nil {
		return nil, false, fmt.Errorf("%w: the peer does not serve the native search", ErrUnavailable)
	}
	var ns nativeSearch
	if err := json.Unmarshal(body, &ns); err != nil {
		return nil, false, fmt.Errorf("%w: the search answer could not be read: %w", ErrUnavailable, err)
	}
	out := make([]search.Summary, 0, len(ns.Traces))
	for _, t := range ns.Traces {
		id, err := hex.DecodeString(t.TraceID)
		if err != nil || len(id) != 16 {
			return nil, false, fmt.Errorf("%w: a search answer names trace %q", ErrUnavailable, t.TraceID)
		}
		s := search.Summary{
			ID: [16]byte(id), RootName: t.RootName, RootService: t.RootService, Status: t.Status,
			Start: t.Start, End: t.Start + t.Duration,
			FirstSeen: unixNanos(t.CreatedAt), LastSeen: unixNanos(t.UpdatedAt),
			SpanCount: t.SpanCount, ErrorCount: t.ErrorCount, ServiceCount: t.ServiceCount,
			Orphans: t.Orphans, Truncated: t.Truncated, MatchedCount: t.MatchedCount,
		}
		for _, sv := range t.Services {
			s.Services = append(s.Services, search.ServiceSpans{Name: sv.Name, Spans: sv.SpanCount, Errors: sv.ErrorCount})
		}
		for _, m := range t.Matched {
			var sid [8]byte
			_, _ = hex.Decode(sid[:], []byte(m.SpanID))
			s.Matched = append(s.Matched, search.MatchedSpan{SpanID: sid, Name: m.Name, ServiceName: m.ServiceName, Start: m.Start, Duration: m.Duration})
		}
		out = append(out, s)
	}
	return out, ns.Partial, nil
}

func unixNanos(rfc3339 string) int64 {
	t, err := time.Parse(time.RFC3339Nano, rfc3339)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}
