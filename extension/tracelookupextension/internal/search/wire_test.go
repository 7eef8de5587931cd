// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package search_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceql"
)

// A query a peer reads back is the query sent: written again, it is the same JSON.
func TestQueryTravelsWhole(t *testing.T) {
	for _, src := range []string{
		`{ resource.service.name = "checkout" && span.http.status_code >= 500 }`,
		`{ (name =~ "GET .*" || kind = client) && duration > 1.5s && .amount != 42.5 && span.retried = true }`,
		`{ traceDuration > 2s && rootServiceName = "frontend" && status = error }`,
	} {
		q, err := traceql.Parse(src)
		require.NoError(t, err, src)
		q.Limit, q.StartFrom, q.StartTo = 7, 10, 20
		b, err := search.MarshalQuery(q)
		require.NoError(t, err)
		back, err := search.UnmarshalQuery(b)
		require.NoError(t, err)
		again, err := search.MarshalQuery(back)
		require.NoError(t, err)
		assert.JSONEq(t, string(b), string(again), src)
		assert.Equal(t, q.Service, back.Service)
		assert.Equal(t, q.Attrs, back.Attrs)
		assert.Equal(t, q.MinDuration, back.MinDuration)
	}
}

func TestQueryFromAPeerIsChecked(t *testing.T) {
	deep := strings.Repeat(`{"all":[`, 40) + strings.Repeat(`]}`, 40)
	for name, body := range map[string]string{
		"not JSON":         `{`,
		"a bad kind":       `{"kind":9}`,
		"a huge limit":     `{"kind":-1,"limit":100000}`,
		"too deep":         `{"kind":-1,"where":` + deep + `}`,
		"a bad regexp":     `{"kind":-1,"where":{"field":1,"op":6,"value":{"Type":0,"Str":"("}}}`,
		"an unknown field": `{"kind":-1,"where":{"field":99,"value":{}}}`,
		"two at once":      `{"kind":-1,"where":{"all":[],"any":[]}}`,
		"an empty one":     `{"kind":-1,"where":{"all":[null]}}`,
	} {
		_, err := search.UnmarshalQuery([]byte(body))
		assert.Error(t, err, name)
	}
}

func TestEmptyConditionsTravel(t *testing.T) {
	for _, c := range []search.Cond{search.All{}, search.AnyOf{}} {
		b, err := search.MarshalQuery(search.Query{Kind: search.AnyKind, Where: c})
		require.NoError(t, err)
		back, err := search.UnmarshalQuery(b)
		require.NoError(t, err)
		assert.Equal(t, c, back.Where)
	}
}
