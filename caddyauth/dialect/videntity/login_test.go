package videntity_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// checkXMLHeaders checks the headers every endpoint answer carries (SEC-14:
// no-store on answers that carry a key).
func checkXMLHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	h := w.Header()
	if got := h.Get("Content-Type"); got != "application/xml; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := h.Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length = %q, body has %d bytes", got, w.Body.Len())
	}
}

// WIRE.md videntity: the success answer, byte for byte but for the
// transaction number and the key; on both login paths.
func TestLoginGoldenAnswer(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	for _, path := range []string{videntity.LoginPath, videntity.LoginAliasPath} {
		t.Run(path, func(t *testing.T) {
			before := e.hasher.Calls()
			w := e.post(t, path, formCT, loginForm("alice", alicePW, aliceAccount))
			a := wantSuccess(t, w)
			checkXMLHeaders(t, w)
			if got := e.hasher.Calls() - before; got != 1 {
				t.Errorf("KDF calls = %d, want 1 (SEC-04)", got)
			}
			want := `<?xml version="1.0" encoding="utf-8"?>
<response api_method="` + path + `">
<status>SUCCESS</status>
<api_tx_number>N</api_tx_number>
<detail>Login successful</detail>
<response_name_value>
<session_key>KEY</session_key>
</response_name_value>
<timestamp>TS</timestamp>
</response>
`
			if got := mask(w.Body.Bytes()); got != want {
				t.Errorf("answer\n%s\nwant\n%s", got, want)
			}
			if a.APIMethod != path || a.Timestamp != wireTimestamp || a.Detail == "" || a.TxNumber <= 0 {
				t.Errorf("decoded answer %+v", a)
			}
			if a.NV == nil || a.NV.SessionKey == nil || len(*a.NV.SessionKey) != videntity.KeyLength {
				t.Fatalf("no session key in %s", w.Body.Bytes())
			}
			// The key works.
			v, ref := e.proxied(*a.NV.SessionKey)
			wantVerified(t, v, ref)
			if v.Session.UserID != 201 {
				t.Errorf("user id %d, want 201", v.Session.UserID)
			}
		})
	}
	if n := e.obs.Logins(caddyauth.DialectVidentity, "ok"); n != 2 {
		t.Errorf("Login(ok) = %d, want 2", n)
	}
}

