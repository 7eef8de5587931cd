// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestValidTenant(t *testing.T) {
	for _, ok := range []string{"a", "team-1", "Org_2.prod", "x!*'()", strings.Repeat("a", 150), "..."} {
		assert.True(t, ValidTenant(ok), ok)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "é", "a\x00", "a:b", strings.Repeat("a", 151)} {
		assert.False(t, ValidTenant(bad), bad)
	}
}

// The same trace id under two tenants is two traces, and each tenant finds
// only its own, by id, by its low 64 bits and by call id.
func TestTenantsAreIsolated(t *testing.T) {
	s, _ := newTestStore(Config{CallIDAttribute: "call.id"})
	id := traceID(7, 8)
	call := map[string]string{"call.id": "c1"}
	s.Ingest("team-a", makeTraces("a", spanSpec{trace: id, span: 1, attrs: call}))
	s.Ingest("team-b", makeTraces("b", spanSpec{trace: id, span: 1, attrs: call}, spanSpec{trace: id, span: 2, parent: 1}))

	for tenant, want := range map[string]int{"team-a": 1, "team-b": 2} {
		tr, ok := s.Get(tenant, id)
		require.True(t, ok, tenant)
		assert.Equal(t, want, tr.SpanCount, tenant)
		assert.Equal(t, tenant, tr.Tenant)
		tr, ok = s.GetByLow64(tenant, 8)
		require.True(t, ok, tenant)
		assert.Equal(t, want, tr.SpanCount, tenant)
		tr, ok = s.GetByCallID(tenant, "c1")
		require.True(t, ok, tenant)
		assert.Equal(t, want, tr.SpanCount, tenant)
	}
	for _, other := range []string{"", "default", "team-c"} {
		_, ok := s.Find(other, id)
		assert.False(t, ok, other)
		_, ok = s.FindByLow64(other, 8)
		assert.False(t, ok, other)
		_, ok = s.FindByCallID(other, "c1")
		assert.False(t, ok, other)
	}
	assert.Equal(t, int64(2), s.Stats().Traces)
	assert.Equal(t, int64(15), s.Stats().Lookups, "every lookup counts, found or not")
}

// Without a request tenant, the resource attribute names it; without
// either, the default tenant holds the spans. A request tenant wins.
func TestTenantFromResourceAttribute(t *testing.T) {
	s, _ := newTestStore(Config{TenantAttribute: "tenant.id", DefaultTenant: "shared"})
	withAttr := func(id [16]byte, tenant string) ptrace.Traces {
		td := makeTraces("svc", spanSpec{trace: id, span: 1})
		td.ResourceSpans().At(0).Resource().Attributes().PutStr("tenant.id", tenant)
		return td
	}
	s.Ingest("", withAttr(traceID(0, 1), "team-r"))
	s.Ingest("team-h", withAttr(traceID(0, 2), "team-r"))
	s.Ingest("", makeTraces("svc", spanSpec{trace: traceID(0, 3), span: 1}))

	_, ok := s.Find("team-r", traceID(0, 1))
	assert.True(t, ok)
	_, ok = s.Find("team-h", traceID(0, 2))
	assert.True(t, ok, "the request's tenant wins over the attribute")
	_, ok = s.Find("team-r", traceID(0, 2))
	assert.False(t, ok)
	_, ok = s.Find("shared", traceID(0, 3))
	assert.True(t, ok)
	_, ok = s.Find("", traceID(0, 3))
	assert.True(t, ok, `"" reads the default tenant`)
}

func TestTenantsNotValidOrPastTheLimitAreNotStored(t *testing.T) {
	s, _ := newTestStore(Config{MaxTenants: 3, MaxTraces: 10}) // the default tenant and two more
	one := func(lo uint64) ptrace.Traces { return makeTraces("svc", spanSpec{trace: traceID(0, lo), span: 1}) }
	assert.Equal(t, Rejected{InvalidTenant: 1}, s.Ingest("../etc", one(1)))
	assert.Equal(t, Rejected{}, s.Ingest("t1", one(2)))
	assert.Equal(t, Rejected{}, s.Ingest("t2", one(3)))
	assert.Equal(t, Rejected{TenantLimit: 1}, s.Ingest("t3", one(4)))
	st := s.Stats()
	assert.Equal(t, int64(1), st.InvalidTenantSpans)
	assert.Equal(t, int64(1), st.TenantLimitSpans)
	assert.Equal(t, int64(2), st.Traces)

	// Once t1's last trace leaves, its slot is free for t3.
	for lo := uint64(10); lo < 21; lo++ {
		s.Ingest("t2", one(lo))
	}
	_, ok := s.Find("t1", traceID(0, 2))
	require.False(t, ok, "evicted for count")
	assert.Equal(t, Rejected{}, s.Ingest("t3", one(4)))
	_, ok = s.Find("t3", traceID(0, 4))
	assert.True(t, ok)
	var names []string
	for _, ts := range s.Tenants() {
		names = append(names, ts.Tenant)
	}
	assert.ElementsMatch(t, []string{"default", "t2", "t3"}, names)
}

