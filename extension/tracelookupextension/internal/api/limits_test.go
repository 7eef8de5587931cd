// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/hostile"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/spangen"
)

// Go's query parser gives up past 10,000 parameters, and r.URL.Query()
// then returns none: flat=maybe answered 200 with the whole trace. Every
// contract now refuses a query it cannot read, in its own error format.
func TestUnreadableQueryRefused(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	many := "flat=maybe&include_fields=bogus" + strings.Repeat("&x=1", 10_000)
	for _, path := range []string{"/api/v1/traces/" + fixtureHex, "/api/v2/trace/" + fixtureHex, "/v1/trace/call/" + callID} {
		for _, query := range []string{many, "flat=%zz"} {
			r := get(t, h, http.MethodGet, path+"?"+query)
			require.Equal(t, http.StatusBadRequest, r.code, "%s?%.40s", path, query)
			body := r.json(t)
			if strings.HasPrefix(path, "/api/v2/") {
				assert.Contains(t, body["errors"].([]any)[0].(map[string]any)["detail"], "the query string could not be read")
			} else {
				assert.Equal(t, "INVALID_PARAMETER", body["error_code"])
			}
		}
	}
	// At the limit, the parameters are read and checked.
	r := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?flat=maybe"+strings.Repeat("&x=1", 9_999))
	require.Equal(t, http.StatusBadRequest, r.code)
	assert.Contains(t, r.json(t)["message"], `"maybe"`)
}

// A 1 MB path was repeated whole in the 404 and 422 bodies.
func TestErrorsRepeatOnlyAShortPrefix(t *testing.T) {
	h := fixtureHandler(t, defaultOptions())
	long := strings.Repeat("a", 1<<20)
	for _, path := range []string{"/nope/" + long, "/api/v1/traces/" + long, "/api/v2/trace/" + long, "/v1/trace/call/" + long,
		"/api/v1/traces/" + strings.Repeat("1", 1<<20), "/api/v1/traces/" + fixtureHex + "?flat=" + long} {
		r := get(t, h, http.MethodGet, path)
		assert.GreaterOrEqual(t, r.code, 400)
		assert.Less(t, len(r.body), 1024, "%.40s: %d bytes", path, len(r.body))
		assert.True(t, json.Valid(r.body))
	}
	r := get(t, h, http.MethodGet, "/v1/trace/call/"+long)
	require.Equal(t, http.StatusUnprocessableEntity, r.code)
	input := r.json(t)["detail"].([]any)[0].(map[string]any)["input"].(string)
	assert.Equal(t, strings.Repeat("a", maxEcho)+"...", input)
}

// chainStore holds one trace whose spans form a parent chain n deep.
func chainStore(t testing.TB, n int) (*store.Store, string) {
	t.Helper()
	id := pcommon.TraceID{0xc, 0xa, 0xf, 0xe}
	st := store.New(store.Config{MaxBytes: 256 << 20, CallIDAttribute: "call.id"})
	st.Ingest("", hostile.Chain(id, n, callID))
	return st, hex.EncodeToString(id[:])
}

// countTree counts the spans of a decoded tree, and its depth, without recursing.
func countTree(spans []any) (count, depth int) {
	type item struct {
		span  map[string]any
		level int
	}
	var stack []item
	for _, s := range spans {
		stack = append(stack, item{s.(map[string]any), 1})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		count++
		depth = max(depth, it.level)
		for _, c := range it.span["children"].([]any) {
			stack = append(stack, item{c.(map[string]any), it.level + 1})
		}
	}
	return count, depth
}

