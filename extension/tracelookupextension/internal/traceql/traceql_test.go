// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package traceql

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// testTrace: a 2 s checkout trace. Root "POST /checkout" (server, ok) of
// service frontend; child "charge" (client, error, 1.5 s) of service
// payments with http.status_code 502 (int), retry true, ratio 0.25 and
// peer "bank-1"; resource attribute deployment.environment "prod" on both.
func testTrace(t *testing.T) *traceview.Trace {
	t.Helper()
	const ms = uint64(1e6)
	front := &spancodec.Resource{Attributes: []spancodec.KeyValue{
		{Key: "service.name", Value: spancodec.StrValue("frontend")},
		{Key: "deployment.environment", Value: spancodec.StrValue("prod")},
	}}
	pay := &spancodec.Resource{Attributes: []spancodec.KeyValue{
		{Key: "service.name", Value: spancodec.StrValue("payments")},
		{Key: "deployment.environment", Value: spancodec.StrValue("prod")},
	}}
	spans := []spancodec.Span{
		{SpanID: [8]byte{1}, Name: "POST /checkout", Kind: spancodec.KindServer, StatusCode: spancodec.StatusOK,
			StartUnixNano: 1000 * ms, EndUnixNano: 3000 * ms, Resource: front,
			Attributes: []spancodec.KeyValue{{Key: "http.route", Value: spancodec.StrValue("/checkout")}}},
		{SpanID: [8]byte{2}, ParentSpanID: [8]byte{1}, Name: "charge", Kind: spancodec.KindClient, StatusCode: spancodec.StatusError,
			StartUnixNano: 1200 * ms, EndUnixNano: 2700 * ms, Resource: pay,
			Attributes: []spancodec.KeyValue{
				{Key: "http.status_code", Value: spancodec.IntValue(502)},
				{Key: "retry", Value: spancodec.BoolValue(true)},
				{Key: "ratio", Value: spancodec.DoubleValue(0.25)},
				{Key: "peer", Value: spancodec.StrValue("bank-1")},
			}},
	}
	tr := traceview.FromSpans([16]byte{9}, spans, 0)
	t.Cleanup(tr.Release)
	return tr
}

// matches says whether the query's condition holds on a span of the trace.
func matches(tr *traceview.Trace, q search.Query) bool {
	for i := range tr.Spans {
		if q.Matches(tr, &tr.Spans[i]) {
			return true
		}
	}
	return false
}

