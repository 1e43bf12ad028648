package plugin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// eventRecorder is a Caddy event handler that keeps every event.
type eventRecorder struct {
	mu     sync.Mutex
	events []caddy.Event
}

func (r *eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// named returns the data of every event called name.
func (r *eventRecorder) named(name string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, e := range r.events {
		if e.Name() == name {
			out = append(out, e.Data)
		}
	}
	return out
}

func (r *eventRecorder) all() []caddy.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]caddy.Event(nil), r.events...)
}

// adminFixture is a provisioned app with a memory store behind the admin
// routes, served the way Caddy's admin endpoint serves them.
type adminFixture struct {
	app    *App
	mux    *http.ServeMux
	events *eventRecorder
	// answers collects every answer body, for the secret scan.
	mu      sync.Mutex
	answers []string
	// secrets must never appear in an answer.
	secrets []string
}

const (
	staticPassword = "static-canary-password-8f3a"
	bobPassword    = "bob-canary-password-77c1"
)

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	staticHash := enginetest.Hash(t, staticPassword)
	a := &App{Store: &StoreConfig{Backend: "memory"},
		Users: []UserConfig{{ID: 1, Email: "static@example.com", Username: "static", PasswordHash: staticHash}}}
	provisionApp(t, a)
	f := &adminFixture{app: a, mux: http.NewServeMux(), events: &eventRecorder{},
		secrets: []string{staticPassword, bobPassword, staticHash, "$argon2id$"}}

	ev := new(caddyevents.App)
	if err := ev.Provision(newCaddyContext(t)); err != nil {
		t.Fatal(err)
	}
	if err := ev.On("", f.events); err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	a.events.Store(ev)

	api := &adminAPI{find: func() *App { return a }}
	for _, rt := range api.Routes() {
		f.mux.Handle(rt.Pattern, caddyAdminLike(t, rt.Handler))
	}
	return f
}

// caddyAdminLike serves h as Caddy's admin endpoint does: a returned error
// must be a caddy.APIError (Caddy type-asserts it; anything else becomes a
// 500) and is written as {"error": message}.
func caddyAdminLike(t *testing.T, h caddy.AdminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h.ServeHTTP(w, r)
		if err == nil {
			return
		}
		ae, ok := err.(caddy.APIError)
		if !ok {
			t.Errorf("%s %s returned %T, not caddy.APIError: %v", r.Method, r.URL, err, err)
			ae = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		if ae.Message == "" && ae.Err != nil {
			ae.Message = ae.Err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ae.HTTPStatus)
		json.NewEncoder(w).Encode(ae)
	})
}

func (f *adminFixture) do(t *testing.T, method, target, contentType, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	r := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	f.mu.Lock()
	f.answers = append(f.answers, w.Body.String())
	f.mu.Unlock()
	return w.Code, w.Header(), w.Body.Bytes()
}

// json sends body as application/json and decodes the answer into a map.
func (f *adminFixture) json(t *testing.T, method, target, body string) (int, map[string]any) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	code, h, b := f.do(t, method, target, ct, body)
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v: %q", method, target, err, b)
	}
	return code, out
}

// checkNoSecrets: no answer ever held a password, hash, key or raw session
// id (SEC-16, SEC-44).
func (f *adminFixture) checkNoSecrets(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.answers {
		for _, s := range f.secrets {
			if strings.Contains(a, s) {
				t.Errorf("answer %q contains secret %q", a, s)
			}
		}
	}
	for _, e := range f.events.all() {
		b, _ := json.Marshal(e.Data)
		for _, s := range f.secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("event %s data %s contains secret %q", e.Name(), b, s)
			}
		}
	}
}

func (f *adminFixture) newKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k := base64.StdEncoding.EncodeToString(pub)
	f.secrets = append(f.secrets, k)
	return k
}

// addBob creates store user 10 with a password and two sessions; it returns
// the raw session ids, which are secrets.
func (f *adminFixture) addBob(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	m := f.app.Manager()
	u, err := m.CreateUser(ctx, caddyauth.NewUser{ID: 10, Email: "bob@example.com", Username: "bob", Password: bobPassword})
	if err != nil {
		t.Fatal(err)
	}
	return f.startSessions(t, u, 2)
}

