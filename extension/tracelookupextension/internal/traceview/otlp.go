// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package traceview // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// OTLP builds the spans of t that keep allows (nil: all) back into pdata,
// one ResourceSpans per stored resource and scope, in the order their
// first span starts: what the OTLP contracts answer and snapshots write.
func (t *Trace) OTLP(keep func(i int) bool) ptrace.Traces {
	td := ptrace.NewTraces()
	groups := map[*spancodec.Resource]ptrace.SpanSlice{}
	for i := range t.Spans {
		if keep != nil && !keep(i) {
			continue
		}
		s := &t.Spans[i]
		spans, ok := groups[s.Resource]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			ss := rs.ScopeSpans().AppendEmpty()
			if r := s.Resource; r != nil {
				putAttributes(rs.Resource().Attributes(), r.Attributes)
				ss.Scope().SetName(r.ScopeName)
				ss.Scope().SetVersion(r.ScopeVersion)
				putAttributes(ss.Scope().Attributes(), r.ScopeAttributes)
			}
			spans = ss.Spans()
			groups[s.Resource] = spans
		}
		putSpan(spans.AppendEmpty(), s)
	}
	return td
}

func putSpan(out ptrace.Span, s *spancodec.Span) {
	out.SetTraceID(s.TraceID)
	out.SetSpanID(s.SpanID)
	if s.HasParent() {
		out.SetParentSpanID(s.ParentSpanID)
	}
	out.TraceState().FromRaw(s.TraceState)
	out.SetFlags(s.Flags)
	out.SetName(s.Name)
	out.SetKind(ptrace.SpanKind(s.Kind))
	out.SetStartTimestamp(pcommon.Timestamp(s.StartUnixNano))
	out.SetEndTimestamp(pcommon.Timestamp(s.EndUnixNano))
	out.Status().SetCode(ptrace.StatusCode(s.StatusCode))
	out.Status().SetMessage(s.StatusMessage)
	putAttributes(out.Attributes(), s.Attributes)
	out.SetDroppedAttributesCount(s.DroppedAttributes)
	events := out.Events()
	events.EnsureCapacity(len(s.Events))
	for i := range s.Events {
		ev, e := events.AppendEmpty(), &s.Events[i]
		ev.SetTimestamp(pcommon.Timestamp(e.TimeUnixNano))
		ev.SetName(e.Name)
		putAttributes(ev.Attributes(), e.Attributes)
		ev.SetDroppedAttributesCount(e.DroppedAttributes)
	}
	out.SetDroppedEventsCount(s.DroppedEvents)
	links := out.Links()
	links.EnsureCapacity(len(s.Links))
	for i := range s.Links {
		ln, l := links.AppendEmpty(), &s.Links[i]
		ln.SetTraceID(l.TraceID)
		ln.SetSpanID(l.SpanID)
		ln.TraceState().FromRaw(l.TraceState)
		ln.SetFlags(l.Flags)
		putAttributes(ln.Attributes(), l.Attributes)
		ln.SetDroppedAttributesCount(l.DroppedAttributes)
	}
	out.SetDroppedLinksCount(s.DroppedLinks)
}

// putAttributes puts attrs in their order; a key received twice keeps its
// last value (a pcommon.Map holds a key once).
func putAttributes(m pcommon.Map, attrs []spancodec.KeyValue) {
	m.EnsureCapacity(len(attrs))
	for i := range attrs {
		putValue(m.PutEmpty(attrs[i].Key), attrs[i].Value)
	}
}

func putValue(out pcommon.Value, v spancodec.Value) {
	switch v.Type {
	case spancodec.ValueStr:
		out.SetStr(v.Str)
	case spancodec.ValueInt:
		out.SetInt(v.Int())
	case spancodec.ValueDouble:
		out.SetDouble(v.Double())
	case spancodec.ValueBool:
		out.SetBool(v.Bool())
	case spancodec.ValueBytes:
		out.SetEmptyBytes().FromRaw([]byte(v.Str))
	case spancodec.ValueMap:
		putAttributes(out.SetEmptyMap(), v.Map())
	case spancodec.ValueSlice:
		elems := v.Elems()
		s := out.SetEmptySlice()
		s.EnsureCapacity(len(elems))
		for i := range elems {
			putValue(s.AppendEmpty(), elems[i].Value)
		}
	}
}
