package metricsauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verdict is what the filter answers a token.
type verdict uint8

const (
	allowed         verdict = iota + 1
	unauthenticated         // 401: no token, or one the API server rejects
	forbidden               // 403: a user who may not get /metrics
)

// decision is a verdict on one token, and whose token it is (for a 403's
// message), until expires.
type decision struct {
	verdict verdict
	user    string
	expires time.Time
}

// cache holds recent decisions, keyed by a hash of the token so that no
// token stays in memory, and holds at most max of them: when full of
// ones not stale, a new decision is not kept (under a flood of made-up
// tokens the cache keeps what it had, and each new token costs a review).
type cache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]decision
	max     int
}

func newCache(maxEntries int) *cache {
	return &cache{entries: make(map[[sha256.Size]byte]decision), max: maxEntries}
}

func key(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns the decision on the token hashed to k, expired or not (its
// verdict 0 if there is none), and whether it is still fresh: an expired
// one is kept until its token is reviewed again or room is needed, so that
// a token allowed before is known when it comes back.
func (c *cache) get(k [sha256.Size]byte, now time.Time) (d decision, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d = c.entries[k]
	return d, d.verdict != 0 && now.Before(d.expires)
}

// put keeps d, first dropping stale decisions if the cache is full.
func (c *cache) put(k [sha256.Size]byte, d decision, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if stale(e, now) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return
		}
	}
	c.entries[k] = d
}

// len is how many decisions the cache holds, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// stale tells whether e may be dropped: a refusal once expired, an
// allowed token's decision only a further allowedFor after it expired,
// so that made-up tokens filling the cache do not make a scraper coming
// back to renew its decision a new token, which waits its turn.
func stale(e decision, now time.Time) bool {
	if e.verdict == allowed {
		return !now.Before(e.expires.Add(allowedFor))
	}
	return !now.Before(e.expires)
}