func (f *adminFixture) startSessions(t *testing.T, u *caddyauth.User, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("7%011d%d", u.ID, i) // distinctive, so the scan cannot hit it by chance
		secret := []byte(fmt.Sprintf("api-key-canary-%d-%d", u.ID, i))
		if _, err := f.app.Manager().StartSession(context.Background(), caddyauth.NewSession{User: u,
			Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey, ID: id, Secret: secret,
			Lifetime: time.Hour}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		f.secrets = append(f.secrets, id, string(secret))
	}
	return ids
}

// adminCase is one request and what must come back.
type adminCase struct {
	name        string
	method      string
	target      string
	contentType string // "" with a body means application/json
	body        string
	status      int
	contains    string // in the answer body
}

func (f *adminFixture) run(t *testing.T, cases []adminCase) {
	t.Helper()
	for _, tc := range cases {
		ct := tc.contentType
		if ct == "" && tc.body != "" {
			ct = "application/json"
		}
		if ct == "-" {
			ct = ""
		}
		code, h, b := f.do(t, tc.method, tc.target, ct, tc.body)
		if code != tc.status {
			t.Errorf("%s: %s %s: status %d, want %d: %s", tc.name, tc.method, tc.target, code, tc.status, b)
			continue
		}
		text := string(b)
		// Go's mux answers 405 itself, in plain text; every other refusal
		// is Caddy's {"error": message}.
		if code >= 400 && code != http.StatusMethodNotAllowed {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
				t.Errorf("%s: refusal is not {\"error\": …}: %s", tc.name, b)
			}
			text = e.Error
		}
		if !strings.Contains(text, tc.contains) {
			t.Errorf("%s: answer %q does not contain %q", tc.name, text, tc.contains)
		}
		if code < 300 && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: answer without Cache-Control: no-store", tc.name)
		}
	}
}

func TestAdminRoutesRegisterInCaddysMux(t *testing.T) {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range new(adminAPI).Routes() {
		if seen[rt.Pattern] || !strings.Contains(rt.Pattern, " /sessiongate/") {
			t.Errorf("pattern %q duplicated or outside /sessiongate/", rt.Pattern)
		}
		seen[rt.Pattern] = true
		mux.Handle(rt.Pattern, http.NotFoundHandler()) // panics on a conflict
	}
	// Caddy's own routes share the mux.
	for _, p := range []string{"/config/", "/id/", "/stop", "/load", "/metrics", "/pki/", "/reverse_proxy/upstreams"} {
		mux.Handle(p, http.NotFoundHandler())
	}
	if len(seen) != 12 {
		t.Errorf("%d routes, want 12", len(seen))
	}
}

