package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// checkUser refuses a user bbolt cannot index: keys over maxIDLen, and an
// empty public key id (bbolt has no empty keys; an empty email or username
// is simply not indexed).
func checkUser(u *caddyauth.User) error {
	if len(u.Email) > maxIDLen || len(u.Username) > maxIDLen {
		return fmt.Errorf("email or username longer than %d bytes", maxIDLen)
	}
	for _, k := range u.PublicKeys {
		if k.ID == "" || len(k.ID) > maxIDLen {
			return fmt.Errorf("public key id empty or longer than %d bytes", maxIDLen)
		}
	}
	return nil
}

// userIndexKeys are the index entries of one user, bucket by bucket.
type userIndexKeys struct {
	email, name []byte // nil when the field is empty
	keys        [][]byte
}

func indexKeysOf(u *caddyauth.User) userIndexKeys {
	var k userIndexKeys
	if u.Email != "" {
		k.email = []byte(strings.ToLower(u.Email))
	}
	if u.Username != "" {
		k.name = []byte(u.Username)
	}
	for _, pk := range u.PublicKeys {
		k.keys = append(k.keys, []byte(pk.ID))
	}
	return k
}

// indexUser points u's index entries at idKey, or returns ErrExists if one
// belongs to another user or u lists a key id twice; the caller's
// transaction then rolls back.
func indexUser(b *buckets, idKey []byte, k userIndexKeys) error {
	put := func(bk *bbolt.Bucket, key []byte, what string) error {
		if owner := bk.Get(key); owner != nil && !bytes.Equal(owner, idKey) {
			return fmt.Errorf("%s taken: %w", what, caddyauth.ErrExists)
		}
		return bk.Put(key, idKey)
	}
	if k.email != nil {
		if err := put(b.userEmail, k.email, "email"); err != nil {
			return err
		}
	}
	if k.name != nil {
		if err := put(b.userName, k.name, "username"); err != nil {
			return err
		}
	}
	seen := make(map[string]struct{}, len(k.keys))
	for _, key := range k.keys {
		if _, dup := seen[string(key)]; dup {
			return fmt.Errorf("public key listed twice: %w", caddyauth.ErrExists)
		}
		seen[string(key)] = struct{}{}
		if err := put(b.userKey, key, "public key"); err != nil {
			return err
		}
	}
	return nil
}

// unindexUser drops the entries of k that point at idKey.
func unindexUser(b *buckets, idKey []byte, k userIndexKeys) error {
	del := func(bk *bbolt.Bucket, key []byte) error {
		if owner := bk.Get(key); owner != nil && bytes.Equal(owner, idKey) {
			return bk.Delete(key)
		}
		return nil
	}
	if k.email != nil {
		if err := del(b.userEmail, k.email); err != nil {
			return err
		}
	}
	if k.name != nil {
		if err := del(b.userName, k.name); err != nil {
			return err
		}
	}
	for _, key := range k.keys {
		if err := del(b.userKey, key); err != nil {
			return err
		}
	}
	return nil
}

// getUser reads and decodes the user under idKey.
func getUser(b *buckets, idKey []byte) (*caddyauth.User, error) {
	if len(idKey) != 8 {
		return nil, fmt.Errorf("%w: bad user index entry", caddyauth.ErrUnavailable)
	}
	rec := b.users.Get(idKey)
	if rec == nil {
		return nil, caddyauth.ErrNotFound
	}
	u, err := decodeUser(bitsInt64(binary.BigEndian.Uint64(idKey)), rec)
	if err != nil {
		// Unavailable, not NotFound, as for sessions (REL-01).
		return nil, fmt.Errorf("%w: %w", caddyauth.ErrUnavailable, err)
	}
	return u, nil
}

