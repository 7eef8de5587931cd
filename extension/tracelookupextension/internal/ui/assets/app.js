// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// The trace viewer: a list of the index's newest traces with the native
// search's filters, and one trace as a waterfall. It reads the native API
// (GET /api/v1/...) as any client does, with the tenant and credentials
// set under Access.

import { buildTree, criticalPath, selfTimes, serviceColor, formatDuration, relative } from './model.js';

const base = document.querySelector('meta[name="tracelookup-base"]').content;
const tenantHeader = document.querySelector('meta[name="tracelookup-tenant-header"]').content;
const $ = (id) => document.getElementById(id);
const ROW = 24;

// --- API access -----------------------------------------------------------

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function headers() {
  const h = { Accept: 'application/json' };
  const tenant = sessionStorage.getItem('tenant');
  const auth = sessionStorage.getItem('authorization');
  if (tenant) h[tenantHeader] = tenant;
  if (auth) h.Authorization = auth;
  return h;
}

async function api(path) {
  let resp;
  try {
    resp = await fetch(path, { headers: headers() });
  } catch (e) {
    throw new APIError(0, 'The collector could not be reached: ' + e.message);
  }
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text, exactNanos) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    const msg = (body && (body.message || (body.errors && body.errors[0] && (body.errors[0].detail || body.errors[0])) ||
      (Array.isArray(body.detail) && body.detail[0] && body.detail[0].msg))) || text || resp.statusText;
    let hint = '';
    if (resp.status === 401) hint = ' Set the credentials under Access.';
    if (resp.status === 403) hint = ' Set a tenant you may read under Access.';
    if (resp.status === 429) hint = ' Retry after ' + (resp.headers.get('Retry-After') || 'a few') + ' seconds.';
    const text2 = String(msg).trim();
    throw new APIError(resp.status, resp.status + ' ' + resp.statusText + ': ' + text2 + (hint && !/[.!?]$/.test(text2) ? '.' : '') + hint);
  }
  return body;
}

// exactNanos keeps unix nanoseconds exact, as BigInt, where the browser
// gives a reviver the number's source text.
function exactNanos(key, value, context) {
  if (typeof value === 'number' && key.endsWith('unix_nano') && context && typeof context.source === 'string') {
    try { return BigInt(context.source); } catch { return value; }
  }
  return value;
}

function showMessage(err) {
  const m = $('message');
  if (!err) { m.hidden = true; m.textContent = ''; return; }
  m.textContent = err.message || String(err);
  m.hidden = false;
}

// --- routing ---------------------------------------------------------------

// nav counts navigations: an answer (or an error) that arrives after the
// user moved on is dropped, not drawn over the page they are on.
let nav = 0;

function route() {
  nav++;
  const me = nav;
  stopLive();
  const rest = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '';
  const m = rest.match(/^trace\/([^/]+)$/);
  if (m) {
    let id;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      showTraceView();
      showMessage(new Error('The address does not hold a trace id that can be read: ' + m[1]));
      return;
    }
    const span = new URLSearchParams(location.search).get('span');
    showTrace(id, span).catch(guard(me));
  } else {
    showList().catch(guard(me));
  }
}

// guard shows an error only while the user is still where it arose.
function guard(me) {
  return (err) => { if (me === nav) showMessage(err); };
}

function go(path) {
  history.pushState(null, '', path);
  route();
}

window.addEventListener('popstate', route);

// --- the list --------------------------------------------------------------

let nextCursor = null;
let liveTimer = null;

function stopLive() {
  if (liveTimer) { clearInterval(liveTimer); liveTimer = null; }
}

// fillServices lists the tenant's services now, keeping the one chosen.
async function fillServices() {
  const sel = $('f-service');
  const keep = sel.value;
  const services = await api('/api/v1/services');
  sel.length = 1;
  for (const s of services) sel.add(new Option(s.name, s.name));
  sel.value = services.some((s) => s.name === keep) ? keep : '';
}