// Every error number, golden, with its honest status and headers.
func TestErrorGoldenAnswers(t *testing.T) {
	type tc struct {
		name        string
		run         func(t *testing.T, e *env) *httptest.ResponseRecorder
		status      int
		method      string
		number      int
		errName     string
		detail      string
		challenge   bool
		retryAfter  string
		acceptsPost bool
	}
	expiredKey := func(t *testing.T, e *env) string {
		key := e.loginKey(t)
		e.clock.Advance(videntity.DefaultIdleTimeout + time.Second)
		return key
	}
	cases := []tc{
		{name: "1 wrong password", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.login(t, "alice", "wrong", aliceAccount)
		}, status: 401, method: videntity.LoginPath, number: 1, errName: "AUTHENTICATION_ERROR",
			detail: "username, password or account_number is incorrect", challenge: true},
		{name: "1 on the alias", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.post(t, videntity.LoginAliasPath, formCT, loginForm("nobody", "x", "y"))
		}, status: 401, method: videntity.LoginAliasPath, number: 1, errName: "AUTHENTICATION_ERROR",
			detail: "username, password or account_number is incorrect", challenge: true},
		{name: "2 unknown key on ping", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.ping(t, strings.Repeat("A", 43))
		}, status: 404, method: videntity.PingPath, number: 2, errName: "SESSION_DOES_NOT_EXIST",
			detail: "Session does not exist"},
		{name: "2 unknown key on logout", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.logout(t, strings.Repeat("A", 43))
		}, status: 404, method: videntity.LogoutPath, number: 2, errName: "SESSION_DOES_NOT_EXIST",
			detail: "Session does not exist"},
		{name: "3 expired key on ping", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.ping(t, expiredKey(t, e))
		}, status: 401, method: videntity.PingPath, number: 3, errName: "SESSION_EXPIRED",
			detail: "Session has expired", challenge: true},
		{name: "3 expired key on logout", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.logout(t, expiredKey(t, e))
		}, status: 401, method: videntity.LogoutPath, number: 3, errName: "SESSION_EXPIRED",
			detail: "Session has expired", challenge: true},
		{name: "4 missing account_number", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.post(t, videntity.LoginPath, formCT, form("username", "alice", "password", alicePW))
		}, status: 400, method: videntity.LoginPath, number: 4, errName: "MISSING_MANDATORY_FIELD",
			detail: "Mandatory field account_number is missing"},
		{name: "4 missing session_key", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.post(t, videntity.PingPath, formCT, "")
		}, status: 400, method: videntity.PingPath, number: 4, errName: "MISSING_MANDATORY_FIELD",
			detail: "Mandatory field session_key is missing"},
		{name: "11 store down on login", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			e.store.FailCreates.Store(true)
			return e.login(t, "alice", alicePW, aliceAccount)
		}, status: 503, method: videntity.LoginPath, number: 11, errName: "SERVER_ERROR",
			detail: "Service temporarily unavailable, retry shortly", retryAfter: "1"},
		{name: "11 store down on ping", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			e.store.FailGets.Store(true)
			return e.ping(t, strings.Repeat("b", 43))
		}, status: 503, method: videntity.PingPath, number: 11, errName: "SERVER_ERROR",
			detail: "Service temporarily unavailable, retry shortly", retryAfter: "1"},
		{name: "4 duplicated field (400)", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.post(t, videntity.LoginPath, formCT, loginForm("alice", alicePW, aliceAccount)+"&username=bob")
		}, status: 400, method: videntity.LoginPath, number: 4, errName: "MISSING_MANDATORY_FIELD",
			detail: "Field username is given more than once"},
		{name: "4 too large (413)", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.post(t, videntity.LogoutPath, formCT, strings.Repeat("x", videntity.MaxFormBody+1))
		}, status: 413, method: videntity.LogoutPath, number: 4, errName: "MISSING_MANDATORY_FIELD",
			detail: "Request body too large"},
		{name: "4 JSON (415)", run: func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.post(t, videntity.LoginPath, "application/json", `{"username":"alice"}`)
		}, status: 415, method: videntity.LoginPath, number: 4, errName: "MISSING_MANDATORY_FIELD",
			detail: "Request body must be application/x-www-form-urlencoded", acceptsPost: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, videntity.Options{})
			w := c.run(t, e)
			a := wantError(t, w, c.status, c.number)
			checkXMLHeaders(t, w)
			want := `<?xml version="1.0" encoding="utf-8"?>
<response api_method="` + c.method + `">
<status>ERROR</status>
<api_tx_number>N</api_tx_number>
<error_number>` + strconv.Itoa(c.number) + `</error_number>
<error_name>` + c.errName + `</error_name>
<error_detail>` + c.detail + `</error_detail>
<timestamp>TS</timestamp>
</response>
`
			if got := mask(w.Body.Bytes()); got != want {
				t.Errorf("answer\n%s\nwant\n%s", got, want)
			}
			if a.ErrorName != c.errName || a.ErrorDetail != c.detail || a.APIMethod != c.method || a.NV != nil {
				t.Errorf("decoded answer %+v", a)
			}
			if want := e.clock.Now().UTC().Format("2006-01-02 15:04:05"); a.Timestamp != want {
				t.Errorf("timestamp %q, want the manager's clock %q", a.Timestamp, want)
			}
			if got := w.Header().Values("WWW-Authenticate"); c.challenge != (len(got) == 1 && got[0] == videntity.Challenge) {
				t.Errorf("WWW-Authenticate %q, challenge wanted: %v", got, c.challenge)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if got := w.Header().Get("Accept-Post") != ""; got != c.acceptsPost {
				t.Errorf("Accept-Post %q", w.Header().Get("Accept-Post"))
			}
		})
	}
}

