// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package nesting measures how deeply an OTLP trace export request nests its
// attribute values, before anything unmarshals it. pdata unmarshals an
// AnyValue by recursion, one stack frame per level: a value nested a million
// levels deep overflows the goroutine stack, a fatal error no recover stops.
// These scans walk the encoded request with a stack of their own, bounded by
// the limit, and stop at the first value too deep.
package nesting // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/nesting"

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// TooDeepError says that a request nests attribute values deeper than the limit.
type TooDeepError struct{ Limit int }

func (e *TooDeepError) Error() string {
	return fmt.Sprintf("an attribute value is nested deeper than %d levels of arrays and maps, the most this receiver accepts", e.Limit)
}

// MalformedError says that a request is not one the scan can read. The scan
// refuses it rather than let the unmarshaler read what the scan did not:
// pdata accepts a few encodings no OTLP client writes (protobuf groups,
// overlong varints; JSON that is not valid JSON), and past one of them a
// value of any depth would go unchecked.
type MalformedError struct{ What string }

func (e *MalformedError) Error() string {
	return "the request is not a valid OTLP trace export request: " + e.What
}

// message is a protobuf message type on the path from the request to a value.
type message uint8

const (
	mOther message = iota // a message holding no attribute values: skipped whole
	mRequest
	mResourceSpans
	mResource
	mScopeSpans
	mScope
	mSpan
	mEvent
	mLink
	mKeyValue
	mAnyValue
	mArrayValue
	mKeyValueList
)

// child is the type of field f of message m, for the fields that can lead to
// an attribute value; every other field is skipped.
func child(m message, f uint64) message {
	switch m {
	case mRequest:
		if f == 1 {
			return mResourceSpans
		}
	case mResourceSpans:
		switch f {
		case 1:
			return mResource
		case 2, 1000: // 1000: the deprecated instrumentation_library_spans, still read by pdata
			return mScopeSpans
		}
	case mResource:
		if f == 1 {
			return mKeyValue
		}
	case mScopeSpans:
		switch f {
		case 1:
			return mScope
		case 2:
			return mSpan
		}
	case mScope:
		if f == 3 {
			return mKeyValue
		}
	case mSpan:
		switch f {
		case 9:
			return mKeyValue
		case 11:
			return mEvent
		case 13:
			return mLink
		}
	case mEvent:
		if f == 3 {
			return mKeyValue
		}
	case mLink:
		if f == 4 {
			return mKeyValue
		}
	case mKeyValue:
		if f == 2 {
			return mAnyValue
		}
	case mAnyValue:
		switch f {
		case 5:
			return mArrayValue
		case 6:
			return mKeyValueList
		}
	case mArrayValue:
		if f == 1 {
			return mAnyValue
		}
	case mKeyValueList:
		if f == 1 {
			return mKeyValue
		}
	}
	return mOther
}

type frame struct {
	end int
	m   message
}

// CheckProto returns a *TooDeepError when the protobuf-encoded
// ExportTraceServiceRequest in b holds an attribute value (of a resource,
// scope, span, event or link) nested more than limit levels deep: a value is
// level 1, a value inside an array or map one level deeper. It returns a
// *MalformedError for bytes it cannot read.
func CheckProto(b []byte, limit int) error {
	// A value at level n sits under at most 3n+6 messages.
	stack := make([]frame, 1, 16)
	stack[0] = frame{end: len(b), m: mRequest}
	depth := 0
	pos := 0
	for {
		for pos == stack[len(stack)-1].end {
			if stack[len(stack)-1].m == mAnyValue {
				depth--
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return nil
			}
		}
		end := stack[len(stack)-1].end
		m := stack[len(stack)-1].m
		tag, n := uvarint(b[pos:end])
		if n <= 0 {
			return &MalformedError{What: fmt.Sprintf("bad field tag at offset %d", pos)}
		}
		pos += n
		switch tag & 7 {
		case 0: // varint
			if _, n = uvarint(b[pos:end]); n <= 0 {
				return &MalformedError{What: fmt.Sprintf("bad varint at offset %d", pos)}
			}
			pos += n
		case 1: // fixed64
			pos += 8
		case 5: // fixed32
			pos += 4
		case 2: // length-delimited
			l, n := uvarint(b[pos:end])
			if n <= 0 || l > uint64(end-pos-n) {
				return &MalformedError{What: fmt.Sprintf("bad length at offset %d", pos)}
			}
			pos += n
			child := child(m, tag>>3)
			if child == mOther || (child == mKeyValue && depth < limit && scalarKeyValue(b[pos:pos+int(l)])) {
				pos += int(l)
				continue
			}
			if child == mAnyValue {
				if depth++; depth > limit {
					return &TooDeepError{Limit: limit}
				}
			}
			stack = append(stack, frame{end: pos + int(l), m: child})
			continue
		default: // groups (3, 4), which OTLP never uses, and invalid wire types
			return &MalformedError{What: fmt.Sprintf("wire type %d at offset %d", tag&7, pos)}
		}
		if pos > end {
			return &MalformedError{What: fmt.Sprintf("field past its message's end at offset %d", pos)}
		}
	}
}