async function fillOperations() {
  const sel = $('f-name');
  const keep = sel.value;
  sel.length = 1;
  const svc = $('f-service').value;
  if (!svc) return;
  const ops = await api('/api/v1/services/' + encodeURIComponent(svc) + '/operations');
  for (const o of ops) if (![...sel.options].some((x) => x.value === o.name)) sel.add(new Option(o.name, o.name));
  sel.value = keep;
}

function searchQuery() {
  const q = new URLSearchParams();
  for (const [k, id] of [['service', 'f-service'], ['name', 'f-name'], ['status', 'f-status'], ['min_duration', 'f-min'], ['max_duration', 'f-max']]) {
    const v = $(id).value.trim();
    if (v) q.set(k, v);
  }
  for (const a of $('f-attr').value.split(/\s*,\s*/)) if (a) q.append('attr', a);
  for (const [k, id] of [['start', 'f-start'], ['end', 'f-end']]) {
    const v = $(id).value;
    if (v) q.set(k, new Date(v).toISOString());
  }
  q.set('limit', '50');
  return q;
}

async function showList() {
  const me = nav;
  $('trace-view').hidden = true;
  $('list-view').hidden = false;
  document.title = 'Trace lookup';
  showMessage(null);
  try {
    await fillServices();
    if (me !== nav) return;
    await runSearch(false);
  } finally {
    // Live goes on refreshing even when this first answer was an error.
    if (me === nav && $('live').checked) startLive();
  }
}

// searches counts the searches started: only the latest one's answer is
// drawn, and inFlight says whether one is still out.
let searches = 0;
let inFlight = 0;

async function runSearch(more) {
  const me = nav;
  const mine = ++searches;
  const q = searchQuery();
  if (more) {
    if (!nextCursor) return;
    q.set('next', nextCursor);
  }
  inFlight++;
  let page;
  try {
    page = await api('/api/v1/traces?' + q.toString());
  } finally {
    inFlight--;
  }
  if (me !== nav || mine !== searches) return;
  showMessage(null);
  const tbody = $('results');
  if (!more) tbody.textContent = '';
  const longest = Math.max(1, ...page.traces.map((t) => Number(t.duration_ns) || 0), ...[...tbody.querySelectorAll('tr')].map((r) => +r.dataset.ns));
  for (const t of page.traces) tbody.append(resultRow(t));
  for (const r of tbody.querySelectorAll('tr')) r.querySelector('.durbar span').style.width = (100 * (+r.dataset.ns) / longest).toFixed(2) + '%';
  nextCursor = page.next;
  $('more').hidden = !page.next;
  $('results-empty').hidden = tbody.children.length > 0;
}

function resultRow(t) {
  const tr = document.createElement('tr');
  tr.dataset.traceId = t.trace_id;
  tr.dataset.ns = Number(t.duration_ns) || 0;
  const root = document.createElement('td');
  const dot = document.createElement('span');
  dot.className = 'svc';
  dot.style.background = serviceColor(t.root_service || '');
  root.append(dot, text('strong', t.root_name || t.name || '(root span not received)'), ' ', text('span', t.root_service || '', 'durtext'));
  const start = text('td', new Date(Number(t.start_time_unix_nano) / 1e6).toLocaleString());
  const dur = document.createElement('td');
  const bar = document.createElement('div');
  bar.className = 'durbar' + (t.error_count > 0 ? ' error' : '');
  bar.append(document.createElement('span'));
  dur.append(bar, text('span', formatDuration(Number(t.duration_ns) || 0), 'durtext'));
  const errs = text('td', String(t.error_count), t.error_count > 0 ? 'errcount' : '');
  tr.append(root, start, dur, text('td', String(t.span_count)), errs);
  tr.addEventListener('click', () => go(base + 'trace/' + t.trace_id));
  return tr;
}

function text(tag, s, cls) {
  const e = document.createElement(tag);
  e.textContent = s;
  if (cls) e.className = cls;
  return e;
}

function startLive() {
  stopLive();
  const me = nav;
  liveTimer = setInterval(() => {
    if (me !== nav) { stopLive(); return; }
    if (!inFlight) runSearch(false).catch(guard(me)); // one at a time: a slow search is not overtaken
  }, 5000);
}

// --- one trace --------------------------------------------------------------

