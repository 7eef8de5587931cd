// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func oneSpan() (ptrace.Traces, ptrace.Span) {
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID([16]byte{1})
	s.SetSpanID([8]byte{1})
	return td, s
}

// decodeOne encodes s under Limits and decodes it back.
func decodeOne(t *testing.T, lim Limits, s ptrace.Span, resourceCuts int) (Span, Cuts) {
	t.Helper()
	e := Encoder{Limits: lim}
	b := e.AppendSpan(AppendResource(nil, 1, 7), s, nil, resourceCuts)
	spans, err := DecodeAll(b, [16]byte{1}, testResources, 1)
	require.NoError(t, err)
	require.Len(t, spans, 1)
	return spans[0], e.Cuts
}

func TestValuesCutAndMarked(t *testing.T) {
	_, s := oneSpan()
	s.SetName(strings.Repeat("n", 100))
	s.Attributes().PutStr("huge", strings.Repeat("x", 19<<20))
	s.Attributes().PutStr("short", "ok")
	s.Attributes().PutStr("utf8", "aaaaaaé") // é is two bytes: the cut must not split it
	s.Attributes().PutEmptyBytes("bytes").FromRaw(make([]byte, 64))
	sl := s.Attributes().PutEmptySlice("array")
	for range 10 {
		sl.AppendEmpty().SetStr("0123456789")
	}
	got, cuts := decodeOne(t, Limits{MaxValueBytes: 16}, s, 2)
	assert.Equal(t, strings.Repeat("n", 16), got.Name)
	v, _ := got.Attr("huge")
	assert.Equal(t, strings.Repeat("x", 16), v.Str)
	v, _ = got.Attr("short")
	assert.Equal(t, "ok", v.Str)
	v, _ = got.Attr("utf8")
	assert.Equal(t, "aaaaaaé", v.Str)
	v, _ = got.Attr("bytes")
	assert.Len(t, v.Str, 16)
	// An array's strings share one value's budget: 16 bytes in all.
	v, _ = got.Attr("array")
	assert.Equal(t, `["0123456789","012345","","","","","","","",""]`, v.AsString())
	// The mark counts the span's cuts and its resource's (2): name, huge,
	// bytes, and the array's cut strings (7 of them).
	mark, ok := got.Attr(TruncatedValuesKey)
	require.True(t, ok)
	assert.Equal(t, int64(2+3+9), mark.Int())
	assert.Equal(t, int64(3+9), cuts.Values)

	utf, _ := decodeOne(t, Limits{MaxValueBytes: 7}, s, 0)
	v, _ = utf.Attr("utf8")
	assert.Equal(t, "aaaaaa", v.Str, "cut before the two-byte character, not inside it")
}

func TestNoMarkWithoutCuts(t *testing.T) {
	_, s := oneSpan()
	s.Attributes().PutStr("k", "v")
	got, cuts := decodeOne(t, Limits{MaxValueBytes: 4096, MaxAttributes: 128, MaxEvents: 128, MaxLinks: 128}, s, 0)
	_, ok := got.Attr(TruncatedValuesKey)
	assert.False(t, ok)
	assert.Equal(t, Cuts{}, cuts)
	assert.Len(t, got.Attributes, 1)
}

func TestCountsCappedIntoDroppedCounts(t *testing.T) {
	_, s := oneSpan()
	for i := range 10 {
		s.Attributes().PutInt(string(rune('a'+i)), int64(i))
		ev := s.Events().AppendEmpty()
		ev.SetName("e")
		for j := range 5 {
			ev.Attributes().PutInt(string(rune('a'+j)), 1)
		}
		s.Links().AppendEmpty().SetSpanID([8]byte{byte(i)})
	}
	s.SetDroppedAttributesCount(1)
	s.SetDroppedEventsCount(2)
	s.SetDroppedLinksCount(3)
	got, cuts := decodeOne(t, Limits{MaxAttributes: 3, MaxEvents: 4, MaxLinks: 5}, s, 0)
	assert.Len(t, got.Attributes, 3)
	assert.Equal(t, uint32(1+7), got.DroppedAttributes)
	require.Len(t, got.Events, 4)
	assert.Len(t, got.Events[0].Attributes, 3)
	assert.Equal(t, uint32(2), got.Events[0].DroppedAttributes)
	assert.Equal(t, uint32(2+6), got.DroppedEvents)
	assert.Len(t, got.Links, 5)
	assert.Equal(t, uint32(3+5), got.DroppedLinks)
	assert.Equal(t, Cuts{Attributes: 7 + 4*2, Events: 6, Links: 5}, cuts)
}

// The trace the issue hid: a value nested deeper than the decoder reads.
// The encoder keeps MaxValueDepth levels, so whatever it wrote reads back.
func TestDeepValuesStoredEmptyAndReadBack(t *testing.T) {
	for _, depth := range []int{MaxValueDepth, MaxValueDepth + 1, 101, 102, 1000} {
		_, s := oneSpan()
		v := s.Attributes().PutEmpty("deep")
		for level := 1; level < depth; level++ {
			if level%2 == 0 {
				v = v.SetEmptyMap().PutEmpty("k")
			} else {
				v = v.SetEmptySlice().AppendEmpty()
			}
		}
		v.SetStr("leaf")
		got, cuts := decodeOne(t, Limits{}, s, 0)
		deep, ok := got.Attr("deep")
		require.True(t, ok)
		levels := 1
		for deep.Type == ValueSlice || deep.Type == ValueMap {
			deep = deep.kids[0].Value
			levels++
		}
		if depth <= MaxValueDepth {
			assert.Equal(t, "leaf", deep.Str)
			assert.Equal(t, depth, levels)
			assert.Zero(t, cuts.Values)
			continue
		}
		assert.Equal(t, ValueEmpty, deep.Type, "cut at the limit")
		assert.Equal(t, MaxValueDepth+1, levels)
		assert.Equal(t, int64(1), cuts.Values)
	}
}

