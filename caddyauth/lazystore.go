package caddyauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// LazyStore opens its underlying Store on first use. Caddy provisions modules
// even for `caddy validate`, possibly in a second process while the server
// runs; opening a bolt file there would block on its lock. So provisioning
// only builds a LazyStore, and the store is opened by the first request or by
// the app's start-up probe. A failed open is retried on the next use.
type LazyStore struct {
	name string
	open func() (Store, error)
	// timeout, when > 0, bounds every call but PurgeExpired (see bound).
	timeout time.Duration

	mu     sync.Mutex
	s      atomic.Pointer[storeBox]
	closed bool
}

type storeBox struct{ Store }

// NewLazyStore returns a LazyStore that calls open when first needed. name
// identifies the store in errors ("bolt /var/lib/…/sessions.db").
func NewLazyStore(name string, open func() (Store, error)) *LazyStore {
	return &LazyStore{name: name, open: open}
}

// Open opens the store now if it is not open yet.
func (l *LazyStore) Open() (Store, error) {
	if b := l.s.Load(); b != nil {
		return b.Store, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if b := l.s.Load(); b != nil {
		return b.Store, nil
	}
	s, err := l.open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.name, err)
	}
	l.s.Store(&storeBox{s})
	return s, nil
}

// Opened returns the store if it is open, without opening it.
func (l *LazyStore) Opened() Store {
	if b := l.s.Load(); b != nil {
		return b.Store
	}
	return nil
}

// CreateSession implements Store.
func (l *LazyStore) CreateSession(ctx context.Context, s *Session) error {
	st, err := l.Open()
	if err != nil {
		return err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.CreateSession(ctx, s)
}

// GetSession implements Store.
func (l *LazyStore) GetSession(ctx context.Context, id string) (*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.GetSession(ctx, id)
}

// TouchSession implements Store.
func (l *LazyStore) TouchSession(ctx context.Context, id string, lastSeen, idle time.Time) error {
	st, err := l.Open()
	if err != nil {
		return err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.TouchSession(ctx, id, lastSeen, idle)
}

// DeleteSession implements Store.
func (l *LazyStore) DeleteSession(ctx context.Context, id string) (*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.DeleteSession(ctx, id)
}

// DeleteUserSessions implements Store.
func (l *LazyStore) DeleteUserSessions(ctx context.Context, userID int64) ([]*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.DeleteUserSessions(ctx, userID)
}

// ListUserSessions implements Store.
func (l *LazyStore) ListUserSessions(ctx context.Context, userID int64) ([]*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.ListUserSessions(ctx, userID)
}

// PurgeExpired implements Store. It is not bounded by the call timeout: a
// sweep of a large store may take longer than a request's lookup, and only
// the janitor calls it, with its own deadline.
func (l *LazyStore) PurgeExpired(ctx context.Context, now time.Time) ([]*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	return st.PurgeExpired(ctx, now)
}

// CountSessions implements Store.
func (l *LazyStore) CountSessions(ctx context.Context) (map[Dialect]int, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return st.CountSessions(ctx)
}

// Ping opens the store if needed and probes it.
func (l *LazyStore) Ping(ctx context.Context) error {
	st, err := l.Open()
	if err != nil {
		return err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	if err := st.Ping(ctx); err != nil {
		return fmt.Errorf("probe %s: %w", l.name, err)
	}
	return nil
}

// Close closes the store if it was opened; later opens fail.
func (l *LazyStore) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if b := l.s.Swap(nil); b != nil {
		return b.Store.Close()
	}
	return nil
}

var _ Store = (*LazyStore)(nil)

// bound puts the per-call deadline on ctx, if the store has one. A store
// shared over the network (redis) can stall; its client bounds each command,
// but one call may wait for a pooled connection, dial and read in turn, so
// the call as a whole gets one deadline and the request that made it is
// answered 503 within about that long (REL-10).
func (l *LazyStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.timeout)
}

// via opens the store and calls f on it, within the call timeout.
func via[T any](ctx context.Context, l *LazyStore, f func(context.Context, Store) (T, error)) (T, error) {
	st, err := l.Open()
	if err != nil {
		var zero T
		return zero, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return f(ctx, st)
}

// SessionByToken implements Store.
func (l *LazyStore) SessionByToken(ctx context.Context, digest string) (*Session, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*Session, error) { return st.SessionByToken(ctx, digest) })
}

// UpdateSession implements Store.
func (l *LazyStore) UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*Session, error) { return st.UpdateSession(ctx, id, fn) })
}

// CreateUser implements Store.
func (l *LazyStore) CreateUser(ctx context.Context, u *User) (*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*User, error) { return st.CreateUser(ctx, u) })
}

// UserByID implements Store.
func (l *LazyStore) UserByID(ctx context.Context, id int64) (*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*User, error) { return st.UserByID(ctx, id) })
}

// UserByEmail implements Store.
func (l *LazyStore) UserByEmail(ctx context.Context, email string) (*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*User, error) { return st.UserByEmail(ctx, email) })
}

// UserByUsername implements Store.
func (l *LazyStore) UserByUsername(ctx context.Context, name string) (*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*User, error) { return st.UserByUsername(ctx, name) })
}

