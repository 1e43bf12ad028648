package caddyauth_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// remoteGuard is a shared replay guard stand-in: it remembers keys, and can
// be made to fail or to hold every call until released.
type remoteGuard struct {
	mu   sync.Mutex
	seen map[string]bool
	fail atomic.Bool
	hold chan struct{}
}

func (g *remoteGuard) SeenOnce(ctx context.Context, key string, _ time.Duration) (bool, error) {
	if g.hold != nil {
		select {
		case <-g.hold:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if g.fail.Load() {
		return false, caddyauth.ErrUnavailable
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	first := !g.seen[key]
	g.seen[key] = true
	return first, nil
}

func newObserveManager(t *testing.T, g caddyauth.ReplayGuard, obs caddyauth.Observer) *caddyauth.Manager {
	t.Helper()
	static, _ := caddyauth.NewStaticUsers(nil)
	m, err := caddyauth.NewManager(caddyauth.Config{Store: enginetest.NewStore(), Users: static,
		Hasher: enginetest.CheapHasher(t), Sealer: enginetest.NewSealer(t), Replay: g, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// With a shared guard, an observation never waits for the guard and never
// fails the request; repeats are still counted, failures counted as store
// errors.
func TestObserveOnceSharedGuard(t *testing.T) {
	g := &remoteGuard{seen: map[string]bool{}, hold: make(chan struct{})}
	obs := enginetest.NewObserver()
	m := newObserveManager(t, g, obs)
	if m.LocalReplay() {
		t.Fatal("a remote guard reported as local")
	}
	var observed atomic.Int32
	for range 2 {
		// The guard holds every call: ObserveOnce must return anyway.
		if !m.ObserveOnce(context.Background(), "k", time.Minute, func() { observed.Add(1) }) {
			t.Fatal("background observation reported a repeat synchronously")
		}
	}
	close(g.hold)
	waitFor(t, func() bool { return observed.Load() == 1 })

	g.fail.Store(true)
	m.ObserveOnce(context.Background(), "k2", time.Minute, func() {})
	waitFor(t, func() bool { return obs.StoreErrors("seen_once") == 1 })
}

// With the in-memory guard it runs inline and reports the repeat.
func TestObserveOnceLocalGuard(t *testing.T) {
	m := newObserveManager(t, nil, nil)
	if !m.LocalReplay() {
		t.Fatal("the default guard is not local")
	}
	n := 0
	if !m.ObserveOnce(context.Background(), "k", time.Minute, func() { n++ }) {
		t.Fatal("first observation reported as a repeat")
	}
	if m.ObserveOnce(context.Background(), "k", time.Minute, func() { n++ }) || n != 1 {
		t.Fatalf("repeat not reported inline (observed %d)", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s (hang guard)")
		}
	}
}
