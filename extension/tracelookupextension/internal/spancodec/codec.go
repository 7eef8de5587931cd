// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
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

// MaxValueDepth is the deepest nesting of arrays and maps the encoding keeps:
// deeper values are stored empty, and the cut counted. The decoder reads
// deeper than that (maxDepth), so whatever was encoded reads back.
const MaxValueDepth = 64

// maxDepth bounds nesting of map and slice values on decode.
const maxDepth = 100

// ErrCorrupt is returned for data that is not a valid encoding.
var ErrCorrupt = errors.New("spancodec: corrupt data")

// TruncatedValuesKey is the attribute that marks a span whose strings or
// values the index cut to its limits; its value is how many it cut.
const TruncatedValuesKey = "tracelookup.truncated_values"

// Watch names one attribute key whose value the encoder reports while it
// encodes, so that an index on that attribute costs no second scan.
type Watch struct {
	Key   string
	Value string
	Found bool
	// Each, when set, is called with each attribute the encoder keeps at
	// the top level, its key as kept (cut), and the bytes it encoded the
	// attribute as (valid during the call), so that the caller reads the
	// attributes in the same pass.
	Each func(key string, v pcommon.Value, encoded []byte)
}

// Limits bound what the encoding keeps of a span; zero means no limit.
type Limits struct {
	// MaxValueBytes cuts each attribute value (the strings and keys inside an
	// array or map value sharing the budget), attribute key, name, status
	// message and trace state to this many bytes.
	MaxValueBytes int
	// MaxAttributes is the most attributes kept per span, event, link,
	// resource and scope, and the most elements per array or map value.
	MaxAttributes int
	// MaxEvents and MaxLinks are the most events and links kept per span.
	MaxEvents int
	MaxLinks  int
}

