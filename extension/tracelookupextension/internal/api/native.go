// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/hex"
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

// native is the project's own contract, GET /api/v1/traces/{trace_id}: the 004
// document's response, every field, plus root_service and is_truncated.
// Errors: {"status":"error","error_code":"...","message":"..."}.
type native struct{ h *Handler }

func (native) writeError(w http.ResponseWriter, status int, code, message string) {
	writeStatusError(w, status, code, message)
}

// writeStatusError writes the {status, error_code, message} body that the
// native and the 000 contracts share.
func writeStatusError(w http.ResponseWriter, status int, code, message string) {
	b := append([]byte(nil), `{"status":"error","error_code":`...)
	b = spancodec.AppendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = spancodec.AppendJSONString(b, message)
	b = append(b, '}')
	writeJSON(w, status, b)
}

// busyMessage explains a lookup the memory budget could not admit.
const busyMessage = "the collector is using all the memory it allows lookups; retry after the time in Retry-After"

func (n native) serve(w http.ResponseWriter, r *http.Request, tenant, segment string, query url.Values) Outcome {
	cands, err := traceid.Parse(segment)
	if err != nil {
		n.writeError(w, http.StatusBadRequest, "INVALID_TRACE_ID", err.Error())
		return OutcomeBadRequest
	}
	flat := false
	if v := query["flat"]; len(v) > 0 {
		if flat, err = strconv.ParseBool(v[len(v)-1]); err != nil {
			n.writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", "invalid value "+strconv.Quote(Echo(v[len(v)-1]))+" for query parameter flat: use true or false")
			return OutcomeBadRequest
		}
	}
	include, unknown := parseFields(query["include_fields"], nativeFields)
	if unknown != "" {
		n.writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", "unknown field "+strconv.Quote(Echo(unknown))+" in include_fields; the span fields are "+strings.Join(nativeFields, ", "))
		return OutcomeBadRequest
	}
	notFound := func() { n.writeError(w, http.StatusNotFound, "TRACE_NOT_FOUND", "trace "+Echo(segment)+" not found") }
	hd, outcome, ok := n.h.findOrAnswer(w, r, n, tenant, cands, notFound)
	if !ok {
		return outcome
	}
	return n.h.lookup(w, r, n, hd, &nativeView{nativeSpanWriter{org: tenant, include: include, tree: !flat}}, notFound)
}

var kindNames = [...]string{"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"}

func kindName(k int32) string {
	if k < 0 || int(k) >= len(kindNames) {
		return "UNSPECIFIED"
	}
	return kindNames[k]
}

var statusNames = [...]string{"UNSET", "OK", "ERROR"}

func statusName(c int32) string {
	if c < 0 || int(c) >= len(statusNames) {
		return "UNSET"
	}
	return statusNames[c]
}

func appendHexString(b []byte, id []byte) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, id)
	return append(b, '"')
}

func appendNullableString(b []byte, s string, present bool) []byte {
	if !present {
		return append(b, "null"...)
	}
	return spancodec.AppendJSONString(b, s)
}

// nativeFields are the span fields, in output order; include_fields picks among them.
var nativeFields = []string{
	"id", "trace_id", "span_id", "organization_id", "name", "kind", "status_code",
	"start_time_unix_nano", "created_at", "parent_span_id", "status_message", "end_time_unix_nano",
	"duration_ns", "duration_ms", "attributes", "resource_attributes", "events", "links", "children",
}

// nativeView renders the native contract; truncation_reasons says why
// is_truncated is set.
type nativeView struct{ sw nativeSpanWriter }

func (v *nativeView) tree() bool { return v.sw.tree }

// needsASpan: an empty span list, flagged, is a valid answer.
func (*nativeView) needsASpan() bool { return false }

// workBytes: the mapping renders straight from the decoded spans.
func (*nativeView) workBytes(store.Found) int { return 0 }

