package amatino_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

func TestLoginByEmailAndByID(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	cases := []struct {
		name string
		body []byte
	}{
		{"email", loginBody(alicePW, "alice@example.com", nil)},
		{"email other case", loginBody(alicePW, "ALICE@example.COM", nil)},
		{"user_id", loginBody(alicePW, nil, 101)},
		{"user_id absent email", []byte(`{"secret":"` + alicePW + `","user_id":101}`)},
		{"email absent user_id", []byte(`{"account_email":"alice@example.com","secret":"` + alicePW + `"}`)},
		// WIRE.md: key order and spacing vary by client.
		{"spaced, reordered", []byte("{ \"user_id\" : 101 ,\n \"account_email\" : null, \"secret\" :\t\"" + alicePW + "\" }")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.hasher.Calls()
			res := parseLoginOK(t, doLogin(e, tc.body, nil))
			if res.UserID != 101 {
				t.Errorf("user_id = %d, want 101", res.UserID)
			}
			if got := e.hasher.Calls() - before; got != 1 {
				t.Errorf("KDF calls = %d, want 1", got)
			}
			// The issued credentials work: a signed request verifies.
			id := strconv.FormatInt(res.SessionID, 10)
			v, ref := e.verify(signed(http.MethodGet, "/entities", id, sigAt(res.APIKey, wireTS, "/entities", nil), nil))
			wantOK(t, v, ref)
			if v.Session.UserID != 101 || v.Session.ID != id {
				t.Errorf("verified session %+v", v.Session)
			}
		})
	}
	if n := e.obs.Logins(caddyauth.DialectAmatino, "ok"); n != len(cases) {
		t.Errorf("Login(ok) = %d, want %d", n, len(cases))
	}
	if n := e.obs.Created(caddyauth.DialectAmatino); n != len(cases) {
		t.Errorf("SessionCreated = %d, want %d", n, len(cases))
	}
}

func TestLoginContentTypes(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "Application/JSON"} {
		r := httptest.NewRequest(http.MethodPost, "/session", bytes.NewReader(loginBody(alicePW, nil, 101)))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		e.d.Login(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("Content-Type %q: status %d %s", ct, w.Code, w.Body.Bytes())
		}
	}
}

// SEC-09: every login creates a new session; a client-supplied id is never
// adopted, and two logins of one user get distinct keys and ids.
func TestLoginNewSessionEveryTime_SEC09(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	w := doLogin(e, loginBody(alicePW, "alice@example.com", nil), map[string]string{"X-Session-ID": "12345"})
	a := parseLoginOK(t, w)
	if a.SessionID == 12345 {
		t.Fatal("login adopted the client's X-Session-ID")
	}
	// The attacker's id is not a session.
	_, ref := e.verify(signed(http.MethodGet, "/x", "12345", sigAt(a.APIKey, wireTS, "/x", nil), nil))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeUnknownSession)

	b := parseLoginOK(t, doLogin(e, loginBody(alicePW, "alice@example.com", nil), nil))
	if a.APIKey == b.APIKey || a.SessionID == b.SessionID {
		t.Fatalf("two logins share credentials: %+v %+v", a, b)
	}
	// Each key works only with its own session id.
	_, ref = e.verify(signed(http.MethodGet, "/x", strconv.FormatInt(b.SessionID, 10), sigAt(a.APIKey, wireTS, "/x", nil), nil))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeBadSignature)
}

