package plugin

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/redis"
	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
)

// testMasterKey is a valid master_key (32 bytes, base64).
var testMasterKey = base64StdEncode([]byte("0123456789abcdef0123456789abcdef"))

// redisApp is an App on srv's Redis with the test master key.
func redisApp(srv *redistest.Server) *App {
	return &App{MasterKey: testMasterKey, Hash: cheapHash,
		Store: &StoreConfig{Backend: "redis", Redis: &RedisConfig{Addresses: []string{srv.Addr()}, Password: srv.Password()}}}
}

// startApp provisions, validates and starts a; the test's cleanup stops
// and cleans it up.
func startApp(t *testing.T, a *App) {
	t.Helper()
	provisionApp(t, a)
	if err := a.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { a.Stop() })
}

// waitFor polls cond until it holds or a generous bound passes. It asserts
// an outcome, never a duration.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisStoreValidate(t *testing.T) {
	d := func(s string) caddy.Duration {
		v, err := caddy.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return caddy.Duration(v)
	}
	tests := []struct {
		name    string
		app     App
		wantErr string // "" = valid
	}{
		{name: "defaults", app: App{MasterKey: "{env.K}", Store: &StoreConfig{Backend: "redis"}}},
		{name: "full", app: App{MasterKey: "{env.K}", PurgeInterval: d("2m"), Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{Addresses: []string{"10.0.0.5:6379", "{env.REDIS_ADDR}"}, MasterName: "mymaster",
				DB: 2, Username: "gw", Password: "{env.REDIS_PASSWORD}", TLS: true, KeyPrefix: "gw1:",
				DialTimeout: d("1s"), ReadTimeout: d("250ms"), WriteTimeout: d("250ms"), PoolSize: 20,
				Channel: "gw1:inv", Retention: d("5m")}}}},
		{name: "no master key", app: App{Store: &StoreConfig{Backend: "redis"}}, wantErr: "master_key is required"},
		{name: "redis settings with bolt", app: App{Store: &StoreConfig{Backend: "bolt", Redis: &RedisConfig{}}},
			wantErr: "need backend redis"},
		{name: "path with redis", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis", Path: "/x.db"}},
			wantErr: "path is a bolt setting"},
		{name: "unknown backend", app: App{Store: &StoreConfig{Backend: "postgres"}}, wantErr: "want bolt, memory or redis"},
		{name: "empty address", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{Addresses: []string{""}}}}, wantErr: "empty address"},
		{name: "address without port", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{Addresses: []string{"redis.internal"}}}}, wantErr: "want host:port"},
		{name: "negative read timeout", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{ReadTimeout: -1}}}, wantErr: "read_timeout"},
		{name: "negative dial timeout", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{DialTimeout: -1}}}, wantErr: "dial_timeout"},
		{name: "negative write timeout", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{WriteTimeout: -1}}}, wantErr: "write_timeout"},
		{name: "retention below purge interval", app: App{MasterKey: "k", PurgeInterval: d("10m"),
			Store: &StoreConfig{Backend: "redis", Redis: &RedisConfig{Retention: d("5m")}}}, wantErr: "must exceed purge_interval"},
		{name: "default retention equal to purge interval", app: App{MasterKey: "k", PurgeInterval: d("10m"),
			Store: &StoreConfig{Backend: "redis"}}, wantErr: "must exceed purge_interval"},
		{name: "retention below default purge interval", app: App{MasterKey: "k",
			Store: &StoreConfig{Backend: "redis", Redis: &RedisConfig{Retention: d("30s")}}}, wantErr: "must exceed purge_interval"},
		{name: "key prefix with hash tag", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{KeyPrefix: "{sg}:"}}}, wantErr: "key_prefix"},
		{name: "key prefix of colons", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{KeyPrefix: "::"}}}, wantErr: "key_prefix"},
		{name: "db in a cluster", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{Cluster: true, DB: 1}}}, wantErr: "only db 0"},
		{name: "sentinel and cluster", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{Cluster: true, MasterName: "m"}}}, wantErr: "exclude each other"},
		{name: "negative db", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{DB: -1}}}, wantErr: "negative"},
		{name: "negative pool", app: App{MasterKey: "k", Store: &StoreConfig{Backend: "redis",
			Redis: &RedisConfig{PoolSize: -1}}}, wantErr: "pool_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.app.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestRedisPoolKey: the store's identity is its Redis, database and key
// prefix, with defaults filled in, and nothing else.
func TestRedisPoolKey(t *testing.T) {
	base := RedisConfig{Addresses: []string{"127.0.0.1:6379"}}
	same := []RedisConfig{{}, {Addresses: []string{"127.0.0.1:6379"}, KeyPrefix: "sessiongate:"},
		{Addresses: []string{"127.0.0.1:6379"}, Password: "other", ReadTimeout: 1, PoolSize: 3}}
	other := []RedisConfig{{Addresses: []string{"127.0.0.1:6380"}}, {Addresses: []string{"127.0.0.1:6379"}, DB: 1},
		{Addresses: []string{"127.0.0.1:6379"}, KeyPrefix: "gw2:"}, {Addresses: []string{"127.0.0.1:6379"}, MasterName: "m"}}
	for _, rc := range same {
		if rc.poolKey() != base.poolKey() {
			t.Errorf("%+v: key %q, want %q", rc, rc.poolKey(), base.poolKey())
		}
	}
	for _, rc := range other {
		if rc.poolKey() == base.poolKey() {
			t.Errorf("%+v: same key as %+v", rc, base)
		}
		if !strings.HasPrefix(rc.poolKey(), "redis:") {
			t.Errorf("key %q does not start with redis:", rc.poolKey())
		}
	}
}

// TestRedisProvisionConnectsNowhere: provisioning and validating (all that
// `caddy validate` does) opens no connection to Redis; Start does, and
// fails when Redis cannot be reached (REL-01, REL-08).
func TestRedisProvisionConnectsNowhere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close() // not Redis: every probe fails
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })

	a := &App{MasterKey: testMasterKey, Hash: cheapHash,
		Store: &StoreConfig{Backend: "redis", Redis: &RedisConfig{Addresses: []string{ln.Addr().String()}}}}
	provisionApp(t, a)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("provisioning opened %d connections to Redis", n)
	}
	err = a.Start()
	if err == nil {
		t.Fatal("start succeeded against a server that is not Redis")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) || !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Fatalf("start error %q does not name the store or is not ErrUnavailable", err)
	}
	if accepted.Load() == 0 {
		t.Fatal("start did not probe Redis")
	}
}

