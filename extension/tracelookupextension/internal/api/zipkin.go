// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"cmp"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Zipkin's v2 read API, for Grafana's Zipkin data source, under /zipkin
// (its unprefixed /api/v2/trace/{id} is the 003 contract's):
//
//	GET /zipkin/api/v2/services                         ["svc",...]
//	GET /zipkin/api/v2/spans?serviceName=               ["span name",...]
//	GET /zipkin/api/v2/remoteServices?serviceName=      ["svc",...]
//	GET /zipkin/api/v2/traces?serviceName=&spanName=&annotationQuery=&minDuration=&maxDuration=&endTs=&lookback=&limit=
//	GET /zipkin/api/v2/trace/{traceId}                  [span,...]
//
// Spans are Zipkin's JSON v2, mapped from OTLP as the collector's Zipkin
// translator maps them: microsecond times, kind in capitals (none for
// internal), service.name as the local endpoint's service, peer.service
// as the remote one, attributes as string tags with otel.status_code and
// error for the status, events as annotations. Names keep their case
// (Zipkin's server lowers it; span names are matched without regard to
// case). Errors are plain text, as Zipkin's are.
type zipkin struct{ h *Handler }

func (zipkin) writeError(w http.ResponseWriter, status int, _, message string) {
	writeText(w, status, message)
}

func (z zipkin) services(w http.ResponseWriter, _ *http.Request, tenant string, _ url.Values) Outcome {
	if o, off := z.h.searchOff(w, z); off {
		return o
	}
	writeJSON(w, http.StatusOK, appendStrings(nil, z.h.serviceNames(tenant)))
	return OutcomeFound
}

func (z zipkin) spanNames(w http.ResponseWriter, _ *http.Request, tenant string, query url.Values) Outcome {
	if o, off := z.h.searchOff(w, z); off {
		return o
	}
	service := query.Get("serviceName")
	if service == "" {
		z.writeError(w, http.StatusBadRequest, "", "serviceName is required")
		return OutcomeBadRequest
	}
	ops, _ := z.h.store.Operations(tenant, service)
	var names []string
	for _, op := range ops {
		names = append(names, op.Name)
	}
	slices.Sort(names)
	writeJSON(w, http.StatusOK, appendStrings(nil, slices.Compact(names)))
	return OutcomeFound
}

// remoteServices lists the peer.service values of a service's client and
// producer spans among the newest traces.
func (z zipkin) remoteServices(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, off := z.h.searchOff(w, z); off {
		return o
	}
	service := query.Get("serviceName")
	if service == "" {
		z.writeError(w, http.StatusBadRequest, "", "serviceName is required")
		return OutcomeBadRequest
	}
	q := search.Query{Kind: search.AnyKind, Service: service, Limit: search.MaxLimit, MatchedSpans: 20,
		Report: []search.AttrRef{{Scope: search.ScopeSpanAttr, Key: "peer.service"}}}
	res := search.Run(r.Context(), z.h.store, tenant, q, z.h.opts.Search)
	var names []string
	for i := range res.Traces {
		for _, m := range res.Traces[i].Matched {
			for _, a := range m.Attributes {
				if a.Value.Type == spancodec.ValueStr && !slices.Contains(names, a.Value.Str) {
					names = append(names, a.Value.Str)
				}
			}
		}
	}
	slices.Sort(names)
	writeJSON(w, http.StatusOK, appendStrings(nil, names))
	return OutcomeFound
}

// serve answers GET /zipkin/api/v2/trace/{traceId}.
func (z zipkin) serve(w http.ResponseWriter, r *http.Request, tenant, id string, _ url.Values) Outcome {
	cands, err := tempoTraceID(id)
	if err != nil {
		z.writeError(w, http.StatusBadRequest, "", err.Error())
		return OutcomeBadRequest
	}
	hd, outcome, ok := z.h.findOrAnswer(w, r, z, tenant, cands, func() { z.writeError(w, http.StatusNotFound, "", "trace "+Echo(id)+" not found") })
	if !ok {
		return outcome
	}
	b, reasons, outcome := z.appendTrace(r, nil, &hd, z.h.opts.MaxResponseBytes)
	switch outcome {
	case OutcomeBusy:
		writeBusy(w, z)
		return outcome
	case OutcomeNotFound:
		z.writeError(w, http.StatusNotFound, "", "trace "+Echo(id)+" not found")
		return outcome
	}
	if b == nil {
		z.writeError(w, http.StatusRequestEntityTooLarge, "", "not even one span of the trace fits in max_response_mib")
		return OutcomeError
	}
	if len(reasons) > 0 {
		w.Header().Set(truncatedHeader, strings.Join(reasons, ","))
	}
	setSources(w, &hd)
	writeJSON(w, http.StatusOK, b)
	return OutcomeFound
}

