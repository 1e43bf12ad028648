package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// users holds the stored users and their unique indexes. Guarded by Store.mu.
type users struct {
	byID       map[int64]*caddyauth.User
	byEmail    map[string]int64
	byUsername map[string]int64
	byKey      map[string]int64
	maxID      int64
}

func newUsers() users {
	return users{byID: map[int64]*caddyauth.User{}, byEmail: map[string]int64{},
		byUsername: map[string]int64{}, byKey: map[string]int64{}}
}

// conflict returns ErrExists if u's email, username or a key id belongs to
// another user, or u lists one key twice.
func (us *users) conflict(u *caddyauth.User, op string) error {
	taken := func(m map[string]int64, k string) bool {
		owner, ok := m[k]
		return ok && owner != u.ID
	}
	if u.Email != "" && taken(us.byEmail, strings.ToLower(u.Email)) {
		return fmt.Errorf("memory: %s: email taken: %w", op, caddyauth.ErrExists)
	}
	if u.Username != "" && taken(us.byUsername, u.Username) {
		return fmt.Errorf("memory: %s: username taken: %w", op, caddyauth.ErrExists)
	}
	seen := map[string]struct{}{}
	for _, k := range u.PublicKeys {
		if _, dup := seen[k.ID]; dup || taken(us.byKey, k.ID) {
			return fmt.Errorf("memory: %s: public key taken: %w", op, caddyauth.ErrExists)
		}
		seen[k.ID] = struct{}{}
	}
	return nil
}

func (us *users) index(u *caddyauth.User) {
	us.byID[u.ID] = u
	if u.Email != "" {
		us.byEmail[strings.ToLower(u.Email)] = u.ID
	}
	if u.Username != "" {
		us.byUsername[u.Username] = u.ID
	}
	for _, k := range u.PublicKeys {
		us.byKey[k.ID] = u.ID
	}
	us.maxID = max(us.maxID, u.ID)
}

func (us *users) unindex(u *caddyauth.User) {
	delete(us.byID, u.ID)
	delete(us.byEmail, strings.ToLower(u.Email))
	delete(us.byUsername, u.Username)
	for _, k := range u.PublicKeys {
		delete(us.byKey, k.ID)
	}
}

func normalizeUser(u *caddyauth.User) *caddyauth.User {
	u.Created = u.Created.UTC()
	for i := range u.PublicKeys {
		u.PublicKeys[i].Added = u.PublicKeys[i].Added.UTC()
	}
	return u
}

// CreateUser stores a copy of u, assigning the next id when u.ID is 0.
func (s *Store) CreateUser(ctx context.Context, u *caddyauth.User) (*caddyauth.User, error) {
	if u == nil || u.ID < 0 {
		return nil, errors.New("memory: create user: no user or negative id")
	}
	c := normalizeUser(u.Clone())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "create user"); err != nil {
		return nil, err
	}
	if c.ID == 0 {
		c.ID = s.users.maxID + 1
	}
	if _, ok := s.users.byID[c.ID]; ok {
		return nil, fmt.Errorf("memory: create user: id taken: %w", caddyauth.ErrExists)
	}
	if err := s.users.conflict(c, "create user"); err != nil {
		return nil, err
	}
	s.users.index(c)
	return c.Clone(), nil
}

func (s *Store) userBy(ctx context.Context, op string, find func() (int64, bool)) (*caddyauth.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, op); err != nil {
		return nil, err
	}
	id, ok := find()
	if !ok {
		return nil, fmt.Errorf("memory: %s: %w", op, caddyauth.ErrNotFound)
	}
	u, ok := s.users.byID[id]
	if !ok {
		return nil, fmt.Errorf("memory: %s: %w", op, caddyauth.ErrNotFound)
	}
	return u.Clone(), nil
}

// UserByID implements caddyauth.Store.
func (s *Store) UserByID(ctx context.Context, id int64) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by id", func() (int64, bool) { return id, true })
}

// UserByEmail implements caddyauth.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by email", func() (int64, bool) {
		id, ok := s.users.byEmail[strings.ToLower(email)]
		return id, ok && email != ""
	})
}

// UserByUsername implements caddyauth.Store.
func (s *Store) UserByUsername(ctx context.Context, name string) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by username", func() (int64, bool) {
		id, ok := s.users.byUsername[name]
		return id, ok && name != ""
	})
}

// UserByKeyID implements caddyauth.Store.
func (s *Store) UserByKeyID(ctx context.Context, keyID string) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by key id", func() (int64, bool) {
		id, ok := s.users.byKey[keyID]
		return id, ok
	})
}

// UpdateUser applies fn to a copy of user id under the write lock.
func (s *Store) UpdateUser(ctx context.Context, id int64, fn func(*caddyauth.User) error) (*caddyauth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "update user"); err != nil {
		return nil, err
	}
	old, ok := s.users.byID[id]
	if !ok {
		return nil, fmt.Errorf("memory: update user: %w", caddyauth.ErrNotFound)
	}
	next := old.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	if next.ID != id {
		return nil, errors.New("memory: update user: id cannot change")
	}
	// Store a copy, not fn's argument, which fn may have kept.
	next = normalizeUser(next.Clone())
	if err := s.users.conflict(next, "update user"); err != nil {
		return nil, err
	}
	s.users.unindex(old)
	s.users.index(next)
	return next.Clone(), nil
}

// ListUsers returns up to limit users with id > afterID in id order.
func (s *Store) ListUsers(ctx context.Context, afterID int64, limit int) ([]*caddyauth.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "list users"); err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(s.users.byID))
	for id := range s.users.byID {
		if id > afterID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if limit >= 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]*caddyauth.User, len(ids))
	for i, id := range ids {
		out[i] = s.users.byID[id].Clone()
	}
	return out, nil
}
