// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceview"
)

// apmTrace is the 003 contract, GET /api/v2/trace/{trace_id}: a JSON:API
// envelope around flat spans with unsigned 64-bit ids as JSON numbers. Span
// fields are mapped from OpenTelemetry the way the vendor's own OTLP ingestion
// maps them (its "V2" operation and resource names); the README has the table.
// Errors: {"errors":[{"status","title","detail","source"}]}.
type apmTrace struct{ h *Handler }

// apmFields are the span fields include_fields may name, in output order.
var apmFields = []string{
	"duration", "endTime", "error", "meta", "metrics", "name", "parentID", "resource",
	"resourceHash", "restricted", "self_time", "service", "spanID", "startTime", "traceID",
	"traceIDFull", "type",
}

func (apmTrace) writeError(w http.ResponseWriter, status int, _, detail string) {
	writeAPMError(w, status, detail, "")
}

// writeAPMError writes the contract's error body; parameter, when set, names the offending input.
func writeAPMError(w http.ResponseWriter, status int, detail, parameter string) {
	b := append([]byte(nil), `{"errors":[{"status":"`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `","title":`...)
	b = spancodec.AppendJSONString(b, http.StatusText(status))
	b = append(b, `,"detail":`...)
	b = spancodec.AppendJSONString(b, detail)
	if parameter != "" {
		b = append(b, `,"source":{"parameter":`...)
		b = spancodec.AppendJSONString(b, parameter)
		b = append(b, '}')
	}
	b = append(b, `,"meta":{}}]}`...)
	writeJSON(w, status, b)
}

// parseFields reads include_fields, repeated or comma-separated, against the
// allowed names. It returns nil when every field is wanted, or the first
// unknown name.
func parseFields(values, allowed []string) (map[string]bool, string) {
	var include map[string]bool
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if !slices.Contains(allowed, f) {
				return nil, f
			}
			if include == nil {
				include = make(map[string]bool)
			}
			include[f] = true
		}
	}
	return include, ""
}

var _ refusals = apmTrace{}

// writeBusy answers 429, which the contract has for its rate limit, in
// the body its document gives that answer.
func (apmTrace) writeBusy(w http.ResponseWriter) {
	writeJSON(w, http.StatusTooManyRequests, []byte(`{"errors":["Too many requests"]}`))
}

// writeRateLimited answers 429 in the body the document gives it; the
// rate-limit headers are set already.
func (a apmTrace) writeRateLimited(w http.ResponseWriter) { a.writeBusy(w) }

func (a apmTrace) serve(w http.ResponseWriter, r *http.Request, tenant, segment string, query url.Values) Outcome {
	cands, err := traceid.Parse(segment)
	if err != nil {
		writeAPMError(w, http.StatusBadRequest, err.Error(), "trace_id")
		return OutcomeBadRequest
	}
	include, unknown := parseFields(query["include_fields"], apmFields)
	if unknown != "" {
		writeAPMError(w, http.StatusBadRequest, "unknown field "+strconv.Quote(Echo(unknown))+" in include_fields; the fields are "+strings.Join(apmFields, ", "), "include_fields")
		return OutcomeBadRequest
	}
	notFound := func() { writeAPMError(w, http.StatusNotFound, "trace "+Echo(segment)+" not found", "") }
	hd, outcome, ok := a.h.findOrAnswer(w, r, a, tenant, cands, notFound)
	if !ok {
		return outcome
	}
	return a.h.lookup(w, r, a, hd, &apmView{include: include}, notFound)
}

// apmView renders the envelope around flat spans. Spans past
// max_response_spans, or past the byte limit, are cut and is_truncated is
// set; a trace of which not even one span fits is a 413.
type apmView struct {
	include map[string]bool
	id      string
	m       apmMapper
}

func (*apmView) tree() bool { return false }

// needsASpan: the contract answers 413 when not even one span fits.
func (*apmView) needsASpan() bool { return true }

// workBytes: the vendor's mapping builds each span's meta and metrics, and
// normalized names, anew (measured: about 200 bytes a span; twice that is counted).
func (*apmView) workBytes(f store.Found) int { return 512*f.SpanCount + 64*f.Items }

func (v *apmView) head(b []byte, t *traceview.Trace, c *cut) []byte {
	v.id = hex.EncodeToString(t.ID[:])
	b = append(b, `{"data":{"id":"`...)
	b = append(b, v.id...)
	b = append(b, `","type":"trace","attributes":{"is_truncated":`...)
	b = strconv.AppendBool(b, c.truncated())
	return append(b, `,"spans":[`...)
}

