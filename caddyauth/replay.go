package caddyauth

import (
	"context"
	"time"
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

// MaxReplayCacheSize is the largest in-memory replay guard: its table
// (about 25 bytes per value, about 400 MiB at this size) is allocated whole
// when the guard is built, so a larger size is capped to this.
const MaxReplayCacheSize = 1 << 24

// MemoryReplayGuard is a bounded in-memory ReplayGuard. It remembers at most
// its size of values (rounded up to a multiple of 8), allocated once when it
// is built: a flood of distinct values never grows it (SEC-23). Keys are kept
// as 16-byte prefixes of their SHA-256, whatever their length. When a value
// must be forgotten to make room, it is one of those closest to the end of
// their ttl (see seenSet), not the least recently seen.
type MemoryReplayGuard struct {
	set   *seenSet
	clock Clock
}

var _ ReplayGuard = (*MemoryReplayGuard)(nil)

// NewMemoryReplayGuard returns a guard remembering at most size values
// (<= 0: DefaultReplayCacheSize; capped at MaxReplayCacheSize), on clock
// (nil: the system clock).
func NewMemoryReplayGuard(size int, clock Clock) *MemoryReplayGuard {
	if clock == nil {
		clock = SystemClock{}
	}
	return &MemoryReplayGuard{set: newSeenSet(size), clock: clock}
}

// SeenOnce implements ReplayGuard. It never fails.
func (g *MemoryReplayGuard) SeenOnce(_ context.Context, key string, ttl time.Duration) (bool, error) {
	return g.set.seenOnce(key, g.clock.Now(), ttl), nil
}

// Len is the number of values remembered now (expired ones excluded).
func (g *MemoryReplayGuard) Len() int { return g.set.len(g.clock.Now()) }
