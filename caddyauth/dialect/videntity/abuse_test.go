package videntity_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// SEC-06 + SEC-03: a locked account gets the same answer as a wrong
// password (up to the per-answer transaction number), and is counted
// "locked".
func TestLoginLockoutSEC06(t *testing.T) {
	clk := caddyauth.NewFakeClock(t0)
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: 2, IPRate: -1, GlobalRate: -1}, nil, clk)
	e := newEnvWithHasher(t, videntity.Options{}, enginetest.CheapHasherConfig(), abuse)
	wrong := e.login(t, "alice", "wrong", aliceAccount)
	e.login(t, "alice", alicePW, "000") // a wrong account number counts too
	locked := e.login(t, "alice", alicePW, aliceAccount)
	if locked.Code != wrong.Code || mask(locked.Body.Bytes()) != mask(wrong.Body.Bytes()) {
		t.Errorf("locked answer differs:\n%s\n%s", locked.Body, wrong.Body)
	}
	if e.obs.Logins(caddyauth.DialectVidentity, caddyauth.ResultLocked) != 1 {
		t.Errorf("not counted as locked: %s", e.obs.Counts())
	}
	clk.Advance(15 * time.Minute)
	wantSuccess(t, e.login(t, "alice", alicePW, aliceAccount))
}

// SEC-07: 429 with Retry-After and the server-error number.
func TestLoginThrottleSEC07(t *testing.T) {
	clk := caddyauth.NewFakeClock(t0)
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: -1, IPRate: 1, IPBurst: 1, GlobalRate: -1}, nil, clk)
	e := newEnvWithHasher(t, videntity.Options{}, enginetest.CheapHasherConfig(), abuse)
	wantSuccess(t, e.login(t, "alice", alicePW, aliceAccount))
	w := e.login(t, "alice", alicePW, aliceAccount)
	wantError(t, w, http.StatusTooManyRequests, 11)
	if w.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
}
