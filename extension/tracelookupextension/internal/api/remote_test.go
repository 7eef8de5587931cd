// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/remote"
	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// splitFixture is the fixture as three replicas receive it: the frontend's
// spans, the payment service's, and the late span.
func splitFixture() []ptrace.Traces {
	first, late := fixtureBatches()
	frontend, payment := ptrace.NewTraces(), ptrace.NewTraces()
	first.ResourceSpans().At(0).CopyTo(frontend.ResourceSpans().AppendEmpty())
	first.ResourceSpans().At(1).CopyTo(payment.ResourceSpans().AppendEmpty())
	return []ptrace.Traces{frontend, payment, late}
}

// replica is one collector's API on a loopback port.
type replica struct {
	srv      *httptest.Server
	h        *Handler
	st       *store.Store
	requests atomic.Int64 // requests from peers
}

// replicas starts one replica per batch, each listing all of them as peers
// (itself recognised by its port), with the long-term store lts (may be nil).
func replicas(t *testing.T, batches []ptrace.Traces, timeout time.Duration, lts *remote.LongTermStore) []*replica {
	t.Helper()
	rs := make([]*replica, len(batches))
	var urls []string
	for i := range rs {
		r := &replica{}
		r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get(remote.HopHeader) != "" {
				r.requests.Add(1)
			}
			r.h.ServeHTTP(w, req)
		}))
		t.Cleanup(r.srv.Close)
		rs[i] = r
		urls = append(urls, r.srv.URL)
	}
	for i, r := range rs {
		r.st = store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
		t.Cleanup(r.st.Close)
		r.st.Ingest("", batches[i])
		port := r.srv.Listener.Addr().(*net.TCPAddr).Port
		self := func(ip net.IP, p int) bool { return ip.IsLoopback() && p == port }
		peers := remote.NewPeers(remote.PeersConfig{Endpoints: urls, Timeout: timeout, TenantHeader: DefaultTenantHeader}, &http.Client{}, nil, self, nil, zap.NewNop())
		peers.Start(t.Context())
		require.Len(t, peers.Endpoints(), len(rs)-1, "itself is not its own peer")
		r.h = NewHandler(r.st, Options{MaxResponseSpans: 1000, CallIDAttribute: "call.id"})
		r.h.UseRemote(peers, lts)
	}
	return rs
}

func httpGet(t *testing.T, url string) response {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{code: resp.StatusCode, body: b, hdr: resp.Header}
}