// UserByKeyID implements Store.
func (l *LazyStore) UserByKeyID(ctx context.Context, keyID string) (*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*User, error) { return st.UserByKeyID(ctx, keyID) })
}

// UpdateUser implements Store.
func (l *LazyStore) UpdateUser(ctx context.Context, id int64, fn func(*User) error) (*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) (*User, error) { return st.UpdateUser(ctx, id, fn) })
}

// ListUsers implements Store.
func (l *LazyStore) ListUsers(ctx context.Context, afterID int64, limit int) ([]*User, error) {
	return via(ctx, l, func(ctx context.Context, st Store) ([]*User, error) { return st.ListUsers(ctx, afterID, limit) })
}

// SharedStore is a Store that several gateway nodes share (redis): it also
// holds their Ephemeral state and carries cache invalidations between them.
type SharedStore interface {
	Store
	Ephemeral
	Invalidator
}

// SharedLazyStore is a LazyStore over a SharedStore that forwards Ephemeral
// and Invalidator too. NewManager finds the Invalidator by a type assertion
// on the Store it is given, which a plain LazyStore would hide: then ended
// sessions would never be published and other nodes would serve them until
// their cache TTL ran out.
type SharedLazyStore struct {
	*LazyStore
}

var _ SharedStore = (*SharedLazyStore)(nil)

// NewSharedLazyStore returns a SharedLazyStore that calls open when first
// needed. callTimeout, when > 0, bounds every call except PurgeExpired and
// SubscribeInvalidations, so a stalled store turns into an error (503) in
// bounded time instead of a pinned request.
func NewSharedLazyStore(name string, callTimeout time.Duration, open func() (SharedStore, error)) *SharedLazyStore {
	l := NewLazyStore(name, func() (Store, error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		return st, nil
	})
	l.timeout = callTimeout
	return &SharedLazyStore{l}
}

// viaShared opens the store and calls f on it as a SharedStore, within the
// call timeout.
func viaShared[T any](ctx context.Context, s *SharedLazyStore, f func(context.Context, SharedStore) (T, error)) (T, error) {
	return via(ctx, s.LazyStore, func(ctx context.Context, st Store) (T, error) {
		// NewSharedLazyStore only ever stores what its open returned.
		return f(ctx, st.(SharedStore))
	})
}

// PutOnce implements Ephemeral.
func (s *SharedLazyStore) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := viaShared(ctx, s, func(ctx context.Context, st SharedStore) (struct{}, error) {
		return struct{}{}, st.PutOnce(ctx, key, value, ttl)
	})
	return err
}

// TakeOnce implements Ephemeral.
func (s *SharedLazyStore) TakeOnce(ctx context.Context, key string) ([]byte, error) {
	return viaShared(ctx, s, func(ctx context.Context, st SharedStore) ([]byte, error) { return st.TakeOnce(ctx, key) })
}

// SeenOnce implements Ephemeral (and so ReplayGuard).
func (s *SharedLazyStore) SeenOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return viaShared(ctx, s, func(ctx context.Context, st SharedStore) (bool, error) { return st.SeenOnce(ctx, key, ttl) })
}

// failures is a count and the time left in its window.
type failures struct {
	count int64
	left  time.Duration
}

// AddFailure implements Ephemeral.
func (s *SharedLazyStore) AddFailure(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	f, err := viaShared(ctx, s, func(ctx context.Context, st SharedStore) (failures, error) {
		n, left, err := st.AddFailure(ctx, key, window)
		return failures{n, left}, err
	})
	return f.count, f.left, err
}

// Failures implements Ephemeral.
func (s *SharedLazyStore) Failures(ctx context.Context, key string) (int64, time.Duration, error) {
	f, err := viaShared(ctx, s, func(ctx context.Context, st SharedStore) (failures, error) {
		n, left, err := st.Failures(ctx, key)
		return failures{n, left}, err
	})
	return f.count, f.left, err
}

// ResetFailures implements Ephemeral.
func (s *SharedLazyStore) ResetFailures(ctx context.Context, key string) error {
	_, err := viaShared(ctx, s, func(ctx context.Context, st SharedStore) (struct{}, error) {
		return struct{}{}, st.ResetFailures(ctx, key)
	})
	return err
}

// PublishInvalidation implements Invalidator.
func (s *SharedLazyStore) PublishInvalidation(ctx context.Context, keys []string) error {
	_, err := viaShared(ctx, s, func(ctx context.Context, st SharedStore) (struct{}, error) {
		return struct{}{}, st.PublishInvalidation(ctx, keys)
	})
	return err
}

// Backoff between attempts to open the store for a subscription.
const (
	minSubscribeRetry = 50 * time.Millisecond
	maxSubscribeRetry = 2 * time.Second
)

// SubscribeInvalidations implements Invalidator. It opens the store first,
// retrying with a growing pause while it cannot be opened, and returns when
// ctx ends or the store is closed.
func (s *SharedLazyStore) SubscribeInvalidations(ctx context.Context, drop func(keys []string), flush func()) {
	for wait := minSubscribeRetry; ctx.Err() == nil; wait = min(2*wait, maxSubscribeRetry) {
		st, err := s.Open()
		if err == nil {
			st.(SharedStore).SubscribeInvalidations(ctx, drop, flush)
			return
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}