// TestRedisStartWrongPassword: a wrong password fails the config load with
// a message naming the redis store and never the password (REL-01).
func TestRedisStartWrongPasswordREL01(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "right-password-" + t.Name()})
	const wrong = "wrong-password-canary-8d1f"
	t.Setenv("SG_TEST_REDIS_PASSWORD", wrong)
	a := redisApp(srv)
	a.Store.Redis.Password = "{env.SG_TEST_REDIS_PASSWORD}"
	provisionApp(t, a)
	err := a.Start()
	if err == nil {
		t.Fatal("start succeeded with a wrong redis password")
	}
	msg := err.Error()
	t.Logf("start error: %s", msg)
	if !strings.Contains(msg, "redis") || !strings.Contains(msg, srv.Addr()) {
		t.Errorf("error %q does not name the redis store", msg)
	}
	if strings.Contains(msg, wrong) || strings.Contains(msg, srv.Password()) {
		t.Errorf("error %q contains a password", msg)
	}

	// The right password from the same placeholder starts.
	t.Setenv("SG_TEST_REDIS_PASSWORD", srv.Password())
	b := redisApp(srv)
	b.Store.Redis.Password = "{env.SG_TEST_REDIS_PASSWORD}"
	b.Store.Redis.KeyPrefix = "other:" // another pool entry than a's
	startApp(t, b)
}