// api_tx_number grows with every answer, success or error, across
// Dialects; the timestamp has the documented form.
func TestTxNumberIncreasingAndTimestamp(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	e2 := newEnv(t, videntity.Options{})
	tsForm := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$`)
	var last int64
	for i := range 20 {
		var w *httptest.ResponseRecorder
		switch i % 4 {
		case 0:
			w = e.login(t, "alice", alicePW, aliceAccount)
		case 1:
			w = e.login(t, "alice", "wrong", aliceAccount)
		case 2:
			w = e2.ping(t, "short")
		case 3:
			w = e2.post(t, videntity.PingPath, "text/plain", "")
		}
		a := parseAnswer(t, w)
		if a.TxNumber <= last {
			t.Fatalf("answer %d: api_tx_number %d after %d", i, a.TxNumber, last)
		}
		last = a.TxNumber
		if !tsForm.MatchString(a.Timestamp) {
			t.Fatalf("timestamp %q", a.Timestamp)
		}
		e.clock.Advance(1500 * time.Millisecond)
	}
	// Seeded with the wall clock in µs, so a restart continues above.
	if floor := time.Now().Add(-time.Hour).UnixMicro(); last < floor {
		t.Errorf("api_tx_number %d is below the wall clock in µs (%d)", last, floor)
	}
	// UTC from the manager's clock, whatever the clock's zone.
	e.clock.Set(time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -7*3600)))
	if a := parseAnswer(t, e.login(t, "x", "y", "z")); a.Timestamp != "2030-01-02 10:04:05" {
		t.Errorf("timestamp %q, want 2030-01-02 10:04:05", a.Timestamp)
	}
}

// Hostile input is never echoed, and answers stay XML; a password never
// appears in an answer.
func TestXMLEscapingHostileInput(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	for _, tc := range []struct {
		name string
		w    *httptest.ResponseRecorder
	}{
		{"success", e.login(t, hostileName, hostilePW, hostileAcct)},
		{"wrong password", e.login(t, hostileName, "x"+hostilePW, hostileAcct)},
		{"missing field", e.post(t, videntity.LoginPath, formCT, form("username", hostileName, "password", hostilePW))},
		{"duplicate", e.post(t, videntity.LoginPath, formCT, loginForm(hostileName, hostilePW, hostileAcct)+"&password=x")},
		{"hostile key", e.ping(t, `<&">`+strings.Repeat("a", 40))},
	} {
		parseAnswer(t, tc.w)
		body := tc.w.Body.String()
		for _, s := range []string{hostileName, hostilePW, hostileAcct, `<&">`, "evil", "pw<", "acct"} {
			if strings.Contains(body, s) {
				t.Errorf("%s: answer contains %q: %s", tc.name, s, body)
			}
		}
		for _, pw := range []string{hostilePW, alicePW} {
			if strings.Contains(body, pw) {
				t.Errorf("%s: answer contains a password", tc.name)
			}
		}
	}
}

// SEC-03, SEC-04: every kind of wrong login gives the same status, headers
// and bytes (but for the transaction number and timestamp), after one KDF.
func TestLoginFailuresIdentical_SEC03_SEC04(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	cases := []struct{ name, user, pw, acct string }{
		{"unknown user", "nobody", alicePW, aliceAccount},
		{"wrong username case", "Alice", alicePW, aliceAccount},
		{"wrong password", "alice", "wrong", aliceAccount},
		{"other user's password", "alice", bobPW, aliceAccount},
		{"wrong account number", "alice", alicePW, "ACC-9999"},
		{"other user's account number", "alice", alicePW, bobAccount},
		{"account number case", "alice", alicePW, strings.ToLower(aliceAccount)},
		{"disabled user right password", "dave", davePW, daveAccount},
		{"disabled user wrong password", "dave", "wrong", daveAccount},
	}
	var first *httptest.ResponseRecorder
	for _, c := range cases {
		before, creates := e.hasher.Calls(), e.store.Creates.Load()
		e.clock.Advance(time.Second) // the timestamps differ; masking must cover it
		w := e.login(t, c.user, c.pw, c.acct)
		wantError(t, w, http.StatusUnauthorized, 1)
		if got := e.hasher.Calls() - before; got != 1 {
			t.Errorf("%s: KDF calls = %d, want 1 (SEC-04)", c.name, got)
		}
		if e.store.Creates.Load() != creates {
			t.Errorf("%s: a session was stored", c.name)
		}
		if first == nil {
			first = w
			continue
		}
		if bytes.Equal(w.Body.Bytes(), first.Body.Bytes()) {
			t.Errorf("%s: identical raw bodies: tx number or timestamp not moving", c.name)
		}
		if mask(w.Body.Bytes()) != mask(first.Body.Bytes()) {
			t.Errorf("%s: body %q differs from %q", c.name, w.Body.Bytes(), first.Body.Bytes())
		}
		if w.Code != first.Code || len(w.Header()) != len(first.Header()) {
			t.Errorf("%s: %d %v differs from %d %v", c.name, w.Code, w.Header(), first.Code, first.Header())
		}
		for k := range first.Header() {
			if k == "Content-Length" {
				continue // the tx number's digit count may differ
			}
			if strings.Join(w.Header().Values(k), "\n") != strings.Join(first.Header().Values(k), "\n") {
				t.Errorf("%s: header %s = %q, want %q", c.name, k, w.Header().Values(k), first.Header().Values(k))
			}
		}
	}
	if n := e.obs.Logins(caddyauth.DialectVidentity, "bad_credentials"); n != len(cases) {
		t.Errorf("Login(bad_credentials) = %d, want %d", n, len(cases))
	}
	if n := len(e.obs.EventsOf("login_failed")); n != len(cases) {
		t.Errorf("login_failed events = %d, want %d", n, len(cases))
	}
}

