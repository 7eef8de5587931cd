// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// The trace model the waterfall draws: the span tree, its critical path,
// each span's self time, and the colours and durations it shows.

// big reads unix nanoseconds, which the page parses as BigInt (see
// app.js): a double rounds them to a few hundred nanoseconds.
export function big(v) {
  return typeof v === 'bigint' ? v : BigInt(Math.round(Number(v) || 0));
}

// relative is nanoseconds after base, as a number.
export function relative(v, base) {
  return Number(big(v) - base);
}

// buildTree links flat spans (the native API's, flat=true) into a tree:
// roots are the spans without a parent and those whose parent is not in
// the trace (orphans); children are in start order. Node times are
// nanoseconds after the trace's start (base), exact.
export function buildTree(spans) {
  const byId = new Map();
  let base = null;
  for (const s of spans) {
    const st = big(s.start_time_unix_nano);
    if (base === null || st < base) base = st;
  }
  if (base === null) base = 0n;
  const start = 0;
  let end = 0;
  for (const s of spans) {
    const st = relative(s.start_time_unix_nano, base);
    const node = {
      id: s.span_id, span: s, parent: null, children: [],
      start: st, end: Math.max(relative(s.end_time_unix_nano, base), st),
      service: (s.resource_attributes || {})['service.name'] || '',
      error: s.status_code === 'ERROR', orphan: false,
    };
    byId.set(node.id, node);
    end = Math.max(end, node.end);
  }
  const roots = [];
  let orphans = 0;
  for (const node of byId.values()) {
    const pid = node.span.parent_span_id;
    const parent = pid && pid !== node.id ? byId.get(pid) : null;
    if (parent && !isAncestor(node, parent)) {
      node.parent = parent;
      parent.children.push(node);
    } else {
      if (pid) { node.orphan = true; orphans++; }
      roots.push(node);
    }
  }
  const byStart = (a, b) => a.start - b.start || (a.id < b.id ? -1 : 1);
  roots.sort(byStart);
  let depth = 0;
  const stack = roots.map((r) => [r, 1]);
  while (stack.length) {
    const [n, d] = stack.pop();
    depth = Math.max(depth, d);
    n.children.sort(byStart);
    for (const c of n.children) stack.push([c, d + 1]);
  }
  return { roots, byId, base, start, end, depth, orphans };
}

// isAncestor says whether node is an ancestor of other, so that a
// parent-id cycle never links into a loop (the span that closes it stays
// a root).
function isAncestor(node, other) {
  for (let n = other; n; n = n.parent) if (n === node) return true;
  return false;
}

// criticalPath is the chain of spans that decides when the trace ends:
// from the root that ends last, walking back in time, the child that ends
// last, then the child that ends before that one starts, and so on, each
// followed into its own children the same way (children are clipped to
// their parent's end; those that start after it are not on the path). An
// explicit stack: a deep tree must not exhaust the call stack.
export function criticalPath(tree) {
  const path = new Set();
  let root = null;
  for (const r of tree.roots) if (!root || r.end > root.end) root = r;
  const stack = root ? [root] : [];
  while (stack.length) {
    const n = stack.pop();
    path.add(n.id);
    const within = n.children.filter((c) => c.start < n.end || (c.start === n.start && c.end === n.end));
    const byEnd = within.sort((a, b) => Math.min(b.end, n.end) - Math.min(a.end, n.end));
    let until = n.end;
    for (const c of byEnd) {
      if (Math.min(c.end, n.end) <= until) {
        stack.push(c);
        until = c.start;
      }
    }
  }
  return path;
}

// selfTimes is each span's duration less the union of its children's,
// each clipped to the span.
export function selfTimes(tree) {
  const out = new Map();
  for (const n of tree.byId.values()) {
    const iv = n.children.map((c) => [Math.max(c.start, n.start), Math.min(c.end, n.end)]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
    let covered = 0;
    let curA = null;
    let curB = null;
    for (const [a, b] of iv) {
      if (curB === null || a > curB) {
        if (curB !== null) covered += curB - curA;
        curA = a;
        curB = b;
      } else if (b > curB) {
        curB = b;
      }
    }
    if (curB !== null) covered += curB - curA;
    out.set(n.id, Math.max(0, n.end - n.start - covered));
  }
  return out;
}

// serviceColor gives each service its own colour, the same on every page.
export function serviceColor(name) {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return 'hsl(' + ((h >>> 0) % 360) + ', 62%, 58%)';
}

// formatDuration shows nanoseconds in the unit that reads best.
export function formatDuration(ns) {
  if (ns < 1e3) return Math.round(ns) + 'ns';
  if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 2 : 1) + 'µs';
  if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + 'ms';
  return (ns / 1e9).toFixed(ns < 1e10 ? 2 : 1) + 's';
}