// With a share, a tenant sending many traces evicts its own, not the
// others': here each may hold half of max_traces.
func TestTenantShareKeepsOthersTraces(t *testing.T) {
	s, clock := newTestStore(Config{MaxTraces: 10, TenantShare: 0.5})
	for lo := uint64(1); lo <= 4; lo++ {
		s.Ingest("quiet", makeTraces("svc", spanSpec{trace: traceID(1, lo), span: 1}))
	}
	for lo := uint64(1); lo <= 100; lo++ {
		clock.Add(time.Millisecond)
		s.Ingest("noisy", makeTraces("svc", spanSpec{trace: traceID(2, lo), span: 1}))
	}
	for lo := uint64(1); lo <= 4; lo++ {
		_, ok := s.Find("quiet", traceID(1, lo))
		assert.True(t, ok, "quiet trace %d", lo)
	}
	for lo := uint64(96); lo <= 100; lo++ {
		_, ok := s.Find("noisy", traceID(2, lo))
		assert.True(t, ok, "the noisy tenant keeps its newest: trace %d", lo)
	}
	st := s.Stats()
	assert.Equal(t, int64(95), st.EvictedBy(ReasonTenantShare))
	assert.Zero(t, st.EvictedBy(ReasonCount))
	for _, ts := range s.Tenants() {
		if ts.Tenant == "noisy" {
			assert.Equal(t, int64(5), ts.Traces)
		}
	}

	// Without a share, the oldest traces go, whoever they belong to.
	s2, clock2 := newTestStore(Config{MaxTraces: 10})
	s2.Ingest("quiet", makeTraces("svc", spanSpec{trace: traceID(1, 1), span: 1}))
	for lo := uint64(1); lo <= 20; lo++ {
		clock2.Add(time.Millisecond)
		s2.Ingest("noisy", makeTraces("svc", spanSpec{trace: traceID(2, lo), span: 1}))
	}
	_, ok := s2.Find("quiet", traceID(1, 1))
	assert.False(t, ok)
}

// The memory share: a tenant past its share of the bytes loses its own
// oldest traces.
func TestTenantShareOfMemory(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 64 << 20, TenantShare: 0.01})
	s.Ingest("quiet", makeTraces("svc", spanSpec{trace: traceID(1, 1), span: 1}))
	rnd := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 1500)
	for lo := uint64(1); lo <= 2000; lo++ {
		for i := range payload {
			payload[i] = byte(rnd.Uint32())
		}
		// Random bytes, so that the blocks do not compress away.
		s.Ingest("noisy", makeTraces("svc", spanSpec{trace: traceID(2, lo), span: lo, attrs: map[string]string{"payload": hex.EncodeToString(payload)}}))
	}
	var noisy TenantStats
	for _, ts := range s.Tenants() {
		if ts.Tenant == "noisy" {
			noisy = ts
		}
	}
	assert.LessOrEqual(t, float64(noisy.Bytes)+float64(noisy.Traces)*(entryBytes+mapEntryBytes*s.heapFactor), 0.01*float64(64<<20))
	assert.Positive(t, s.Stats().EvictedBy(ReasonTenantShare))
	_, ok := s.Find("quiet", traceID(1, 1))
	assert.True(t, ok)
}

func tenantOf(w, i int) string { return "t" + string(rune('a'+(i+w)%12)) }