// spanCounts reads how many spans each contract answered for the fixture.
func spanCounts(t *testing.T, base string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	jsonOf := func(path string) map[string]any {
		r := httpGet(t, base+path)
		require.Equal(t, http.StatusOK, r.code, "%s: %s", path, r.body)
		return r.json(t)
	}
	counts["native"] = len(jsonOf("/api/v1/traces/" + fixtureHex + "?flat=true")["spans"].([]any))
	counts["003"] = len(jsonOf("/api/v2/trace/" + fixtureHex)["data"].(map[string]any)["attributes"].(map[string]any)["spans"].([]any))
	counts["000"] = int(jsonOf("/v1/trace/call/" + callID)["span_count"].(float64))
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(mustJSON(t, jsonOf("/api/v2/traces/" + fixtureHex)["trace"]))
	require.NoError(t, err)
	counts["tempo"] = td.SpanCount()
	counts["jaeger"] = len(jsonOf("/api/traces/" + fixtureHex)["data"].([]any)[0].(map[string]any)["spans"].([]any))
	td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(mustJSON(t, jsonOf("/api/v3/traces/" + fixtureHex)["result"]))
	require.NoError(t, err)
	counts["jaeger_v3"] = td.SpanCount()
	r := httpGet(t, base+"/zipkin/api/v2/trace/"+fixtureHex)
	require.Equal(t, http.StatusOK, r.code)
	var zipkinSpans []any
	require.NoError(t, json.Unmarshal(r.body, &zipkinSpans))
	counts["zipkin"] = len(zipkinSpans)
	return counts
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestEveryReplicaAnswersTheWholeTrace(t *testing.T) {
	rs := replicas(t, splitFixture(), 5*time.Second, nil)
	whole := map[string]int{"native": 5, "003": 5, "000": 5, "tempo": 5, "jaeger": 5, "jaeger_v3": 5, "zipkin": 5}
	for i, r := range rs {
		assert.Equal(t, whole, spanCounts(t, r.srv.URL), "replica %d", i)
		lookup := httpGet(t, r.srv.URL+"/api/v1/traces/"+fixtureHex)
		assert.Contains(t, lookup.hdr.Get(sourcesHeader), sourcePeers)
		assert.Equal(t, false, lookup.json(t)["is_truncated"])

		// Search lists the trace once, summed up from every replica's part.
		res := httpGet(t, r.srv.URL+"/api/v1/traces?service=payment").json(t)
		traces := res["traces"].([]any)
		require.Len(t, traces, 1, "replica %d", i)
		assert.Equal(t, 5.0, traces[0].(map[string]any)["span_count"])
		assert.Equal(t, "frontend", traces[0].(map[string]any)["root_service"])
		assert.Equal(t, false, res["partial"])
		// A trace one replica alone matches is summed up whole too.
		late := httpGet(t, r.srv.URL+"/api/v1/traces?name=SELECT%20card").json(t)["traces"].([]any)
		require.Len(t, late, 1)
		assert.Equal(t, 5.0, late[0].(map[string]any)["span_count"], "replica %d", i)
		tempo := httpGet(t, r.srv.URL+"/api/search?q=%7Bresource.service.name%3D%22frontend%22%7D").json(t)
		assert.Len(t, tempo["traces"], 1)
	}
}

func TestPeersAskEachOtherOnce(t *testing.T) {
	batches := splitFixture()
	rs := replicas(t, batches[:2], 5*time.Second, nil)
	assert.Equal(t, http.StatusOK, httpGet(t, rs[0].srv.URL+"/api/v1/traces/"+fixtureHex).code)
	assert.Equal(t, int64(1), rs[1].requests.Load(), "the peer was asked once")
	assert.Equal(t, int64(0), rs[0].requests.Load(), "and did not ask back")
}

func TestAReplicaDownIsAPartialAnswer(t *testing.T) {
	rs := replicas(t, splitFixture(), 2*time.Second, nil)
	rs[2].srv.Close() // the late span's replica
	// A replica that hangs: it answers nothing before the deadline.
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hung.Close()
	port := rs[0].srv.Listener.Addr().(*net.TCPAddr).Port
	peers := remote.NewPeers(remote.PeersConfig{Endpoints: []string{rs[1].srv.URL, rs[2].srv.URL, hung.URL}, Timeout: 300 * time.Millisecond},
		&http.Client{}, nil, func(_ net.IP, p int) bool { return p == port }, nil, zap.NewNop())
	peers.Start(t.Context())
	rs[0].h.UseRemote(peers, nil)
	base := rs[0].srv.URL

	r := httpGet(t, base+"/api/v1/traces/"+fixtureHex+"?flat=true")
	require.Equal(t, http.StatusOK, r.code)
	m := r.json(t)
	assert.Len(t, m["spans"], 4, "all but the late span")
	assert.Equal(t, true, m["is_truncated"])
	assert.Contains(t, m["truncation_reasons"], reasonPartial)
	assert.Contains(t, r.hdr.Get(truncatedHeader), reasonPartial)

	apm := httpGet(t, base+"/api/v2/trace/"+fixtureHex).json(t)
	assert.Equal(t, true, apm["data"].(map[string]any)["attributes"].(map[string]any)["is_truncated"])

	tempo := httpGet(t, base+"/api/v2/traces/"+fixtureHex).json(t)
	assert.Equal(t, "PARTIAL", tempo["status"])
	assert.Contains(t, tempo["message"], "did not answer")

	s := httpGet(t, base+"/api/v1/traces").json(t)
	assert.Equal(t, true, s["partial"])
	assert.Len(t, s["traces"], 1)
	jg := httpGet(t, base+"/api/traces/"+fixtureHex).json(t)
	assert.Contains(t, fmt.Sprint(jg["data"].([]any)[0].(map[string]any)["warnings"]), reasonPartial, "Jaeger says it in the trace's warnings")
	for _, path := range []string{"/api/v3/traces/" + fixtureHex, "/zipkin/api/v2/trace/" + fixtureHex, "/v1/trace/call/" + callID} {
		got := httpGet(t, base+path)
		assert.Equal(t, http.StatusOK, got.code, path)
		assert.Contains(t, got.hdr.Get(truncatedHeader), reasonPartial, path)
	}
}

func TestPeersFoundByDNS(t *testing.T) {
	resolver := &fakeResolver{addrs: []string{"127.0.0.1", "127.0.0.2", "10.0.0.3"}}
	self := func(ip net.IP, port int) bool { return ip.Equal(net.ParseIP("127.0.0.1")) && port == 8088 }
	p := remote.NewPeers(remote.PeersConfig{DNSName: "tracelookup-headless", DNSPort: 8088, DNSInterval: time.Hour, Timeout: time.Second,
		Endpoints: []string{"http://127.0.0.1:8088", "http://10.0.0.9:8088"}}, &http.Client{}, resolver, self, nil, zap.NewNop())
	p.Start(t.Context())
	defer p.Shutdown()
	assert.Equal(t, []string{"http://10.0.0.3:8088", "http://10.0.0.9:8088", "http://127.0.0.2:8088"}, p.Endpoints(), "its own address is skipped, static and resolved")
	assert.Equal(t, []string{"tracelookup-headless"}, resolver.asked())
}

type fakeResolver struct {
	addrs []string
	names atomic.Value
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	old, _ := f.names.Load().([]string)
	f.names.Store(append(append([]string(nil), old...), host))
	var out []net.IPAddr
	for _, a := range f.addrs {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

func (f *fakeResolver) asked() []string {
	v, _ := f.names.Load().([]string)
	return v
}

// storeReplica is a collector of ours holding batches, serving the Tempo and
// Jaeger APIs: it plays the long-term store.
func storeReplica(t *testing.T, batches ...ptrace.Traces) *httptest.Server {
	st := store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
	t.Cleanup(st.Close)
	for _, b := range batches {
		st.Ingest("", b)
	}
	srv := httptest.NewServer(NewHandler(st, Options{}))
	t.Cleanup(srv.Close)
	return srv
}

// indexWithStore is an API whose index holds batches, backed by a store at url.
func indexWithStore(t *testing.T, kind, url string, timeout time.Duration, batches ...ptrace.Traces) *Handler {
	st := store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
	t.Cleanup(st.Close)
	for _, b := range batches {
		st.Ingest("", b)
	}
	h := NewHandler(st, Options{CallIDAttribute: "call.id"})
	h.UseRemote(nil, remote.NewLongTermStore(remote.StoreConfig{Kind: kind, Endpoint: url, Timeout: timeout, CallIDAttribute: "call.id", CallIDLookback: 100000 * time.Hour}, &http.Client{}, nil))
	return h
}

func TestLongTermStoreAnswersWhatTheIndexDoesNotHold(t *testing.T) {
	first, late := fixtureBatches()
	for _, kind := range []string{remote.KindTempo, remote.KindJaeger} {
		t.Run(kind, func(t *testing.T) {
			lts := storeReplica(t, first, late)
			h := indexWithStore(t, kind, lts.URL, 5*time.Second)
			r := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?flat=true")
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			assert.Len(t, r.json(t)["spans"], 5)
			assert.Equal(t, sourceLongTermStore, r.hdr.Get(sourcesHeader))
			c := get(t, h, http.MethodGet, "/v1/trace/call/"+callID)
			require.Equal(t, http.StatusOK, c.code, string(c.body))
			assert.Equal(t, 5.0, c.json(t)["span_count"])
			assert.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/api/v1/traces/0000000000000000000000000000beef").code, "a plain not-found is still 404")
			assert.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/v1/trace/call/9b2c1d4e-0000-4000-8000-000000000000").code)

			// The index evicted all but the late span: the store completes it.
			h = indexWithStore(t, kind, lts.URL, 5*time.Second, late)
			r = get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex+"?flat=true")
			require.Equal(t, http.StatusOK, r.code)
			assert.Len(t, r.json(t)["spans"], 5)
			assert.Equal(t, sourceMemory+","+sourceLongTermStore, r.hdr.Get(sourcesHeader))
		})
	}
}

func TestLongTermStoreErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }))
	defer failing.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	for _, tt := range []struct {
		name, url  string
		status     int
		code, msg  string
		nativeCode string
	}{
		{"closed port", closed.URL, http.StatusServiceUnavailable, "TEMPO_UNAVAILABLE", "Tempo service unavailable", "LONG_TERM_STORE_UNAVAILABLE"},
		{"5xx", failing.URL, http.StatusServiceUnavailable, "TEMPO_UNAVAILABLE", "Tempo service unavailable", "LONG_TERM_STORE_UNAVAILABLE"},
		{"past the timeout", slow.URL, http.StatusGatewayTimeout, "TEMPO_TIMEOUT_API", "Timeout fetching trace", "LONG_TERM_STORE_TIMEOUT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := indexWithStore(t, remote.KindTempo, tt.url, 200*time.Millisecond)
			r := get(t, h, http.MethodGet, "/v1/trace/call/9b2c1d4e-0000-4000-8000-000000000000")
			require.Equal(t, tt.status, r.code)
			assert.Equal(t, map[string]any{"status": "error", "error_code": tt.code, "message": tt.msg}, r.json(t), "the 000 document's body")
			validate(t, contractSchema(t, "ErrorResponseSchema"), r.body)
			n := get(t, h, http.MethodGet, "/api/v1/traces/"+fixtureHex)
			require.Equal(t, tt.status, n.code)
			assert.Equal(t, tt.nativeCode, n.json(t)["error_code"])
			a := get(t, h, http.MethodGet, "/api/v2/trace/"+fixtureHex)
			require.Equal(t, tt.status, a.code)
			assert.Contains(t, a.json(t), "errors", "003's error format")
			tp := get(t, h, http.MethodGet, "/api/v2/traces/"+fixtureHex)
			assert.Equal(t, tt.status, tp.code)

			// What the index holds is answered without the store.
			first, late := fixtureBatches()
			h = indexWithStore(t, remote.KindTempo, tt.url, 200*time.Millisecond, first, late)
			c := get(t, h, http.MethodGet, "/v1/trace/call/"+callID)
			assert.Equal(t, http.StatusOK, c.code)
		})
	}
}

