package redis

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
)

// twoNodes opens two stores on one server with the same prefix: two gateway
// nodes sharing their state.
func twoNodes(t *testing.T, srv *redistest.Server) (a, b *Store) {
	t.Helper()
	a = openStore(t, srv, nil)
	b = openStore(t, srv, func(o *Options) { o.KeyPrefix = a.opts.KeyPrefix })
	return a, b
}

// A challenge issued on one node can be answered on the other, once.
func TestPutTakeOnceAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := twoNodes(t, srv)
	ctx := t.Context()

	if err := a.PutOnce(ctx, "code:c1", []byte("challenge\x00bytes"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.PutOnce(ctx, "code:c1", []byte("other"), time.Minute); !errors.Is(err, caddyauth.ErrExists) {
		t.Fatalf("second PutOnce on the other node = %v, want ErrExists", err)
	}
	got, err := b.TakeOnce(ctx, "code:c1")
	if err != nil || !bytes.Equal(got, []byte("challenge\x00bytes")) {
		t.Fatalf("TakeOnce on the other node = %q, %v; want the first value", got, err)
	}
	for _, st := range []*Store{a, b} {
		if _, err := st.TakeOnce(ctx, "code:c1"); !errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("TakeOnce after the take = %v, want ErrNotFound", err)
		}
	}
	if _, err := a.TakeOnce(ctx, "code:never"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("TakeOnce(unknown) = %v, want ErrNotFound", err)
	}
	// Once taken, the key can be used again.
	if err := a.PutOnce(ctx, "code:c1", []byte("again"), time.Minute); err != nil {
		t.Errorf("PutOnce after the take = %v", err)
	}
	// Keys of different purposes are kept apart.
	if err := a.PutOnce(ctx, "other:c1", []byte("x"), time.Minute); err != nil {
		t.Errorf("PutOnce of another purpose = %v", err)
	}
}

// Of 20 concurrent takers on two nodes, exactly one gets the value.
func TestTakeOnceExactlyOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := twoNodes(t, srv)
	ctx := t.Context()
	for round := range 5 {
		if err := a.PutOnce(ctx, "code:race", []byte{byte(round)}, time.Minute); err != nil {
			t.Fatal(err)
		}
		const takers = 20
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		start := make(chan struct{})
		for i := range takers {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				<-start
				v, err := st.TakeOnce(ctx, "code:race")
				switch {
				case err == nil:
					if !bytes.Equal(v, []byte{byte(round)}) {
						t.Errorf("taker got %v, want [%d]", v, round)
					}
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, caddyauth.ErrNotFound):
					t.Errorf("TakeOnce: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d takers got the value, want exactly 1", round, wins)
		}
	}
}

// SEC-24: the replay guard is shared: a value seen on node A is a replay on
// node B, and only one of many concurrent first sightings wins.
func TestSeenOnceSharedAcrossNodes_SEC24(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := twoNodes(t, srv)
	ctx := t.Context()

	steps := []struct {
		st   *Store
		key  string
		want bool
	}{
		{a, "replay:sig-1", true},
		{b, "replay:sig-1", false},
		{a, "replay:sig-1", false},
		{b, "replay:sig-2", true},
		{a, "replay:sig-2", false},
		{a, "nonce:sig-1", true}, // another purpose, another key
	}
	for i, s := range steps {
		first, err := s.st.SeenOnce(ctx, s.key, time.Minute)
		if err != nil || first != s.want {
			t.Fatalf("step %d: SeenOnce(%q) = %v, %v; want %v", i, s.key, first, err, s.want)
		}
	}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first int
	)
	for i := range 20 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			ok, err := st.SeenOnce(ctx, "replay:contested", time.Minute)
			if err != nil {
				t.Errorf("SeenOnce: %v", err)
			}
			if ok {
				mu.Lock()
				first++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != 1 {
		t.Errorf("%d of 20 concurrent SeenOnce calls saw the value first, want 1", first)
	}
}