// appendTrace appends found trace f as a JSON array of Zipkin spans, cut
// to max_response_spans and to budget bytes (0: no budget); it returns
// why spans are missing, and b as it was, nil if it was, when not one
// span fits.
func (z zipkin) appendTrace(r *http.Request, b []byte, hd *held, budget int) ([]byte, []string, Outcome) {
	t, release, outcome := z.h.assemble(r.Context(), hd, renderCost)
	if outcome != OutcomeFound {
		return b, nil, outcome
	}
	defer release()
	reasons := baseCut(t, false).reasons
	n := len(t.Spans)
	if m := z.h.opts.MaxResponseSpans; m > 0 && n > m {
		n = m
		reasons = append(reasons, reasonResponseSpans)
	}
	out, kept, byBytes := fitSpans(n, budget, func(k int) []byte { return appendZipkinSpans(nil, t, k) })
	if kept == 0 && len(t.Spans) > 0 {
		return b, nil, OutcomeError
	}
	if byBytes {
		reasons = append(reasons, reasonResponseBytes)
	}
	return append(b, out...), reasons, OutcomeFound
}

// zipkinKinds are Zipkin's kinds by OTLP kind; internal has none.
var zipkinKinds = [...]string{"", "", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"}

func appendZipkinSpans(b []byte, t *traceview.Trace, n int) []byte {
	b = append(b, '[')
	for i := range t.Spans[:n] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendZipkinSpan(b, &t.Spans[i])
	}
	return append(b, ']')
}

