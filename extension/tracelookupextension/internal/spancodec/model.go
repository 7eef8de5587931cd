// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package spancodec holds the index's compact binary encoding of spans and
// the plain Go model that decoding produces. Spans are kept encoded, not as
// live pdata objects, so that the index holds few pointers and little memory.
package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

import (
	"math"
	"slices"
)

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

// Value is a decoded attribute value, kept small because a trace decodes
// thousands of them: numbers share one field, and maps and slices share the
// list of children (a slice's children have no keys).
type Value struct {
	Type ValueType
	num  uint64     // ValueInt, ValueDouble and ValueBool, as bits
	Str  string     // ValueStr; for ValueBytes, the raw bytes
	kids []KeyValue // ValueMap entries, or ValueSlice elements
}

// StrValue, IntValue, DoubleValue, BoolValue, BytesValue, SliceValue and
// MapValue make values of each type.
func StrValue(s string) Value       { return Value{Type: ValueStr, Str: s} }
func IntValue(i int64) Value        { return Value{Type: ValueInt, num: uint64(i)} }
func DoubleValue(f float64) Value   { return Value{Type: ValueDouble, num: math.Float64bits(f)} }
func BytesValue(b []byte) Value     { return Value{Type: ValueBytes, Str: string(b)} }
func MapValue(kvs []KeyValue) Value { return Value{Type: ValueMap, kids: kvs} }
func BoolValue(b bool) Value {
	if b {
		return Value{Type: ValueBool, num: 1}
	}
	return Value{Type: ValueBool}
}

// SliceValue makes a slice of the values.
func SliceValue(vs []Value) Value {
	kids := make([]KeyValue, len(vs))
	for i, v := range vs {
		kids[i].Value = v
	}
	return Value{Type: ValueSlice, kids: kids}
}

// Int is the value of a ValueInt.
func (v Value) Int() int64 { return int64(v.num) }

// Double is the value of a ValueDouble.
func (v Value) Double() float64 { return math.Float64frombits(v.num) }

// Bool is the value of a ValueBool.
func (v Value) Bool() bool { return v.num != 0 }

// Map is the entries of a ValueMap.
func (v Value) Map() []KeyValue { return v.kids }

// Elems is the elements of a ValueSlice.
func (v Value) Elems() []KeyValue { return v.kids }

// KeyValue is one attribute, in the order it was received.
type KeyValue struct {
	Key   string
	Value Value
}

// Resource is the resource and instrumentation scope a group of spans came
// with; spans that came with identical ones share one.
type Resource struct {
	// attrsJSON caches the attributes rendered as JSON; a Resource is decoded
	// for one response and shared by its spans, so it renders once.
	attrsJSON []byte

	Attributes      []KeyValue
	ScopeName       string
	ScopeVersion    string
	ScopeAttributes []KeyValue
}

// AppendAttributesJSON appends the attributes as one JSON object, rendering
// them the first time only. Not safe for concurrent use.
func (r *Resource) AppendAttributesJSON(b []byte) []byte {
	if r.attrsJSON == nil {
		// A large resource is sized once for the worst case, then copied
		// down: grown by append, it would leave several times its size
		// behind as garbage. A small one starts at a third of the bound,
		// which plain text fits.
		bound := JSONBound(r.Attributes)
		if bound <= 64<<10 {
			r.attrsJSON = AppendJSONObject(make([]byte, 0, bound/3), r.Attributes)
		} else if r.attrsJSON = AppendJSONObject(make([]byte, 0, bound), r.Attributes); cap(r.attrsJSON) > 2*len(r.attrsJSON) {
			r.attrsJSON = slices.Clone(r.attrsJSON)
		}
	}
	return append(b, r.attrsJSON...)
}

// JSONBound is the most bytes AppendJSONObject can take for attrs: a
// string byte takes six at most (a \u escape).
func JSONBound(attrs []KeyValue) int {
	n := 2
	for i := range attrs {
		n += 6*len(attrs[i].Key) + 4 + valueBound(attrs[i].Value)
	}
	return n
}

func valueBound(v Value) int {
	switch v.Type {
	case ValueStr, ValueBytes:
		return 6*len(v.Str) + 2
	case ValueSlice:
		n := 2
		for i := range v.kids {
			n += 1 + valueBound(v.kids[i].Value)
		}
		return n
	case ValueMap:
		return JSONBound(v.kids)
	default:
		return 32 // a number, a boolean, null
	}
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
	// ReceivedUnixNano is when the index received the span.
	ReceivedUnixNano int64
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
