package caddyauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultEphemeralSize bounds LocalEphemeral.
const DefaultEphemeralSize = 100_000

// LocalEphemeral is the Ephemeral state of one node, in memory. Keys are kept
// as SHA-256 digests in one LRU of fixed capacity, so a flood of distinct
// keys (challenges requested for made-up users, failures for made-up
// accounts) costs bounded memory; when full, the least recently used entry is
// forgotten first. Forgetting a challenge only makes its login fail;
// forgetting a failure count under a flood of other keys is the price of the
// bound, and the per-IP throttle still holds.
//
// Replay marks (SeenOnce) are kept apart, in a MemoryReplayGuard of the same
// size: they are the most numerous entries by far, and there they cost no
// pointers for the GC and cannot push challenges or failure counts out of the
// LRU.
type LocalEphemeral struct {
	mu    sync.Mutex
	lru   *lru.Cache[[32]byte, *ephemeralEntry]
	clock Clock
	size  int

	// seen is built on the first SeenOnce: most LocalEphemerals (the
	// abuse limiter's, the Ephemeral next to a MemoryReplayGuard) never
	// record a replay mark and should not carry a table for them.
	seenInit sync.Once
	seen     atomic.Pointer[MemoryReplayGuard]
}

type ephemeralEntry struct {
	value   []byte
	count   int64
	expires time.Time
}

var (
	_ Ephemeral   = (*LocalEphemeral)(nil)
	_ ReplayGuard = (*LocalEphemeral)(nil)
)

// NewLocalEphemeral returns state for at most size keys (<= 0: the default).
func NewLocalEphemeral(size int, clock Clock) *LocalEphemeral {
	if size <= 0 {
		size = DefaultEphemeralSize
	}
	if clock == nil {
		clock = SystemClock{}
	}
	c, _ := lru.New[[32]byte, *ephemeralEntry](size)
	return &LocalEphemeral{lru: c, clock: clock, size: size}
}

// live returns the unexpired entry under k; it must be called with mu held.
func (e *LocalEphemeral) live(k [32]byte, now time.Time) *ephemeralEntry {
	en, ok := e.lru.Peek(k)
	if !ok {
		return nil
	}
	if !now.Before(en.expires) {
		e.lru.Remove(k)
		return nil
	}
	return en
}

// PutOnce implements Ephemeral.
func (e *LocalEphemeral) PutOnce(_ context.Context, key string, value []byte, ttl time.Duration) error {
	k, now := sha256.Sum256([]byte(key)), e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live(k, now) != nil {
		return fmt.Errorf("put once: %w", ErrExists)
	}
	e.lru.Add(k, &ephemeralEntry{value: bytes.Clone(value), expires: now.Add(ttl)})
	return nil
}

// TakeOnce implements Ephemeral.
func (e *LocalEphemeral) TakeOnce(_ context.Context, key string) ([]byte, error) {
	k, now := sha256.Sum256([]byte(key)), e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.live(k, now)
	if en == nil {
		return nil, fmt.Errorf("take once: %w", ErrNotFound)
	}
	e.lru.Remove(k)
	return en.value, nil
}

// SeenOnce implements Ephemeral and ReplayGuard, with the bound and eviction
// policy of MemoryReplayGuard (SEC-23). It never fails.
func (e *LocalEphemeral) SeenOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	e.seenInit.Do(func() { e.seen.Store(NewMemoryReplayGuard(e.size, e.clock)) })
	return e.seen.Load().SeenOnce(ctx, key, ttl)
}

// AddFailure implements Ephemeral.
func (e *LocalEphemeral) AddFailure(_ context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	k, now := sha256.Sum256([]byte(key)), e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.live(k, now)
	if en == nil {
		en = &ephemeralEntry{expires: now.Add(window)}
		e.lru.Add(k, en)
	} else {
		e.lru.Get(k) // mark as recently used
	}
	en.count++
	return en.count, en.expires.Sub(now), nil
}

// Failures implements Ephemeral.
func (e *LocalEphemeral) Failures(_ context.Context, key string) (int64, time.Duration, error) {
	k, now := sha256.Sum256([]byte(key)), e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if en := e.live(k, now); en != nil {
		return en.count, en.expires.Sub(now), nil
	}
	return 0, 0, nil
}

// ResetFailures implements Ephemeral.
func (e *LocalEphemeral) ResetFailures(_ context.Context, key string) error {
	k := sha256.Sum256([]byte(key))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lru.Remove(k)
	return nil
}

// Len is the number of keys held: challenges and failure counters (expired
// ones included until touched) and unexpired replay marks.
func (e *LocalEphemeral) Len() int {
	n := e.lru.Len()
	if seen := e.seen.Load(); seen != nil {
		n += seen.Len()
	}
	return n
}
