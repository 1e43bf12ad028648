package amatino_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/password"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

// The WIRE.md amatino vectors.
const (
	wireKey       = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA"
	wireTS        = int64(1700000000)
	wirePath      = "/entities"
	wireSig       = "XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ=="
	wireLegacyIn  = `[{"name": "Acme", "description": null}]`
	wireLegacySig = "5vG6nSncOhPRBYQA/S5LrZUbWdwzqO5U8QOU9dq/XuG27v/ICr1XONqahCCl6w/evUdph0lXUkz1JLSFFR7qqw=="
	wireSessionID = "4200100"
)

const (
	alicePW    = "correct horse battery staple"
	disabledPW = "disabled but right"
)

type env struct {
	d      *amatino.Dialect
	m      *caddyauth.Manager
	store  *enginetest.Store
	clock  *caddyauth.FakeClock
	hasher *password.Hasher
	obs    *enginetest.Observer
}

// newEnv builds a dialect over a manager with a fake clock at 1700000000,
// a memory store and cheap password hashing.
func newEnv(t testing.TB, opts amatino.Options) *env {
	t.Helper()
	return newEnvWithHasher(t, opts, enginetest.CheapHasherConfig())
}

// newEnvWithHasher builds the env with hasher config hc. The abuse controls
// are off unless abuse is given: most tests log in far more often than the
// default throttles allow, on a clock that never refills them.
func newEnvWithHasher(t testing.TB, opts amatino.Options, hc password.Config, abuse ...*caddyauth.Abuse) *env {
	t.Helper()
	hasher, err := password.NewHasher(hc)
	if err != nil {
		t.Fatal(err)
	}
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 101, Email: "alice@example.com", PasswordHash: enginetest.Hash(t, alicePW)},
		{ID: 102, Email: "disabled@example.com", PasswordHash: enginetest.Hash(t, disabledPW), Disabled: true},
		{ID: 103, Email: "bob@example.com", PasswordHash: enginetest.Hash(t, "bob's secret")},
	})
	if err != nil {
		t.Fatal(err)
	}
	sealer := enginetest.NewSealer(t)
	e := &env{store: enginetest.NewStore(), clock: caddyauth.NewFakeClock(time.Unix(wireTS, 0)),
		hasher: hasher, obs: enginetest.NewObserver()}
	e.m, err = caddyauth.NewManager(caddyauth.Config{Store: e.store, Users: users, Hasher: hasher, Sealer: sealer,
		Clock: e.clock, Observer: e.obs, Abuse: enginetest.AbuseOrNone(abuse...)})
	if err != nil {
		t.Fatal(err)
	}
	e.d, err = amatino.New(e.m, opts)
	if err != nil {
		t.Fatalf("amatino.New: %v", err)
	}
	return e
}

// session creates an amatino session with the given id and key for user 101.
func (e *env) session(t testing.TB, id, key string, lifetime time.Duration) {
	t.Helper()
	u, err := e.m.Users().UserByID(context.Background(), 101)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.StartSession(context.Background(), caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
		Kind: caddyauth.KindHMACKey, ID: id, Secret: []byte(key), Lifetime: lifetime}); err != nil {
		t.Fatalf("StartSession: %v", err)
	}
}

// wireSession creates the WIRE.md vector's session.
func (e *env) wireSession(t testing.TB) { e.session(t, wireSessionID, wireKey, 24*time.Hour) }

// lockedWireEnv is newEnv(t, opts) with the WIRE.md session under the
// signature lock: one bad signature (on path, at the clock's second) is
// enough to lock it, and the lock lasts an hour of the fake clock.
func lockedWireEnv(t testing.TB, opts amatino.Options, path string) *env {
	t.Helper()
	clk := caddyauth.NewFakeClock(time.Unix(wireTS, 0))
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxSignatureFailures: 1, SignatureWindow: time.Hour}, nil, clk)
	e := newEnvWithHasher(t, opts, enginetest.CheapHasherConfig(), abuse)
	e.wireSession(t)
	_, ref := e.verify(signed(http.MethodGet, path, wireSessionID, sigAt("not the key", wireTS, path, nil), nil))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeBadSignature)
	return e
}

// signed builds a request to target carrying X-Session-ID and X-Signature.
func signed(method, target, id, sig string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if id != "" {
		r.Header.Set("X-Session-ID", id)
	}
	if sig != "" {
		r.Header.Set("X-Signature", sig)
	}
	return r
}

func sigAt(key string, ts int64, path string, body []byte) string {
	return sign.AmatinoSign([]byte(key), ts, path, body)
}

// verify runs d.Verify on r with the path the client signed.
func (e *env) verify(r *http.Request) (*amatino.Verified, *caddyauth.Refusal) {
	return e.d.Verify(r, amatino.SignedPath(r))
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

func wantOK(t testing.TB, v *amatino.Verified, ref *caddyauth.Refusal) {
	t.Helper()
	if ref != nil {
		t.Fatalf("refused %d %s: %s", ref.Status, ref.Code, ref.Message)
	}
	if v == nil || v.Session == nil {
		t.Fatal("no Verified")
	}
}

// loginBody renders a login body as the clients do (all three keys).
func loginBody(secret string, email any, userID any) []byte {
	b, _ := json.Marshal(map[string]any{"secret": secret, "account_email": email, "user_id": userID})
	return b
}

func doLogin(e *env, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, amatino.LoginPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.d.Login(w, r)
	return w
}

type loginResult struct {
	APIKey    string
	SessionID int64
	UserID    int64
}

// parseLoginOK checks the success shape: exactly three keys, integers that
// fit in int64, no-store.
func parseLoginOK(t testing.TB, w *httptest.ResponseRecorder) loginResult {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("login status %d, body %s", w.Code, w.Body.Bytes())
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("login answer %q: %v", w.Body.Bytes(), err)
	}
	if len(raw) != 3 || raw["api_key"] == nil || raw["session_id"] == nil || raw["user_id"] == nil {
		t.Fatalf("login answer keys: %s, want exactly api_key, session_id, user_id", w.Body.Bytes())
	}
	var res loginResult
	if err := json.Unmarshal(raw["api_key"], &res.APIKey); err != nil {
		t.Fatalf("api_key %s: %v", raw["api_key"], err)
	}
	var err error
	if res.SessionID, err = strconv.ParseInt(string(raw["session_id"]), 10, 64); err != nil || res.SessionID <= 0 {
		t.Fatalf("session_id %s is not a positive int64 JSON number", raw["session_id"])
	}
	if res.UserID, err = strconv.ParseInt(string(raw["user_id"]), 10, 64); err != nil || res.UserID <= 0 {
		t.Fatalf("user_id %s is not a positive int64 JSON number", raw["user_id"])
	}
	if len(res.APIKey) != 44 {
		t.Errorf("api_key %q has %d characters, want 44", res.APIKey, len(res.APIKey))
	}
	for _, c := range res.APIKey {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Errorf("api_key %q has %q outside the URL-safe alphabet", res.APIKey, c)
			break
		}
	}
	return res
}

type errBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func decodeErr(t testing.TB, w *httptest.ResponseRecorder) errBody {
	t.Helper()
	var b errBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", w.Body.Bytes(), err)
	}
	return b
}