// TestRedisBackendWiring: with store redis, the Manager publishes ended
// sessions, applies other nodes' invalidations to its cache, flushes the
// cache on every (re)subscription and counts it (REL-04), shares the replay
// guard and challenges through Redis (SEC-24), and stops the subscription
// when the last config is cleaned up.
func TestRedisBackendWiringREL04SEC24(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	flushes0 := testutil.ToFloat64(cacheFlushes)
	a := redisApp(srv)
	startApp(t, a)
	m := a.Manager()
	ctx := t.Context()
	waitFor(t, "the first subscription's flush", func() bool { return testutil.ToFloat64(cacheFlushes) >= flushes0+1 })

	// The other node: a second store on the same Redis, key prefix and
	// channel, with its own subscription.
	other, err := redis.Open(ctx, redis.Options{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	var (
		mu   sync.Mutex
		seen [][]string
		subs int
	)
	subCtx, stopSub := context.WithCancel(context.Background())
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		other.SubscribeInvalidations(subCtx, func(keys []string) {
			mu.Lock()
			seen = append(seen, keys)
			mu.Unlock()
		}, func() { mu.Lock(); subs++; mu.Unlock() })
	}()
	t.Cleanup(func() { stopSub(); <-subDone })
	waitFor(t, "the other node's subscription", func() bool { mu.Lock(); defer mu.Unlock(); return subs > 0 })

	// A login confirms its user once the session is stored, so the user
	// must exist.
	user, err := m.CreateUser(ctx, caddyauth.NewUser{ID: 42, Username: "user42"})
	if err != nil {
		t.Fatal(err)
	}
	start := func(id string) {
		t.Helper()
		if _, err := m.StartSession(ctx, caddyauth.NewSession{User: user, Dialect: caddyauth.DialectAmatino,
			Kind: caddyauth.KindHMACKey, ID: id, Secret: []byte("k"), Lifetime: time.Hour}); err != nil {
			t.Fatalf("start session %s: %v", id, err)
		}
		if _, err := m.Session(ctx, id); err != nil {
			t.Fatalf("session %s: %v", id, err)
		}
		if _, ok := m.Cache().Get(id, time.Now()); !ok {
			t.Fatalf("session %s not cached", id)
		}
	}

	// Another node's logout drops the entry here.
	start("1001")
	if got, err := other.GetSession(ctx, "1001"); err != nil || got.UserID != 42 {
		t.Fatalf("the other node does not see the session: %v %v", got, err)
	}
	if err := other.PublishInvalidation(ctx, []string{"1001"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the invalidation to drop the cache entry", func() bool {
		_, ok := m.Cache().Get("1001", time.Now())
		return !ok
	})

	// A logout here is published to the other node: the Manager sees the
	// Invalidator through the lazily opened store.
	start("1002")
	if _, err := m.EndSession(ctx, "1002", "logout"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other node to receive the logout", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(seen, func(keys []string) bool { return slices.Contains(keys, "1002") })
	})

	// A cut subscription flushes the whole cache when it is back.
	start("1003")
	before := testutil.ToFloat64(cacheFlushes)
	if err := srv.Client().Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resubscription's flush", func() bool { return testutil.ToFloat64(cacheFlushes) >= before+1 })
	if _, ok := m.Cache().Get("1003", time.Now()); ok {
		t.Error("cache entry survived the resubscription")
	}

	// Replay marks and challenges are in Redis: the other node sees them.
	if first, err := m.SeenOnce(ctx, "amatino\x00x\x00sig", time.Minute); err != nil || !first {
		t.Fatalf("first SeenOnce: %v %v", first, err)
	}
	if first, err := other.SeenOnce(ctx, "amatino\x00x\x00sig", time.Minute); err != nil || first {
		t.Fatalf("other node's SeenOnce of the same mark: first=%v err=%v, want false (SEC-24)", first, err)
	}
	if err := m.Ephemeral().PutOnce(ctx, "code:abc", []byte("alice"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := other.TakeOnce(ctx, "code:abc"); err != nil || string(v) != "alice" {
		t.Fatalf("other node's TakeOnce: %q %v", v, err)
	}

	// The last config gone, the subscription ends and the store closes.
	be := a.be
	a.Stop()
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-be.subDone:
	case <-time.After(15 * time.Second): // hang guard, not a timing assertion
		t.Fatal("subscription still running after cleanup")
	}
	if be.store.Opened() != nil {
		t.Fatal("store still open after cleanup")
	}
}

// TestRedisStalledIsUnavailable: with Redis stopped (SIGSTOP), a session
// lookup that misses the cache and a login's session write fail as
// ErrUnavailable (503), never as unknown; after SIGCONT the session is
// there (REL-01, REL-10).
func TestRedisStalledIsUnavailableREL01REL10(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := redisApp(srv)
	a.Store.Redis.ReadTimeout = caddy.Duration(200 * time.Millisecond)
	startApp(t, a)
	m := a.Manager()
	ctx := t.Context()
	user, err := m.CreateUser(ctx, caddyauth.NewUser{ID: 7, Username: "user7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartSession(ctx, caddyauth.NewSession{User: user, Dialect: caddyauth.DialectAmatino,
		Kind: caddyauth.KindHMACKey, ID: "77", Secret: []byte("k"), Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for _, call := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"session lookup", func(ctx context.Context) error { _, err := m.Session(ctx, "77"); return err }},
		{"login", func(ctx context.Context) error {
			_, err := m.StartSession(ctx, caddyauth.NewSession{User: user, Dialect: caddyauth.DialectAmatino,
				Kind: caddyauth.KindHMACKey, ID: "78", Secret: []byte("k"), Lifetime: time.Hour})
			return err
		}},
		{"replay guard", func(ctx context.Context) error { _, err := m.SeenOnce(ctx, "k", time.Minute); return err }},
	} {
		done := make(chan error, 1)
		// No deadline of our own: the store's call timeout must end it.
		go func() { done <- call.do(context.Background()) }()
		select {
		case err := <-done:
			if !errors.Is(err, caddyauth.ErrUnavailable) {
				t.Errorf("%s with Redis stalled: %v, want ErrUnavailable", call.name, err)
			}
		case <-time.After(15 * time.Second): // hang guard
			t.Fatalf("%s with Redis stalled did not return", call.name)
		}
	}
	srv.Resume()
	resumed = true
	waitFor(t, "the session after Redis resumed", func() bool {
		s, err := m.Session(ctx, "77")
		return err == nil && s.UserID == 7
	})
	if _, err := m.Store().GetSession(ctx, "78"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("login during the stall left a session (or the lookup failed): %v", err)
	}
}

// TestRedisReloadSharesBackend: a reload provisions a second config on the
// same Redis before the first is cleaned up; both share one backend with
// one subscription, which ends only with the last config (REL-07).
func TestRedisReloadSharesBackendREL07(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	oldCfg := redisApp(srv)
	startApp(t, oldCfg)
	newCfg := redisApp(srv)
	newCfg.Store.Redis.ReadTimeout = caddy.Duration(time.Second) // logged: applies after a restart
	startApp(t, newCfg)
	if newCfg.be != oldCfg.be {
		t.Fatal("reloaded config got a different backend for the same Redis")
	}
	be := newCfg.be
	oldCfg.Stop()
	if err := oldCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-be.subDone:
		t.Fatal("subscription ended while the new config still uses the store")
	default:
	}
	if err := newCfg.Manager().Store().Ping(t.Context()); err != nil {
		t.Fatalf("store unusable after the old config's cleanup: %v", err)
	}
	newCfg.Stop()
	if err := newCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-be.subDone:
	case <-time.After(15 * time.Second): // hang guard
		t.Fatal("subscription still running after the last cleanup")
	}
}