// The lookup's tenant reaches the store in the header the store's kind
// reads it from, so a shared store answers each tenant its own traces.
func TestLongTermStoreIsAskedForTheLookupsTenant(t *testing.T) {
	first, late := fixtureBatches()
	for _, kind := range []string{remote.KindTempo, remote.KindJaeger} {
		t.Run(kind, func(t *testing.T) {
			st := store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
			t.Cleanup(st.Close)
			st.Ingest("acme", first)
			st.Ingest("acme", late)
			lts := httptest.NewServer(NewHandler(st, Options{Tenancy: Tenancy{Header: remote.DefaultTenantHeader(kind)}}))
			t.Cleanup(lts.Close)

			idx := store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
			t.Cleanup(idx.Close)
			h := NewHandler(idx, Options{CallIDAttribute: "call.id"})
			h.UseRemote(nil, remote.NewLongTermStore(remote.StoreConfig{Kind: kind, Endpoint: lts.URL, Timeout: 5 * time.Second, CallIDAttribute: "call.id", CallIDLookback: 100000 * time.Hour}, &http.Client{}, nil))
			for tenant, want := range map[string]int{"acme": http.StatusOK, "globex": http.StatusNotFound} {
				for _, target := range []string{"/api/v1/traces/" + fixtureHex, "/v1/trace/call/" + callID} {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, target, nil)
					req.Header.Set(DefaultTenantHeader, tenant)
					h.ServeHTTP(rec, req)
					assert.Equal(t, want, rec.Code, "%s as %s: %s", target, tenant, rec.Body)
				}
			}
		})
	}
}

