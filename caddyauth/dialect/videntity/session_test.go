package videntity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
)

// stored returns the store's record of key's session.
func (e *env) stored(t *testing.T, key string) *caddyauth.Session {
	t.Helper()
	s, err := e.store.Store.GetSession(context.Background(), storeID(key))
	if err != nil {
		t.Fatalf("stored session: %v", err)
	}
	return s
}

func (e *env) purge(t *testing.T) int {
	t.Helper()
	n, err := caddyauth.PurgeExpired(context.Background(), e.store, e.m.Cache(), e.obs, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// SEC-11: 30 min idle, reset by ping, enforced server-side; an expired key
// is SESSION_EXPIRED until purged, then SESSION_DOES_NOT_EXIST.
func TestIdleTimeout_SEC11(t *testing.T) {
	const idle = videntity.DefaultIdleTimeout
	cases := []struct {
		name  string
		steps []time.Duration // ping after each advance, except the last: ping there and expect want
		want  int             // 0: SUCCESS, else the error number
	}{
		{"ping at 29:59", []time.Duration{idle - time.Second}, 0},
		{"no ping, 30:00", []time.Duration{idle}, 3},
		{"no ping, 30:01", []time.Duration{idle + time.Second}, 3},
		{"ping at 29:59, again 29:59 later", []time.Duration{idle - time.Second, idle - time.Second}, 0},
		{"ping at 29:59, then 30:01 later", []time.Duration{idle - time.Second, idle + time.Second}, 3},
		{"ping at 10:00, then 30:01 later", []time.Duration{10 * time.Minute, idle + time.Second}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, videntity.Options{})
			key := e.loginKey(t)
			for i, step := range c.steps {
				e.clock.Advance(step)
				w := e.ping(t, key)
				if i < len(c.steps)-1 {
					wantSuccess(t, w)
					continue
				}
				if c.want == 0 {
					a := wantSuccess(t, w)
					if a.NV == nil || a.NV.SessionKey != nil || a.NV.Inner != "" {
						t.Errorf("ping answer's response_name_value is not empty: %s", w.Body.Bytes())
					}
					if s := e.stored(t, key); !s.IdleDeadline.Equal(e.clock.Now().Add(idle)) {
						t.Errorf("idle deadline %s, want now+30m %s", s.IdleDeadline, e.clock.Now().Add(idle))
					}
					v, ref := e.proxied(key)
					wantVerified(t, v, ref)
					continue
				}
				wantError(t, w, http.StatusUnauthorized, c.want)
				// Proxied traffic agrees, and the record is still there.
				_, ref := e.proxied(key)
				wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeSessionExpired)
				wantError(t, e.logout(t, key), http.StatusUnauthorized, 3)
				if e.purge(t) != 1 {
					t.Fatal("janitor purged nothing")
				}
				wantError(t, e.ping(t, key), http.StatusNotFound, 2)
				_, ref = e.proxied(key)
				wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeUnknownSession)
			}
		})
	}
}

// SEC-11, SEC-12: pings every 10 minutes keep a session only up to its
// absolute deadline, which no ping moves.
func TestAbsoluteCap_SEC12(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	abs := t0.Add(videntity.DefaultSessionLifetime)
	if s := e.stored(t, key); !s.AbsoluteDeadline.Equal(abs) {
		t.Fatalf("absolute deadline %s, want %s", s.AbsoluteDeadline, abs)
	}
	for e.clock.Now().Add(10 * time.Minute).Before(abs) {
		e.clock.Advance(10 * time.Minute)
		wantSuccess(t, e.ping(t, key))
	}
	// Last ping a second before the cap: the idle deadline is the cap.
	e.clock.Set(abs.Add(-time.Second))
	wantSuccess(t, e.ping(t, key))
	s := e.stored(t, key)
	if !s.IdleDeadline.Equal(abs) || !s.AbsoluteDeadline.Equal(abs) {
		t.Fatalf("after the 23:59:59 ping: idle %s absolute %s, want both %s", s.IdleDeadline, s.AbsoluteDeadline, abs)
	}
	v, ref := e.proxied(key)
	wantVerified(t, v, ref)
	e.clock.Set(abs.Add(time.Second))
	wantError(t, e.ping(t, key), http.StatusUnauthorized, 3)
	_, ref = e.proxied(key)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeSessionExpired)

	// A shorter configured lifetime caps the first idle period too.
	e2 := newEnv(t, videntity.Options{IdleTimeout: 30 * time.Minute, SessionLifetime: 40 * time.Minute})
	key = e2.loginKey(t)
	e2.clock.Advance(25 * time.Minute)
	wantSuccess(t, e2.ping(t, key))
	if s := e2.stored(t, key); !s.IdleDeadline.Equal(t0.Add(40 * time.Minute)) {
		t.Fatalf("idle deadline %s, want the 40m cap", s.IdleDeadline)
	}
	e2.clock.Advance(15*time.Minute + time.Second)
	wantError(t, e2.ping(t, key), http.StatusUnauthorized, 3)
}