const view = { trace: null, tree: null, rows: [], collapsed: new Set(), selected: null, critical: new Set(), self: new Map(), span: 1 };

// Call ids as the 000 contract takes them: a UUID, hyphenated or as 32
// hex digits, bare, in braces or after urn:uuid:. Only the bare 32 hex
// digits are a trace id too.
const UUID = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})';
const CALL_ID = new RegExp('^(urn:uuid:' + UUID + '|\\{' + UUID + '\\}|' + UUID + ')$', 'i');
const TRACE_ID_TOO = /^[0-9a-f]{32}$/i;

// lookupTrace reads a trace by id, or by call id: the 000 contract names
// the trace (its id field), which the native API then reads. 32 hex digits
// are tried as a trace id first, then as a call id.
async function lookupTrace(id) {
  const byCall = async () => {
    const call = await api('/v1/trace/call/' + encodeURIComponent(id));
    return api('/api/v1/traces/' + encodeURIComponent(call.id) + '?flat=true');
  };
  if (!CALL_ID.test(id)) return api('/api/v1/traces/' + encodeURIComponent(id) + '?flat=true');
  if (!TRACE_ID_TOO.test(id)) return byCall();
  try {
    return await api('/api/v1/traces/' + encodeURIComponent(id) + '?flat=true');
  } catch (e) {
    if (!(e instanceof APIError) || e.status !== 404) throw e;
    try { return await byCall(); } catch { throw e; } // the trace id's answer says it best
  }
}

function showTraceView() {
  $('list-view').hidden = true;
  $('trace-view').hidden = false;
}

async function showTrace(id, spanId) {
  const me = nav;
  showTraceView();
  showMessage(null);
  // Nothing of the trace shown before stays while this one loads, or fails.
  $('trace-head').textContent = '';
  $('trace-banner').hidden = true;
  $('waterfall-inner').textContent = '';
  $('waterfall-inner').style.height = '0';
  $('axis').textContent = '';
  $('details').hidden = true;
  view.rows = [];
  view.drawn = new Map();
  const trace = await lookupTrace(id);
  if (me !== nav) return;
  view.trace = trace;
  view.tree = buildTree(trace.spans);
  view.collapsed = new Set();
  view.critical = criticalPath(view.tree);
  view.self = selfTimes(view.tree);
  view.span = Math.max(1, view.tree.end);
  document.title = (trace.name || trace.trace_id) + ' · Trace lookup';
  renderHead();
  layout();
  const want = spanId && view.tree.byId.get(spanId) ? spanId : null;
  select(want, !!want);
}

