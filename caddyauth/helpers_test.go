package caddyauth_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/password"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

// cheapParams keep the KDF fast in unit tests; SEC-01 checks the shipped
// defaults elsewhere.
var cheapParams = password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

// epoch is the fake clock's starting point in every test.
var epoch = time.Unix(1700000000, 0).UTC()

func newCheapHasher(t testing.TB) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(password.Config{Params: cheapParams, AllowWeakParams: true})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

// hashPassword makes a PHC string with cheapParams. password.Hash refuses
// params below the SEC-01 floor, so the hash is made by a throwaway Hasher
// (whose KDF count is irrelevant to the test's own Hasher).
func hashPassword(t testing.TB, pw string) string {
	t.Helper()
	phc, err := newCheapHasher(t).Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("hash %q: %v", pw, err)
	}
	return phc
}

func newSealer(t testing.TB) *caddyauth.Sealer {
	t.Helper()
	s, err := caddyauth.NewSealer(caddyauth.NewMasterKey())
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

// countingObserver records every Observer call, for the metrics-relevant
// assertions. It is safe for concurrent use.
type countingObserver struct {
	mu        sync.Mutex
	logins    map[string]int // "dialect/result"
	replays   map[string]int // "dialect/action"
	created   map[caddyauth.Dialect]int
	ended     map[string]int // reason
	storeErrs map[string]int
	hits      int
	misses    int
	events    []caddyauth.Event
}

func newObserver() *countingObserver {
	return &countingObserver{logins: map[string]int{}, replays: map[string]int{},
		created: map[caddyauth.Dialect]int{}, ended: map[string]int{}, storeErrs: map[string]int{}}
}

func (o *countingObserver) Audit(e caddyauth.Event) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

func (o *countingObserver) CacheLookup(hit bool) {
	o.mu.Lock()
	if hit {
		o.hits++
	} else {
		o.misses++
	}
	o.mu.Unlock()
}

func (o *countingObserver) SessionCreated(d caddyauth.Dialect) {
	o.mu.Lock()
	o.created[d]++
	o.mu.Unlock()
}

func (o *countingObserver) SessionEnded(_ caddyauth.Dialect, reason string) {
	o.mu.Lock()
	o.ended[reason]++
	o.mu.Unlock()
}

func (o *countingObserver) StoreError(op string) {
	o.mu.Lock()
	o.storeErrs[op]++
	o.mu.Unlock()
}

func (o *countingObserver) Login(d caddyauth.Dialect, result string) {
	o.mu.Lock()
	o.logins[string(d)+"/"+result]++
	o.mu.Unlock()
}

func (o *countingObserver) Replay(d caddyauth.Dialect, action string) {
	o.mu.Lock()
	o.replays[string(d)+"/"+action]++
	o.mu.Unlock()
}

func (o *countingObserver) endedCount(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ended[reason]
}

func (o *countingObserver) createdCount(d caddyauth.Dialect) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.created[d]
}

func (o *countingObserver) storeErrCount(op string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.storeErrs[op]
}

var _ caddyauth.Observer = (*countingObserver)(nil)

// flakyStore wraps the memory store: it counts writes and can be told to
// fail reads with ErrUnavailable (a store that cannot answer, REL-01).
type flakyStore struct {
	*memory.Store
	failGets atomic.Bool
	creates  atomic.Int64
	deletes  atomic.Int64
}

func (f *flakyStore) CreateSession(ctx context.Context, s *caddyauth.Session) error {
	f.creates.Add(1)
	return f.Store.CreateSession(ctx, s)
}

func (f *flakyStore) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	if f.failGets.Load() {
		return nil, fmt.Errorf("flaky: %w: connection refused", caddyauth.ErrUnavailable)
	}
	return f.Store.GetSession(ctx, id)
}

func (f *flakyStore) DeleteSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	f.deletes.Add(1)
	return f.Store.DeleteSession(ctx, id)
}

var _ caddyauth.Store = (*flakyStore)(nil)

// Test users (user ids are positive, emails differ in case from lookups on
// purpose in some tests).
const (
	alicePW    = "correct horse battery staple"
	disabledPW = "disabled but right"
)

// emojiPW is 64 emoji (256 bytes of UTF-8): SEC-02 says any Unicode of at
// least 64 characters is accepted.
var emojiPW = func() string {
	s := ""
	for i := 0; i < 64; i++ {
		s += string(rune(0x1F600 + i%64))
	}
	return s
}()

type fixture struct {
	m      *caddyauth.Manager
	store  *flakyStore
	clock  *caddyauth.FakeClock
	hasher *password.Hasher
	sealer *caddyauth.Sealer
	obs    *countingObserver
	cache  *caddyauth.KeyCache
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 1, Email: "Alice@Example.com", Username: "alice", AccountNumber: "AC-0001", PasswordHash: hashPassword(t, alicePW)},
		{ID: 2, Email: "disabled@example.com", Username: "dis", AccountNumber: "AC-0002", PasswordHash: hashPassword(t, disabledPW), Disabled: true},
		{ID: 3, Email: "emoji@example.com", PasswordHash: hashPassword(t, emojiPW)},
		{ID: 4, Email: "nohash@example.com"},
	})
	if err != nil {
		t.Fatalf("NewStaticUsers: %v", err)
	}
	f := &fixture{
		store:  &flakyStore{Store: memory.New()},
		clock:  caddyauth.NewFakeClock(epoch),
		hasher: newCheapHasher(t),
		sealer: newSealer(t),
		obs:    newObserver(),
		cache:  caddyauth.NewKeyCache(1000, 30*time.Second),
	}
	f.m, err = caddyauth.NewManager(caddyauth.Config{Store: f.store, Users: users, Hasher: f.hasher,
		Sealer: f.sealer, Cache: f.cache, Clock: f.clock, Observer: f.obs})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return f
}

func (f *fixture) user(t testing.TB, id int64) *caddyauth.User {
	t.Helper()
	u, err := f.m.Users().UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("user %d: %v", id, err)
	}
	return u
}

// start creates an amatino-style session for user 1.
func (f *fixture) start(t testing.TB, id string, secret []byte, lifetime, idle time.Duration) *caddyauth.Session {
	t.Helper()
	s, err := f.m.StartSession(context.Background(), caddyauth.NewSession{User: f.user(t, 1),
		Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey, ID: id, Secret: secret,
		Lifetime: lifetime, IdleTimeout: idle})
	if err != nil {
		t.Fatalf("StartSession(%s): %v", id, err)
	}
	return s
}
