// Package enginetest is test support for the engine and its dialects: a
// recording Observer, a Store wrapper that counts writes and fails on
// demand, and cheap password hashing. Production code never imports it.
package enginetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/password"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

// CheapParams keep the KDF at microseconds in tests. They are below the
// SEC-01 floor, so only a Hasher with AllowWeakParams accepts them; the
// shipped defaults are checked by the password package's own tests.
var CheapParams = password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

// CheapHasherConfig is the hasher configuration for CheapParams.
func CheapHasherConfig() password.Config {
	return password.Config{Params: CheapParams, AllowWeakParams: true}
}

// CheapHasher returns a Hasher using CheapParams.
func CheapHasher(t testing.TB) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(CheapHasherConfig())
	if err != nil {
		t.Fatalf("new cheap hasher: %v", err)
	}
	return h
}

// Hash returns a CheapParams PHC string of pw. It uses a throwaway Hasher,
// so the KDF count of the Hasher under test is untouched.
func Hash(t testing.TB, pw string) string {
	t.Helper()
	phc, err := CheapHasher(t).Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("hash password: %v", err)
	}
	return phc
}

// NewSealer returns a Sealer under a fresh random master key.
func NewSealer(t testing.TB) *caddyauth.Sealer {
	t.Helper()
	s, err := caddyauth.NewSealer(caddyauth.NewMasterKey())
	if err != nil {
		t.Fatalf("new sealer: %v", err)
	}
	return s
}

// Observer records every call the engine makes, for assertions on what
// would be counted and logged. It is safe for concurrent use.
type Observer struct {
	mu        sync.Mutex
	logins    map[string]int // "dialect/result"
	replays   map[string]int // "dialect/action"
	ended     map[string]int // "dialect/reason"
	created   map[caddyauth.Dialect]int
	storeErrs map[string]int
	hits      int
	misses    int
	events    []caddyauth.Event
}

// NewObserver returns an empty Observer.
func NewObserver() *Observer {
	return &Observer{logins: map[string]int{}, replays: map[string]int{}, ended: map[string]int{},
		created: map[caddyauth.Dialect]int{}, storeErrs: map[string]int{}}
}

func (o *Observer) count(m map[string]int, k string) {
	o.mu.Lock()
	m[k]++
	o.mu.Unlock()
}

// Audit implements caddyauth.Observer.
func (o *Observer) Audit(e caddyauth.Event) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

// CacheLookup implements caddyauth.Observer.
func (o *Observer) CacheLookup(hit bool) {
	o.mu.Lock()
	if hit {
		o.hits++
	} else {
		o.misses++
	}
	o.mu.Unlock()
}

// SessionCreated implements caddyauth.Observer.
func (o *Observer) SessionCreated(d caddyauth.Dialect) {
	o.mu.Lock()
	o.created[d]++
	o.mu.Unlock()
}

// SessionEnded implements caddyauth.Observer.
func (o *Observer) SessionEnded(d caddyauth.Dialect, reason string) {
	o.count(o.ended, string(d)+"/"+reason)
}

// StoreError implements caddyauth.Observer.
func (o *Observer) StoreError(op string) { o.count(o.storeErrs, op) }

// Login implements caddyauth.Observer.
func (o *Observer) Login(d caddyauth.Dialect, result string) { o.count(o.logins, string(d)+"/"+result) }

// Replay implements caddyauth.Observer.
func (o *Observer) Replay(d caddyauth.Dialect, action string) {
	o.count(o.replays, string(d)+"/"+action)
}

func (o *Observer) get(m map[string]int, k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return m[k]
}

// Logins is the number of login attempts of dialect d with result.
func (o *Observer) Logins(d caddyauth.Dialect, result string) int {
	return o.get(o.logins, string(d)+"/"+result)
}

// Replays is the number of repeated signatures of dialect d with action.
func (o *Observer) Replays(d caddyauth.Dialect, action string) int {
	return o.get(o.replays, string(d)+"/"+action)
}

// Created is the number of sessions created in dialect d.
func (o *Observer) Created(d caddyauth.Dialect) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.created[d]
}

// Ended is the number of sessions of dialect d ended for reason.
func (o *Observer) Ended(d caddyauth.Dialect, reason string) int {
	return o.get(o.ended, string(d)+"/"+reason)
}