// Cut is s as the encoder keeps a name, a key or a string attribute value:
// cut to MaxValueBytes at a character boundary. It counts nothing.
func (l Limits) Cut(s string) string {
	if l.MaxValueBytes <= 0 || len(s) <= l.MaxValueBytes {
		return s
	}
	n := l.MaxValueBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AppendStrAttr appends the encoding of a string attribute, as the
// encoder writes it (key and value already cut): a search term is the
// hash of these bytes, on ingest and in queries alike.
func AppendStrAttr(b []byte, key, value string) []byte {
	b = appendString(b, key)
	b = append(b, byte(ValueStr))
	return appendString(b, value)
}

// AppendBoolAttr appends the encoding of a boolean attribute.
func AppendBoolAttr(b []byte, key string, v bool) []byte {
	b = appendString(b, key)
	if v {
		return append(b, byte(ValueBool), 1)
	}
	return append(b, byte(ValueBool), 0)
}

// Kept is how many of n attributes the encoder keeps (the first ones).
func (l Limits) Kept(n int) int {
	if l.MaxAttributes > 0 && n > l.MaxAttributes {
		return l.MaxAttributes
	}
	return n
}

// Cuts counts what Limits removed: values (strings and too deep values)
// cut, and attributes, events and links dropped.
type Cuts struct {
	Values, Attributes, Events, Links int64
}

// Encoder encodes resources and spans within its Limits, counting the cuts.
type Encoder struct {
	Limits Limits
	Cuts   Cuts
	// Items counts the attributes, array and map elements, events and links
	// encoded: each decodes into a structure of its own.
	Items int64
	// values counts the values cut in the span or resource being encoded.
	values int
}

// AppendResourceBody appends the encoding of a resource and its scope,
// reporting the resource's value of w.Key, and how many of its values it cut.
// Equal bodies are equal resources.
func (e *Encoder) AppendResourceBody(b []byte, res pcommon.Resource, scope pcommon.InstrumentationScope, w *Watch) ([]byte, int) {
	e.values = 0
	b = e.appendMap(b, res.Attributes(), w, 0)
	b = e.appendString(b, scope.Name())
	b = e.appendString(b, scope.Version())
	b = e.appendMap(b, scope.Attributes(), nil, 0)
	// The encoding keeps no dropped counts for a resource or scope: what the
	// limit drops of them counts as cut, and so marks their spans.
	e.values += e.dropped(res.Attributes().Len(), e.Limits.MaxAttributes, &e.Cuts.Attributes)
	e.values += e.dropped(scope.Attributes().Len(), e.Limits.MaxAttributes, &e.Cuts.Attributes)
	return b, e.values
}

// AppendResource appends a resource record: the spans after it came with
// resource id, received at receivedUnixNano.
func AppendResource(b []byte, receivedUnixNano int64, id uint32) []byte {
	b = append(b, recordResource)
	b = binary.AppendVarint(b, receivedUnixNano)
	return binary.AppendUvarint(b, uint64(id))
}

// spanLenRoom is the room left for a span record's length before its body:
// enough for bodies up to 2 MiB, moved when a body is longer or shorter.
const spanLenRoom = 3

// AppendSpan appends a span record, reporting the span's value of w.Key.
// resourceCuts, the values cut from the span's resource, is added to the
// span's own in its mark (see TruncatedValuesKey).
func (e *Encoder) AppendSpan(b []byte, s ptrace.Span, w *Watch, resourceCuts int) []byte {
	// A span record carries its length, so that a span that cannot be read
	// is skipped and the spans after it still are.
	start := len(b)
	b = append(b, recordSpan, 0, 0, 0)
	body := len(b)
	e.values = 0
	sid := s.SpanID()
	b = append(b, sid[:]...)
	pid := s.ParentSpanID()
	b = append(b, pid[:]...)
	b = binary.AppendUvarint(b, uint64(s.Flags()))
	b = e.appendString(b, s.TraceState().AsRaw())
	b = e.appendString(b, s.Name())
	b = binary.AppendUvarint(b, uint64(uint32(s.Kind())))
	startTime := uint64(s.StartTimestamp())
	b = binary.AppendUvarint(b, startTime)
	b = binary.AppendVarint(b, int64(uint64(s.EndTimestamp())-startTime))
	st := s.Status()
	b = binary.AppendUvarint(b, uint64(uint32(st.Code())))
	b = e.appendString(b, st.Message())
	// The count of values cut goes before the attributes, where the decoder
	// adds the mark; it is known only at the end, so it is a fixed-size slot.
	mark := len(b)
	b = append(b, 0, 0)
	attrs := s.Attributes()
	b = e.appendMap(b, attrs, w, 0)
	b = binary.AppendUvarint(b, uint64(s.DroppedAttributesCount())+uint64(e.dropped(attrs.Len(), e.Limits.MaxAttributes, &e.Cuts.Attributes)))

	events := s.Events()
	n := e.kept(events.Len(), e.Limits.MaxEvents)
	e.Items += int64(n)
	b = binary.AppendUvarint(b, uint64(n))
	for i := 0; i < n; i++ {
		ev := events.At(i)
		b = binary.AppendVarint(b, int64(uint64(ev.Timestamp())-startTime))
		b = e.appendString(b, ev.Name())
		b = e.appendMap(b, ev.Attributes(), nil, 0)
		b = binary.AppendUvarint(b, uint64(ev.DroppedAttributesCount())+uint64(e.dropped(ev.Attributes().Len(), e.Limits.MaxAttributes, &e.Cuts.Attributes)))
	}
	b = binary.AppendUvarint(b, uint64(s.DroppedEventsCount())+uint64(e.dropped(events.Len(), e.Limits.MaxEvents, &e.Cuts.Events)))

	links := s.Links()
	n = e.kept(links.Len(), e.Limits.MaxLinks)
	e.Items += int64(n)
	b = binary.AppendUvarint(b, uint64(n))
	for i := 0; i < n; i++ {
		l := links.At(i)
		tid := l.TraceID()
		b = append(b, tid[:]...)
		lsid := l.SpanID()
		b = append(b, lsid[:]...)
		b = e.appendString(b, l.TraceState().AsRaw())
		b = binary.AppendUvarint(b, uint64(l.Flags()))
		b = e.appendMap(b, l.Attributes(), nil, 0)
		b = binary.AppendUvarint(b, uint64(l.DroppedAttributesCount())+uint64(e.dropped(l.Attributes().Len(), e.Limits.MaxAttributes, &e.Cuts.Attributes)))
	}
	b = binary.AppendUvarint(b, uint64(s.DroppedLinksCount())+uint64(e.dropped(links.Len(), e.Limits.MaxLinks, &e.Cuts.Links)))
	binary.LittleEndian.PutUint16(b[mark:], uint16(min(e.values+resourceCuts, math.MaxUint16)))
	return closeRecord(b, start, body)
}

// closeRecord writes the length of the record body that starts at body,
// moving the body to fit the length's size.
func closeRecord(b []byte, start, body int) []byte {
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(len(b)-body))
	if h > spanLenRoom {
		b = slices.Insert(b, body, make([]byte, h-spanLenRoom)...)
	} else if h < spanLenRoom {
		b = append(b[:start+1+h], b[body:]...)
	}
	copy(b[start+1:], hdr[:h])
	return b
}