// A call id the store holds in a form other than the canonical one (upper
// case, as a client wrote it) is found as the request gives it.
func TestLongTermStoreFindsTheCallIDAsGiven(t *testing.T) {
	upper := strings.ToUpper(callID)
	b, _ := fixtureBatches()
	b.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("call.id", upper)
	for _, kind := range []string{remote.KindTempo, remote.KindJaeger} {
		t.Run(kind, func(t *testing.T) {
			lts := storeReplica(t, b)
			h := indexWithStore(t, kind, lts.URL, 5*time.Second)
			c := get(t, h, http.MethodGet, "/v1/trace/call/"+upper)
			require.Equal(t, http.StatusOK, c.code, string(c.body))
			assert.Equal(t, sourceLongTermStore, c.hdr.Get(sourcesHeader))
		})
	}
}

// A local search that stops at its budget has not looked below its cursor:
// the pages that follow still list every local trace, and the peer's older
// trace once, after them.
func TestFannedOutSearchPagesPastALocalSearchThatStoppedEarly(t *testing.T) {
	traces := func(ids []byte, shift func(i int) time.Duration) ptrace.Traces {
		all := ptrace.NewTraces()
		for i, idByte := range ids {
			one, _ := fixtureBatches()
			for _, rs := range one.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, s := range ss.Spans().All() {
						id := s.TraceID()
						id[0] = idByte
						s.SetTraceID(id)
						s.SetStartTimestamp(s.StartTimestamp() + pcommon.Timestamp(shift(i)))
					}
				}
				rs.CopyTo(all.ResourceSpans().AppendEmpty())
			}
		}
		return all
	}
	local := traces([]byte{1, 2, 3, 4, 5}, func(i int) time.Duration { return time.Duration(i) * time.Second })
	older := traces([]byte{0x77}, func(int) time.Duration { return -time.Minute })
	rs := replicas(t, []ptrace.Traces{local, older}, 5*time.Second, nil)
	rs[0].h.opts.Search.MaxScannedSpans = 1 // one trace a page, then the budget stops it

	ids := allPages(t, rs[0].srv.URL, "limit=20&service=frontend")
	assert.Equal(t, []string{"05", "04", "03", "02", "01", "77"}, ids, "newest first, each once")
}