// A 10,000-deep parent chain nested its tree 20,000 JSON levels deep, past
// what encoding/json (and Python's json) parse. Cut at 1,000 levels, every
// span is still there, the cut subtrees hang from roots that keep their
// parent ids, and the response says so.
func TestDeepChainParsesBack(t *testing.T) {
	const n = 10_000
	st, hexID := chainStore(t, n)
	h := NewHandler(st, defaultOptions())

	r := get(t, h, http.MethodGet, "/api/v1/traces/"+hexID)
	require.Equal(t, http.StatusOK, r.code)
	var native struct {
		IsTruncated bool     `json:"is_truncated"`
		Reasons     []string `json:"truncation_reasons"`
		Spans       []any    `json:"spans"`
	}
	require.NoError(t, json.Unmarshal(r.body, &native), "encoding/json reads the tree back")
	assert.True(t, native.IsTruncated)
	assert.Equal(t, []string{"max_tree_depth"}, native.Reasons)
	assert.Equal(t, "max_tree_depth", r.hdr.Get(truncatedHeader))
	count, depth := countTree(native.Spans)
	assert.Equal(t, n, count)
	assert.Equal(t, traceview.DefaultMaxTreeDepth, depth)
	assert.Len(t, native.Spans, n/traceview.DefaultMaxTreeDepth)
	assert.NotNil(t, native.Spans[1].(map[string]any)["parent_span_id"], "a hoisted root keeps its parent")

	r = get(t, h, http.MethodGet, "/v1/trace/call/"+callID)
	require.Equal(t, http.StatusOK, r.code)
	var call struct {
		Spans []any `json:"spans"`
	}
	require.NoError(t, json.Unmarshal(r.body, &call))
	count, depth = countTree(call.Spans)
	assert.Equal(t, n, count)
	assert.Equal(t, traceview.DefaultMaxTreeDepth, depth)
	assert.Equal(t, "max_tree_depth", r.hdr.Get(truncatedHeader), "000 has no field for it: the header says so")

	// Python's json, the other parser the issue named, reads both back too,
	// with the deepest attribute values the index keeps on the deepest span.
	deepID, deepCall := pcommon.TraceID{0xd, 0xee, 0xb}, "0d0eeb00-0000-4000-8000-000000000002"
	deep := hostile.Chain(deepID, n, deepCall)
	spans := deep.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	v := spans.At(spans.Len() - 1).Attributes().PutEmpty("deep")
	for range spancodec.MaxValueDepth - 1 {
		v = v.SetEmptySlice().AppendEmpty()
	}
	v.SetStr("leaf")
	st.Ingest("", deep)
	for _, path := range []string{"/api/v1/traces/" + hex.EncodeToString(deepID[:]), "/v1/trace/call/" + deepCall} {
		r = get(t, h, http.MethodGet, path)
		require.Equal(t, http.StatusOK, r.code)
		pythonParses(t, r.body)
	}

	// Flat, nothing nests: nothing is cut.
	r = get(t, h, http.MethodGet, "/api/v1/traces/"+hexID+"?flat=true")
	assert.Equal(t, false, r.json(t)["is_truncated"])
	assert.Empty(t, r.hdr.Get(truncatedHeader))
}

// Every contract's response is bounded, and a cut is flagged in the
// contract's way: native in is_truncated and truncation_reasons, 000 in a
// header, 003 in is_truncated. A tree is cut at whole subtrees.
func TestResponsesBoundedOnEveryContract(t *testing.T) {
	st, hexID := chainStore(t, 1)
	_ = hexID
	first, late := fixtureBatches()
	st.Ingest("", first)
	st.Ingest("", late)
	for _, path := range []string{"/api/v1/traces/" + fixtureHex, "/api/v1/traces/" + fixtureHex + "?flat=true", "/v1/trace/call/" + callID, "/api/v2/trace/" + fixtureHex} {
		full := get(t, NewHandler(st, defaultOptions()), http.MethodGet, path)
		require.Equal(t, http.StatusOK, full.code)
		opts := defaultOptions()
		opts.MaxResponseBytes = len(full.body) - 200
		r := get(t, NewHandler(st, opts), http.MethodGet, path)
		require.Equal(t, http.StatusOK, r.code, path)
		assert.LessOrEqual(t, len(r.body), opts.MaxResponseBytes, path)
		assert.Equal(t, reasonResponseBytes, r.hdr.Get(truncatedHeader), path)
		body := r.json(t)
		switch {
		case strings.HasPrefix(path, "/api/v1/"):
			assert.Equal(t, true, body["is_truncated"], path)
			assert.Equal(t, []any{reasonResponseBytes}, body["truncation_reasons"], path)
		case strings.HasPrefix(path, "/api/v2/"):
			assert.Equal(t, true, body["data"].(map[string]any)["attributes"].(map[string]any)["is_truncated"])
		}
		if !strings.Contains(path, "flat") && !strings.HasPrefix(path, "/api/v2/") {
			// The fixture's tree: root > client > charge > late, and an orphan.
			// Cut in the order it is written, the orphan's subtree goes first.
			count, _ := countTree(body["spans"].([]any))
			assert.Equal(t, 4, count, path)
		}

		opts = defaultOptions()
		opts.MaxResponseSpans = 2
		r = get(t, NewHandler(st, opts), http.MethodGet, path)
		assert.Equal(t, reasonResponseSpans, r.hdr.Get(truncatedHeader), path)
	}
}

