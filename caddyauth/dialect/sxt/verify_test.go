package sxt_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

// SEC-14, SEC-15: bearer failures answer per RFC 6750; tokens are taken
// from the Authorization header only.
func TestBearerAnswersSEC14SEC15(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	revoked := e.login(t, "alice", aliceKey)
	if w := e.do(bearer(http.MethodPost, "/v1/auth/logout", revoked.AccessToken)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	const (
		noError      = `Bearer realm="sessiongate"`
		invalidTok   = `Bearer realm="sessiongate", error="invalid_token"`
		invalidReq   = `Bearer realm="sessiongate", error="invalid_request"`
		tokenInQuery = "/x?access_token="
	)
	a := tk.AccessToken
	tests := []struct {
		name      string
		r         *http.Request
		status    int
		code      string
		challenge string
	}{
		{"valid", bearer(http.MethodGet, "/x", a), 200, "", ""},
		{"scheme in lower case", req(http.MethodGet, "/x", "", "Authorization", "bearer "+a), 200, "", ""},
		{"no credential", req(http.MethodGet, "/x", ""), 401, caddyauth.CodeMissingCredentials, noError},
		{"token in the query only", req(http.MethodGet, tokenInQuery+a, ""), 401, caddyauth.CodeMissingCredentials, noError},
		{"header and query", bearer(http.MethodGet, tokenInQuery+a, a), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"header and encoded query name", bearer(http.MethodGet, "/x?access%5Ftoken=1", a), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"two Authorization headers", req(http.MethodGet, "/x", "", "Authorization", "Bearer "+a, "Authorization", "Bearer "+a), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"Bearer and Basic", req(http.MethodGet, "/x", "", "Authorization", "Basic YTpi", "Authorization", "Bearer "+a), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"Bearer a b", req(http.MethodGet, "/x", "", "Authorization", "Bearer "+a+" "+a), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"Bearer alone", req(http.MethodGet, "/x", "", "Authorization", "Bearer"), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"comma-joined", req(http.MethodGet, "/x", "", "Authorization", "Bearer "+a+", Bearer "+a), 400, caddyauth.CodeInvalidRequest, invalidReq},
		{"not our token", bearer(http.MethodGet, "/x", "abc.def"), 401, sxt.CodeInvalidToken, invalidTok},
		{"unknown token", bearer(http.MethodGet, "/x", caddyauth.NewBearerToken()), 401, sxt.CodeInvalidToken, invalidTok},
		{"revoked token", bearer(http.MethodGet, "/x", revoked.AccessToken), 401, sxt.CodeInvalidToken, invalidTok},
		{"refresh token", bearer(http.MethodGet, "/x", tk.RefreshToken), 401, sxt.CodeInvalidToken, invalidTok},
	}
	for _, tt := range tests {
		w := e.do(tt.r)
		if tt.status == 200 {
			if w.Code != 200 {
				t.Errorf("%s: %d %s", tt.name, w.Code, w.Body)
			}
			continue
		}
		wantErr(t, tt.name, w, tt.status, tt.code)
		if got := w.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != tt.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tt.name, got, tt.challenge)
		}
	}
	e.clock.Advance(25 * time.Minute)
	w := e.do(bearer(http.MethodGet, "/x", a))
	wantErr(t, "expired", w, 401, sxt.CodeInvalidToken)
	if w.Header().Get("WWW-Authenticate") != invalidTok {
		t.Errorf("expired: WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
	}
}

// SEC-36: a token that cannot be one the gateway issued never reaches the
// cache or the store.
func TestMalformedTokensNoLookupSEC36(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	before := e.store.Gets()
	for _, tok := range []string{"x", "abc.def", caddyauth.NewBearerToken() + "A", caddyauth.NewBearerToken()[:42] + "~"} {
		wantErr(t, tok, e.do(bearer(http.MethodGet, "/x", tok)), 401, sxt.CodeInvalidToken)
	}
	if e.store.Gets() != before {
		t.Error("a malformed token reached the store")
	}
}

// REL-01: an unknown token while the store is down is 503, never 401.
func TestVerifyStoreUnavailable(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	e.store.FailTokenGets.Store(true)
	w := e.do(bearer(http.MethodGet, "/x", tk.AccessToken))
	wantErr(t, "store down", w, 503, caddyauth.CodeStoreUnavailable)
	if w.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantErr(t, "refresh, store down", e.do(refreshReq(tk.RefreshToken, "")), 503, caddyauth.CodeStoreUnavailable)
	wantErr(t, "logout, store down", e.do(bearer(http.MethodPost, "/v1/auth/logout", tk.AccessToken)), 503, caddyauth.CodeStoreUnavailable)
}

func TestPresentAndStrip(t *testing.T) {
	tests := []struct {
		name    string
		vals    []string
		present bool
	}{
		{"none", nil, false},
		{"bearer", []string{"Bearer x"}, true},
		{"any case", []string{"BEARER x"}, true},
		{"leading space", []string{"  Bearer x"}, true},
		{"tab", []string{"Bearer\tx"}, true},
		{"basic", []string{"Basic YTpi"}, false},
		{"bearerish", []string{"Bearerx y"}, false},
		{"basic then bearer", []string{"Basic YTpi", "Bearer x"}, true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, v := range tt.vals {
			r.Header.Add("Authorization", v)
		}
		if got := sxt.Present(r); got != tt.present {
			t.Errorf("%s: Present = %v", tt.name, got)
		}
		sxt.StripCredentials(r.Header)
		if left := len(r.Header.Values("Authorization")); tt.present && left != 0 || !tt.present && left != len(tt.vals) {
			t.Errorf("%s: %d Authorization headers left", tt.name, left)
		}
	}
}

// Endpoints live under the prefix; other paths are proxied traffic.
func TestEndpointRouting(t *testing.T) {
	tests := []struct {
		prefix, method, path string
		endpoint             bool
	}{
		{"", http.MethodPost, "/v1/auth/code", true},
		{"", http.MethodGet, "/v1/auth/idexists/alice", true},
		{"", http.MethodGet, "/v1/auth/idexists/", false},
		{"", http.MethodPost, "/v1/auth/other", false},
		{"", http.MethodPost, "/auth/code", false},
		{"", http.MethodPost, "/v2/auth/code", false},
		{"", http.MethodGet, "/v1/sql", false},
		{"/", http.MethodPost, "/auth/code", true},
		{"/", http.MethodPost, "/v1/auth/code", false},
		{"/api/v2", http.MethodPost, "/api/v2/auth/token", true},
		{"/api/v2", http.MethodPost, "/api/v2x/auth/token", false},
		{"", http.MethodDelete, "/v1/auth/logout", true}, // 405
	}
	for _, tt := range tests {
		e := newEnv(t, sxt.Options{Prefix: tt.prefix})
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if got := e.d.Endpoint(r) != nil; got != tt.endpoint {
			t.Errorf("prefix %q %s %s: endpoint %v", tt.prefix, tt.method, tt.path, got)
		}
	}
}

func TestRealm(t *testing.T) {
	e := newEnv(t, sxt.Options{Realm: "sql api"})
	w := e.do(req(http.MethodGet, "/x", ""))
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="sql api"` || e.d.Challenge() != got {
		t.Errorf("challenge %q", got)
	}
}
