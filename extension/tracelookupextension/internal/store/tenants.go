// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"sync"
	"sync/atomic"
)

// Every trace belongs to one tenant: the same trace id under two tenants is
// two traces, and a lookup sees only its own tenant's. A trace's entry names
// its tenant by a 16-bit slot in the tenant table, so the entries stay
// pointer-free; a slot is held (refs) by every trace of its tenant and every
// batch being ingested for it, and is given back with the last of them.

// DefaultMaxTenants is the most tenants held at once when Config.MaxTenants is 0.
const DefaultMaxTenants = 1000

// maxTenantSlots is the most slots an entry's 16 bits can name.
const maxTenantSlots = 1 << 16

// MaxTenantBytes is the longest tenant id (the limit Cortex, Mimir and Tempo apply).
const MaxTenantBytes = 150

// DefaultTenant is the tenant of spans and lookups that name none, unless
// configured otherwise.
const DefaultTenant = "default"

// TenantRule says what ValidTenant accepts, for error messages.
const TenantRule = "1 to 150 letters, digits or !-_.*'(), and neither . nor .."

// ValidTenant says whether s is a tenant id the index accepts: 1 to 150
// bytes of letters, digits and !-_.*'(), and neither "." nor "..", the
// rules of Cortex, Mimir, Loki and Tempo, so that a tenant id they accept
// is accepted here and one that could name a path is not.
func ValidTenant(s string) bool {
	if s == "" || len(s) > MaxTenantBytes || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!', c == '-', c == '_', c == '.', c == '*', c == '\'', c == '(', c == ')':
		default:
			return false
		}
	}
	return true
}

// tenantBytes is what one tenant costs the heap besides its name and its
// queue: the record and its map slot.
const tenantBytes = 160

// tenant is one slot's tenant and its counters.
type tenant struct {
	name   string
	refs   atomic.Int64 // its traces and the batches in flight for it
	traces atomic.Int64
	spans  atomic.Int64
	// bytes are the log bytes of its traces' entries: its span data.
	bytes atomic.Int64

	// queue lists its traces in first-seen order, kept only when tenants
	// have a share (see Config.TenantShare).
	mu    sync.Mutex
	queue fifo

	// index holds its search records and catalog.
	index *tenantIndex
}

type tenants struct {
	mu     sync.RWMutex
	byName map[string]uint16
	// slots are read without the lock: a slot changes only while no trace
	// and no batch holds it.
	slots []atomic.Pointer[tenant]
	free  []uint16
	next  int
	bytes atomic.Int64
}

// newTenants returns a table of max slots, slot 0 holding the default
// tenant for good.
func newTenants(max int, defaultTenant string) *tenants {
	t := &tenants{byName: make(map[string]uint16), slots: make([]atomic.Pointer[tenant], max)}
	t.acquire(defaultTenant) // slot 0, never released
	return t
}