// A response past fastResponseBytes is streamed, chunk by chunk, and is
// still the whole trace.
func TestLargeResponseStreamed(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 256 << 20})
	for part := range 20 {
		st.Ingest("", spangen.Batch(0, 1, part*500, 500))
	}
	h := NewHandler(st, Options{MaxResponseSpans: 100_000, MaxResponseBytes: 64 << 20})
	id := spangen.TraceID(0)
	for _, path := range []string{"/api/v1/traces/", "/api/v2/trace/"} {
		r := get(t, h, http.MethodGet, path+hex.EncodeToString(id[:])+"?flat=true")
		require.Equal(t, http.StatusOK, r.code)
		assert.Greater(t, len(r.body), fastResponseBytes)
		assert.Empty(t, r.hdr.Get("Content-Length"), "streamed")
		assert.True(t, json.Valid(r.body), path)
		assert.Equal(t, 10_000, strings.Count(string(r.body), `"start`+map[string]string{"/api/v1/traces/": "_time_unix_nano", "/api/v2/trace/": "Time"}[path]+`"`))
	}
}

// The flags for spans the store could not read.
func TestUnreadableSpansFlagged(t *testing.T) {
	h := NewHandler(nil, defaultOptions())
	spans := []spancodec.Span{{SpanID: [8]byte{1}, Name: "kept", Resource: &spancodec.Resource{}}}
	tv := traceview.FromSpans([16]byte{1}, spans, 0)
	tv.Unreadable = 2
	rec := httptest.NewRecorder()
	h.respond(rec, native{h}, &nativeView{nativeSpanWriter{org: "default", tree: true}}, tv, nil)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, true, body["is_truncated"])
	assert.Equal(t, []any{reasonUnreadable}, body["truncation_reasons"])
	assert.Len(t, body["spans"], 1)
}

