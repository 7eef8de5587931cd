// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package search // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// A Query travels between replicas as JSON (see MarshalQuery): every
// contract's search, whatever its own parameters, reaches each peer as
// the very Query the replica asked, conditions and all.

// Bounds of a Query read from JSON: its conditions are evaluated on every
// span a search decodes.
const (
	maxWireConds = 256
	maxWireDepth = 16
)

type wireQuery struct {
	Service      string       `json:"service,omitempty"`
	Name         string       `json:"name,omitempty"`
	Kind         int32        `json:"kind"`
	Attrs        [][2]string  `json:"attrs,omitempty"`
	Status       store.Status `json:"status,omitempty"`
	MinDuration  uint64       `json:"min_duration,omitempty"`
	MaxDuration  uint64       `json:"max_duration,omitempty"`
	StartFrom    uint64       `json:"start_from,omitempty"`
	StartTo      uint64       `json:"start_to,omitempty"`
	Where        *wireCond    `json:"where,omitempty"`
	Limit        int          `json:"limit,omitempty"`
	MatchedSpans int          `json:"matched_spans,omitempty"`
	Report       []AttrRef    `json:"report,omitempty"`
	AllServices  bool         `json:"all_services,omitempty"`
}

// wireCond is one of All, AnyOf or a Compare.
type wireCond struct {
	All   []*wireCond `json:"all"`
	Any   []*wireCond `json:"any"`
	Field *Field      `json:"field,omitempty"`
	Scope Scope       `json:"scope,omitempty"`
	Key   string      `json:"key,omitempty"`
	Op    Op          `json:"op,omitempty"`
	Value Literal     `json:"value"`
}

// MarshalQuery writes q as JSON, but for its cursor (After): a peer is
// asked for what starts no later than the cursor instead.
func MarshalQuery(q Query) ([]byte, error) {
	w := wireQuery{
		Service: q.Service, Name: q.Name, Kind: q.Kind, Status: q.Status,
		MinDuration: q.MinDuration, MaxDuration: q.MaxDuration, StartFrom: q.StartFrom, StartTo: q.StartTo,
		Limit: q.Limit, MatchedSpans: q.MatchedSpans, Report: q.Report, AllServices: q.AllServices,
	}
	for _, a := range q.Attrs {
		w.Attrs = append(w.Attrs, [2]string{a.Key, a.Value})
	}
	if q.Where != nil {
		c, err := toWire(q.Where)
		if err != nil {
			return nil, err
		}
		w.Where = c
	}
	return json.Marshal(w)
}

func toWire(c Cond) (*wireCond, error) {
	switch c := c.(type) {
	case All:
		w := &wireCond{All: []*wireCond{}}
		for _, x := range c {
			wx, err := toWire(x)
			if err != nil {
				return nil, err
			}
			w.All = append(w.All, wx)
		}
		return w, nil
	case AnyOf:
		w := &wireCond{Any: []*wireCond{}}
		for _, x := range c {
			wx, err := toWire(x)
			if err != nil {
				return nil, err
			}
			w.Any = append(w.Any, wx)
		}
		return w, nil
	case *Compare:
		f := c.Field
		return &wireCond{Field: &f, Scope: c.Scope, Key: c.Key, Op: c.Op, Value: c.Value}, nil
	}
	return nil, fmt.Errorf("search: a condition of type %T cannot be sent to a peer", c)
}

// UnmarshalQuery reads a Query MarshalQuery wrote, checking it as a
// parsed query is checked: regular expressions within their bounds, and
// no more conditions, nesting or results than a client may ask.
func UnmarshalQuery(b []byte) (Query, error) {
	var w wireQuery
	if err := json.Unmarshal(b, &w); err != nil {
		return Query{}, fmt.Errorf("the query is not valid JSON: %w", err)
	}
	q := Query{
		Service: w.Service, Name: w.Name, Kind: w.Kind, Status: w.Status,
		MinDuration: w.MinDuration, MaxDuration: w.MaxDuration, StartFrom: w.StartFrom, StartTo: w.StartTo,
		Limit: w.Limit, MatchedSpans: w.MatchedSpans, Report: w.Report, AllServices: w.AllServices,
	}
	if q.Kind < AnyKind || q.Kind > 5 {
		return Query{}, fmt.Errorf("kind %d is not a span kind", q.Kind)
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return Query{}, fmt.Errorf("limit %d is not from 0 to %d", q.Limit, MaxLimit)
	}
	if q.MatchedSpans < 0 || len(w.Attrs)+len(w.Report) > maxWireConds {
		return Query{}, errors.New("the query asks too much")
	}
	for _, a := range w.Attrs {
		q.Attrs = append(q.Attrs, store.ParseAttrQuery(a[0], a[1]))
	}
	if w.Where != nil {
		d := decodeState{}
		c, err := d.cond(w.Where, 0)
		if err != nil {
			return Query{}, err
		}
		q.Where = c
	}
	return q, nil
}

type decodeState struct{ conds, insts int }

// condList decodes the conditions of an all or an any, each at depth.
func (d *decodeState) condList(ws []*wireCond, depth int) ([]Cond, error) {
	out := make([]Cond, 0, len(ws))
	for _, x := range ws {
		c, err := d.cond(x, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (d *decodeState) cond(w *wireCond, depth int) (Cond, error) {
	if w == nil {
		return nil, errors.New("an empty condition")
	}
	if depth > maxWireDepth {
		return nil, fmt.Errorf("conditions nest deeper than %d levels", maxWireDepth)
	}
	if d.conds++; d.conds > maxWireConds {
		return nil, fmt.Errorf("more than %d conditions", maxWireConds)
	}
	switch {
	case w.All != nil && w.Any == nil && w.Field == nil:
		out, err := d.condList(w.All, depth+1)
		if err != nil {
			return nil, err
		}
		return All(out), nil
	case w.Any != nil && w.All == nil && w.Field == nil:
		out, err := d.condList(w.Any, depth+1)
		if err != nil {
			return nil, err
		}
		return AnyOf(out), nil
	case w.Field != nil && w.All == nil && w.Any == nil:
		if *w.Field > FieldRootName || w.Scope > ScopeResourceAttr || w.Op > OpEqualFold || w.Value.Type > LitKeyword {
			return nil, errors.New("a condition names an unknown field, scope, operator or type")
		}
		c, err := NewCompare(*w.Field, w.Scope, w.Key, w.Op, w.Value)
		if err != nil {
			return nil, err
		}
		if d.insts += c.RegexpInsts; d.insts > MaxRegexpInsts {
			return nil, fmt.Errorf("%w: its regular expressions together expand to more than %d instructions", ErrRegexpTooLarge, MaxRegexpInsts)
		}
		return c, nil
	}
	return nil, errors.New("a condition is not exactly one of all, any or a comparison")
}
