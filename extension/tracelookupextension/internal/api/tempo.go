// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"cmp"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceql"
)

// Tempo's HTTP query API, as Grafana's Tempo data source calls it:
//
//	GET /api/echo                            "echo"
//	GET /api/status/buildinfo                {"version":"2.6.0",...}
//	GET /api/v2/traces/{id}                  TraceByIDResponse, protobuf or JSON
//	GET /api/traces/{id}                     Trace (v1), protobuf; JSON at /tempo/api/traces/{id}
//	GET /api/search?q=&limit=&spss=&start=&end=
//	GET /api/v2/search/tags, /api/search/tags
//	GET /api/v2/search/tag/{tag}/values, /api/search/tag/{tag}/values
//
// Every route is also served under /tempo, which no other contract shares.
// Errors are plain text, as Tempo's are. tempopb.Trace is wire-identical
// to OTLP TracesData (field 1, repeated ResourceSpans), so pdata writes it.
type tempo struct{ h *Handler }

func (tempo) writeError(w http.ResponseWriter, status int, _, message string) {
	writeText(w, status, message)
}

// serve answers GET /api/v2/traces/{id}.
func (t tempo) serve(w http.ResponseWriter, r *http.Request, tenant, id string, query url.Values) Outcome {
	return t.trace(w, r, tenant, id, query, true)
}

func writeText(w http.ResponseWriter, status int, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(message + "\n"))
}

func writeBody(w http.ResponseWriter, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// echo answers exactly what Tempo answers, which data sources check.
func (t tempo) echo(w http.ResponseWriter, _ *http.Request, _ string, _ url.Values) Outcome {
	writeBody(w, "text/plain; charset=utf-8", []byte("echo"))
	return OutcomeFound
}

// tempoAPIVersion is the Tempo release whose query API this one answers
// as (v2 trace by id, spansets, scoped tags): Grafana reads it from
// buildinfo to pick the features it uses.
const tempoAPIVersion = "2.6.0"

// buildinfo answers what Tempo's /api/status/buildinfo answers.
func (t tempo) buildinfo(w http.ResponseWriter, _ *http.Request, _ string, _ url.Values) Outcome {
	b := append([]byte(`{"version":"`+tempoAPIVersion+`","revision":"otelcol-tracelookup","branch":"","buildUser":"","buildDate":"","goVersion":`), strconv.Quote(runtime.Version())...)
	writeJSON(w, http.StatusOK, append(b, '}'))
	return OutcomeFound
}

// tempoTraceID reads an id as Tempo does, 1 to 32 hex characters left-
// padded with zeros, then in our own forms (decimal; 16 characters also
// match a stored trace by its low 64 bits).
func tempoTraceID(s string) ([]traceid.Candidate, error) {
	var out []traceid.Candidate
	if n := len(s); n > 0 && n <= 32 && isHex(s) {
		var c traceid.Candidate
		padded := strings.Repeat("0", 32-n) + s
		_, _ = hex.Decode(c.ID[:], []byte(padded))
		c.Is64Bit = n <= 16
		if c.ID != ([16]byte{}) {
			out = append(out, c)
		}
	}
	more, _ := traceid.Parse(s)
	for _, c := range more {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("invalid trace id " + strconv.Quote(Echo(s)) + ": a trace id is 1 to 32 hex characters (or " + traceid.Accepted + ")")
	}
	return out, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// wantsProtobuf says whether the client asked for protobuf, as Grafana does.
func wantsProtobuf(r *http.Request) bool {
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "application/protobuf") || strings.Contains(a, "application/x-protobuf") {
			return true
		}
	}
	return false
}

// checkTimeRange refuses start and end that are not unix seconds; Tempo
// reads them to pick blocks, which an in-memory index has no need of.
func checkTimeRange(query url.Values) error {
	for _, p := range []string{"start", "end"} {
		if v := query.Get(p); v != "" {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return errors.New("invalid " + p + ": " + strconv.Quote(Echo(v)) + " is not unix seconds")
			}
		}
	}
	return nil
}

