package caddyauth

import (
	"context"
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
	return st.CreateSession(ctx, s)
}

// GetSession implements Store.
func (l *LazyStore) GetSession(ctx context.Context, id string) (*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	return st.GetSession(ctx, id)
}

// TouchSession implements Store.
func (l *LazyStore) TouchSession(ctx context.Context, id string, lastSeen, idle time.Time) error {
	st, err := l.Open()
	if err != nil {
		return err
	}
	return st.TouchSession(ctx, id, lastSeen, idle)
}

// DeleteSession implements Store.
func (l *LazyStore) DeleteSession(ctx context.Context, id string) (*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	return st.DeleteSession(ctx, id)
}

// DeleteUserSessions implements Store.
func (l *LazyStore) DeleteUserSessions(ctx context.Context, userID int64) ([]*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	return st.DeleteUserSessions(ctx, userID)
}

// ListUserSessions implements Store.
func (l *LazyStore) ListUserSessions(ctx context.Context, userID int64) ([]*Session, error) {
	st, err := l.Open()
	if err != nil {
		return nil, err
	}
	return st.ListUserSessions(ctx, userID)
}

// PurgeExpired implements Store.
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
	return st.CountSessions(ctx)
}

// Ping opens the store if needed and probes it.
func (l *LazyStore) Ping(ctx context.Context) error {
	st, err := l.Open()
	if err != nil {
		return err
	}
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

// via opens the store and calls f on it.
func via[T any](l *LazyStore, f func(Store) (T, error)) (T, error) {
	st, err := l.Open()
	if err != nil {
		var zero T
		return zero, err
	}
	return f(st)
}

// SessionByToken implements Store.
func (l *LazyStore) SessionByToken(ctx context.Context, digest string) (*Session, error) {
	return via(l, func(st Store) (*Session, error) { return st.SessionByToken(ctx, digest) })
}

// UpdateSession implements Store.
func (l *LazyStore) UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error) {
	return via(l, func(st Store) (*Session, error) { return st.UpdateSession(ctx, id, fn) })
}

// CreateUser implements Store.
func (l *LazyStore) CreateUser(ctx context.Context, u *User) (*User, error) {
	return via(l, func(st Store) (*User, error) { return st.CreateUser(ctx, u) })
}

// UserByID implements Store.
func (l *LazyStore) UserByID(ctx context.Context, id int64) (*User, error) {
	return via(l, func(st Store) (*User, error) { return st.UserByID(ctx, id) })
}

// UserByEmail implements Store.
func (l *LazyStore) UserByEmail(ctx context.Context, email string) (*User, error) {
	return via(l, func(st Store) (*User, error) { return st.UserByEmail(ctx, email) })
}

// UserByUsername implements Store.
func (l *LazyStore) UserByUsername(ctx context.Context, name string) (*User, error) {
	return via(l, func(st Store) (*User, error) { return st.UserByUsername(ctx, name) })
}

// UserByKeyID implements Store.
func (l *LazyStore) UserByKeyID(ctx context.Context, keyID string) (*User, error) {
	return via(l, func(st Store) (*User, error) { return st.UserByKeyID(ctx, keyID) })
}

// UpdateUser implements Store.
func (l *LazyStore) UpdateUser(ctx context.Context, id int64, fn func(*User) error) (*User, error) {
	return via(l, func(st Store) (*User, error) { return st.UpdateUser(ctx, id, fn) })
}

// ListUsers implements Store.
func (l *LazyStore) ListUsers(ctx context.Context, afterID int64, limit int) ([]*User, error) {
	return via(l, func(st Store) ([]*User, error) { return st.ListUsers(ctx, afterID, limit) })
}
