package sxt_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

// A whole login as a client does it: the answer has exactly the four
// fields, expiries in integer milliseconds, Cache-Control: no-store.
func TestLoginFlow(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tk := e.login(t, "alice", aliceKey)
	if want := epoch.Add(25 * time.Minute).UnixMilli(); tk.AccessTokenExpires != want {
		t.Errorf("accessTokenExpires %d, want %d", tk.AccessTokenExpires, want)
	}
	if want := epoch.Add(30 * time.Minute).UnixMilli(); tk.RefreshTokenExpires != want {
		t.Errorf("refreshTokenExpires %d, want %d", tk.RefreshTokenExpires, want)
	}
	if w := e.do(bearer(http.MethodGet, "/orders", tk.AccessToken)); w.Code != http.StatusOK {
		t.Fatalf("bearer request: %d %s", w.Code, w.Body)
	}
	if e.obs.Logins(caddyauth.DialectSXT, "ok") != 1 || len(e.obs.EventsOf("login")) != 1 {
		t.Errorf("login not counted or audited: %s", e.obs.Counts())
	}
}

// Key order varies between clients; the strict decoder does not care.
func TestTokenKeyOrder(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	code := e.code(t, "alice")
	body := `{"scheme":"ed25519","key":"` + aliceKey.pub + `","signature":"` + aliceKey.sign(code) +
		`","authCode":"` + code + `","userId":"alice"}`
	parseTokens(t, e.do(req(http.MethodPost, "/v1/auth/token", body, "Content-Type", "application/json")))
}

func TestIDExists(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	tests := []struct {
		name, target, body, want string
		hdr                      []string
	}{
		{"static user", "/v1/auth/idexists/alice", "", "true", nil},
		{"disabled user exists", "/v1/auth/idexists/disabled", "", "true", nil},
		{"unknown", "/v1/auth/idexists/nobody", "", "false", nil},
		{"percent-encoded", "/v1/auth/idexists/%61lice", "", "true", nil},
		{"GET with {} body", "/v1/auth/idexists/alice", "{}", "true", []string{"Content-Type", "application/json"}},
		{"two segments", "/v1/auth/idexists/alice/x", "", "false", nil},
		{"not a userId", "/v1/auth/idexists/a%20b", "", "false", nil},
		{"too long", "/v1/auth/idexists/" + strings.Repeat("a", 65), "", "false", nil},
	}
	for _, tt := range tests {
		w := e.do(req(http.MethodGet, tt.target, tt.body, tt.hdr...))
		if w.Code != http.StatusOK || w.Body.String() != tt.want {
			t.Errorf("%s: %d %q, want 200 %q", tt.name, w.Code, w.Body, tt.want)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", tt.name, cc)
		}
	}
	wantErr(t, "body with a field", e.do(req(http.MethodGet, "/v1/auth/idexists/alice", `{"a":1}`)), 400, caddyauth.CodeInvalidRequest)
	w := e.do(req(http.MethodPost, "/v1/auth/idexists/alice", ""))
	wantErr(t, "POST", w, http.StatusMethodNotAllowed, caddyauth.CodeMethodNotAllowed)
	if w.Header().Get("Allow") != http.MethodGet {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}
	// A user registered in the store exists too.
	e2 := newEnv(t, sxt.Options{Registration: sxt.RegistrationOpen})
	e2.login(t, "carol", newKey)
	if w := e2.do(req(http.MethodGet, "/v1/auth/idexists/carol", "")); w.Body.String() != "true" {
		t.Errorf("registered user: %q", w.Body)
	}
}

