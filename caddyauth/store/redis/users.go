package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// User key names; see the package doc for the layout.
func (s *Store) userKey(id int64) string          { return s.data + "u:" + itoa(id) }
func (s *Store) emailKey(email string) string     { return s.data + "ue:" + strings.ToLower(email) }
func (s *Store) usernameKey(name string) string   { return s.data + "un:" + name }
func (s *Store) userKeyIDKey(keyID string) string { return s.data + "uk:" + keyID }
func (s *Store) userIDsKey() string               { return s.data + "uids" }
func (s *Store) userMaxKey() string               { return s.data + "umax" }

// indexKeys lists the unique index keys u occupies (email, username, every
// public key id). ErrExists if u lists one key id twice.
func (s *Store) indexKeys(u *caddyauth.User, op string) ([]string, error) {
	var keys []string
	if u.Email != "" {
		keys = append(keys, s.emailKey(u.Email))
	}
	if u.Username != "" {
		keys = append(keys, s.usernameKey(u.Username))
	}
	seen := make(map[string]struct{}, len(u.PublicKeys))
	for _, k := range u.PublicKeys {
		if _, dup := seen[k.ID]; dup {
			return nil, fmt.Errorf("redis store: %s: public key listed twice: %w", op, caddyauth.ErrExists)
		}
		seen[k.ID] = struct{}{}
		keys = append(keys, s.userKeyIDKey(k.ID))
	}
	return keys, nil
}

// indexesFree checks, inside tx, that no user other than id holds one of
// the index keys, which must be watched already.
func (s *Store) indexesFree(ctx context.Context, op string, tx *goredis.Tx, id int64, keys []string) error {
	for _, k := range keys {
		owner, ok, err := s.get(ctx, op, tx, k)
		if err != nil {
			return err
		}
		if ok && string(owner) != itoa(id) {
			return fmt.Errorf("redis store: %s: email, username or public key taken: %w", op, caddyauth.ErrExists)
		}
	}
	return nil
}