// Tenants come and go while others ingest and look up: slots are reused
// only once free, and a lookup never sees another tenant's trace.
func TestTenantSlotsUnderConcurrency(t *testing.T) {
	s, _ := newTestStore(Config{MaxTraces: 50, MaxTenants: 8})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; i < 300; i++ {
				tenant := tenantOf(w, i)
				id := traceID(uint64(w), uint64(i))
				s.Ingest(tenant, makeTraces("svc", spanSpec{trace: id, span: 1}))
				if tr, ok := s.Get(tenant, id); ok {
					assert.Equal(t, tenant, tr.Tenant)
					tr.Release()
				}
				// Whatever a lookup finds was ingested by the tenant that
				// looked: its id says which one sent it.
				for _, other := range []string{"ta", "tb"} {
					if tr, ok := s.GetByLow64(other, uint64(i)); ok {
						w := int(binary.BigEndian.Uint64(tr.ID[:8]))
						assert.Equal(t, other, tenantOf(w, i), "trace %x", tr.ID)
						tr.Release()
					}
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, len(s.Tenants()), 8)
	var traces int64
	for _, ts := range s.Tenants() {
		traces += ts.Traces
	}
	assert.Equal(t, s.Stats().Traces, traces, "the tenants' counts add up")
}

// Traces that leave for another reason than the share (here retention)
// leave entries in their tenant's queue; those are compacted away, so the
// queue follows the traces held, not the traces ever received.
func TestTenantQueueStaysBounded(t *testing.T) {
	s, clock := newTestStore(Config{TenantShare: 0.5, Retention: time.Second})
	for lo := uint64(1); lo <= 3000; lo++ {
		clock.Add(10 * time.Millisecond)
		s.Ingest("team-a", makeTraces("svc", spanSpec{trace: traceID(1, lo), span: 1}))
	}
	id, ok := s.tenants.lookup("team-a")
	require.True(t, ok)
	tn := s.tenants.at(id)
	tn.mu.Lock()
	queued := tn.queue.n
	tn.mu.Unlock()
	assert.Positive(t, s.Stats().EvictedBy(ReasonRetention))
	assert.LessOrEqual(t, int64(queued), 2*tn.traces.Load()+65, "queued %d for %d traces", queued, tn.traces.Load())
}

// A half share of the memory binds with small traces too, where the
// entries, not the span data, are most of what a trace costs.
func TestTenantShareCountsEntries(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 8 << 20, TenantShare: 0.5})
	for b := uint64(0); b < 300; b++ {
		specs := make([]spanSpec, 100)
		for i := range specs {
			specs[i] = spanSpec{trace: traceID(b+1, uint64(i+1)), span: 1}
		}
		s.Ingest("noisy", makeTraces("svc", specs...))
	}
	assert.Positive(t, s.Stats().EvictedBy(ReasonTenantShare))
	id, ok := s.tenants.lookup("noisy")
	require.True(t, ok)
	tn := s.tenants.at(id)
	held := float64(tn.bytes.Load()) + float64(tn.traces.Load())*(entryBytes+float64(recBytes)+mapEntryBytes*s.heapFactor) + float64(tn.index.catBytes.Load())*s.heapFactor
	assert.LessOrEqual(t, held, 0.5*float64(8<<20))
	assert.Greater(t, held, 0.45*float64(8<<20), "it may hold its whole share")
}

// Under memory pressure, a tenant well under its share keeps its traces:
// they are moved out of the oldest chunk, and the tenant that fills the
// index evicts its own. Without a share, the oldest go, whoever sent them.
func TestShareKeepsQuietTracesUnderMemoryPressure(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	payload := make([]byte, 1024)
	noisy := func(s *Store, n int) {
		for lo := 1; lo <= n; lo++ {
			for i := range payload {
				payload[i] = byte(rnd.Uint32())
			}
			// Each batch from another instance: resources come and go.
			s.Ingest("noisy", makeTraces(fmt.Sprintf("noisy-%d", lo), spanSpec{trace: traceID(2, uint64(lo)), span: 1, attrs: map[string]string{"p": hex.EncodeToString(payload)}}))
		}
	}
	quiet := func(s *Store) {
		for lo := uint64(1); lo <= 20; lo++ {
			s.Ingest("quiet", makeTraces("quiet-svc", spanSpec{trace: traceID(1, lo), span: 1}, spanSpec{trace: traceID(1, lo), span: 2, parent: 1}))
		}
	}
	const budget = 4 << 20
	s, _ := newTestStore(Config{MaxBytes: budget, TenantShare: 0.5})
	quiet(s)
	noisy(s, 20000) // about ten times the budget
	for lo := uint64(1); lo <= 20; lo++ {
		tr, ok := s.Get("quiet", traceID(1, lo))
		require.True(t, ok, "quiet trace %d", lo)
		assert.Equal(t, []string{"span-1", "span-2"}, spanNames(t, tr), "moved traces read back whole")
		spans, err := tr.Spans()
		require.NoError(t, err)
		assert.Equal(t, "quiet-svc", spans[0].ServiceName(), "with their resource")
		tr.Release()
	}
	st := s.Stats()
	assert.Positive(t, st.Moved)

	assert.Positive(t, st.EvictedBy(ReasonMemory)+st.EvictedBy(ReasonTenantShare))
	assert.LessOrEqual(t, s.held(), float64(budget)*1.05, "the memory bound holds")

	s2, _ := newTestStore(Config{MaxBytes: budget})
	quiet(s2)
	noisy(s2, 20000)
	_, ok := s2.Find("quiet", traceID(1, 1))
	assert.False(t, ok, "without a share the oldest traces go")
	assert.Zero(t, s2.Stats().Moved)
}

