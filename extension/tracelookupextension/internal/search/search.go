// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package search finds a tenant's traces by what their spans carry and
// sums each one up: the store's indexes name the candidates, newest first
// by start, and each candidate is decoded and its spans checked, so that
// the span-level conditions hold on one span, as TraceQL's { a && b }.
// Every contract that searches (native, Tempo, Jaeger) maps this.
package search // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/search"

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// Limits of one search.
const (
	DefaultLimit = 20
	MaxLimit     = 1000
	// MaxMatchedSpans is the most matching spans a summary shows by default, and
	// MaxSummaryServices the most services (ServiceCount counts them all).
	MaxMatchedSpans    = 3
	MaxSummaryServices = 50
	// DefaultMaxScannedTraces and DefaultMaxScannedSpans are the default
	// budget of one search (see Options).
	DefaultMaxScannedTraces = 2_000_000
	DefaultMaxScannedSpans  = 200_000
	DefaultTimeout          = 10 * time.Second
)

// Query is one search. Zero values are "any".
type Query struct {
	// Span-level conditions, which must all hold on one span.
	Service string
	Name    string
	Kind    int32 // -1: any
	Attrs   []store.AttrQuery
	// Trace-level conditions.
	Status                   store.Status // a set; 0: any
	MinDuration, MaxDuration uint64       // nanoseconds
	StartFrom, StartTo       uint64       // unix nanoseconds, inclusive
	// Where is a further condition on the same span (nil: none): what a
	// query language asks beyond the indexed equalities above.
	Where Cond
	// Limit is the most traces answered (DefaultLimit when 0).
	Limit int
	// MatchedSpans is the most matching spans a summary keeps
	// (MaxMatchedSpans when 0), and Report the attributes each keeps.
	MatchedSpans int
	Report       []AttrRef
	// AllServices keeps every service in a summary, not the first
	// MaxSummaryServices.
	AllServices bool
	// After continues a search below a cursor (see Result.Next).
	After store.Key
}

// AnyKind is Query.Kind when any kind will do.
const AnyKind = -1

// AttrRef names an attribute a matched span reports.
type AttrRef struct {
	Scope Scope
	Key   string
}

func (q *Query) hasSpanConditions() bool {
	return q.Service != "" || q.Name != "" || q.Kind != AnyKind || len(q.Attrs) > 0 || q.Where != nil
}

// Matches says whether span s of trace t meets every span-level condition.
func (q *Query) Matches(t *traceview.Trace, s *spancodec.Span) bool {
	return q.matchesIndexed(s) && (q.Where == nil || q.Where.Match(t, s))
}

func (q *Query) matchesIndexed(s *spancodec.Span) bool {
	if q.Name != "" && s.Name != q.Name {
		return false
	}
	if q.Kind != AnyKind && s.Kind != q.Kind {
		return false
	}
	if q.Service != "" {
		// A service is a string service.name, as the index holds it.
		if v, ok := s.ResourceAttr("service.name"); !ok || v.Type != spancodec.ValueStr || v.Str != q.Service {
			return false
		}
	}
	for i := range q.Attrs {
		a := &q.Attrs[i]
		if v, ok := s.Attr(a.Key); ok && a.Matches(v) {
			continue
		}
		if v, ok := s.ResourceAttr(a.Key); ok && a.Matches(v) {
			continue
		}
		return false
	}
	return true
}

// Options bound a search's work.
type Options struct {
	// MaxScannedTraces is the most search records one search reads, and
	// MaxScannedSpans the most spans it decodes to check candidates; past
	// either it stops and says so (Result.Partial). 0: the defaults.
	MaxScannedTraces int
	MaxScannedSpans  int
	// Timeout is the most time one search takes; past it, it stops and
	// says so too. 0: no limit.
	Timeout time.Duration
	// MaxTreeDepth is as for lookups (see traceview.Build).
	MaxTreeDepth int
}

// MatchedSpan is one span that met the span-level conditions.
type MatchedSpan struct {
	SpanID      [8]byte
	Name        string
	ServiceName string
	Start       uint64
	Duration    uint64
	// Attributes are the span's values of Query.Report, those it has.
	Attributes []spancodec.KeyValue
}

// ServiceSpans counts one service's spans in a trace.
type ServiceSpans struct {
	Name   string
	Spans  int
	Errors int
}