// SEC-03, SEC-04: every wrong login gets a byte-identical answer after
// exactly one KDF run.
func TestLoginFailuresIdentical_SEC03_SEC04(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	cases := []struct {
		name string
		body []byte
	}{
		{"unknown email", loginBody(alicePW, "nobody@example.com", nil)},
		{"unknown id", loginBody(alicePW, nil, 999)},
		{"wrong secret by email", loginBody("wrong", "alice@example.com", nil)},
		{"wrong secret by id", loginBody("wrong", nil, 101)},
		{"empty secret", loginBody("", nil, 101)},
		{"other user's secret", loginBody("bob's secret", nil, 101)},
		{"disabled user right secret", loginBody(disabledPW, "disabled@example.com", nil)},
		{"disabled user by id", loginBody(disabledPW, nil, 102)},
		{"disabled user wrong secret", loginBody("wrong", nil, 102)},
	}
	var first *httptest.ResponseRecorder
	for _, tc := range cases {
		before, creates := e.hasher.Calls(), e.store.Creates.Load()
		w := doLogin(e, tc.body, nil)
		if got := e.hasher.Calls() - before; got != 1 {
			t.Errorf("%s: KDF calls = %d, want 1 (SEC-04)", tc.name, got)
		}
		if e.store.Creates.Load() != creates {
			t.Errorf("%s: a session was stored", tc.name)
		}
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, w.Code)
		}
		if b := decodeErr(t, w); b.Error != caddyauth.CodeBadCredentials {
			t.Errorf("%s: error %q", tc.name, b.Error)
		}
		if got := w.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != amatino.Challenge {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
		}
		if first == nil {
			first = w
			continue
		}
		if !bytes.Equal(w.Body.Bytes(), first.Body.Bytes()) {
			t.Errorf("%s: body %q differs from %q", tc.name, w.Body.Bytes(), first.Body.Bytes())
		}
		if len(w.Header()) != len(first.Header()) {
			t.Errorf("%s: headers %v differ from %v", tc.name, w.Header(), first.Header())
		}
		for k := range first.Header() {
			if strings.Join(w.Header().Values(k), "\n") != strings.Join(first.Header().Values(k), "\n") {
				t.Errorf("%s: header %s = %q, want %q", tc.name, k, w.Header().Values(k), first.Header().Values(k))
			}
		}
	}
	if n := e.obs.Logins(caddyauth.DialectAmatino, "bad_credentials"); n != len(cases) {
		t.Errorf("Login(bad_credentials) = %d, want %d", n, len(cases))
	}
	if e.obs.Logins(caddyauth.DialectAmatino, "ok") != 0 || e.obs.Created(caddyauth.DialectAmatino) != 0 {
		t.Error("a failed login was counted as ok or created a session")
	}
}