// kept is how many of n items a limit keeps.
func (e *Encoder) kept(n, limit int) int {
	if limit > 0 && n > limit {
		return limit
	}
	return n
}

// dropped is how many of n items a limit drops, counted into c.
func (e *Encoder) dropped(n, limit int, c *int64) int {
	d := n - e.kept(n, limit)
	*c += int64(d)
	return d
}

// dropElements counts the elements a limit dropped from an array or map
// value: the value counts as cut, which marks its span.
func (e *Encoder) dropElements(n int) {
	if n > 0 {
		e.Cuts.Attributes += int64(n)
		e.values++
	}
}

// cut returns s cut to the byte budget, at a character boundary, and
// charges the budget; a cut is counted.
func (e *Encoder) cut(s string, budget *int) string {
	if e.Limits.MaxValueBytes <= 0 {
		return s
	}
	if len(s) <= *budget {
		*budget -= len(s)
		return s
	}
	n := *budget
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	*budget = 0
	e.values++
	e.Cuts.Values++
	return s[:n]
}

func (e *Encoder) appendString(b []byte, s string) []byte {
	budget := e.Limits.MaxValueBytes
	return appendString(b, e.cut(s, &budget))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendMap appends attributes, or the entries of a map value at depth
// (0 for attributes), within the limits.
func (e *Encoder) appendMap(b []byte, m pcommon.Map, w *Watch, depth int) []byte {
	n := e.kept(m.Len(), e.Limits.MaxAttributes)
	e.Items += int64(n)
	b = binary.AppendUvarint(b, uint64(n))
	i := 0
	for k, v := range m.All() {
		if i == n {
			break
		}
		i++
		start := len(b)
		budget := e.Limits.MaxValueBytes
		key := e.cut(k, &budget)
		b = appendString(b, key)
		budget = e.Limits.MaxValueBytes
		b = e.appendValue(b, v, depth+1, &budget)
		if w != nil && w.Each != nil {
			w.Each(key, v, b[start:])
		}
		if w != nil && k == w.Key && w.Key != "" {
			w.Value, w.Found = v.AsString(), true
		}
	}
	return b
}

// appendValue appends v, which sits depth levels deep; its strings, and the
// keys of its maps, share the byte budget.
func (e *Encoder) appendValue(b []byte, v pcommon.Value, depth int, budget *int) []byte {
	if depth > MaxValueDepth && v.Type() != pcommon.ValueTypeEmpty {
		e.values++
		e.Cuts.Values++
		return append(b, byte(ValueEmpty))
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		b = append(b, byte(ValueStr))
		return appendString(b, e.cut(v.Str(), budget))
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
		if e.Limits.MaxValueBytes > 0 && len(raw) > *budget {
			raw = raw[:*budget]
			e.values++
			e.Cuts.Values++
		}
		if e.Limits.MaxValueBytes > 0 {
			*budget -= len(raw)
		}
		b = binary.AppendUvarint(b, uint64(len(raw)))
		return append(b, raw...)
	case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
		if v.Type() == pcommon.ValueTypeMap {
			b = append(b, byte(ValueMap))
			m := v.Map()
			n := e.kept(m.Len(), e.Limits.MaxAttributes)
			e.dropElements(m.Len() - n)
			e.Items += int64(n)
			b = binary.AppendUvarint(b, uint64(n))
			i := 0
			for k, kv := range m.All() {
				if i == n {
					break
				}
				i++
				b = appendString(b, e.cut(k, budget))
				b = e.appendValue(b, kv, depth+1, budget)
			}
			return b
		}
		b = append(b, byte(ValueSlice))
		sl := v.Slice()
		n := e.kept(sl.Len(), e.Limits.MaxAttributes)
		e.dropElements(sl.Len() - n)
		e.Items += int64(n)
		b = binary.AppendUvarint(b, uint64(n))
		for i := 0; i < n; i++ {
			b = e.appendValue(b, sl.At(i), depth+1, budget)
		}
		return b
	default:
		return append(b, byte(ValueEmpty))
	}
}

// decode appends every span in d's data to spans, in the order they were
// appended; each is decoded in place, so a span costs no allocation of its
// own. Strings in the result share memory with the data. A span that cannot
// be read is skipped, and so is the rest of the data after a record that
// cannot be: decode returns every span it could read, and the first error.
func (d *decoder) decode(traceID [16]byte, resolve Resolver, spans []Span, seen *[]decodedResource) ([]Span, error) {
	var (
		res      *Resource
		received int64
		first    error
		// sub reads one span record; one for all of them, so that it costs
		// one allocation per trace, not one per span.
		sub = decoder{arena: d.arena}
	)
	for d.off < len(d.buf) && d.err == nil {
		switch d.byte() {
		case recordResource:
			received = d.varint()
			id := d.uint32()
			if d.err != nil {
				break
			}
			if res = d.resource(seen, id, resolve); res == nil {
				// The spans are still served, without their resource.
				first = cmp.Or(first, fmt.Errorf("%w: resource %d could not be read", ErrCorrupt, id))
				res = &Resource{}
			}
		case recordSpan:
			body := d.raw(d.count(1))
			if d.err != nil {
				break
			}
			if res == nil {
				first = cmp.Or(first, fmt.Errorf("%w: span before its resource at offset %d", ErrCorrupt, d.off))
				res = &Resource{}
			}
			sub.buf, sub.off, sub.err = body, 0, nil
			spans = append(spans, Span{TraceID: traceID, Resource: res, ReceivedUnixNano: received})
			sub.span(&spans[len(spans)-1])
			if sub.err == nil && sub.off != len(body) {
				sub.fail("trailing bytes")
			}
			if sub.err != nil {
				first = cmp.Or(first, sub.err)
				spans = spans[:len(spans)-1]
			}
		default:
			d.fail("unknown record")
		}
	}
	return spans, cmp.Or(first, d.err)
}

// DecodeAll returns every span in data; sizeHint is how many there probably are.
func DecodeAll(data []byte, traceID [16]byte, resolve Resolver, sizeHint int) ([]Span, error) {
	var sc Scratch
	d := decoder{buf: data, arena: &sc.kv}
	return d.decode(traceID, resolve, slices.Grow(sc.spans[:0], sizeHint), &sc.seen)
}

// Scratch is reusable memory for decoding one trace at a time. The spans
// from a Decode are valid until the next Decode with the same Scratch.
type Scratch struct {
	records []byte
	spans   []Span
	kv      []KeyValue
	// seen are the resources decoded: each batch, so each block, names its
	// resource again, and each resource decodes once per trace.
	seen []decodedResource
}

// Decode unseals blocks (see Seal) into sc's memory and decodes every span;
// sizeHint is how many there probably are. The spans' strings point into
// sc's copy, never into blocks, so blocks may be reused once Decode returns.
// What cannot be read is skipped: Decode returns every span it could read,
// and the first error; a block that does not unseal costs its own spans only.
func (sc *Scratch) Decode(traceID [16]byte, blocks []byte, resolve Resolver, sizeHint int) ([]Span, error) {
	sc.records, sc.kv, sc.spans = sc.records[:0], sc.kv[:0], sc.spans[:0]
	return sc.DecodeMore(traceID, blocks, resolve, sizeHint)
}

// DecodeMore is Decode keeping the spans of the Decode and DecodeMore
// calls before it: the result holds them all, and they all stay valid.
// Each call's blocks name resources by ids of their own (resolve's).
func (sc *Scratch) DecodeMore(traceID [16]byte, blocks []byte, resolve Resolver, sizeHint int) ([]Span, error) {
	// Growing may move the buffers: what was decoded before keeps the
	// memory it points into.
	sc.records = slices.Grow(sc.records, UnsealedLen(blocks))
	clear(sc.seen) // the resources of the last trace are not to be kept alive
	sc.seen = sc.seen[:0]
	spans := slices.Grow(sc.spans, sizeHint)
	var first error
	for len(blocks) > 0 {
		block, rest, err := SplitBlock(blocks)
		if err != nil {
			first = cmp.Or(first, err)
			break
		}
		blocks = rest
		start := len(sc.records)
		records, err := Unseal(sc.records, block)
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		sc.records = records
		d := decoder{buf: records[start:], arena: &sc.kv}
		spans, err = d.decode(traceID, resolve, spans, &sc.seen)
		first = cmp.Or(first, err)
	}
	sc.spans = spans
	return spans, first
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
	var cuts uint16
	if b := d.raw(2); b != nil {
		cuts = binary.LittleEndian.Uint16(b)
	}
	s.Attributes = d.attrs(0)
	if cuts > 0 && d.err == nil {
		// The mark goes after the span's own attributes, in a list of its own:
		// the arena's lists must not grow into each other.
		kvs := d.kvs(len(s.Attributes) + 1)
		copy(kvs, s.Attributes)
		kvs[len(kvs)-1] = KeyValue{Key: TruncatedValuesKey, Value: IntValue(int64(cuts))}
		s.Attributes = kvs
	}
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
