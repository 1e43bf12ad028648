package caddyauth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Defaults of the key cache.
const (
	DefaultCacheSize = 100_000
	DefaultCacheTTL  = 30 * time.Second
)

// KeyCache keeps recently used sessions (with their opened secrets) in front
// of the store, so a signed request costs no store read.
//
// It is a plain golang-lru cache with the expiry kept in each entry: the
// library's expirable variant starts a goroutine per instance that is never
// stopped. An entry lives at most the TTL, which bounds how stale a
// revocation seen by another node can be even when an invalidation message
// is lost (REL-03). Misses are collapsed through singleflight, so a burst of
// requests for one session costs one store read. Unknown ids are not cached
// at all, so guessing ids cannot fill the cache (REL-11).
type KeyCache struct {
	lru   *lru.Cache[string, cacheEntry]
	ttl   time.Duration
	group singleflight.Group
	hits  atomic.Uint64
	miss  atomic.Uint64
	// mu orders a fill's "still current?" check and its Add against
	// Remove, so a session ended during a store read is never re-cached.
	mu  sync.Mutex
	gen atomic.Uint64
}

type cacheEntry struct {
	s       *Session
	expires time.Time
}

// NewKeyCache returns a cache of at most size entries, each kept at most ttl.
// size <= 0 disables caching (every lookup goes to the store).
func NewKeyCache(size int, ttl time.Duration) *KeyCache {
	c := &KeyCache{ttl: ttl}
	if size > 0 {
		c.lru, _ = lru.New[string, cacheEntry](size) // errors only for size <= 0
	}
	return c
}

// TTL is the longest an entry is trusted.
func (c *KeyCache) TTL() time.Duration { return c.ttl }

// Resize changes the capacity (a reload may change the configured size).
func (c *KeyCache) Resize(size int) {
	if c.lru != nil && size > 0 {
		c.lru.Resize(size)
	}
}

// Get returns the cached session for id if present and fresh at now.
func (c *KeyCache) Get(id string, now time.Time) (*Session, bool) {
	if c.lru == nil {
		return nil, false
	}
	e, ok := c.lru.Get(id)
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.s, true
}

// Load returns the session for id from the cache, or calls fill once for all
// concurrent callers asking for the same id and caches what it returns.
// Cached sessions are shared: callers must not modify them.
func (c *KeyCache) Load(ctx context.Context, id string, now time.Time, fill func(context.Context) (*Session, error)) (s *Session, hit bool, err error) {
	if s, ok := c.Get(id, now); ok {
		c.hits.Add(1)
		return s, true, nil
	}
	c.miss.Add(1)
	gen := c.gen.Load()
	v, err, _ := c.group.Do(id, func() (any, error) {
		s, err := fill(ctx)
		if err != nil {
			return nil, err
		}
		// A Remove or Purge that ran while we were reading the store wins:
		// caching now could resurrect a session that was just ended.
		if c.lru != nil {
			exp := now.Add(c.ttl)
			if d := s.Deadline(); d.Before(exp) {
				exp = d
			}
			c.mu.Lock()
			if c.gen.Load() == gen {
				c.lru.Add(id, cacheEntry{s: s, expires: exp})
			}
			c.mu.Unlock()
		}
		return s, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*Session), false, nil
}

// Remove drops id (logout, revoke).
func (c *KeyCache) Remove(id string) {
	c.mu.Lock()
	c.gen.Add(1)
	c.group.Forget(id)
	if c.lru != nil {
		c.lru.Remove(id)
	}
	c.mu.Unlock()
}

// Purge drops every entry (e.g. after a lost invalidation channel).
func (c *KeyCache) Purge() {
	c.mu.Lock()
	c.gen.Add(1)
	if c.lru != nil {
		c.lru.Purge()
	}
	c.mu.Unlock()
}

// Len is the number of entries (fresh or not yet evicted).
func (c *KeyCache) Len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}

// Stats returns the hit and miss counts since creation.
func (c *KeyCache) Stats() (hits, misses uint64) { return c.hits.Load(), c.miss.Load() }