// SEC-32, SEC-33, SEC-02: malformed logins are 400 invalid_request, refused
// before any KDF run or store write.
func TestLoginMalformed_SEC32_SEC33(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	longEmail := strings.Repeat("a", 255-len("@example.com")) + "@example.com"
	cases := []struct {
		name string
		body string
	}{
		{"both email and id", `{"secret":"x","account_email":"alice@example.com","user_id":101}`},
		{"neither (nulls)", `{"secret":"x","account_email":null,"user_id":null}`},
		{"neither (absent)", `{"secret":"x"}`},
		{"user_id string", `{"secret":"x","account_email":null,"user_id":"12"}`},
		{"user_id 1e3", `{"secret":"x","account_email":null,"user_id":1e3}`},
		{"user_id 1.0", `{"secret":"x","account_email":null,"user_id":1.0}`},
		{"user_id -5", `{"secret":"x","account_email":null,"user_id":-5}`},
		{"user_id 0", `{"secret":"x","account_email":null,"user_id":0}`},
		{"user_id 2^63", `{"secret":"x","account_email":null,"user_id":9223372036854775808}`},
		{"user_id 007", `{"secret":"x","account_email":null,"user_id":007}`},
		{"user_id bool", `{"secret":"x","account_email":null,"user_id":true}`},
		{"user_id array", `{"secret":"x","account_email":null,"user_id":[101]}`},
		{"secret number", `{"secret":12345,"account_email":null,"user_id":101}`},
		{"secret null", `{"secret":null,"account_email":null,"user_id":101}`},
		{"secret absent", `{"account_email":null,"user_id":101}`},
		{"secret object", `{"secret":{},"account_email":null,"user_id":101}`},
		{"secret array", `{"secret":["x"],"account_email":null,"user_id":101}`},
		{"email 255 bytes", `{"secret":"x","account_email":"` + longEmail + `","user_id":null}`},
		{"email empty", `{"secret":"x","account_email":"","user_id":null}`},
		{"email number", `{"secret":"x","account_email":5,"user_id":null}`},
		{"duplicate secret", `{"secret":"x","secret":"` + alicePW + `","account_email":null,"user_id":101}`},
		{"duplicate user_id", `{"secret":"x","account_email":null,"user_id":102,"user_id":101}`},
		{"case-variant key", `{"secret":"x","SECRET":"y","account_email":null,"user_id":101}`},
		{"case-variant only", `{"SECRET":"` + alicePW + `","account_email":null,"user_id":101}`},
		{"unknown field", `{"secret":"x","account_email":null,"user_id":101,"role":"admin"}`},
		{"trailing data", `{"secret":"x","account_email":null,"user_id":101} {}`},
		{"trailing garbage", `{"secret":"x","account_email":null,"user_id":101}x`},
		{"invalid UTF-8", "{\"secret\":\"\xff\xfe\",\"account_email\":null,\"user_id\":101}"},
		{"truncated", `{"secret":"x","account_email":null,"user_id":1`},
		{"top-level array", `[{"secret":"x","account_email":null,"user_id":101}]`},
		{"10000 brackets", strings.Repeat("[", 10000)},
		{"nested secret", `{"secret":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `,"account_email":null,"user_id":101}`},
		{"empty body", ``},
		{"secret over 1024 bytes (SEC-02)", `{"secret":"` + strings.Repeat("s", caddyauth.MaxPasswordBytes+1) + `","account_email":null,"user_id":101}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, creates, malformed := e.hasher.Calls(), e.store.Creates.Load(), e.obs.Logins(caddyauth.DialectAmatino, "malformed")
			start := time.Now()
			w := doLogin(e, []byte(tc.body), nil)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", w.Code, w.Body.Bytes())
			}
			if b := decodeErr(t, w); b.Error != caddyauth.CodeInvalidRequest {
				t.Errorf("error %q, want invalid_request", b.Error)
			}
			if got := e.hasher.Calls() - before; got != 0 {
				t.Errorf("KDF calls = %d, want 0", got)
			}
			if e.store.Creates.Load() != creates {
				t.Error("store written")
			}
			if e.obs.Logins(caddyauth.DialectAmatino, "malformed") != malformed+1 {
				t.Error("not counted as Login(malformed)")
			}
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("took %s", d)
			}
			if strings.Contains(w.Body.String(), "correct horse") {
				t.Error("answer echoes the secret")
			}
		})
	}
	// A 254-byte email is syntactically fine (then unknown → 401).
	email254 := strings.Repeat("a", 254-len("@example.com")) + "@example.com"
	if w := doLogin(e, loginBody("x", email254, nil), nil); w.Code != http.StatusUnauthorized {
		t.Errorf("254-byte email: status %d, want 401", w.Code)
	}
}

// SEC-32: a non-JSON content type is 415.
func TestLoginUnsupportedMediaType_SEC32(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "garbage;;"} {
		before := e.hasher.Calls()
		w := doLogin(e, loginBody(alicePW, nil, 101), map[string]string{"Content-Type": ct})
		if w.Code != http.StatusUnsupportedMediaType {
			t.Errorf("%q: status %d, want 415", ct, w.Code)
			continue
		}
		if b := decodeErr(t, w); b.Error != caddyauth.CodeUnsupportedMedia {
			t.Errorf("%q: error %q", ct, b.Error)
		}
		if e.hasher.Calls() != before || e.store.Creates.Load() != 0 {
			t.Errorf("%q: KDF or store used", ct)
		}
	}
}