func appendZipkinSpan(b []byte, s *spancodec.Span) []byte {
	b = append(b, `{"traceId":"`...)
	b = hex.AppendEncode(b, s.TraceID[:])
	b = append(b, '"')
	if s.HasParent() {
		b = append(b, `,"parentId":"`...)
		b = hex.AppendEncode(b, s.ParentSpanID[:])
		b = append(b, '"')
	}
	b = append(b, `,"id":"`...)
	b = hex.AppendEncode(b, s.SpanID[:])
	b = append(b, '"')
	if s.Kind >= 0 && int(s.Kind) < len(zipkinKinds) && zipkinKinds[s.Kind] != "" {
		b = append(b, `,"kind":"`+zipkinKinds[s.Kind]+`"`...)
	}
	b = append(b, `,"name":`...)
	b = spancodec.AppendJSONString(b, s.Name)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendUint(b, s.StartUnixNano/1000, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendUint(b, max(spanDurationNanos(s)/1000, 1), 10) // Zipkin's durations are positive
	b = append(b, `,"localEndpoint":{"serviceName":`...)
	b = spancodec.AppendJSONString(b, serviceOf(s))
	b = append(b, '}')
	if v, ok := s.Attr("peer.service"); ok && v.AsString() != "" {
		b = append(b, `,"remoteEndpoint":{"serviceName":`...)
		b = spancodec.AppendJSONString(b, v.AsString())
		b = append(b, '}')
	}
	if len(s.Events) > 0 {
		b = append(b, `,"annotations":[`...)
		for i := range s.Events {
			e := &s.Events[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"timestamp":`...)
			b = strconv.AppendUint(b, e.TimeUnixNano/1000, 10)
			value := e.Name
			if len(e.Attributes) > 0 {
				value += " " + string(spancodec.AppendJSONObject(nil, e.Attributes))
			}
			b = append(b, `,"value":`...)
			b = spancodec.AppendJSONString(b, value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"tags":{`...)
	n := 0
	tag := func(k, v string) {
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = spancodec.AppendJSONString(b, k)
		b = append(b, ':')
		b = spancodec.AppendJSONString(b, v)
	}
	for i := range s.Attributes {
		if k := s.Attributes[i].Key; k != "peer.service" {
			tag(k, s.Attributes[i].Value.AsString())
		}
	}
	switch s.StatusCode {
	case spancodec.StatusOK:
		tag("otel.status_code", "OK")
	case spancodec.StatusError:
		tag("otel.status_code", "ERROR")
		tag("error", cmp.Or(s.StatusMessage, "true"))
	}
	if r := s.Resource; r != nil && r.ScopeName != "" {
		tag("otel.scope.name", r.ScopeName)
		if r.ScopeVersion != "" {
			tag("otel.scope.version", r.ScopeVersion)
		}
	}
	return append(b, "}}"...)
}

// serviceOf is a span's service.name, or Zipkin's name for none.
func serviceOf(s *spancodec.Span) string {
	if name := s.ServiceName(); name != "" {
		return name
	}
	return "unknown"
}

// zipkinDefaultLookback is Zipkin's default lookback: a day.
const zipkinDefaultLookback = 24 * time.Hour

// traces answers GET /zipkin/api/v2/traces: whole traces, newest first.
func (z zipkin) traces(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, off := z.h.searchOff(w, z); off {
		return o
	}
	q, err := zipkinQuery(query, time.Now())
	if err != nil {
		z.writeError(w, http.StatusBadRequest, "", err.Error())
		return OutcomeBadRequest
	}
	res := z.h.runSearch(r, tenant, q)
	if res.Partial {
		w.Header().Set(searchPartialHeader, "true")
	}
	b := append(make([]byte, 0, 4096), '[')
	n, spans := 0, 0
	var reasons []string
	maxBytes := z.h.opts.MaxResponseBytes
	for i := range res.Traces {
		budget := 0
		if maxBytes > 0 {
			if budget = maxBytes - len(b); budget <= 0 {
				reasons = append(reasons, reasonResponseBytes)
				break
			}
		}
		if m := z.h.opts.MaxResponseSpans; m > 0 && spans >= m {
			reasons = append(reasons, reasonResponseSpans)
			break
		}
		hd, ok, _ := z.h.findTrace(r, tenant, []traceid.Candidate{{ID: res.Traces[i].ID}})
		if !ok {
			continue
		}
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		var cut []string
		var outcome Outcome
		b, cut, outcome = z.appendTrace(r, b, &hd, budget)
		if outcome == OutcomeNotFound {
			b = b[:mark] // it left the index in between
			continue
		}
		if outcome != OutcomeFound { // the lookup memory stays full, or not one span fits
			b = b[:mark]
			reasons = append(reasons, leftOutReason(outcome))
			break
		}
		n++
		spans += res.Traces[i].SpanCount
		reasons = append(reasons, cut...)
	}
	if len(reasons) > 0 {
		slices.Sort(reasons)
		w.Header().Set(truncatedHeader, strings.Join(slices.Compact(reasons), ","))
	}
	writeJSON(w, http.StatusOK, append(b, ']'))
	return OutcomeFound
}

// zipkinQuery reads the search parameters of Zipkin's /api/v2/traces:
// the span-level ones hold on one span; minDuration and maxDuration are
// microseconds, endTs and lookback milliseconds.
func zipkinQuery(query url.Values, now time.Time) (search.Query, error) {
	q := search.Query{Kind: search.AnyKind, Service: query.Get("serviceName"), Limit: 10}
	var where search.All
	if name := query.Get("spanName"); name != "" && name != "all" {
		c, _ := search.NewCompare(search.FieldName, 0, "", search.OpEqualFold, search.Literal{Type: search.LitString, Str: name})
		where = append(where, c)
	}
	if v := query.Get("remoteServiceName"); v != "" {
		q.Attrs = append(q.Attrs, store.ParseAttrQuery("peer.service", v))
	}
	if a := query.Get("annotationQuery"); a != "" {
		for _, term := range strings.Split(a, " and ") {
			k, v, hasValue := strings.Cut(strings.TrimSpace(term), "=")
			switch {
			case k == "":
				return q, errors.New("annotationQuery: an empty term in " + strconv.Quote(Echo(a)))
			case k == "error" && !hasValue:
				c, _ := search.NewCompare(search.FieldStatus, 0, "", search.OpEq, search.Literal{Type: search.LitKeyword, Str: search.KeywordStatusError})
				where = append(where, c)
			case hasValue:
				attrs, conds := tagConditions([][2]string{{k, v}})
				q.Attrs = append(q.Attrs, attrs...)
				where = append(where, conds...)
			default:
				return q, errors.New("annotationQuery: " + strconv.Quote(Echo(k)) + " needs a value (key=value); only error stands alone")
			}
		}
	}
	for _, p := range []struct {
		name string
		op   search.Op
	}{{"minDuration", search.OpGe}, {"maxDuration", search.OpLe}} {
		if v := query.Get(p.name); v != "" {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil || us < 0 || us > int64(time.Duration(1<<63-1)/time.Microsecond) {
				return q, errors.New(p.name + " must be microseconds, got " + strconv.Quote(Echo(v)))
			}
			c, _ := search.NewCompare(search.FieldDuration, 0, "", p.op, search.Literal{Type: search.LitDuration, Int: us * 1000})
			where = append(where, c)
		}
	}
	if len(where) > 0 {
		q.Where = where
	}
	end, lookback := now, zipkinDefaultLookback
	for _, p := range []struct {
		name string
		set  func(int64)
	}{
		{"endTs", func(ms int64) { end = time.UnixMilli(ms) }},
		{"lookback", func(ms int64) { lookback = time.Duration(ms) * time.Millisecond }},
	} {
		if v := query.Get(p.name); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
				return q, errors.New(p.name + " must be positive milliseconds, got " + strconv.Quote(Echo(v)))
			}
			p.set(ms)
		}
	}
	q.StartTo = uint64(max(end.UnixNano(), 0))
	q.StartFrom = uint64(max(end.Add(-lookback).UnixNano(), 0))
	if v := query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return q, errors.New("limit must be a positive integer, got " + strconv.Quote(Echo(v)))
		}
		q.Limit = min(n, search.MaxLimit)
	}
	return q, nil
}