func (v *apmView) span(b []byte, t *traceview.Trace, i int) []byte {
	return v.m.appendSpan(b, t, i, v.id, v.include)
}

func (*apmView) tail(b []byte, _ *traceview.Trace, _ *cut) []byte { return append(b, `]}}}`...) }

// apmMapper turns one span into the contract's fields. It keeps its maps
// between spans to spare allocations.
type apmMapper struct {
	meta    map[string]string
	metrics map[string]float64
	keys    []string
}

func appendField(b []byte, first *bool, name string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, name...)
	return append(b, `":`...)
}

func (m *apmMapper) appendSpan(b []byte, t *traceview.Trace, i int, traceIDFull string, include map[string]bool) []byte {
	s := &t.Spans[i]
	want := func(f string) bool { return include == nil || include[f] }
	dur := uint64(0)
	if s.EndUnixNano > s.StartUnixNano {
		dur = s.EndUnixNano - s.StartUnixNano
	}
	resource := apmResourceName(s)
	first := true
	b = append(b, '{')
	for _, f := range apmFields {
		if !want(f) {
			continue
		}
		b = appendField(b, &first, f)
		switch f {
		case "duration":
			b = strconv.AppendUint(b, dur, 10)
		case "endTime":
			b = strconv.AppendUint(b, s.StartUnixNano+dur, 10)
		case "error":
			if s.StatusCode == spancodec.StatusError {
				b = append(b, '1')
			} else {
				b = append(b, '0')
			}
		case "meta":
			m.fill(s, traceIDFull)
			b = m.appendMeta(b)
		case "metrics":
			if !want("meta") {
				m.fill(s, traceIDFull)
			}
			b = m.appendMetrics(b)
		case "name":
			b = spancodec.AppendJSONString(b, apmOperationName(s))
		case "parentID":
			b = strconv.AppendUint(b, binary.BigEndian.Uint64(s.ParentSpanID[:]), 10)
		case "resource":
			b = spancodec.AppendJSONString(b, resource)
		case "resourceHash":
			b = spancodec.AppendJSONString(b, resourceHash(resource))
		case "restricted":
			b = append(b, "false"...)
		case "self_time":
			b = strconv.AppendUint(b, t.SelfTime(i), 10)
		case "service":
			b = spancodec.AppendJSONString(b, apmService(s))
		case "spanID":
			b = strconv.AppendUint(b, binary.BigEndian.Uint64(s.SpanID[:]), 10)
		case "startTime":
			b = strconv.AppendUint(b, s.StartUnixNano, 10)
		case "traceID":
			b = strconv.AppendUint(b, binary.BigEndian.Uint64(s.TraceID[8:]), 10)
		case "traceIDFull":
			b = spancodec.AppendJSONString(b, traceIDFull)
		case "type":
			b = spancodec.AppendJSONString(b, apmSpanType(s))
		}
	}
	return append(b, '}')
}

// resourceHash identifies a resource name. The vendor does not publish its own
// algorithm; this is FNV-1a (32 bits) of the resource, in hex.
func resourceHash(resource string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(resource))
	var sum [4]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// attr finds the first of keys, span attributes before resource attributes,
// as a non-empty string.
func attr(s *spancodec.Span, keys ...string) string {
	for _, k := range keys {
		if v, ok := s.Attr(k); ok {
			if str := v.AsString(); str != "" {
				return str
			}
		}
	}
	for _, k := range keys {
		if v, ok := s.ResourceAttr(k); ok {
			if str := v.AsString(); str != "" {
				return str
			}
		}
	}
	return ""
}

// normalizedAttr is attr passed through the vendor's tag value normalization.
func normalizedAttr(s *spancodec.Span, keys ...string) string {
	return normalizeTagValue(attr(s, keys...))
}

// normalizeTagValue follows the vendor's rules: lower case; letters, digits and
// ". / - : _" kept; any other run becomes one "_", dropped at the end; at most
// 200 bytes.
func normalizeTagValue(v string) string {
	if v == "" {
		return ""
	}
	var sb strings.Builder
	pendingUnderscore := false
	for _, r := range strings.ToLower(v) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("./-:_", r) {
			if pendingUnderscore && sb.Len() > 0 {
				sb.WriteByte('_')
			}
			pendingUnderscore = false
			if sb.Len()+utf8.RuneLen(r) > 200 {
				break
			}
			sb.WriteRune(r)
			continue
		}
		pendingUnderscore = true
	}
	return sb.String()
}