// SEC-33, SEC-34: form edge cases are refused before any KDF run.
func TestLoginFormEdgeCases_SEC33_SEC34(t *testing.T) {
	good := loginForm("alice", alicePW, aliceAccount)
	cases := []struct {
		name, ct, body string
		status, number int
		detail         string
	}{
		{"duplicate username", formCT, good + "&username=alice", 400, 4, "Field username is given more than once"},
		{"duplicate password, same value", formCT, good + "&password=" + alicePW, 400, 4, "Field password is given more than once"},
		{"duplicate by escape", formCT, good + "&user%6Eame=bob", 400, 4, "Field username is given more than once"},
		{"duplicate empty", formCT, "account_number=&" + good, 400, 4, "Field account_number is given more than once"},
		{"missing username", formCT, form("password", alicePW, "account_number", aliceAccount), 400, 4, "Mandatory field username is missing"},
		{"missing password", formCT, form("username", "alice", "account_number", aliceAccount), 400, 4, "Mandatory field password is missing"},
		{"missing account_number", formCT, form("username", "alice", "password", alicePW), 400, 4, "Mandatory field account_number is missing"},
		{"empty username", formCT, loginForm("", alicePW, aliceAccount), 400, 4, "Mandatory field username is missing"},
		{"empty password", formCT, loginForm("alice", "", aliceAccount), 400, 4, "Mandatory field password is missing"},
		{"empty account_number", formCT, loginForm("alice", alicePW, ""), 400, 4, "Mandatory field account_number is missing"},
		{"name without value", formCT, "username&password=x&account_number=y", 400, 4, "Mandatory field username is missing"},
		{"wrong case name", formCT, form("Username", "alice", "password", alicePW, "account_number", aliceAccount), 400, 4, "Mandatory field username is missing"},
		{"empty body", formCT, "", 400, 4, "Mandatory field username is missing"},
		{"non-UTF-8 value", formCT, good + "&x=%FF", 400, 4, "Form fields must be valid UTF-8"},
		{"non-UTF-8 raw", formCT, "username=al\xffice&password=x&account_number=y", 400, 4, "Form fields must be valid UTF-8"},
		{"broken escape", formCT, good + "&x=%G1", 400, 4, "Request body is not a valid form"},
		{"password too long (SEC-02)", formCT, loginForm("alice", strings.Repeat("p", caddyauth.MaxPasswordBytes+1), aliceAccount), 400, 4, "Field password is too long"},
		{"oversized", formCT, good + "&pad=" + strings.Repeat("x", videntity.MaxFormBody+1-len(good)-len("&pad=")), 413, 4, "Request body too large"},
		{"json", "application/json", `{"username":"alice"}`, 415, 4, "Request body must be application/x-www-form-urlencoded"},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--x--\r\n", 415, 4, "Request body must be application/x-www-form-urlencoded"},
		{"no content type", "", good, 415, 4, "Request body must be application/x-www-form-urlencoded"},
		{"text/plain", "text/plain", good, 415, 4, "Request body must be application/x-www-form-urlencoded"},
		{"broken content type", formCT + "; =", good, 415, 4, "Request body must be application/x-www-form-urlencoded"},
	}
	e := newEnv(t, videntity.Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, malformed := e.hasher.Calls(), e.obs.Logins(caddyauth.DialectVidentity, "malformed")
			w := e.post(t, videntity.LoginPath, c.ct, c.body)
			a := wantError(t, w, c.status, c.number)
			if a.ErrorDetail != c.detail {
				t.Errorf("detail %q, want %q", a.ErrorDetail, c.detail)
			}
			if got := e.hasher.Calls() - before; got != 0 {
				t.Errorf("KDF calls = %d, want 0", got)
			}
			if e.obs.Logins(caddyauth.DialectVidentity, "malformed") != malformed+1 {
				t.Error("not counted as a malformed login")
			}
		})
	}
	if e.store.Creates.Load() != 0 {
		t.Error("a refused login stored a session")
	}

	// Accepted forms: exactly 64 KiB; a charset; upper case; extra fields,
	// empty pairs, any order.
	exact := good + "&pad=" + strings.Repeat("x", videntity.MaxFormBody-len(good)-len("&pad="))
	if len(exact) != videntity.MaxFormBody {
		t.Fatalf("test bug: %d bytes", len(exact))
	}
	for _, c := range []struct{ name, ct, body string }{
		{"exactly 64 KiB", formCT, exact},
		{"charset", formCT + "; charset=utf-8", good},
		{"charset upper case", "Application/X-WWW-Form-Urlencoded; Charset=UTF-8", good},
		{"extra fields and empty pairs", formCT, "&api=1&" + form("account_number", aliceAccount, "password", alicePW) + "&&username=alice&"},
		{"escaped names", formCT, "user%6Eame=alice&pass%77ord=" + strings.ReplaceAll(alicePW, " ", "+") + "&account_number=" + aliceAccount},
	} {
		if w := e.post(t, videntity.LoginPath, c.ct, c.body); w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body.Bytes())
		}
	}

	// A declared length over the limit is refused before the body is read.
	r := httptest.NewRequest(http.MethodPost, videntity.LoginPath, strings.NewReader(good))
	r.Header.Set("Content-Type", formCT)
	r.ContentLength = videntity.MaxFormBody + 1
	wantError(t, e.serve(t, r), 413, 4)
	// An encoded body is not a form we can read.
	r = httptest.NewRequest(http.MethodPost, videntity.LoginPath, strings.NewReader(good))
	r.Header.Set("Content-Type", formCT)
	r.Header.Set("Content-Encoding", "gzip")
	wantError(t, e.serve(t, r), 415, 4)
}

