package amatino_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/password"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
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

var cheapParams = password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	alicePW    = "correct horse battery staple"
	disabledPW = "disabled but right"
)

// countingObserver records the metrics-relevant Observer calls.
type countingObserver struct {
	mu      sync.Mutex
	logins  map[string]int
	replays map[string]int
	created int
	ended   map[string]int
	events  []caddyauth.Event
}

func newObserver() *countingObserver {
	return &countingObserver{logins: map[string]int{}, replays: map[string]int{}, ended: map[string]int{}}
}

func (o *countingObserver) Audit(e caddyauth.Event) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}
func (o *countingObserver) CacheLookup(bool) {}
func (o *countingObserver) SessionCreated(caddyauth.Dialect) {
	o.mu.Lock()
	o.created++
	o.mu.Unlock()
}
func (o *countingObserver) SessionEnded(_ caddyauth.Dialect, reason string) {
	o.mu.Lock()
	o.ended[reason]++
	o.mu.Unlock()
}
func (o *countingObserver) StoreError(string) {}
func (o *countingObserver) Login(d caddyauth.Dialect, result string) {
	o.mu.Lock()
	o.logins[string(d)+"/"+result]++
	o.mu.Unlock()
}
func (o *countingObserver) Replay(d caddyauth.Dialect, action string) {
	o.mu.Lock()
	o.replays[string(d)+"/"+action]++
	o.mu.Unlock()
}

func (o *countingObserver) login(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.logins["amatino/"+result]
}

func (o *countingObserver) replay(action string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.replays["amatino/"+action]
}

func (o *countingObserver) createdCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.created
}

func (o *countingObserver) endedCount(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ended[reason]
}

// flakyStore wraps the memory store, counting writes and failing reads or
// deletes on demand (REL-01).
type flakyStore struct {
	*memory.Store
	failGets    atomic.Bool
	failDeletes atomic.Bool
	creates     atomic.Int64
	deletes     atomic.Int64
}

func (f *flakyStore) CreateSession(ctx context.Context, s *caddyauth.Session) error {
	f.creates.Add(1)
	return f.Store.CreateSession(ctx, s)
}

func (f *flakyStore) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	if f.failGets.Load() {
		return nil, fmt.Errorf("flaky: %w: connection refused", caddyauth.ErrUnavailable)
	}
	return f.Store.GetSession(ctx, id)
}

func (f *flakyStore) DeleteSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	f.deletes.Add(1)
	if f.failDeletes.Load() {
		return nil, fmt.Errorf("flaky: %w: connection refused", caddyauth.ErrUnavailable)
	}
	return f.Store.DeleteSession(ctx, id)
}

type env struct {
	d      *amatino.Dialect
	m      *caddyauth.Manager
	store  *flakyStore
	clock  *caddyauth.FakeClock
	hasher *password.Hasher
	obs    *countingObserver
}

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := password.NewHasher(password.Config{Params: cheapParams, AllowWeakParams: true})
	if err != nil {
		t.Fatal(err)
	}
	phc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return phc
}

// newEnv builds a dialect over a manager with a fake clock at 1700000000,
// a memory store and cheap password hashing.
func newEnv(t testing.TB, opts amatino.Options) *env {
	t.Helper()
	return newEnvWithHasher(t, opts, password.Config{Params: cheapParams, AllowWeakParams: true})
}

func newEnvWithHasher(t testing.TB, opts amatino.Options, hc password.Config) *env {
	t.Helper()
	hasher, err := password.NewHasher(hc)
	if err != nil {
		t.Fatal(err)
	}
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 101, Email: "alice@example.com", PasswordHash: mustHash(t, alicePW)},
		{ID: 102, Email: "disabled@example.com", PasswordHash: mustHash(t, disabledPW), Disabled: true},
		{ID: 103, Email: "bob@example.com", PasswordHash: mustHash(t, "bob's secret")},
	})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := caddyauth.NewSealer(caddyauth.NewMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: &flakyStore{Store: memory.New()}, clock: caddyauth.NewFakeClock(time.Unix(wireTS, 0)),
		hasher: hasher, obs: newObserver()}
	e.m, err = caddyauth.NewManager(caddyauth.Config{Store: e.store, Users: users, Hasher: hasher, Sealer: sealer,
		Clock: e.clock, Observer: e.obs})
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