// Summary sums one trace up.
type Summary struct {
	ID          [16]byte
	RootName    string
	RootService string
	Status      string // traceview's
	Start, End  uint64
	// FirstSeen and LastSeen are when the index first and last received a span.
	FirstSeen, LastSeen int64
	SpanCount           int
	ErrorCount          int
	// Services in the order their first span starts, the first
	// MaxSummaryServices of ServiceCount.
	Services     []ServiceSpans
	ServiceCount int
	Orphans      int
	Truncated    bool
	// Matched are the first matching spans by start, MatchedCount all of them.
	Matched      []MatchedSpan
	MatchedCount int
}

// DurationNanos is the time from the earliest start to the latest end.
func (s *Summary) DurationNanos() uint64 {
	if s.End < s.Start {
		return 0
	}
	return s.End - s.Start
}

// Result is one page of a search.
type Result struct {
	Traces []Summary
	// Next continues the search (as Query.After) when HasNext.
	Next    store.Key
	HasNext bool
	// Partial says the search stopped at its budget before it had looked
	// at every trace: Next continues it.
	Partial bool
	// Scanned counts the search records read, Decoded the spans decoded.
	Scanned int
	Decoded int
}

// Run searches tenant's traces; it stops early, with what it found, when
// ctx is done (the client went away).
func Run(ctx context.Context, st *store.Store, tenant string, q Query, o Options) Result {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	timedOut := func() bool { return errors.Is(ctx.Err(), context.DeadlineExceeded) }
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	maxSpans := o.MaxScannedSpans
	if maxSpans <= 0 {
		maxSpans = DefaultMaxScannedSpans
	}
	maxTraces := o.MaxScannedTraces
	if maxTraces <= 0 {
		maxTraces = DefaultMaxScannedTraces
	}
	f := store.Filter{
		Status:      q.Status,
		MinDuration: q.MinDuration, MaxDuration: q.MaxDuration,
		StartFrom: q.StartFrom, StartTo: q.StartTo,
		Spans: store.SpanTerms{Service: q.Service, Name: q.Name, Kind: q.Kind, Attrs: q.Attrs},
	}
	var res Result
	handled := 0
	last := q.After
	// The first candidate of a page is always read whole, its time
	// bounded by its spans: so every page moves on, whatever the timeout.
	sr := st.Scan(tenant, f, q.After, maxTraces, func(h store.Hit) bool {
		if len(res.Traces) == limit {
			res.HasNext = true // one more candidate: the next page may hold more
			return false
		}
		if ctx.Err() != nil && (handled > 0 || !timedOut()) {
			res.Partial, res.HasNext = timedOut(), timedOut()
			return false
		}
		if handled > 0 && res.Decoded >= maxSpans {
			res.Partial, res.HasNext = true, true
			return false
		}
		handled++
		tr, ok := st.FetchHit(h)
		if !ok {
			last = h.Key
			return true // it left in between
		}
		t := traceview.Build(tr, o.MaxTreeDepth)
		defer t.Release()
		res.Decoded += len(t.Spans)
		stop := ctx
		if handled == 1 {
			stop = context.Background()
		}
		sum, ok, done := summarize(stop, t, &q)
		if !done { // out of time within the trace: the next page starts with it
			res.Partial, res.HasNext = timedOut(), timedOut()
			return false
		}
		last = h.Key
		if ok {
			res.Traces = append(res.Traces, sum)
		}
		return true
	})
	res.Scanned = sr.Scanned
	res.Next = last
	if sr.Stopped {
		res.Partial, res.HasNext, res.Next = true, true, sr.Resume
	}
	return res
}

// Summarize sums up t, a trace assembled from all of its parts, and says
// whether it matches q's span conditions.
func Summarize(ctx context.Context, t *traceview.Trace, q Query) (Summary, bool) {
	s, ok, _ := summarize(ctx, t, &q)
	return s, ok
}

