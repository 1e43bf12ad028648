package caddyauth_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

func liveSession(id string, deadline time.Time) *caddyauth.Session {
	return &caddyauth.Session{ID: id, UserID: 1, Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey,
		Secret: []byte("k"), Created: epoch, LastSeen: epoch, AbsoluteDeadline: deadline}
}

func fillWith(s *caddyauth.Session, calls *atomic.Int64) func(context.Context) (*caddyauth.Session, error) {
	return func(context.Context) (*caddyauth.Session, error) {
		calls.Add(1)
		return s, nil
	}
}

func TestKeyCacheHitMissCounts(t *testing.T) {
	c := caddyauth.NewKeyCache(10, 30*time.Second)
	ctx := context.Background()
	var calls atomic.Int64
	s := liveSession("1", epoch.Add(time.Hour))
	got, hit, err := c.Load(ctx, "1", epoch, fillWith(s, &calls))
	if err != nil || hit || got != s {
		t.Fatalf("first Load = (%p, %v, %v), want (s, miss, nil)", got, hit, err)
	}
	for i := 0; i < 3; i++ {
		got, hit, err = c.Load(ctx, "1", epoch.Add(time.Duration(i)*time.Second), fillWith(s, &calls))
		if err != nil || !hit || got != s {
			t.Fatalf("Load %d = (%p, %v, %v), want a hit", i, got, hit, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("fill called %d times, want 1", calls.Load())
	}
	if h, m := c.Stats(); h != 3 || m != 1 {
		t.Fatalf("Stats = %d hits, %d misses; want 3, 1", h, m)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d", c.Len())
	}
	// A failed fill is a miss and is not cached.
	boom := errors.New("boom")
	if _, _, err := c.Load(ctx, "2", epoch, func(context.Context) (*caddyauth.Session, error) { return nil, boom }); err != boom {
		t.Fatalf("Load with failing fill: %v", err)
	}
	if h, m := c.Stats(); h != 3 || m != 2 || c.Len() != 1 {
		t.Fatalf("after failed fill: Stats %d/%d Len %d", h, m, c.Len())
	}
}

// REL-03: an entry lives at most the TTL.
func TestKeyCacheTTL_REL03(t *testing.T) {
	const ttl = 30 * time.Second
	c := caddyauth.NewKeyCache(10, ttl)
	var calls atomic.Int64
	s := liveSession("1", epoch.Add(time.Hour))
	if _, _, err := c.Load(context.Background(), "1", epoch, fillWith(s, &calls)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {time.Second, true}, {ttl - time.Nanosecond, true},
		{ttl, false}, {ttl + time.Nanosecond, false}, {time.Hour, false},
	} {
		if _, ok := c.Get("1", epoch.Add(tc.at)); ok != tc.want {
			t.Errorf("Get at +%s = %v, want %v", tc.at, ok, tc.want)
		}
	}
	// After the TTL, Load goes back to the fill.
	if _, hit, _ := c.Load(context.Background(), "1", epoch.Add(ttl), fillWith(s, &calls)); hit || calls.Load() != 2 {
		t.Fatalf("Load after TTL: hit=%v fills=%d, want a miss and a second fill", hit, calls.Load())
	}
	if _, ok := c.Get("1", epoch.Add(2*ttl-time.Nanosecond)); !ok {
		t.Fatal("refilled entry not fresh for a new TTL")
	}
}

// An entry never outlives the session's deadline, idle or absolute.
func TestKeyCacheNeverOutlivesSession(t *testing.T) {
	c := caddyauth.NewKeyCache(10, 30*time.Second)
	var calls atomic.Int64
	abs := liveSession("abs", epoch.Add(5*time.Second))
	idle := liveSession("idle", epoch.Add(time.Hour))
	idle.IdleDeadline = epoch.Add(7 * time.Second)
	for _, s := range []*caddyauth.Session{abs, idle} {
		if _, _, err := c.Load(context.Background(), s.ID, epoch, fillWith(s, &calls)); err != nil {
			t.Fatal(err)
		}
		d := s.Deadline()
		if _, ok := c.Get(s.ID, d.Add(-time.Nanosecond)); !ok {
			t.Errorf("%s: miss just before the deadline", s.ID)
		}
		if _, ok := c.Get(s.ID, d); ok {
			t.Errorf("%s: hit at the session deadline %s", s.ID, d)
		}
	}
}

// REL-09: a Remove (logout) that runs while a fill is reading the store wins:
// the session the fill read is not cached afterwards.
func TestKeyCacheRemoveDuringFill_REL09(t *testing.T) {
	c := caddyauth.NewKeyCache(10, 30*time.Second)
	entered := make(chan struct{})
	release := make(chan struct{})
	s := liveSession("1", epoch.Add(time.Hour))
	done := make(chan error, 1)
	go func() {
		got, _, err := c.Load(context.Background(), "1", epoch, func(context.Context) (*caddyauth.Session, error) {
			close(entered)
			<-release
			return s, nil
		})
		if err == nil && got != s {
			err = errors.New("Load returned another session")
		}
		done <- err
	}()
	<-entered
	c.Remove("1")
	// A Load after the Remove, while the old fill is still running, must not
	// join that flight (it read the store before the logout): it starts its
	// own fill and sees the session gone.
	late := make(chan error, 1)
	go func() {
		_, _, err := c.Load(context.Background(), "1", epoch, func(context.Context) (*caddyauth.Session, error) {
			return nil, caddyauth.ErrUnknownSession
		})
		late <- err
	}()
	select {
	case err := <-late:
		if !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("Load after Remove during a fill = %v, want ErrUnknownSession", err)
		}
	case <-time.After(2 * time.Second):
		close(release)
		t.Fatalf("Load after Remove joined the in-flight fill (got %v)", <-late)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight Load: %v", err)
	}
	if _, ok := c.Get("1", epoch); ok {
		t.Fatal("session removed during its fill was cached anyway")
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d, want 0", c.Len())
	}
	// A Load after the Remove starts a new fill (Forget), not the old flight.
	var calls atomic.Int64
	if _, hit, err := c.Load(context.Background(), "1", epoch, fillWith(s, &calls)); err != nil || hit || calls.Load() != 1 {
		t.Fatalf("Load after Remove: hit=%v fills=%d err=%v", hit, calls.Load(), err)
	}
}

// Same for Purge (lost invalidation channel).
func TestKeyCachePurgeDuringFill_REL09(t *testing.T) {
	c := caddyauth.NewKeyCache(10, 30*time.Second)
	var calls atomic.Int64
	if _, _, err := c.Load(context.Background(), "other", epoch, fillWith(liveSession("other", epoch.Add(time.Hour)), &calls)); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Load(context.Background(), "1", epoch, func(context.Context) (*caddyauth.Session, error) {
			close(entered)
			<-release
			return liveSession("1", epoch.Add(time.Hour)), nil
		})
	}()
	<-entered
	c.Purge()
	close(release)
	<-done
	if c.Len() != 0 {
		t.Fatalf("Len = %d after Purge during a fill, want 0", c.Len())
	}
}