func TestParseAndMatch(t *testing.T) {
	tr := testTrace(t)
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{``, true},
		{`{}`, true},
		{`{ }`, true},
		// Scopes.
		{`{ resource.service.name = "payments" }`, true},
		{`{ resource.service.name = "nobody" }`, false},
		{`{ span.peer = "bank-1" }`, true},
		{`{ resource.peer = "bank-1" }`, false},
		{`{ span.deployment.environment = "prod" }`, false},
		{`{ .deployment.environment = "prod" }`, true},
		{`{ .peer = "bank-1" }`, true},
		{`{ span."peer" = "bank-1" }`, true},
		// Intrinsics, both spellings.
		{`{ name = "charge" }`, true},
		{`{ span:name = "charge" }`, true},
		{`{ name != "charge" }`, true}, // the root span
		{`{ status = error }`, true},
		{`{ span:status = ok }`, true},
		{`{ status = unset }`, false},
		{`{ status != error && name = "charge" }`, false},
		{`{ kind = server }`, true},
		{`{ span:kind = client && name = "charge" }`, true},
		{`{ kind = consumer }`, false},
		{`{ duration > 1s }`, true},
		{`{ duration > 2s }`, false},
		{`{ span:duration >= 2s }`, true},
		{`{ duration < 1500ms }`, false},
		{`{ duration <= 1500ms }`, true},
		{`{ duration = 1.5s }`, true},
		{`{ duration = 1s500ms }`, true},
		{`{ duration > 1m30s }`, false},
		{`{ duration > 100μs }`, true},
		{`{ duration > 100µs }`, true},
		{`{ duration < 1d }`, true},
		{`{ duration < 9223372036854775807ns }`, true},
		{`{ traceDuration > 9223372036854775807ns }`, false},
		{`{ traceDuration = 2s }`, true},
		{`{ trace:duration > 2s }`, false},
		{`{ traceDuration >= 2000000000ns }`, true},
		{`{ traceDuration < 1m }`, true},
		{`{ rootServiceName = "frontend" }`, true},
		{`{ trace:rootService = "payments" }`, false},
		{`{ rootName = "POST /checkout" }`, true},
		{`{ trace:rootName =~ "POST .*" }`, true},
		// Operators and types.
		{`{ span.http.status_code = 502 }`, true},
		{`{ span.http.status_code = 502.0 }`, true},
		{`{ span.http.status_code = "502" }`, false}, // typed: an int is not a string
		{`{ span.http.status_code >= 500 && span.http.status_code < 600 }`, true},
		{`{ span.http.status_code > 502 }`, false},
		{`{ span.http.status_code != 200 }`, true},
		{`{ span.missing != 200 }`, false}, // a missing attribute meets no operator
		{`{ span.ratio < 0.5 }`, true},
		{`{ span.ratio = 0.25 }`, true},
		{`{ span.ratio > 1 }`, false},
		{`{ span.retry = true }`, true},
		{`{ span.retry = false }`, false},
		{`{ span.retry != false }`, true},
		{`{ span.peer =~ "bank-[0-9]+" }`, true},
		{`{ span.peer =~ "bank" }`, false}, // anchored, as in TraceQL
		{`{ span.peer !~ "bank-.*" }`, false},
		{`{ span.peer !~ "cash.*" }`, true},
		{`{ span.peer =~ "\\Qbank-1" }`, true}, // \Q to the end, anchored as a whole
		{`{ span.peer =~ "\\Qbank-." }`, false},
		{`{ span.peer =~ "(?i)BANK-1" }`, true},
		{"{ span.peer = `bank-1` }", true},
		{`{ name = "POST \/checkout" }`, false}, // not a Go escape: refused below, never reached
		{`{ span.peer > "bank-0" }`, true},
		// And, or, parentheses: conditions hold on one span.
		{`{ resource.service.name = "payments" && status = error }`, true},
		{`{ resource.service.name = "frontend" && status = error }`, false},
		{`{ name = "charge" || name = "refund" }`, true},
		{`{ (name = "refund" || kind = server) && resource.service.name = "frontend" }`, true},
		{`{ (name = "refund" || kind = server) && resource.service.name = "payments" }`, false},
		{`{ ((span.retry = true)) }`, true},
		{`{ resource.service.name = "frontend" && rootServiceName = "frontend" && traceDuration > 1s }`, true},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := Parse(tc.query)
			if strings.Contains(tc.query, `\/`) {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, matches(tr, q))
		})
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		query, says string
		unsupported bool
	}{
		{`{ name = "a" } | count() > 2`, "pipelines", true},
		{`{ name = "a" } && { name = "b" }`, "spanset operators", true},
		{`{ name = "a" } >> { name = "b" }`, "spanset operators", true},
		{`{ event.name = "x" }`, `scope "event"`, true},
		{`{ link.traceID = "x" }`, `scope "link"`, true},
		{`{ instrumentation.name = "x" }`, `scope "instrumentation"`, true},
		{`{ statusMessage = "x" }`, `intrinsic "statusMessage"`, true},
		{`{ trace:id = "x" }`, `intrinsic "trace:id"`, true},
		{`{ span.foo = nil }`, "nil", true},
		{`{ span.foo }`, "existence", true},
		{`{ !(name = "a") }`, "negation", true},
		{`{ count() > 1 }`, `function "count"`, true},
		{`name = "a"`, "one spanset filter", false},
		{`{ name = "a"`, "close the spanset", false},
		{`{ name = "a" && }`, "expected a field", false},
		{`{ (name = "a" }`, "close the parenthesis", false},
		{`{ name "a" }`, "expected an operator", false},
		{`{ name = }`, "expected a value", false},
		{`{ name = "a }`, "not closed", false},
		{`{ name = 5 }`, "quoted string", false},
		{`{ status = 2 }`, "one of error, ok or unset", false},
		{`{ status = server }`, "cannot be server", false},
		{`{ kind = error }`, "cannot be error", false},
		{`{ kind > server }`, "= or !=", false},
		{`{ duration > 5 }`, "duration such as", false},
		{`{ duration > 5parsecs }`, "units ns", false},
		{`{ duration > 9223372036854775808ns }`, "expected a duration", false},
		{`{ duration > 200000000000d }`, "expected a duration", false},
		{`{ name =~ "a)|(b" }`, "does not compile", false},
		{`{ name =~ "(?:.?){1000}(?:.?){1000}" }`, "too large", false},
		{`{ name =~ "` + strings.Repeat("a", 1025) + `" }`, "too large", false},
		{`{ name =~ "(?:.*){400}" || name =~ "(?:.*){400}" || name =~ "(?:.*){400}" }`, "together", false},
		{`{ span.foo = error }`, "must be quoted", false},
		{`{ span.foo =~ 5 }`, "quoted regular expression", false},
		{`{ span.foo =~ "(" }`, "does not compile", false},
		{`{ span.retry > true }`, "booleans compare", false},
		{`{ span. = "x" }`, "attribute name", false},
		{`{ resource.service.name = "a" && span.x = 1e999 }`, "expected a number", false},
		{strings.Repeat("(", 10) + "x", "one spanset filter", false},
		{"{ " + strings.Repeat("(", 100) + `name = "a"` + strings.Repeat(")", 100) + " }", "nest deeper", false},
		{"{ name = \"\xff\" }", "UTF-8", false},
		{"{ name = \"" + strings.Repeat("a", MaxQueryBytes) + "\" }", "longer than", false},
	} {
		t.Run(tc.query[:min(len(tc.query), 60)], func(t *testing.T) {
			_, err := Parse(tc.query)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
			assert.Equal(t, tc.unsupported, errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), ErrUnsupported.Error()), err.Error())
		})
	}
}

