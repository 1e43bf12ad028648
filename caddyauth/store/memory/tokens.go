package memory

import (
	"context"
	"errors"
	"fmt"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// tokensFree returns ErrExists if a token of sess is indexed to another
// session, or if sess lists one digest twice. It must be called with mu held.
func (s *Store) tokensFree(sess *caddyauth.Session, op string) error {
	seen := make(map[string]struct{}, len(sess.Tokens))
	for _, tk := range sess.Tokens {
		if tk.Digest == "" {
			return fmt.Errorf("memory: %s: token without digest", op)
		}
		if _, dup := seen[tk.Digest]; dup {
			return fmt.Errorf("memory: %s: token listed twice: %w", op, caddyauth.ErrExists)
		}
		seen[tk.Digest] = struct{}{}
		if owner, ok := s.byToken[tk.Digest]; ok && owner != sess.ID {
			return fmt.Errorf("memory: %s: token of another session: %w", op, caddyauth.ErrExists)
		}
	}
	return nil
}

// SessionByToken returns a copy of the session holding the token digest.
func (s *Store) SessionByToken(ctx context.Context, digest string) (*caddyauth.Session, error) {
	s.gets.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "session by token"); err != nil {
		return nil, err
	}
	sess, ok := s.sessions[s.byToken[digest]]
	if !ok || sess.Token(digest) == nil {
		// Also for an index entry that outlived its session: a stale
		// entry must read as "no such token", never as a nil session.
		return nil, fmt.Errorf("memory: session by token: %w", caddyauth.ErrNotFound)
	}
	return clone(sess), nil
}

// UpdateSession applies fn to a copy of session id under the write lock, so
// fn runs exactly once.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*caddyauth.Session) error) (*caddyauth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "update session"); err != nil {
		return nil, err
	}
	old, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("memory: update session: %w", caddyauth.ErrNotFound)
	}
	next := clone(old)
	if err := fn(next); err != nil {
		return nil, err
	}
	if next.ID != old.ID || next.UserID != old.UserID || next.Dialect != old.Dialect {
		return nil, errors.New("memory: update session: id, user id and dialect cannot change")
	}
	// Store a copy, not fn's argument: fn (or whoever it handed its
	// argument to) may keep the pointer and mutate it later.
	next = normalize(clone(next))
	if err := s.tokensFree(next, "update session"); err != nil {
		return nil, err
	}
	for _, tk := range old.Tokens {
		if s.byToken[tk.Digest] == id {
			delete(s.byToken, tk.Digest)
		}
	}
	for _, tk := range next.Tokens {
		s.byToken[tk.Digest] = id
	}
	s.sessions[id] = next
	return clone(next), nil
}
