package caddyauth_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// SEC-13: with a cap of 5, the 6th login ends the user's oldest session;
// the store then holds 5 of that user's sessions, the newest ones, and other
// users are untouched.
func TestSessionCapSEC13(t *testing.T) {
	ctx := context.Background()
	clk := caddyauth.NewFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	st := enginetest.NewStore()
	static, _ := caddyauth.NewStaticUsers(nil)
	obs := enginetest.NewObserver()
	m, err := caddyauth.NewManager(caddyauth.Config{Store: st, Users: static, Hasher: enginetest.CheapHasher(t),
		Sealer: enginetest.NewSealer(t), Clock: clk, Observer: obs, MaxSessionsPerUser: 5})
	if err != nil {
		t.Fatal(err)
	}
	u42, u43 := &caddyauth.User{ID: 42}, &caddyauth.User{ID: 43}
	start := func(u *caddyauth.User, n int) string {
		t.Helper()
		id := strconv.Itoa(int(u.ID)*100 + n)
		if _, err := m.StartSession(ctx, caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
			Kind: caddyauth.KindHMACKey, ID: id, Secret: []byte("k"), Lifetime: time.Hour}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		return id
	}
	other := start(u43, 1)
	var ids []string
	for n := 1; n <= 6; n++ {
		ids = append(ids, start(u42, n))
	}
	left, err := st.ListUserSessions(ctx, 42)
	if err != nil || len(left) != 5 {
		t.Fatalf("user 42 holds %d sessions (%v), want 5", len(left), err)
	}
	if _, err := m.Session(ctx, ids[0]); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("oldest session: %v, want it ended", err)
	}
	for _, id := range append(ids[1:], other) {
		if _, err := m.Session(ctx, id); err != nil {
			t.Errorf("session %s: %v", id, err)
		}
	}
	if n := len(obs.EventsOf("session_evicted")); n != 1 {
		t.Errorf("%d session_evicted audit events, want 1", n)
	}
}