// A 16-digit decimal id has two readings: a peer re-reads both from the id
// as given, and the long-term store is asked for each.
func TestEveryReadingOfAnIDIsLookedFor(t *testing.T) {
	const decimal = "1234567890123456"
	first, _ := fixtureBatches()
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[8:], 1234567890123456)
	for _, rs := range first.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				s.SetTraceID(id)
			}
		}
	}
	rs := replicas(t, []ptrace.Traces{ptrace.NewTraces(), first}, 5*time.Second, nil)
	r := httpGet(t, rs[0].srv.URL+"/api/v1/traces/"+decimal+"?flat=true")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.Equal(t, hex.EncodeToString(id[:]), r.json(t)["trace_id"])
	assert.Equal(t, sourcePeers, r.hdr.Get(sourcesHeader))

	for _, kind := range []string{remote.KindTempo, remote.KindJaeger} {
		h := indexWithStore(t, kind, storeReplica(t, first).URL, 5*time.Second)
		r := get(t, h, http.MethodGet, "/api/v1/traces/"+decimal+"?flat=true")
		require.Equal(t, http.StatusOK, r.code, "%s: %s", kind, r.body)
		assert.Equal(t, sourceLongTermStore, r.hdr.Get(sourcesHeader))
	}
}

// meetingPoint serves next, letting a request through only once another
// is in flight beside it (or after a wait, so that asks made one after
// another still finish), and tells the most requests seen in flight at once.
func meetingPoint(t *testing.T, next http.Handler) (string, func() int) {
	var (
		mu             sync.Mutex
		inFlight, most int
		met            = make(chan struct{})
		meet           sync.Once
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		if most = max(most, inFlight); inFlight == 2 {
			meet.Do(func() { close(met) })
		}
		mu.Unlock()
		select {
		case <-met:
		case <-time.After(10 * time.Second): // a slow machine's second ask still arrives by then
		}
		next.ServeHTTP(w, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// Every reading of an id, and every form of a call id, is asked of the
// store at once, and every form of a call id of the peers: a store or a
// peer that hangs costs a lookup one timeout, not one per form.
func TestEveryFormIsAskedAtOnce(t *testing.T) {
	const decimal = "1234567890123456"
	upperCall := "/v1/trace/call/" + strings.ToUpper(callID)
	for _, kind := range []string{remote.KindTempo, remote.KindJaeger} {
		for _, path := range []string{"/api/v1/traces/" + decimal, upperCall} {
			t.Run("store "+kind+path, func(t *testing.T) {
				url, most := meetingPoint(t, storeReplica(t).Config.Handler)
				h := indexWithStore(t, kind, url, 5*time.Second)
				assert.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, path).code)
				assert.Equal(t, 2, most(), "both forms in flight at once")
			})
		}
	}
	t.Run("peers"+upperCall, func(t *testing.T) {
		url, most := meetingPoint(t, storeReplica(t).Config.Handler)
		st := store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
		t.Cleanup(st.Close)
		notSelf := func(net.IP, int) bool { return false }
		peers := remote.NewPeers(remote.PeersConfig{Endpoints: []string{url}, Timeout: 5 * time.Second, TenantHeader: DefaultTenantHeader}, &http.Client{}, nil, notSelf, nil, zap.NewNop())
		peers.Start(t.Context())
		h := NewHandler(st, Options{CallIDAttribute: "call.id"})
		h.UseRemote(peers, nil)
		assert.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, upperCall).code)
		assert.Equal(t, 2, most(), "both forms' searches in flight at once")
	})
}

