// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package nesting

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/hostile"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// nest fills v with a value depth levels deep, alternating arrays and maps
// when mixed, so that both paths are walked.
func nest(v pcommon.Value, depth int, mixed bool) {
	for level := 1; level < depth; level++ {
		if mixed && level%2 == 0 {
			v = v.SetEmptyMap().PutEmpty("k")
		} else {
			v = v.SetEmptySlice().AppendEmpty()
		}
	}
	v.SetStr("leaf")
}

// valueDepth is the reference: the deepest value of the request, by
// recursion. An empty value counts for nothing: pdata gives every map entry
// one, sent or not, and nothing recurses into it.
func valueDepth(v pcommon.Value) int {
	d := 0
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return 0
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			d = max(d, valueDepth(e))
		}
	case pcommon.ValueTypeMap:
		d = mapDepth(v.Map())
	}
	return d + 1
}

func mapDepth(m pcommon.Map) int {
	d := 0
	for _, v := range m.All() {
		d = max(d, valueDepth(v))
	}
	return d
}

func requestDepth(td ptrace.Traces) int {
	d := 0
	for _, rs := range td.ResourceSpans().All() {
		d = max(d, mapDepth(rs.Resource().Attributes()))
		for _, ss := range rs.ScopeSpans().All() {
			d = max(d, mapDepth(ss.Scope().Attributes()))
			for _, sp := range ss.Spans().All() {
				d = max(d, mapDepth(sp.Attributes()))
				for _, e := range sp.Events().All() {
					d = max(d, mapDepth(e.Attributes()))
				}
				for _, l := range sp.Links().All() {
					d = max(d, mapDepth(l.Attributes()))
				}
			}
		}
	}
	return d
}

// where names each place an attribute value can be.
var where = map[string]func(ptrace.Traces) pcommon.Map{
	"resource": func(td ptrace.Traces) pcommon.Map { return td.ResourceSpans().At(0).Resource().Attributes() },
	"scope": func(td ptrace.Traces) pcommon.Map {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Attributes()
	},
	"span": func(td ptrace.Traces) pcommon.Map {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	},
	"event": func(td ptrace.Traces) pcommon.Map {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Events().AppendEmpty().Attributes()
	},
	"link": func(td ptrace.Traces) pcommon.Map {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Links().AppendEmpty().Attributes()
	},
}

func request(place string, depth int, mixed bool) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	sp.Attributes().PutStr("flat", "x")
	nest(where[place](td).PutEmpty("deep"), depth, mixed)
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func TestCheckAtAndPastTheLimit(t *testing.T) {
	const limit = 8
	for place := range where {
		for _, mixed := range []bool{false, true} {
			for depth := limit - 1; depth <= limit+2; depth++ {
				req := request(place, depth, mixed)
				require.Equal(t, depth, requestDepth(req.Traces()))
				pb, err := req.MarshalProto()
				require.NoError(t, err)
				js, err := req.MarshalJSON()
				require.NoError(t, err)
				for name, err := range map[string]error{"proto": CheckProto(pb, limit), "json": CheckJSON(js, limit)} {
					if depth <= limit {
						assert.NoError(t, err, "%s %s depth %d mixed %v", name, place, depth, mixed)
						continue
					}
					var tooDeep *TooDeepError
					if assert.True(t, errors.As(err, &tooDeep), "%s %s depth %d mixed %v: %v", name, place, depth, mixed, err) {
						assert.Equal(t, limit, tooDeep.Limit)
					}
				}
			}
		}
	}
}

// The crash from the issue: a value nested over a million levels is refused
// by a scan that does not recurse, in either encoding.
func TestCheckMillionLevels(t *testing.T) {
	const levels = 1_300_000
	pb := hostile.DeepProto(levels)
	assert.Error(t, CheckProto(pb, 64))
	js := string(hostile.DeepJSON(levels))
	assert.Error(t, CheckJSON([]byte(js), 64))
	// Escaped keys are decoded, as pdata decodes them.
	esc := strings.ReplaceAll(js, "arrayValue", `array\u0056alue`)
	assert.Error(t, CheckJSON([]byte(esc), 64))
	// Keys pdata does not know still cannot nest past the JSON bound.
	other := strings.ReplaceAll(js, "arrayValue", "unknown")
	assert.Error(t, CheckJSON([]byte(other), 64))
}