// uvarint is binary.Uvarint with the one-byte case, nearly every tag and
// most lengths, inlined: the scan reads several for each attribute.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return binary.Uvarint(b)
}

// scalarKeyValue reports whether kv, a KeyValue's encoding, is the common
// case: a key, then a value that is one string, boolean, number or bytes.
// Such an attribute nests nothing and is skipped whole: most attributes
// are, and pushing two frames for each cost the scan most of its time.
func scalarKeyValue(kv []byte) bool {
	rest, ok := skipField(kv, 0x0a) // key
	if !ok {
		return false
	}
	if len(rest) == 0 {
		return true // no value
	}
	if rest[0] != 0x12 { // value
		return false
	}
	l, n := uvarint(rest[1:])
	if n <= 0 || l != uint64(len(rest)-1-n) {
		return false
	}
	value := rest[1+n:]
	if len(value) == 0 {
		return true
	}
	switch value[0] {
	case 0x0a, 0x3a: // string_value, bytes_value
		rest, ok = skipField(value, value[0])
		return ok && len(rest) == 0
	case 0x10, 0x18: // bool_value, int_value
		_, n := uvarint(value[1:])
		return n > 0 && 1+n == len(value)
	case 0x21: // double_value
		return len(value) == 9
	}
	return false
}

// skipField skips one length-delimited field with tag byte tag at b's start.
func skipField(b []byte, tag byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != tag {
		return b, false
	}
	l, n := uvarint(b[1:])
	if n <= 0 || l > uint64(len(b)-1-n) {
		return b, false
	}
	return b[1+n+int(l):], true
}

// CheckJSON is CheckProto for the OTLP/JSON encoding. A value's level is
// one more than the number of "arrayValue" and "kvlistValue" objects around
// it, as pdata reads them (either spelling, escapes decoded). The body must
// be valid JSON, without empty keys: pdata's reader does not check the
// syntax it skips, and reads an empty key as the end of an object, so past
// either it could read nesting the scan did not see. Whatever the keys,
// nothing nested deeper than the deepest valid request could be gets
// through: JSON nesting is bounded as well.
func CheckJSON(b []byte, limit int) error {
	// A valid request reaches a level-1 value within 10 levels of JSON, and
	// each further level adds at most 4: {"kvlistValue":{"values":[{"value":{...
	maxJSONDepth := 12 + 4*limit
	// Valid is iterative, and refuses nesting past 10,000 levels by itself;
	// such a body is answered as too deep, which is what it is.
	if !json.Valid(b) {
		if nestsDeeper(b, maxJSONDepth) {
			return &TooDeepError{Limit: limit}
		}
		return &MalformedError{What: "the body is not valid JSON"}
	}
	type container struct {
		object bool
		value  bool // an arrayValue or kvlistValue
	}
	stack := make([]container, 0, 16)
	values := 0    // value containers on the stack
	var key []byte // the last key read in the innermost object
	isKey := false // the next string in an object is a key
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			inValue := len(stack) > 0 && stack[len(stack)-1].object && isValueKey(key)
			if len(stack) >= maxJSONDepth || (c == '{' && values >= limit) {
				return &TooDeepError{Limit: limit}
			}
			stack = append(stack, container{object: c == '{', value: inValue})
			if inValue {
				values++
			}
			key, isKey = nil, c == '{'
		case '}', ']':
			if stack[len(stack)-1].value {
				values--
			}
			stack = stack[:len(stack)-1]
			key, isKey = nil, false
		case ',':
			isKey = len(stack) > 0 && stack[len(stack)-1].object
		case '"':
			start := i
			escaped := false
			for i++; b[i] != '"'; i++ { // valid JSON: every string ends
				if b[i] == '\\' {
					escaped = true
					i++
				}
			}
			if isKey {
				if i == start+1 {
					return &MalformedError{What: fmt.Sprintf("empty object key at offset %d", start)}
				}
				key = keyOf(b[start:i+1], escaped)
				isKey = false
			}
		}
	}
	return nil
}

// nestsDeeper reports whether b, valid JSON or not, opens more than max
// brackets at once outside its strings.
func nestsDeeper(b []byte, maxDepth int) bool {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > maxDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// keyOf returns a short key decoded, or nil: no key that matters is long.
// The keys that matter have 12 characters at most, and an escape takes 12
// bytes at most (a surrogate pair), so longer encodings cannot be one.
func keyOf(quoted []byte, escaped bool) []byte {
	const longest = 12*12 + 2
	if len(quoted) > longest {
		return nil
	}
	if !escaped {
		return quoted[1 : len(quoted)-1]
	}
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return nil
	}
	return []byte(s)
}

func isValueKey(k []byte) bool {
	switch string(k) {
	case "arrayValue", "array_value", "kvlistValue", "kvlist_value":
		return true
	}
	return false
}