const (
	defaultAPMService = "otlpresourcenoservicename"
	unnamedService    = "unnamed-service"
	maxServiceLen     = 100
	maxResourceLen    = 5000
)

// apmService is service.name, normalized, with the vendor's defaults.
func apmService(s *spancodec.Span) string {
	svc := attr(s, "service.name")
	if svc == "" {
		return defaultAPMService
	}
	if len(svc) > maxServiceLen {
		svc = svc[:maxServiceLen]
	}
	if svc = normalizeTagValue(svc); svc == "" {
		return unnamedService
	}
	return svc
}

func httpMethod(s *spancodec.Span) string { return attr(s, "http.request.method", "http.method") }
func dbSystem(s *spancodec.Span) string   { return normalizedAttr(s, "db.system.name", "db.system") }

var kindTitles = [...]string{"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"}

// apmOperationName is the vendor's V2 operation name: the first rule that matches.
func apmOperationName(s *spancodec.Span) string {
	server, client := s.Kind == spancodec.KindServer, s.Kind == spancodec.KindClient
	if op := normalizedAttr(s, "operation.name"); op != "" {
		return op
	}
	if httpMethod(s) != "" {
		if server {
			return "http.server.request"
		}
		if client {
			return "http.client.request"
		}
	}
	if db := dbSystem(s); db != "" && client {
		return db + ".query"
	}
	if sys, op := normalizedAttr(s, "messaging.system"), normalizedAttr(s, "messaging.operation"); sys != "" && op != "" && s.Kind >= spancodec.KindServer {
		return sys + "." + op
	}
	rpc := normalizedAttr(s, "rpc.system")
	if rpc == "aws-api" && client {
		if svc := normalizedAttr(s, "rpc.service"); svc != "" {
			return "aws." + svc + ".request"
		}
		return "aws.client.request"
	}
	if rpc != "" && client {
		return rpc + ".client.request"
	}
	if rpc != "" && server {
		return rpc + ".server.request"
	}
	if p, n := normalizedAttr(s, "faas.invoked_provider"), normalizedAttr(s, "faas.invoked_name"); p != "" && n != "" && client {
		return p + "." + n + ".invoke"
	}
	if tr := normalizedAttr(s, "faas.trigger"); tr != "" && server {
		return tr + ".invoke"
	}
	if normalizedAttr(s, "graphql.operation.type") != "" {
		return "graphql.server.request"
	}
	proto := normalizedAttr(s, "network.protocol.name")
	if server {
		if proto != "" {
			return proto + ".server.request"
		}
		return "server.request"
	}
	if client {
		if proto != "" {
			return proto + ".client.request"
		}
		return "client.request"
	}
	if s.Kind > spancodec.KindUnspecified && int(s.Kind) < len(kindTitles) {
		return kindTitles[s.Kind]
	}
	return kindTitles[spancodec.KindInternal]
}

// apmResourceName is the vendor's V2 resource name: the first rule that matches.
func apmResourceName(s *spancodec.Span) string {
	res := apmResourceNameUncut(s)
	if len(res) > maxResourceLen {
		res = res[:maxResourceLen]
	}
	return res
}

func apmResourceNameUncut(s *spancodec.Span) string {
	if r := attr(s, "resource.name"); r != "" {
		return r
	}
	if m := httpMethod(s); m != "" {
		if m == "_OTHER" {
			m = "HTTP"
		}
		switch s.Kind {
		case spancodec.KindServer:
			if route := attr(s, "http.route"); route != "" {
				return m + " " + route
			}
		case spancodec.KindClient:
			if tmpl := attr(s, "url.template"); tmpl != "" {
				return m + " " + tmpl
			}
		}
		return m
	}
	if op := attr(s, "messaging.operation"); op != "" {
		if dest := attr(s, "messaging.destination", "messaging.destination.name"); dest != "" {
			return op + " " + dest
		}
		return op
	}
	if method := attr(s, "rpc.method"); method != "" {
		if svc := attr(s, "rpc.service"); svc != "" {
			return method + " " + svc
		}
		return method
	}
	if typ := attr(s, "graphql.operation.type"); typ != "" {
		if name := attr(s, "graphql.operation.name"); name != "" {
			return typ + " " + name
		}
		return typ
	}
	if dbSystem(s) != "" {
		if stmt := attr(s, "db.statement", "db.query.text"); stmt != "" {
			return stmt
		}
	}
	return s.Name
}