// 200 concurrent lookups of a 10,000-span trace: the lookups in flight
// never hold more than the budget, the ones it cannot admit in time are
// answered 503 (429 on 003) with Retry-After, and the rest are whole.
func TestConcurrentLookupsAdmitted(t *testing.T) {
	st := store.New(store.Config{MaxBytes: 256 << 20})
	for part := range 20 {
		st.Ingest("", spangen.Batch(0, 1, part*500, 500))
	}
	id := spangen.TraceID(0)
	f, ok := st.Find("", id)
	require.True(t, ok)
	opts := defaultOptions()
	opts.MaxResponseSpans = 100_000
	cost := max(lookupCost(f, &nativeView{}), lookupCost(f, &apmView{}))
	opts.LookupMemoryBytes = 3 * cost // three at a time
	h := NewHandler(st, opts)
	paths := []string{"/api/v1/traces/", "/api/v2/trace/"}

	const n = 200
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, paths[i%2]+hex.EncodeToString(id[:])+"?flat=true", nil))
			codes[i] = rec.Code
			switch rec.Code {
			case http.StatusOK:
				assert.True(t, json.Valid(rec.Body.Bytes()))
			case http.StatusServiceUnavailable, http.StatusTooManyRequests:
				assert.Equal(t, "1", rec.Header().Get("Retry-After"))
				assert.True(t, json.Valid(rec.Body.Bytes()))
			default:
				t.Errorf("lookup %d: %d %.200s", i, rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	stats := h.AdmissionStats()
	assert.LessOrEqual(t, stats.PeakBytes, opts.LookupMemoryBytes, "never more than the budget in flight")
	assert.GreaterOrEqual(t, stats.PeakBytes, cost)
	assert.Zero(t, stats.InUseBytes, "every admitted lookup gave its share back")
	refused := 0
	for i, c := range codes {
		if c != http.StatusOK {
			refused++
			want := http.StatusServiceUnavailable
			if i%2 == 1 {
				want = http.StatusTooManyRequests
			}
			assert.Equal(t, want, c)
		}
	}
	assert.Equal(t, int64(refused), stats.Rejected)
	assert.Less(t, refused, n, "some lookups were served")
	t.Logf("200 concurrent lookups of a 10,000-span trace: %d served, %d refused; peak %d of %d bytes", n-refused, refused, stats.PeakBytes, opts.LookupMemoryBytes)
}

// lookupCost must cover what a lookup allocates, or the budget would not
// bound memory. Every byte allocated counts, garbage included, so the live
// peak is below it.
func TestLookupCostCoversAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what is allocated; make test runs this test without it as well")
	}
	heavy := ptrace.NewTraces()
	ss := heavy.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range 200 {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{7})
		s.SetSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, byte((i + 1) >> 8), byte(i + 1)})
		for k := range 100 {
			s.Attributes().PutStr(fmt.Sprintf("k%d", k), strings.Repeat("v", k))
		}
		for range 20 {
			s.Events().AppendEmpty().Attributes().PutInt("n", 1)
		}
	}
	// A resource of 128 values of 4 KiB that JSON escapes to six times their
	// size, rendered with each of 20 spans (found in review: it cost 168 KB
	// and allocated 21 MB).
	escaped := ptrace.NewTraces()
	rs := escaped.ResourceSpans().AppendEmpty()
	for k := range 128 {
		rs.Resource().Attributes().PutStr(fmt.Sprintf("r%d", k), strings.Repeat("<", 4096))
	}
	for i := range 20 {
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{8})
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
	}
	st := store.New(store.Config{MaxBytes: 256 << 20})
	st.Ingest("", heavy)
	st.Ingest("", escaped)
	for part := range 20 {
		st.Ingest("", spangen.Batch(0, 1, part*500, 500))
	}
	h := NewHandler(st, Options{MaxResponseSpans: 100_000, MaxResponseBytes: 64 << 20})
	// The first lookup finds every pool empty, as lookups past the pools'
	// sizes do: the 10,000-span trace goes first.
	for _, c := range []struct {
		name string
		id   pcommon.TraceID
	}{{"10,000 spans", spangen.TraceID(0)}, {"attribute-heavy", pcommon.TraceID{7}}, {"resource-heavy", pcommon.TraceID{8}}} {
		name, id := c.name, c.id
		for _, path := range []string{"/api/v1/traces/", "/api/v1/traces/%s?flat=true", "/api/v2/trace/"} {
			f, ok := st.Find("", id)
			require.True(t, ok)
			target := path + hex.EncodeToString(id[:])
			if strings.Contains(path, "%s") {
				target = fmt.Sprintf(path, hex.EncodeToString(id[:]))
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			w := &countingWriter{h: http.Header{}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			h.ServeHTTP(w, req)
			runtime.ReadMemStats(&after)
			require.Equal(t, http.StatusOK, w.code)
			require.Positive(t, w.n)
			allocated := int64(after.TotalAlloc - before.TotalAlloc)
			v := map[bool]view{false: &nativeView{}, true: &apmView{}}[strings.HasPrefix(path, "/api/v2/")]
			assert.LessOrEqual(t, allocated, lookupCost(f, v), "%s %s", name, path)
			t.Logf("%s %s: allocated %d of a cost of %d", name, path, allocated, lookupCost(f, v))
		}
	}
}

// countingWriter discards a response, keeping its status and length: a
// recorder would allocate a copy of it.
type countingWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *countingWriter) Header() http.Header  { return w.h }
func (w *countingWriter) WriteHeader(code int) { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// Rendered whole, the brackets that close a tree come after the last check
// against the limit: a response must still never pass it (found in review:
// 102 limits of a sweep gave a larger body, unflagged).
func TestResponseNeverPassesTheLimit(t *testing.T) {
	st, hexID := chainStore(t, 50)
	for _, path := range []string{"/api/v1/traces/" + hexID, "/v1/trace/call/" + callID} {
		full := get(t, NewHandler(st, defaultOptions()), http.MethodGet, path)
		require.Equal(t, http.StatusOK, full.code)
		for limit := len(full.body) - 400; limit < len(full.body); limit++ {
			opts := defaultOptions()
			opts.MaxResponseBytes = limit
			r := get(t, NewHandler(st, opts), http.MethodGet, path)
			require.Equal(t, http.StatusOK, r.code)
			require.LessOrEqual(t, len(r.body), limit, path)
			require.Equal(t, reasonResponseBytes, r.hdr.Get(truncatedHeader), "%s at %d", path, limit)
			require.True(t, json.Valid(r.body))
		}
	}
}

// pythonParses checks that Python's json module reads body, when there is
// a python3 to ask.
func pythonParses(t *testing.T, body []byte) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Log("no python3 here: Python's json not checked")
		return
	}
	cmd := exec.Command(python, "-c", "import json, sys; json.load(sys.stdin)")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "Python's json: %s", out)
}

