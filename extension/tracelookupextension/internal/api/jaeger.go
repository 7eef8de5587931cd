// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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

// Jaeger's JSON query API, the one Jaeger UI and Grafana's Jaeger data
// source call:
//
//	GET /api/services                        {"data":["svc",...], ...}
//	GET /api/services/{service}/operations   {"data":["op",...], ...}
//	GET /api/operations?service=&spanKind=   {"data":[{"name","spanKind"}], ...}
//	GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&limit=&start=&end=
//	GET /api/traces/{id}
//
// Every answer is the envelope {data, total, limit, offset, errors}; an
// error is that envelope with errors [{code, msg}]. Every route is also
// served under /jaeger. Spans are mapped from OTLP as the collector's
// Jaeger translator maps them: times in microseconds, the parent as a
// CHILD_OF reference and links as FOLLOWS_FROM, kind and status as the
// span.kind, otel.status_code, otel.status_description and error tags,
// events as logs, and each distinct resource as a process.
type jaeger struct{ h *Handler }

func (jaeger) writeError(w http.ResponseWriter, status int, _, message string) {
	b := append([]byte(`{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":`), strconv.Itoa(status)...)
	b = append(b, `,"msg":`...)
	b = spancodec.AppendJSONString(b, message)
	writeJSON(w, status, append(b, "}]}"...))
}

// writeData answers the envelope around data (a JSON array) of total items.
func writeJaegerData(w http.ResponseWriter, data []byte, total int) {
	b := append(append(make([]byte, 0, len(data)+64), `{"data":`...), data...)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	writeJSON(w, http.StatusOK, append(b, `,"limit":0,"offset":0,"errors":null}`...))
}

func (j jaeger) services(w http.ResponseWriter, _ *http.Request, tenant string, _ url.Values) Outcome {
	if o, off := j.h.searchOff(w, j); off {
		return o
	}
	names := j.h.serviceNames(tenant)
	writeJaegerData(w, appendStrings(nil, names), len(names))
	return OutcomeFound
}