// REL-11: unknown ids are never cached, so guessing cannot fill the cache.
func TestKeyCacheUnknownNotCached_REL11(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var b [8]byte
	for i := 0; i < 10000; i++ {
		rand.Read(b[:])
		id := strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>1|1, 10)
		if _, err := f.m.Session(ctx, id); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Fatalf("unknown id %s: %v", id, err)
		}
	}
	if f.cache.Len() != 0 {
		t.Fatalf("cache Len = %d after 10 000 unknown ids, want 0", f.cache.Len())
	}
	if f.store.Gets() != 10000 {
		t.Fatalf("store Gets = %d, want 10000 (each unknown id is a miss)", f.store.Gets())
	}
	// Expired sessions are not cached either.
	f.start(t, "99", []byte("k"), time.Second, 0)
	f.clock.Advance(time.Second)
	if _, err := f.m.Session(ctx, "99"); !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Fatal(err)
	}
	if f.cache.Len() != 0 {
		t.Fatalf("expired session cached: Len %d", f.cache.Len())
	}
}

// The cache is bounded by its size.
func TestKeyCacheBounded_REL11(t *testing.T) {
	c := caddyauth.NewKeyCache(100, time.Minute)
	var calls atomic.Int64
	for i := 0; i < 300; i++ {
		id := strconv.Itoa(i)
		if _, _, err := c.Load(context.Background(), id, epoch, fillWith(liveSession(id, epoch.Add(time.Hour)), &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() > 100 {
		t.Fatalf("Len = %d, want <= 100", c.Len())
	}
	c.Resize(10)
	if c.Len() > 10 {
		t.Fatalf("Len = %d after Resize(10)", c.Len())
	}
}

func TestKeyCacheDisabled(t *testing.T) {
	c := caddyauth.NewKeyCache(0, time.Minute)
	var calls atomic.Int64
	s := liveSession("1", epoch.Add(time.Hour))
	for i := 0; i < 3; i++ {
		if _, hit, err := c.Load(context.Background(), "1", epoch, fillWith(s, &calls)); err != nil || hit {
			t.Fatalf("Load %d: hit=%v err=%v", i, hit, err)
		}
	}
	if calls.Load() != 3 || c.Len() != 0 {
		t.Fatalf("disabled cache: fills %d Len %d", calls.Load(), c.Len())
	}
	c.Remove("1")
	c.Purge()
	c.Resize(5)
}

// Misses for one id are collapsed: 50 concurrent Loads cost one fill.
func TestKeyCacheSingleflight(t *testing.T) {
	c := caddyauth.NewKeyCache(10, 30*time.Second)
	const n = 50
	var calls atomic.Int64
	release := make(chan struct{})
	s := liveSession("1", epoch.Add(time.Hour))
	fill := func(context.Context) (*caddyauth.Session, error) {
		calls.Add(1)
		<-release
		return s, nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _, err := c.Load(context.Background(), "1", epoch, fill)
			if err == nil && got != s {
				err = errors.New("wrong session")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	// Every caller has missed (counted before joining the flight); give the
	// last ones a moment to reach singleflight, then let the fill finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, m := c.Stats(); m == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("callers did not all miss")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("fill called %d times for %d concurrent Loads, want 1", calls.Load(), n)
	}
}
