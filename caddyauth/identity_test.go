package caddyauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// countingUsers counts lookups by id and can fail them.
type countingUsers struct {
	caddyauth.UserDirectory
	byID int
	fail error
}

func (c *countingUsers) UserByID(ctx context.Context, id int64) (*caddyauth.User, error) {
	c.byID++
	if c.fail != nil {
		return nil, c.fail
	}
	return c.UserDirectory.UserByID(ctx, id)
}

// The identity headers of verified requests cost one user lookup per TTL,
// not one per request; a store that cannot answer is ErrUnavailable (the
// handler answers 503 rather than forwarding without identity), an unknown
// user ErrNotFound.
func TestIdentityUserCached(t *testing.T) {
	static, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 7, Email: "u@example.com", Username: "u"}})
	if err != nil {
		t.Fatal(err)
	}
	users := &countingUsers{UserDirectory: static}
	clk := caddyauth.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := caddyauth.NewManager(caddyauth.Config{Store: enginetest.NewStore(), Users: users,
		Hasher: enginetest.CheapHasher(t), Sealer: enginetest.NewSealer(t), Clock: clk,
		Cache: caddyauth.NewKeyCache(10, 30*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 5 {
		u, err := m.IdentityUser(ctx, 7)
		if err != nil || u.Email != "u@example.com" {
			t.Fatalf("IdentityUser: %v %v", u, err)
		}
	}
	if users.byID != 1 {
		t.Errorf("%d lookups for 5 requests, want 1", users.byID)
	}
	clk.Advance(30 * time.Second)
	users.fail = errors.New("connection refused")
	if _, err := m.IdentityUser(ctx, 7); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("after the TTL with the store down: %v, want ErrUnavailable", err)
	}
	users.fail = nil
	if _, err := m.IdentityUser(ctx, 8); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
}
