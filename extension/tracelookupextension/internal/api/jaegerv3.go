// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// Jaeger's api_v3, as the current Jaeger UI calls and validates it (its
// OpenAPI document is in the jaeger-idl module):
//
//	GET /api/v3/services                     {"services":[...]}
//	GET /api/v3/operations?service=&spanKind= (or span_kind) {"operations":[{"name","spanKind"}]}
//	GET /api/v3/traces/{trace_id}            {"result":<OTLP/JSON TracesData>}
//	GET /api/v3/traces?query.*               {"result":<the matching traces' spans>}
//	GET /api/v3/trace-summaries?query.*      {"summaries":[...],"nextPageToken":"..."}
//
// Query parameters are read in both spellings the gateway accepts
// (query.service_name and query.serviceName). Errors are the gateway's
// {"error":{grpcCode, httpCode, message, httpStatus}}.
type jaegerV3 struct{ h *Handler }

// grpcCodes maps the HTTP statuses answered to gRPC status codes.
var grpcCodes = map[int]int{
	http.StatusBadRequest: 3, http.StatusNotFound: 5, http.StatusTooManyRequests: 8,
	http.StatusRequestEntityTooLarge: 8, http.StatusServiceUnavailable: 14,
	http.StatusForbidden: 7, http.StatusUnauthorized: 16, http.StatusMethodNotAllowed: 12,
}