// acquire returns name's slot with one more reference, taking a free slot
// for a new tenant; false when every slot is taken.
func (t *tenants) acquire(name string) (uint16, bool) {
	t.mu.RLock()
	id, ok := t.byName[name]
	if ok {
		t.slots[id].Load().refs.Add(1) // under the read lock: release cannot free it meanwhile
	}
	t.mu.RUnlock()
	if ok {
		return id, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.byName[name]; ok {
		t.slots[id].Load().refs.Add(1)
		return id, true
	}
	switch {
	case len(t.free) > 0:
		id = t.free[len(t.free)-1]
		t.free = t.free[:len(t.free)-1]
	case t.next < len(t.slots):
		id = uint16(t.next)
		t.next++
	default:
		return 0, false
	}
	tn := &tenant{name: name, index: newTenantIndex()}
	tn.refs.Store(1)
	t.slots[id].Store(tn)
	t.byName[name] = id
	t.bytes.Add(tenantBytes + int64(len(name)))
	return id, true
}

// retain adds a reference to a slot the caller already holds one of.
func (t *tenants) retain(id uint16) { t.slots[id].Load().refs.Add(1) }

// release drops one reference, freeing the slot with its last one.
func (t *tenants) release(id uint16) {
	tn := t.slots[id].Load()
	if tn.refs.Add(-1) > 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// acquire may have taken a reference in between, under the lock.
	if tn.refs.Load() == 0 && t.slots[id].Load() == tn {
		delete(t.byName, tn.name)
		t.slots[id].Store(nil)
		t.free = append(t.free, id)
		t.bytes.Add(-tenantBytes - int64(len(tn.name)) - int64(len(tn.queue.ring))*queueEntryBytes)
	}
}

// lookup returns name's slot, if the tenant holds any trace.
func (t *tenants) lookup(name string) (uint16, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	id, ok := t.byName[name]
	return id, ok
}

// at returns the tenant in slot id; the caller holds a reference, or the
// lock of a shard with a trace of it.
func (t *tenants) at(id uint16) *tenant { return t.slots[id].Load() }

// TenantStats are one tenant's counters.
type TenantStats struct {
	Tenant string
	Traces int64
	Spans  int64
	// Bytes are the log bytes of its traces.
	Bytes int64
}

// Tenants returns the counters of every tenant holding traces, the default
// tenant always.
func (s *Store) Tenants() []TenantStats {
	t := s.tenants
	var out []TenantStats
	for i := range t.slots {
		tn := t.slots[i].Load()
		if tn == nil {
			continue
		}
		out = append(out, TenantStats{Tenant: tn.name, Traces: tn.traces.Load(), Spans: tn.spans.Load(), Bytes: tn.bytes.Load()})
	}
	return out
}

// overShare says whether tenant tn holds more than its share.
func (s *Store) overShare(tn *tenant) bool {
	return s.cfg.TenantShare > 0 && s.heldShare(tn) > 1
}

// heldShare is how much of its share tenant tn holds (1: all of it), by
// traces or by memory, whichever is more. Its memory is its span data plus
// what each of its traces costs besides (its entry, and its map slot with
// the collector's headroom, and its search record) and its search
// catalog, so that a share is of the budget as the memory bound counts it.
func (s *Store) heldShare(tn *tenant) float64 {
	traces := float64(tn.traces.Load())
	byTraces := 0.0
	if s.cfg.MaxTraces > 0 {
		byTraces = traces / (s.cfg.TenantShare * float64(s.cfg.MaxTraces))
	}
	perTrace := entryBytes + mapEntryBytes*s.heapFactor
	if s.search {
		perTrace += float64(recBytes)
	}
	held := float64(tn.bytes.Load()) + traces*perTrace + float64(tn.index.catBytes.Load())*s.heapFactor
	return max(byTraces, held/(s.cfg.TenantShare*float64(s.cfg.MaxBytes)))
}

// Holds says whether tenant holds traces ("" is the default tenant): the
// tenants that do are bounded by MaxTenants, those clients name are not.
func (s *Store) Holds(tenant string) bool {
	_, _, ok := s.readSlot(tenant)
	return ok
}

// enforceShare evicts tenant id's oldest traces while it holds more than
// its share; the caller holds a reference to the slot and no lock.
func (s *Store) enforceShare(id uint16) {
	if s.cfg.TenantShare <= 0 {
		return
	}
	tn := s.tenants.at(id)
	tn.mu.Lock()
	bloated := int64(tn.queue.n) > 2*tn.traces.Load()+64
	tn.mu.Unlock()
	if !s.overShare(tn) && !bloated {
		return
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	for s.overShare(tn) {
		tn.mu.Lock()
		if tn.queue.n == 0 {
			tn.mu.Unlock()
			return
		}
		e := tn.queue.ring[tn.queue.head]
		tn.queue.pop()
		tn.mu.Unlock()
		s.evict(e.ref, ReasonTenantShare) // a trace already gone is skipped
	}
	s.compactTenantQueue(tn)
}

// compactTenantQueue drops the entries of traces that left for another
// reason (memory, count, retention), once they outnumber the live ones:
// entries are otherwise only dropped from the head, and a tenant that
// never passes its share would keep them all. The caller holds evictMu, so nothing pops
// meanwhile; pushes only append.
func (s *Store) compactTenantQueue(tn *tenant) {
	tn.mu.Lock()
	n := tn.queue.n
	if int64(n) <= 2*tn.traces.Load()+64 {
		tn.mu.Unlock()
		return
	}
	old := make([]queued, n)
	for i := range old {
		old[i] = tn.queue.ring[(tn.queue.head+i)%len(tn.queue.ring)]
	}
	tn.mu.Unlock()
	live := old[:0]
	for _, e := range old {
		if s.stored(e.ref) {
			live = append(live, e)
		}
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	var q fifo
	for _, e := range live {
		q.push(e.ref, e.stamp)
	}
	for i := n; i < tn.queue.n; i++ {
		e := tn.queue.ring[(tn.queue.head+i)%len(tn.queue.ring)]
		q.push(e.ref, e.stamp)
	}
	s.tenants.bytes.Add(int64(len(q.ring)-len(tn.queue.ring)) * queueEntryBytes)
	tn.queue = q
}

// stored says whether the trace tr names is still stored.
func (s *Store) stored(tr traceRef) bool {
	sh := s.shardOf(tr.low)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	_, e := sh.findRef(tr)
	return e != nil
}
