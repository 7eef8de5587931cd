// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package search // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Conditions are what a query language (TraceQL, Jaeger's parameters)
// asks of one span beyond the indexed equalities of Query: comparisons
// joined by and and or, evaluated on each span with its trace at hand
// (for the trace-level intrinsics). A condition matches a trace when it
// matches one of its spans, as a TraceQL spanset filter does.

// Cond is a condition on one span of a trace.
type Cond interface {
	// Match says whether span s of trace t meets the condition.
	Match(t *traceview.Trace, s *spancodec.Span) bool
}

// All holds when every one of its conditions does; an empty All always holds.
type All []Cond

// Match implements Cond.
func (a All) Match(t *traceview.Trace, s *spancodec.Span) bool {
	for _, c := range a {
		if !c.Match(t, s) {
			return false
		}
	}
	return true
}

// AnyOf holds when one of its conditions does.
type AnyOf []Cond

// Match implements Cond.
func (a AnyOf) Match(t *traceview.Trace, s *spancodec.Span) bool {
	for _, c := range a {
		if c.Match(t, s) {
			return true
		}
	}
	return false
}

// Field is what a comparison reads.
type Field uint8

// Fields. FieldAttr reads an attribute; the others are TraceQL's intrinsics.
const (
	FieldAttr Field = iota
	FieldName
	FieldStatus // the span's status code, compared with a Keyword (KeywordStatus*)
	FieldKind   // the span's kind, compared with a Keyword (KeywordKind*)
	FieldDuration
	FieldTraceDuration
	FieldRootService
	FieldRootName
)

// Scope is where an attribute comparison looks.
type Scope uint8

// Scopes: ScopeAny looks at the span's attributes, then its resource's.
const (
	ScopeAny Scope = iota
	ScopeSpanAttr
	ScopeResourceAttr
)

// Op is a comparison operator.
type Op uint8

// Operators, as TraceQL writes them: = != > >= < <= =~ !~.
const (
	OpEq Op = iota
	OpNe
	OpGt
	OpGe
	OpLt
	OpLe
	OpMatch
	OpNotMatch
	// OpEqualFold is string equality without regard to case (Zipkin's
	// span names); no TraceQL operator reads as it.
	OpEqualFold
)

// LiteralType is the type of a comparison's literal.
type LiteralType uint8

// Literal types. Durations are nanoseconds; keywords are status and kind names.
const (
	LitString LiteralType = iota
	LitInt
	LitFloat
	LitBool
	LitDuration
	LitKeyword
)

// Literal is a typed constant.
type Literal struct {
	Type  LiteralType
	Str   string // LitString, LitKeyword
	Int   int64  // LitInt, LitDuration (nanoseconds)
	Float float64
	Bool  bool
}

// Compare compares one field of a span with a literal. A field the span
// does not have (an attribute it lacks, a value of another type) meets no
// operator, != included, as in TraceQL. Numbers compare exactly, an int
// with a double too (no rounding through float64 past 2^53).
type Compare struct {
	Field Field
	Scope Scope  // FieldAttr
	Key   string // FieldAttr
	Op    Op
	Value Literal
	// Regexp is the compiled Value.Str of OpMatch and OpNotMatch, anchored
	// at both ends as TraceQL's are, and RegexpInsts its program's size.
	Regexp      *regexp.Regexp
	RegexpInsts int
}

// Bounds of regular expression operands: matching costs the input's
// length times the program's size, on every span a search decodes, so a
// few bytes of nested repetition must not buy seconds per span.
// MaxRegexpInsts bounds the programs of one query together.
const (
	MaxRegexpBytes = 1024
	MaxRegexpInsts = 2048
)

// ErrRegexpTooLarge refuses a regular expression past the bounds.
var ErrRegexpTooLarge = errors.New("the regular expression is too large")

