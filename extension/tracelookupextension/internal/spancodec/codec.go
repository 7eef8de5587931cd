// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A trace's encoded data is a sequence of records. A resource record names,
// by id, the resource and scope of the span records that follow it, and when
// they were received; the index keeps each distinct resource body once, under
// that id, however many traces and batches use it. Integers are varints;
// strings and byte strings are length-prefixed. The trace id is not written:
// the index keys every buffer by it.
const (
	recordResource byte = 'R'
	recordSpan     byte = 'S'
)

// Resolver returns the body of resource id (see AppendResourceBody), or nil.
type Resolver func(id uint32) []byte

// maxDepth bounds nesting of map and slice values on decode.
const maxDepth = 100

// ErrCorrupt is returned for data that is not a valid encoding.
var ErrCorrupt = errors.New("spancodec: corrupt data")

// Watch names one attribute key whose value the encoder reports while it
// encodes, so that an index on that attribute costs no second scan.
type Watch struct {
	Key   string
	Value string
	Found bool
}

// AppendResourceBody appends the encoding of a resource and its scope,
// reporting the resource's value of w.Key. Equal bodies are equal resources.
func AppendResourceBody(b []byte, res pcommon.Resource, scope pcommon.InstrumentationScope, w *Watch) []byte {
	b = appendMap(b, res.Attributes(), w)
	b = appendString(b, scope.Name())
	b = appendString(b, scope.Version())
	return appendMap(b, scope.Attributes(), nil)
}

// AppendResource appends a resource record: the spans after it came with
// resource id, received at receivedUnixNano.
func AppendResource(b []byte, receivedUnixNano int64, id uint32) []byte {
	b = append(b, recordResource)
	b = binary.AppendVarint(b, receivedUnixNano)
	return binary.AppendUvarint(b, uint64(id))
}

// AppendSpan appends a span record, reporting the span's value of w.Key.
func AppendSpan(b []byte, s ptrace.Span, w *Watch) []byte {
	b = append(b, recordSpan)
	sid := s.SpanID()
	b = append(b, sid[:]...)
	pid := s.ParentSpanID()
	b = append(b, pid[:]...)
	b = binary.AppendUvarint(b, uint64(s.Flags()))
	b = appendString(b, s.TraceState().AsRaw())
	b = appendString(b, s.Name())
	b = binary.AppendUvarint(b, uint64(uint32(s.Kind())))
	start := uint64(s.StartTimestamp())
	b = binary.AppendUvarint(b, start)
	b = binary.AppendVarint(b, int64(uint64(s.EndTimestamp())-start))
	st := s.Status()
	b = binary.AppendUvarint(b, uint64(uint32(st.Code())))
	b = appendString(b, st.Message())
	b = appendMap(b, s.Attributes(), w)
	b = binary.AppendUvarint(b, uint64(s.DroppedAttributesCount()))

	events := s.Events()
	b = binary.AppendUvarint(b, uint64(events.Len()))
	for i := 0; i < events.Len(); i++ {
		e := events.At(i)
		b = binary.AppendVarint(b, int64(uint64(e.Timestamp())-start))
		b = appendString(b, e.Name())
		b = appendMap(b, e.Attributes(), nil)
		b = binary.AppendUvarint(b, uint64(e.DroppedAttributesCount()))
	}
	b = binary.AppendUvarint(b, uint64(s.DroppedEventsCount()))

	links := s.Links()
	b = binary.AppendUvarint(b, uint64(links.Len()))
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		tid := l.TraceID()
		b = append(b, tid[:]...)
		lsid := l.SpanID()
		b = append(b, lsid[:]...)
		b = appendString(b, l.TraceState().AsRaw())
		b = binary.AppendUvarint(b, uint64(l.Flags()))
		b = appendMap(b, l.Attributes(), nil)
		b = binary.AppendUvarint(b, uint64(l.DroppedAttributesCount()))
	}
	return binary.AppendUvarint(b, uint64(s.DroppedLinksCount()))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendMap(b []byte, m pcommon.Map, w *Watch) []byte {
	b = binary.AppendUvarint(b, uint64(m.Len()))
	for k, v := range m.All() {
		b = appendString(b, k)
		b = appendValue(b, v)
		if w != nil && k == w.Key && w.Key != "" {
			w.Value, w.Found = v.AsString(), true
		}
	}
	return b
}

func appendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		b = append(b, byte(ValueStr))
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		b = append(b, byte(ValueInt))
		return binary.AppendVarint(b, v.Int())
	case pcommon.ValueTypeDouble:
		b = append(b, byte(ValueDouble))
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(b, byte(ValueBool), 1)
		}
		return append(b, byte(ValueBool), 0)
	case pcommon.ValueTypeBytes:
		b = append(b, byte(ValueBytes))
		raw := v.Bytes().AsRaw()
		b = binary.AppendUvarint(b, uint64(len(raw)))
		return append(b, raw...)
	case pcommon.ValueTypeSlice:
		b = append(b, byte(ValueSlice))
		sl := v.Slice()
		b = binary.AppendUvarint(b, uint64(sl.Len()))
		for i := 0; i < sl.Len(); i++ {
			b = appendValue(b, sl.At(i))
		}
		return b
	case pcommon.ValueTypeMap:
		b = append(b, byte(ValueMap))
		return appendMap(b, v.Map(), nil)
	default:
		return append(b, byte(ValueEmpty))
	}
}

// decode appends every span in d's data to spans, in the order they were
// appended; each is decoded in place, so a span costs no allocation of its
// own. Strings in the result share memory with the data.
func (d *decoder) decode(traceID [16]byte, resolve Resolver, spans []Span) ([]Span, error) {
	var (
		res      *Resource
		received int64
		// Each batch names its resource again; each resource decodes once.
		seen []decodedResource
	)
	for d.off < len(d.buf) {
		switch d.byte() {
		case recordResource:
			received = d.varint()
			res = d.resource(&seen, d.uint32(), resolve)
		case recordSpan:
			if res == nil {
				return spans, fmt.Errorf("%w: span before its resource at offset %d", ErrCorrupt, d.off)
			}
			spans = append(spans, Span{TraceID: traceID, Resource: res, ReceivedUnixNano: received})
			d.span(&spans[len(spans)-1])
			if d.err != nil {
				return spans[:len(spans)-1], d.err
			}
		default:
			return spans, fmt.Errorf("%w: unknown record at offset %d", ErrCorrupt, d.off-1)
		}
		if d.err != nil {
			return spans, d.err
		}
	}
	return spans, d.err
}

// DecodeAll returns every span in data; sizeHint is how many there probably are.
func DecodeAll(data []byte, traceID [16]byte, resolve Resolver, sizeHint int) ([]Span, error) {
	var sc Scratch
	d := decoder{buf: data, arena: &sc.kv}
	return d.decode(traceID, resolve, slices.Grow(sc.spans[:0], sizeHint))
}

// Scratch is reusable memory for decoding one trace at a time. The spans
// from a Decode are valid until the next Decode with the same Scratch.
type Scratch struct {
	records []byte
	spans   []Span
	kv      []KeyValue
}

// Decode unseals blocks (see Seal) into sc's memory and decodes every span;
// sizeHint is how many there probably are. The spans' strings point into
// sc's copy, never into blocks, so blocks may be reused once Decode returns.
func (sc *Scratch) Decode(traceID [16]byte, blocks []byte, resolve Resolver, sizeHint int) ([]Span, error) {
	data, err := Unseal(sc.records[:0], blocks)
	if err != nil {
		return nil, err
	}
	sc.records = data
	sc.kv = sc.kv[:0]
	d := decoder{buf: data, arena: &sc.kv}
	spans, err := d.decode(traceID, resolve, slices.Grow(sc.spans[:0], sizeHint))
	sc.spans = spans
	return spans, err
}

// Shrink drops buffers past maxBytes, so that one huge trace does not keep
// its memory in a pool.
func (sc *Scratch) Shrink(maxBytes int) {
	const spanSize, kvSize = int(unsafe.Sizeof(Span{})), int(unsafe.Sizeof(KeyValue{}))
	if cap(sc.records) > maxBytes {
		sc.records = nil
	}
	if cap(sc.spans)*spanSize > maxBytes {
		sc.spans = nil
	}
	if cap(sc.kv)*kvSize > maxBytes {
		sc.kv = nil
	}
}

type decodedResource struct {
	id  uint32
	res *Resource
}

// resource returns resource id, decoding its body the first time.
func (d *decoder) resource(seen *[]decodedResource, id uint32, resolve Resolver) *Resource {
	if d.err != nil {
		return nil
	}
	for _, s := range *seen {
		if s.id == id {
			return s.res
		}
	}
	var body []byte
	if resolve != nil {
		body = resolve(id)
	}
	if body == nil {
		d.fail("unknown resource")
		return nil
	}
	sub := decoder{buf: body, arena: d.arena}
	res := &Resource{}
	res.Attributes = sub.attrs(0)
	res.ScopeName = sub.string()
	res.ScopeVersion = sub.string()
	res.ScopeAttributes = sub.attrs(0)
	if sub.err != nil || sub.off != len(body) {
		d.fail("corrupt resource")
		return nil
	}
	*seen = append(*seen, decodedResource{id: id, res: res})
	return res
}

