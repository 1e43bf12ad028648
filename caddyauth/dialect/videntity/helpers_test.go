package videntity_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// The WIRE.md example's timestamp: the fake clock starts there.
var t0 = time.Date(2008, 9, 30, 15, 56, 42, 0, time.UTC)

const wireTimestamp = "2008-09-30 15:56:42"

// Users of every test.
const (
	alicePW      = "correct horse battery staple"
	aliceAccount = "ACC-1001"
	davePW       = "disabled but right"
	daveAccount  = "ACC-1002"
	bobPW        = "bob's secret"
	bobAccount   = "ACC-1003"
	hostileName  = `<&">evil'`
	hostilePW    = `pw<&">'`
	hostileAcct  = `<acct&">`
)

type env struct {
	d      *videntity.Dialect
	m      *caddyauth.Manager
	store  *enginetest.Store
	clock  *caddyauth.FakeClock
	hasher *password.Hasher
	obs    *enginetest.Observer
}

func newEnv(t testing.TB, opts videntity.Options) *env {
	t.Helper()
	return newEnvWithHasher(t, opts, enginetest.CheapHasherConfig())
}

// newEnvWithHasher builds the env with hasher config hc. The abuse controls
// are off unless abuse is given: most tests log in far more often than the
// default throttles allow, on a clock that never refills them.
func newEnvWithHasher(t testing.TB, opts videntity.Options, hc password.Config, abuse ...*caddyauth.Abuse) *env {
	t.Helper()
	hasher, err := password.NewHasher(hc)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(pw string) string { return enginetest.Hash(t, pw) }
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 201, Username: "alice", AccountNumber: aliceAccount, PasswordHash: hash(alicePW)},
		{ID: 202, Username: "dave", AccountNumber: daveAccount, PasswordHash: hash(davePW), Disabled: true},
		{ID: 203, Username: "bob", AccountNumber: bobAccount, PasswordHash: hash(bobPW)},
		{ID: 204, Username: hostileName, AccountNumber: hostileAcct, PasswordHash: hash(hostilePW)},
	})
	if err != nil {
		t.Fatal(err)
	}
	sealer := enginetest.NewSealer(t)
	e := &env{store: enginetest.NewStore(), clock: caddyauth.NewFakeClock(t0), hasher: hasher, obs: enginetest.NewObserver()}
	e.m, err = caddyauth.NewManager(caddyauth.Config{Store: e.store, Users: users, Hasher: hasher, Sealer: sealer,
		Clock: e.clock, Observer: e.obs, Abuse: enginetest.AbuseOrNone(abuse...)})
	if err != nil {
		t.Fatal(err)
	}
	e.d, err = videntity.New(e.m, opts)
	if err != nil {
		t.Fatalf("videntity.New: %v", err)
	}
	return e
}

