package caddyauth_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

// sharedFake is a SharedStore on one node: a memory store and a
// LocalEphemeral, with an Invalidator that records what it is asked, and
// GetSession and PurgeExpired that can be told to hang until their context
// ends (a stalled Redis).
type sharedFake struct {
	*memory.Store
	*caddyauth.LocalEphemeral

	hangGets atomic.Bool

	mu          sync.Mutex
	published   [][]string
	deadlines   map[string]bool // method → its context had a deadline
	subscribers int
}

var _ caddyauth.SharedStore = (*sharedFake)(nil)

func newSharedFake() *sharedFake {
	return &sharedFake{Store: memory.New(), LocalEphemeral: caddyauth.NewLocalEphemeral(0, nil),
		deadlines: map[string]bool{}}
}

func (f *sharedFake) note(method string, ctx context.Context) {
	_, ok := ctx.Deadline()
	f.mu.Lock()
	f.deadlines[method] = ok
	f.mu.Unlock()
}

func (f *sharedFake) hadDeadline(method string) (deadline, called bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	deadline, called = f.deadlines[method]
	return deadline, called
}

func (f *sharedFake) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	f.note("GetSession", ctx)
	if f.hangGets.Load() {
		<-ctx.Done()
		return nil, errors.Join(caddyauth.ErrUnavailable, ctx.Err())
	}
	return f.Store.GetSession(ctx, id)
}

func (f *sharedFake) PurgeExpired(ctx context.Context, now time.Time) ([]*caddyauth.Session, error) {
	f.note("PurgeExpired", ctx)
	return f.Store.PurgeExpired(ctx, now)
}

func (f *sharedFake) SeenOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	f.note("SeenOnce", ctx)
	return f.LocalEphemeral.SeenOnce(ctx, key, ttl)
}

func (f *sharedFake) PublishInvalidation(ctx context.Context, keys []string) error {
	f.note("PublishInvalidation", ctx)
	f.mu.Lock()
	f.published = append(f.published, keys)
	f.mu.Unlock()
	return nil
}

func (f *sharedFake) SubscribeInvalidations(ctx context.Context, drop func([]string), flush func()) {
	f.note("SubscribeInvalidations", ctx)
	f.mu.Lock()
	f.subscribers++
	f.mu.Unlock()
	flush()
	<-ctx.Done()
}

func (f *sharedFake) wasPublished(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.published, func(keys []string) bool { return slices.Contains(keys, key) })
}

// newSharedManager is a Manager on a SharedLazyStore over fake, with call
// timeout timeout.
func newSharedManager(t *testing.T, fake *sharedFake, timeout time.Duration) (*caddyauth.Manager, *caddyauth.SharedLazyStore) {
	t.Helper()
	sls := caddyauth.NewSharedLazyStore("fake shared store", timeout, func() (caddyauth.SharedStore, error) { return fake, nil })
	t.Cleanup(func() { sls.Close() })
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 1, Email: "a@example.com", PasswordHash: enginetest.Hash(t, "pw-pw-pw-pw")}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := caddyauth.NewManager(caddyauth.Config{Store: sls, Users: users, Hasher: enginetest.CheapHasher(t),
		Sealer: enginetest.NewSealer(t), Ephemeral: sls})
	if err != nil {
		t.Fatal(err)
	}
	return m, sls
}