// CreateUser stores u and returns the stored copy, assigning the next id
// when u.ID is 0. ErrExists if the id, the email (in lower case), the
// username or a public key id is taken.
func (s *Store) CreateUser(ctx context.Context, u *caddyauth.User) (*caddyauth.User, error) {
	const op = "create user"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	if u == nil || u.ID < 0 {
		return nil, fmt.Errorf("redis store: %s: no user or negative id", op)
	}
	idx, err := s.indexKeys(u, op)
	if err != nil {
		return nil, err
	}
	var out *caddyauth.User
	err = s.txn(ctx, op, func(tx *goredis.Tx) error {
		c := normalizeUser(u.Clone())
		maxID := int64(0)
		if b, ok, err := s.get(ctx, op, tx, s.userMaxKey()); err != nil {
			return err
		} else if ok {
			if maxID, err = strconv.ParseInt(string(b), 10, 64); err != nil {
				return fmt.Errorf("redis store: %s: %w: max user id", op, errCorrupt)
			}
		}
		if c.ID == 0 {
			if maxID == 1<<63-1 {
				return fmt.Errorf("redis store: %s: user ids exhausted", op)
			}
			c.ID = maxID + 1
		}
		uk := s.userKey(c.ID)
		if err := tx.Watch(ctx, uk).Err(); err != nil {
			return s.fail(op, err)
		}
		n, err := tx.Exists(ctx, uk).Result()
		if err != nil {
			return s.fail(op, err)
		}
		if n > 0 {
			return s.confirm(ctx, op, tx, fmt.Errorf("redis store: %s: id taken: %w", op, caddyauth.ErrExists))
		}
		if err := s.indexesFree(ctx, op, tx, c.ID, idx); err != nil {
			return s.confirm(ctx, op, tx, err)
		}
		rec, err := encodeUser(c)
		if err != nil {
			return fmt.Errorf("redis store: %s: %w", op, err)
		}
		out = c
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) {
			p.Set(ctx, uk, rec, 0)
			for _, k := range idx {
				p.Set(ctx, k, itoa(c.ID), 0)
			}
			p.ZAdd(ctx, s.userIDsKey(), goredis.Z{Member: userIDMember(c.ID)})
			p.Set(ctx, s.userMaxKey(), itoa(max(maxID, c.ID)), 0)
		})
	}, append([]string{s.userMaxKey()}, idx...)...)
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// readUser reads user id through c; ErrNotFound when absent.
func (s *Store) readUser(ctx context.Context, op string, c goredis.Cmdable, id int64) (*caddyauth.User, error) {
	rec, ok, err := s.get(ctx, op, c, s.userKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	u, err := decodeUser(id, rec)
	if err != nil {
		return nil, fmt.Errorf("redis store: %s: %w", op, err)
	}
	return u, nil
}

// userByIndex resolves an index key to its user. match re-checks the user
// against what was looked up, so an index entry left behind by a write in
// flight never returns the wrong user.
func (s *Store) userByIndex(ctx context.Context, op, key string, match func(*caddyauth.User) bool) (*caddyauth.User, error) {
	if err := s.begin(op); err != nil {
		return nil, err
	}
	b, ok, err := s.get(ctx, op, s.client, key)
	if err != nil {
		return nil, err
	}
	id, perr := strconv.ParseInt(string(b), 10, 64)
	if !ok || perr != nil {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	u, err := s.readUser(ctx, op, s.client, id)
	if err != nil {
		return nil, err
	}
	if !match(u) {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	return u, nil
}

// UserByID returns user id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (*caddyauth.User, error) {
	const op = "user by id"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	return s.readUser(ctx, op, s.client, id)
}

// UserByEmail returns the user whose email equals email in lower case, or
// ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*caddyauth.User, error) {
	const op = "user by email"
	if email == "" {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	return s.userByIndex(ctx, op, s.emailKey(email), func(u *caddyauth.User) bool {
		// The index key is the ToLower form; compare the same way
		// (EqualFold also folds characters ToLower keeps apart).
		return strings.ToLower(u.Email) == strings.ToLower(email) //lint:ignore SA6005 must match the index key's folding
	})
}

// UserByUsername returns the user named name, or ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, name string) (*caddyauth.User, error) {
	const op = "user by username"
	if name == "" {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	return s.userByIndex(ctx, op, s.usernameKey(name), func(u *caddyauth.User) bool { return u.Username == name })
}

// UserByKeyID returns the user holding public key id keyID, or ErrNotFound.
func (s *Store) UserByKeyID(ctx context.Context, keyID string) (*caddyauth.User, error) {
	const op = "user by key id"
	return s.userByIndex(ctx, op, s.userKeyIDKey(keyID), func(u *caddyauth.User) bool { return u.Key(keyID) != nil })
}

// UpdateUser changes user id through fn, as an optimistic transaction: fn
// may run more than once. The email, username and key indexes follow.
func (s *Store) UpdateUser(ctx context.Context, id int64, fn func(*caddyauth.User) error) (*caddyauth.User, error) {
	const op = "update user"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	var out *caddyauth.User
	err := s.txn(ctx, op, func(tx *goredis.Tx) error {
		old, err := s.readUser(ctx, op, tx, id)
		if err != nil {
			return err
		}
		next := old.Clone()
		if err := fn(next); err != nil {
			return err
		}
		if next.ID != id {
			return fmt.Errorf("redis store: %s: id cannot change", op)
		}
		normalizeUser(next)
		oldIdx, err := s.indexKeys(old, op)
		if err != nil {
			return err
		}
		newIdx, err := s.indexKeys(next, op)
		if err != nil {
			return err
		}
		held := make(map[string]bool, len(oldIdx))
		for _, k := range oldIdx {
			held[k] = true
		}
		var added []string
		wanted := make(map[string]bool, len(newIdx))
		for _, k := range newIdx {
			wanted[k] = true
			if !held[k] {
				added = append(added, k)
			}
		}
		if len(added) > 0 {
			if err := tx.Watch(ctx, added...).Err(); err != nil {
				return s.fail(op, err)
			}
			if err := s.indexesFree(ctx, op, tx, id, added); err != nil {
				return s.confirm(ctx, op, tx, err)
			}
		}
		rec, err := encodeUser(next)
		if err != nil {
			return fmt.Errorf("redis store: %s: %w", op, err)
		}
		out = next
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) {
			for _, k := range oldIdx {
				if !wanted[k] {
					p.Del(ctx, k)
				}
			}
			for _, k := range added {
				p.Set(ctx, k, itoa(id), 0)
			}
			p.Set(ctx, s.userKey(id), rec, 0)
		})
	}, s.userKey(id))
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// ListUsers returns at most limit users with id > afterID in ascending id
// order; a negative limit means no limit.
func (s *Store) ListUsers(ctx context.Context, afterID int64, limit int) ([]*caddyauth.User, error) {
	const op = "list users"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	if limit == 0 {
		return []*caddyauth.User{}, nil
	}
	rng := &goredis.ZRangeBy{Min: "-", Max: "+"}
	if afterID >= 0 {
		rng.Min = "(" + userIDMember(afterID)
	}
	if limit > 0 {
		rng.Count = int64(limit)
	}
	members, err := s.client.ZRangeByLex(ctx, s.userIDsKey(), rng).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	out := make([]*caddyauth.User, 0, len(members))
	if len(members) == 0 {
		return out, nil
	}
	ids := make([]int64, len(members))
	keys := make([]string, len(members))
	for i, m := range members {
		if ids[i], err = strconv.ParseInt(m, 10, 64); err != nil {
			return nil, fmt.Errorf("redis store: %s: %w: user id %q", op, errCorrupt, m)
		}
		keys[i] = s.userKey(ids[i])
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	for i, v := range vals {
		rec, ok := v.(string)
		if !ok {
			continue // never written so by this store; skip rather than fail the page
		}
		u, err := decodeUser(ids[i], []byte(rec))
		if err != nil {
			return nil, fmt.Errorf("redis store: %s: %w", op, err)
		}
		out = append(out, u)
	}
	return out, nil
}