func TestAdminCreateUser(t *testing.T) {
	f := newAdminFixture(t)
	f.addBob(t)
	key := f.newKey(t)
	raw, _ := base64.StdEncoding.DecodeString(key)
	const pw = "new-user-canary-password"
	f.secrets = append(f.secrets, pw)

	code, out := f.json(t, "POST", "/sessiongate/users",
		`{"email":"Carol@Example.com","username":"carol","account_number":"00123","password":"`+pw+`","public_keys":["`+key+`"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	want := map[string]any{"id": float64(11), "email": "Carol@Example.com", "username": "carol", "account_number": "00123",
		"source": "store", "disabled": false, "has_password": true}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("create answer %s = %v, want %v", k, out[k], v)
		}
	}
	keys, _ := out["public_keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["id"] != caddyauth.PublicKeyID(raw) {
		t.Errorf("create answer keys %v", out["public_keys"])
	}
	if _, err := f.app.Manager().CheckPassword(context.Background(),
		caddyauth.PasswordLogin{Email: "carol@example.com", Password: pw}); err != nil {
		t.Errorf("created user cannot log in: %v", err)
	}
	if ev := f.events.named("sessiongate_user_created"); len(ev) != 2 || ev[1]["user_id"] != int64(11) {
		t.Errorf("user_created events %v", ev)
	}
	if ev := f.events.named("sessiongate_key_added"); len(ev) != 1 || ev[0]["key_id"] != caddyauth.PublicKeyID(raw) {
		t.Errorf("key_added events %v", ev)
	}

	hash := enginetest.Hash(t, "hash given by the operator")
	f.secrets = append(f.secrets, hash)
	big := `{"email":"` + strings.Repeat("a", maxAdminBody) + `"}`
	f.run(t, []adminCase{
		{"id 0 assigns", "POST", "/sessiongate/users", "", `{"id":0,"username":"dan"}`, 201, `"id":12`},
		{"explicit id and hash", "POST", "/sessiongate/users", "", `{"id":500,"email":"erin@example.com","password_hash":"` + hash + `"}`, 201, `"has_password":true`},
		{"charset in content type", "POST", "/sessiongate/users", "application/json; charset=utf-8", `{"username":"frank"}`, 201, `"frank"`},
		{"no content type", "POST", "/sessiongate/users", "-", `{"username":"x1"}`, 415, "application/json"},
		{"form content type", "POST", "/sessiongate/users", "application/x-www-form-urlencoded", `{"username":"x1"}`, 415, "application/json"},
		{"too large", "POST", "/sessiongate/users", "", big, 413, "larger than"},
		{"not JSON", "POST", "/sessiongate/users", "", `{"username":`, 400, "not valid JSON"},
		{"array", "POST", "/sessiongate/users", "", `[]`, 400, "JSON object"},
		{"unknown field", "POST", "/sessiongate/users", "", `{"username":"x1","admin":true}`, 400, `"admin"`},
		{"case-folded field", "POST", "/sessiongate/users", "", `{"Username":"x1"}`, 400, `"Username"`},
		{"duplicate field", "POST", "/sessiongate/users", "", `{"username":"x1","username":"x2"}`, 400, `duplicate field "username"`},
		{"email not string", "POST", "/sessiongate/users", "", `{"email":5}`, 400, "email: must be a string"},
		{"null password", "POST", "/sessiongate/users", "", `{"username":"x1","password":null}`, 400, "password: must be a string"},
		{"id as string", "POST", "/sessiongate/users", "", `{"id":"12"}`, 400, "id: must be a positive integer"},
		{"negative id", "POST", "/sessiongate/users", "", `{"id":-1}`, 400, "id:"},
		{"fractional id", "POST", "/sessiongate/users", "", `{"id":1.5}`, 400, "id:"},
		{"exponent id", "POST", "/sessiongate/users", "", `{"id":1e3}`, 400, "id:"},
		{"huge id", "POST", "/sessiongate/users", "", `{"id":9223372036854775808}`, 400, "id:"},
		{"keys not array", "POST", "/sessiongate/users", "", `{"public_keys":"` + key + `"}`, 400, "public_keys: must be an array"},
		{"keys of numbers", "POST", "/sessiongate/users", "", `{"public_keys":[1]}`, 400, "public_keys: must be an array"},
		{"bad email", "POST", "/sessiongate/users", "", `{"email":"no-at-sign"}`, 400, "email:"},
		{"bad username", "POST", "/sessiongate/users", "", `{"username":"two words"}`, 400, "username:"},
		{"bad account", "POST", "/sessiongate/users", "", `{"account_number":"12a"}`, 400, "account_number:"},
		{"short password", "POST", "/sessiongate/users", "", `{"username":"x1","password":"short"}`, 400, "password:"},
		{"password and hash", "POST", "/sessiongate/users", "", `{"username":"x1","password":"long enough","password_hash":"` + hash + `"}`, 400, "password:"},
		{"bad hash", "POST", "/sessiongate/users", "", `{"username":"x1","password_hash":"$2y$10$bcrypt"}`, 400, "password_hash:"},
		{"bad key", "POST", "/sessiongate/users", "", `{"public_keys":["AAAA"]}`, 400, "public_key:"},
		{"static id", "POST", "/sessiongate/users", "", `{"id":1}`, 409, "configuration"},
		{"static email", "POST", "/sessiongate/users", "", `{"email":"STATIC@example.com"}`, 409, "configuration"},
		{"static username", "POST", "/sessiongate/users", "", `{"username":"static"}`, 409, "configuration"},
		{"taken email", "POST", "/sessiongate/users", "", `{"email":"bob@example.com"}`, 409, "email is already taken"},
		{"taken username", "POST", "/sessiongate/users", "", `{"username":"bob"}`, 409, "username is already taken"},
		{"taken id", "POST", "/sessiongate/users", "", `{"id":10}`, 409, "id is already taken"},
		{"taken key", "POST", "/sessiongate/users", "", `{"public_keys":["` + key + `"]}`, 409, "public key is already taken"},
		{"wrong method", "PATCH", "/sessiongate/users", "", `{}`, 405, ""},
	})
	users, _ := f.app.Manager().ListAccounts(context.Background(), 0, 100)
	if len(users) != 6 { // static, bob, carol, dan, frank, erin
		t.Errorf("%d users after the refusals, want 6", len(users))
	}
	f.checkNoSecrets(t)
}

func TestAdminListAndShowUsers(t *testing.T) {
	f := newAdminFixture(t)
	f.addBob(t)
	for _, name := range []string{"u1", "u2"} {
		if _, err := f.app.Manager().CreateUser(context.Background(), caddyauth.NewUser{Username: name}); err != nil {
			t.Fatal(err)
		}
	}
	code, out := f.json(t, "GET", "/sessiongate/users", "")
	users, _ := out["users"].([]any)
	if code != 200 || len(users) != 4 || out["next_after"] != nil {
		t.Fatalf("list: %d %v", code, out)
	}
	first := users[0].(map[string]any)
	if first["id"] != float64(1) || first["source"] != "static" || first["has_password"] != true {
		t.Errorf("static user listed as %v", first)
	}
	code, out = f.json(t, "GET", "/sessiongate/users?limit=2", "")
	if users, _ := out["users"].([]any); code != 200 || len(users) != 2 || out["next_after"] != float64(10) {
		t.Errorf("first page: %d %v", code, out)
	}
	code, out = f.json(t, "GET", "/sessiongate/users?after=10&limit=2", "")
	if users, _ := out["users"].([]any); code != 200 || len(users) != 2 || users[0].(map[string]any)["username"] != "u1" {
		t.Errorf("second page: %d %v", code, out)
	}

	f.run(t, []adminCase{
		{"after 0", "GET", "/sessiongate/users?after=0", "", "", 200, `"static"`},
		{"limit 0", "GET", "/sessiongate/users?limit=0", "", "", 400, "limit:"},
		{"limit too big", "GET", "/sessiongate/users?limit=1001", "", "", 400, "limit:"},
		{"limit not a number", "GET", "/sessiongate/users?limit=ten", "", "", 400, "limit:"},
		{"negative after", "GET", "/sessiongate/users?after=-1", "", "", 400, "after:"},
		{"leading zero", "GET", "/sessiongate/users?after=007", "", "", 400, "after:"},
		{"unknown parameter", "GET", "/sessiongate/users?page=2", "", "", 400, `"page"`},
		{"repeated parameter", "GET", "/sessiongate/users?limit=1&limit=2", "", "", 400, "more than once"},
		{"bad query", "GET", "/sessiongate/users?limit=%zz", "", "", 400, "malformed"},

		{"show store user", "GET", "/sessiongate/users/10", "", "", 200, `"email":"bob@example.com"`},
		{"show static user", "GET", "/sessiongate/users/1", "", "", 200, `"source":"static"`},
		{"show unknown", "GET", "/sessiongate/users/99", "", "", 404, "unknown user"},
		{"show id 0", "GET", "/sessiongate/users/0", "", "", 400, "positive integer"},
		{"show id text", "GET", "/sessiongate/users/bob", "", "", 400, "positive integer"},
		{"show id leading zero", "GET", "/sessiongate/users/010", "", "", 400, "positive integer"},
		{"show id overflow", "GET", "/sessiongate/users/9223372036854775808", "", "", 400, "positive integer"},
	})
	f.checkNoSecrets(t)
}

// SEC-13: disable ends every session of the user and stops logins; enable
// restores logins; static users are read-only.
func TestAdminDisableEnableSEC13(t *testing.T) {
	f := newAdminFixture(t)
	ids := f.addBob(t)
	m := f.app.Manager()
	ctx := context.Background()

	code, out := f.json(t, "POST", "/sessiongate/users/10/disable", "")
	if code != 200 || out["sessions_revoked"] != float64(2) || out["disabled"] != true {
		t.Fatalf("disable: %d %v", code, out)
	}
	for _, id := range ids {
		if _, err := m.Session(ctx, id); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("session survived disable: %v", err)
		}
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: bobPassword}); !errors.Is(err, caddyauth.ErrBadCredentials) {
		t.Errorf("disabled user logs in: %v", err)
	}
	if ev := f.events.named("sessiongate_user_disabled"); len(ev) != 1 || ev[0]["user_id"] != int64(10) {
		t.Errorf("user_disabled events %v", ev)
	}
	if ev := f.events.named("sessiongate_sessions_revoked"); len(ev) != 1 || ev[0]["count"] != 2 || ev[0]["reason"] != "user_disabled" {
		t.Errorf("sessions_revoked events %v", ev)
	}
	code, out = f.json(t, "POST", "/sessiongate/users/10/enable", "")
	if code != 200 || out["disabled"] != false {
		t.Fatalf("enable: %d %v", code, out)
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: bobPassword}); err != nil {
		t.Errorf("enabled user cannot log in: %v", err)
	}
	if ev := f.events.named("sessiongate_user_enabled"); len(ev) != 1 {
		t.Errorf("user_enabled events %v", ev)
	}
	f.run(t, []adminCase{
		{"disable again", "POST", "/sessiongate/users/10/disable", "", "", 200, `"sessions_revoked":0`},
		{"disable static", "POST", "/sessiongate/users/1/disable", "", "", 409, "static user"},
		{"disable unknown", "POST", "/sessiongate/users/99/disable", "", "", 404, "unknown user"},
		{"disable bad id", "POST", "/sessiongate/users/x/disable", "", "", 400, "positive integer"},
		{"disable with body", "POST", "/sessiongate/users/10/disable", "", `{"now":true}`, 400, "no body"},
		{"disable by GET", "GET", "/sessiongate/users/10/disable", "", "", 405, ""},
		{"enable static", "POST", "/sessiongate/users/1/enable", "", "", 409, "static user"},
		{"enable unknown", "POST", "/sessiongate/users/99/enable", "", "", 404, "unknown user"},
		{"enable with body", "POST", "/sessiongate/users/10/enable", "", `{}`, 400, "no body"},
	})
	f.checkNoSecrets(t)
}

// SEC-13: a password change ends every session.
func TestAdminChangePasswordSEC13(t *testing.T) {
	f := newAdminFixture(t)
	ids := f.addBob(t)
	m := f.app.Manager()
	ctx := context.Background()
	const pw = "changed-canary-password"
	f.secrets = append(f.secrets, pw)
	code, out := f.json(t, "PUT", "/sessiongate/users/10/password", `{"password":"`+pw+`"}`)
	if code != 200 || out["sessions_revoked"] != float64(2) {
		t.Fatalf("passwd: %d %v", code, out)
	}
	for _, id := range ids {
		if _, err := m.Session(ctx, id); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("session survived the password change: %v", err)
		}
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: pw}); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: bobPassword}); !errors.Is(err, caddyauth.ErrBadCredentials) {
		t.Errorf("old password: %v", err)
	}
	if ev := f.events.named("sessiongate_password_changed"); len(ev) != 1 || ev[0]["user_id"] != int64(10) {
		t.Errorf("password_changed events %v", ev)
	}
	hash := enginetest.Hash(t, "another password")
	f.secrets = append(f.secrets, hash)
	f.run(t, []adminCase{
		{"by hash", "PUT", "/sessiongate/users/10/password", "", `{"password_hash":"` + hash + `"}`, 200, `"sessions_revoked":0`},
		{"neither", "PUT", "/sessiongate/users/10/password", "", `{}`, 400, "password:"},
		{"both", "PUT", "/sessiongate/users/10/password", "", `{"password":"long enough","password_hash":"` + hash + `"}`, 400, "password:"},
		{"short", "PUT", "/sessiongate/users/10/password", "", `{"password":"short"}`, 400, "password:"},
		{"too long", "PUT", "/sessiongate/users/10/password", "", `{"password":"` + strings.Repeat("x", caddyauth.MaxPasswordBytes+1) + `"}`, 400, "password:"},
		{"not a string", "PUT", "/sessiongate/users/10/password", "", `{"password":12345678}`, 400, "password: must be a string"},
		{"unknown field", "PUT", "/sessiongate/users/10/password", "", `{"pass":"long enough"}`, 400, `"pass"`},
		{"not JSON content", "PUT", "/sessiongate/users/10/password", "text/plain", `{"password":"long enough"}`, 415, ""},
		{"static", "PUT", "/sessiongate/users/1/password", "", `{"password":"long enough"}`, 409, "static user"},
		{"unknown", "PUT", "/sessiongate/users/99/password", "", `{"password":"long enough"}`, 404, "unknown user"},
		{"by POST", "POST", "/sessiongate/users/10/password", "", `{"password":"long enough"}`, 405, ""},
	})
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: "another password"}); err != nil {
		t.Errorf("password set by hash: %v", err)
	}
	f.checkNoSecrets(t)
}

// SEC-31: the admin API adds and removes keys; key_registered is logged and
// emitted; another user's key is refused.
func TestAdminKeysSEC31(t *testing.T) {
	f := newAdminFixture(t)
	f.addBob(t)
	key := f.newKey(t)
	raw, _ := base64.StdEncoding.DecodeString(key)
	keyID := caddyauth.PublicKeyID(raw)
	code, out := f.json(t, "POST", "/sessiongate/users/10/keys", `{"public_key":"`+key+`"}`)
	if code != 201 || out["id"] != keyID {
		t.Fatalf("add key: %d %v", code, out)
	}
	if u, err := f.app.Manager().Users().UserByKeyID(context.Background(), keyID); err != nil || u.ID != 10 {
		t.Errorf("the key does not find its user: %v", err)
	}
	if ev := f.events.named("sessiongate_key_added"); len(ev) != 1 || ev[0]["key_id"] != keyID || ev[0]["user_id"] != int64(10) {
		t.Errorf("key_added events %v", ev)
	}
	if _, err := f.app.Manager().CreateUser(context.Background(), caddyauth.NewUser{ID: 20, Username: "olga"}); err != nil {
		t.Fatal(err)
	}
	f.run(t, []adminCase{
		{"same key again", "POST", "/sessiongate/users/10/keys", "", `{"public_key":"` + key + `"}`, 409, "already registered to this user"},
		{"key of another user", "POST", "/sessiongate/users/20/keys", "", `{"public_key":"` + key + `"}`, 409, "public key is already taken"},
		{"missing", "POST", "/sessiongate/users/10/keys", "", `{}`, 400, "public_key: required"},
		{"not a string", "POST", "/sessiongate/users/10/keys", "", `{"public_key":["` + key + `"]}`, 400, "public_key: must be a string"},
		{"malformed", "POST", "/sessiongate/users/10/keys", "", `{"public_key":"not base64 at all, but 44 characters long!!!"}`, 400, "public_key:"},
		{"all zero", "POST", "/sessiongate/users/10/keys", "", `{"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`, 400, "all-zero"},
		{"static user", "POST", "/sessiongate/users/1/keys", "", `{"public_key":"` + f.newKey(t) + `"}`, 409, "static user"},
		{"unknown user", "POST", "/sessiongate/users/99/keys", "", `{"public_key":"` + f.newKey(t) + `"}`, 404, "unknown user"},
		{"remove", "DELETE", "/sessiongate/users/10/keys/" + keyID, "", "", 200, keyID},
		{"remove again", "DELETE", "/sessiongate/users/10/keys/" + keyID, "", "", 404, "no public key"},
		{"remove from static", "DELETE", "/sessiongate/users/1/keys/" + keyID, "", "", 409, "static user"},
		{"remove from unknown", "DELETE", "/sessiongate/users/99/keys/" + keyID, "", "", 404, "unknown user"},
		{"remove bad id", "DELETE", "/sessiongate/users/-1/keys/" + keyID, "", "", 400, "positive integer"},
		{"now free for another user", "POST", "/sessiongate/users/20/keys", "", `{"public_key":"` + key + `"}`, 201, keyID},
	})
	if ev := f.events.named("sessiongate_key_removed"); len(ev) != 1 || ev[0]["key_id"] != keyID {
		t.Errorf("key_removed events %v", ev)
	}
	f.checkNoSecrets(t)
}

// SEC-13: sessions of a user are listed as metadata, revoked one by one by
// hash or all at once.
func TestAdminSessionsSEC13(t *testing.T) {
	f := newAdminFixture(t)
	ids := f.addBob(t)
	m := f.app.Manager()
	ctx := context.Background()
	static, _ := m.Users().UserByID(ctx, 1)
	staticIDs := f.startSessions(t, static, 1)

	code, out := f.json(t, "GET", "/sessiongate/users/10/sessions", "")
	list, _ := out["sessions"].([]any)
	if code != 200 || len(list) != 2 {
		t.Fatalf("list: %d %v", code, out)
	}
	hashes := map[string]string{}
	for _, id := range ids {
		hashes[m.LogHash(id)] = id
	}
	for _, it := range list {
		s := it.(map[string]any)
		if _, ok := hashes[s["session"].(string)]; !ok || s["dialect"] != "amatino" || s["kind"] != "hmac_key" ||
			s["expired"] != false || s["created"] == nil || s["absolute_deadline"] == nil {
			t.Errorf("session listed as %v", s)
		}
	}
	victim := m.LogHash(ids[0])
	f.run(t, []adminCase{
		{"list unknown user", "GET", "/sessiongate/users/99/sessions", "", "", 404, "unknown user"},
		{"list bad id", "GET", "/sessiongate/users/abc/sessions", "", "", 400, "positive integer"},
		{"revoke one", "DELETE", "/sessiongate/users/10/sessions/" + victim, "", "", 200, victim},
		{"revoke it again", "DELETE", "/sessiongate/users/10/sessions/" + victim, "", "", 404, "no session"},
		{"revoke by raw id", "DELETE", "/sessiongate/users/10/sessions/" + ids[1], "", "", 400, "session:"},
		{"revoke other user's", "DELETE", "/sessiongate/users/10/sessions/" + m.LogHash(staticIDs[0]), "", "", 404, "no session"},
		{"revoke for unknown user", "DELETE", "/sessiongate/users/99/sessions/" + victim, "", "", 404, "unknown user"},
		{"revoke all", "DELETE", "/sessiongate/users/10/sessions", "", "", 200, `"sessions_revoked":1`},
		{"revoke all of static user", "DELETE", "/sessiongate/users/1/sessions", "", "", 200, `"sessions_revoked":1`},
		{"revoke all of unknown", "DELETE", "/sessiongate/users/99/sessions", "", "", 404, "unknown user"},
		{"list after", "GET", "/sessiongate/users/10/sessions", "", "", 200, `"sessions":[]`},
	})
	for _, id := range append(ids, staticIDs...) {
		if _, err := m.Session(ctx, id); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("session alive after revocation: %v", err)
		}
	}
	if ev := f.events.named("sessiongate_session_revoked"); len(ev) != 1 || ev[0]["session"] != victim || ev[0]["user_id"] != int64(10) {
		t.Errorf("session_revoked events %v", ev)
	}
	if ev := f.events.named("sessiongate_sessions_revoked"); len(ev) != 2 || ev[0]["count"] != 1 {
		t.Errorf("sessions_revoked events %v", ev)
	}
	f.checkNoSecrets(t)
}