// SEC-34: login bodies are at most 64 KiB.
func TestLoginBodyLimit_SEC34(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	// A valid body padded with whitespace to exactly n bytes.
	padded := func(n int) []byte {
		b := loginBody(alicePW, nil, 101)
		return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
	}
	// Over the limit, with a declared length and chunked (no length).
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/session", bytes.NewReader(padded(amatino.MaxLoginBody+1)))
		r.Header.Set("Content-Type", "application/json")
		if chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		e.d.Login(w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked=%v: 64 KiB + 1: status %d, want 413", chunked, w.Code)
		}
		if b := decodeErr(t, w); b.Error != caddyauth.CodeBodyTooLarge {
			t.Errorf("error %q", b.Error)
		}
	}
	// A declared length over the limit is refused before reading anything.
	r := httptest.NewRequest(http.MethodPost, "/session", strings.NewReader(""))
	r.ContentLength = 1 << 30
	w := httptest.NewRecorder()
	e.d.Login(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared 1 GiB: status %d", w.Code)
	}
	if e.hasher.Calls() != 0 || e.store.Creates.Load() != 0 {
		t.Fatal("KDF or store used for an oversized body")
	}
	// Exactly 64 KiB of valid JSON is accepted.
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/session", bytes.NewReader(padded(amatino.MaxLoginBody)))
		if chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		e.d.Login(w, r)
		parseLoginOK(t, w)
	}
	// Exactly 64 KiB with the padding in the secret: not "too large" (the
	// secret itself is then too long for the KDF: 400).
	skeleton := len(loginBody("", nil, 101))
	body := loginBody(strings.Repeat("s", amatino.MaxLoginBody-skeleton), nil, 101)
	if len(body) != amatino.MaxLoginBody {
		t.Fatalf("test bug: body of %d bytes", len(body))
	}
	if w := doLogin(e, body, nil); w.Code == http.StatusRequestEntityTooLarge || w.Code != http.StatusBadRequest {
		t.Fatalf("64 KiB body with a long secret: status %d, want 400 (not 413)", w.Code)
	}
}

// SEC-05 via the dialect: a full hashing pool answers 503 + Retry-After at
// once, without a KDF run.
func TestLoginBusy(t *testing.T) {
	// Slow params for the dummy hash (unknown users), one slot, no queue.
	slow := password.Params{Time: 4, MemoryKiB: 32 << 10, Threads: 1, SaltLen: 16, KeyLen: 32}
	e := newEnvWithHasher(t, amatino.Options{}, password.Config{Params: slow, Slots: 1, Queue: -1, AllowWeakParams: true})
	for attempt := 0; attempt < 20; attempt++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			doLogin(e, loginBody("x", "nobody@example.com", nil), nil)
		}()
		for {
			if running, _ := e.hasher.InFlight(); running == 1 {
				break
			}
			select {
			case <-done:
			default:
				time.Sleep(50 * time.Microsecond)
				continue
			}
			break
		}
		w := doLogin(e, loginBody(alicePW, nil, 101), nil)
		<-done
		if w.Code == http.StatusOK {
			continue // the first login finished before ours began; try again
		}
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d (%s), want 503", w.Code, w.Body.Bytes())
		}
		if w.Header().Get("Retry-After") != "1" {
			t.Errorf("Retry-After = %q, want 1", w.Header().Get("Retry-After"))
		}
		if b := decodeErr(t, w); b.Error != caddyauth.CodeBusy {
			t.Errorf("error %q, want busy", b.Error)
		}
		if e.obs.Logins(caddyauth.DialectAmatino, "throttled") != 1 {
			t.Errorf("Login(throttled) = %d", e.obs.Logins(caddyauth.DialectAmatino, "throttled"))
		}
		if e.store.Creates.Load() != 0 {
			t.Error("a throttled login stored a session")
		}
		return
	}
	t.Skip("could not catch a login in flight")
}