// CreateUser stores u, assigning the next id when u.ID is 0, and returns
// the stored copy.
func (s *Store) CreateUser(ctx context.Context, u *caddyauth.User) (*caddyauth.User, error) {
	if u == nil || u.ID < 0 {
		return nil, errors.New("bolt: create user: no user or negative id")
	}
	if err := checkUser(u); err != nil {
		return nil, fmt.Errorf("bolt: create user: %w", err)
	}
	// Snapshot u before the transaction: the caller may reuse it.
	c := u.Clone()
	var out *caddyauth.User
	err := s.run(ctx, "create user", true, func(b *buckets) error {
		id := c.ID
		seq := b.users.Sequence()
		if id == 0 {
			// Past every id assigned (the sequence) and every id stored
			// (the last key), so an explicit id never gets handed out again.
			last := seq
			if k, _ := b.users.Cursor().Last(); len(k) == 8 {
				last = max(last, binary.BigEndian.Uint64(k))
			}
			if last >= math.MaxInt64 {
				return fmt.Errorf("%w: user ids exhausted", caddyauth.ErrUnavailable)
			}
			id = bitsInt64(last) + 1
		}
		if err := b.users.SetSequence(max(seq, int64Bits(id))); err != nil { // id > 0: checked above or assigned
			return err
		}
		idKey := userIDKey(id)
		if b.users.Get(idKey) != nil {
			return fmt.Errorf("id taken: %w", caddyauth.ErrExists)
		}
		if err := indexUser(b, idKey, indexKeysOf(c)); err != nil {
			return err
		}
		rec := encodeUser(c)
		if err := b.users.Put(idKey, rec); err != nil {
			return err
		}
		var err error
		out, err = decodeUser(id, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// userBy runs one lookup: find returns the user's id key, nil for none.
func (s *Store) userBy(ctx context.Context, op string, find func(*buckets) []byte) (*caddyauth.User, error) {
	var out *caddyauth.User
	err := s.run(ctx, op, false, func(b *buckets) error {
		idKey := find(b)
		if idKey == nil {
			return caddyauth.ErrNotFound
		}
		u, err := getUser(b, idKey)
		out = u
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookup returns bk's value for key, nil for an empty key (bbolt has none).
func lookup(bk *bbolt.Bucket, key string) []byte {
	if key == "" || len(key) > maxIDLen {
		return nil
	}
	return bk.Get([]byte(key))
}

// UserByID returns user id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by id", func(*buckets) []byte {
		if id <= 0 {
			return nil
		}
		return userIDKey(id)
	})
}

// UserByEmail returns the user with email, compared in lower case, or
// ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by email", func(b *buckets) []byte {
		return lookup(b.userEmail, strings.ToLower(email))
	})
}

// UserByUsername returns the user with username, or ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by username", func(b *buckets) []byte {
		return lookup(b.userName, username)
	})
}

// UserByKeyID returns the user holding public key keyID, or ErrNotFound.
func (s *Store) UserByKeyID(ctx context.Context, keyID string) (*caddyauth.User, error) {
	return s.userBy(ctx, "user by key id", func(b *buckets) []byte {
		return lookup(b.userKey, keyID)
	})
}

// UpdateUser applies fn to a decoded copy of user id in one write
// transaction, so fn runs exactly once (see UpdateSession).
func (s *Store) UpdateUser(ctx context.Context, id int64, fn func(*caddyauth.User) error) (*caddyauth.User, error) {
	if fn == nil {
		return nil, errors.New("bolt: update user: nil fn")
	}
	idKey := userIDKey(id)
	var out *caddyauth.User
	var abort error
	err := s.run(ctx, "update user", true, func(b *buckets) error {
		if id <= 0 {
			return caddyauth.ErrNotFound
		}
		old, err := getUser(b, idKey)
		if err != nil {
			return err
		}
		next, err := getUser(b, idKey) // fn's copy shares nothing with old
		if err != nil {
			return err
		}
		if err := fn(next); err != nil {
			abort = err
			return errAbort
		}
		if next.ID != id {
			abort = errors.New("bolt: update user: id cannot change")
			return errAbort
		}
		if err := checkUser(next); err != nil {
			abort = fmt.Errorf("bolt: update user: %w", err)
			return errAbort
		}
		if err := unindexUser(b, idKey, indexKeysOf(old)); err != nil {
			return err
		}
		if err := indexUser(b, idKey, indexKeysOf(next)); err != nil {
			return err
		}
		rec := encodeUser(next)
		if err := b.users.Put(idKey, rec); err != nil {
			return err
		}
		out, err = decodeUser(id, rec)
		return err
	})
	if abort != nil {
		return nil, abort
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListUsers returns at most limit users with id > afterID in ascending id
// order: a cursor walk from afterID+1, so a page costs its own size.
func (s *Store) ListUsers(ctx context.Context, afterID int64, limit int) ([]*caddyauth.User, error) {
	out := []*caddyauth.User{}
	err := s.run(ctx, "list users", false, func(b *buckets) error {
		if limit <= 0 {
			return nil
		}
		start := uint64(max(afterID, 0)) + 1
		c := b.users.Cursor()
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, start)); k != nil && len(out) < limit; k, _ = c.Next() {
			u, err := getUser(b, bytes.Clone(k))
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