// form renders fields in the given order (url.Values would sort them).
func form(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

func loginForm(user, pw, acct string) string {
	return form("username", user, "password", pw, "account_number", acct)
}

// post sends a form to an endpoint through Endpoint, as the gateway does.
func (e *env) post(t testing.TB, path, ct, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return e.serve(t, r)
}

func (e *env) serve(t testing.TB, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	h := e.d.Endpoint(r)
	if h == nil {
		t.Fatalf("%s %s is not an endpoint", r.Method, r.URL.Path)
	}
	w := httptest.NewRecorder()
	h(w, r)
	return w
}

const formCT = "application/x-www-form-urlencoded"

func (e *env) login(t testing.TB, user, pw, acct string) *httptest.ResponseRecorder {
	t.Helper()
	return e.post(t, videntity.LoginPath, formCT, loginForm(user, pw, acct))
}

// loginKey logs alice in and returns her session key.
func (e *env) loginKey(t testing.TB) string {
	t.Helper()
	w := e.login(t, "alice", alicePW, aliceAccount)
	a := parseAnswer(t, w)
	if w.Code != http.StatusOK || a.Status != "SUCCESS" || a.NV == nil || a.NV.SessionKey == nil {
		t.Fatalf("login: %d %s", w.Code, w.Body.Bytes())
	}
	return *a.NV.SessionKey
}

func (e *env) ping(t testing.TB, key string) *httptest.ResponseRecorder {
	t.Helper()
	return e.post(t, videntity.PingPath, formCT, form("session_key", key))
}

func (e *env) logout(t testing.TB, key string) *httptest.ResponseRecorder {
	t.Helper()
	return e.post(t, videntity.LogoutPath, formCT, form("session_key", key))
}

// proxied verifies a GET carrying key in X-Session-Key.
func (e *env) proxied(key string) (*videntity.Verified, *caddyauth.Refusal) {
	r := httptest.NewRequest(http.MethodGet, "/entities", nil)
	r.Header.Set("X-Session-Key", key)
	return e.d.Verify(r)
}

// storeID is the session id a key must have: SHA-256, lower-case hex.
func storeID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// answer is the XML answer, decoded.
type answer struct {
	XMLName     xml.Name `xml:"response"`
	APIMethod   string   `xml:"api_method,attr"`
	Status      string   `xml:"status"`
	TxNumber    int64    `xml:"api_tx_number"`
	Detail      string   `xml:"detail"`
	NV          *nv      `xml:"response_name_value"`
	ErrorNumber int      `xml:"error_number"`
	ErrorName   string   `xml:"error_name"`
	ErrorDetail string   `xml:"error_detail"`
	Timestamp   string   `xml:"timestamp"`
}

type nv struct {
	SessionKey *string `xml:"session_key"`
	Inner      string  `xml:",innerxml"`
}

func parseAnswer(t testing.TB, w *httptest.ResponseRecorder) answer {
	t.Helper()
	var a answer
	if err := xml.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %q is not XML: %v", w.Body.Bytes(), err)
	}
	return a
}

// wantError checks an error answer's status and number.
func wantError(t testing.TB, w *httptest.ResponseRecorder, status, number int) answer {
	t.Helper()
	a := parseAnswer(t, w)
	if w.Code != status || a.Status != "ERROR" || a.ErrorNumber != number {
		t.Fatalf("answer %d %s #%d, want %d ERROR #%d: %s", w.Code, a.Status, a.ErrorNumber, status, number, w.Body.Bytes())
	}
	return a
}

func wantSuccess(t testing.TB, w *httptest.ResponseRecorder) answer {
	t.Helper()
	a := parseAnswer(t, w)
	if w.Code != http.StatusOK || a.Status != "SUCCESS" {
		t.Fatalf("answer %d %s, want 200 SUCCESS: %s", w.Code, a.Status, w.Body.Bytes())
	}
	return a
}

var (
	txRE  = regexp.MustCompile(`<api_tx_number>[0-9]+</api_tx_number>`)
	tsRE  = regexp.MustCompile(`<timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}</timestamp>`)
	keyRE = regexp.MustCompile(`<session_key>[A-Za-z0-9]{43}</session_key>`)
)

// mask replaces the parts that differ between answers that should be
// equal: the transaction number, the timestamp and a session key.
func mask(b []byte) string {
	s := txRE.ReplaceAllString(string(b), "<api_tx_number>N</api_tx_number>")
	s = tsRE.ReplaceAllString(s, "<timestamp>TS</timestamp>")
	return keyRE.ReplaceAllString(s, "<session_key>KEY</session_key>")
}

func wantRefusal(t testing.TB, ref *caddyauth.Refusal, status int, code string) {
	t.Helper()
	if ref == nil {
		t.Fatalf("verified, want %d %s", status, code)
	}
	if ref.Status != status || ref.Code != code {
		t.Fatalf("refusal %d %s (%s), want %d %s", ref.Status, ref.Code, ref.Message, status, code)
	}
}

func wantVerified(t testing.TB, v *videntity.Verified, ref *caddyauth.Refusal) {
	t.Helper()
	if ref != nil {
		t.Fatalf("refused %d %s: %s", ref.Status, ref.Code, ref.Message)
	}
	if v == nil || v.Session == nil {
		t.Fatal("no Verified")
	}
}
