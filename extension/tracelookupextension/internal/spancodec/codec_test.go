// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// richTraces returns one resource with two spans that use every field the codec keeps.
func richTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutInt("process.pid", 42)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().SetVersion("1.2.3")
	ss.Scope().Attributes().PutBool("scope.flag", true)

	s := ss.Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	s.SetSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x1, 0x2})
	s.SetParentSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, 9})
	s.TraceState().FromRaw("vendor=x")
	s.SetFlags(1)
	s.SetName("charge")
	s.SetKind(ptrace.SpanKindClient)
	s.SetStartTimestamp(1_700_000_000_000_000_000)
	s.SetEndTimestamp(1_700_000_000_250_000_000)
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage("declined")
	a := s.Attributes()
	a.PutStr("str", "v<&>\"")
	a.PutInt("int", -7)
	a.PutDouble("double", 2.5)
	a.PutDouble("nan", math.NaN())
	a.PutBool("bool", true)
	a.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2})
	sl := a.PutEmptySlice("slice")
	sl.AppendEmpty().SetStr("x")
	sl.AppendEmpty().SetInt(1)
	m := a.PutEmptyMap("map")
	m.PutStr("k", "v")
	m.PutEmptyMap("nested").PutDouble("d", 1e-9)
	a.PutEmpty("empty")
	s.SetDroppedAttributesCount(3)
	e := s.Events().AppendEmpty()
	e.SetName("exception")
	e.SetTimestamp(1_700_000_000_100_000_000)
	e.Attributes().PutStr("exception.message", "boom")
	e.SetDroppedAttributesCount(1)
	s.SetDroppedEventsCount(4)
	l := s.Links().AppendEmpty()
	l.SetTraceID(pcommon.TraceID{16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1})
	l.SetSpanID(pcommon.SpanID{1, 1, 1, 1, 1, 1, 1, 1})
	l.TraceState().FromRaw("a=b")
	l.SetFlags(1)
	l.Attributes().PutStr("link.kind", "follows")
	l.SetDroppedAttributesCount(2)
	s.SetDroppedLinksCount(5)

	// A span that ended before it started must survive as sent.
	s2 := ss.Spans().AppendEmpty()
	s2.SetTraceID(s.TraceID())
	s2.SetSpanID(pcommon.SpanID{2, 2, 2, 2, 2, 2, 2, 2})
	s2.SetStartTimestamp(500)
	s2.SetEndTimestamp(100)
	return td
}

// testResources is the resolver for encode's records: resource 7 is richTraces' resource.
func testResources(id uint32) []byte {
	if id != 7 {
		return nil
	}
	rs := richTraces().ResourceSpans().At(0)
	body, _ := new(Encoder).AppendResourceBody(nil, rs.Resource(), rs.ScopeSpans().At(0).Scope(), nil)
	return body
}

