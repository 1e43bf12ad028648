package sxt_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

// SEC-06 + SEC-03: ten wrong keys answering codes issued for alice lock
// her userId; her right key is then refused with the bytes a wrong key
// gets; the lock passes after 15 minutes.
func TestTokenLockoutSEC06(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	var wrong *bytes.Buffer
	for i := range 10 {
		w := e.do(tokenReq("alice", e.code(t, "alice"), bobKey))
		wantErr(t, "wrong key", w, http.StatusUnauthorized, caddyauth.CodeBadCredentials)
		if i == 0 {
			wrong = w.Body
		}
	}
	w := e.do(tokenReq("alice", e.code(t, "alice"), aliceKey))
	if w.Code != http.StatusUnauthorized || !bytes.Equal(w.Body.Bytes(), wrong.Bytes()) {
		t.Fatalf("locked: %d %s, want the wrong-key answer %s", w.Code, w.Body, wrong)
	}
	if e.obs.Logins(caddyauth.DialectSXT, caddyauth.ResultLocked) != 1 || len(e.obs.EventsOf("lockout")) != 1 {
		t.Errorf("lock not counted or audited once: %s", e.obs.Counts())
	}
	e.login(t, "bob", bobKey) // another account is not affected
	e.clock.Advance(15 * time.Minute)
	e.login(t, "alice", aliceKey)
}

// SEC-06: made-up codes in a user's name do not count against it, so
// nobody can lock a user out without a code issued for it.
func TestTokenUnknownCodesDoNotLock(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	for range 20 {
		e.clock.Advance(2 * time.Second) // stay under the login throttle
		w := e.do(tokenReq("alice", "0123456789abcdef0123456789abcdef", aliceKey))
		wantErr(t, "unknown code", w, http.StatusUnauthorized, caddyauth.CodeBadCredentials)
	}
	e.login(t, "alice", aliceKey)
}

// SEC-07: token calls beyond the per-IP burst get 429 with Retry-After
// before any store work.
func TestTokenThrottleSEC07(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	burst := caddyauth.AbuseConfig{}.Defaults().IPBurst
	for i := 0; i < burst; i++ {
		w := e.do(tokenReq("alice", "0123456789abcdef0123456789abcdef", aliceKey))
		wantErr(t, "within burst", w, http.StatusUnauthorized, caddyauth.CodeBadCredentials)
	}
	w := e.do(tokenReq("alice", e.code(t, "alice"), aliceKey))
	wantErr(t, "over burst", w, http.StatusTooManyRequests, caddyauth.CodeThrottled)
	if w.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