// Tempo's, Jaeger's and Zipkin's answers keep to max_response_bytes as
// the native one does: fewer spans, and they say so.
func TestOtherContractsKeepToTheByteLimit(t *testing.T) {
	whole := len(get(t, fixtureHandler(t, Options{}), http.MethodGet, "/api/traces/"+fixtureHex).body)
	limit := whole * 2 / 3
	h := fixtureHandler(t, Options{MaxResponseBytes: limit})

	r := get(t, h, http.MethodGet, "/api/traces/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code)
	assert.LessOrEqual(t, len(r.body), limit+128, "the envelope comes on top")
	var env jaegerEnvelope[[]jaegerTraceJSON]
	decodeStrict(t, r.body, &env)
	require.Len(t, env.Data, 1)
	assert.Less(t, len(env.Data[0].Spans), 5)
	require.NotEmpty(t, env.Data[0].Warnings)
	assert.Contains(t, env.Data[0].Warnings[0], reasonResponseBytes)

	zipkinWhole := len(get(t, fixtureHandler(t, Options{}), http.MethodGet, "/zipkin/api/v2/trace/"+fixtureHex).body)
	r = get(t, fixtureHandler(t, Options{MaxResponseBytes: zipkinWhole * 2 / 3}), http.MethodGet, "/zipkin/api/v2/trace/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code)
	assert.LessOrEqual(t, len(r.body), zipkinWhole*2/3)
	assert.Equal(t, reasonResponseBytes, r.hdr.Get(truncatedHeader))

	r = get(t, h, http.MethodGet, "/api/v3/traces/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code)
	assert.LessOrEqual(t, len(r.body), limit+32)
	assert.Contains(t, r.hdr.Get(truncatedHeader), reasonResponseBytes)

	tiny := fixtureHandler(t, Options{MaxResponseBytes: 64})
	r = get(t, tiny, http.MethodGet, "/api/traces/"+fixtureHex)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.code, "not one span fits")
	decodeStrict(t, r.body, &env)
	assert.Equal(t, http.StatusRequestEntityTooLarge, get(t, tiny, http.MethodGet, "/zipkin/api/v2/trace/"+fixtureHex).code)

	// Searches stop adding traces once past the limit.
	three := NewHandler(fixtureCopies(3, 0), Options{MaxResponseBytes: 64})
	r = get(t, three, http.MethodGet, "/api/search?q=%7B%7D")
	assert.Equal(t, http.StatusOK, r.code)
	var res tempoSearchResponse
	decodeStrict(t, r.body, &res)
	assert.Len(t, res.Traces, 1, "the first is always answered")
	assert.Equal(t, reasonResponseBytes, r.hdr.Get(truncatedHeader))
}

// api_v3's search holds one trace's lookup memory at a time: a budget
// that fits one trace answers them all.
func TestJaegerV3SearchHoldsOneTraceAtATime(t *testing.T) {
	st := fixtureCopies(3, 0)
	f, ok := st.Find("", [16]byte{1, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c})
	require.True(t, ok)
	h := NewHandler(st, Options{LookupMemoryBytes: otlpCost(f) * 3 / 2})
	r := get(t, h, http.MethodGet, "/api/v3/traces?query.service_name=payment&"+v3Window())
	td := v3Result(t, r)
	assert.Equal(t, 12, td.SpanCount(), "three traces of four spans")
	assert.Empty(t, r.hdr.Get(truncatedHeader))
}

// A large later span must not hide that the first spans fit.
func TestFitSpansKeepsOneBeforeNone(t *testing.T) {
	sizes := []int{100, 2000}
	render := func(n int) []byte {
		total := 10
		for _, s := range sizes[:n] {
			total += s
		}
		return make([]byte, total)
	}
	b, n, cut := fitSpans(2, 1000, render)
	assert.Equal(t, 1, n)
	assert.Len(t, b, 110)
	assert.True(t, cut)
	_, n, _ = fitSpans(2, 50, render)
	assert.Zero(t, n, "not even the first")
	_, n, cut = fitSpans(2, 0, render)
	assert.Equal(t, 2, n, "no budget")
	assert.False(t, cut)
}