// dbTypes maps db.system values to span types; other systems are "db".
var dbTypes = map[string]string{
	"cassandra": "cassandra", "redis": "redis", "memcached": "memcached", "mongodb": "mongodb",
	"elasticsearch": "elasticsearch", "opensearch": "opensearch",
}

var sqlSystems = []string{
	"other_sql", "mssql", "mysql", "oracle", "db2", "postgresql", "redshift", "cloudscape", "hsqldb",
	"maxdb", "ingres", "firstsql", "edb", "cache", "firebird", "derby", "informix", "mariadb", "sqlite",
	"sybase", "teradata", "vertica", "h2", "coldfusion", "cockroachdb", "progress", "hanadb", "adabas",
	"filemaker", "instantdb", "interbase", "netezza", "pervasive", "pointbase", "clickhouse",
}

func init() {
	for _, s := range sqlSystems {
		dbTypes[s] = "sql"
	}
}

// apmSpanType is the vendor's span type: llm for gen_ai spans, then span.type,
// then by kind (server web; client http or its database's type; else custom).
func apmSpanType(s *spancodec.Span) string {
	for _, kv := range s.Attributes {
		if strings.HasPrefix(kv.Key, "gen_ai.") {
			return "llm"
		}
	}
	if t := attr(s, "span.type"); t != "" {
		return t
	}
	switch s.Kind {
	case spancodec.KindServer:
		return "web"
	case spancodec.KindClient:
		db := dbSystem(s)
		if db == "" {
			return "http"
		}
		if t, ok := dbTypes[db]; ok {
			return t
		}
		return "db"
	default:
		return "custom"
	}
}

// attributeRenames are the vendor's names for OpenTelemetry HTTP attributes.
var attributeRenames = map[string]string{
	"client.address":               "http.client_ip",
	"http.response.body.size":      "http.response.content_length",
	"http.response.status_code":    "http.status_code",
	"http.request.body.size":       "http.request.content_length",
	"http.request.header.referrer": "http.referrer",
	"http.request.method":          "http.method",
	"network.protocol.version":     "http.version",
	"server.address":               "http.server_name",
	"url.full":                     "http.url",
	"user_agent.original":          "http.useragent",
}

// apmKey maps an attribute key to the vendor's; "" drops it (the keys that
// became service, name, resource and type).
func apmKey(k string) string {
	switch k {
	case "service.name", "operation.name", "resource.name", "span.type":
		return ""
	}
	if r, ok := attributeRenames[k]; ok {
		return r
	}
	if h, ok := strings.CutPrefix(k, "http.request.header."); ok {
		return "http.request.headers." + h
	}
	return k
}

var spanKindNames = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

var otelStatusNames = [...]string{"Unset", "Ok", "Error"}

func (m *apmMapper) setMeta(k, v string) {
	if _, ok := m.meta[k]; !ok {
		m.meta[k] = v
	}
}

func (m *apmMapper) setMetric(k string, v float64) {
	if _, ok := m.metrics[k]; !ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
		m.metrics[k] = v
	}
}

