// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package store is the span index: recent spans held encoded and compressed
// in a log of fixed-size chunks outside the Go heap, grouped by trace,
// bounded in bytes, trace count and age, with secondary indexes on the low
// 64 bits of the trace id and on one configured attribute (a call id).
//
// The files split it by job: store.go the types and the accounting,
// ingest.go writing spans, chunks.go the chunk log, entries.go the per-trace
// entries, entry.go what one batch writes to the log, evict.go the bounds,
// lookup.go reading traces back, callindex.go and resources.go the tables.
package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"encoding/binary"
	"hash/maphash"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// Config bounds the store. Zero values mean "no limit" except for MaxBytes,
// which must be positive.
type Config struct {
	// MaxBytes is the most memory the store may hold (see Store.Stats for
	// what it counts); whole traces are evicted, oldest first, to stay under it.
	MaxBytes int64
	// MaxTraces is the most traces held; 0 means no count limit.
	MaxTraces int
	// MaxSpansPerTrace caps one trace; later spans are dropped and the trace is marked truncated. 0 means no cap.
	MaxSpansPerTrace int
	// Retention evicts traces first seen longer ago than this; 0 keeps them
	// until memory or count evicts them. Values below MinRetention are raised to it.
	Retention time.Duration
	// CallIDAttribute is the span or resource attribute indexed for lookups by call id; "" disables that index.
	CallIDAttribute string
	// Limits bound what is kept of each span (see spancodec.Limits); the cuts are counted in Stats.
	Limits spancodec.Limits
	// DefaultTenant holds the spans of requests that name no tenant; "" means DefaultTenant.
	DefaultTenant string
	// TenantAttribute is the resource attribute that names the tenant of
	// spans whose request names none; "" means none does.
	TenantAttribute string
	// MaxTenants is the most tenants held at once; spans of more tenants
	// are not stored. 0 means DefaultMaxTenants.
	MaxTenants int
	// TenantShare, between 0 and 1, is the most of MaxBytes and of
	// MaxTraces one tenant may hold (its span data and its traces' entries);
	// past it, that tenant's own oldest traces are evicted. 0 means no share.
	TenantShare float64
	// NoSearch leaves out the search indexes (see Scan and the listings):
	// ingest does less, and searches find nothing.
	NoSearch bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MinRetention is the shortest retention the store keeps to: expiry runs on
// a timer, and a shorter period would only make it spin.
const MinRetention = time.Second

// Reason says why a trace left the store.
type Reason int

// Eviction reasons.
const (
	ReasonMemory Reason = iota
	ReasonCount
	ReasonRetention
	// ReasonTenantShare: the trace's tenant held more than its share.
	ReasonTenantShare
	numReasons
)

func (r Reason) String() string {
	switch r {
	case ReasonMemory:
		return "memory"
	case ReasonCount:
		return "count"
	case ReasonTenantShare:
		return "tenant_share"
	default:
		return "retention"
	}
}

// Stats are the store's counters.
type Stats struct {
	Traces int64
	Spans  int64
	// Bytes is every byte the store holds: the chunks, entry slabs and
	// search record blocks it has mapped (chunks in use and spare), and on
	// the Go heap the secondary indexes, the search catalogs, the resource
	// table, the owner lists and entry overflow, by capacity.
	Bytes int64
	// MappedBytes is the part of Bytes outside the Go heap, HeapBytes the rest.
	MappedBytes int64
	HeapBytes   int64
	Evicted     [numReasons]int64
	// DroppedSpans were not stored because their trace had reached MaxSpansPerTrace.
	DroppedSpans int64
	// DuplicateSpans were not stored because the trace already held the same
	// span (same span id, parent and kind): a client retried.
	DuplicateSpans int64
	// InvalidIDSpans were not stored because their trace id was all zeros,
	// which no lookup could name.
	InvalidIDSpans int64
	// InvalidTenantSpans were not stored because their tenant id was not
	// valid (see ValidTenant), TenantLimitSpans because MaxTenants other
	// tenants held traces.
	InvalidTenantSpans int64
	TenantLimitSpans   int64
	// Lookups counts the traces looked for (Find, FindByLow64, FindByCallID).
	Lookups int64
	// Moved counts the traces moved to the log's head, instead of evicted
	// with the oldest chunk, because their tenant was well under its share.
	Moved int64
	// Cuts counts what Config.Limits cut from the spans stored.
	Cuts spancodec.Cuts
}

// EvictedBy returns how many traces were evicted for reason r.
func (s Stats) EvictedBy(r Reason) int64 { return s.Evicted[r] }

const numShards = 64 // a power of two

// Store is safe for concurrent use.
type Store struct {
	cfg       Config
	now       func() time.Time
	shards    [numShards]shard
	log       *chunkLog
	calls     callIndex
	resources *resources
	tenants   *tenants
	keySeed   maphash.Seed
	// heapFactor is what one byte of live heap costs in resident memory, the
	// collector's headroom included (see heapFactor).
	heapFactor float64
	// fifo says whether traces are kept in first-seen order per shard, for
	// the count and retention bounds; memory eviction needs no queue.
	fifo bool
	// search says whether the search indexes are kept; terms hashes their terms.
	search bool
	terms  termHasher

	traceSeq atomic.Uint64
	closed   atomic.Bool
	// lastExpiry is when retention last ran (unix nanoseconds).
	lastExpiry atomic.Int64

	traces     atomic.Int64
	spans      atomic.Int64
	bytes      atomic.Int64 // heap per trace: map slots, overflow, call index entries
	slabBytes  atomic.Int64 // entry slabs mapped
	queueBytes atomic.Int64
	dropped    atomic.Int64
	duplicates atomic.Int64
	invalidIDs atomic.Int64 // spans dropped for an all-zero trace id
	badTenant  atomic.Int64 // spans dropped for a tenant id not valid
	tenantFull atomic.Int64 // spans dropped for a tenant past MaxTenants
	lookups    atomic.Int64
	moved      atomic.Int64 // traces moved to the head instead of evicted (see evictOldestChunk)
	cuts       struct{ values, attributes, events, links atomic.Int64 }
	evicted    [numReasons]atomic.Int64
	// searchMapped is what the search records' blocks map.
	searchMapped atomic.Int64
	sealedIn     atomic.Int64 // record bytes compressed, each once
	evictMu      sync.Mutex   // one evictor at a time: two would free a chunk each for one chunk over
}

type shard struct {
	mu sync.RWMutex
	// traces is keyed by the low 64 bits of the trace id; ids that share them are chained through traceEntry.next.
	traces map[uint64]entryRef
	// entries hold the traces themselves.
	entries *slabs
	// queue lists this shard's traces in first-seen order (when the store keeps one).
	queue fifo
	// deletes counts removals from traces since it was last rebuilt.
	deletes int
	// count is how many traces the shard holds.
	count int
}

// compactAfter says when a map that has seen this many deletions since it
// was built, and now holds n entries, is rebuilt. Go's maps never shrink, and
// under steady eviction their deleted slots make them grow well past what
// they hold; rebuilding after their size in deletions costs O(1) per
// deletion and keeps them near their live size.
func compactAfter(deletes, n int) bool { return deletes > n+1024 }

// rebuilt copies m into a map sized for what it holds (maps.Clone would
// keep its size).
func rebuilt[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// traceRef names one stored trace: the low 64 bits of its id find its
// chain, and its sequence number, unique in the store, the trace itself
// (a trace evicted and received again under the same id is another trace).
type traceRef struct {
	low uint64
	seq uint64
}

// Heap costs, measured on amd64 (BenchmarkHeapPerSpan reports accounted
// bytes against the memory measured): a trace's slot in its shard's map.
const (
	mapEntryBytes = 32
	extentBytes   = 12
)

// entriesPerSlab sizes the entry slabs for a budget: at most 1/64 of it
// across the 64 shards' first slabs, between 32 and 512 entries.
func entriesPerSlab(maxBytes int64) (int, uint) {
	n, shift := 32, uint(5)
	for n < 512 && int64(2*n*entryBytes*numShards*64) <= maxBytes {
		n, shift = 2*n, shift+1
	}
	return n, shift
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.Retention > 0 && cfg.Retention < MinRetention {
		cfg.Retention = MinRetention
	}
	s := &Store{
		cfg:        cfg,
		now:        cfg.Now,
		log:        &chunkLog{size: chunkSizeFor(cfg.MaxBytes)},
		keySeed:    maphash.MakeSeed(),
		heapFactor: heapFactor(),
		fifo:       cfg.MaxTraces > 0 || cfg.Retention > 0,
		search:     !cfg.NoSearch,
		terms:      newTermHasher(cfg.Limits),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.DefaultTenant == "" {
		s.cfg.DefaultTenant = DefaultTenant
	}
	maxTenants := cfg.MaxTenants
	if maxTenants <= 0 {
		maxTenants = DefaultMaxTenants
	}
	s.tenants = newTenants(min(maxTenants, maxTenantSlots), s.cfg.DefaultTenant)
	perSlab, shift := entriesPerSlab(cfg.MaxBytes)
	for i := range s.shards {
		s.shards[i].traces = make(map[uint64]entryRef)
		s.shards[i].entries = &slabs{perSlab: perSlab, shift: shift}
	}
	s.calls.init()
	s.resources = newResources()
	s.log.release = s.resources.release
	// A store dropped without Close still gives its memory back.
	runtime.AddCleanup(s, func(l *chunkLog) { l.close() }, s.log)
	for i := range s.shards {
		runtime.AddCleanup(s, func(sl *slabs) { sl.unmap() }, s.shards[i].entries)
	}
	return s
}

// heapFactor is what a byte of live heap costs the process: the garbage
// collector lets the heap grow by GOGC percent of the live heap before it
// collects, and the runtime keeps up to a tenth more than that goal before
// it returns free pages to the system (the scavenger's retained share).
func heapFactor() float64 {
	percent := 100
	if v, err := strconv.Atoi(os.Getenv("GOGC")); err == nil && v > 0 {
		percent = v
	}
	return (1 + float64(percent)/100) * 1.1
}

// Close removes every trace and unmaps the chunks; the store stores nothing
// after it. Lookups in flight finish first.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, head := range sh.traces {
			for ref := head; ref != 0; {
				e := sh.entries.at(ref)
				next := e.next
				s.dropEntry(sh, ref, e)
				ref = next
			}
		}
		clear(sh.traces)
		sh.queue = fifo{}
		sh.entries.unmap()
		sh.mu.Unlock()
	}
	s.queueBytes.Store(0)
	s.slabBytes.Store(0)
	s.log.close()
}