// The ttl of a replay mark and of a challenge is honoured: after it, the
// key is free again.
func TestEphemeralTTL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := openStore(t, srv, nil)
	ctx := t.Context()
	admin := srv.Client()

	if _, err := st.SeenOnce(ctx, "replay:short", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := st.PutOnce(ctx, "code:short", []byte("v"), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replay mark to expire", func() bool {
		first, err := st.SeenOnce(ctx, "replay:short", time.Minute)
		return err == nil && first
	})
	eventually(t, "the challenge to expire", func() bool {
		_, err := st.TakeOnce(ctx, "code:short")
		return errors.Is(err, caddyauth.ErrNotFound)
	})
	// A long ttl is set as given (rounded up to milliseconds).
	if _, err := st.SeenOnce(ctx, "replay:long", 90*time.Second+time.Microsecond); err != nil {
		t.Fatal(err)
	}
	ttl, err := admin.PTTL(ctx, st.ephemeralKey("replay:long")).Result()
	if err != nil || ttl <= 89*time.Second || ttl > 90*time.Second+time.Millisecond {
		t.Errorf("PTTL of a 90 s replay mark = %v, %v", ttl, err)
	}
}

func TestTTLMillis(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{-time.Second, time.Millisecond},
		{0, time.Millisecond},
		{time.Microsecond, time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{time.Millisecond + 1, 2 * time.Millisecond},
		{90 * time.Second, 90 * time.Second},
	}
	for _, tc := range tests {
		if got := ttlMillis(tc.in); got != tc.want {
			t.Errorf("ttlMillis(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// Failure counters are shared between nodes, count in a fixed window that
// starts at the first failure, and start over after the window or a reset.
func TestFailureCounters(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := twoNodes(t, srv)
	ctx := t.Context()
	const window = time.Hour

	if n, left, err := a.Failures(ctx, "fail:alice"); err != nil || n != 0 || left != 0 {
		t.Fatalf("Failures before any = %d, %v, %v; want 0, 0", n, left, err)
	}
	for i := int64(1); i <= 4; i++ {
		st := a
		if i%2 == 0 {
			st = b
		}
		// Later failures must not extend the window: pass a longer one.
		n, left, err := st.AddFailure(ctx, "fail:alice", window*time.Duration(i))
		if err != nil || n != i {
			t.Fatalf("AddFailure #%d = %d, %v; want %d", i, n, err, i)
		}
		if left <= window-time.Minute || left > window {
			t.Fatalf("AddFailure #%d: %v left, want just under the first window %v", i, left, window)
		}
	}
	if n, left, err := b.Failures(ctx, "fail:alice"); err != nil || n != 4 || left <= window-time.Minute || left > window {
		t.Fatalf("Failures on the other node = %d, %v, %v; want 4 and the window", n, left, err)
	}
	if n, _, err := a.Failures(ctx, "fail:bob"); err != nil || n != 0 {
		t.Fatalf("Failures of another key = %d, %v; want 0", n, err)
	}
	if err := b.ResetFailures(ctx, "fail:alice"); err != nil {
		t.Fatal(err)
	}
	if n, left, err := a.Failures(ctx, "fail:alice"); err != nil || n != 0 || left != 0 {
		t.Fatalf("Failures after reset = %d, %v, %v; want 0, 0", n, left, err)
	}
	if n, _, err := a.AddFailure(ctx, "fail:alice", window); err != nil || n != 1 {
		t.Fatalf("AddFailure after reset = %d, %v; want 1", n, err)
	}

	// A window ends by itself; the next failure starts a new one.
	if _, _, err := a.AddFailure(ctx, "fail:carol", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failure window to end", func() bool {
		n, _, err := b.Failures(ctx, "fail:carol")
		return err == nil && n == 0
	})
	if n, left, err := b.AddFailure(ctx, "fail:carol", window); err != nil || n != 1 || left <= window-time.Minute {
		t.Fatalf("AddFailure after the window = %d, %v, %v; want 1 in a new window", n, left, err)
	}
}

// Concurrent failures on two nodes are all counted (REL-09).
func TestAddFailureConcurrent(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := twoNodes(t, srv)
	ctx := t.Context()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			if _, _, err := st.AddFailure(ctx, "fail:many", time.Hour); err != nil {
				t.Errorf("AddFailure: %v", err)
			}
		})
	}
	wg.Wait()
	if got, _, err := a.Failures(ctx, "fail:many"); err != nil || got != n {
		t.Errorf("Failures = %d, %v; want %d", got, err, n)
	}
}