// fill computes meta and metrics in the vendor's order; where two sources
// give the same key, the first written wins.
func (m *apmMapper) fill(s *spancodec.Span, traceIDFull string) {
	if m.meta == nil {
		m.meta, m.metrics = make(map[string]string), make(map[string]float64)
	}
	clear(m.meta)
	clear(m.metrics)

	if int(s.Kind) < len(spanKindNames) && s.Kind >= 0 {
		m.meta["span.kind"] = spanKindNames[s.Kind]
	}
	for _, src := range [][]spancodec.KeyValue{s.Attributes, s.Resource.Attributes} {
		for _, k := range []string{"http.status_code", "http.response.status_code"} {
			if v, ok := spancodec.Lookup(src, k); ok {
				if code, isNum := numeric(v); isNum && code >= 0 {
					m.setMetric("http.status_code", code)
				} else if n, err := strconv.ParseFloat(v.AsString(), 64); err == nil && n >= 0 {
					m.setMetric("http.status_code", n)
				}
			}
		}
	}
	if code := attr(s, "rpc.grpc.status_code", "grpc.code", "rpc.grpc.status.code", "grpc.status.code", "grpc.status_code"); code != "" {
		m.setMeta("rpc.grpc.status_code", code)
	}
	if s.TraceState != "" {
		m.setMeta("w3c.tracestate", s.TraceState)
	}
	for _, kv := range s.Attributes {
		key := apmKey(kv.Key)
		if key == "" {
			continue
		}
		switch n, ok := numeric(kv.Value); {
		case ok:
			m.setMetric(key, n)
		case kv.Value.Type == spancodec.ValueBool:
			// The vendor's agent keeps booleans as "true"/"false" in meta;
			// the 003 mapping also gives them as 1/0 in metrics.
			m.setMeta(key, kv.Value.AsString())
			m.setMetric(key, boolNumber(kv.Value.Bool()))
		default:
			m.setMeta(key, kv.Value.AsString())
		}
	}
	m.setMeta("otel.trace_id", traceIDFull)
	if v := attr(s, "service.version"); v != "" {
		m.setMeta("version", v)
	}
	if len(s.Events) > 0 {
		m.setMeta("events", string(appendEventsJSON(nil, s.Events)))
	}
	if res := s.Resource; res.ScopeName != "" {
		m.setMeta("otel.library.name", res.ScopeName)
		m.setMeta("otel.scope.name", res.ScopeName)
	}
	if res := s.Resource; res.ScopeVersion != "" {
		m.setMeta("otel.library.version", res.ScopeVersion)
		m.setMeta("otel.scope.version", res.ScopeVersion)
	}
	if s.StatusCode >= 0 && int(s.StatusCode) < len(otelStatusNames) {
		m.setMeta("otel.status_code", otelStatusNames[s.StatusCode])
	}
	if s.StatusMessage != "" {
		m.setMeta("otel.status_description", s.StatusMessage)
	}
	if s.StatusCode == spancodec.StatusError {
		if _, ok := m.meta["error.msg"]; !ok {
			if s.StatusMessage != "" {
				m.meta["error.msg"] = s.StatusMessage
			} else if code, ok := m.meta["http.status_code"]; ok {
				m.meta["error.msg"] = httpStatusMessage(code)
			}
		}
	}
	if env := normalizedAttr(s, "deployment.environment.name", "deployment.environment"); env != "" {
		m.setMeta("env", env)
	}
	for _, kv := range s.Resource.Attributes {
		if key := apmKey(kv.Key); key != "" {
			m.setMeta(key, kv.Value.AsString())
		}
	}
	for _, kv := range s.Resource.ScopeAttributes {
		m.meta[kv.Key] = kv.Value.AsString()
	}
	if _, ok := m.meta["db.name"]; !ok {
		if ns := attr(s, "db.namespace"); ns != "" {
			m.meta["db.name"] = ns
		}
	}
}

func numeric(v spancodec.Value) (float64, bool) {
	switch v.Type {
	case spancodec.ValueInt:
		return float64(v.Int()), true
	case spancodec.ValueDouble:
		return v.Double(), true
	default:
		return 0, false
	}
}

func boolNumber(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func httpStatusMessage(code string) string {
	n, err := strconv.Atoi(code)
	if err != nil {
		return code
	}
	if text := http.StatusText(n); text != "" {
		return code + " " + text
	}
	return code
}

// appendEventsJSON renders events as the vendor's "events" tag does.
func appendEventsJSON(b []byte, events []spancodec.Event) []byte {
	b = append(b, '[')
	for i := range events {
		e := &events[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"time_unix_nano":`...)
		b = strconv.AppendUint(b, e.TimeUnixNano, 10)
		b = append(b, `,"name":`...)
		b = spancodec.AppendJSONString(b, e.Name)
		if len(e.Attributes) > 0 {
			b = append(b, `,"attributes":`...)
			b = spancodec.AppendJSONObject(b, e.Attributes)
		}
		if e.DroppedAttributes > 0 {
			b = append(b, `,"dropped_attributes_count":`...)
			b = strconv.AppendUint(b, uint64(e.DroppedAttributes), 10)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// sortedKeys returns the keys of m that the contract shows (not starting with
// "_"), sorted so responses are stable.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	keys = keys[:0]
	for k := range m {
		if !strings.HasPrefix(k, "_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func (m *apmMapper) appendMeta(b []byte) []byte {
	return appendSortedObject(b, &m.keys, m.meta, spancodec.AppendJSONString)
}

func (m *apmMapper) appendMetrics(b []byte) []byte {
	return appendSortedObject(b, &m.keys, m.metrics, spancodec.AppendJSONFloat)
}

// appendSortedObject appends the shown entries of m as a JSON object, keys sorted.
func appendSortedObject[V any](b []byte, keys *[]string, m map[string]V, appendValue func([]byte, V) []byte) []byte {
	*keys = sortedKeys(*keys, m)
	b = append(b, '{')
	for i, k := range *keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = spancodec.AppendJSONString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}