func TestEndpointRouting(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	for _, tc := range []struct {
		method, target string
		want           bool
	}{
		{http.MethodPost, "/session/login", true},
		{http.MethodPost, "/sessions/login", true},
		{http.MethodPost, "/session/ping", true},
		{http.MethodPost, "/session/logout", true},
		{http.MethodPost, "/session/login?x=1", true},
		{http.MethodGet, "/session/login", false},
		{http.MethodGet, "/sessions/login", false},
		{http.MethodGet, "/session/ping", false},
		{http.MethodGet, "/session/logout", false},
		{http.MethodPut, "/session/login", false},
		{http.MethodDelete, "/session/logout", false},
		{http.MethodPost, "/session/login/", false},
		{http.MethodPost, "/session", false},
		{http.MethodPost, "/sessions/ping", false},
		{http.MethodPost, "/entities", false},
	} {
		if got := e.d.Endpoint(httptest.NewRequest(tc.method, tc.target, nil)) != nil; got != tc.want {
			t.Errorf("%s %s: endpoint=%v, want %v", tc.method, tc.target, got, tc.want)
		}
	}
}

// SEC-05 via the dialect: a full hashing pool answers 503 SERVER_ERROR +
// Retry-After at once.
func TestLoginBusy(t *testing.T) {
	slow := password.Params{Time: 4, MemoryKiB: 32 << 10, Threads: 1, SaltLen: 16, KeyLen: 32}
	e := newEnvWithHasher(t, videntity.Options{}, password.Config{Params: slow, Slots: 1, Queue: -1, AllowWeakParams: true})
	for range 20 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			r := httptest.NewRequest(http.MethodPost, videntity.LoginPath, strings.NewReader(loginForm("nobody", "x", "y")))
			r.Header.Set("Content-Type", formCT)
			e.d.Login(httptest.NewRecorder(), r)
		}()
	wait:
		for {
			if running, _ := e.hasher.InFlight(); running == 1 {
				break
			}
			select {
			case <-done:
				break wait
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
		w := e.login(t, "alice", alicePW, aliceAccount)
		<-done
		if w.Code == http.StatusOK {
			continue // the first login finished before ours began
		}
		wantError(t, w, http.StatusServiceUnavailable, 11)
		if w.Header().Get("Retry-After") != "1" {
			t.Errorf("Retry-After = %q, want 1", w.Header().Get("Retry-After"))
		}
		if e.obs.Logins(caddyauth.DialectVidentity, "throttled") != 1 {
			t.Errorf("Login(throttled) = %d", e.obs.Logins(caddyauth.DialectVidentity, "throttled"))
		}
		return
	}
	t.Skip("could not catch a login in flight")
}