type decoder struct {
	buf []byte
	off int
	err error
	// arena, when set, is where attribute lists are carved from.
	arena *[]KeyValue
}

// kvs returns room for n attributes, from the arena when there is one. A full
// arena is replaced, not grown: lists already handed out keep pointing into it.
func (d *decoder) kvs(n int) []KeyValue {
	if d.arena == nil {
		return make([]KeyValue, n)
	}
	a := *d.arena
	if cap(a)-len(a) < n {
		a = make([]KeyValue, 0, max(4096, 2*n))
	}
	out := a[len(a) : len(a)+n : len(a)+n]
	clear(out)
	*d.arena = a[:len(a)+n]
	return out
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at offset %d", ErrCorrupt, what, d.off)
	}
	d.off = len(d.buf)
}

func (d *decoder) byte() byte {
	if d.off >= len(d.buf) {
		d.fail("truncated")
		return 0
	}
	c := d.buf[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("value out of range")
		return 0
	}
	return uint32(v)
}

// count reads an element count, each element taking at least minSize bytes.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.buf)-d.off)/uint64(minSize) {
		d.fail("count exceeds data")
		return 0
	}
	return int(n)
}

func (d *decoder) raw(n int) []byte {
	if n < 0 || n > len(d.buf)-d.off {
		d.fail("truncated")
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) string() string {
	n := d.count(1)
	b := d.raw(n)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (d *decoder) attrs(depth int) []KeyValue {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	kvs := d.kvs(n)
	for i := range kvs {
		kvs[i].Key = d.string()
		kvs[i].Value = d.value(depth)
		if d.err != nil {
			return nil
		}
	}
	return kvs
}

func (d *decoder) value(depth int) Value {
	if depth > maxDepth {
		d.fail("values nested too deep")
		return Value{}
	}
	t := ValueType(d.byte())
	v := Value{Type: t}
	switch t {
	case ValueEmpty:
	case ValueStr:
		v.Str = d.string()
	case ValueInt:
		v.num = uint64(d.varint())
	case ValueDouble:
		if b := d.raw(8); b != nil {
			v.num = binary.LittleEndian.Uint64(b)
		}
	case ValueBool:
		if d.byte() != 0 {
			v.num = 1
		}
	case ValueBytes:
		v.Str = d.string()
	case ValueSlice:
		n := d.count(1)
		if n > 0 {
			v.kids = d.kvs(n)
			for i := range v.kids {
				v.kids[i].Value = d.value(depth + 1)
				if d.err != nil {
					return Value{}
				}
			}
		}
	case ValueMap:
		v.kids = d.attrs(depth + 1)
	default:
		d.fail("unknown value type")
	}
	return v
}

func (d *decoder) span(s *Span) {
	copy(s.SpanID[:], d.raw(8))
	copy(s.ParentSpanID[:], d.raw(8))
	s.Flags = d.uint32()
	s.TraceState = d.string()
	s.Name = d.string()
	s.Kind = int32(d.uint32())
	s.StartUnixNano = d.uvarint()
	s.EndUnixNano = s.StartUnixNano + uint64(d.varint())
	s.StatusCode = int32(d.uint32())
	s.StatusMessage = d.string()
	s.Attributes = d.attrs(0)
	s.DroppedAttributes = d.uint32()
	if n := d.count(4); n > 0 {
		s.Events = make([]Event, n)
		for i := range s.Events {
			e := &s.Events[i]
			e.TimeUnixNano = s.StartUnixNano + uint64(d.varint())
			e.Name = d.string()
			e.Attributes = d.attrs(0)
			e.DroppedAttributes = d.uint32()
		}
	}
	s.DroppedEvents = d.uint32()
	if n := d.count(28); n > 0 {
		s.Links = make([]Link, n)
		for i := range s.Links {
			l := &s.Links[i]
			copy(l.TraceID[:], d.raw(16))
			copy(l.SpanID[:], d.raw(8))
			l.TraceState = d.string()
			l.Flags = d.uint32()
			l.Attributes = d.attrs(0)
			l.DroppedAttributes = d.uint32()
		}
	}
	s.DroppedLinks = d.uint32()
}

// Bytes is the memory sc holds, by capacity.
func (sc *Scratch) Bytes() int {
	const spanSize, kvSize = int(unsafe.Sizeof(Span{})), int(unsafe.Sizeof(KeyValue{}))
	return cap(sc.records) + cap(sc.spans)*spanSize + cap(sc.kv)*kvSize
}