// EndedTotal is the number of sessions of any dialect ended for reason.
func (o *Observer) EndedTotal(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for k, v := range o.ended {
		if strings.HasSuffix(k, "/"+reason) {
			n += v
		}
	}
	return n
}

// StoreErrors is the number of failed store operations op.
func (o *Observer) StoreErrors(op string) int { return o.get(o.storeErrs, op) }

// CacheLookups returns the key-cache hits and misses.
func (o *Observer) CacheLookups() (hits, misses int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits, o.misses
}

// Events returns a copy of every audit event so far.
func (o *Observer) Events() []caddyauth.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]caddyauth.Event(nil), o.events...)
}

// EventsOf returns the audit events of one type.
func (o *Observer) EventsOf(typ string) []caddyauth.Event {
	var out []caddyauth.Event
	for _, e := range o.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Counts returns every counter, for failure messages.
func (o *Observer) Counts() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("logins %v replays %v created %v ended %v store errors %v", o.logins, o.replays,
		o.created, o.ended, o.storeErrs)
}

// Store wraps a memory store: it counts writes, and each Fail flag makes the
// matching operation answer caddyauth.ErrUnavailable, as a store that cannot
// answer does (REL-01).
type Store struct {
	*memory.Store
	Creates, Touches, Deletes                       atomic.Int64
	FailGets, FailCreates, FailTouches, FailDeletes atomic.Bool
	// Updates counts UpdateSession calls; FailTokenGets and FailUpdates
	// fail SessionByToken and UpdateSession (token sessions).
	Updates                    atomic.Int64
	FailTokenGets, FailUpdates atomic.Bool
}

// NewStore returns a Store over a fresh memory store.
func NewStore() *Store { return &Store{Store: memory.New()} }

func unavailable(op string) error {
	return fmt.Errorf("enginetest %s: %w: connection refused", op, caddyauth.ErrUnavailable)
}

// CreateSession counts, then fails or delegates.
func (s *Store) CreateSession(ctx context.Context, sess *caddyauth.Session) error {
	s.Creates.Add(1)
	if s.FailCreates.Load() {
		return unavailable("create")
	}
	return s.Store.CreateSession(ctx, sess)
}

// GetSession fails or delegates.
func (s *Store) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	if s.FailGets.Load() {
		return nil, unavailable("get")
	}
	return s.Store.GetSession(ctx, id)
}

// TouchSession counts, then fails or delegates.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, idle time.Time) error {
	s.Touches.Add(1)
	if s.FailTouches.Load() {
		return unavailable("touch")
	}
	return s.Store.TouchSession(ctx, id, lastSeen, idle)
}

// DeleteSession counts, then fails or delegates.
func (s *Store) DeleteSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	s.Deletes.Add(1)
	if s.FailDeletes.Load() {
		return nil, unavailable("delete")
	}
	return s.Store.DeleteSession(ctx, id)
}

// SessionByToken fails or delegates.
func (s *Store) SessionByToken(ctx context.Context, digest string) (*caddyauth.Session, error) {
	if s.FailTokenGets.Load() {
		return nil, unavailable("session by token")
	}
	return s.Store.SessionByToken(ctx, digest)
}

// UpdateSession counts, then fails or delegates.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*caddyauth.Session) error) (*caddyauth.Session, error) {
	s.Updates.Add(1)
	if s.FailUpdates.Load() {
		return nil, unavailable("update")
	}
	return s.Store.UpdateSession(ctx, id, fn)
}

// Interface guards
var (
	_ caddyauth.Observer = (*Observer)(nil)
	_ caddyauth.Store    = (*Store)(nil)
)

// AbuseOrNone returns the first of abuse, or NoAbuse() when none is given:
// for environment builders whose tests opt in to abuse controls.
func AbuseOrNone(abuse ...*caddyauth.Abuse) *caddyauth.Abuse {
	if len(abuse) > 0 {
		return abuse[0]
	}
	return NoAbuse()
}

// NoAbuse returns abuse controls that are all off, for tests that log in
// more often than the default throttles allow and are not about them.
func NoAbuse() *caddyauth.Abuse {
	return caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: -1, IPRate: -1, GlobalRate: -1,
		MaxSignatureFailures: -1}, nil, nil)
}
