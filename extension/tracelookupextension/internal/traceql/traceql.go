// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package traceql reads the subset of TraceQL that Grafana's Tempo query
// builder writes, into a search: one spanset filter { ... } of comparisons
// joined by && and || with parentheses; attributes scoped resource. and
// span., or unscoped .attr; the intrinsics name, status, kind, duration,
// traceDuration, rootServiceName and rootName (and their span: and trace:
// spellings); the operators = != > >= < <= =~ !~; strings, integers,
// floats, booleans, durations, and the status and kind keywords. Anything
// else is refused with an error that names it.
package traceql // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceql"

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// MaxQueryBytes bounds a query: Grafana's are a few hundred bytes.
const MaxQueryBytes = 16 << 10

// maxDepth bounds nested parentheses, so that a hostile query cannot
// exhaust the stack.
const maxDepth = 64

// ErrUnsupported is wrapped by every refusal of valid TraceQL that this
// subset does not hold; other errors are syntax errors.
var ErrUnsupported = errors.New("not supported")

// Parse reads query into a search: q.Where holds the whole condition, and
// the equalities and trace-duration bounds at its top level fill the
// query's indexed fields too, so that the index narrows the candidates.
// The empty query and {} match every trace.
func Parse(query string) (search.Query, error) {
	q := search.Query{Kind: search.AnyKind}
	if len(query) > MaxQueryBytes {
		return q, fmt.Errorf("the query is longer than %d bytes", MaxQueryBytes)
	}
	if !utf8.ValidString(query) {
		return q, errors.New("the query is not valid UTF-8")
	}
	p := parser{src: query}
	if p.skipSpace(); p.eof() {
		return q, nil
	}
	cond, err := p.spanset()
	if err != nil {
		return q, err
	}
	if p.skipSpace(); !p.eof() {
		return q, p.unexpected("after the spanset: pipelines, spanset operators (&&, ||, >>, ~) between spansets and aggregates are " + ErrUnsupported.Error())
	}
	if cond != nil {
		q.Where = cond
		plan(&q, cond)
		q.Report = reported(cond, nil)
	}
	return q, nil
}