// NewCompare makes a comparison, compiling a regular expression operand
// (parsed on its own, then anchored as a whole: anchoring must not change
// what it means).
func NewCompare(field Field, scope Scope, key string, op Op, value Literal) (*Compare, error) {
	c := &Compare{Field: field, Scope: scope, Key: key, Op: op, Value: value}
	if op == OpMatch || op == OpNotMatch {
		if len(value.Str) > MaxRegexpBytes {
			return nil, fmt.Errorf("%w: at most %d bytes", ErrRegexpTooLarge, MaxRegexpBytes)
		}
		re, err := syntax.Parse(value.Str, syntax.Perl)
		if err != nil {
			return nil, err
		}
		anchored := &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{{Op: syntax.OpBeginText}, re, {Op: syntax.OpEndText}}}
		prog, err := syntax.Compile(anchored.Simplify())
		if err != nil {
			return nil, err
		}
		if c.RegexpInsts = len(prog.Inst); c.RegexpInsts > MaxRegexpInsts {
			return nil, fmt.Errorf("%w: its repetitions expand to %d instructions, at most %d", ErrRegexpTooLarge, c.RegexpInsts, MaxRegexpInsts)
		}
		if c.Regexp, err = regexp.Compile(anchored.String()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Match implements Cond.
func (c *Compare) Match(t *traceview.Trace, s *spancodec.Span) bool {
	switch c.Field {
	case FieldAttr:
		// Unscoped, the span's value when it has the key, else the
		// resource's: as Tempo reads .attr.
		if c.Scope != ScopeResourceAttr {
			if v, ok := s.Attr(c.Key); ok {
				return c.value(v)
			}
			if c.Scope == ScopeSpanAttr {
				return false
			}
		}
		if v, ok := s.ResourceAttr(c.Key); ok {
			return c.value(v)
		}
		return false
	case FieldName:
		return c.str(s.Name)
	case FieldStatus:
		return c.keyword(statusKeyword(s.StatusCode))
	case FieldKind:
		return c.keyword(kindKeyword(s.Kind))
	case FieldDuration:
		return c.duration(spanDuration(s))
	case FieldTraceDuration:
		return c.duration(t.DurationNanos())
	case FieldRootService:
		if r := t.RootSpan(); r != nil {
			return c.str(r.ServiceName())
		}
	case FieldRootName:
		if r := t.RootSpan(); r != nil {
			return c.str(r.Name)
		}
	}
	return false
}

func spanDuration(s *spancodec.Span) uint64 {
	if s.EndUnixNano < s.StartUnixNano {
		return 0
	}
	return s.EndUnixNano - s.StartUnixNano
}

// Status and kind keywords, as TraceQL names them.
const (
	KeywordStatusError = "error"
	KeywordStatusOK    = "ok"
	KeywordStatusUnset = "unset"
)

// KindKeywords are the span kinds by their OTLP number.
var KindKeywords = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// StatusKeywords are the status codes by their OTLP number.
var StatusKeywords = [...]string{KeywordStatusUnset, KeywordStatusOK, KeywordStatusError}

func statusKeyword(code int32) string {
	if code >= 0 && int(code) < len(StatusKeywords) {
		return StatusKeywords[code]
	}
	return ""
}

func kindKeyword(kind int32) string {
	if kind >= 0 && int(kind) < len(KindKeywords) {
		return KindKeywords[kind]
	}
	return ""
}

func (c *Compare) keyword(k string) bool {
	if c.Value.Type != LitKeyword || k == "" {
		return false
	}
	switch c.Op {
	case OpEq:
		return k == c.Value.Str
	case OpNe:
		return k != c.Value.Str
	}
	return false
}

func (c *Compare) duration(d uint64) bool {
	if c.Value.Type != LitDuration && c.Value.Type != LitInt {
		return false
	}
	return ordered(c.Op, cmp.Compare(int64(min(d, math.MaxInt64)), c.Value.Int))
}

func (c *Compare) str(s string) bool {
	switch c.Op {
	case OpEqualFold:
		return strings.EqualFold(s, c.Value.Str)
	case OpMatch:
		return c.Regexp.MatchString(s)
	case OpNotMatch:
		return !c.Regexp.MatchString(s)
	}
	if c.Value.Type != LitString {
		return false
	}
	return ordered(c.Op, cmp.Compare(s, c.Value.Str))
}

// value compares an attribute value: strings with strings, numbers with
// numbers (int 500 and double 500.0 alike), booleans with booleans.
func (c *Compare) value(v spancodec.Value) bool {
	switch v.Type {
	case spancodec.ValueStr:
		return c.str(v.Str)
	case spancodec.ValueInt:
		switch c.Value.Type {
		case LitInt, LitDuration:
			return ordered(c.Op, cmp.Compare(v.Int(), c.Value.Int))
		case LitFloat:
			return ordered(c.Op, compareIntFloat(v.Int(), c.Value.Float))
		}
	case spancodec.ValueDouble:
		switch c.Value.Type {
		case LitInt, LitDuration:
			return ordered(c.Op, -compareIntFloat(c.Value.Int, v.Double()))
		case LitFloat:
			return ordered(c.Op, compareFloats(v.Double(), c.Value.Float))
		}
	case spancodec.ValueBool:
		if c.Value.Type == LitBool {
			switch c.Op {
			case OpEq:
				return v.Bool() == c.Value.Bool
			case OpNe:
				return v.Bool() != c.Value.Bool
			}
		}
	}
	return false
}

// incomparable is a comparison that holds for no operator (NaN), negated
// or not.
const incomparable = 2

func compareFloats(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return incomparable
}

// compareIntFloat compares an int with a double exactly.
func compareIntFloat(i int64, f float64) int {
	switch {
	case math.IsNaN(f):
		return incomparable
	case f >= 1<<63:
		return -1
	case f < -(1 << 63):
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(i, int64(t)); c != 0 {
		return c
	}
	switch {
	case f > t:
		return -1
	case f < t:
		return 1
	}
	return 0
}

// ordered says whether a comparison result meets op.
func ordered(op Op, cmp int) bool {
	if cmp == incomparable || cmp == -incomparable {
		return false
	}
	switch op {
	case OpEq:
		return cmp == 0
	case OpNe:
		return cmp != 0
	case OpGt:
		return cmp > 0
	case OpGe:
		return cmp >= 0
	case OpLt:
		return cmp < 0
	case OpLe:
		return cmp <= 0
	}
	return false
}