// SEC-10: logout destroys the session: ping, logout and proxied use all
// fail afterwards.
func TestLogout_SEC10(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	other := e.loginKey(t)
	v, ref := e.proxied(key)
	wantVerified(t, v, ref)

	w := e.logout(t, key)
	a := wantSuccess(t, w)
	if a.APIMethod != videntity.LogoutPath || a.NV == nil || a.NV.Inner != "" {
		t.Errorf("logout answer %s", w.Body.Bytes())
	}
	if e.obs.Ended(caddyauth.DialectVidentity, "logout") != 1 {
		t.Errorf("SessionEnded(logout) = %d", e.obs.Ended(caddyauth.DialectVidentity, "logout"))
	}
	_, ref = e.proxied(key)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeUnknownSession)
	wantError(t, e.ping(t, key), http.StatusNotFound, 2)
	wantError(t, e.logout(t, key), http.StatusNotFound, 2)
	// Another session of the same user is untouched.
	wantSuccess(t, e.ping(t, other))
	v, ref = e.proxied(other)
	wantVerified(t, v, ref)
}

// SEC-36: a key of the wrong syntax is SESSION_DOES_NOT_EXIST on the
// endpoints, without a store read.
func TestPingLogoutMalformedKey_SEC36(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	for _, bad := range []string{
		"short",
		strings.Repeat("a", videntity.MinKeyLength-1),
		strings.Repeat("a", videntity.MaxKeyLength+1),
		strings.Repeat("a", 10<<10),
		key[:20] + "\x00" + key[21:],
		key[:20] + "é" + key[22:],
		"../" + key,
		key[:40] + "-_=",
		" " + key,
		key + " ",
	} {
		gets := e.store.Gets()
		wantError(t, e.ping(t, bad), http.StatusNotFound, 2)
		wantError(t, e.logout(t, bad), http.StatusNotFound, 2)
		if e.store.Gets() != gets {
			t.Errorf("key %q reached the store", bad)
		}
	}
	if e.store.Deletes.Load() != 0 || e.store.Touches.Load() != 0 {
		t.Error("a malformed key touched or deleted a session")
	}
	// Both ends of the accepted syntax are looked up.
	for _, k := range []string{strings.Repeat("a", videntity.MinKeyLength), strings.Repeat("Z9", videntity.MaxKeyLength/2)} {
		gets := e.store.Gets()
		wantError(t, e.ping(t, k), http.StatusNotFound, 2)
		if e.store.Gets() != gets+1 {
			t.Errorf("key of %d characters not looked up", len(k))
		}
	}
	wantSuccess(t, e.ping(t, key))
}

// A session of another dialect stored under the digest of a presented
// string is not a videntity session: not pinged, not ended, not verified.
func TestSessionOfOtherDialect(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	token := strings.Repeat("T", 43)
	u, err := e.m.Users().UserByID(context.Background(), 201)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.StartSession(context.Background(), caddyauth.NewSession{User: u, Dialect: caddyauth.DialectSXT,
		Kind: caddyauth.KindBearer, ID: storeID(token), Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.ping(t, token), http.StatusNotFound, 2)
	wantError(t, e.logout(t, token), http.StatusNotFound, 2)
	_, ref := e.proxied(token)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeUnknownSession)
	if e.store.Deletes.Load() != 0 || e.store.Touches.Load() != 0 {
		t.Error("the other dialect's session was touched or deleted")
	}
}

// SEC-08, SEC-16: keys are 43 random alphanumerics, all distinct; the store
// holds only their SHA-256 digests, and no secret.
func TestSessionKeys_SEC08_SEC16(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	const n = 1000
	keys := make(map[string]bool, n)
	for range n {
		key := e.loginKey(t)
		if len(key) != videntity.KeyLength {
			t.Fatalf("key %q: %d characters, want 43", key, len(key))
		}
		for _, c := range key {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				t.Fatalf("key %q has %q", key, c)
			}
		}
		if keys[key] {
			t.Fatalf("key %q issued twice", key)
		}
		keys[key] = true
	}
	sessions, err := e.store.ListUserSessions(context.Background(), 201)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != n {
		t.Fatalf("%d stored sessions, want %d", len(sessions), n)
	}
	var dump strings.Builder
	for _, s := range sessions {
		if len(s.ID) != 64 || strings.ToLower(s.ID) != s.ID || s.Secret != nil ||
			s.Dialect != caddyauth.DialectVidentity || s.Kind != caddyauth.KindSessionKey {
			t.Fatalf("stored session %+v", s)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		dump.Write(b)
	}
	all := dump.String()
	for key := range keys {
		if strings.Contains(all, key) {
			t.Fatalf("the store holds key %q in clear", key)
		}
		if !strings.Contains(all, `"id":"`+storeID(key)+`"`) {
			t.Fatalf("no session stored under the digest of %q", key)
		}
	}
}

// REL-01: a store that cannot answer is 503 SERVER_ERROR, never a lost
// session.
func TestPingLogoutStoreUnavailable_REL01(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	e.store.FailTouches.Store(true)
	w := e.ping(t, key)
	wantError(t, w, http.StatusServiceUnavailable, 11)
	if w.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	e.store.FailTouches.Store(false)
	e.clock.Advance(time.Minute) // past the key cache's TTL
	e.store.FailGets.Store(true)
	wantError(t, e.ping(t, key), http.StatusServiceUnavailable, 11)
	wantError(t, e.logout(t, key), http.StatusServiceUnavailable, 11)
	_, ref := e.proxied(key)
	wantRefusal(t, ref, http.StatusServiceUnavailable, caddyauth.CodeStoreUnavailable)
	e.store.FailGets.Store(false)
	wantSuccess(t, e.ping(t, key))
}
