// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package spancodec holds the index's compact binary encoding of spans and
// the plain Go model that decoding produces. Spans are kept encoded, not as
// live pdata objects, so that the index holds few pointers and little memory.
package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

// ValueType is the type of an attribute value, numbered as pcommon.ValueType.
type ValueType uint8

// Attribute value types.
const (
	ValueEmpty ValueType = iota
	ValueStr
	ValueInt
	ValueDouble
	ValueBool
	ValueMap
	ValueSlice
	ValueBytes
)

// Value is a decoded attribute value. Only the field of its Type is set.
type Value struct {
	Type   ValueType
	Bool   bool
	Int    int64
	Double float64
	Str    string
	Bytes  []byte
	Slice  []Value
	Map    []KeyValue
}

// KeyValue is one attribute, in the order it was received.
type KeyValue struct {
	Key   string
	Value Value
}

// Resource is the resource and instrumentation scope a group of spans came with.
type Resource struct {
	// ReceivedUnixNano is when the index received the spans that follow it.
	ReceivedUnixNano int64
	Attributes       []KeyValue
	ScopeName        string
	ScopeVersion     string
	ScopeAttributes  []KeyValue
}

// Event is a span event.
type Event struct {
	TimeUnixNano      uint64
	Name              string
	Attributes        []KeyValue
	DroppedAttributes uint32
}

// Link is a span link.
type Link struct {
	TraceID           [16]byte
	SpanID            [8]byte
	TraceState        string
	Flags             uint32
	Attributes        []KeyValue
	DroppedAttributes uint32
}

// Span kinds and status codes, numbered as in OTLP.
const (
	KindUnspecified int32 = iota
	KindInternal
	KindServer
	KindClient
	KindProducer
	KindConsumer
)

// Status codes, numbered as in OTLP.
const (
	StatusUnset int32 = iota
	StatusOK
	StatusError
)

// Span is one decoded span. Resource is shared by the spans that arrived with it.
type Span struct {
	TraceID           [16]byte
	SpanID            [8]byte
	ParentSpanID      [8]byte
	TraceState        string
	Flags             uint32
	Name              string
	Kind              int32
	StartUnixNano     uint64
	EndUnixNano       uint64
	StatusCode        int32
	StatusMessage     string
	Attributes        []KeyValue
	DroppedAttributes uint32
	Events            []Event
	DroppedEvents     uint32
	Links             []Link
	DroppedLinks      uint32
	Resource          *Resource
}

// HasParent reports whether the span names a parent span.
func (s *Span) HasParent() bool { return s.ParentSpanID != [8]byte{} }

// Attr returns the value of the span attribute key.
func (s *Span) Attr(key string) (Value, bool) { return Lookup(s.Attributes, key) }

// ResourceAttr returns the value of the resource attribute key.
func (s *Span) ResourceAttr(key string) (Value, bool) {
	if s.Resource == nil {
		return Value{}, false
	}
	return Lookup(s.Resource.Attributes, key)
}

// ServiceName is the span's resource attribute service.name, or "".
func (s *Span) ServiceName() string {
	v, _ := s.ResourceAttr("service.name")
	return v.AsString()
}

// Lookup finds key in attrs.
func Lookup(attrs []KeyValue, key string) (Value, bool) {
	for i := range attrs {
		if attrs[i].Key == key {
			return attrs[i].Value, true
		}
	}
	return Value{}, false
}