// A form found is answered at once: the asks for later forms still
// running are cancelled, not waited for, and counted as cancelled, not as
// errors. The store holds the call under its canonical form, and answers
// for it only once the ask for the form as given has arrived; that one
// hangs until cancelled (or, were it waited for, longer than the test).
func TestAFormFoundIsNotHeldUpByASlowOne(t *testing.T) {
	b, _ := fixtureBatches() // carries callID, canonical
	upper := strings.ToUpper(callID)
	asks := func(r *http.Request, id string) bool {
		return strings.Contains(r.URL.RawQuery, id) || strings.Contains(r.URL.RawQuery, url.QueryEscape(id))
	}
	for _, kind := range []string{remote.KindTempo, remote.KindJaeger} {
		t.Run(kind, func(t *testing.T) {
			holds := storeReplica(t, b).Config.Handler
			var (
				arrived   = make(chan struct{})
				arrive    sync.Once
				cancelled = make(chan struct{}, 1)
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case asks(r, upper):
					arrive.Do(func() { close(arrived) })
					select {
					case <-r.Context().Done():
						cancelled <- struct{}{}
					case <-time.After(20 * time.Second):
					}
					return
				case asks(r, callID):
					select { // found only once the other form is asked too
					case <-arrived:
					case <-time.After(20 * time.Second):
					}
				}
				holds.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			var (
				mu       sync.Mutex
				outcomes []string
			)
			st := store.New(store.Config{MaxBytes: 16 << 20, CallIDAttribute: "call.id"})
			t.Cleanup(st.Close)
			h := NewHandler(st, Options{CallIDAttribute: "call.id"})
			h.UseRemote(nil, remote.NewLongTermStore(remote.StoreConfig{Kind: kind, Endpoint: srv.URL, Timeout: time.Minute, CallIDAttribute: "call.id", CallIDLookback: 100000 * time.Hour}, &http.Client{},
				func(_, _, outcome string, _ time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					outcomes = append(outcomes, outcome)
				}))
			c := get(t, h, http.MethodGet, "/v1/trace/call/"+upper)
			require.Equal(t, http.StatusOK, c.code, string(c.body))
			assert.Equal(t, sourceLongTermStore, c.hdr.Get(sourcesHeader))
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				require.Fail(t, "the ask for the form as given was not cancelled")
			}
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				mu.Lock()
				defer mu.Unlock()
				assert.ElementsMatch(c, []string{remote.OutcomeFound, remote.OutcomeCancelled}, outcomes)
			}, 10*time.Second, 5*time.Millisecond)
		})
	}
}