function renderHead() {
  const t = view.trace;
  const head = $('trace-head');
  head.textContent = '';
  head.append(text('h1', t.name || '(root span not received)'));
  const facts = document.createElement('div');
  facts.className = 'facts';
  const services = new Set(t.spans.map((s) => (s.resource_attributes || {})['service.name'] || ''));
  for (const f of [
    'Trace ' + t.trace_id,
    t.span_count + ' spans',
    'depth ' + view.tree.depth,
    services.size + (services.size === 1 ? ' service' : ' services'),
    formatDuration(view.span),
    t.error_count + (t.error_count === 1 ? ' error' : ' errors'),
    'status ' + t.status,
    view.tree.orphans + ' orphan' + (view.tree.orphans === 1 ? '' : 's'),
  ]) facts.append(text('span', f));
  const legend = text('span', '', 'legend');
  legend.append(text('span', '▁ critical path', 'crit'));
  facts.append(legend);
  head.append(facts);
  const banner = $('trace-banner');
  if (t.is_truncated) {
    banner.textContent = 'This is not the whole trace: ' + (t.truncation_reasons || []).join(', ') + '.';
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  const axis = $('axis');
  axis.textContent = '';
  for (let i = 0; i <= 4; i++) {
    const s = text('span', formatDuration(view.span * i / 4));
    s.style.left = (i * 25) + '%';
    axis.append(s);
  }
}

// layout lists the visible rows: the tree in order, without the spans of
// collapsed subtrees.
function layout() {
  const rows = [];
  // An explicit stack: a deep tree must not exhaust the call stack.
  const stack = [];
  for (let i = view.tree.roots.length - 1; i >= 0; i--) stack.push([view.tree.roots[i], 0]);
  while (stack.length) {
    const [node, depth] = stack.pop();
    rows.push({ node, depth });
    if (!view.collapsed.has(node.id)) for (let i = node.children.length - 1; i >= 0; i--) stack.push([node.children[i], depth + 1]);
  }
  view.rows = rows;
  const inner = $('waterfall-inner');
  inner.style.height = rows.length * ROW + 'px';
  inner.textContent = '';
  view.drawn = new Map();
  draw();
  alignAxis();
}

// alignAxis puts the time axis over the bars' lane.
function alignAxis() {
  const lane = document.querySelector('#waterfall-inner .lane');
  if (!lane) return;
  const axis = $('axis');
  const from = axis.parentElement.getBoundingClientRect().left;
  const box = lane.getBoundingClientRect();
  axis.style.marginLeft = (box.left - from) + 'px';
  axis.style.width = box.width + 'px';
}

// draw renders the rows in sight and a margin around them, no others: a
// 10,000-span trace keeps a few dozen rows in the page.
function draw() {
  const box = $('waterfall');
  const inner = $('waterfall-inner');
  const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 10);
  const last = Math.min(view.rows.length, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + 10);
  for (const [i, el] of view.drawn) {
    if (i < first || i >= last) { el.remove(); view.drawn.delete(i); }
  }
  for (let i = first; i < last; i++) {
    if (view.drawn.has(i)) continue;
    const el = rowElement(view.rows[i], i);
    inner.append(el);
    view.drawn.set(i, el);
  }
}

function rowElement(r, i) {
  const n = r.node;
  const s = n.span;
  const el = document.createElement('div');
  el.className = 'row';
  if (n.error) el.classList.add('error');
  if (view.critical.has(n.id)) el.classList.add('critical');
  if (n.id === view.selected) el.classList.add('selected');
  el.style.top = i * ROW + 'px';
  el.dataset.spanId = n.id;
  el.dataset.index = i;
  const label = document.createElement('div');
  label.className = 'label';
  label.style.paddingLeft = (4 + Math.min(r.depth, 40) * 14) + 'px';
  const caret = text('span', n.children.length ? (view.collapsed.has(n.id) ? '▸' : '▾') : '', 'caret');
  if (n.children.length) caret.addEventListener('click', (ev) => { ev.stopPropagation(); toggle(n.id); });
  label.append(caret, text('span', s.name, 'name'));
  if (n.error) label.append(text('span', '⚠', 'mark'));
  label.append(text('span', n.service, 'service'));
  if (n.orphan) label.append(text('span', 'parent missing', 'orphan'));
  const lane = document.createElement('div');
  lane.className = 'lane';
  const bar = document.createElement('div');
  bar.className = 'bar';
  const left = 100 * n.start / view.span; // times are after the trace's start
  const width = 100 * (n.end - n.start) / view.span;
  bar.style.left = left.toFixed(4) + '%';
  bar.style.width = width.toFixed(4) + '%';
  bar.style.background = serviceColor(n.service);
  bar.dataset.width = width.toFixed(4);
  lane.append(bar);
  for (const ev of s.events || []) {
    const tick = document.createElement('div');
    tick.className = 'event';
    tick.title = ev.name;
    tick.style.left = (100 * relative(ev.time_unix_nano, view.tree.base) / view.span).toFixed(4) + '%';
    lane.append(tick);
  }
  const label2 = text('span', formatDuration(n.end - n.start), 'bartext');
  label2.style.left = Math.min(left + width + 0.5, 92).toFixed(2) + '%';
  lane.append(label2);
  el.append(label, lane);
  el.addEventListener('click', () => select(n.id, false));
  return el;
}

function toggle(id) {
  if (view.collapsed.has(id)) view.collapsed.delete(id); else view.collapsed.add(id);
  layout();
}