// Metrics and audit go through the Manager's Observer, labelled videntity,
// and never carry the key.
func TestMetricsAndAudit(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	ctx := caddyauth.WithClientIP(t.Context(), "192.0.2.7")
	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", formCT)
		return e.serve(t, r)
	}
	w := post(videntity.LoginPath, loginForm("alice", alicePW, aliceAccount))
	key := *wantSuccess(t, w).NV.SessionKey
	post(videntity.LoginPath, loginForm("alice", "wrong", aliceAccount))
	post(videntity.LoginPath, "username=alice")
	wantSuccess(t, post(videntity.PingPath, form("session_key", key)))
	wantSuccess(t, post(videntity.LogoutPath, form("session_key", key)))
	e.store.FailCreates.Store(true)
	post(videntity.LoginPath, loginForm("alice", alicePW, aliceAccount))

	for result, want := range map[string]int{"ok": 1, "bad_credentials": 1, "malformed": 1, "unavailable": 1, "throttled": 0} {
		if got := e.obs.Logins(caddyauth.DialectVidentity, result); got != want {
			t.Errorf("Login(%s) = %d, want %d", result, got, want)
		}
	}
	if e.obs.Ended(caddyauth.DialectVidentity, "logout") != 1 {
		t.Errorf("SessionEnded(logout) = %d", e.obs.Ended(caddyauth.DialectVidentity, "logout"))
	}
	hash := e.m.LogHash(storeID(key))
	for _, c := range []struct {
		typ, reason string
		n           int
		user        int64
		hash        string
	}{
		{"login", "ok", 1, 201, hash},
		{"login_failed", "", 3, 0, ""},
		{"ping", "ok", 1, 201, hash},
		{"logout", "logout", 1, 201, hash},
	} {
		evs := e.obs.EventsOf(c.typ)
		if len(evs) != c.n {
			t.Errorf("%s events: %d, want %d", c.typ, len(evs), c.n)
			continue
		}
		for _, ev := range evs {
			if ev.Dialect != caddyauth.DialectVidentity || ev.ClientIP != "192.0.2.7" || ev.UserID != c.user ||
				ev.SessionHash != c.hash || (c.reason != "" && ev.Reason != c.reason) || ev.Time.IsZero() {
				t.Errorf("%s event %+v", c.typ, ev)
			}
			if strings.Contains(ev.SessionHash+ev.Reason, key) || ev.SessionHash == storeID(key) {
				t.Errorf("%s event carries the key or the raw session id", c.typ)
			}
		}
	}
	reasons := map[string]bool{}
	for _, ev := range e.obs.EventsOf("login_failed") {
		reasons[ev.Reason] = true
	}
	for _, r := range []string{caddyauth.CodeBadCredentials, caddyauth.CodeInvalidRequest, caddyauth.CodeStoreUnavailable} {
		if !reasons[r] {
			t.Errorf("no login_failed event with reason %s (got %v)", r, reasons)
		}
	}
}

// SEC-12: the configuration refuses an absolute lifetime below the idle
// timeout.
func TestOptionsValidation_SEC12(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	for _, o := range []videntity.Options{
		{SessionLifetime: 10 * time.Minute},                         // below the default idle 30m
		{SessionLifetime: time.Hour, IdleTimeout: 2 * time.Hour},    // absolute < idle
		{IdleTimeout: 25 * time.Hour},                               // above the default 24h
		{IdleTimeout: 30 * time.Second, SessionLifetime: time.Hour}, // too short
		{IdleTimeout: -time.Minute},                                 // negative
		{SessionLifetime: -time.Hour},                               // negative
		{MaxBody: -1},                                               // negative
	} {
		if _, err := videntity.New(e.m, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	for _, o := range []videntity.Options{
		{IdleTimeout: time.Hour, SessionLifetime: time.Hour},
		{IdleTimeout: time.Minute},
	} {
		if _, err := videntity.New(e.m, o); err != nil {
			t.Errorf("New(%+v): %v", o, err)
		}
	}
	got := e.d.Options()
	if got.IdleTimeout != 30*time.Minute || got.SessionLifetime != 24*time.Hour || got.MaxBody != 10<<20 || got.IdleResetOnUse {
		t.Errorf("defaults: %+v", got)
	}
}