// SEC-10: logout ends the session.
func TestLogout_SEC10(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	res := parseLoginOK(t, doLogin(e, loginBody(alicePW, nil, 101), nil))
	id := strconv.FormatInt(res.SessionID, 10)

	v, ref := e.verify(signed(http.MethodGet, "/entities", id, sigAt(res.APIKey, wireTS, "/entities", nil), nil))
	wantOK(t, v, ref)

	r := signed(http.MethodDelete, "/session", id, sigAt(res.APIKey, wireTS, "/session", nil), nil)
	if h := e.d.Endpoint(r); h == nil {
		t.Fatal("DELETE /session is not an endpoint")
	}
	w := httptest.NewRecorder()
	e.d.Logout(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("logout status %d: %s", w.Code, w.Body.Bytes())
	}
	if got, want := w.Body.String(), `{"session_id":`+id+"}\n"; got != want {
		t.Fatalf("logout answer %q, want %q", got, want)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("logout answer cacheable")
	}
	if e.obs.EndedTotal("logout") != 1 {
		t.Errorf("SessionEnded(logout) = %d", e.obs.EndedTotal("logout"))
	}
	// Re-signed with a fresh timestamp: refused.
	e.clock.Advance(5 * time.Second)
	_, ref = e.verify(signed(http.MethodGet, "/entities", id, sigAt(res.APIKey, wireTS+5, "/entities", nil), nil))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeUnknownSession)
	// A second logout is refused the same way.
	w = httptest.NewRecorder()
	e.d.Logout(w, signed(http.MethodDelete, "/session", id, sigAt(res.APIKey, wireTS+5, "/session", nil), nil))
	if w.Code != http.StatusUnauthorized || decodeErr(t, w).Error != caddyauth.CodeUnknownSession {
		t.Fatalf("second logout: %d %s", w.Code, w.Body.Bytes())
	}
}

func TestLogoutRefusals(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	e.wireSession(t)
	for name, r := range map[string]*http.Request{
		"unsigned":        signed(http.MethodDelete, "/session", "", "", nil),
		"id only":         signed(http.MethodDelete, "/session", wireSessionID, "", nil),
		"wrong signature": signed(http.MethodDelete, "/session", wireSessionID, wireSig, nil), // signed for /entities
	} {
		w := httptest.NewRecorder()
		e.d.Logout(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, w.Code)
		}
		if len(w.Header().Values("WWW-Authenticate")) != 1 {
			t.Errorf("%s: WWW-Authenticate %q", name, w.Header().Values("WWW-Authenticate"))
		}
	}
	if e.store.Deletes.Load() != 0 {
		t.Fatal("refused logout deleted a session")
	}
	// Store failure on delete: 503, and the session is still there.
	e.store.FailDeletes.Store(true)
	w := httptest.NewRecorder()
	e.d.Logout(w, signed(http.MethodDelete, "/session", wireSessionID, sigAt(wireKey, wireTS, "/session", nil), nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("logout with failing store: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestEndpointRouting(t *testing.T) {
	e := newEnv(t, amatino.Options{})
	for _, tc := range []struct {
		method, target string
		want           bool
	}{
		{http.MethodPost, "/session", true},
		{http.MethodDelete, "/session", true},
		{http.MethodPost, "/session?x=1", true},
		{http.MethodGet, "/session", false},
		{http.MethodPost, "/session/", false},
		{http.MethodPost, "/sessions", false},
		{http.MethodPost, "/entities", false},
	} {
		if got := e.d.Endpoint(httptest.NewRequest(tc.method, tc.target, nil)) != nil; got != tc.want {
			t.Errorf("%s %s: endpoint=%v, want %v", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	f := false
	bad := []amatino.Options{
		{Window: 500 * time.Millisecond},
		{Window: 1500 * time.Millisecond},
		{Window: 2 * time.Hour},
		{Window: -time.Second},
		{RequireBodySignature: true, LegacyBodySignatures: &f},
		{Replay: "drop"},
		{MaxBody: -1},
		{SessionLifetime: 30 * time.Second},
		{IdleTimeout: -time.Minute},
		{SessionLifetime: time.Hour, IdleTimeout: 2 * time.Hour},
	}
	e := newEnv(t, amatino.Options{})
	for _, o := range bad {
		if _, err := amatino.New(e.m, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	got := e.d.Options()
	if got.Window != amatino.DefaultWindow || got.LegacyBodySignatures == nil || !*got.LegacyBodySignatures ||
		got.Replay != amatino.ReplayObserve || got.MaxBody != amatino.DefaultMaxBody || got.SessionLifetime != amatino.DefaultSessionLifetime {
		t.Errorf("defaults: %+v", got)
	}
}