// select shows a span's details, marks its row, puts it in the address
// (so that a reload opens it again), and scrolls to it when asked.
function select(id, scroll) {
  view.selected = id;
  for (const el of $('waterfall-inner').children) el.classList.toggle('selected', el.dataset.spanId === id);
  const url = new URL(location.href);
  if (id) url.searchParams.set('span', id); else url.searchParams.delete('span');
  history.replaceState(null, '', url);
  if (!id) { $('details').hidden = true; alignAxis(); return; }
  if (scroll) {
    // Open the collapsed subtrees above it, then bring its row in sight.
    for (let n = view.tree.byId.get(id).parent; n; n = n.parent) view.collapsed.delete(n.id);
    layout();
    const i = view.rows.findIndex((r) => r.node.id === id);
    $('waterfall').scrollTop = Math.max(0, i * ROW - $('waterfall').clientHeight / 3);
    draw();
  }
  renderDetails(view.tree.byId.get(id));
  alignAxis(); // the details panel narrows the waterfall
}

function renderDetails(n) {
  const s = n.span;
  const d = $('details');
  d.textContent = '';
  d.hidden = false;
  d.append(text('h2', s.name));
  d.append(table([
    ['span id', s.span_id], ['parent', s.parent_span_id || '(none)'], ['service', n.service], ['kind', s.kind],
    ['status', s.status_code + (s.status_message ? ': ' + s.status_message : '')],
    ['start', new Date(Number(s.start_time_unix_nano) / 1e6).toISOString() + ' (+' + formatDuration(n.start) + ')'],
    ['duration', formatDuration(n.end - n.start)], ['self time', formatDuration(view.self.get(n.id) || 0)],
    ['critical path', view.critical.has(n.id) ? 'yes' : 'no'],
  ]));
  section(d, 'Attributes', s.attributes);
  section(d, 'Resource', s.resource_attributes);
  if ((s.events || []).length) {
    d.append(text('h3', 'Events'));
    for (const ev of s.events) {
      d.append(text('div', '+' + formatDuration(relative(ev.time_unix_nano, view.tree.base)) + ' ' + ev.name));
      if (ev.attributes && Object.keys(ev.attributes).length) d.append(table(Object.entries(ev.attributes).map(([k, v]) => [k, show(v)])));
    }
  }
  if ((s.links || []).length) {
    d.append(text('h3', 'Links'));
    for (const l of s.links) {
      const a = document.createElement('a');
      a.href = base + 'trace/' + l.trace_id + '?span=' + l.span_id;
      a.textContent = l.trace_id + ' / ' + l.span_id;
      a.addEventListener('click', (ev) => { ev.preventDefault(); go(a.getAttribute('href')); });
      const div = document.createElement('div');
      div.append(a);
      d.append(div);
    }
  }
}

function section(d, title, obj) {
  if (!obj || !Object.keys(obj).length) return;
  d.append(text('h3', title));
  d.append(table(Object.entries(obj).map(([k, v]) => [k, show(v)])));
}

function show(v) { return typeof v === 'string' ? v : JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() : x)); }

function table(rows) {
  const t = document.createElement('table');
  for (const [k, v] of rows) {
    const tr = document.createElement('tr');
    tr.append(text('td', k), text('td', String(v)));
    t.append(tr);
  }
  return t;
}

// --- wiring ----------------------------------------------------------------

$('waterfall').addEventListener('scroll', () => requestAnimationFrame(draw));
window.addEventListener('resize', () => requestAnimationFrame(() => { if (view.rows.length) { draw(); alignAxis(); } }));
$('lookup').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = $('lookup-id').value.trim();
  if (id) go(base + 'trace/' + encodeURIComponent(id));
});
$('filters').addEventListener('submit', (ev) => { ev.preventDefault(); runSearch(false).catch(guard(nav)); });
$('f-service').addEventListener('change', () => fillOperations().catch(guard(nav)));
$('more').addEventListener('click', () => { if (!inFlight) runSearch(true).catch(guard(nav)); });
$('live').addEventListener('change', () => { if ($('live').checked) startLive(); else stopLive(); });
for (const key of ['tenant', 'authorization']) {
  const input = $(key);
  input.value = sessionStorage.getItem(key) || '';
  input.addEventListener('change', () => { sessionStorage.setItem(key, input.value.trim()); route(); });
}
route();
