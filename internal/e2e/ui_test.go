// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// chromium is Debian's Chromium, which `make test` installs when it is
// missing. Without it the browser test is skipped, except in CI, where
// its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: `make test` installs Debian's chromium package")
	}
	t.Skip("chromium is not installed: run `make test`, which installs Debian's chromium package")
	return ""
}

// exampleSpan is a span of examples/trace.json, as the document writes it.
type exampleSpan struct {
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId"`
	Name         string `json:"name"`
	Start        string `json:"startTimeUnixNano"`
	End          string `json:"endTimeUnixNano"`
	Status       struct {
		Code int `json:"code"`
	} `json:"status"`
}

func exampleSpans(t *testing.T) (string, []exampleSpan) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "trace.json"))
	require.NoError(t, err)
	var doc struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []struct {
					TraceID string `json:"traceId"`
					exampleSpan
				} `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	var traceID string
	var spans []exampleSpan
	for _, rs := range doc.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				traceID = s.TraceID
				spans = append(spans, s.exampleSpan)
			}
		}
	}
	return traceID, spans
}

// treeOrder is the waterfall's row order worked out from the document: a
// parent before its children, siblings by start time.
func treeOrder(spans []exampleSpan) []string {
	start := func(s exampleSpan) uint64 { v, _ := strconv.ParseUint(s.Start, 10, 64); return v }
	byStart := slices.Clone(spans)
	slices.SortFunc(byStart, func(a, b exampleSpan) int { return cmp.Compare(start(a), start(b)) })
	var out []string
	var walk func(parent string)
	walk = func(parent string) {
		for _, s := range byStart {
			if s.ParentSpanID == parent {
				out = append(out, s.SpanID)
				walk(s.SpanID)
			}
		}
	}
	walk("")
	return out
}

// bigTrace is one trace of n spans: a root, then a chain of children in
// groups, so that the tree is deep as well as long.
func bigTrace(n int) (ptrace.Traces, string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bulk")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	id := pcommon.TraceID{0xb1, 0x9b, 0x10, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	base := pcommon.Timestamp(time.Now().Add(-time.Minute).UnixNano())
	for i := range n {
		s := spans.AppendEmpty()
		s.SetTraceID(id)
		var sid pcommon.SpanID
		sid[0], sid[1], sid[2] = 0x5b, byte(i>>8), byte(i)
		s.SetSpanID(sid)
		if i > 0 {
			parent := (i - 1) / 10 * 10 // groups of ten under one parent
			var pid pcommon.SpanID
			pid[0], pid[1], pid[2] = 0x5b, byte(parent>>8), byte(parent)
			s.SetParentSpanID(pid)
		}
		s.SetName(fmt.Sprintf("step %d", i))
		s.SetStartTimestamp(base + pcommon.Timestamp(i)*1000)
		s.SetEndTimestamp(base + pcommon.Timestamp(i)*1000 + 500)
	}
	return td, hex.EncodeToString(id[:])
}

// browserContext starts headless Chromium for the test, stopped with it.
func browserContext(t *testing.T, browser string) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
		// The machine's network is closed: Chromium must not try it.
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// TestViewerInABrowser opens the extension's page in headless Chromium:
// the list shows the traces sent, a search finds one, its waterfall has a
// row per span in tree order with bars as wide as the spans are long and
// the error spans marked, a deep link opens its span, and a 10,000-span
// trace renders with only the rows in sight in the page. Screenshots of
// each page go to the test's artifact directory (go test -artifacts).
func TestViewerInABrowser(t *testing.T) {
	collectorBinary(t)
	browser := chromium(t)
	apiPort, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	col := startCollector(t, nopConfig(apiPort, grpcPort, httpPort, "    ui:\n      enabled: true\n      path: /\n"))
	col.waitReady(t, apiPort, nil, grpcPort, httpPort)
	api := "http://" + addr(apiPort)

	exampleID, example := exampleSpans(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "trace.json"))
	require.NoError(t, err)
	status, _ := post(t, "http://"+addr(httpPort)+"/v1/traces", "application/json", raw, false)
	require.Equal(t, http.StatusOK, status)
	big, bigID := bigTrace(10_000)
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(big)
	require.NoError(t, err)
	status, _ = post(t, "http://"+addr(httpPort)+"/v1/traces", "application/x-protobuf", body, false)
	require.Equal(t, http.StatusOK, status)
	poll(t, 10*time.Second, "both traces to be held", func() error {
		for _, id := range []string{exampleID, bigID} {
			if resp, err := get(api+"/api/v1/traces/"+id+"?include_fields=span_id", nil); err != nil || resp.Status != http.StatusOK {
				return fmt.Errorf("%s not yet", id)
			}
		}
		return nil
	})

	ctx := browserContext(t, browser)
	shots := t.ArtifactDir()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, steps...), what)
	}
	eval := func(expr string, v any) {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
		require.NoError(t, err, expr)
		require.NoError(t, json.Unmarshal(out, v), expr)
	}
	waitFor := func(expr string, timeout time.Duration) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout)))
		require.NoError(t, err, expr)
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), png, 0o600))
	}

	// The list shows the traces sent.
	var listed []string
	do("open the list", chromedp.Navigate(api+"/"), chromedp.WaitVisible(chromedp.CSS(`#results tr[data-trace-id]`)))
	waitFor(`document.querySelectorAll('#results tr').length === 2`, 20*time.Second)
	eval(`[...document.querySelectorAll('#results tr')].map(r => r.dataset.traceId)`, &listed)
	shoot("list.png")
	assert.ElementsMatch(t, []string{exampleID, bigID}, listed)

	// Live: a trace sent while the list is open appears in it.
	do("live", chromedp.Click(chromedp.CSS(`#live`)))
	lateID := "1a7e00000000000000000000000000aa"
	late := strings.ReplaceAll(string(raw), exampleID, lateID)
	late = strings.ReplaceAll(late, "3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a42", "3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a43") // its own call id
	status, _ = post(t, "http://"+addr(httpPort)+"/v1/traces", "application/json", []byte(late), false)
	require.Equal(t, http.StatusOK, status)
	waitFor(`document.querySelector('#results tr[data-trace-id="`+lateID+`"]') !== null`, 30*time.Second)
	do("live off", chromedp.Click(chromedp.CSS(`#live`)))

	// Status alone: the big trace has no error, the example (and its copy) two.
	waitFor(`document.querySelector('#f-service option[value="payment"]') !== null`, 20*time.Second)
	do("search by status", chromedp.SetValue(chromedp.CSS(`#f-status`), "success"), chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	waitFor(`document.querySelectorAll('#results tr').length === 1 && document.querySelector('#results tr').dataset.traceId === '`+bigID+`'`, 20*time.Second)

	// A search by service and status finds the example only.
	do("search", chromedp.SetValue(chromedp.CSS(`#f-service`), "payment"), chromedp.SetValue(chromedp.CSS(`#f-status`), "error"),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	waitFor(`document.querySelectorAll('#results tr').length === 2 && [...document.querySelectorAll('#results tr')].every(r => r.dataset.traceId !== '`+bigID+`')`, 20*time.Second)
	eval(`[...document.querySelectorAll('#results tr')].map(r => r.dataset.traceId)`, &listed)
	shoot("search.png")
	assert.ElementsMatch(t, []string{exampleID, lateID}, listed)

	// Its waterfall: a row per span in tree order, bars as long as the
	// spans, error spans marked.
	type row struct {
		SpanID string  `json:"id"`
		Width  float64 `json:"width"`
		Error  bool    `json:"error"`
	}
	var rows []row
	do("open the trace", chromedp.Click(chromedp.CSS(`#results tr[data-trace-id="`+exampleID+`"]`)), chromedp.WaitVisible(chromedp.CSS(`#waterfall-inner .row`)))
	eval(`[...document.querySelectorAll('#waterfall-inner .row')].sort((a, b) => a.dataset.index - b.dataset.index).map(r => ({id: r.dataset.spanId, width: +r.querySelector('.bar').dataset.width, error: r.classList.contains('error')}))`, &rows)
	shoot("waterfall.png")
	order := treeOrder(example)
	require.Len(t, rows, len(example))
	var traceStart, traceEnd uint64 = math.MaxUint64, 0
	for _, s := range example {
		a, _ := strconv.ParseUint(s.Start, 10, 64)
		b, _ := strconv.ParseUint(s.End, 10, 64)
		traceStart, traceEnd = min(traceStart, a), max(traceEnd, b)
	}
	for i, r := range rows {
		assert.Equal(t, order[i], r.SpanID, "row %d", i)
		k := slices.IndexFunc(example, func(s exampleSpan) bool { return s.SpanID == r.SpanID })
		require.GreaterOrEqual(t, k, 0)
		a, _ := strconv.ParseUint(example[k].Start, 10, 64)
		b, _ := strconv.ParseUint(example[k].End, 10, 64)
		assert.InDelta(t, 100*float64(b-a)/float64(traceEnd-traceStart), r.Width, 0.01, "bar width of %s", r.SpanID)
		assert.Equal(t, example[k].Status.Code == 2, r.Error, "error mark of %s", r.SpanID)
	}

	// The critical path: each of these spans is the child that ends last
	// within its parent (the document's times), so the chain is all three.
	var critical []string
	eval(`[...document.querySelectorAll('#waterfall-inner .row.critical')].map(r => r.dataset.spanId)`, &critical)
	assert.ElementsMatch(t, order, critical)

	// Collapsing the root hides its subtree; expanding shows it again.
	var count int
	do("collapse", chromedp.Click(chromedp.CSS(`#waterfall-inner .row[data-index="0"] .caret`)))
	eval(`document.querySelectorAll('#waterfall-inner .row').length`, &count)
	assert.Equal(t, 1, count)
	do("expand", chromedp.Click(chromedp.CSS(`#waterfall-inner .row[data-index="0"] .caret`)))
	eval(`document.querySelectorAll('#waterfall-inner .row').length`, &count)
	assert.Equal(t, len(example), count)

	// Selecting a span puts it in the address.
	var search string
	do("select", chromedp.Click(chromedp.CSS(`#waterfall-inner .row[data-span-id="`+order[1]+`"] .name`)))
	eval(`location.search`, &search)
	assert.Equal(t, "?span="+order[1], search)

	// A deep link opens its span, and survives a reload.
	errSpan := example[slices.IndexFunc(example, func(s exampleSpan) bool { return s.Status.Code == 2 && s.ParentSpanID != "" })]
	var selected, location string
	do("deep link", chromedp.Navigate(api+"/trace/"+exampleID+"?span="+errSpan.SpanID), chromedp.WaitVisible(chromedp.CSS(`#details h2`)),
		chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#details h2`)))
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#details h2`)))
	require.NoError(t, err)
	eval(`document.querySelector('#waterfall-inner .row.selected').dataset.spanId`, &selected)
	eval(`location.pathname + location.search`, &location)
	var misalign float64
	eval(`(() => { const a = document.getElementById('axis').getBoundingClientRect(); const l = document.querySelector('#waterfall-inner .lane').getBoundingClientRect(); return Math.abs(a.left - l.left) + Math.abs(a.width - l.width) })()`, &misalign)
	assert.Less(t, misalign, 2.0, "the time axis lies over the bars with the details panel open")
	shoot("deeplink.png")
	assert.Equal(t, errSpan.Name, title)
	assert.Equal(t, errSpan.SpanID, selected)
	assert.Equal(t, "/trace/"+exampleID+"?span="+errSpan.SpanID, location)

	// 10,000 spans: it renders, keeps only the rows in sight in the page,
	// and scrolls to the last. (The deadline is a hang check, not a speed
	// figure.)
	var head string
	var inPage, lastIndex, criticalInBig int
	opened := time.Now()
	do("open the big trace", chromedp.Navigate(api+"/trace/"+bigID))
	waitFor(`document.querySelectorAll('#waterfall-inner .row').length > 0 && document.querySelector('#trace-head').textContent.includes('10000 spans')`, time.Minute)
	t.Logf("the 10,000-span trace: %s from navigation to drawn rows (a figure, not a test)", time.Since(opened).Round(time.Millisecond))
	eval(`document.querySelector('#trace-head').textContent`, &head)
	eval(`document.querySelectorAll('#waterfall-inner .row').length`, &inPage)
	eval(`document.querySelectorAll('#waterfall-inner .row.critical').length`, &criticalInBig)
	shoot("big.png")
	eval(`(() => { const w = document.getElementById('waterfall'); w.scrollTop = w.scrollHeight; w.dispatchEvent(new Event('scroll')); return 0 })()`, new(int))
	waitFor(`document.querySelector('#waterfall-inner .row[data-index="9999"]') !== null`, 30*time.Second)
	eval(`Math.max(...[...document.querySelectorAll('#waterfall-inner .row')].map(r => +r.dataset.index))`, &lastIndex)
	assert.Positive(t, inPage)
	assert.Less(t, inPage, 200, "only the rows in sight are in the page")
	// Each child starts after its parent ends: the critical path is the root alone.
	assert.Equal(t, 1, criticalInBig, "the children that start after their parent ends are not on its path")
	assert.Equal(t, 9999, lastIndex)

	// The lookup box opens a trace by its call id (the example's).
	do("open by call id", chromedp.Navigate(api+"/"), chromedp.WaitVisible(chromedp.CSS(`#lookup-id`)),
		chromedp.SetValue(chromedp.CSS(`#lookup-id`), "3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a42"), chromedp.Click(chromedp.CSS(`#lookup button`)))
	waitFor(`document.querySelectorAll('#waterfall-inner .row').length === `+strconv.Itoa(len(example)), 20*time.Second)
	var openedHead string
	eval(`document.querySelector('#trace-head').textContent`, &openedHead)
	assert.Contains(t, openedHead, exampleID)

	// Errors are shown as messages, not a blank page, and nothing of the
	// trace shown before stays.
	do("an unknown trace", chromedp.Navigate(api+"/trace/0123456789abcdef0123456789abcdef"), chromedp.WaitVisible(chromedp.CSS(`#message`)))
	message, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`)))
	require.NoError(t, err)
	shoot("not-found.png")
	assert.Contains(t, message, "404")
	assert.Contains(t, message, "not found")
	eval(`document.querySelectorAll('#waterfall-inner .row').length`, &count)
	assert.Zero(t, count)
	// The waterfall's model, run in the page itself on traces worked out
	// by hand: which spans the critical path holds, self times, orphans and
	// parent-id cycles.
	var model map[string]any
	out, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](`import('/ui/model.js').then((m) => {
		const sp = (id, parent, start, end) => ({span_id: id, parent_span_id: parent, start_time_unix_nano: BigInt(start), end_time_unix_nano: BigInt(end)});
		const run = (spans) => { const t = m.buildTree(spans); return {crit: [...m.criticalPath(t)].sort(), self: Object.fromEntries(m.selfTimes(t)), roots: t.roots.map((r) => r.id), orphans: t.orphans, depth: t.depth}; };
		return {
			sequential: run([sp('r', null, 0, 100), sp('a', 'r', 0, 90), sp('b', 'r', 95, 96)]),
			overlapping: run([sp('r', null, 0, 100), sp('a', 'r', 0, 60), sp('b', 'r', 50, 100)]),
			after: run([sp('r', null, 0, 10), sp('c', 'r', 20, 30)]),
			cycle: run([sp('x', 'y', 0, 10), sp('y', 'x', 1, 9)]),
			orphan: run([sp('r', null, 0, 10), sp('o', 'gone', 2, 3)]),
		};
	})`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &model))
	check := func(name, field string, want any) {
		t.Helper()
		got, _ := json.Marshal(model[name].(map[string]any)[field])
		w, _ := json.Marshal(want)
		assert.JSONEq(t, string(w), string(got), "%s.%s", name, field)
	}
	// Sequential children: the one that ends last, then the one that ends
	// before it starts; the root's self time is what neither covers.
	check("sequential", "crit", []string{"a", "b", "r"})
	check("sequential", "self", map[string]int{"r": 9, "a": 90, "b": 1})
	// Overlapping children: the one that ends last starts before the other
	// ends, so only it is on the path; the children cover the root whole.
	check("overlapping", "crit", []string{"b", "r"})
	check("overlapping", "self", map[string]int{"r": 0, "a": 60, "b": 50})
	// A child that starts after its parent ends is not on the path.
	check("after", "crit", []string{"r"})
	// A parent-id cycle never loops: one span of it becomes a root.
	check("cycle", "roots", []string{"y"})
	check("cycle", "depth", 2)
	// A span whose parent never arrived is a root, and counted.
	check("orphan", "roots", []string{"r", "o"})
	check("orphan", "orphans", 1)

	t.Logf("screenshots in %s", shots)
}

// TestViewerShowsRefusals: a page the API's authentication refuses, and a
// request past the tenant's rate limit, are messages, not blank pages.
func TestViewerShowsRefusals(t *testing.T) {
	collectorBinary(t)
	browser := chromium(t)
	apiPort, grpcPort, limitedPort := freePort(t), freePort(t), freePort(t)
	collector := func(api int, extra string) {
		col := startCollector(t, nopCollector{api: api, grpc: grpcPort, extension: extra,
			others: bearerTokenAuth, otherNames: []string{"bearertokenauth"}}.config())
		col.waitReady(t, api, map[string]string{"Authorization": "Bearer s3cret"})
	}
	collector(apiPort, "    auth:\n      authenticator: bearertokenauth\n")
	ctx := browserContext(t, browser)
	shots := t.ArtifactDir()

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+addr(apiPort)+"/")))
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	require.NoError(t, err)
	assert.Contains(t, body, "401 Unauthorized")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "unauthorized.png"), png, 0o600))

	grpcPort = freePort(t)
	collector(limitedPort, "    rate_limits:\n      native:\n        requests_per_minute: 2\n")
	// Waiting for the collector spent one of the tenant's two requests: the
	// page's second is refused.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+addr(limitedPort)+"/"), chromedp.WaitVisible(chromedp.CSS(`#message`))))
	message, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`)))
	require.NoError(t, err)
	assert.Contains(t, message, "429")
	assert.Contains(t, message, "Retry after")
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "rate-limited.png"), png, 0o600))
}