// Unscoped attributes read the span's value when it has the key, else
// the resource's, as Tempo reads them; numbers compare exactly.
func TestUnscopedAndExactNumbers(t *testing.T) {
	res := &spancodec.Resource{Attributes: []spancodec.KeyValue{{Key: "foo", Value: spancodec.StrValue("y")}, {Key: "bar", Value: spancodec.StrValue("r")}}}
	tr := traceview.FromSpans([16]byte{1}, []spancodec.Span{{SpanID: [8]byte{1}, Name: "s", Resource: res, Attributes: []spancodec.KeyValue{
		{Key: "foo", Value: spancodec.StrValue("x")},
		{Key: "big", Value: spancodec.IntValue(9007199254740993)},
		{Key: "bigd", Value: spancodec.DoubleValue(9007199254740992)},
		{Key: "half", Value: spancodec.DoubleValue(2.5)},
	}}}, 0)
	t.Cleanup(tr.Release)
	for query, want := range map[string]bool{
		`{ .foo = "x" }`:                 true,
		`{ .foo = "y" }`:                 false, // the span's value hides the resource's
		`{ .foo != "x" }`:                false,
		`{ resource.foo = "y" }`:         true,
		`{ .bar = "r" }`:                 true, // the span lacks it: the resource's
		`{ span.bar = "r" }`:             false,
		`{ .big = 9007199254740993 }`:    true,
		`{ .big = 9007199254740992.0 }`:  false,
		`{ .big > 9007199254740992.0 }`:  true,
		`{ .bigd = 9007199254740992 }`:   true,
		`{ .bigd = 9007199254740993 }`:   false,
		`{ .bigd < 9007199254740993 }`:   true,
		`{ .half > 2 && .half < 3 }`:     true,
		`{ .half = 2 }`:                  false,
		`{ .big >= 9007199254740993.5 }`: false, // 9007199254740993.5 is 9007199254740994 as a double
	} {
		q, err := Parse(query)
		require.NoError(t, err, query)
		assert.Equal(t, want, matches(tr, q), query)
	}
}

// The planner fills the indexed fields from top-level equalities only, as
// supersets of what Where asks.
func TestPlan(t *testing.T) {
	q, err := Parse(`{ resource.service.name = "payments" && name = "charge" && kind = client && span.http.status_code = 502 && traceDuration > 1s && traceDuration <= 1m }`)
	require.NoError(t, err)
	assert.Equal(t, "payments", q.Service)
	assert.Equal(t, "charge", q.Name)
	assert.Equal(t, spancodec.KindClient, q.Kind)
	require.Len(t, q.Attrs, 1)
	assert.Equal(t, "http.status_code", q.Attrs[0].Key)
	assert.Equal(t, "502", q.Attrs[0].Value)
	assert.Equal(t, uint64(1e9+1), q.MinDuration)
	assert.Equal(t, uint64(60e9), q.MaxDuration)
	assert.Equal(t, []search.AttrRef{{Scope: search.ScopeResourceAttr, Key: "service.name"}, {Scope: search.ScopeSpanAttr, Key: "http.status_code"}}, q.Report)

	q, err = Parse(`{ name = "a" || resource.service.name = "b" }`)
	require.NoError(t, err)
	assert.Empty(t, q.Name, "an alternative narrows nothing")
	assert.Empty(t, q.Service)
	assert.Equal(t, search.AnyKind, int(q.Kind))
	assert.NotNil(t, q.Where)

	q, err = Parse(`{ traceDuration < 0s }`)
	require.NoError(t, err)
	assert.Zero(t, q.MaxDuration)
	assert.False(t, matches(testTrace(t), q))
}

// FuzzParse: any input is read or refused with an error, never a panic,
// and what is read evaluates without one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{ resource.service.name = "a" && (name =~ "b.*" || duration > 1.5s) }`,
		`{ span.x >= -1e3 && .y != true && kind = server && status = error }`, "{ name = `raw` }", `{ ((((`} {
		f.Add(s)
	}
	tr := traceview.FromSpans([16]byte{1}, []spancodec.Span{{SpanID: [8]byte{1}, Name: "b", Attributes: []spancodec.KeyValue{{Key: "x", Value: spancodec.IntValue(1)}}}}, 0)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err == nil {
			matches(tr, q)
		}
	})
}
