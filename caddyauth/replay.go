package caddyauth

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ReplayGuard remembers values for a while and says whether a value is seen
// for the first time. The in-memory guard serves one node; a shared store
// (redis) provides one that serves a cluster.
type ReplayGuard interface {
	// SeenOnce records key for ttl and reports whether it was new.
	SeenOnce(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
}

// DefaultReplayCacheSize bounds the in-memory replay guard.
const DefaultReplayCacheSize = 100_000

// MemoryReplayGuard is a bounded in-memory ReplayGuard. Keys are kept as
// SHA-256 digests (fixed 32 bytes whatever the input) in an LRU of fixed
// capacity, so a flood of distinct values costs bounded memory (SEC-23); when
// full, the least recently seen value is forgotten first.
type MemoryReplayGuard struct {
	mu    sync.Mutex
	lru   *lru.Cache[[32]byte, time.Time]
	clock Clock
}

// NewMemoryReplayGuard returns a guard remembering at most size values.
func NewMemoryReplayGuard(size int, clock Clock) *MemoryReplayGuard {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	if clock == nil {
		clock = SystemClock{}
	}
	c, _ := lru.New[[32]byte, time.Time](size)
	return &MemoryReplayGuard{lru: c, clock: clock}
}

// SeenOnce implements ReplayGuard.
func (g *MemoryReplayGuard) SeenOnce(_ context.Context, key string, ttl time.Duration) (bool, error) {
	k := sha256.Sum256([]byte(key))
	now := g.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if exp, ok := g.lru.Peek(k); ok && now.Before(exp) {
		return false, nil
	}
	g.lru.Add(k, now.Add(ttl))
	return true, nil
}

// Len is the number of remembered values.
func (g *MemoryReplayGuard) Len() int { return g.lru.Len() }