// A span that cannot be read costs that span only: the spans around it are served.
func TestUnreadableSpanSkipped(t *testing.T) {
	td := richTraces()
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	var e Encoder
	b := AppendResource(nil, 1, 7)
	b = e.AppendSpan(b, spans.At(0), nil, 0)
	bad := len(b)
	b = e.AppendSpan(b, spans.At(1), nil, 0)
	b = e.AppendSpan(b, spans.At(0), nil, 0)
	b[bad+2+16+1] = 0xff // the second span's trace state length: now past its record
	got, err := DecodeAll(b, [16]byte{1}, testResources, 3)
	assert.ErrorIs(t, err, ErrCorrupt)
	require.Len(t, got, 2)
	assert.Equal(t, "charge", got[0].Name)
	assert.Equal(t, "charge", got[1].Name)
}

// A block that does not unseal costs its own spans; the other blocks are served.
func TestUnreadableBlockSkipped(t *testing.T) {
	td := richTraces()
	data := encode(td, 1)
	var blocks []byte
	blocks, _ = Seal(blocks, data, nil)
	second := len(blocks)
	blocks, _ = Seal(blocks, data, nil)
	blocks, _ = Seal(blocks, data, nil)
	// Corrupt the second block's payload, keeping its header.
	_, k := readUvarint(blocks[second:])
	for i := second + k; i < second+k+8; i++ {
		blocks[i] ^= 0xff
	}
	var sc Scratch
	got, err := sc.Decode([16]byte{1}, blocks, testResources, 6)
	assert.Error(t, err)
	assert.Len(t, got, 4)
}

func readUvarint(b []byte) (uint64, int) {
	var v uint64
	for i, c := range b {
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// What a limit drops from a resource, a scope or an array value has no
// dropped count of its own to go to: it counts as cut, and marks the span.
func TestResourceAndElementDropsMarked(t *testing.T) {
	td, s := oneSpan()
	rs := td.ResourceSpans().At(0)
	for i := range 5 {
		rs.Resource().Attributes().PutInt(string(rune('a'+i)), 1)
		rs.ScopeSpans().At(0).Scope().Attributes().PutInt(string(rune('a'+i)), 1)
	}
	e := Encoder{Limits: Limits{MaxAttributes: 2}}
	_, resourceCuts := e.AppendResourceBody(nil, rs.Resource(), rs.ScopeSpans().At(0).Scope(), nil)
	assert.Equal(t, 6, resourceCuts, "three resource and three scope attributes dropped")
	assert.Equal(t, int64(6), e.Cuts.Attributes)

	s.Attributes().PutEmptySlice("array").FromRaw([]any{1, 2, 3, 4})
	got, cuts := decodeOne(t, Limits{MaxAttributes: 2}, s, resourceCuts)
	v, _ := got.Attr("array")
	assert.Equal(t, "[1,2]", v.AsString())
	mark, _ := got.Attr(TruncatedValuesKey)
	assert.Equal(t, int64(6+1), mark.Int())
	assert.Equal(t, int64(2), cuts.Attributes)
}

// Cut and Kept keep what the encoder keeps, so that what is indexed for
// search is what is stored.
func TestLimitsCutAgreesWithTheEncoder(t *testing.T) {
	lim := Limits{MaxValueBytes: 5, MaxAttributes: 2}
	for _, str := range []string{"", "abc", "abcde", "abcdef", "héllo", "日本語", "a日本"} {
		_, s := oneSpan()
		s.SetName(str)
		attrs := s.Attributes()
		attrs.Clear()
		attrs.PutStr("k"+str, str)
		attrs.PutStr("b", "x")
		attrs.PutStr("c", "y")
		got, _ := decodeOne(t, lim, s, 0)
		assert.Equal(t, lim.Cut(str), got.Name, str)
		kept := 0
		for _, kv := range got.Attributes {
			if kv.Key != TruncatedValuesKey {
				kept++
			}
		}
		assert.Equal(t, lim.Kept(3), kept)
		assert.Equal(t, lim.Cut("k"+str), got.Attributes[0].Key, str)
		assert.Equal(t, lim.Cut(str), got.Attributes[0].Value.Str, str)
	}
}

// The encoding of a string or boolean attribute is what AppendStrAttr and
// AppendBoolAttr write, as Watch.Each reports it.
func TestEachReportsTheEncoding(t *testing.T) {
	_, s := oneSpan()
	s.Attributes().PutStr("k", "héllo wörld")
	s.Attributes().PutBool("b", true)
	s.Attributes().PutInt("n", 7)
	var got [][]byte
	w := Watch{Each: func(_ string, _ pcommon.Value, enc []byte) { got = append(got, append([]byte(nil), enc...)) }}
	e := Encoder{Limits: Limits{MaxValueBytes: 6}}
	e.AppendSpan(nil, s, &w, 0)
	require.Len(t, got, 3)
	assert.Equal(t, AppendStrAttr(nil, "k", Limits{MaxValueBytes: 6}.Cut("héllo wörld")), got[0])
	assert.Equal(t, AppendBoolAttr(nil, "b", true), got[1])
}
