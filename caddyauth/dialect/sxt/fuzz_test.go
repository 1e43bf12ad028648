package sxt_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

// SEC-38: the auth/token and auth/code bodies never panic, never answer 5xx,
// and a token is never issued without a code the gateway gave out.
func FuzzLoginBodies(f *testing.F) {
	for _, s := range []string{
		`{"userId":"alice"}`,
		`{"userId":"alice","joinCode":"","prefix":"x"}`,
		`{"userId":"alice","authCode":"5f2c9a0e7b1d4c3a8e6f0b2d9c4a7e1f","signature":"` + string(bytes.Repeat([]byte("ab"), 64)) +
			`","key":"ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=","scheme":"ed25519"}`,
		`{"userId":"alice","userId":"bob"}`,
		`{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		"\xff", `[`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, sxt.Options{Registration: sxt.RegistrationOpen})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/auth/token", "/v1/auth/code"} {
			r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := e.do(r)
			if w.Code >= 500 || path == "/v1/auth/token" && w.Code == http.StatusOK {
				t.Fatalf("%s %q: %d %s", path, body, w.Code, w.Body)
			}
		}
	})
}

// SEC-38: any Authorization value on a proxied request or a refresh is
// refused with 400 or 401, never a panic, never a pass.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer x", "bearer AAAA", "Bearer", "Bearer a b", "Basic YTpi", "Bearer ====", " Bearer\tx", ""} {
		f.Add(s, "")
		f.Add(s, "access_token=x")
	}
	e := newEnv(f, sxt.Options{})
	f.Fuzz(func(t *testing.T, auth, query string) {
		for _, target := range []string{"/x", "/v1/auth/refresh", "/v1/auth/validtoken", "/v1/auth/logout"} {
			method := http.MethodPost
			if target != "/v1/auth/refresh" && target != "/v1/auth/logout" {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, target, nil)
			r.URL.RawQuery = query
			r.Header["Authorization"] = []string{auth}
			if w := e.do(r); w.Code != http.StatusBadRequest && w.Code != http.StatusUnauthorized {
				t.Fatalf("%s ?%q Authorization %q: %d %s", target, query, auth, w.Code, w.Body)
			}
		}
	})
}