func low64(id [16]byte) uint64 { return binary.BigEndian.Uint64(id[8:]) }

func (s *Store) shardOf(low uint64) *shard {
	// Mix the bits: ids made from small integers would otherwise share a shard.
	h := low * 0x9E3779B97F4A7C15
	return &s.shards[h>>(64-6)]
}

// find returns the entry of trace id of the tenant in slot tenant.
func (sh *shard) find(id [16]byte, tenant uint16) (entryRef, *traceEntry) {
	for ref := sh.traces[low64(id)]; ref != 0; {
		e := sh.entries.at(ref)
		if e.id == id && e.tenant == tenant {
			return ref, e
		}
		ref = e.next
	}
	return 0, nil
}

func (sh *shard) link(ref entryRef, e *traceEntry) {
	sh.count++
	low := low64(e.id)
	e.next = sh.traces[low]
	sh.traces[low] = ref
}

// findRef returns the entry of the trace tr names, if it is still stored.
func (sh *shard) findRef(tr traceRef) (entryRef, *traceEntry) {
	for ref := sh.traces[tr.low]; ref != 0; {
		e := sh.entries.at(ref)
		if e.seq == tr.seq {
			return ref, e
		}
		ref = e.next
	}
	return 0, nil
}

// unlink takes the entry of tr out of the map and returns it, or 0.
func (sh *shard) unlink(tr traceRef) (entryRef, *traceEntry) {
	low := tr.low
	var prev *traceEntry
	for ref := sh.traces[low]; ref != 0; {
		e := sh.entries.at(ref)
		if e.seq != tr.seq {
			prev, ref = e, e.next
			continue
		}
		switch {
		case prev != nil:
			prev.next = e.next
		case e.next != 0:
			sh.traces[low] = e.next
		default:
			delete(sh.traces, low)
			if sh.deletes++; compactAfter(sh.deletes, len(sh.traces)) {
				sh.traces = rebuilt(sh.traces)
				sh.deletes = 0
			}
		}
		e.next = 0
		sh.count--
		return ref, e
	}
	return 0, nil
}