func TestAdminStats(t *testing.T) {
	f := newAdminFixture(t)
	ids := f.addBob(t)
	if _, err := f.app.Manager().Session(context.Background(), ids[0]); err != nil {
		t.Fatal(err)
	}
	code, out := f.json(t, "GET", "/sessiongate/stats", "")
	if code != 200 || out["sessions_total"] != float64(2) || out["static_users"] != float64(1) {
		t.Fatalf("stats: %d %v", code, out)
	}
	if s, _ := out["sessions"].(map[string]any); s["amatino"] != float64(2) {
		t.Errorf("sessions by dialect %v", out["sessions"])
	}
	c, _ := out["cache"].(map[string]any)
	if c["entries"] != float64(1) || c["misses"] == nil || c["hit_ratio"] == nil {
		t.Errorf("cache stats %v", c)
	}
	f.run(t, []adminCase{
		{"unknown parameter", "GET", "/sessiongate/stats?x=1", "", "", 400, `"x"`},
		{"by POST", "POST", "/sessiongate/stats", "", "", 405, ""},
	})
}

// Without a running sessiongate app every route answers a clear 404.
func TestAdminWithoutApp(t *testing.T) {
	api := &adminAPI{find: func() *App { return nil }}
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern, caddyAdminLike(t, rt.Handler))
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/sessiongate/stats", nil))
	if w.Code != 404 || !strings.Contains(w.Body.String(), "no sessiongate app") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// The admin API serves the newest running app: a reload starts the new app