// operationNames answers the legacy /api/services/{service}/operations.
func (j jaeger) operationNames(w http.ResponseWriter, r *http.Request, tenant string, _ url.Values) Outcome {
	if o, off := j.h.searchOff(w, j); off {
		return o
	}
	ops, _ := j.h.store.Operations(tenant, r.PathValue("service"))
	var names []string
	for _, op := range ops {
		names = append(names, op.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	writeJaegerData(w, appendStrings(nil, names), len(names))
	return OutcomeFound
}

// appendOperations appends a service's operations of kind ("" for any) as
// Jaeger's [{"name","spanKind"}] items, and says how many.
func (h *Handler) appendOperations(b []byte, tenant, service, kind string) ([]byte, int) {
	ops, _ := h.store.Operations(tenant, service)
	n := 0
	for _, op := range ops {
		k := jaegerKind(op.Kind)
		if kind != "" && kind != k {
			continue
		}
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = spancodec.AppendJSONString(b, op.Name)
		b = append(b, `,"spanKind":"`+k+`"}`...)
	}
	return b, n
}

// serviceNames lists the tenant's services by name.
func (h *Handler) serviceNames(tenant string) []string {
	var names []string
	for _, s := range h.store.Services(tenant) {
		names = append(names, s.Name)
	}
	return names
}

// jaegerKind is a span kind as Jaeger names it ("" for unspecified).
func jaegerKind(kind int32) string {
	if kind <= spancodec.KindUnspecified || int(kind) >= len(search.KindKeywords) {
		return ""
	}
	return search.KindKeywords[kind]
}

func (j jaeger) operations(w http.ResponseWriter, _ *http.Request, tenant string, query url.Values) Outcome {
	if o, off := j.h.searchOff(w, j); off {
		return o
	}
	service := query.Get("service")
	if service == "" {
		j.writeError(w, http.StatusBadRequest, "", "parameter 'service' is required")
		return OutcomeBadRequest
	}
	b, n := j.h.appendOperations([]byte{'['}, tenant, service, query.Get("spanKind"))
	writeJaegerData(w, append(b, ']'), n)
	return OutcomeFound
}

// serve answers GET /api/traces/{id}: data holds the one trace.
func (j jaeger) serve(w http.ResponseWriter, r *http.Request, tenant, id string, _ url.Values) Outcome {
	cands, err := traceid.Parse(id)
	if err != nil {
		if cands, err = tempoTraceID(id); err != nil { // Jaeger trims leading zeros of a 64-bit id
			j.writeError(w, http.StatusBadRequest, "", "cannot parse traceID param: "+err.Error())
			return OutcomeBadRequest
		}
	}
	hd, outcome, ok := j.h.findOrAnswer(w, r, j, tenant, cands, func() { j.writeError(w, http.StatusNotFound, "", "trace not found") })
	if !ok {
		return outcome
	}
	b, wrote, outcome := j.appendTrace(r, nil, &hd, j.h.opts.MaxResponseBytes)
	switch outcome {
	case OutcomeBusy:
		writeBusy(w, j)
		return outcome
	case OutcomeNotFound:
		j.writeError(w, http.StatusNotFound, "", "trace not found")
		return outcome
	}
	if wrote < 0 {
		j.writeError(w, http.StatusRequestEntityTooLarge, "", "not even one span of the trace fits in max_response_mib")
		return OutcomeError
	}
	setSources(w, &hd)
	writeJaegerData(w, append(append([]byte{'['}, b...), ']'), 1)
	return OutcomeFound
}

// appendTrace appends found trace f in Jaeger's JSON within budget bytes
// (0: no budget), its cut reasons as the trace's warnings; it returns how
// many spans it wrote, -1 when not one fits.
func (j jaeger) appendTrace(r *http.Request, b []byte, hd *held, budget int) ([]byte, int, Outcome) {
	t, release, outcome := j.h.assemble(r.Context(), hd, renderCost)
	if outcome != OutcomeFound {
		return b, 0, outcome
	}
	defer release()
	base := baseCut(t, false).reasons
	n := len(t.Spans)
	if m := j.h.opts.MaxResponseSpans; m > 0 && n > m {
		n = m
		base = append(base, reasonResponseSpans)
	}
	byCount := n
	out, n, _ := fitSpans(n, budget, func(k int) []byte {
		reasons := slices.Clone(base)
		if k < byCount {
			reasons = append(reasons, reasonResponseBytes)
		}
		return appendJaegerTrace(nil, t, k, reasons)
	})
	if n == 0 && len(t.Spans) > 0 {
		return b, -1, OutcomeFound
	}
	return append(b, out...), n, OutcomeFound
}

// jaegerTraceID is a trace id as Jaeger writes it: 16 hex characters when
// the high half is zero, else 32.
func jaegerTraceID(b []byte, id [16]byte) []byte {
	if binary.BigEndian.Uint64(id[:8]) == 0 {
		return hex.AppendEncode(b, id[8:])
	}
	return hex.AppendEncode(b, id[:])
}

// appendJaegerTrace appends the first n spans of t (by start) as one
// Jaeger trace, with warnings saying why spans are missing.
func appendJaegerTrace(b []byte, t *traceview.Trace, n int, warnings []string) []byte {
	type process struct{ key, id string }
	var procs []process
	procOf := map[*spancodec.Resource]string{}
	b = append(b, `{"traceID":"`...)
	b = jaegerTraceID(b, t.ID)
	b = append(b, `","spans":[`...)
	var tags []byte
	for i := range t.Spans[:n] {
		s := &t.Spans[i]
		pid, ok := procOf[s.Resource]
		if !ok {
			tags = appendProcess(tags[:0], s.Resource)
			k := slices.IndexFunc(procs, func(p process) bool { return p.key == string(tags) })
			if k < 0 {
				procs = append(procs, process{key: string(tags), id: "p" + strconv.Itoa(len(procs)+1)})
				k = len(procs) - 1
			}
			pid = procs[k].id
			procOf[s.Resource] = pid
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJaegerSpan(b, s, pid)
	}
	b = append(b, `],"processes":{`...)
	for i, p := range procs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"`+p.id+`":`...)
		b = append(b, p.key...)
	}
	b = append(b, `},"warnings":`...)
	if len(warnings) == 0 {
		return append(b, "null}"...)
	}
	for i := range warnings {
		warnings[i] = "spans left out of this trace: " + warnings[i]
	}
	return append(appendStrings(b, warnings), '}')
}

// appendProcess appends a resource as a Jaeger process: its service name
// and its other attributes as tags.
func appendProcess(b []byte, r *spancodec.Resource) []byte {
	service := "unknown_service"
	var attrs []spancodec.KeyValue
	if r != nil {
		attrs = r.Attributes
		if v, ok := spancodec.Lookup(attrs, "service.name"); ok && v.AsString() != "" {
			service = v.AsString()
		}
	}
	b = append(b, `{"serviceName":`...)
	b = spancodec.AppendJSONString(b, service)
	b = append(b, `,"tags":[`...)
	n := 0
	for i := range attrs {
		if attrs[i].Key == "service.name" {
			continue
		}
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = appendJaegerTag(b, attrs[i].Key, attrs[i].Value)
	}
	return append(b, "]}"...)
}

func appendJaegerSpan(b []byte, s *spancodec.Span, pid string) []byte {
	b = append(b, `{"traceID":"`...)
	b = jaegerTraceID(b, s.TraceID)
	b = append(b, `","spanID":"`...)
	b = hex.AppendEncode(b, s.SpanID[:])
	b = append(b, `","operationName":`...)
	b = spancodec.AppendJSONString(b, s.Name)
	b = append(b, `,"references":[`...)
	refs := 0
	ref := func(kind string, trace [16]byte, span [8]byte) {
		if refs++; refs > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"refType":"`+kind+`","traceID":"`...)
		b = jaegerTraceID(b, trace)
		b = append(b, `","spanID":"`...)
		b = hex.AppendEncode(b, span[:])
		b = append(b, `"}`...)
	}
	if s.HasParent() {
		ref("CHILD_OF", s.TraceID, s.ParentSpanID)
	}
	for i := range s.Links {
		ref("FOLLOWS_FROM", s.Links[i].TraceID, s.Links[i].SpanID)
	}
	b = append(b, `],"startTime":`...)
	b = strconv.AppendUint(b, s.StartUnixNano/1000, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendUint(b, spanDurationNanos(s)/1000, 10)
	b = append(b, `,"tags":[`...)
	n := 0
	tag := func(k string, v spancodec.Value) {
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = appendJaegerTag(b, k, v)
	}
	for i := range s.Attributes {
		tag(s.Attributes[i].Key, s.Attributes[i].Value)
	}
	if k := jaegerKind(s.Kind); k != "" {
		tag("span.kind", spancodec.StrValue(k))
	}
	switch s.StatusCode {
	case spancodec.StatusOK:
		tag("otel.status_code", spancodec.StrValue("OK"))
	case spancodec.StatusError:
		tag("otel.status_code", spancodec.StrValue("ERROR"))
		tag("error", spancodec.BoolValue(true))
	}
	if s.StatusMessage != "" {
		tag("otel.status_description", spancodec.StrValue(s.StatusMessage))
	}
	if s.TraceState != "" {
		tag("w3c.tracestate", spancodec.StrValue(s.TraceState))
	}
	if r := s.Resource; r != nil && r.ScopeName != "" {
		tag("otel.scope.name", spancodec.StrValue(r.ScopeName))
		if r.ScopeVersion != "" {
			tag("otel.scope.version", spancodec.StrValue(r.ScopeVersion))
		}
	}
	b = append(b, `],"logs":[`...)
	for i := range s.Events {
		e := &s.Events[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"timestamp":`...)
		b = strconv.AppendUint(b, e.TimeUnixNano/1000, 10)
		b = append(b, `,"fields":[`...)
		b = appendJaegerTag(b, "event", spancodec.StrValue(e.Name))
		for k := range e.Attributes {
			b = append(b, ',')
			b = appendJaegerTag(b, e.Attributes[k].Key, e.Attributes[k].Value)
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"processID":"`+pid+`","warnings":null}`...)
	return b
}

func spanDurationNanos(s *spancodec.Span) uint64 {
	if s.EndUnixNano < s.StartUnixNano {
		return 0
	}
	return s.EndUnixNano - s.StartUnixNano
}

// appendJaegerTag appends one typed tag: strings, bools, int64 and float64
// as themselves, bytes as base64 binary, arrays and maps as JSON text.
func appendJaegerTag(b []byte, key string, v spancodec.Value) []byte {
	b = append(b, `{"key":`...)
	b = spancodec.AppendJSONString(b, key)
	switch v.Type {
	case spancodec.ValueBool:
		b = append(b, `,"type":"bool","value":`...)
		b = strconv.AppendBool(b, v.Bool())
	case spancodec.ValueInt:
		b = append(b, `,"type":"int64","value":`...)
		b = strconv.AppendInt(b, v.Int(), 10)
	case spancodec.ValueDouble:
		b = append(b, `,"type":"float64","value":`...)
		b = spancodec.AppendJSONFloat(b, v.Double())
	case spancodec.ValueBytes:
		b = append(b, `,"type":"binary","value":"`...)
		b = base64.StdEncoding.AppendEncode(b, []byte(v.Str))
		b = append(b, '"')
	default:
		b = append(b, `,"type":"string","value":`...)
		b = spancodec.AppendJSONString(b, v.AsString())
	}
	return append(b, '}')
}

// Search.

// jaegerDefaultLimit is Jaeger's default of limit; maxAttrConditions
// bounds the tags of one search.
const (
	jaegerDefaultLimit = 20
	maxAttrConditions  = 64
)

func (j jaeger) search(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, off := j.h.searchOff(w, j); off {
		return o
	}
	bad := func(message string) Outcome {
		j.writeError(w, http.StatusBadRequest, "", message)
		return OutcomeBadRequest
	}
	if ids := query["traceID"]; len(ids) > 0 {
		return j.byIDs(w, r, tenant, ids)
	}
	q := search.Query{Kind: search.AnyKind, Service: query.Get("service"), Name: query.Get("operation")}
	if q.Service == "" {
		return bad("parameter 'service' is required")
	}
	attrs, where, err := jaegerTags(query)
	if err != nil {
		return bad(err.Error())
	}
	q.Attrs = attrs
	for _, p := range []struct {
		name string
		op   search.Op
	}{{"minDuration", search.OpGe}, {"maxDuration", search.OpLe}} {
		if v := query.Get(p.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return bad("cannot parse " + p.name + ": " + strconv.Quote(Echo(v)) + " is not a duration such as 1.2s or 100ms")
			}
			c, _ := search.NewCompare(search.FieldDuration, 0, "", p.op, search.Literal{Type: search.LitDuration, Int: int64(d)})
			where = append(where, c)
		}
	}
	if len(where) > 0 {
		q.Where = where
	}
	if v := query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("cannot parse limit: " + strconv.Quote(Echo(v)) + " is not a non-negative integer")
		}
		q.Limit = min(n, search.MaxLimit)
	}
	if q.Limit == 0 {
		q.Limit = jaegerDefaultLimit
	}
	for _, p := range []struct {
		name  string
		bound *uint64
	}{{"start", &q.StartFrom}, {"end", &q.StartTo}} {
		if v := query.Get(p.name); v != "" {
			us, err := strconv.ParseUint(v, 10, 64)
			if err != nil || us > (1<<63-1)/1000 {
				return bad("cannot parse " + p.name + ": " + strconv.Quote(Echo(v)) + " is not unix microseconds")
			}
			*p.bound = us * 1000
		}
	}
	if q.StartTo != 0 {
		q.StartTo += 999 // the end's microsecond, whole
	}
	res := j.h.runSearch(r, tenant, q)
	if res.Partial {
		w.Header().Set(searchPartialHeader, "true")
	}
	founds := j.h.heldOf(r, tenant, res.Traces)
	return j.writeTraces(w, r, founds)
}

// byIDs answers /api/traces?traceID=...: the traces named, those held.
func (j jaeger) byIDs(w http.ResponseWriter, r *http.Request, tenant string, ids []string) Outcome {
	if len(ids) > search.MaxLimit {
		j.writeError(w, http.StatusBadRequest, "", "at most "+strconv.Itoa(search.MaxLimit)+" traceID parameters")
		return OutcomeBadRequest
	}
	var founds []held
	for _, id := range ids {
		cands, err := traceid.Parse(id)
		if err != nil {
			if cands, err = tempoTraceID(id); err != nil {
				j.writeError(w, http.StatusBadRequest, "", "cannot parse traceID param: "+err.Error())
				return OutcomeBadRequest
			}
		}
		if hd, ok, _ := j.h.findTrace(r, tenant, cands); ok {
			founds = append(founds, hd)
		}
	}
	return j.writeTraces(w, r, founds)
}

// writeTraces answers whole traces, as Jaeger's search does, until the
// response limits are reached; the traces left out are named in errors.
func (j jaeger) writeTraces(w http.ResponseWriter, r *http.Request, founds []held) Outcome {
	b := append(make([]byte, 0, 4096), '[')
	n, spans, left := 0, 0, 0
	maxBytes := j.h.opts.MaxResponseBytes
	for i := range founds {
		budget := 0
		if maxBytes > 0 {
			if budget = maxBytes - len(b); budget <= 0 {
				left += len(founds) - i
				break
			}
		}
		if m := j.h.opts.MaxResponseSpans; m > 0 && spans >= m {
			left += len(founds) - i
			break
		}
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		var wrote int
		var outcome Outcome
		b, wrote, outcome = j.appendTrace(r, b, &founds[i], budget)
		switch {
		case outcome == OutcomeFound && wrote >= 0:
			n++
			spans += wrote
		case outcome == OutcomeFound, outcome == OutcomeBusy:
			// Not one span fits, or the lookup memory stays full: the
			// rest would not fare better.
			b = b[:mark]
			left += len(founds) - i
		default:
			b = b[:mark] // it left the index in between
			continue
		}
		if left > 0 {
			break
		}
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"limit":0,"offset":0,"errors":`...)
	if left == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, `[{"code":413,"msg":`...)
		b = spancodec.AppendJSONString(b, strconv.Itoa(left)+" more matching traces were left out: the response reached max_response_spans or max_response_bytes, or the lookup memory was full")
		b = append(b, "}]"...)
	}
	writeJSON(w, http.StatusOK, append(append([]byte(`{"data":`), b...), '}'))
	return OutcomeFound
}

// jaegerTags reads the tags parameter (a JSON object of strings) and the
// repeatable tag parameter (key:value), as Jaeger's query service does.
// The tags the mapping makes of a span's status and kind (error,
// otel.status_code, span.kind) are read as conditions on them.
func jaegerTags(query url.Values) ([]store.AttrQuery, search.All, error) {
	var pairs [][2]string
	for _, raw := range query["tags"] {
		var m map[string]string
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, nil, errors.New("malformed 'tags' parameter: it must be a JSON object of strings, e.g. {\"http.status_code\":\"500\"}")
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			pairs = append(pairs, [2]string{k, m[k]})
		}
	}
	for _, kv := range query["tag"] {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return nil, nil, errors.New("malformed 'tag' parameter " + strconv.Quote(Echo(kv)) + ": expected 'key:value'")
		}
		pairs = append(pairs, [2]string{k, v})
	}
	if len(pairs) > maxAttrConditions {
		return nil, nil, errors.New("at most " + strconv.Itoa(maxAttrConditions) + " tags")
	}
	attrs, where := tagConditions(pairs)
	return attrs, where, nil
}

// tagConditions reads Jaeger tags as attribute equalities, and those the
// mapping makes of a span's status and kind as conditions on them.
func tagConditions(pairs [][2]string) ([]store.AttrQuery, search.All) {
	var attrs []store.AttrQuery
	var where search.All
	keyword := func(f search.Field, op search.Op, k string) {
		c, _ := search.NewCompare(f, 0, "", op, search.Literal{Type: search.LitKeyword, Str: k})
		where = append(where, c)
	}
	for _, p := range pairs {
		switch k, v := p[0], p[1]; {
		case k == "error" && (v == "true" || v == "false"):
			op := search.OpEq
			if v == "false" {
				op = search.OpNe
			}
			keyword(search.FieldStatus, op, search.KeywordStatusError)
		case k == "otel.status_code" && (v == "OK" || v == "ERROR"):
			keyword(search.FieldStatus, search.OpEq, strings.ToLower(v))
		case k == "span.kind" && slices.Contains(search.KindKeywords[1:], v):
			keyword(search.FieldKind, search.OpEq, v)
		default:
			attrs = append(attrs, store.ParseAttrQuery(k, v))
		}
	}
	return attrs, where
}
