package caddyauth

import (
	"context"
	"fmt"
	"strings"
)

// UserDirectory finds users for login. Lookups that find nothing return
// ErrNotFound; a directory that cannot answer returns ErrUnavailable.
type UserDirectory interface {
	UserByEmail(ctx context.Context, email string) (*User, error)
	UserByID(ctx context.Context, id int64) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
}

// StaticUsers is a UserDirectory of users fixed in the configuration.
type StaticUsers struct {
	byEmail    map[string]*User
	byID       map[int64]*User
	byUsername map[string]*User
}

// NewStaticUsers indexes users, refusing duplicates and invalid entries.
func NewStaticUsers(users []User) (*StaticUsers, error) {
	d := &StaticUsers{byEmail: map[string]*User{}, byID: map[int64]*User{}, byUsername: map[string]*User{}}
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
	}
	return d, nil
}

// UserByEmail finds a user by email, case-insensitively.
func (d *StaticUsers) UserByEmail(_ context.Context, email string) (*User, error) {
	if u, ok := d.byEmail[strings.ToLower(email)]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// UserByID finds a user by numeric id.
func (d *StaticUsers) UserByID(_ context.Context, id int64) (*User, error) {
	if u, ok := d.byID[id]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// UserByUsername finds a user by exact username.
func (d *StaticUsers) UserByUsername(_ context.Context, name string) (*User, error) {
	if u, ok := d.byUsername[name]; ok {
		return u, nil
	}
	return nil, ErrNotFound
}

// Len is the number of users.
func (d *StaticUsers) Len() int { return len(d.byID) }