// auth/code accepts what clients send (joinCode, prefix) and nothing else
// (SEC-32, SEC-33, SEC-34).
func TestCodeRequests(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	ok := []string{
		`{"userId":"alice"}`,
		`{"userId":"alice","joinCode":""}`,
		`{"prefix":"x","userId":"alice","joinCode":null}`,
		`{"userId":"nobody"}`, // codes are issued alike for unknown users
	}
	for _, body := range ok {
		w := e.do(req(http.MethodPost, "/v1/auth/code", body, "Content-Type", "application/json"))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"authCode":"`) {
			t.Errorf("%s: %d %s", body, w.Code, w.Body)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: no Cache-Control: no-store", body)
		}
	}
	bad := []struct {
		body, ctype string
		status      int
		code        string
	}{
		{`{}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{``, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":42}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"a b"}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"alice","role":"admin"}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"alice","userId":"bob"}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"UserId":"alice"}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"alice","joinCode":7}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"alice","prefix":[]}`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"alice"} x`, "application/json", 400, caddyauth.CodeInvalidRequest},
		{`{"userId":"alice"}`, "text/plain", 415, caddyauth.CodeUnsupportedMedia},
		{`{"userId":"` + strings.Repeat("a", sxt.MaxAuthBody) + `"}`, "application/json", 413, caddyauth.CodeBodyTooLarge},
	}
	for _, tt := range bad {
		w := e.do(req(http.MethodPost, "/v1/auth/code", tt.body, "Content-Type", tt.ctype))
		wantErr(t, tt.body[:min(len(tt.body), 40)], w, tt.status, tt.code)
	}
}

// SEC-29: a code is single use, dies after its lifetime, and is bound to
// the userId it was issued for.
func TestChallengeSEC29(t *testing.T) {
	t.Run("reuse", func(t *testing.T) {
		e := newEnv(t, sxt.Options{})
		code := e.code(t, "alice")
		parseTokens(t, e.do(tokenReq("alice", code, aliceKey)))
		wantErr(t, "second use", e.do(tokenReq("alice", code, aliceKey)), 401, caddyauth.CodeBadCredentials)
	})
	t.Run("a failed answer uses it up", func(t *testing.T) {
		e := newEnv(t, sxt.Options{})
		code := e.code(t, "alice")
		wantErr(t, "wrong key", e.do(tokenReq("alice", code, bobKey)), 401, caddyauth.CodeBadCredentials)
		wantErr(t, "then the right one", e.do(tokenReq("alice", code, aliceKey)), 401, caddyauth.CodeBadCredentials)
	})
	for _, tt := range []struct {
		after time.Duration
		ok    bool
	}{{29 * time.Second, true}, {30 * time.Second, false}, {31 * time.Second, false}} {
		t.Run("answered after "+tt.after.String(), func(t *testing.T) {
			e := newEnv(t, sxt.Options{})
			code := e.code(t, "alice")
			e.clock.Advance(tt.after)
			w := e.do(tokenReq("alice", code, aliceKey))
			if tt.ok {
				parseTokens(t, w)
			} else {
				wantErr(t, "expired code", w, 401, caddyauth.CodeBadCredentials)
			}
		})
	}
	t.Run("code for A answered with B's key", func(t *testing.T) {
		e := newEnv(t, sxt.Options{})
		code := e.code(t, "alice")
		wantErr(t, "as alice", e.do(tokenReq("alice", code, bobKey)), 401, caddyauth.CodeBadCredentials)
		code = e.code(t, "alice")
		wantErr(t, "as bob", e.do(tokenReq("bob", code, bobKey)), 401, caddyauth.CodeBadCredentials)
	})
	t.Run("signature over another code", func(t *testing.T) {
		e := newEnv(t, sxt.Options{})
		c1, c2 := e.code(t, "alice"), e.code(t, "alice")
		r := jsonReq(http.MethodPost, "/v1/auth/token", map[string]any{"userId": "alice", "authCode": c2,
			"signature": aliceKey.sign(c1), "key": aliceKey.pub, "scheme": "ed25519"})
		wantErr(t, "signature of c1 on c2", e.do(r), 401, caddyauth.CodeBadCredentials)
	})
	t.Run("made-up codes", func(t *testing.T) {
		e := newEnv(t, sxt.Options{})
		for _, code := range []string{"5f2c9a0e7b1d4c3a8e6f0b2d9c4a7e1f", "", "x", strings.Repeat("A", 32), strings.Repeat("a", 10_000)} {
			wantErr(t, "code "+code[:min(len(code), 8)], e.do(tokenReq("alice", code, aliceKey)), 401, caddyauth.CodeBadCredentials)
		}
	})
	t.Run("code lifetime is configurable", func(t *testing.T) {
		e := newEnv(t, sxt.Options{CodeLifetime: 2 * time.Minute})
		code := e.code(t, "alice")
		e.clock.Advance(time.Minute)
		parseTokens(t, e.do(tokenReq("alice", code, aliceKey)))
	})
}

// SEC-30: keys are exactly 32 bytes of padded standard base64, never the
// all-zero or a small-order point (400, no panic); signatures exactly 128
// lower-case hex characters (else 401).
func TestKeysAndSignaturesSEC30(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	order8, _ := hex.DecodeString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	identity, _ := hex.DecodeString("0100000000000000000000000000000000000000000000000000000000000000")
	k := rawKey(aliceKey)
	badKeys := map[string]string{
		"31 bytes":  b64(k[:31]),
		"33 bytes":  b64(append(append([]byte{}, k...), 0)),
		"all-zero":  b64(make([]byte, 32)),
		"order 8":   b64(order8),
		"identity":  b64(identity),
		"base64url": strings.NewReplacer("+", "-", "/", "_").Replace(b64(append([]byte{0xfb, 0xff}, k[2:]...))),
		"unpadded":  strings.TrimRight(aliceKey.pub, "="),
		"newline":   aliceKey.pub[:20] + "\n" + aliceKey.pub[20:43],
		"empty":     "",
	}
	for name, key := range badKeys {
		t.Run("key "+name, func(t *testing.T) {
			e := newEnv(t, sxt.Options{Registration: sxt.RegistrationOpen})
			code := e.code(t, "alice")
			r := jsonReq(http.MethodPost, "/v1/auth/token", map[string]any{"userId": "alice", "authCode": code,
				"signature": aliceKey.sign(code), "key": key, "scheme": "ed25519"})
			wantErr(t, name, e.do(r), 400, caddyauth.CodeInvalidRequest)
		})
	}
	sig := func(code string) string { return aliceKey.sign(code) }
	badSigs := map[string]func(string) string{
		"63 bytes":   func(c string) string { return sig(c)[:126] },
		"65 bytes":   func(c string) string { return sig(c) + "00" },
		"upper case": func(c string) string { return strings.ToUpper(sig(c)) },
		"one flipped bit": func(c string) string {
			b, _ := hex.DecodeString(sig(c))
			b[10] ^= 1
			return hex.EncodeToString(b)
		},
		"not hex": func(c string) string { return strings.Repeat("zz", 64) },
		"base64":  func(c string) string { b, _ := hex.DecodeString(sig(c)); return b64(b) },
		"empty":   func(string) string { return "" },
	}
	for name, mk := range badSigs {
		t.Run("signature "+name, func(t *testing.T) {
			e := newEnv(t, sxt.Options{})
			code := e.code(t, "alice")
			r := jsonReq(http.MethodPost, "/v1/auth/token", map[string]any{"userId": "alice", "authCode": code,
				"signature": mk(code), "key": aliceKey.pub, "scheme": "ed25519"})
			wantErr(t, name, e.do(r), 401, caddyauth.CodeBadCredentials)
		})
	}
	e := newEnv(t, sxt.Options{})
	code := e.code(t, "alice")
	r := jsonReq(http.MethodPost, "/v1/auth/token", map[string]any{"userId": "alice", "authCode": code,
		"signature": aliceKey.sign(code), "key": aliceKey.pub, "scheme": "rsa"})
	wantErr(t, "scheme rsa", e.do(r), 400, caddyauth.CodeInvalidRequest)
}

// Every field of auth/token is a string; nothing else is accepted.
func TestTokenBodies(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	code := e.code(t, "alice")
	full := map[string]any{"userId": "alice", "authCode": code, "signature": aliceKey.sign(code), "key": aliceKey.pub, "scheme": "ed25519"}
	for _, missing := range []string{"userId", "authCode", "signature", "key", "scheme"} {
		body := map[string]any{}
		for k, v := range full {
			if k != missing {
				body[k] = v
			}
		}
		wantErr(t, "without "+missing, e.do(jsonReq(http.MethodPost, "/v1/auth/token", body)), 400, caddyauth.CodeInvalidRequest)
	}
	extra := map[string]any{"joinCode": ""}
	for k, v := range full {
		extra[k] = v
	}
	wantErr(t, "with joinCode", e.do(jsonReq(http.MethodPost, "/v1/auth/token", extra)), 400, caddyauth.CodeInvalidRequest)
	// The refusals above used nothing up: the code still works.
	parseTokens(t, e.do(jsonReq(http.MethodPost, "/v1/auth/token", full)))
	if got := e.obs.Logins(caddyauth.DialectSXT, "malformed"); got != 6 {
		t.Errorf("%d malformed logins counted, want 6", got)
	}
}

// SEC-31: registration only when open (or with the join code); one user's
// key never becomes another's; a registered key is audited.
func TestRegistrationSEC31(t *testing.T) {
	t.Run("closed by default", func(t *testing.T) {
		e := newEnv(t, sxt.Options{})
		wantErr(t, "unknown userId", e.do(tokenReq("carol", e.code(t, "carol"), newKey)), 401, caddyauth.CodeBadCredentials)
		if n := e.userCount(t); n != 0 {
			t.Errorf("%d users created", n)
		}
	})
	t.Run("open", func(t *testing.T) {
		e := newEnv(t, sxt.Options{Registration: sxt.RegistrationOpen})
		e.login(t, "carol", newKey)
		u, err := e.store.UserByUsername(context.Background(), "carol")
		if err != nil {
			t.Fatalf("registered user: %v", err)
		}
		if len(u.PublicKeys) != 1 || u.PublicKeys[0].ID != caddyauth.PublicKeyID(rawKey(newKey)) || u.ID <= 104 {
			t.Errorf("registered user %+v", u)
		}
		ev := e.obs.EventsOf(caddyauth.EventKeyRegistered)
		if len(ev) != 1 || ev[0].UserID != u.ID {
			t.Errorf("key_registered events %+v", ev)
		}
		e.login(t, "carol", newKey) // the key now logs carol in
		wantErr(t, "carol with another key", e.do(tokenReq("carol", e.code(t, "carol"), otherKey)), 401, caddyauth.CodeBadCredentials)
		wantErr(t, "carol's key for dave", e.do(tokenReq("dave", e.code(t, "dave"), newKey)), 401, caddyauth.CodeBadCredentials)
		wantErr(t, "alice's key for mallory", e.do(tokenReq("mallory", e.code(t, "mallory"), aliceKey)), 401, caddyauth.CodeBadCredentials)
		wantErr(t, "bob's key for alice", e.do(tokenReq("alice", e.code(t, "alice"), bobKey)), 401, caddyauth.CodeBadCredentials)
		if n := e.userCount(t); n != 1 {
			t.Errorf("%d users in the store, want 1", n)
		}
	})
	t.Run("join code", func(t *testing.T) {
		e := newEnv(t, sxt.Options{Registration: sxt.RegistrationJoinCode, JoinCode: "let-me-in"})
		codeWith := func(user, join string) string {
			w := e.do(jsonReq(http.MethodPost, "/v1/auth/code", map[string]any{"userId": user, "joinCode": join}))
			var a struct{ AuthCode string }
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != 200 {
				t.Fatalf("auth/code: %d %s", w.Code, w.Body)
			}
			return a.AuthCode
		}
		for _, join := range []string{"", "let-me-i", "let-me-inn", "LET-ME-IN"} {
			wantErr(t, "join code "+join, e.do(tokenReq("carol", codeWith("carol", join), newKey)), 401, caddyauth.CodeBadCredentials)
		}
		if n := e.userCount(t); n != 0 {
			t.Fatalf("%d users created with wrong join codes", n)
		}
		parseTokens(t, e.do(tokenReq("carol", codeWith("carol", "let-me-in"), newKey)))
		// Known users need no join code.
		parseTokens(t, e.do(tokenReq("carol", e.code(t, "carol"), newKey)))
	})
	t.Run("disabled and keyless users", func(t *testing.T) {
		e := newEnv(t, sxt.Options{Registration: sxt.RegistrationOpen})
		wantErr(t, "disabled", e.do(tokenReq("disabled", e.code(t, "disabled"), disabledKey)), 401, caddyauth.CodeBadCredentials)
		wantErr(t, "password-only", e.do(tokenReq("pwonly", e.code(t, "pwonly"), newKey)), 401, caddyauth.CodeBadCredentials)
		if n := e.userCount(t); n != 0 {
			t.Errorf("%d users created", n)
		}
	})
}

// Every failed token call is one answer: status, body and challenge.
func TestTokenFailuresLookAlike(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	var bodies []string
	for _, r := range []*http.Request{
		tokenReq("alice", e.code(t, "alice"), bobKey),
		tokenReq("carol", e.code(t, "carol"), newKey),
		tokenReq("disabled", e.code(t, "disabled"), disabledKey),
		tokenReq("alice", "0123456789abcdef0123456789abcdef", aliceKey),
	} {
		w := e.do(r)
		bodies = append(bodies, strings.Join([]string{
			http.StatusText(w.Code), w.Header().Get("WWW-Authenticate"), w.Body.String()}, "|"))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("answers differ:\n%s\n%s", bodies[0], b)
		}
	}
	if !strings.Contains(bodies[0], `Bearer realm="sessiongate"`) {
		t.Errorf("401 without a challenge: %s", bodies[0])
	}
}

// REL-01: a store that cannot answer is 503 with Retry-After, and no
// session or user is made.
func TestLoginStoreUnavailable(t *testing.T) {
	e := newEnv(t, sxt.Options{Registration: sxt.RegistrationOpen})
	e.store.FailCreates.Store(true)
	w := e.do(tokenReq("alice", e.code(t, "alice"), aliceKey))
	wantErr(t, "login", w, 503, caddyauth.CodeStoreUnavailable)
	if w.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	e.store.Close()
	wantErr(t, "idexists", e.do(req(http.MethodGet, "/v1/auth/idexists/carol", "")), 503, caddyauth.CodeStoreUnavailable)
	wantErr(t, "registration", e.do(tokenReq("carol", e.code(t, "carol"), newKey)), 503, caddyauth.CodeStoreUnavailable)
	if e.obs.Logins(caddyauth.DialectSXT, "unavailable") != 2 {
		t.Errorf("logins: %s", e.obs.Counts())
	}
}