// before stopping the old one, and a failed reload stops the new one again.
func TestAdminServesNewestRunningApp(t *testing.T) {
	if running.current() != nil {
		t.Fatal("an app is registered before the test")
	}
	oldApp, newApp := &App{}, &App{}
	running.add(oldApp)
	running.add(newApp)
	if running.current() != newApp {
		t.Fatal("the newer app is not served")
	}
	running.remove(oldApp) // reload done: the old config stops
	if running.current() != newApp {
		t.Fatal("stopping the old app lost the new one")
	}
	running.add(oldApp)
	running.remove(oldApp) // a failed reload rolls the new config back
	if running.current() != newApp {
		t.Fatal("a rolled-back app is still served")
	}
	running.remove(newApp)
	if running.current() != nil {
		t.Fatal("a stopped app is still served")
	}

	// Start and Stop of a real app register and unregister it.
	a := &App{Store: &StoreConfig{Backend: "memory"}}
	provisionApp(t, a)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if running.current() != a {
		t.Error("a started app is not served")
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if running.current() != nil {
		t.Error("a stopped app is still served")
	}
}

// Every engine error maps to its status; 503s carry Retry-After; messages
// never carry the error's text for 5xx.
func TestAdminErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
	}{
		{&caddyauth.FieldError{Field: "email", Problem: "bad"}, 400},
		{&caddyauth.ConflictError{Field: "email"}, 409},
		{&caddyauth.ConflictError{Field: "email", Static: true}, 409},
		{fmt.Errorf("user 1: %w", caddyauth.ErrStaticUser), 409},
		{caddyauth.ErrTooManyKeys, 409},
		{caddyauth.ErrUnknownKey, 404},
		{caddyauth.ErrUnknownSession, 404},
		{fmt.Errorf("user 9: %w", caddyauth.ErrNotFound), 404},
		{caddyauth.ErrBusy, 503},
		{fmt.Errorf("bolt: %w: disk on fire at /secret/path", caddyauth.ErrUnavailable), 503},
		{errors.New("something else at /secret/path"), 500},
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		err := apiError(w, tc.err)
		ae, ok := err.(caddy.APIError)
		if !ok || ae.HTTPStatus != tc.status {
			t.Errorf("%v: %#v, want status %d", tc.err, err, tc.status)
			continue
		}
		if (w.Header().Get("Retry-After") != "") != (tc.status == 503) {
			t.Errorf("%v: Retry-After %q", tc.err, w.Header().Get("Retry-After"))
		}
		if ae.Message == "" || strings.Contains(ae.Message, "/secret/path") {
			t.Errorf("%v: message %q", tc.err, ae.Message)
		}
		if !errors.Is(ae.Err, tc.err) {
			t.Errorf("%v: cause not kept for the log", tc.err)
		}
	}
}