// summarize sums t up, and says whether it matches q's span conditions;
// done is false when ctx ended first (checked before each span that a
// further condition reads, since a regular expression may be slow, else
// every spansPerCheck spans).
// The decoded strings live in t's memory, which its next use overwrites:
// what the summary keeps is copied.
func summarize(ctx context.Context, t *traceview.Trace, q *Query) (_ Summary, matched, done bool) {
	sum := Summary{
		ID:        t.ID,
		Status:    t.Status,
		Start:     t.StartUnixNano,
		End:       t.EndUnixNano,
		FirstSeen: t.FirstSeen,
		LastSeen:  t.LastSeen,
		SpanCount: len(t.Spans),
		Orphans:   t.Orphans,
		Truncated: t.Truncated || t.Unreadable > 0,
	}
	spanConditions := q.hasSpanConditions()
	maxMatched := q.MatchedSpans
	if maxMatched <= 0 {
		maxMatched = MaxMatchedSpans
	}
	var byName map[string]int // once there are many services
	for i := range t.Spans {
		if (q.Where != nil || i%spansPerCheck == spansPerCheck-1) && ctx.Err() != nil {
			return Summary{}, false, false
		}
		s := &t.Spans[i]
		if s.StatusCode == spancodec.StatusError {
			sum.ErrorCount++
		}
		svc := s.ServiceName()
		k := -1
		if byName != nil {
			if j, ok := byName[svc]; ok {
				k = j
			}
		} else {
			k = slices.IndexFunc(sum.Services, func(x ServiceSpans) bool { return x.Name == svc })
		}
		if k < 0 {
			k = len(sum.Services)
			sum.Services = append(sum.Services, ServiceSpans{Name: strings.Clone(svc)})
			if byName != nil {
				byName[sum.Services[k].Name] = k
			} else if len(sum.Services) > 16 {
				byName = make(map[string]int, 32)
				for j, x := range sum.Services {
					byName[x.Name] = j
				}
			}
		}
		sum.Services[k].Spans++
		if s.StatusCode == spancodec.StatusError {
			sum.Services[k].Errors++
		}
		if spanConditions && !q.Matches(t, s) {
			continue
		}
		sum.MatchedCount++
		if len(sum.Matched) < maxMatched {
			sum.Matched = append(sum.Matched, MatchedSpan{
				SpanID: s.SpanID, Name: strings.Clone(s.Name), ServiceName: sum.Services[k].Name,
				Start: s.StartUnixNano, Duration: spanDuration(s), Attributes: reported(s, q.Report),
			})
		}
	}
	sum.ServiceCount = len(sum.Services)
	if len(sum.Services) > MaxSummaryServices && !q.AllServices {
		sum.Services = slices.Clip(sum.Services[:MaxSummaryServices])
	}
	if root := t.RootSpan(); root != nil {
		sum.RootName, sum.RootService = strings.Clone(root.Name), strings.Clone(root.ServiceName())
	}
	return sum, sum.MatchedCount > 0 || (!spanConditions && len(t.Spans) == 0), true
}

// spansPerCheck is how often summarize checks that its search has time left.
const spansPerCheck = 1024

// reported copies s's values of refs, scalars only (what a search result
// shows next to a span).
func reported(s *spancodec.Span, refs []AttrRef) []spancodec.KeyValue {
	var out []spancodec.KeyValue
	for _, r := range refs {
		v, ok := spancodec.Value{}, false
		if r.Scope != ScopeResourceAttr {
			v, ok = s.Attr(r.Key)
		}
		if !ok && r.Scope != ScopeSpanAttr {
			v, ok = s.ResourceAttr(r.Key)
		}
		if !ok || slices.ContainsFunc(out, func(kv spancodec.KeyValue) bool { return kv.Key == r.Key }) {
			continue
		}
		switch v.Type {
		case spancodec.ValueStr:
			v = spancodec.StrValue(strings.Clone(v.Str))
		case spancodec.ValueInt, spancodec.ValueDouble, spancodec.ValueBool:
		default:
			continue
		}
		out = append(out, spancodec.KeyValue{Key: strings.Clone(r.Key), Value: v})
	}
	return out
}

// cursorVersion leads every cursor, so that a cursor of another version
// is refused rather than misread.
const cursorVersion = 1

// EncodeCursor writes k as an opaque, URL-safe cursor.
func EncodeCursor(k store.Key) string {
	var b [17]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], k.Start)
	binary.BigEndian.PutUint64(b[9:], k.Seq)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ErrBadCursor is a cursor that this search did not write.
var ErrBadCursor = errors.New("not a cursor from a previous page's next")

// DecodeCursor reads a cursor EncodeCursor wrote.
func DecodeCursor(s string) (store.Key, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != cursorVersion {
		return store.Key{}, ErrBadCursor
	}
	k := store.Key{Start: binary.BigEndian.Uint64(b[1:]), Seq: binary.BigEndian.Uint64(b[9:])}
	if k == (store.Key{}) {
		return store.Key{}, ErrBadCursor
	}
	return k, nil
}
