package sxt_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

func refreshReq(tok, body string) *http.Request {
	return req(http.MethodPost, "/v1/auth/refresh", body, "Authorization", "Bearer "+tok)
}

// SEC-17, SEC-18 over the wire: R1 → (A2, R2); R1 again → 400 invalid_grant
// and the whole session ends: R2 → invalid_grant, A2 → 401 invalid_token.
func TestRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	t1 := e.login(t, "alice", aliceKey)
	e.clock.Advance(time.Minute)
	t2 := parseTokens(t, e.do(refreshReq(t1.RefreshToken, "")))
	if t2.AccessToken == t1.AccessToken || t2.RefreshToken == t1.RefreshToken {
		t.Fatal("refresh returned an old token")
	}
	if want := epoch.Add(26 * time.Minute).UnixMilli(); t2.AccessTokenExpires != want {
		t.Errorf("new access expiry %d, want %d", t2.AccessTokenExpires, want)
	}
	wantErr(t, "old access token", e.do(bearer(http.MethodGet, "/x", t1.AccessToken)), 401, sxt.CodeInvalidToken)
	if w := e.do(bearer(http.MethodGet, "/x", t2.AccessToken)); w.Code != http.StatusOK {
		t.Fatalf("new access token: %d %s", w.Code, w.Body)
	}
	w := e.do(refreshReq(t1.RefreshToken, ""))
	wantErr(t, "R1 again", w, 400, sxt.CodeInvalidGrant)
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("refusal cacheable")
	}
	wantErr(t, "R2 after reuse", e.do(refreshReq(t2.RefreshToken, "")), 400, sxt.CodeInvalidGrant)
	w = e.do(bearer(http.MethodGet, "/x", t2.AccessToken))
	wantErr(t, "A2 after reuse", w, 401, sxt.CodeInvalidToken)
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="sessiongate", error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	if e.obs.Ended(caddyauth.DialectSXT, "refresh_reuse") != 1 || len(e.obs.EventsOf(caddyauth.EventRefreshReuse)) != 1 {
		t.Errorf("reuse not counted once: %s", e.obs.Counts())
	}
}

// Refresh accepts an empty body or {} (with or without a JSON content
// type) and nothing else; a refresh token is required unless the option
// lets the access token stand in.
func TestRefreshRequests(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	r := refreshReq(tk.RefreshToken, "{}")
	r.Header.Set("Content-Type", "application/json")
	tk = parseTokens(t, e.do(r))
	wantErr(t, "body with a field", e.do(refreshReq(tk.RefreshToken, `{"refreshToken":"x"}`)), 400, caddyauth.CodeInvalidRequest)
	wantErr(t, "access token, option off", e.do(refreshReq(tk.AccessToken, "")), 400, sxt.CodeInvalidGrant)
	wantErr(t, "made-up token", e.do(refreshReq(caddyauth.NewBearerToken(), "")), 400, sxt.CodeInvalidGrant)
	wantErr(t, "malformed token", e.do(refreshReq("abc", "")), 400, sxt.CodeInvalidGrant)
	w := e.do(req(http.MethodPost, "/v1/auth/refresh", ""))
	wantErr(t, "no token", w, 401, caddyauth.CodeMissingCredentials)
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="sessiongate"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	wantErr(t, "GET", e.do(req(http.MethodGet, "/v1/auth/refresh", "")), 405, caddyauth.CodeMethodNotAllowed)
	// The refusals left the refresh token unused.
	parseTokens(t, e.do(refreshReq(tk.RefreshToken, "")))

	e = newEnv(t, sxt.Options{RefreshAcceptsAccessToken: true})
	tk = e.login(t, "alice", aliceKey)
	t2 := parseTokens(t, e.do(refreshReq(tk.AccessToken, "")))
	wantErr(t, "A1 after it refreshed", e.do(bearer(http.MethodGet, "/x", tk.AccessToken)), 401, sxt.CodeInvalidToken)
	if w := e.do(bearer(http.MethodGet, "/x", t2.AccessToken)); w.Code != http.StatusOK {
		t.Errorf("A2: %d", w.Code)
	}
}

// SEC-19 over the wire: with a grace, a retry returns the identical pair.
func TestRefreshGrace(t *testing.T) {
	e := newEnv(t, sxt.Options{RefreshGrace: 10 * time.Second})
	t1 := e.login(t, "alice", aliceKey)
	t2 := parseTokens(t, e.do(refreshReq(t1.RefreshToken, "")))
	e.clock.Advance(5 * time.Second)
	if again := parseTokens(t, e.do(refreshReq(t1.RefreshToken, ""))); again != t2 {
		t.Fatalf("retry at 5s: %+v, want %+v", again, t2)
	}
	e.clock.Advance(6 * time.Second)
	wantErr(t, "retry at 11s", e.do(refreshReq(t1.RefreshToken, "")), 400, sxt.CodeInvalidGrant)
	wantErr(t, "A2 after reuse", e.do(bearer(http.MethodGet, "/x", t2.AccessToken)), 401, sxt.CodeInvalidToken)
}

