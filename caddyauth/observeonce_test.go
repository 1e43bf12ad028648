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

// With a shared guard, observations stay on the node: they never touch the
// shared guard (no round trip, no dependency on it being up), and repeats on
// this node are still reported.
func TestObserveOnceSharedGuardStaysLocal(t *testing.T) {
	g := &remoteGuard{seen: map[string]bool{}, hold: make(chan struct{})} // would block any call
	g.fail.Store(true)
	m := newObserveManager(t, g, nil)
	if m.LocalReplay() {
		t.Fatal("a remote guard reported as local")
	}
	n := 0
	if !m.ObserveOnce(context.Background(), "k", time.Minute, func() { n++ }) {
		t.Fatal("first observation reported as a repeat")
	}
	if m.ObserveOnce(context.Background(), "k", time.Minute, func() { n++ }) || n != 1 {
		t.Fatalf("repeat not reported (observed %d)", n)
	}
	if len(g.seen) != 0 {
		t.Fatal("observe-only counting reached the shared guard")
	}
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
