// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// AsString renders the value as text the way pcommon.Value.AsString does.
func (v Value) AsString() string {
	switch v.Type {
	case ValueStr:
		return v.Str
	case ValueInt:
		return strconv.FormatInt(v.Int(), 10)
	case ValueDouble:
		return strconv.FormatFloat(v.Double(), 'f', -1, 64)
	case ValueBool:
		return strconv.FormatBool(v.Bool())
	case ValueBytes:
		return base64.StdEncoding.EncodeToString(v.rawBytes())
	case ValueMap, ValueSlice:
		return string(v.AppendJSON(nil))
	default:
		return ""
	}
}

// AppendJSON appends the value as typed JSON: numbers stay numbers, arrays stay
// arrays, maps become objects, bytes become base64 strings. Doubles that JSON
// cannot carry (NaN, ±Inf) become strings.
func (v Value) AppendJSON(b []byte) []byte {
	switch v.Type {
	case ValueStr:
		return AppendJSONString(b, v.Str)
	case ValueInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case ValueDouble:
		return AppendJSONFloat(b, v.Double())
	case ValueBool:
		return strconv.AppendBool(b, v.Bool())
	case ValueBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.rawBytes())
		return append(b, '"')
	case ValueSlice:
		b = append(b, '[')
		for i := range v.kids {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.kids[i].Value.AppendJSON(b)
		}
		return append(b, ']')
	case ValueMap:
		return AppendJSONObject(b, v.kids)
	default:
		return append(b, "null"...)
	}
}

// rawBytes is a ValueBytes' bytes, sharing the string's memory: read only.
func (v Value) rawBytes() []byte { return unsafe.Slice(unsafe.StringData(v.Str), len(v.Str)) }

// AppendJSONObject appends attributes as one JSON object. A key repeated in
// the input keeps its last value's position-independent JSON semantics.
func AppendJSONObject(b []byte, attrs []KeyValue) []byte {
	b = append(b, '{')
	for i := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, attrs[i].Key)
		b = append(b, ':')
		b = attrs[i].Value.AppendJSON(b)
	}
	return append(b, '}')
}

// AppendJSONFloat appends f as a JSON number, or as a string when JSON has no number for it.
func AppendJSONFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// and <, >, & are escaped so that a response is safe to embed in HTML.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