// Traces split over replicas are listed once, on the page of their whole
// start (the earliest part's), whatever each replica's part starts at.
func TestFannedOutSearchPagesSplitTraces(t *testing.T) {
	// part is one span of trace id starting at second start.
	type part struct {
		id    byte
		start int
	}
	batch := func(parts ...part) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		ss := rs.ScopeSpans().AppendEmpty()
		for i, p := range parts {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(pcommon.TraceID{p.id, 0xaa})
			s.SetSpanID(pcommon.SpanID{p.id, byte(i + 1), byte(p.start)})
			s.SetName("op")
			s.SetStartTimestamp(t0 + pcommon.Timestamp(p.start)*pcommon.Timestamp(time.Second))
			s.SetEndTimestamp(t0 + pcommon.Timestamp(p.start)*pcommon.Timestamp(time.Second) + 1000)
		}
		return td
	}
	for _, tt := range []struct {
		name        string
		local, peer []part
		limit       int
		want        []byte // newest first by whole start
	}{
		{"a peer's later part of a local trace", []part{{1, 100}, {2, 50}}, []part{{1, 110}, {3, 105}}, 1, []byte{3, 1, 2}},
		{"a peer's full page above a local part", []part{{1, 50}}, []part{{1, 120}, {4, 110}, {5, 105}}, 2, []byte{4, 5, 1}},
		{"a local full page above a peer's part", []part{{6, 200}, {7, 100}, {1, 50}}, []part{{1, 120}, {8, 10}}, 2, []byte{6, 7, 1, 8}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := replicas(t, []ptrace.Traces{batch(tt.local...), batch(tt.peer...)}, 5*time.Second, nil)
			var ids []byte
			for _, id := range allPages(t, rs[0].srv.URL, fmt.Sprintf("limit=%d", tt.limit)) {
				b, err := hex.DecodeString(id)
				require.NoError(t, err)
				ids = append(ids, b[0])
			}
			assert.Equal(t, tt.want, ids)
		})
	}
}

// allPages follows a native search's pages from base and returns the first
// byte (two hex digits) of each trace id listed, in order.
func allPages(t *testing.T, base, query string) []string {
	t.Helper()
	var ids []string
	path := "/api/v1/traces?" + query
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		r := httpGet(t, base+path)
		require.Equal(t, http.StatusOK, r.code, string(r.body))
		var page searchPage
		require.NoError(t, json.Unmarshal(r.body, &page))
		for _, tr := range page.Traces {
			ids = append(ids, tr.ID[:2])
		}
		if page.Next == nil {
			return ids
		}
		path = "/api/v1/traces?" + query + "&next=" + url.QueryEscape(*page.Next)
	}
}
