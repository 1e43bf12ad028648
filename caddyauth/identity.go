package caddyauth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// identityCacheSize bounds the users kept for identity headers.
const identityCacheSize = 10_000

// identityCache keeps the users whose requests were recently forwarded, so
// filling the identity headers of a verified request costs no store read
// (with the redis store that would be a network round trip per request).
// Entries live at most the key cache's TTL: a changed email or username
// shows within that bound on other nodes, at once on this one. Disabling a
// user ends its sessions, which is what stops its requests.
type identityCache struct {
	mu    sync.Mutex
	lru   *lru.Cache[int64, identityEntry]
	ttl   time.Duration
	group singleflight.Group
}

type identityEntry struct {
	u       *User
	expires time.Time
}

func newIdentityCache(ttl time.Duration) *identityCache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	c, _ := lru.New[int64, identityEntry](identityCacheSize)
	return &identityCache{lru: c, ttl: ttl}
}

// IdentityUser returns the user that owns a verified session, for the
// identity headers, through a small cache. Errors: ErrNotFound (the user is
// gone: the session must not pass), ErrUnavailable.
func (m *Manager) IdentityUser(ctx context.Context, id int64) (*User, error) {
	now := m.clock.Now()
	c := m.idc
	c.mu.Lock()
	e, ok := c.lru.Get(id)
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.u, nil
	}
	v, err, _ := c.group.Do(strconv.FormatInt(id, 10), func() (any, error) {
		u, err := m.users.UserByID(ctx, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, err
			}
			m.obs.StoreError("get_user")
			return nil, fmt.Errorf("identity of user %d: %w", id, asUnavailable(err))
		}
		c.mu.Lock()
		c.lru.Add(id, identityEntry{u: u, expires: now.Add(c.ttl)})
		c.mu.Unlock()
		return u, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*User), nil
}

// forgetUser drops a changed user from the identity cache.
func (m *Manager) forgetUser(id int64) {
	m.idc.mu.Lock()
	m.idc.lru.Remove(id)
	m.idc.group.Forget(strconv.FormatInt(id, 10))
	m.idc.mu.Unlock()
}