type parser struct {
	src   string
	pos   int
	depth int
	insts int // of the query's regular expressions together
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) skipSpace() {
	for !p.eof() && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

// peek reports whether the input continues with s, after spaces.
func (p *parser) peek(s string) bool {
	p.skipSpace()
	return strings.HasPrefix(p.src[p.pos:], s)
}

func (p *parser) accept(s string) bool {
	if p.peek(s) {
		p.pos += len(s)
		return true
	}
	return false
}

// unexpected describes what stands at the current position.
func (p *parser) unexpected(why string) error {
	rest := p.src[p.pos:]
	if len(rest) > 24 {
		n := 24
		for n > 0 && !utf8.RuneStart(rest[n]) {
			n--
		}
		rest = rest[:n] + "..."
	}
	if rest == "" {
		return fmt.Errorf("at the end of the query: %s", why)
	}
	return fmt.Errorf("at %q (byte %d): %s", rest, p.pos+1, why)
}

func (p *parser) spanset() (search.Cond, error) {
	if !p.accept("{") {
		return nil, p.unexpected("a query is one spanset filter: { conditions }")
	}
	if p.accept("}") {
		return nil, nil
	}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if !p.accept("}") {
		return nil, p.unexpected("expected && or || and another condition, or } to close the spanset")
	}
	return c, nil
}

func (p *parser) or() (search.Cond, error) {
	first, err := p.and()
	if err != nil {
		return nil, err
	}
	any := search.AnyOf{first}
	for p.accept("||") {
		c, err := p.and()
		if err != nil {
			return nil, err
		}
		any = append(any, c)
	}
	if len(any) == 1 {
		return first, nil
	}
	return any, nil
}

func (p *parser) and() (search.Cond, error) {
	first, err := p.primary()
	if err != nil {
		return nil, err
	}
	all := search.All{first}
	for p.accept("&&") {
		c, err := p.primary()
		if err != nil {
			return nil, err
		}
		all = append(all, c)
	}
	if len(all) == 1 {
		return first, nil
	}
	return all, nil
}

func (p *parser) primary() (search.Cond, error) {
	if p.accept("(") {
		if p.depth++; p.depth > maxDepth {
			return nil, p.unexpected(fmt.Sprintf("parentheses nest deeper than %d", maxDepth))
		}
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.accept(")") {
			return nil, p.unexpected("expected ) to close the parenthesis")
		}
		p.depth--
		return c, nil
	}
	if p.peek("!") && !p.peek("!=") && !p.peek("!~") {
		return nil, p.unexpected("negation (!) is " + ErrUnsupported.Error())
	}
	return p.comparison()
}

// intrinsics are the fields TraceQL names without a scope.
var intrinsics = map[string]search.Field{
	"name":              search.FieldName,
	"status":            search.FieldStatus,
	"kind":              search.FieldKind,
	"duration":          search.FieldDuration,
	"traceDuration":     search.FieldTraceDuration,
	"rootServiceName":   search.FieldRootService,
	"rootName":          search.FieldRootName,
	"span:name":         search.FieldName,
	"span:status":       search.FieldStatus,
	"span:kind":         search.FieldKind,
	"span:duration":     search.FieldDuration,
	"trace:duration":    search.FieldTraceDuration,
	"trace:rootService": search.FieldRootService,
	"trace:rootName":    search.FieldRootName,
}

// Intrinsic is the field an intrinsic's name (either spelling) reads.
func Intrinsic(name string) (search.Field, bool) {
	f, ok := intrinsics[name]
	return f, ok
}

// Intrinsics lists the intrinsic fields Parse reads, as Tempo names them.
func Intrinsics() []string {
	return []string{"duration", "kind", "name", "rootName", "rootServiceName", "status", "traceDuration"}
}

func (p *parser) comparison() (*search.Compare, error) {
	p.skipSpace()
	start := p.pos
	field, scope, key, err := p.field()
	if err != nil {
		return nil, err
	}
	fieldText := p.src[start:p.pos]
	op, ok := p.operator()
	if !ok {
		if p.peek("}") || p.peek(")") || p.peek("&&") || p.peek("||") || p.eof() {
			return nil, p.unexpected("a field alone (an existence test) is " + ErrUnsupported.Error() + "; compare it with a value")
		}
		return nil, p.unexpected("expected an operator: = != > >= < <= =~ !~")
	}
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	if err := check(field, op, lit, fieldText); err != nil {
		return nil, err
	}
	c, err := search.NewCompare(field, scope, key, op, lit)
	if err != nil {
		return nil, fmt.Errorf("the regular expression %q does not compile: %w", lit.Str, err)
	}
	if p.insts += c.RegexpInsts; p.insts > search.MaxRegexpInsts {
		return nil, fmt.Errorf("%w: the query's regular expressions expand to more than %d instructions together", search.ErrRegexpTooLarge, search.MaxRegexpInsts)
	}
	return c, nil
}

// field reads an intrinsic or an attribute reference.
func (p *parser) field() (search.Field, search.Scope, string, error) {
	for _, prefix := range []struct {
		text  string
		scope search.Scope
	}{{"resource.", search.ScopeResourceAttr}, {"span.", search.ScopeSpanAttr}, {".", search.ScopeAny}} {
		if strings.HasPrefix(p.src[p.pos:], prefix.text) {
			p.pos += len(prefix.text)
			key, err := p.attributeName()
			return search.FieldAttr, prefix.scope, key, err
		}
	}
	name := p.word()
	if f, ok := intrinsics[name]; ok {
		return f, 0, "", nil
	}
	switch {
	case name == "":
		return 0, 0, "", p.unexpected("expected a field: an intrinsic (name, status, kind, duration, traceDuration, rootServiceName, rootName) or an attribute (resource.x, span.x, .x)")
	case strings.HasSuffix(name, "(") || p.peek("("):
		return 0, 0, "", fmt.Errorf("the function %q is %w", strings.TrimSuffix(name, "("), ErrUnsupported)
	case strings.Contains(name, "."):
		scope, _, _ := strings.Cut(name, ".")
		return 0, 0, "", fmt.Errorf("the attribute scope %q is %w; use resource., span. or an unscoped .name", scope, ErrUnsupported)
	}
	return 0, 0, "", fmt.Errorf("the intrinsic %q is %w; the intrinsics are %s", name, ErrUnsupported, strings.Join(Intrinsics(), ", "))
}

// word reads letters, digits and the characters TraceQL allows in field
// names: an intrinsic, or a scope then an attribute name.
func (p *parser) word() string {
	start := p.pos
	for !p.eof() {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || strings.IndexByte("=!<>~{}()&|\"`,", c) >= 0 {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) attributeName() (string, error) {
	if !p.eof() && p.src[p.pos] == '"' {
		return p.quoted()
	}
	name := p.word()
	if name == "" {
		return "", p.unexpected("expected an attribute name after the scope")
	}
	return name, nil
}

func (p *parser) operator() (search.Op, bool) {
	for _, o := range []struct {
		text string
		op   search.Op
	}{{"!=", search.OpNe}, {"!~", search.OpNotMatch}, {"=~", search.OpMatch}, {">=", search.OpGe}, {"<=", search.OpLe}, {"=", search.OpEq}, {">", search.OpGt}, {"<", search.OpLt}} {
		if p.accept(o.text) {
			return o.op, true
		}
	}
	return 0, false
}

// keywords are the literals that are names: statuses, kinds, booleans.
var keywords = map[string]search.Literal{
	"true":  {Type: search.LitBool, Bool: true},
	"false": {Type: search.LitBool, Bool: false},
}

func init() {
	for _, k := range search.StatusKeywords {
		keywords[k] = search.Literal{Type: search.LitKeyword, Str: k}
	}
	for _, k := range search.KindKeywords {
		keywords[k] = search.Literal{Type: search.LitKeyword, Str: k}
	}
}

func (p *parser) literal() (search.Literal, error) {
	p.skipSpace()
	if p.eof() {
		return search.Literal{}, p.unexpected("expected a value")
	}
	switch c := p.src[p.pos]; {
	case c == '"' || c == '`':
		s, err := p.quoted()
		return search.Literal{Type: search.LitString, Str: s}, err
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	}
	word := p.word()
	if lit, ok := keywords[word]; ok {
		return lit, nil
	}
	if word == "nil" {
		return search.Literal{}, fmt.Errorf("nil is %w", ErrUnsupported)
	}
	return search.Literal{}, p.unexpected("expected a value: a quoted string, a number, a duration, true, false, or a status or kind keyword")
}

// quoted reads a double-quoted string with Go's escapes, or a backquoted raw string.
func (p *parser) quoted() (string, error) {
	quote := p.src[p.pos]
	for i := p.pos + 1; i < len(p.src); i++ {
		switch p.src[i] {
		case '\\':
			if quote == '"' {
				i++
			}
		case quote:
			raw := p.src[p.pos : i+1]
			if quote == '`' {
				p.pos = i + 1
				return raw[1 : len(raw)-1], nil
			}
			s, err := strconv.Unquote(raw)
			if err != nil {
				return "", p.unexpected("the string's escapes cannot be read")
			}
			p.pos = i + 1
			return s, nil
		}
	}
	return "", p.unexpected("the string is not closed")
}

// isUnitStart says whether s starts with a letter of a duration unit.
func isUnitStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r >= 'a' && r <= 'z' || r == 'µ' || r == 'μ'
}

// parseDuration reads a TraceQL duration: Go's, and whole days (2d), as
// nanoseconds below 2^63; negative durations are refused.
func parseDuration(text string) (int64, bool) {
	if days, ok := strings.CutSuffix(text, "d"); ok {
		f, err := strconv.ParseFloat(days, 64)
		if err != nil || f < 0 || f*float64(24*time.Hour) >= math.MaxInt64 {
			return 0, false
		}
		return int64(math.Round(f * float64(24*time.Hour))), true
	}
	d, err := time.ParseDuration(text)
	if err != nil || d < 0 {
		return 0, false
	}
	return int64(d), true
}

func (p *parser) number() (search.Literal, error) {
	start := p.pos
	if c := p.src[p.pos]; c == '-' || c == '+' {
		p.pos++
	}
	for !p.eof() && strings.IndexByte("0123456789.eE", p.src[p.pos]) >= 0 {
		if (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') && p.pos+1 < len(p.src) && strings.IndexByte("+-", p.src[p.pos+1]) >= 0 {
			p.pos++
		}
		p.pos++
	}
	text := p.src[start:p.pos]
	// A unit right after the number makes it a duration: 150ms, 1.5s,
	// 1m30s, as Go reads them, and d for days.
	if !p.eof() && isUnitStart(p.src[p.pos:]) {
		for !p.eof() && (isUnitStart(p.src[p.pos:]) || strings.IndexByte("0123456789.", p.src[p.pos]) >= 0) {
			_, size := utf8.DecodeRuneInString(p.src[p.pos:])
			p.pos += size
		}
		d, ok := parseDuration(p.src[start:p.pos])
		if !ok {
			p.pos = start
			return search.Literal{}, p.unexpected("expected a duration such as 150ms, 1.5s or 1m30s (units ns, us, µs, ms, s, m, h, d)")
		}
		return search.Literal{Type: search.LitDuration, Int: d}, nil
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return search.Literal{Type: search.LitInt, Int: i}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = start
		return search.Literal{}, p.unexpected("expected a number")
	}
	return search.Literal{Type: search.LitFloat, Float: f}, nil
}

// check refuses comparisons of a field with a value of a type it never has.
func check(field search.Field, op search.Op, lit search.Literal, fieldText string) error {
	regex := op == search.OpMatch || op == search.OpNotMatch
	if regex && lit.Type != search.LitString {
		return fmt.Errorf("%s: =~ and !~ take a quoted regular expression", fieldText)
	}
	switch field {
	case search.FieldStatus, search.FieldKind:
		if lit.Type != search.LitKeyword || (op != search.OpEq && op != search.OpNe) {
			which := "error, ok or unset"
			if field == search.FieldKind {
				which = strings.Join(search.KindKeywords[:], ", ")
			}
			return fmt.Errorf("%s compares with = or != and one of %s", fieldText, which)
		}
		statusWord := slices.Contains(search.StatusKeywords[:], lit.Str)
		if (field == search.FieldStatus) != statusWord {
			return fmt.Errorf("%s cannot be %s", fieldText, lit.Str)
		}
	case search.FieldDuration, search.FieldTraceDuration:
		if lit.Type != search.LitDuration {
			return fmt.Errorf("%s compares with a duration such as 150ms", fieldText)
		}
	case search.FieldName, search.FieldRootService, search.FieldRootName:
		if lit.Type != search.LitString {
			return fmt.Errorf("%s compares with a quoted string", fieldText)
		}
	case search.FieldAttr:
		if lit.Type == search.LitKeyword {
			return fmt.Errorf("%s: the value %s must be quoted to compare it as a string", fieldText, lit.Str)
		}
		if lit.Type == search.LitBool && op != search.OpEq && op != search.OpNe {
			return fmt.Errorf("%s: booleans compare with = or != only", fieldText)
		}
	}
	return nil
}

// plan copies the equalities and trace-duration bounds that must hold for
// the whole condition to hold (those at its top level) into q's indexed
// fields. The index reads them as loosely as or more loosely than Where
// does (see store.AttrQuery), so it never hides a match.
func plan(q *search.Query, cond search.Cond) {
	top := search.All{cond}
	if all, ok := cond.(search.All); ok {
		top = all
	}
	for _, c := range top {
		cmp, ok := c.(*search.Compare)
		if !ok {
			continue
		}
		switch {
		case cmp.Field == search.FieldName && cmp.Op == search.OpEq && q.Name == "":
			q.Name = cmp.Value.Str
		case cmp.Field == search.FieldKind && cmp.Op == search.OpEq && q.Kind == search.AnyKind:
			q.Kind = int32(slices.Index(search.KindKeywords[:], cmp.Value.Str))
		case cmp.Field == search.FieldAttr && cmp.Op == search.OpEq:
			if cmp.Scope == search.ScopeResourceAttr && cmp.Key == "service.name" && cmp.Value.Type == search.LitString && q.Service == "" {
				q.Service = cmp.Value.Str
				continue
			}
			if text, ok := literalText(cmp.Value); ok {
				q.Attrs = append(q.Attrs, store.ParseAttrQuery(cmp.Key, text))
			}
		case cmp.Field == search.FieldTraceDuration:
			d := uint64(max(cmp.Value.Int, 0))
			switch cmp.Op {
			case search.OpGt:
				q.MinDuration = max(q.MinDuration, d+1)
			case search.OpGe:
				q.MinDuration = max(q.MinDuration, d)
			case search.OpEq:
				q.MinDuration = max(q.MinDuration, d)
				q.MaxDuration = minBound(q.MaxDuration, d)
			case search.OpLt:
				if d == 0 {
					continue // nothing is shorter than 0: Where refuses every trace
				}
				q.MaxDuration = minBound(q.MaxDuration, d-1)
			case search.OpLe:
				q.MaxDuration = minBound(q.MaxDuration, d)
			}
		}
	}
}

// minBound is the smaller of two maximum durations, where 0 is no bound.
func minBound(a, b uint64) uint64 {
	if a == 0 {
		return max(b, 1)
	}
	return min(a, max(b, 1))
}

// literalText is the text an index equality asks for.
func literalText(l search.Literal) (string, bool) {
	switch l.Type {
	case search.LitString:
		return l.Str, true
	case search.LitInt:
		return strconv.FormatInt(l.Int, 10), true
	case search.LitFloat:
		return strconv.FormatFloat(l.Float, 'g', -1, 64), true
	case search.LitBool:
		return strconv.FormatBool(l.Bool), true
	}
	return "", false
}

// reported lists the attributes the condition reads, for the matched spans to show.
func reported(c search.Cond, out []search.AttrRef) []search.AttrRef {
	switch c := c.(type) {
	case search.All:
		for _, x := range c {
			out = reported(x, out)
		}
	case search.AnyOf:
		for _, x := range c {
			out = reported(x, out)
		}
	case *search.Compare:
		ref := search.AttrRef{Scope: c.Scope, Key: c.Key}
		if c.Field == search.FieldAttr && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out
}