func (jaegerV3) writeError(w http.ResponseWriter, status int, _, message string) {
	code, ok := grpcCodes[status]
	if !ok {
		code = 13 // Internal
	}
	b := append([]byte(`{"error":{"grpcCode":`), strconv.Itoa(code)...)
	b = append(b, `,"httpCode":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = spancodec.AppendJSONString(b, message)
	b = append(b, `,"httpStatus":`...)
	b = spancodec.AppendJSONString(b, http.StatusText(status))
	writeJSON(w, status, append(b, "}}"...))
}

func (j jaegerV3) services(w http.ResponseWriter, _ *http.Request, tenant string, _ url.Values) Outcome {
	if o, off := j.h.searchOff(w, j); off {
		return o
	}
	b := appendStrings([]byte(`{"services":`), j.h.serviceNames(tenant))
	writeJSON(w, http.StatusOK, append(b, '}'))
	return OutcomeFound
}

func (j jaegerV3) operations(w http.ResponseWriter, _ *http.Request, tenant string, query url.Values) Outcome {
	if o, off := j.h.searchOff(w, j); off {
		return o
	}
	service := query.Get("service")
	if service == "" {
		j.writeError(w, http.StatusBadRequest, "", "service is required")
		return OutcomeBadRequest
	}
	kind := query.Get("spanKind")
	if kind == "" {
		kind = query.Get("span_kind") // the name Jaeger deprecated
	}
	b, _ := j.h.appendOperations([]byte(`{"operations":[`), tenant, service, kind)
	writeJSON(w, http.StatusOK, append(b, "]}"...))
	return OutcomeFound
}

// serve answers GET /api/v3/traces/{trace_id}.
func (j jaegerV3) serve(w http.ResponseWriter, r *http.Request, tenant, id string, query url.Values) Outcome {
	cands, err := tempoTraceID(id)
	if err != nil {
		j.writeError(w, http.StatusBadRequest, "", err.Error())
		return OutcomeBadRequest
	}
	for _, p := range []string{"startTime", "start_time", "endTime", "end_time"} {
		if v := query.Get(p); v != "" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				j.writeError(w, http.StatusBadRequest, "", "invalid "+p+": "+strconv.Quote(Echo(v))+" is not an RFC 3339 time")
				return OutcomeBadRequest
			}
		}
	}
	hd, outcome, ok := j.h.findOrAnswer(w, r, j, tenant, cands, func() { j.writeError(w, http.StatusNotFound, "", "trace not found") })
	if !ok {
		return outcome
	}
	t, release, outcome := j.h.assemble(r.Context(), &hd, otlpCost)
	switch outcome {
	case OutcomeBusy:
		writeBusy(w, j)
		return outcome
	case OutcomeNotFound:
		j.writeError(w, http.StatusNotFound, "", "trace not found")
		return outcome
	}
	body, _, reasons, err := otlpCut(t, (&ptrace.JSONMarshaler{}).MarshalTraces, j.h.opts.MaxResponseSpans, j.h.opts.MaxResponseBytes)
	release()
	if err != nil {
		j.writeError(w, http.StatusInternalServerError, "", "the trace could not be written: "+err.Error())
		return OutcomeError
	}
	if len(reasons) > 0 {
		w.Header().Set(truncatedHeader, strings.Join(reasons, ","))
	}
	setSources(w, &hd)
	out := append([]byte(`{"result":{"resourceSpans":`), resourceSpansArray(body)...)
	writeJSON(w, http.StatusOK, append(out, "}}"...))
	return OutcomeFound
}

// writeResult answers traces as one OTLP/JSON TracesData in the result
// envelope: each found trace is assembled, cut to the response limits
// that remain and written in turn, holding one trace's lookup memory at
// a time. Traces left out are named in X-Trace-Truncated.
func (j jaegerV3) writeResult(w http.ResponseWriter, r *http.Request, founds []held) Outcome {
	var reasons []string
	note := func(reason string) {
		if !slices.Contains(reasons, reason) {
			reasons = append(reasons, reason)
		}
	}
	maxBytes, maxSpans := j.h.opts.MaxResponseBytes, j.h.opts.MaxResponseSpans
	b := []byte(`{"result":{"resourceSpans":[`)
	spans := 0
	for i := range founds {
		if maxBytes > 0 && len(b) >= maxBytes {
			note(reasonResponseBytes)
			break
		}
		if maxSpans > 0 && spans >= maxSpans {
			note(reasonResponseSpans)
			break
		}
		t, release, outcome := j.h.assemble(r.Context(), &founds[i], otlpCost)
		if outcome == OutcomeBusy {
			note(reasonLookupMemory)
			break
		}
		if outcome != OutcomeFound {
			continue // it left the index in between
		}
		// What is left of the limits, for this trace.
		leftSpans, leftBytes := 0, 0
		if maxSpans > 0 {
			leftSpans = maxSpans - spans
		}
		if maxBytes > 0 {
			leftBytes = maxBytes - len(b)
		}
		body, kept, cut, err := otlpCut(t, (&ptrace.JSONMarshaler{}).MarshalTraces, leftSpans, leftBytes)
		release()
		if err != nil {
			j.writeError(w, http.StatusInternalServerError, "", "the trace could not be written: "+err.Error())
			return OutcomeError
		}
		for _, c := range cut {
			note(c)
		}
		spans += kept
		if arr := resourceSpansArray(body); len(arr) > 2 {
			if b[len(b)-1] != '[' {
				b = append(b, ',')
			}
			b = append(b, arr[1:len(arr)-1]...)
		}
	}
	if len(reasons) > 0 {
		w.Header().Set(truncatedHeader, strings.Join(reasons, ","))
	}
	writeJSON(w, http.StatusOK, append(b, "]}}"...))
	return OutcomeFound
}

// v3Param reads a query parameter in either spelling.
func v3Param(query url.Values, snake, camel string) string {
	if v := query.Get("query." + snake); v != "" {
		return v
	}
	return query.Get("query." + camel)
}

// v3Query reads the TraceQueryParameters of a search.
func v3Query(query url.Values) (search.Query, error) {
	q := search.Query{Kind: search.AnyKind, Service: v3Param(query, "service_name", "serviceName"), Name: v3Param(query, "operation_name", "operationName")}
	var where search.All
	if f := query.Get("query.filter"); f != "" {
		return q, errors.New("query.filter is not supported: filter with query.service_name, query.operation_name, query.attributes and the duration bounds")
	}
	if a := query.Get("query.attributes"); a != "" {
		var m map[string]string
		if err := json.Unmarshal([]byte(a), &m); err != nil {
			return q, errors.New("invalid query.attributes: it must be a JSON object of strings")
		}
		if len(m) > maxAttrConditions {
			return q, errors.New("at most " + strconv.Itoa(maxAttrConditions) + " attributes")
		}
		pairs := make([][2]string, 0, len(m))
		for k, v := range m {
			pairs = append(pairs, [2]string{k, v})
		}
		slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		q.Attrs, where = tagConditions(pairs)
	}
	for _, p := range []struct {
		snake, camel string
		bound        *uint64
	}{{"start_time_min", "startTimeMin", &q.StartFrom}, {"start_time_max", "startTimeMax", &q.StartTo}} {
		v := v3Param(query, p.snake, p.camel)
		if v == "" {
			return q, errors.New("query.start_time_min and query.start_time_max are required")
		}
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || ts.UnixNano() < 0 {
			return q, errors.New("invalid query." + p.snake + ": " + strconv.Quote(Echo(v)) + " is not an RFC 3339 time")
		}
		*p.bound = uint64(ts.UnixNano())
	}
	if q.StartFrom >= q.StartTo {
		return q, errors.New("query.start_time_min must be before query.start_time_max")
	}
	q.StartTo-- // the maximum is exclusive
	for _, p := range []struct {
		snake, camel string
		op           search.Op
	}{{"duration_min", "durationMin", search.OpGe}, {"duration_max", "durationMax", search.OpLe}} {
		if v := v3Param(query, p.snake, p.camel); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return q, errors.New("invalid query." + p.snake + ": " + strconv.Quote(Echo(v)) + " is not a duration such as 1.5s")
			}
			c, _ := search.NewCompare(search.FieldDuration, 0, "", p.op, search.Literal{Type: search.LitDuration, Int: int64(d)})
			where = append(where, c)
		}
	}
	if len(where) > 0 {
		q.Where = where
	}
	q.Limit = jaegerDefaultLimit
	for _, p := range []struct {
		snake, camel string
		least        int
	}{{"search_depth", "searchDepth", 0}, {"pagination.page_size", "pagination.pageSize", 1}} {
		if v := v3Param(query, p.snake, p.camel); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < p.least {
				return q, errors.New("invalid query." + p.snake + ": " + strconv.Quote(Echo(v)) + " must be an integer of at least " + strconv.Itoa(p.least))
			}
			if n > 0 {
				q.Limit = min(n, search.MaxLimit)
			}
		}
	}
	if v := v3Param(query, "pagination.page_token", "pagination.pageToken"); v != "" {
		k, err := search.DecodeCursor(v)
		if err != nil {
			return q, errors.New("invalid query.pagination.page_token: " + err.Error())
		}
		q.After = k
	}
	return q, nil
}

func (j jaegerV3) run(w http.ResponseWriter, r *http.Request, tenant string, query url.Values, allServices bool) (search.Result, bool) {
	if _, off := j.h.searchOff(w, j); off {
		return search.Result{}, false
	}
	q, err := v3Query(query)
	if err != nil {
		j.writeError(w, http.StatusBadRequest, "", err.Error())
		return search.Result{}, false
	}
	q.AllServices = allServices
	res := j.h.runSearch(r, tenant, q)
	if res.Partial {
		w.Header().Set(searchPartialHeader, "true")
	}
	return res, true
}

// search answers GET /api/v3/traces: the matching traces' spans, whole,
// within the response limits (see writeResult).
func (j jaegerV3) search(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	res, ok := j.run(w, r, tenant, query, false)
	if !ok {
		return OutcomeBadRequest
	}
	return j.writeResult(w, r, j.h.heldOf(r, tenant, res.Traces))
}

// summaries answers GET /api/v3/trace-summaries.
func (j jaegerV3) summaries(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	res, ok := j.run(w, r, tenant, query, true)
	if !ok {
		return OutcomeBadRequest
	}
	b := append(make([]byte, 0, 256+384*len(res.Traces)), `{"summaries":[`...)
	for i := range res.Traces {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTraceSummary(b, &res.Traces[i])
	}
	b = append(b, `],"nextPageToken":`...)
	next := ""
	if res.HasNext {
		next = search.EncodeCursor(res.Next)
	}
	b = spancodec.AppendJSONString(b, next)
	writeJSON(w, http.StatusOK, append(b, '}'))
	return OutcomeFound
}

// appendTraceSummary appends one TraceSummary: 64-bit times as decimal
// strings (proto3 JSON), services sorted by name.
func appendTraceSummary(b []byte, s *search.Summary) []byte {
	b = append(b, `{"traceId":"`...)
	b = hex.AppendEncode(b, s.ID[:])
	b = append(b, `","rootServiceName":`...)
	b = spancodec.AppendJSONString(b, s.RootService)
	b = append(b, `,"rootOperationName":`...)
	b = spancodec.AppendJSONString(b, s.RootName)
	b = append(b, `,"minStartTimeUnixNano":"`...)
	b = strconv.AppendUint(b, s.Start, 10)
	b = append(b, `","maxEndTimeUnixNano":"`...)
	b = strconv.AppendUint(b, max(s.End, s.Start), 10)
	b = append(b, `","spanCount":`...)
	b = strconv.AppendInt(b, int64(s.SpanCount), 10)
	b = append(b, `,"errorSpanCount":`...)
	b = strconv.AppendInt(b, int64(s.ErrorCount), 10)
	b = append(b, `,"orphanSpanCount":`...)
	b = strconv.AppendInt(b, int64(s.Orphans), 10)
	b = append(b, `,"services":[`...)
	services := slices.Clone(s.Services)
	slices.SortFunc(services, func(a, b search.ServiceSpans) int { return strings.Compare(a.Name, b.Name) })
	for i, svc := range services {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = spancodec.AppendJSONString(b, svc.Name)
		b = append(b, `,"spanCount":`...)
		b = strconv.AppendInt(b, int64(svc.Spans), 10)
		b = append(b, `,"errorSpanCount":`...)
		b = strconv.AppendInt(b, int64(svc.Errors), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
