// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
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

func (n native) serve(w http.ResponseWriter, r *http.Request, segment string) Outcome {
	cands, err := traceid.Parse(segment)
	if err != nil {
		n.writeError(w, http.StatusBadRequest, "INVALID_TRACE_ID", err.Error())
		return OutcomeBadRequest
	}
	flat := false
	if v := r.URL.Query()["flat"]; len(v) > 0 {
		if flat, err = strconv.ParseBool(v[len(v)-1]); err != nil {
			n.writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", "invalid value "+strconv.Quote(v[len(v)-1])+" for query parameter flat: use true or false")
			return OutcomeBadRequest
		}
	}
	st, ok := n.h.findTrace(cands)
	if !ok {
		n.writeError(w, http.StatusNotFound, "TRACE_NOT_FOUND", "trace "+segment+" not found")
		return OutcomeNotFound
	}
	t, err := traceview.Build(st)
	if err != nil {
		n.writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "stored trace could not be read")
		return OutcomeError
	}
	defer t.Release()
	buf := getBuf()
	defer putBuf(buf)
	*buf = n.h.appendNativeTrace(*buf, t, flat)
	writeJSON(w, http.StatusOK, *buf)
	return OutcomeFound
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

func (h *Handler) appendNativeTrace(b []byte, t *traceview.Trace, flat bool) []byte {
	root := t.RootSpan()
	name, service := "", ""
	if root != nil {
		name, service = root.Name, root.ServiceName()
	}
	org := h.opts.OrganizationID
	b = append(b, `{"id":`...)
	b = appendHexString(b, t.ID[:])
	b = append(b, `,"trace_id":`...)
	b = appendHexString(b, t.ID[:])
	b = append(b, `,"organization_id":`...)
	b = spancodec.AppendJSONString(b, org)
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
	b = strconv.AppendBool(b, t.Truncated)
	b = append(b, `,"spans":[`...)
	if flat {
		for i := range t.Spans {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNativeSpan(b, t, i, org, false)
		}
	} else {
		for k, i := range t.Roots {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendNativeSpan(b, t, i, org, true)
		}
	}
	return append(b, "]}"...)
}

func appendNativeSpan(b []byte, t *traceview.Trace, i int, org string, tree bool) []byte {
	s := &t.Spans[i]
	b = append(b, `{"id":`...)
	b = appendHexString(b, s.SpanID[:])
	b = append(b, `,"trace_id":`...)
	b = appendHexString(b, s.TraceID[:])
	b = append(b, `,"span_id":`...)
	b = appendHexString(b, s.SpanID[:])
	b = append(b, `,"organization_id":`...)
	b = spancodec.AppendJSONString(b, org)
	b = append(b, `,"name":`...)
	b = spancodec.AppendJSONString(b, s.Name)
	b = append(b, `,"kind":"`...)
	b = append(b, kindName(s.Kind)...)
	b = append(b, `","status_code":"`...)
	b = append(b, statusName(s.StatusCode)...)
	b = append(b, `","start_time_unix_nano":`...)
	b = strconv.AppendUint(b, s.StartUnixNano, 10)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, s.ReceivedUnixNano)
	b = append(b, `,"parent_span_id":`...)
	if s.HasParent() {
		b = appendHexString(b, s.ParentSpanID[:])
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"status_message":`...)
	b = spancodec.AppendJSONString(b, s.StatusMessage)
	b = append(b, `,"end_time_unix_nano":`...)
	b = strconv.AppendUint(b, s.EndUnixNano, 10)
	dur := uint64(0)
	if s.EndUnixNano > s.StartUnixNano {
		dur = s.EndUnixNano - s.StartUnixNano
	}
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendUint(b, dur, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendUint(b, dur/1e6, 10)
	b = append(b, `,"attributes":`...)
	b = spancodec.AppendJSONObject(b, s.Attributes)
	b = append(b, `,"resource_attributes":`...)
	b = spancodec.AppendJSONObject(b, s.Resource.Attributes)
	b = append(b, `,"events":[`...)
	for k := range s.Events {
		e := &s.Events[k]
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
	b = append(b, `],"links":[`...)
	for k := range s.Links {
		l := &s.Links[k]
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
	b = append(b, `],"children":[`...)
	if tree {
		for k, c := range t.Children[i] {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendNativeSpan(b, t, c, org, true)
		}
	}
	return append(b, "]}"...)
}
