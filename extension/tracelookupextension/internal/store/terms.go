// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"hash/maphash"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// Terms are what a search can ask of a span: its service, its name, its
// kind, and an attribute with a value. Attribute values are compared by
// type: a number matches the same number however it was written or sent
// (int 500, double 500.0, "5e2" in a query), a boolean its literal, and a
// string itself; every value also matches as a string. Values of other
// types (bytes, arrays, maps) are not searchable.

// serviceNameKey is the resource attribute that names a span's service.
const serviceNameKey = "service.name"

// Term kinds; a value's type is part of its attribute term.
const (
	termName     byte = 'N'
	termKind     byte = 'K'
	termNumber   byte = 'n'
	termFraction byte = 'f'
)

// termHasher hashes terms as the index stores them: names, keys and string
// values cut by the encoder's limits, so that a search matches what a
// lookup shows.
type termHasher struct {
	seed  maphash.Seed
	lim   spancodec.Limits
	empty uint64 // the hash of "", the key of name terms
}

func newTermHasher(lim spancodec.Limits) termHasher {
	seed := maphash.MakeSeed()
	return termHasher{seed: seed, lim: lim, empty: maphash.String(seed, "")}
}

// name is the term of a span name (cut already).
func (t termHasher) name(n string) uint64 {
	return mixTerm(t.empty, maphash.String(t.seed, n), termName)
}

func mixTerm(key, value uint64, kind byte) uint64 {
	x := key*0x9E3779B97F4A7C15 ^ value ^ uint64(kind)<<56
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

func (t termHasher) kind(k int32) uint64 {
	return mixTerm(0, uint64(k), termKind)
}

// number is a number as the index compares it: an integral value as its
// integer (int 500 and double 500.0 alike), any other by its bits. Finding
// it needs no formatting, which ingest would pay for every numeric value.
type number struct {
	bits     uint64
	fraction bool // bits are a float64's: the value is not integral
}

func intNumber(i int64) number { return number{bits: uint64(i)} }

func doubleNumber(f float64) number {
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return intNumber(int64(f))
	}
	return number{bits: math.Float64bits(f), fraction: true}
}

func (t termHasher) numberTerm(key string, n number) uint64 {
	kind := termNumber
	if n.fraction {
		kind = termFraction
	}
	return mixTerm(maphash.String(t.seed, key), n.bits, kind)
}

// attr returns the term of an attribute value under key (cut already),
// false for a value that is not searchable.
func (t termHasher) attr(key string, v pcommon.Value) (uint64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return t.strAttr(key, t.lim.Cut(v.Str())), true
	case pcommon.ValueTypeBool:
		return t.boolAttr(key, v.Bool()), true
	}
	return t.numberAttr(key, v)
}

// encoded returns the term of an attribute the encoder just wrote as enc:
// strings and booleans hash their encoding as it is (one pass, no copy).
func (t termHasher) encoded(key string, v pcommon.Value, enc []byte) (uint64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr, pcommon.ValueTypeBool:
		return maphash.Bytes(t.seed, enc), true
	}
	return t.numberAttr(key, v)
}

// strAttr and boolAttr are the terms of a string (cut already) and a
// boolean attribute: the hash of their encoding.
func (t termHasher) strAttr(key, value string) uint64 {
	var buf [128]byte
	return maphash.Bytes(t.seed, spancodec.AppendStrAttr(buf[:0], key, value))
}

func (t termHasher) boolAttr(key string, v bool) uint64 {
	var buf [64]byte
	return maphash.Bytes(t.seed, spancodec.AppendBoolAttr(buf[:0], key, v))
}

// numberAttr is the term of a number (see number); false for a value that
// is not searchable.
func (t termHasher) numberAttr(key string, v pcommon.Value) (uint64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return t.numberTerm(key, intNumber(v.Int())), true
	case pcommon.ValueTypeDouble:
		return t.numberTerm(key, doubleNumber(v.Double())), true
	}
	return 0, false
}

// AttrQuery is one key=value condition, with the value read each way it
// can be (see the package's term rules).
type AttrQuery struct {
	Key, Value string
	number     number // when isNumber: Value read as a number
	isNumber   bool
	boolean    string // "true" or "false", when Value is one
}

// ParseAttrQuery reads value as a string, and as a number or a boolean when it is one.
func ParseAttrQuery(key, value string) AttrQuery {
	q := AttrQuery{Key: key, Value: value}
	if i, err := strconv.ParseInt(value, 10, 64); err == nil {
		q.number, q.isNumber = intNumber(i), true
	} else if f, err := strconv.ParseFloat(value, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		q.number, q.isNumber = doubleNumber(f), true
	}
	if value == "true" || value == "false" {
		q.boolean = value
	}
	return q
}

// query returns the terms any of which a trace must hold for q to match.
func (t termHasher) query(q AttrQuery) []uint64 {
	alts := []uint64{t.strAttr(q.Key, q.Value)}
	if q.isNumber {
		alts = append(alts, t.numberTerm(q.Key, q.number))
	}
	if q.boolean != "" {
		alts = append(alts, t.boolAttr(q.Key, q.boolean == "true"))
	}
	return alts
}

// Matches says whether a decoded attribute value matches q, by the same
// rules the index's terms follow.
func (q *AttrQuery) Matches(v spancodec.Value) bool {
	switch v.Type {
	case spancodec.ValueStr:
		return v.Str == q.Value
	case spancodec.ValueInt:
		return q.isNumber && intNumber(v.Int()) == q.number
	case spancodec.ValueDouble:
		return q.isNumber && doubleNumber(v.Double()) == q.number
	case spancodec.ValueBool:
		return q.boolean != "" && v.Bool() == (q.boolean == "true")
	}
	return false
}