func startShared(t *testing.T, m *caddyauth.Manager, id string) {
	t.Helper()
	if _, err := m.StartSession(context.Background(), caddyauth.NewSession{User: &caddyauth.User{ID: 1},
		Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey, ID: id, Secret: []byte("k"), Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

// TestSharedLazyStorePublishes: a Manager given a lazily opened shared
// store still sees its Invalidator and publishes ended sessions (SEC-10
// across nodes, REL-04), and uses its Ephemeral state as the replay guard
// (SEC-24).
func TestSharedLazyStorePublishes(t *testing.T) {
	fake := newSharedFake()
	m, sls := newSharedManager(t, fake, time.Second)
	ctx := context.Background()
	startShared(t, m, "1")
	if _, err := m.EndSession(ctx, "1", "logout"); err != nil {
		t.Fatal(err)
	}
	if !fake.wasPublished("1") {
		t.Fatal("ended session not published through the SharedLazyStore")
	}
	if first, err := m.SeenOnce(ctx, "replay:x", time.Minute); err != nil || !first {
		t.Fatalf("SeenOnce: %v %v", first, err)
	}
	if first, _ := fake.LocalEphemeral.SeenOnce(ctx, "replay:x", time.Minute); first {
		t.Fatal("the replay mark did not reach the shared store")
	}
	if err := sls.PutOnce(ctx, "code:c", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := fake.TakeOnce(ctx, "code:c"); err != nil || string(v) != "v" {
		t.Fatalf("PutOnce not forwarded: %q %v", v, err)
	}
	if n, _, err := sls.AddFailure(ctx, "fail:a", time.Minute); err != nil || n != 1 {
		t.Fatalf("AddFailure: %d %v", n, err)
	}
	if n, left, err := sls.Failures(ctx, "fail:a"); err != nil || n != 1 || left <= 0 {
		t.Fatalf("Failures: %d %v %v", n, left, err)
	}
	if err := sls.ResetFailures(ctx, "fail:a"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := fake.Failures(ctx, "fail:a"); n != 0 {
		t.Fatalf("ResetFailures not forwarded: %d left", n)
	}
}

// TestLazyStoreCallTimeout: with a call timeout, a store call that would
// hang on a stalled store returns ErrUnavailable on its own (REL-10), while
// the janitor's sweep and the subscription keep the caller's context.
func TestLazyStoreCallTimeoutREL10(t *testing.T) {
	fake := newSharedFake()
	m, sls := newSharedManager(t, fake, 50*time.Millisecond)
	startShared(t, m, "2")
	fake.hangGets.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := m.Session(context.Background(), "2")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, caddyauth.ErrUnavailable) {
			t.Fatalf("stalled lookup: %v, want ErrUnavailable", err)
		}
	case <-time.After(15 * time.Second): // hang guard, not a timing assertion
		t.Fatal("a lookup on a stalled store did not return: no call timeout")
	}
	fake.hangGets.Store(false)

	if _, err := m.SeenOnce(context.Background(), "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := sls.PurgeExpired(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	subDone, subscribed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(subDone)
		sls.SubscribeInvalidations(ctx, func([]string) {}, func() { close(subscribed) })
	}()
	select {
	case <-subscribed:
	case <-time.After(15 * time.Second): // hang guard
		t.Fatal("subscription never started")
	}
	for _, tt := range []struct {
		method       string
		wantDeadline bool
	}{{"GetSession", true}, {"SeenOnce", true}, {"PurgeExpired", false}, {"SubscribeInvalidations", false}} {
		deadline, called := fake.hadDeadline(tt.method)
		if !called || deadline != tt.wantDeadline {
			t.Errorf("%s: called %v, deadline %v; want a deadline: %v", tt.method, called, deadline, tt.wantDeadline)
		}
	}
	cancel()
	<-subDone

	// Without a timeout (bolt, memory) the caller's context is passed on
	// as it is.
	plain := newSharedFake()
	l := caddyauth.NewLazyStore("plain", func() (caddyauth.Store, error) { return plain, nil })
	if _, err := l.GetSession(context.Background(), "none"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Fatalf("GetSession: %v", err)
	}
	if deadline, _ := plain.hadDeadline("GetSession"); deadline {
		t.Error("a LazyStore without a call timeout added a deadline")
	}
}

// TestSharedLazyStoreSubscribeRetriesOpen: the subscription waits for a
// store that cannot be opened yet, and ends when the store is closed.
func TestSharedLazyStoreSubscribeRetriesOpen(t *testing.T) {
	fake := newSharedFake()
	var opens atomic.Int64
	sls := caddyauth.NewSharedLazyStore("flaky", time.Second, func() (caddyauth.SharedStore, error) {
		if opens.Add(1) < 3 {
			return nil, caddyauth.ErrUnavailable
		}
		return fake, nil
	})
	flushed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sls.SubscribeInvalidations(ctx, func([]string) {}, func() { flushed <- struct{}{} })
	}()
	select {
	case <-flushed:
	case <-time.After(15 * time.Second): // hang guard
		t.Fatalf("never subscribed after %d opens", opens.Load())
	}
	if opens.Load() != 3 {
		t.Errorf("opened %d times, want 3 (two failures, then success)", opens.Load())
	}
	cancel()
	<-done

	closed := caddyauth.NewSharedLazyStore("closed", 0, func() (caddyauth.SharedStore, error) { return fake, nil })
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		closed.SubscribeInvalidations(context.Background(), func([]string) {}, func() {})
	}()
	select {
	case <-ended:
	case <-time.After(15 * time.Second): // hang guard
		t.Fatal("subscription on a closed store did not return")
	}
}
