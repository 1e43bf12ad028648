// Package memory is an in-process caddyauth.Store: a map behind a mutex.
//
// It is meant for unit tests and throwaway setups (`store memory`): nothing
// survives a restart, and nothing is shared between gateway nodes.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

var _ caddyauth.Store = (*Store)(nil)

// Store keeps sessions in memory. It is safe for concurrent use. The zero
// value is not usable; call New.
type Store struct {
	// gets is outside mu so counting never contends with writers.
	gets atomic.Uint64

	mu       sync.RWMutex
	closed   bool
	sessions map[string]*caddyauth.Session
	// byUser indexes session ids by owner so revoke-all and list do not
	// scan every session.
	byUser map[int64]map[string]struct{}
	counts map[caddyauth.Dialect]int
	// byToken maps token digests to session ids.
	byToken map[string]string

	users users
}

// New returns an empty store.
func New() *Store {
	return &Store{
		sessions: make(map[string]*caddyauth.Session),
		byUser:   make(map[int64]map[string]struct{}),
		counts:   make(map[caddyauth.Dialect]int),
		byToken:  make(map[string]string),
		users:    newUsers(),
	}
}

// Gets returns how many times GetSession was called, whatever its outcome.
// Tests use it to prove a malformed credential never reached the store
// (SEC-36).
func (s *Store) Gets() uint64 { return s.gets.Load() }

// check returns the error a method must answer before touching the maps. It
// must be called with mu held.
func (s *Store) check(ctx context.Context, op string) error {
	if s.closed {
		return fmt.Errorf("memory: %s: %w", op, caddyauth.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w: %w", op, caddyauth.ErrUnavailable, err)
	}
	return nil
}

// CreateSession stores a copy of sess. ErrExists if its ID is taken.
func (s *Store) CreateSession(ctx context.Context, sess *caddyauth.Session) error {
	if sess == nil || sess.ID == "" || sess.Dialect == "" {
		// Refused like the bolt store does, so tests on memory do not pass
		// with sessions production would refuse.
		return errors.New("memory: create session: session without id or dialect")
	}
	c := normalize(clone(sess))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "create session"); err != nil {
		return err
	}
	if _, ok := s.sessions[c.ID]; ok {
		return fmt.Errorf("memory: create session: %w", caddyauth.ErrExists)
	}
	if err := s.tokensFree(c, "create session"); err != nil {
		return err
	}
	for _, tk := range c.Tokens {
		s.byToken[tk.Digest] = c.ID
	}
	s.sessions[c.ID] = c
	ids := s.byUser[c.UserID]
	if ids == nil {
		ids = make(map[string]struct{})
		s.byUser[c.UserID] = ids
	}
	ids[c.ID] = struct{}{}
	s.counts[c.Dialect]++
	return nil
}

// GetSession returns a copy of session id, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	s.gets.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "get session"); err != nil {
		return nil, err
	}
	sess, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("memory: get session: %w", caddyauth.ErrNotFound)
	}
	return clone(sess), nil
}

// TouchSession sets LastSeen and IdleDeadline of session id.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, idleDeadline time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "touch session"); err != nil {
		return err
	}
	sess, ok := s.sessions[id]
	if !ok {
		return fmt.Errorf("memory: touch session: %w", caddyauth.ErrNotFound)
	}
	// In place is safe: readers copy under RLock, and the value never
	// leaves the store while it is in the map.
	sess.LastSeen, sess.IdleDeadline = lastSeen.UTC(), idleDeadline.UTC()
	return nil
}

// DeleteSession removes session id and returns it, or ErrNotFound.
func (s *Store) DeleteSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "delete session"); err != nil {
		return nil, err
	}
	sess, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("memory: delete session: %w", caddyauth.ErrNotFound)
	}
	s.remove(sess)
	// The stored value is no longer reachable from the store, so it can be
	// handed out without a copy.
	return sess, nil
}

// DeleteUserSessions removes every session of userID and returns them.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) ([]*caddyauth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "delete user sessions"); err != nil {
		return nil, err
	}
	ids := s.byUser[userID]
	out := make([]*caddyauth.Session, 0, len(ids))
	for id := range ids {
		sess := s.sessions[id]
		out = append(out, sess)
		s.remove(sess)
	}
	return out, nil
}

// ListUserSessions returns copies of userID's sessions.
func (s *Store) ListUserSessions(ctx context.Context, userID int64) ([]*caddyauth.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "list user sessions"); err != nil {
		return nil, err
	}
	ids := s.byUser[userID]
	out := make([]*caddyauth.Session, 0, len(ids))
	for id := range ids {
		out = append(out, clone(s.sessions[id]))
	}
	return out, nil
}

// PurgeExpired removes and returns every session whose Deadline() is at or
// before now. It scans all sessions: fine for the sizes this store is for.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) ([]*caddyauth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "purge expired"); err != nil {
		return nil, err
	}
	var out []*caddyauth.Session
	for _, sess := range s.sessions {
		if !sess.Deadline().After(now) {
			out = append(out, sess)
			s.remove(sess) // deleting during range is defined for Go maps
		}
	}
	return out, nil
}

// CountSessions returns the number of stored sessions per dialect. Dialects
// without sessions are absent.
func (s *Store) CountSessions(ctx context.Context) (map[caddyauth.Dialect]int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "count sessions"); err != nil {
		return nil, err
	}
	out := make(map[caddyauth.Dialect]int, len(s.counts))
	for d, n := range s.counts {
		out[d] = n
	}
	return out, nil
}

// Ping reports whether the store is open; memory cannot fail otherwise.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(ctx, "ping")
}

// Close drops every session. Later calls return ErrClosed; closing twice
// is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.sessions, s.byUser, s.counts, s.byToken = nil, nil, nil, nil
	s.users = users{}
	return nil
}

// remove deletes sess from the map and both indexes. It must be called with
// mu held for writing.
func (s *Store) remove(sess *caddyauth.Session) {
	delete(s.sessions, sess.ID)
	for _, tk := range sess.Tokens {
		if s.byToken[tk.Digest] == sess.ID {
			delete(s.byToken, tk.Digest)
		}
	}
	if ids := s.byUser[sess.UserID]; ids != nil {
		delete(ids, sess.ID)
		if len(ids) == 0 {
			delete(s.byUser, sess.UserID)
		}
	}
	if s.counts[sess.Dialect]--; s.counts[sess.Dialect] <= 0 {
		delete(s.counts, sess.Dialect)
	}
}

// clone deep-copies sess. Unlike Session.Clone it keeps an empty non-nil
// Secret non-nil, so the store returns every field exactly as given.
func clone(sess *caddyauth.Session) *caddyauth.Session {
	c := sess.Clone()
	c.Secret = bytes.Clone(sess.Secret)
	return c
}

// normalize converts every time to UTC, which also drops the monotonic
// reading, so what the store returns does not depend on the writer's zone
// and compares with == as well as Equal.
func normalize(s *caddyauth.Session) *caddyauth.Session {
	s.Created = s.Created.UTC()
	s.LastSeen = s.LastSeen.UTC()
	s.IdleDeadline = s.IdleDeadline.UTC()
	s.AbsoluteDeadline = s.AbsoluteDeadline.UTC()
	for i := range s.Tokens {
		s.Tokens[i].Expires = s.Tokens[i].Expires.UTC()
		s.Tokens[i].RotatedAt = s.Tokens[i].RotatedAt.UTC()
	}
	return s
}
