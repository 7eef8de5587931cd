// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"container/list"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is one contract's limit: a token bucket per tenant that holds
// RequestsPerMinute requests and refills at that rate, so a tenant may
// spend a minute's requests at once, then one every 60/RequestsPerMinute
// seconds. 0 means no limit.
type RateLimit struct {
	RequestsPerMinute int
}

// maxBuckets bounds the buckets held: tenant ids come from clients. Past
// it, the least recently used bucket makes room, in constant time; only
// more than maxBuckets tenants active at once could reset one another's.
const maxBuckets = 10000

// limiter holds one contract's buckets.
type limiter struct {
	name      string // X-RateLimit-Name
	perMinute int
	rate      rate.Limit
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket, most recently used first
	lru     list.List
}

type bucket struct {
	tenant string
	lim    *rate.Limiter
}

func newLimiter(name string, l RateLimit, now func() time.Time) *limiter {
	if l.RequestsPerMinute <= 0 {
		return nil
	}
	return &limiter{
		name:      name,
		perMinute: l.RequestsPerMinute,
		rate:      rate.Limit(float64(l.RequestsPerMinute) / 60),
		now:       now,
		buckets:   make(map[string]*list.Element),
	}
}

// take spends one of tenant's requests. It sets the vendor's rate-limit
// headers on w either way, and Retry-After when the request is refused.
func (l *limiter) take(w http.ResponseWriter, tenant string) bool {
	now := l.now()
	l.mu.Lock()
	el := l.buckets[tenant]
	if el != nil {
		l.lru.MoveToFront(el)
	} else {
		if len(l.buckets) >= maxBuckets {
			oldest := l.lru.Back()
			delete(l.buckets, l.lru.Remove(oldest).(*bucket).tenant)
		}
		el = l.lru.PushFront(&bucket{tenant: tenant, lim: rate.NewLimiter(l.rate, l.perMinute)})
		l.buckets[tenant] = el
	}
	b := el.Value.(*bucket).lim
	ok := b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	l.mu.Unlock()

	h := w.Header()
	// X-RateLimit-Limit requests per X-RateLimit-Period seconds;
	// X-RateLimit-Remaining left now; X-RateLimit-Reset seconds until all
	// of them are back; X-RateLimit-Name the limit's name.
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.perMinute))
	h.Set("X-RateLimit-Period", "60")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, int(math.Floor(tokens)))))
	h.Set("X-RateLimit-Reset", strconv.Itoa(l.secondsUntil(float64(l.perMinute)-tokens)))
	h.Set("X-RateLimit-Name", l.name)
	if !ok {
		h.Set("Retry-After", strconv.Itoa(max(1, l.secondsUntil(1-tokens))))
	}
	return ok
}

// secondsUntil is how long, in whole seconds rounded up, the bucket takes
// to gain n tokens.
func (l *limiter) secondsUntil(n float64) int {
	if n <= 0 {
		return 0
	}
	return int(math.Ceil(n / float64(l.rate)))
}

// rateLimitedMessage explains a 429 of every contract but 003.
const rateLimitedMessage = "this tenant made more requests than its rate limit allows; retry after the time in Retry-After"
