// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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

func (native) writeBusy(w http.ResponseWriter) {
	writeStatusError(w, http.StatusServiceUnavailable, "SERVICE_BUSY", busyMessage)
}

func (native) writeRateLimited(w http.ResponseWriter) {
	writeStatusError(w, http.StatusTooManyRequests, "RATE_LIMITED", rateLimitedMessage)
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
	f, ok := n.h.findTrace(tenant, cands)
	if !ok {
		notFound()
		return OutcomeNotFound
	}
	return n.h.lookup(w, r, n, f, &nativeView{nativeSpanWriter{org: tenant, include: include, tree: !flat}}, notFound)
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
