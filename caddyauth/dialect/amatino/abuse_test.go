package amatino_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// SEC-06 + SEC-03 + SEC-04: after MaxFailures wrong secrets the account is
// locked; the right secret is then refused with the very bytes a wrong one
// gets, after one KDF run, and the metric says "locked".
func TestLoginLockoutSEC06(t *testing.T) {
	clk := caddyauth.NewFakeClock(time.Unix(wireTS, 0))
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: 3, IPRate: -1, GlobalRate: -1}, nil, clk)
	e := newEnvWithHasher(t, amatino.Options{}, enginetest.CheapHasherConfig(), abuse)

	wrong := doLogin(e, loginBody("wrong", "alice@example.com", nil), nil)
	if wrong.Code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", wrong.Code)
	}
	for range 2 {
		doLogin(e, loginBody("wrong", "ALICE@example.com", nil), nil) // any case counts for the account
	}
	before := e.hasher.Calls()
	locked := doLogin(e, loginBody(alicePW, "alice@example.com", nil), nil)
	if got := e.hasher.Calls() - before; got != 1 {
		t.Errorf("locked login ran %d KDFs, want 1 (SEC-04)", got)
	}
	if locked.Code != wrong.Code || !bytes.Equal(locked.Body.Bytes(), wrong.Body.Bytes()) {
		t.Errorf("locked answer differs from a wrong secret's:\n%d %s\n%d %s", locked.Code, locked.Body, wrong.Code, wrong.Body)
	}
	if e.obs.Logins(caddyauth.DialectAmatino, caddyauth.ResultLocked) != 1 {
		t.Errorf("locked login not counted as locked: %s", e.obs.Counts())
	}
	if n := len(e.obs.EventsOf("lockout")); n != 1 {
		t.Errorf("%d lockout audit events, want 1", n)
	}
	// Another account is not affected; the lock passes.
	if w := doLogin(e, loginBody("bob's secret", "bob@example.com", nil), nil); w.Code != http.StatusOK {
		t.Errorf("other account: %d %s", w.Code, w.Body)
	}
	clk.Advance(15 * time.Minute)
	if w := doLogin(e, loginBody(alicePW, "alice@example.com", nil), nil); w.Code != http.StatusOK {
		t.Errorf("after the lock: %d %s", w.Code, w.Body)
	}
}

// SEC-07: a client over its login rate gets 429 with Retry-After, before
// any hash.
func TestLoginThrottleSEC07(t *testing.T) {
	clk := caddyauth.NewFakeClock(time.Unix(wireTS, 0))
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: -1, IPRate: 0.5, IPBurst: 2, GlobalRate: -1}, nil, clk)
	e := newEnvWithHasher(t, amatino.Options{}, enginetest.CheapHasherConfig(), abuse)
	for i := range 2 {
		if w := doLogin(e, loginBody(alicePW, "alice@example.com", nil), nil); w.Code != http.StatusOK {
			t.Fatalf("login %d: %d", i, w.Code)
		}
	}
	before := e.hasher.Calls()
	w := doLogin(e, loginBody(alicePW, "alice@example.com", nil), nil)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("3rd login: %d Retry-After %q, want 429 and 2", w.Code, w.Header().Get("Retry-After"))
	}
	if got := decodeErr(t, w); got.Error != caddyauth.CodeThrottled {
		t.Errorf("error code %q", got.Error)
	}
	if e.hasher.Calls() != before {
		t.Error("a throttled login ran the KDF")
	}
	if e.obs.Logins(caddyauth.DialectAmatino, "throttled") != 1 {
		t.Errorf("throttled login not counted: %s", e.obs.Counts())
	}
}

// Per-session signature lockout: after MaxSignatureFailures bad signatures
// a session's signatures are checked only at the current second, so an old
// (still in-window) signature is refused as "locked", while a fresh one
// from the owner passes.
func TestSignatureLockout(t *testing.T) {
	clk := caddyauth.NewFakeClock(time.Unix(wireTS, 0))
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxSignatureFailures: 3, SignatureWindow: time.Minute}, nil, clk)
	e := newEnvWithHasher(t, amatino.Options{}, enginetest.CheapHasherConfig(), abuse)
	e.wireSession(t)
	old := sigAt(wireKey, wireTS-20, "/x", nil)
	var (
		v   *amatino.Verified
		ref *caddyauth.Refusal
	)
	v, ref = e.verify(signed(http.MethodGet, "/x", wireSessionID, old, nil))
	wantOK(t, v, ref)
	for range 3 {
		_, ref = e.verify(signed(http.MethodGet, "/x", wireSessionID, sigAt("not the key", wireTS, "/x", nil), nil))
		wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeBadSignature)
	}
	old2 := sigAt(wireKey, wireTS-19, "/x", nil) // in the window, but not at the current second
	_, ref = e.verify(signed(http.MethodGet, "/x", wireSessionID, old2, nil))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeBadSignature)
	if ref.Result != caddyauth.ResultLocked {
		t.Errorf("result %q, want locked", ref.Result)
	}
	v, ref = e.verify(signed(http.MethodGet, "/y", wireSessionID, sigAt(wireKey, wireTS, "/y", nil), nil))
	wantOK(t, v, ref)
	clk.Advance(time.Minute)
	e.clock.Set(clk.Now())
	v, ref = e.verify(signed(http.MethodGet, "/z", wireSessionID, sigAt(wireKey, clk.Now().Unix(), "/z", nil), nil))
	wantOK(t, v, ref)
}

// Under the signature lock, a fresh body-signed request of the owner still
// passes: the lock narrows the window, it does not skip variants.
func TestSignatureLockKeepsBodyVariants(t *testing.T) {
	e := lockedWireEnv(t, amatino.Options{}, "/x")
	body := []byte(`{"a":1}`)
	v, ref := e.verify(signed(http.MethodPost, "/x", wireSessionID, sigAt(wireKey, wireTS, "/x", body), body))
	wantOK(t, v, ref)
}