// trace answers a trace by id: v2 wraps it in a TraceByIDResponse.
func (t tempo) trace(w http.ResponseWriter, r *http.Request, tenant, id string, query url.Values, v2 bool) Outcome {
	cands, err := tempoTraceID(id)
	if err != nil {
		t.writeError(w, http.StatusBadRequest, "", err.Error())
		return OutcomeBadRequest
	}
	if err := checkTimeRange(query); err != nil {
		t.writeError(w, http.StatusBadRequest, "", err.Error())
		return OutcomeBadRequest
	}
	notFound := func() Outcome {
		t.writeError(w, http.StatusNotFound, "", "trace not found")
		return OutcomeNotFound
	}
	hd, outcome, ok := t.h.findOrAnswer(w, r, t, tenant, cands, func() { notFound() })
	if !ok {
		return outcome
	}
	tr, release, outcome := t.h.assemble(r.Context(), &hd, otlpCost)
	switch outcome {
	case OutcomeBusy:
		writeBusy(w, t)
		return outcome
	case OutcomeNotFound:
		return notFound()
	}
	defer release()
	proto := wantsProtobuf(r)
	marshal := func(td ptrace.Traces) ([]byte, error) {
		if proto {
			return (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		}
		return (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	}
	body, _, reasons, err := otlpCut(tr, marshal, t.h.opts.MaxResponseSpans, t.h.opts.MaxResponseBytes)
	if err != nil {
		t.writeError(w, http.StatusInternalServerError, "", "the trace could not be written: "+err.Error())
		return OutcomeError
	}
	if len(reasons) > 0 {
		w.Header().Set(truncatedHeader, strings.Join(reasons, ","))
	}
	message := ""
	if len(reasons) > 0 {
		message = "partial trace: " + strings.Join(reasons, ", ")
		if tr.Partial != "" {
			message += " (" + tr.Partial + ")"
		}
	}
	setSources(w, &hd)
	switch {
	case proto && v2:
		// TraceByIDResponse: 1 trace (always written: Grafana reads it),
		// 3 status (PARTIAL = 1), 4 message.
		out := protowire.AppendTag(nil, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, body)
		if message != "" {
			out = protowire.AppendTag(out, 3, protowire.VarintType)
			out = protowire.AppendVarint(out, 1)
			out = protowire.AppendTag(out, 4, protowire.BytesType)
			out = protowire.AppendString(out, message)
		}
		writeBody(w, "application/protobuf", out)
	case proto:
		writeBody(w, "application/protobuf", body)
	case v2:
		out := append([]byte(`{"trace":`), body...)
		if message != "" {
			out = append(out, `,"status":"PARTIAL","message":`...)
			out = spancodec.AppendJSONString(out, message)
		}
		writeBody(w, "application/json", append(out, '}'))
	default:
		// v1 JSON names the resource spans "batches", as Tempo writes them.
		writeBody(w, "application/json", append([]byte(`{"batches":`), append(resourceSpansArray(body), '}')...))
	}
	return OutcomeFound
}

// resourceSpansArray is the array in pdata's OTLP/JSON of a TracesData
// ({"resourceSpans":[...]}, or {} when empty).
func resourceSpansArray(body []byte) []byte {
	const head = `{"resourceSpans":`
	if len(body) > len(head) && string(body[:len(head)]) == head {
		return body[len(head) : len(body)-1]
	}
	return []byte("[]")
}

// Search.

// Tempo's search bounds.
const (
	tempoDefaultSpss = 3
	tempoMaxSpss     = 100
)

func (t tempo) search(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, off := t.h.searchOff(w, t); off {
		return o
	}
	bad := func(message string) Outcome {
		t.writeError(w, http.StatusBadRequest, "", message)
		return OutcomeBadRequest
	}
	if query.Has("tags") {
		return bad("the tags search is not supported: search with a TraceQL query, use q, e.g. q={resource.service.name=\"checkout\"}")
	}
	q, err := traceql.Parse(query.Get("q"))
	if err != nil {
		return bad("invalid TraceQL query: " + err.Error())
	}
	if q.Limit, err = intParam(query, "limit", search.DefaultLimit, 1, search.MaxLimit); err != nil {
		return bad(err.Error())
	}
	if q.MatchedSpans, err = intParam(query, "spss", tempoDefaultSpss, 1, tempoMaxSpss); err != nil {
		return bad(err.Error())
	}
	for _, p := range []struct {
		name  string
		bound *uint64
	}{{"minDuration", &q.MinDuration}, {"maxDuration", &q.MaxDuration}} {
		if v := query.Get(p.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return bad("invalid " + p.name + ": " + strconv.Quote(Echo(v)) + " is not a duration such as 250ms")
			}
			*p.bound = uint64(d)
		}
	}
	start, end, err := unixSecondsWindow(query)
	if err != nil {
		return bad(err.Error())
	}
	q.StartFrom, q.StartTo = start, end
	res := t.h.runSearch(r, tenant, q)
	if res.Partial {
		w.Header().Set(searchPartialHeader, "true")
	}
	b := append(make([]byte, 0, 256+512*len(res.Traces)), `{"traces":[`...)
	for i := range res.Traces {
		if m := t.h.opts.MaxResponseBytes; m > 0 && len(b) >= m {
			w.Header().Set(truncatedHeader, reasonResponseBytes) // the traces past it are left out
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTempoTrace(b, &res.Traces[i])
	}
	b = append(b, `],"metrics":{"inspectedTraces":`...)
	b = strconv.AppendInt(b, int64(res.Scanned), 10)
	b = append(b, "}}"...)
	writeJSON(w, http.StatusOK, b)
	return OutcomeFound
}

// searchPartialHeader says a search stopped at its budget; Tempo's answer
// has no field for it.
const searchPartialHeader = "X-Search-Partial"

// unixSecondsWindow reads start and end (unix seconds, end inclusive to
// its last nanosecond) as a window of trace starts; 0 is no bound.
func unixSecondsWindow(query url.Values) (from, to uint64, err error) {
	read := func(name string) (uint64, error) {
		v := query.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(1<<63-1)/1e9-1 {
			return 0, errors.New("invalid " + name + ": " + strconv.Quote(Echo(v)) + " is not unix seconds")
		}
		return n, nil
	}
	start, err := read("start")
	if err != nil {
		return 0, 0, err
	}
	end, err := read("end")
	if err != nil {
		return 0, 0, err
	}
	if end != 0 && start > end {
		return 0, 0, errors.New("invalid start and end: start is after end")
	}
	from = start * 1e9
	if end != 0 {
		to = (end+1)*1e9 - 1
	}
	return from, to, nil
}

// intParam reads an integer parameter within [lo, hi], def when absent.
func intParam(query url.Values, name string, def, lo, hi int) (int, error) {
	v := query.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errors.New("invalid " + name + ": " + strconv.Quote(Echo(v)) + " must be an integer from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi))
	}
	return n, nil
}

// appendTempoTrace appends one TraceSearchMetadata in Tempo's JSON: 64-bit
// numbers as strings, durationMs a number, one spanset of the matched spans.
func appendTempoTrace(b []byte, s *search.Summary) []byte {
	b = append(b, `{"traceID":"`...)
	b = hex.AppendEncode(b, s.ID[:])
	b = append(b, `","rootServiceName":`...)
	b = spancodec.AppendJSONString(b, cmp.Or(s.RootService, "<root span not yet received>"))
	if s.RootName != "" {
		b = append(b, `,"rootTraceName":`...)
		b = spancodec.AppendJSONString(b, s.RootName)
	}
	b = append(b, `,"startTimeUnixNano":"`...)
	b = strconv.AppendUint(b, s.Start, 10)
	b = append(b, `","durationMs":`...)
	b = strconv.AppendUint(b, s.DurationNanos()/1e6, 10)
	b = append(b, `,"spanSets":[{"spans":[`...)
	for i := range s.Matched {
		m := &s.Matched[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"spanID":"`...)
		b = hex.AppendEncode(b, m.SpanID[:])
		b = append(b, `","name":`...)
		b = spancodec.AppendJSONString(b, m.Name)
		b = append(b, `,"startTimeUnixNano":"`...)
		b = strconv.AppendUint(b, m.Start, 10)
		b = append(b, `","durationNanos":"`...)
		b = strconv.AppendUint(b, m.Duration, 10)
		b = append(b, '"')
		if len(m.Attributes) > 0 {
			b = append(b, `,"attributes":`...)
			b = appendOTLPAttributes(b, m.Attributes)
		}
		b = append(b, '}')
	}
	b = append(b, `],"matched":`...)
	b = strconv.AppendInt(b, int64(s.MatchedCount), 10)
	return append(b, "}]}"...)
}

// appendOTLPAttributes appends scalar attributes as OTLP/JSON KeyValues.
func appendOTLPAttributes(b []byte, attrs []spancodec.KeyValue) []byte {
	b = append(b, '[')
	for i := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = spancodec.AppendJSONString(b, attrs[i].Key)
		b = append(b, `,"value":{`...)
		switch v := attrs[i].Value; v.Type {
		case spancodec.ValueInt:
			b = append(b, `"intValue":"`...)
			b = strconv.AppendInt(b, v.Int(), 10)
			b = append(b, '"')
		case spancodec.ValueDouble:
			b = append(b, `"doubleValue":`...)
			b = spancodec.AppendJSONFloat(b, v.Double())
		case spancodec.ValueBool:
			b = append(b, `"boolValue":`...)
			b = strconv.AppendBool(b, v.Bool())
		default:
			b = append(b, `"stringValue":`...)
			b = spancodec.AppendJSONString(b, v.AsString())
		}
		b = append(b, "}}"...)
	}
	return append(b, ']')
}

// Tags and their values.

// tagScopes are Tempo's tag scopes, in the order it lists them.
var tagScopes = []string{search.ScopeResource, search.ScopeSpan, "intrinsic"}

// tags answers /api/v2/search/tags ({"scopes":[...]}) and, v1,
// /api/search/tags ({"tagNames":[...]}).
func (t tempo) tags(v2 bool) endpoint {
	return func(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
		if o, off := t.h.searchOff(w, t); off {
			return o
		}
		scope := query.Get("scope")
		if scope != "" && scope != "none" && scope != "all" && !slices.Contains(tagScopes, scope) {
			t.writeError(w, http.StatusBadRequest, "", "invalid scope "+strconv.Quote(Echo(scope))+": use resource, span, intrinsic or none")
			return OutcomeBadRequest
		}
		if err := checkTimeRange(query); err != nil {
			t.writeError(w, http.StatusBadRequest, "", err.Error())
			return OutcomeBadRequest
		}
		keys, _ := search.AttributeKeys(r.Context(), t.h.store, tenant, t.h.opts.Search)
		byScope := map[string][]string{"intrinsic": traceql.Intrinsics()}
		for _, k := range keys {
			byScope[k.Scope] = append(byScope[k.Scope], k.Key)
		}
		b := make([]byte, 0, 1024)
		if !v2 {
			var names []string
			for _, k := range keys {
				names = append(names, k.Key)
			}
			slices.Sort(names)
			b = appendStrings(append(b, `{"tagNames":`...), slices.Compact(names))
			writeJSON(w, http.StatusOK, append(b, '}'))
			return OutcomeFound
		}
		b = append(b, `{"scopes":[`...)
		n := 0
		for _, s := range tagScopes {
			if scope != "" && scope != "none" && scope != "all" && s != scope {
				continue
			}
			if n++; n > 1 {
				b = append(b, ',')
			}
			b = append(b, `{"name":"`+s+`","tags":`...)
			b = appendStrings(b, byScope[s])
			b = append(b, '}')
		}
		writeJSON(w, http.StatusOK, append(b, "]}"...))
		return OutcomeFound
	}
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = spancodec.AppendJSONString(b, s)
	}
	return append(b, ']')
}

// tagValue is one value of a tag with its Tempo type.
type tagValue struct{ typ, value string }

// maxTagValues bounds one tag's value listing.
const maxTagValues = 1000

// tagValues answers /api/v2/search/tag/{tag}/values ({"tagValues":[{type,
// value}]}, the tag scoped as TraceQL writes it) and, v1,
// /api/search/tag/{tag}/values ({"tagValues":["..."]}, an unscoped tag).
// A q query narrows the values to the spans that match it.
func (t tempo) tagValues(v2 bool) endpoint {
	return func(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
		if o, off := t.h.searchOff(w, t); off {
			return o
		}
		tag := r.PathValue("tag")
		field, scope, key := search.FieldAttr, search.ScopeAny, tag
		if v2 {
			var ok bool
			if field, scope, key, ok = parseTag(tag); !ok {
				t.writeError(w, http.StatusBadRequest, "", "invalid tag "+strconv.Quote(Echo(tag))+": name an intrinsic ("+strings.Join(traceql.Intrinsics(), ", ")+") or a scoped attribute (resource.x, span.x, .x)")
				return OutcomeBadRequest
			}
		}
		if err := checkTimeRange(query); err != nil {
			t.writeError(w, http.StatusBadRequest, "", err.Error())
			return OutcomeBadRequest
		}
		q, err := traceql.Parse(query.Get("q"))
		if err != nil {
			t.writeError(w, http.StatusBadRequest, "", "invalid TraceQL query in q: "+err.Error())
			return OutcomeBadRequest
		}
		var values []tagValue
		if q.Where == nil {
			values = t.allTagValues(r, tenant, field, scope, key)
		} else {
			values = t.matchingTagValues(r, tenant, q, field, scope, key)
		}
		if len(values) > maxTagValues {
			values = values[:maxTagValues]
		}
		b := append(make([]byte, 0, 64+48*len(values)), `{"tagValues":[`...)
		for i, v := range values {
			if i > 0 {
				b = append(b, ',')
			}
			if !v2 {
				b = spancodec.AppendJSONString(b, v.value)
				continue
			}
			b = append(b, `{"type":"`+v.typ+`","value":`...)
			b = spancodec.AppendJSONString(b, v.value)
			b = append(b, '}')
		}
		writeJSON(w, http.StatusOK, append(b, "]}"...))
		return OutcomeFound
	}
}

// parseTag reads a v2 tag: an intrinsic, or resource.x, span.x or .x.
func parseTag(tag string) (search.Field, search.Scope, string, bool) {
	for _, p := range []struct {
		prefix string
		scope  search.Scope
	}{{"resource.", search.ScopeResourceAttr}, {"span.", search.ScopeSpanAttr}, {".", search.ScopeAny}} {
		if key, ok := strings.CutPrefix(tag, p.prefix); ok && key != "" {
			return search.FieldAttr, p.scope, key, true
		}
	}
	f, ok := traceql.Intrinsic(tag)
	return f, 0, "", ok
}

// allTagValues lists a tag's values among the tenant's newest traces (see
// search.AttributeValues), or from the catalog for names and services.
func (t tempo) allTagValues(r *http.Request, tenant string, field search.Field, scope search.Scope, key string) []tagValue {
	var out []tagValue
	switch field {
	case search.FieldAttr:
		in := ""
		switch scope {
		case search.ScopeSpanAttr:
			in = search.ScopeSpan
		case search.ScopeResourceAttr:
			in = search.ScopeResource
		}
		vals, _ := search.ScopedAttributeValues(r.Context(), t.h.store, tenant, key, in, maxTagValues, t.h.opts.Search)
		for _, v := range vals {
			out = append(out, tagValue{tempoType(v.Type), v.Value})
		}
	case search.FieldStatus:
		for _, k := range search.StatusKeywords {
			out = append(out, tagValue{"keyword", k})
		}
	case search.FieldKind:
		for _, k := range search.KindKeywords {
			out = append(out, tagValue{"keyword", k})
		}
	case search.FieldRootService:
		for _, s := range t.h.store.Services(tenant) {
			out = append(out, tagValue{"string", s.Name})
		}
	case search.FieldName, search.FieldRootName:
		var names []string
		for _, s := range t.h.store.Services(tenant) {
			ops, _ := t.h.store.Operations(tenant, s.Name)
			for _, op := range ops {
				names = append(names, op.Name)
			}
			if len(names) > 4*maxTagValues {
				break
			}
		}
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			out = append(out, tagValue{"string", n})
		}
	}
	return out
}