// When every tenant is under its share but together they fill the index,
// eviction still makes progress: a chunk moves at most half its size.
func TestSharesOverbookedStillBounded(t *testing.T) {
	const budget = 2 << 20
	s, _ := newTestStore(Config{MaxBytes: budget, TenantShare: 0.5})
	rnd := rand.New(rand.NewPCG(5, 6))
	payload := make([]byte, 512)
	for lo := 1; lo <= 9000; lo++ {
		for i := range payload {
			payload[i] = byte(rnd.Uint32())
		}
		tenant := []string{"a", "b", "c"}[lo%3]
		s.Ingest(tenant, makeTraces("svc", spanSpec{trace: traceID(3, uint64(lo)), span: 1, attrs: map[string]string{"p": hex.EncodeToString(payload)}}))
	}
	assert.LessOrEqual(t, s.held(), float64(budget)*1.05)
	assert.Positive(t, s.Stats().EvictedBy(ReasonMemory))
	assert.Positive(t, s.Stats().Moved)
}

// Moved traces stay at the front of their shard's first-seen queue while
// the traces behind them leave for memory: the queue is compacted, and
// follows the traces held.
func TestQueueCompactedBehindMovedTraces(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 2 << 20, TenantShare: 0.5, MaxTraces: 1_000_000})
	for lo := uint64(1); lo <= 64; lo++ {
		s.Ingest("quiet", makeTraces("quiet-svc", spanSpec{trace: traceID(1, lo), span: 1}))
	}
	rnd := rand.New(rand.NewPCG(9, 10))
	payload := make([]byte, 1024)
	for lo := 1; lo <= 8000; lo++ {
		for i := range payload {
			payload[i] = byte(rnd.Uint32())
		}
		s.Ingest("noisy", makeTraces("svc", spanSpec{trace: traceID(2, uint64(lo)), span: 1, attrs: map[string]string{"p": hex.EncodeToString(payload)}}))
	}
	require.Positive(t, s.Stats().Moved)
	queued := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		queued += sh.queue.n
		assert.LessOrEqual(t, sh.queue.n, 2*sh.count+65, "shard %d", i)
		sh.mu.Unlock()
	}
	assert.LessOrEqual(t, int64(queued), 3*s.Stats().Traces+64*65)
}

// Moves run while other goroutines ingest and read: a reader sees a
// quiet trace whole, before or after its move, never half.
func TestMovesUnderConcurrentLookups(t *testing.T) {
	s, _ := newTestStore(Config{MaxBytes: 2 << 20, TenantShare: 0.5})
	for lo := uint64(1); lo <= 10; lo++ {
		s.Ingest("quiet", makeTraces("svc", spanSpec{trace: traceID(1, lo), span: 1}, spanSpec{trace: traceID(1, lo), span: 2, parent: 1}))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		rnd := rand.New(rand.NewPCG(7, 8))
		payload := make([]byte, 1024)
		for lo := 1; lo <= 6000; lo++ {
			for i := range payload {
				payload[i] = byte(rnd.Uint32())
			}
			s.Ingest("noisy", makeTraces("svc", spanSpec{trace: traceID(2, uint64(lo)), span: 1, attrs: map[string]string{"p": hex.EncodeToString(payload)}}))
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for lo := uint64(1); lo <= 10; lo++ {
				tr, ok := s.Get("quiet", traceID(1, lo))
				if assert.True(t, ok, "quiet trace %d", lo) {
					assert.Equal(t, []string{"span-1", "span-2"}, spanNames(t, tr))
					tr.Release()
				}
			}
		}
	})
	wg.Wait()
	assert.Positive(t, s.Stats().Moved)
}

// A moved trace takes along the resources its records name, not every
// resource of the chunks it was in: those would ride along with moved
// traces forever.
func TestMoveTakesOnlyNamedResources(t *testing.T) {
	s, _ := newTestStore(Config{})
	s.Ingest("", makeTraces("other", spanSpec{trace: traceID(9, 1), span: 1}))
	s.Ingest("", makeTraces("mine", spanSpec{trace: traceID(9, 2), span: 1}))
	f, ok := s.Find("", traceID(9, 2))
	require.True(t, ok)
	sh := s.shardOf(f.ref.low)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ref, e := sh.findRef(f.ref)
	require.NotNil(t, e)
	ext := sh.entries.extents(nil, ref, e)
	held := s.log.resourcesOf(nil, ext)
	require.Len(t, held, 2, "the chunk holds both traces' resources")
	named, _ := s.namedResources(e, ext, s.log.copyExtents(nil, ext))
	require.Len(t, named, 1)
	assert.Contains(t, string(named[0].body), "mine")
}
