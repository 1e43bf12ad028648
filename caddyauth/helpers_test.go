package caddyauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// epoch is the fake clock's starting point in every test.
var epoch = time.Unix(1700000000, 0).UTC()

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
	store  *enginetest.Store
	clock  *caddyauth.FakeClock
	hasher *password.Hasher
	sealer *caddyauth.Sealer
	obs    *enginetest.Observer
	cache  *caddyauth.KeyCache
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 1, Email: "Alice@Example.com", Username: "alice", AccountNumber: "AC-0001", PasswordHash: enginetest.Hash(t, alicePW)},
		{ID: 2, Email: "disabled@example.com", Username: "dis", AccountNumber: "AC-0002", PasswordHash: enginetest.Hash(t, disabledPW), Disabled: true},
		{ID: 3, Email: "emoji@example.com", PasswordHash: enginetest.Hash(t, emojiPW)},
		{ID: 4, Email: "nohash@example.com"},
	})
	if err != nil {
		t.Fatalf("NewStaticUsers: %v", err)
	}
	f := &fixture{
		store:  enginetest.NewStore(),
		clock:  caddyauth.NewFakeClock(epoch),
		hasher: enginetest.CheapHasher(t),
		sealer: enginetest.NewSealer(t),
		obs:    enginetest.NewObserver(),
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