// bypasses are requests pdata reads whose prefix a scan that skips what it
// cannot read would stop at, leaving a value 200 levels deep unchecked.
func bypasses() map[string][]byte {
	deep := hostile.DeepProto(200)
	out := map[string][]byte{}
	for name, prefix := range map[string][]byte{
		"overlong varint": {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"group":           {0x13, 0x0a, 0x01, 0x0f},
	} {
		out[name] = append(append([]byte(nil), prefix...), deep...)
	}
	return out
}

// What the scan cannot read it refuses: pdata reads a few encodings no
// client writes, and a scan that let them through would not see the
// nesting behind them (found in review; each of these carried a value
// nested 200 levels past the scan).
func TestCheckRefusesWhatItCannotRead(t *testing.T) {
	for name, req := range bypasses() {
		var malformed *MalformedError
		assert.True(t, errors.As(CheckProto(req, 64), &malformed), name)
		preq := ptraceotlp.NewExportRequest()
		require.NoError(t, preq.UnmarshalProto(req), "%s: pdata reads it", name)
	}
	for _, b := range [][]byte{{0xff}, {0x0a, 0x7f}, {0x0a, 0x02, 0x12}} {
		var malformed *MalformedError
		assert.True(t, errors.As(CheckProto(b, 8), &malformed), "%x", b)
	}
	assert.NoError(t, CheckProto(nil, 8), "an empty request is a valid one")

	levels := 200
	commas := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":` +
		strings.Repeat(`{"arrayValue":,"values":,`, levels) + `}]}]}]}]}`
	escapedKey := strings.ReplaceAll(string(hostile.DeepJSON(80)), `"arrayValue"`,
		`"\u0061\u0072\u0072\u0061\u0079\u0056\u0061\u006c\u0075\u0065"`)
	emptyKey := `{"resourceSpans":[{"":1,"scopeSpans":[]}]}`
	for name, body := range map[string]string{"commas for brackets": commas, "empty key": emptyKey, "not JSON": `{"resourceSpans":[`} {
		var malformed *MalformedError
		assert.True(t, errors.As(CheckJSON([]byte(body), 64), &malformed), name)
	}
	var tooDeep *TooDeepError
	assert.True(t, errors.As(CheckJSON([]byte(escapedKey), 64), &tooDeep), "a key escaped whole is decoded")
	assert.NoError(t, CheckJSON([]byte(`{}`), 8))
}

// FuzzCheck holds the property the receiver relies on: whatever the scan
// lets through unmarshals, if at all, to a request no deeper than the limit.
func FuzzCheck(f *testing.F) {
	for place := range where {
		for _, depth := range []int{1, 4, 5, 9} {
			req := request(place, depth, depth%2 == 1)
			pb, _ := req.MarshalProto()
			js, _ := req.MarshalJSON()
			f.Add(pb, false)
			f.Add(js, true)
		}
	}
	for _, b := range bypasses() {
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, isJSON bool) {
		const limit = 4
		req := ptraceotlp.NewExportRequest()
		if isJSON {
			if CheckJSON(b, limit) != nil || req.UnmarshalJSON(b) != nil {
				return
			}
		} else if CheckProto(b, limit) != nil || req.UnmarshalProto(b) != nil {
			return
		}
		if d := requestDepth(req.Traces()); d > limit {
			t.Fatalf("accepted a value %d levels deep, past the limit of %d", d, limit)
		}
	})
}

// BenchmarkCheckProto: the scan of a request of 10 traces of 10 spans, the
// load benchmark's, which every request to the receiver pays before pdata
// unmarshals it.
func BenchmarkCheckProto(b *testing.B) {
	req, err := ptraceotlp.NewExportRequestFromTraces(spangen.Batch(0, 10, 0, 10)).MarshalProto()
	require.NoError(b, err)
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		if err := CheckProto(req, 64); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalProto: what pdata's unmarshaling of the same request
// costs, for scale.
func BenchmarkUnmarshalProto(b *testing.B) {
	req, err := ptraceotlp.NewExportRequestFromTraces(spangen.Batch(0, 10, 0, 10)).MarshalProto()
	require.NoError(b, err)
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		r := ptraceotlp.NewExportRequest()
		if err := r.UnmarshalProto(req); err != nil {
			b.Fatal(err)
		}
	}
}