// SEC-11 and SEC-12 over the wire: an expired access token is 401
// invalid_token while the session still refreshes; nothing outlives 24 h.
func TestLifetimesOverTheWire(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	e.clock.Advance(25*time.Minute + time.Second)
	w := e.do(bearer(http.MethodGet, "/x", tk.AccessToken))
	wantErr(t, "access at 25m1s", w, 401, sxt.CodeInvalidToken)
	if !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
	}
	tk = parseTokens(t, e.do(refreshReq(tk.RefreshToken, "")))
	for e.clock.Now().Before(epoch.Add(23*time.Hour + 40*time.Minute)) {
		e.clock.Advance(20 * time.Minute)
		tk = parseTokens(t, e.do(refreshReq(tk.RefreshToken, "")))
	}
	if limit := epoch.Add(24 * time.Hour).UnixMilli(); tk.AccessTokenExpires > limit || tk.RefreshTokenExpires > limit {
		t.Errorf("expiries %d / %d past the absolute deadline %d", tk.AccessTokenExpires, tk.RefreshTokenExpires, limit)
	}
	e.clock.Set(epoch.Add(24*time.Hour + time.Second))
	wantErr(t, "refresh at 24h1s", e.do(refreshReq(tk.RefreshToken, "")), 400, sxt.CodeInvalidGrant)
	wantErr(t, "access at 24h1s", e.do(bearer(http.MethodGet, "/x", tk.AccessToken)), 401, sxt.CodeInvalidToken)
}

// Concurrent refreshes of one token over the wire never issue two
// different pairs, whichever way the race falls.
func TestConcurrentRefreshOverTheWire(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	var (
		mu      sync.Mutex
		granted []tokens
		wg      sync.WaitGroup
	)
	for range 20 {
		wg.Go(func() {
			w := e.do(refreshReq(tk.RefreshToken, ""))
			switch w.Code {
			case http.StatusOK:
				mu.Lock()
				granted = append(granted, parseTokens(t, w))
				mu.Unlock()
			case http.StatusBadRequest:
			default:
				t.Errorf("refresh: %d %s", w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if len(granted) != 1 {
		t.Fatalf("%d pairs granted, want exactly 1", len(granted))
	}
}

// validtoken answers the user, or the status with an empty body.
func TestValidToken(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	w := e.do(bearer(http.MethodGet, "/v1/auth/validtoken", tk.AccessToken))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"userId":"alice"}` {
		t.Fatalf("valid token: %d %s", w.Code, w.Body)
	}
	r := req(http.MethodGet, "/v1/auth/validtoken", "{}", "Authorization", "Bearer "+tk.AccessToken, "Content-Type", "application/json")
	if w := e.do(r); w.Code != 200 {
		t.Errorf("GET with {}: %d %s", w.Code, w.Body)
	}
	tests := []struct {
		name      string
		r         *http.Request
		status    int
		challenge string
	}{
		{"no token", req(http.MethodGet, "/v1/auth/validtoken", ""), 401, `Bearer realm="sessiongate"`},
		{"refresh token", bearer(http.MethodGet, "/v1/auth/validtoken", tk.RefreshToken), 401, `Bearer realm="sessiongate", error="invalid_token"`},
		{"unknown token", bearer(http.MethodGet, "/v1/auth/validtoken", caddyauth.NewBearerToken()), 401, `Bearer realm="sessiongate", error="invalid_token"`},
		{"malformed", bearer(http.MethodGet, "/v1/auth/validtoken", "nope"), 401, `Bearer realm="sessiongate", error="invalid_token"`},
		{"two headers", req(http.MethodGet, "/v1/auth/validtoken", "", "Authorization", "Bearer "+tk.AccessToken,
			"Authorization", "Bearer "+tk.AccessToken), 400, `Bearer realm="sessiongate", error="invalid_request"`},
	}
	for _, tt := range tests {
		w := e.do(tt.r)
		if w.Code != tt.status || w.Body.Len() != 0 || w.Header().Get("WWW-Authenticate") != tt.challenge {
			t.Errorf("%s: %d %q %q, want %d, empty body, %q", tt.name, w.Code, w.Body, w.Header().Get("WWW-Authenticate"), tt.status, tt.challenge)
		}
	}
	tk2 := e.login(t, "alice", aliceKey) // never looked up, so never cached
	e.store.FailTokenGets.Store(true)
	wantErr(t, "store down", e.do(bearer(http.MethodGet, "/v1/auth/validtoken", tk2.AccessToken)), 503, caddyauth.CodeStoreUnavailable)
	e.store.FailTokenGets.Store(false)
	e.clock.Advance(25 * time.Minute)
	if w := e.do(bearer(http.MethodGet, "/v1/auth/validtoken", tk.AccessToken)); w.Code != 401 || w.Body.Len() != 0 {
		t.Errorf("expired: %d %q", w.Code, w.Body)
	}
}

// SEC-10: logout ends the session: its access token and its refresh token.
func TestLogoutSEC10(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	if w := e.do(bearer(http.MethodGet, "/x", tk.AccessToken)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	w := e.do(bearer(http.MethodPost, "/v1/auth/logout", tk.AccessToken))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "{}" {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	wantErr(t, "access after logout", e.do(bearer(http.MethodGet, "/x", tk.AccessToken)), 401, sxt.CodeInvalidToken)
	wantErr(t, "refresh after logout", e.do(refreshReq(tk.RefreshToken, "")), 400, sxt.CodeInvalidGrant)
	wantErr(t, "logout again", e.do(bearer(http.MethodPost, "/v1/auth/logout", tk.AccessToken)), 401, sxt.CodeInvalidToken)
	if e.obs.Ended(caddyauth.DialectSXT, "logout") != 1 || len(e.obs.EventsOf("logout")) != 1 {
		t.Errorf("logout not counted once: %s", e.obs.Counts())
	}
	tk = e.login(t, "alice", aliceKey)
	wantErr(t, "logout with the refresh token", e.do(bearer(http.MethodPost, "/v1/auth/logout", tk.RefreshToken)), 401, sxt.CodeInvalidToken)
	r := req(http.MethodPost, "/v1/auth/logout", "{}", "Authorization", "Bearer "+tk.AccessToken, "Content-Type", "application/json")
	if w := e.do(r); w.Code != 200 {
		t.Errorf("logout with {}: %d %s", w.Code, w.Body)
	}
}