// matchingTagValues lists a tag's values on the spans that match q, among
// the newest matching traces.
func (t tempo) matchingTagValues(r *http.Request, tenant string, q search.Query, field search.Field, scope search.Scope, key string) []tagValue {
	const traces, spansPerTrace = 100, 20
	q.Limit, q.MatchedSpans = traces, spansPerTrace
	if field == search.FieldAttr {
		q.Report = []search.AttrRef{{Scope: scope, Key: key}}
	}
	res := search.Run(r.Context(), t.h.store, tenant, q, t.h.opts.Search)
	seen := map[tagValue]int{}
	var out []tagValue
	note := func(v tagValue) {
		if _, ok := seen[v]; !ok {
			seen[v] = len(out)
			out = append(out, v)
		}
	}
	for i := range res.Traces {
		s := &res.Traces[i]
		switch field {
		case search.FieldRootService:
			note(tagValue{"string", s.RootService})
		case search.FieldRootName:
			note(tagValue{"string", s.RootName})
		case search.FieldStatus, search.FieldKind:
			return t.allTagValues(r, tenant, field, scope, key)
		}
		for _, m := range s.Matched {
			switch field {
			case search.FieldName:
				note(tagValue{"string", m.Name})
			case search.FieldAttr:
				for _, a := range m.Attributes {
					if typ, ok := search.ValueType(a.Value); ok {
						note(tagValue{tempoType(typ), a.Value.AsString()})
					}
				}
			}
		}
	}
	return out
}

// tempoType is Tempo's name of a search value type.
func tempoType(t string) string {
	if t == "double" {
		return "float"
	}
	return t
}
