package caddyauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// UserDirectory finds users for login. Lookups that find nothing return
// ErrNotFound; a directory that cannot answer returns ErrUnavailable.
type UserDirectory interface {
	UserByEmail(ctx context.Context, email string) (*User, error)
	UserByID(ctx context.Context, id int64) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
	UserByKeyID(ctx context.Context, keyID string) (*User, error)
}

// StaticUsers is a UserDirectory of users fixed in the configuration.
type StaticUsers struct {
	byEmail    map[string]*User
	byID       map[int64]*User
	byUsername map[string]*User
	byKey      map[string]*User
}

// NewStaticUsers indexes users, refusing duplicates and invalid entries.
func NewStaticUsers(users []User) (*StaticUsers, error) {
	d := &StaticUsers{byEmail: map[string]*User{}, byID: map[int64]*User{}, byUsername: map[string]*User{}, byKey: map[string]*User{}}
	for i := range users {
		u := users[i]
		if u.ID <= 0 {
			return nil, fmt.Errorf("user %d: id must be a positive integer", i)
		}
		if _, dup := d.byID[u.ID]; dup {
			return nil, fmt.Errorf("user %d: duplicate id %d", i, u.ID)
		}
		d.byID[u.ID] = &u
		if u.Email != "" {
			k := strings.ToLower(u.Email)
			if _, dup := d.byEmail[k]; dup {
				return nil, fmt.Errorf("user %d: duplicate email %q", i, u.Email)
			}
			d.byEmail[k] = &u
		}
		if u.Username != "" {
			if _, dup := d.byUsername[u.Username]; dup {
				return nil, fmt.Errorf("user %d: duplicate username %q", i, u.Username)
			}
			d.byUsername[u.Username] = &u
		}
		for j := range u.PublicKeys {
			k := &u.PublicKeys[j]
			if len(k.Key) != 32 {
				return nil, fmt.Errorf("user %d: public key %d: an Ed25519 public key is 32 bytes, not %d", i, j, len(k.Key))
			}
			k.ID = PublicKeyID(k.Key)
			if _, dup := d.byKey[k.ID]; dup {
				return nil, fmt.Errorf("user %d: public key %d is registered twice", i, j)
			}
			d.byKey[k.ID] = &u
		}
	}
	return d, nil
}

// UserByEmail finds a user by email, case-insensitively.
func (d *StaticUsers) UserByEmail(_ context.Context, email string) (*User, error) {
	if d == nil {
		return nil, ErrNotFound // no static users
	}
	if u, ok := d.byEmail[strings.ToLower(email)]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// UserByID finds a user by numeric id.
func (d *StaticUsers) UserByID(_ context.Context, id int64) (*User, error) {
	if d == nil {
		return nil, ErrNotFound // no static users
	}
	if u, ok := d.byID[id]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// UserByUsername finds a user by exact username.
func (d *StaticUsers) UserByUsername(_ context.Context, name string) (*User, error) {
	if d == nil {
		return nil, ErrNotFound // no static users
	}
	if u, ok := d.byUsername[name]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// UserByKeyID finds the user holding the public key with keyID.
func (d *StaticUsers) UserByKeyID(_ context.Context, keyID string) (*User, error) {
	if d == nil {
		return nil, ErrNotFound // no static users
	}
	if u, ok := d.byKey[keyID]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// Layered finds users first among the static ones and then in the store.
// Static users win: a store user whose email, username, id or key collides
// with a static user is never found through those (SEC: the configuration
// is the operator's last word), and the admin API refuses to create one.
type Layered struct {
	Static *StaticUsers
	Store  UserDirectory
}

func layered(static, stored func() (*User, error)) (*User, error) {
	u, err := static()
	if err == nil || !errors.Is(err, ErrNotFound) {
		return u, err
	}
	return stored()
}

// stored is the Store part, or a directory without users when there is
// none: either part of a Layered may be left out (a nil Static has no users
// either).
func (l Layered) stored() UserDirectory {
	if l.Store == nil {
		return noUsers{}
	}
	return l.Store
}

// noUsers is an empty UserDirectory.
type noUsers struct{}

var _ UserDirectory = noUsers{}

func (noUsers) UserByEmail(context.Context, string) (*User, error)    { return nil, ErrNotFound }
func (noUsers) UserByID(context.Context, int64) (*User, error)        { return nil, ErrNotFound }
func (noUsers) UserByUsername(context.Context, string) (*User, error) { return nil, ErrNotFound }
func (noUsers) UserByKeyID(context.Context, string) (*User, error)    { return nil, ErrNotFound }

// UserByEmail implements UserDirectory.
func (l Layered) UserByEmail(ctx context.Context, email string) (*User, error) {
	return layered(func() (*User, error) { return l.Static.UserByEmail(ctx, email) },
		func() (*User, error) { return l.stored().UserByEmail(ctx, email) })
}

// UserByID implements UserDirectory.
func (l Layered) UserByID(ctx context.Context, id int64) (*User, error) {
	return layered(func() (*User, error) { return l.Static.UserByID(ctx, id) },
		func() (*User, error) { return l.stored().UserByID(ctx, id) })
}

// UserByUsername implements UserDirectory.
func (l Layered) UserByUsername(ctx context.Context, name string) (*User, error) {
	return layered(func() (*User, error) { return l.Static.UserByUsername(ctx, name) },
		func() (*User, error) { return l.stored().UserByUsername(ctx, name) })
}

// UserByKeyID implements UserDirectory.
func (l Layered) UserByKeyID(ctx context.Context, keyID string) (*User, error) {
	return layered(func() (*User, error) { return l.Static.UserByKeyID(ctx, keyID) },
		func() (*User, error) { return l.stored().UserByKeyID(ctx, keyID) })
}

// Len is the number of users.
func (d *StaticUsers) Len() int { return len(d.byID) }
