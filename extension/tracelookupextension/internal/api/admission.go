// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// admissionWait is the longest a lookup waits for its share of the lookup
// memory budget before it is refused with Retry-After.
const admissionWait = 500 * time.Millisecond

// admission holds the lookups in flight to a memory budget: each takes its
// estimated cost (see lookupCost) before it copies anything, and waits its
// turn, first come first served, when the budget is taken.
type admission struct {
	budget int64
	sem    *semaphore.Weighted

	inUse    atomic.Int64
	peak     atomic.Int64
	rejected atomic.Int64
}

// AdmissionStats are the lookup memory budget's counters.
type AdmissionStats struct {
	// BudgetBytes is the budget; 0 means lookups are not held to one.
	BudgetBytes int64
	// InUseBytes is what the lookups in flight hold, PeakBytes the most they ever held.
	InUseBytes, PeakBytes int64
	// Rejected counts lookups refused because the budget stayed full.
	Rejected int64
}

func newAdmission(budget int64) *admission {
	a := &admission{budget: budget}
	if budget > 0 {
		a.sem = semaphore.NewWeighted(budget)
	}
	return a
}

// acquire takes cost bytes of the budget, waiting up to admissionWait, and
// returns the function that gives them back. A lookup costing more than the
// whole budget takes all of it: it runs alone rather than never.
func (a *admission) acquire(ctx context.Context, cost int64) (func(), bool) {
	if a.sem == nil {
		return func() {}, true
	}
	cost = min(max(cost, 1), a.budget)
	ctx, cancel := context.WithTimeout(ctx, admissionWait)
	defer cancel()
	if a.sem.Acquire(ctx, cost) != nil {
		a.rejected.Add(1)
		return nil, false
	}
	now := a.inUse.Add(cost)
	for p := a.peak.Load(); now > p && !a.peak.CompareAndSwap(p, now); p = a.peak.Load() {
	}
	return func() {
		a.inUse.Add(-cost)
		a.sem.Release(cost)
	}, true
}

// AdmissionStats returns the lookup memory budget's counters.
func (h *Handler) AdmissionStats() AdmissionStats {
	a := h.admit
	return AdmissionStats{BudgetBytes: a.budget, InUseBytes: a.inUse.Load(), PeakBytes: a.peak.Load(), Rejected: a.rejected.Load()}
}
