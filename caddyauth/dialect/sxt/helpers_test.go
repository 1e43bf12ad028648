package sxt_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// epoch is the fake clock's start.
var epoch = time.Unix(1700000000, 0).UTC()

// keyPair is a client's Ed25519 key.
type keyPair struct {
	priv ed25519.PrivateKey
	pub  string // padded standard base64, as clients send it
}

// seededKey derives a key from a seed of 32 bytes first, first+1, …
func seededKey(first byte) keyPair {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = first + byte(i)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return keyPair{priv: priv, pub: base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))}
}

// The static users' keys; aliceKey is the WIRE.md vector's (seed 1..32).
var (
	aliceKey    = seededKey(1)
	bobKey      = seededKey(33)
	disabledKey = seededKey(65)
	newKey      = seededKey(97)
	otherKey    = seededKey(129)
)

// sign is what a client does: Ed25519 over the code's bytes, lower-case hex.
func (k keyPair) sign(code string) string {
	return hex.EncodeToString(ed25519.Sign(k.priv, []byte(code)))
}

func rawKey(k keyPair) []byte {
	b, _ := base64.StdEncoding.DecodeString(k.pub)
	return b
}

type env struct {
	d     *sxt.Dialect
	m     *caddyauth.Manager
	store *enginetest.Store
	clock *caddyauth.FakeClock
	obs   *enginetest.Observer
}

// newEnv builds the dialect over a manager with a fake clock, a memory store
// behind static users alice (101), bob (103), a disabled user (102) and a
// password-only user (104).
func newEnv(t testing.TB, opts sxt.Options) *env {
	t.Helper()
	static, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 101, Username: "alice", Email: "alice@example.com", PublicKeys: []caddyauth.PublicKey{{Key: rawKey(aliceKey)}}},
		{ID: 102, Username: "disabled", Disabled: true, PublicKeys: []caddyauth.PublicKey{{Key: rawKey(disabledKey)}}},
		{ID: 103, Username: "bob", PublicKeys: []caddyauth.PublicKey{{Key: rawKey(bobKey)}}},
		{ID: 104, Username: "pwonly", PasswordHash: enginetest.Hash(t, "a password of some length")},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: enginetest.NewStore(), clock: caddyauth.NewFakeClock(epoch), obs: enginetest.NewObserver()}
	e.m, err = caddyauth.NewManager(caddyauth.Config{Store: e.store,
		Users:  caddyauth.Layered{Static: static, Store: e.store},
		Hasher: enginetest.CheapHasher(t), Sealer: enginetest.NewSealer(t), Clock: e.clock, Observer: e.obs})
	if err != nil {
		t.Fatal(err)
	}
	e.d, err = sxt.New(e.m, opts)
	if err != nil {
		t.Fatalf("sxt.New: %v", err)
	}
	return e
}

// do sends r to the dialect's endpoint, or verifies it as proxied traffic
// answering 200 "proxied" when it passes.
func (e *env) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	if h := e.d.Endpoint(r); h != nil {
		h(w, r)
		return w
	}
	if _, ref := e.d.Verify(r); ref != nil {
		ref.Write(w)
		return w
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "proxied")
	return w
}

func req(method, target, body string, hdr ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func jsonReq(method, target string, v any) *http.Request {
	b, _ := json.Marshal(v)
	r := httptest.NewRequest(method, target, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func bearer(method, target, tok string) *http.Request {
	return req(method, target, "", "Authorization", "Bearer "+tok)
}

// code asks for an auth code for userID.
func (e *env) code(t testing.TB, userID string) string {
	t.Helper()
	w := e.do(jsonReq(http.MethodPost, "/v1/auth/code", map[string]any{"userId": userID}))
	if w.Code != http.StatusOK {
		t.Fatalf("auth/code: %d %s", w.Code, w.Body)
	}
	var a struct {
		AuthCode string `json:"authCode"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || a.AuthCode == "" {
		t.Fatalf("auth/code answer %s: %v", w.Body, err)
	}
	return a.AuthCode
}

// tokenReq is an auth/token request answering code with key k.
func tokenReq(userID, code string, k keyPair) *http.Request {
	return jsonReq(http.MethodPost, "/v1/auth/token", map[string]any{"userId": userID, "authCode": code,
		"signature": k.sign(code), "key": k.pub, "scheme": "ed25519"})
}

type tokens struct {
	AccessToken         string `json:"accessToken"`
	RefreshToken        string `json:"refreshToken"`
	AccessTokenExpires  int64  `json:"accessTokenExpires"`
	RefreshTokenExpires int64  `json:"refreshTokenExpires"`
}

// parseTokens checks a token answer: 200, no-store, exactly the four
// fields, integer milliseconds.
func parseTokens(t testing.TB, w *httptest.ResponseRecorder) tokens {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("token answer %d %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store (SEC-14)", cc)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("token answer %s: %v", w.Body, err)
	}
	if len(raw) != 4 {
		t.Fatalf("token answer has %d fields: %s", len(raw), w.Body)
	}
	for _, k := range []string{"accessTokenExpires", "refreshTokenExpires"} {
		if _, ok := caddyauth.ParsePositiveDecimal(string(raw[k])); !ok {
			t.Errorf("%s = %s, want an integer", k, raw[k])
		}
	}
	var tk tokens
	if err := json.Unmarshal(w.Body.Bytes(), &tk); err != nil || tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("token answer %s: %v", w.Body, err)
	}
	return tk
}

// login runs code + token for userID with key k.
func (e *env) login(t testing.TB, userID string, k keyPair) tokens {
	t.Helper()
	return parseTokens(t, e.do(tokenReq(userID, e.code(t, userID), k)))
}

type errBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// wantErr checks a JSON refusal's status and code.
func wantErr(t testing.TB, what string, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	var b errBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("%s: %d, body %q is not a JSON refusal", what, w.Code, w.Body)
	}
	if w.Code != status || b.Error != code {
		t.Fatalf("%s: %d %s (%s), want %d %s", what, w.Code, b.Error, b.Message, status, code)
	}
}

// userCount is the number of users in the store.
func (e *env) userCount(t testing.TB) int {
	t.Helper()
	us, err := e.store.ListUsers(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(us)
}