func TestEventData(t *testing.T) {
	var got []string
	o := eventObserver{Observer: caddyauth.NopObserver{}, emit: func(name string, data map[string]any) {
		b, _ := json.Marshal(data)
		got = append(got, name+" "+string(b))
	}}
	for _, e := range []caddyauth.Event{
		{Type: "login", UserID: 1, Dialect: caddyauth.DialectAmatino}, // not an account event
		{Type: caddyauth.EventUserCreated, UserID: 7},
		{Type: caddyauth.EventKeyRegistered, UserID: 7, KeyID: "ed25519-abc", Reason: "admin"},
		{Type: caddyauth.EventSessionsRevoked, UserID: 7, Count: 0, Reason: "admin"},
		{Type: caddyauth.EventSessionRevoked, UserID: 7, SessionHash: "0123456789abcdef", Dialect: caddyauth.DialectAmatino, ClientIP: "192.0.2.1"},
	} {
		o.Audit(e)
	}
	want := []string{
		`sessiongate_user_created {"user_id":7}`,
		`sessiongate_key_added {"key_id":"ed25519-abc","reason":"admin","user_id":7}`,
		`sessiongate_sessions_revoked {"count":0,"reason":"admin","user_id":7}`,
		`sessiongate_session_revoked {"dialect":"amatino","session":"0123456789abcdef","user_id":7}`,
	}
	if !bytes.Equal([]byte(strings.Join(got, "\n")), []byte(strings.Join(want, "\n"))) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