func encode(td ptrace.Traces, received int64) []byte {
	var b []byte
	ss := td.ResourceSpans().At(0).ScopeSpans().At(0)
	b = AppendResource(b, received, 7)
	var e Encoder
	for i := 0; i < ss.Spans().Len(); i++ {
		b = e.AppendSpan(b, ss.Spans().At(i), nil, 0)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	td := richTraces()
	data := encode(td, 77)
	id := [16]byte(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID())
	spans, err := DecodeAll(data, id, testResources, 2)
	require.NoError(t, err)
	require.Len(t, spans, 2)

	s := spans[0]
	assert.Equal(t, id, s.TraceID)
	assert.Equal(t, [8]byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x1, 0x2}, s.SpanID)
	assert.Equal(t, [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, s.ParentSpanID)
	assert.True(t, s.HasParent())
	assert.Equal(t, "vendor=x", s.TraceState)
	assert.Equal(t, uint32(1), s.Flags)
	assert.Equal(t, "charge", s.Name)
	assert.Equal(t, KindClient, s.Kind)
	assert.Equal(t, uint64(1_700_000_000_000_000_000), s.StartUnixNano)
	assert.Equal(t, uint64(1_700_000_000_250_000_000), s.EndUnixNano)
	assert.Equal(t, StatusError, s.StatusCode)
	assert.Equal(t, "declined", s.StatusMessage)
	assert.Equal(t, uint32(3), s.DroppedAttributes)
	assert.JSONEq(t, `{"str":"v\u003c\u0026\u003e\"","int":-7,"double":2.5,"nan":"NaN","bool":true,"bytes":"AAEC",
		"slice":["x",1],"map":{"k":"v","nested":{"d":1e-9}},"empty":null}`, string(AppendJSONObject(nil, s.Attributes)))
	require.Len(t, s.Events, 1)
	assert.Equal(t, Event{TimeUnixNano: 1_700_000_000_100_000_000, Name: "exception",
		Attributes: []KeyValue{{Key: "exception.message", Value: StrValue("boom")}}, DroppedAttributes: 1}, s.Events[0])
	assert.Equal(t, uint32(4), s.DroppedEvents)
	require.Len(t, s.Links, 1)
	assert.Equal(t, [16]byte{16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, s.Links[0].TraceID)
	assert.Equal(t, "a=b", s.Links[0].TraceState)
	assert.Equal(t, uint32(2), s.Links[0].DroppedAttributes)
	assert.Equal(t, uint32(5), s.DroppedLinks)

	require.NotNil(t, s.Resource)
	assert.Equal(t, int64(77), s.ReceivedUnixNano)
	assert.Equal(t, "checkout", s.ServiceName())
	assert.Equal(t, "lib", s.Resource.ScopeName)
	assert.Equal(t, "1.2.3", s.Resource.ScopeVersion)
	assert.Equal(t, []KeyValue{{Key: "scope.flag", Value: BoolValue(true)}}, s.Resource.ScopeAttributes)
	v, ok := s.ResourceAttr("process.pid")
	assert.True(t, ok)
	assert.Equal(t, "42", v.AsString())

	s2 := spans[1]
	assert.False(t, s2.HasParent())
	assert.Equal(t, uint64(500), s2.StartUnixNano)
	assert.Equal(t, uint64(100), s2.EndUnixNano)
	assert.Same(t, s.Resource, s2.Resource)
}

func TestWatch(t *testing.T) {
	td := richTraces()
	rs := td.ResourceSpans().At(0)
	w := Watch{Key: "process.pid"}
	var e Encoder
	e.AppendResourceBody(nil, rs.Resource(), rs.ScopeSpans().At(0).Scope(), &w)
	assert.Equal(t, Watch{Key: "process.pid", Value: "42", Found: true}, w)
	w = Watch{Key: "int"}
	e.AppendSpan(nil, rs.ScopeSpans().At(0).Spans().At(0), &w, 0)
	assert.Equal(t, "-7", w.Value)
	w = Watch{Key: "absent"}
	e.AppendSpan(nil, rs.ScopeSpans().At(0).Spans().At(0), &w, 0)
	assert.False(t, w.Found)
}

func TestDecodeRejectsCorruptData(t *testing.T) {
	data := encode(richTraces(), 1)
	for n := 0; n < len(data); n++ {
		_, err := DecodeAll(data[:n], [16]byte{1}, testResources, 0)
		if n == 0 {
			assert.NoError(t, err)
			continue
		}
		// Every strict prefix either ends on a record boundary or is an error; it never panics.
		if err != nil {
			assert.ErrorIs(t, err, ErrCorrupt)
		}
	}
	_, err := DecodeAll([]byte{recordSpan}, [16]byte{1}, testResources, 0)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = DecodeAll([]byte{'X'}, [16]byte{1}, testResources, 0)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = DecodeAll(AppendResource(nil, 1, 8), [16]byte{1}, testResources, 0)
	assert.ErrorIs(t, err, ErrCorrupt, "a resource the resolver does not know")
}

func TestAsString(t *testing.T) {
	assert.Equal(t, "1.5", DoubleValue(1.5).AsString())
	assert.Equal(t, "true", BoolValue(true).AsString())
	assert.Equal(t, "false", BoolValue(false).AsString())
	assert.Equal(t, `["a",1]`, SliceValue([]Value{StrValue("a"), IntValue(1)}).AsString())
	assert.Equal(t, `{"k":"AQI="}`, MapValue([]KeyValue{{Key: "k", Value: BytesValue([]byte{1, 2})}}).AsString())
	assert.Empty(t, Value{}.AsString())
}

func TestAppendJSONString(t *testing.T) {
	got := string(AppendJSONString(nil, "a\"\\\n\t\x01\xff\u2028é"))
	assert.Equal(t, `"a\"\\\n\t\u0001\ufffd\u2028é"`, got)
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(richTraces(), 1))
	f.Add([]byte{recordResource, 0, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		spans, err := DecodeAll(data, [16]byte{1}, testResources, 0)
		if err != nil {
			return
		}
		for i := range spans {
			// Decoded spans must render without panicking.
			_ = AppendJSONObject(nil, spans[i].Attributes)
		}
	})
}

func TestSealRoundTrip(t *testing.T) {
	var data []byte
	for i := 0; i < 20; i++ {
		data = append(data, encode(richTraces(), int64(i))...)
	}
	var scratch []byte
	block, scratch := Seal(nil, data[:len(data)/2], scratch)
	assert.Less(t, len(block), len(data)/2)
	block, scratch = Seal(block, data[len(data)/2:], scratch)
	// A block that does not compress is kept raw, and still reads back.
	tiny := []byte{1, 2, 3}
	block, _ = Seal(block, tiny, scratch)
	assert.Equal(t, []byte{byte(len(tiny)<<1 | 1), 1, 2, 3}, block[len(block)-4:], "raw, with its flag")
	out, err := Unseal([]byte("prefix"), block)
	require.NoError(t, err)
	assert.Equal(t, append(append([]byte("prefix"), data...), tiny...), out)

	_, err = Unseal(nil, []byte("not s2"))
	assert.Error(t, err)
	_, err = Unseal(nil, []byte{0x80})
	assert.Error(t, err, "truncated header")
	_, err = Unseal(nil, []byte{8, 1})
	assert.Error(t, err, "block longer than the data")
}