// heapBytes is what the store holds on the Go heap.
func (s *Store) heapBytes() int64 {
	return s.bytes.Load() + s.queueBytes.Load() + s.resources.bytes.Load() + s.log.owners.Load() + s.tenants.bytes.Load()
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Traces:             s.traces.Load(),
		Spans:              s.spans.Load(),
		MappedBytes:        s.log.mapped.Load() + s.slabBytes.Load() + s.searchMapped.Load(),
		HeapBytes:          s.heapBytes(),
		DroppedSpans:       s.dropped.Load(),
		DuplicateSpans:     s.duplicates.Load(),
		InvalidIDSpans:     s.invalidIDs.Load(),
		InvalidTenantSpans: s.badTenant.Load(),
		TenantLimitSpans:   s.tenantFull.Load(),
		Lookups:            s.lookups.Load(),
		Moved:              s.moved.Load(),
		Cuts: spancodec.Cuts{
			Values:     s.cuts.values.Load(),
			Attributes: s.cuts.attributes.Load(),
			Events:     s.cuts.events.Load(),
			Links:      s.cuts.links.Load(),
		},
	}
	st.Bytes = st.MappedBytes + st.HeapBytes
	for i := range st.Evicted {
		st.Evicted[i] = s.evicted[i].Load()
	}
	return st
}