func (v *nativeView) head(b []byte, t *traceview.Trace, c *cut) []byte {
	v.sw.t = t
	root := t.RootSpan()
	name, service := "", ""
	if root != nil {
		name, service = root.Name, root.ServiceName()
	}
	b = append(b, `{"id":`...)
	b = appendHexString(b, t.ID[:])
	b = append(b, `,"trace_id":`...)
	b = appendHexString(b, t.ID[:])
	b = append(b, `,"organization_id":`...)
	b = spancodec.AppendJSONString(b, v.sw.org)
	b = append(b, `,"name":`...)
	b = spancodec.AppendJSONString(b, name)
	b = append(b, `,"status":"`...)
	b = append(b, t.Status...)
	b = append(b, `","started_at":`...)
	b = appendTime(b, int64(t.StartUnixNano))
	b = append(b, `,"created_at":`...)
	b = appendTime(b, t.FirstSeen)
	b = append(b, `,"service_name":`...)
	b = appendNullableString(b, service, service != "")
	b = append(b, `,"execution_id":null,"execution_type":null,"user_id":null,"user_email":null,"user_name":null,"user_avatar":null,"ended_at":`...)
	b = appendTime(b, int64(t.EndUnixNano))
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendUint(b, t.DurationNanos()/1e6, 10)
	b = append(b, `,"span_count":`...)
	b = strconv.AppendInt(b, int64(len(t.Spans)), 10)
	b = append(b, `,"error_count":`...)
	b = strconv.AppendInt(b, int64(t.ErrorCount), 10)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, t.LastSeen)
	b = append(b, `,"root_service":`...)
	b = appendNullableString(b, service, service != "")
	b = append(b, `,"is_truncated":`...)
	b = strconv.AppendBool(b, c.truncated())
	b = append(b, `,"truncation_reasons":[`...)
	for k, r := range c.reasons {
		if k > 0 {
			b = append(b, ',')
		}
		b = spancodec.AppendJSONString(b, r)
	}
	return append(b, `],"spans":[`...)
}

func (v *nativeView) span(b []byte, _ *traceview.Trace, i int) []byte { return v.sw.append(b, i) }

func (v *nativeView) tail(b []byte, _ *traceview.Trace, _ *cut) []byte { return append(b, "]}"...) }

// nativeSpanWriter renders spans; include, when set, picks the fields (a
// tree keeps children, which carry its shape, and leaves them open for the
// renderer to fill).
type nativeSpanWriter struct {
	t       *traceview.Trace
	org     string
	include map[string]bool
	tree    bool
}

func (sw *nativeSpanWriter) append(b []byte, i int) []byte {
	s := &sw.t.Spans[i]
	dur := uint64(0)
	if s.EndUnixNano > s.StartUnixNano {
		dur = s.EndUnixNano - s.StartUnixNano
	}
	first := true
	b = append(b, '{')
	for _, f := range nativeFields {
		if sw.include != nil && !sw.include[f] && !(f == "children" && sw.tree) {
			continue
		}
		b = appendField(b, &first, f)
		switch f {
		case "id", "span_id":
			b = appendHexString(b, s.SpanID[:])
		case "trace_id":
			b = appendHexString(b, s.TraceID[:])
		case "organization_id":
			b = spancodec.AppendJSONString(b, sw.org)
		case "name":
			b = spancodec.AppendJSONString(b, s.Name)
		case "kind":
			b = spancodec.AppendJSONString(b, kindName(s.Kind))
		case "status_code":
			b = spancodec.AppendJSONString(b, statusName(s.StatusCode))
		case "start_time_unix_nano":
			b = strconv.AppendUint(b, s.StartUnixNano, 10)
		case "created_at":
			b = appendTime(b, s.ReceivedUnixNano)
		case "parent_span_id":
			if s.HasParent() {
				b = appendHexString(b, s.ParentSpanID[:])
			} else {
				b = append(b, "null"...)
			}
		case "status_message":
			b = spancodec.AppendJSONString(b, s.StatusMessage)
		case "end_time_unix_nano":
			b = strconv.AppendUint(b, s.EndUnixNano, 10)
		case "duration_ns":
			b = strconv.AppendUint(b, dur, 10)
		case "duration_ms":
			b = strconv.AppendUint(b, dur/1e6, 10)
		case "attributes":
			b = spancodec.AppendJSONObject(b, s.Attributes)
		case "resource_attributes":
			b = s.Resource.AppendAttributesJSON(b)
		case "events":
			b = appendNativeEvents(b, s.Events)
		case "links":
			b = appendNativeLinks(b, s.Links)
		case "children":
			if sw.tree {
				return append(b, '[') // children is the last field: the renderer fills and closes it
			}
			b = append(b, "[]"...)
		}
	}
	return append(b, '}')
}