// Trace is a read-only copy of one stored trace.
type Trace struct {
	ID [16]byte
	// Tenant is the tenant the trace belongs to.
	Tenant string
	// FirstSeen and LastSeen are when the store first and last received a span of the trace (unix nanoseconds).
	FirstSeen int64
	LastSeen  int64
	SpanCount int
	// Truncated is set once a span was dropped because the trace reached MaxSpansPerTrace.
	Truncated bool
	// blocks are the trace's blocks, copied out of the chunk log.
	blocks []byte
	buf    *[]byte // the pooled buffer blocks is in, if any
	// resources are the resource bodies the records name.
	resources []*resource
}

// Spans decodes the trace's spans in the order they arrived.
func (t *Trace) Spans() ([]spancodec.Span, error) {
	var sc spancodec.Scratch
	return t.SpansInto(&sc)
}

// SpansInto decodes the spans into sc's memory; they are valid until sc's
// next use, and do not need t's memory (see Release). A span that cannot be
// read is left out, and the first such failure returned with the rest.
func (t *Trace) SpansInto(sc *spancodec.Scratch) ([]spancodec.Span, error) {
	return sc.Decode(t.ID, t.blocks, resolver(t.resources), t.SpanCount)
}

// MoreSpansInto is SpansInto keeping the spans sc decoded before: the
// result holds them and t's (see spancodec.Scratch.DecodeMore).
func (t *Trace) MoreSpansInto(sc *spancodec.Scratch) ([]spancodec.Span, error) {
	return sc.DecodeMore(t.ID, t.blocks, resolver(t.resources), t.SpanCount)
}

// BlockBytes is the size of the trace's blocks as stored.
func (t *Trace) BlockBytes() int { return len(t.blocks) }

// Release returns the trace's copy of its blocks for reuse; t must not be
// decoded after it. Spans already decoded stay valid.
func (t *Trace) Release() {
	if t.buf != nil {
		*t.buf = t.blocks[:0]
		blockBufs.Put(t.buf)
		t.buf, t.blocks = nil, nil
	}
}