func appendNativeEvents(b []byte, events []spancodec.Event) []byte {
	b = append(b, '[')
	for k := range events {
		e := &events[k]
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = spancodec.AppendJSONString(b, e.Name)
		b = append(b, `,"time_unix_nano":`...)
		b = strconv.AppendUint(b, e.TimeUnixNano, 10)
		b = append(b, `,"time":`...)
		b = appendTime(b, int64(e.TimeUnixNano))
		b = append(b, `,"attributes":`...)
		b = spancodec.AppendJSONObject(b, e.Attributes)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendNativeLinks(b []byte, links []spancodec.Link) []byte {
	b = append(b, '[')
	for k := range links {
		l := &links[k]
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"trace_id":`...)
		b = appendHexString(b, l.TraceID[:])
		b = append(b, `,"span_id":`...)
		b = appendHexString(b, l.SpanID[:])
		b = append(b, `,"trace_state":`...)
		b = spancodec.AppendJSONString(b, l.TraceState)
		b = append(b, `,"attributes":`...)
		b = spancodec.AppendJSONObject(b, l.Attributes)
		b = append(b, '}')
	}
	return append(b, ']')
}

// The native search and listings: GET /api/v1/traces, /api/v1/services,
// /api/v1/services/{service}/operations, /api/v1/attributes and
// /api/v1/attributes/{key}/values. Errors are the native contract's.

// searchParams are the parameters of GET /api/v1/traces; attr alone may repeat.
var searchParams = []string{"service", "name", "kind", "attr", "status", "min_duration", "max_duration", "start", "end", "limit", "next"}

// paramError is a 400 INVALID_PARAMETER naming its parameter.
type paramError struct{ param, reason string }

func (e *paramError) Error() string {
	return "invalid query parameter " + e.param + ": " + e.reason
}

// checkParams refuses parameters not in allowed, and more than one value
// of any but repeatable.
func checkParams(query url.Values, allowed []string, repeatable string) *paramError {
	for name, values := range query {
		if !slices.Contains(allowed, name) {
			list := "none"
			if len(allowed) > 0 {
				list = strings.Join(allowed, ", ")
			}
			return &paramError{Echo(name), "unknown parameter; the parameters are " + list}
		}
		if len(values) > 1 && name != repeatable {
			return &paramError{name, "given more than once"}
		}
	}
	return nil
}

func (n native) writeParamError(w http.ResponseWriter, e *paramError) Outcome {
	n.writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", e.Error())
	return OutcomeBadRequest
}

// parseKind reads a span kind as OTLP names it, with or without its
// SPAN_KIND_ prefix, in any case.
func parseKind(s string) (int32, bool) {
	u := strings.TrimPrefix(strings.ToUpper(s), "SPAN_KIND_")
	for i, k := range kindNames {
		if k == u {
			return int32(i), true
		}
	}
	return 0, false
}

// parseTime reads RFC 3339 or unix nanoseconds.
func parseTime(s string) (uint64, bool) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.UnixNano() < 0 {
		return 0, false
	}
	return uint64(t.UnixNano()), true
}

// parseSearch reads GET /api/v1/traces's parameters.
func parseSearch(query url.Values) (search.Query, *paramError) {
	q := search.Query{Kind: search.AnyKind, Limit: search.DefaultLimit}
	if e := checkParams(query, searchParams, "attr"); e != nil {
		return q, e
	}
	get := func(name string) string {
		if v := query[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	q.Service, q.Name = get("service"), get("name")
	if v := get("kind"); v != "" {
		k, ok := parseKind(v)
		if !ok {
			return q, &paramError{"kind", strconv.Quote(Echo(v)) + " is not a span kind; use one of " + strings.Join(kindNames[:], ", ")}
		}
		q.Kind = k
	}
	for _, a := range query["attr"] {
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" {
			return q, &paramError{"attr", strconv.Quote(Echo(a)) + " is not key=value"}
		}
		q.Attrs = append(q.Attrs, store.ParseAttrQuery(key, value))
	}
	if v := get("status"); v != "" {
		for _, s := range strings.Split(v, ",") {
			switch s {
			case traceview.StatusSuccess:
				q.Status |= store.StatusSuccess
			case traceview.StatusError:
				q.Status |= store.StatusError
			case traceview.StatusRunning:
				q.Status |= store.StatusRunning
			default:
				return q, &paramError{"status", strconv.Quote(Echo(s)) + " is not a trace status; use success, error or running (or several, comma-separated)"}
			}
		}
	}
	for _, d := range []struct {
		name string
		to   *uint64
	}{{"min_duration", &q.MinDuration}, {"max_duration", &q.MaxDuration}} {
		if v := get(d.name); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil || dur < 0 {
				return q, &paramError{d.name, strconv.Quote(Echo(v)) + " is not a duration such as 250ms or 1.5s"}
			}
			*d.to = uint64(dur)
		}
	}
	if q.MaxDuration > 0 && q.MinDuration > q.MaxDuration {
		return q, &paramError{"max_duration", "it is below min_duration"}
	}
	for _, t := range []struct {
		name string
		to   *uint64
	}{{"start", &q.StartFrom}, {"end", &q.StartTo}} {
		if v := get(t.name); v != "" {
			ns, ok := parseTime(v)
			if !ok {
				return q, &paramError{t.name, strconv.Quote(Echo(v)) + " is not a time: use RFC 3339 (2026-01-02T15:04:05Z) or unix nanoseconds"}
			}
			*t.to = ns
		}
	}
	if q.StartTo > 0 && q.StartFrom > q.StartTo {
		return q, &paramError{"end", "it is before start"}
	}
	if v := get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > search.MaxLimit {
			return q, &paramError{"limit", strconv.Quote(Echo(v)) + " is not a number from 1 to " + strconv.Itoa(search.MaxLimit)}
		}
		q.Limit = l
	}
	if v := get("next"); v != "" {
		k, err := search.DecodeCursor(v)
		if err != nil {
			return q, &paramError{"next", strconv.Quote(Echo(v)) + " is " + err.Error()}
		}
		q.After = k
	}
	return q, nil
}

// search answers GET /api/v1/traces: tenant's traces that match, newest
// first by start, each summed up.
func (n native) search(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, off := n.h.searchOff(w, n); off {
		return o
	}
	var q search.Query
	if v, ok := query["query"]; ok {
		// A whole search as JSON, as a peer replica asks it (see package remote).
		if len(query) > 1 || len(v) > 1 {
			return n.writeParamError(w, &paramError{"query", "it comes alone, once: it holds the whole search"})
		}
		var err error
		if q, err = search.UnmarshalQuery([]byte(v[0])); err != nil {
			return n.writeParamError(w, &paramError{"query", Echo(err.Error())})
		}
	} else {
		var perr *paramError
		if q, perr = parseSearch(query); perr != nil {
			return n.writeParamError(w, perr)
		}
	}
	res := n.h.runSearch(r, tenant, q)
	b := append([]byte(nil), `{"traces":[`...)
	for i := range res.Traces {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSummary(b, &res.Traces[i], tenant)
	}
	b = append(b, `],"next":`...)
	if res.HasNext {
		b = spancodec.AppendJSONString(b, search.EncodeCursor(res.Next))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"partial":`...)
	b = strconv.AppendBool(b, res.Partial)
	b = append(b, '}')
	writeJSON(w, http.StatusOK, b)
	if len(res.Traces) == 0 {
		return OutcomeNotFound
	}
	return OutcomeFound
}

// appendSummary writes one trace summary: the 004 trace's fields but its
// spans, then the summary's own.
func appendSummary(b []byte, s *search.Summary, tenant string) []byte {
	b = append(b, `{"id":`...)
	b = appendHexString(b, s.ID[:])
	b = append(b, `,"trace_id":`...)
	b = appendHexString(b, s.ID[:])
	b = append(b, `,"organization_id":`...)
	b = spancodec.AppendJSONString(b, tenant)
	b = append(b, `,"name":`...)
	b = spancodec.AppendJSONString(b, s.RootName)
	b = append(b, `,"status":`...)
	b = spancodec.AppendJSONString(b, s.Status)
	b = append(b, `,"started_at":`...)
	b = appendTime(b, int64(s.Start))
	b = append(b, `,"created_at":`...)
	b = appendTime(b, s.FirstSeen)
	b = append(b, `,"service_name":`...)
	b = appendNullableString(b, s.RootService, s.RootService != "")
	b = append(b, `,"execution_id":null,"execution_type":null,"user_id":null,"user_email":null,"user_name":null,"user_avatar":null,"ended_at":`...)
	b = appendTime(b, int64(s.End))
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendUint(b, s.DurationNanos()/1e6, 10)
	b = append(b, `,"span_count":`...)
	b = strconv.AppendInt(b, int64(s.SpanCount), 10)
	b = append(b, `,"error_count":`...)
	b = strconv.AppendInt(b, int64(s.ErrorCount), 10)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, s.LastSeen)
	b = append(b, `,"root_service":`...)
	b = appendNullableString(b, s.RootService, s.RootService != "")
	b = append(b, `,"root_name":`...)
	b = appendNullableString(b, s.RootName, s.RootName != "" || s.RootService != "")
	b = append(b, `,"start_time_unix_nano":`...)
	b = strconv.AppendUint(b, s.Start, 10)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendUint(b, s.DurationNanos(), 10)
	b = append(b, `,"is_truncated":`...)
	b = strconv.AppendBool(b, s.Truncated)
	b = append(b, `,"orphan_span_count":`...)
	b = strconv.AppendInt(b, int64(s.Orphans), 10)
	b = append(b, `,"service_count":`...)
	b = strconv.AppendInt(b, int64(s.ServiceCount), 10)
	b = append(b, `,"services":[`...)
	for i, sv := range s.Services {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = spancodec.AppendJSONString(b, sv.Name)
		b = append(b, `,"span_count":`...)
		b = strconv.AppendInt(b, int64(sv.Spans), 10)
		b = append(b, `,"error_count":`...)
		b = strconv.AppendInt(b, int64(sv.Errors), 10)
		b = append(b, '}')
	}
	b = append(b, `],"matched_span_count":`...)
	b = strconv.AppendInt(b, int64(s.MatchedCount), 10)
	b = append(b, `,"matched_spans":[`...)
	for i, m := range s.Matched {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"span_id":`...)
		b = appendHexString(b, m.SpanID[:])
		b = append(b, `,"name":`...)
		b = spancodec.AppendJSONString(b, m.Name)
		b = append(b, `,"service_name":`...)
		b = spancodec.AppendJSONString(b, m.ServiceName)
		b = append(b, `,"start_time_unix_nano":`...)
		b = strconv.AppendUint(b, m.Start, 10)
		b = append(b, `,"duration_ns":`...)
		b = strconv.AppendUint(b, m.Duration, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// listingStarts answers what every listing answers before its own work:
// search off, or a parameter not in allowed; false when it answered.
func (n native) listingStarts(w http.ResponseWriter, query url.Values, allowed []string) (Outcome, bool) {
	if o, off := n.h.searchOff(w, n); off {
		return o, false
	}
	if e := checkParams(query, allowed, ""); e != nil {
		return n.writeParamError(w, e), false
	}
	return "", true
}

// writeList answers a listing: a JSON array of one object per item.
func writeList[T any](w http.ResponseWriter, items []T, appendItem func([]byte, T) []byte) Outcome {
	b := []byte{'['}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, it)
	}
	writeJSON(w, http.StatusOK, append(b, ']'))
	return OutcomeFound
}

// appendNamedCount appends {"<nameKey>":name,"<typeKey>":typ,"trace_count":n},
// the shape of the attribute listings.
func appendNamedCount(b []byte, nameKey, name, typeKey, typ string, n int) []byte {
	b = append(b, `{"`...)
	b = append(b, nameKey...)
	b = append(b, `":`...)
	b = spancodec.AppendJSONString(b, name)
	b = append(b, `,"`...)
	b = append(b, typeKey...)
	b = append(b, `":`...)
	b = spancodec.AppendJSONString(b, typ)
	b = append(b, `,"trace_count":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

// services answers GET /api/v1/services.
func (n native) services(w http.ResponseWriter, _ *http.Request, tenant string, query url.Values) Outcome {
	if o, ok := n.listingStarts(w, query, nil); !ok {
		return o
	}
	return writeList(w, n.h.store.Services(tenant), func(b []byte, s store.ServiceStat) []byte {
		b = append(b, `{"name":`...)
		b = spancodec.AppendJSONString(b, s.Name)
		b = append(b, `,"span_count":`...)
		b = strconv.AppendInt(b, s.SpanCount, 10)
		b = append(b, `,"trace_count":`...)
		b = strconv.AppendInt(b, s.TraceCount, 10)
		return append(b, '}')
	})
}

// operations answers GET /api/v1/services/{service}/operations; a service
// the index does not hold has none.
func (n native) operations(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, ok := n.listingStarts(w, query, nil); !ok {
		return o
	}
	ops, _ := n.h.store.Operations(tenant, r.PathValue("service"))
	return writeList(w, ops, func(b []byte, op store.OperationStat) []byte {
		b = append(b, `{"name":`...)
		b = spancodec.AppendJSONString(b, op.Name)
		b = append(b, `,"kind":`...)
		b = spancodec.AppendJSONString(b, kindName(op.Kind))
		b = append(b, `,"span_count":`...)
		b = strconv.AppendInt(b, op.SpanCount, 10)
		return append(b, '}')
	})
}

// attributeKeys answers GET /api/v1/attributes.
func (n native) attributeKeys(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, ok := n.listingStarts(w, query, nil); !ok {
		return o
	}
	keys, _ := search.AttributeKeys(r.Context(), n.h.store, tenant, n.h.opts.Search)
	return writeList(w, keys, func(b []byte, k search.KeyStat) []byte {
		return appendNamedCount(b, "key", k.Key, "scope", k.Scope, k.TraceCount)
	})
}

// DefaultValuesLimit and MaxValuesLimit bound GET /api/v1/attributes/{key}/values.
const (
	DefaultValuesLimit = 20
	MaxValuesLimit     = 100
)

// attributeValues answers GET /api/v1/attributes/{key}/values: the key's
// most frequent values, in either scope.
func (n native) attributeValues(w http.ResponseWriter, r *http.Request, tenant string, query url.Values) Outcome {
	if o, ok := n.listingStarts(w, query, []string{"limit"}); !ok {
		return o
	}
	limit := DefaultValuesLimit
	if v := query.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > MaxValuesLimit {
			return n.writeParamError(w, &paramError{"limit", strconv.Quote(Echo(v)) + " is not a number from 1 to " + strconv.Itoa(MaxValuesLimit)})
		}
		limit = l
	}
	values, _ := search.AttributeValues(r.Context(), n.h.store, tenant, r.PathValue("key"), limit, n.h.opts.Search)
	return writeList(w, values, func(b []byte, v search.ValueStat) []byte {
		return appendNamedCount(b, "value", v.Value, "type", v.Type, v.TraceCount)
	})
}
