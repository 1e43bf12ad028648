package native_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/native"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// The fake clock starts here (the WIRE.md example's created time).
const t0 = int64(1700000000)

// Users of the test directory.
const (
	aliceID = int64(101) // password user, owns the hmac sessions
	carolID = int64(201) // owns the RFC 9421 B.2.6 ed25519 key
	daveID  = int64(202) // disabled, owns daveKey
	erinID  = int64(203) // a user held by the store directory, owns erinKey
)

// The WIRE.md example's hmac session: its id is the keyid, its api key
// string's bytes the HMAC key.
const (
	sessionID = "4200100"
	apiKey    = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA"
)

// countingStore counts session reads on top of enginetest.Store, so a test
// can prove that a request was refused before any store access (SEC-36).
type countingStore struct {
	*enginetest.Store
	gets atomic.Int64
}

func (s *countingStore) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	s.gets.Add(1)
	return s.Store.GetSession(ctx, id)
}

var _ caddyauth.Store = (*countingStore)(nil)

// countingUsers counts key lookups and can fail them like a store that
// cannot answer.
type countingUsers struct {
	caddyauth.UserDirectory
	keyLookups atomic.Int64
	fail       atomic.Bool
}

func (u *countingUsers) UserByKeyID(ctx context.Context, id string) (*caddyauth.User, error) {
	u.keyLookups.Add(1)
	if u.fail.Load() {
		return nil, errors.New("directory: connection refused")
	}
	return u.UserDirectory.UserByKeyID(ctx, id)
}

var _ caddyauth.UserDirectory = (*countingUsers)(nil)

// failingGuard is a replay guard that cannot answer.
type failingGuard struct{}

func (failingGuard) SeenOnce(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("replay store: connection refused")
}

type env struct {
	d     *native.Dialect
	m     *caddyauth.Manager
	store *countingStore
	users *countingUsers
	clock *caddyauth.FakeClock
	obs   *enginetest.Observer
	// carol is the B.2.6 key; dave's and erin's are generated.
	carolKey, daveKey, erinKey ed25519.PrivateKey
}

type envOpt struct {
	guard caddyauth.ReplayGuard
}

// newEnv builds the dialect with opts over a manager with a fake clock at
// t0, a memory store holding the WIRE.md session, and users alice
// (password), carol (the RFC 9421 B.2.6 key), dave (disabled, with a key)
// and erin (a key, found in the second directory layer).
func newEnv(t testing.TB, opts native.Options, eo ...envOpt) *env {
	t.Helper()
	e := &env{clock: caddyauth.NewFakeClock(time.Unix(t0, 0)), obs: enginetest.NewObserver(),
		store: &countingStore{Store: enginetest.NewStore()}, carolKey: vectorKey(t),
		daveKey: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)),
		erinKey: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))}
	pub := func(k ed25519.PrivateKey) []caddyauth.PublicKey {
		return []caddyauth.PublicKey{{Key: k.Public().(ed25519.PublicKey)}}
	}
	static, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: aliceID, Email: "alice@example.com", PasswordHash: enginetest.Hash(t, "alice's secret")},
		{ID: carolID, Username: "carol", PublicKeys: pub(e.carolKey)},
		{ID: daveID, Username: "dave", PublicKeys: pub(e.daveKey), Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	second, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: erinID, Username: "erin", PublicKeys: pub(e.erinKey)}})
	if err != nil {
		t.Fatal(err)
	}
	e.users = &countingUsers{UserDirectory: caddyauth.Layered{Static: static, Store: second}}
	cfg := caddyauth.Config{Store: e.store, Users: e.users, Hasher: enginetest.CheapHasher(t),
		Sealer: enginetest.NewSealer(t), Clock: e.clock, Observer: e.obs}
	if len(eo) > 0 && eo[0].guard != nil {
		cfg.Replay = eo[0].guard
	}
	if e.m, err = caddyauth.NewManager(cfg); err != nil {
		t.Fatal(err)
	}
	if e.d, err = native.New(e.m, opts); err != nil {
		t.Fatalf("native.New: %v", err)
	}
	e.session(t, sessionID, apiKey, 0)
	return e
}

// session starts an amatino (hmac) session of alice.
func (e *env) session(t testing.TB, id, key string, idle time.Duration) {
	t.Helper()
	e.start(t, caddyauth.NewSession{Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey, ID: id,
		Secret: []byte(key), Lifetime: 24 * time.Hour, IdleTimeout: idle})
}

func (e *env) start(t testing.TB, ns caddyauth.NewSession) {
	t.Helper()
	u, err := e.m.Users().UserByID(context.Background(), aliceID)
	if err != nil {
		t.Fatal(err)
	}
	ns.User = u
	if _, err := e.m.StartSession(context.Background(), ns); err != nil {
		t.Fatalf("StartSession: %v", err)
	}
}

// vectorKey is the RFC 9421 B.2.6 Ed25519 private key of the shared
// vectors file.
func vectorKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	v := loadVectors(t)
	der, err := base64.StdEncoding.DecodeString(v.Cases[1].PrivateKeyPKCS8)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("B.2.6 key: %v", err)
	}
	priv := k.(ed25519.PrivateKey)
	pub, _ := base64.StdEncoding.DecodeString(v.Cases[1].PublicKeyRaw)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		t.Fatal("B.2.6 private and public keys do not match")
	}
	return priv
}

// vectors is the shape of the shared rfc9421.json.
type vectors struct {
	Request struct {
		Method, Target, Authority string
		Headers                   map[string]string
		Body                      string
	}
	Cases []struct {
		Name            string
		KeyB64          string `json:"key_b64"`
		PublicKeyRaw    string `json:"public_key_raw_b64"`
		PrivateKeyPKCS8 string `json:"private_key_pkcs8_b64"`
		SignatureInput  string `json:"signature_input"`
		Signature       string
	}
}

// loadVectors reads the shared vectors, which sit beside the repository
// (../shared from its root).
func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "vectors", "rfc9421.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if len(v.Cases) != 2 {
		t.Fatalf("vectors: %d cases, want B.2.5 and B.2.6", len(v.Cases))
	}
	return v
}

// req is a request to build and sign.
type req struct {
	method, target string
	body           []byte
	contentType    string
	chunked        bool
	host           string
	header         map[string]string
}

// build returns the server-side request, as net/http would hand it over.
func (q req) build() *http.Request {
	var rd io.Reader
	if q.body != nil {
		rd = bytes.NewReader(q.body)
	}
	method := q.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, q.target, rd)
	if q.host != "" {
		r.Host = q.host
	}
	if q.contentType != "" {
		r.Header.Set("Content-Type", q.contentType)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if q.chunked {
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
	}
	return r
}

// signing says how to sign a request.
type signing struct {
	key        rfc9421.Key
	keyID      string
	components []string // nil: the default policy's for the request
	created    int64    // 0: the clock's now
	noCreated  bool
	expires    int64
	nonce      string // "": a fixed per-test default
	noNonce    bool
	alg        rfc9421.Algorithm
	digest     rfc9421.DigestAlgorithm // "": sha-256
	noDigest   bool
}

// hmacSigning signs with the WIRE.md session.
func hmacSigning() signing {
	return signing{key: rfc9421.HMACKey([]byte(apiKey)), keyID: sessionID}
}

// edSigning signs with an ed25519 key under its gateway key id.
func edSigning(k ed25519.PrivateKey) signing {
	return signing{key: rfc9421.Ed25519Signer(k), keyID: caddyauth.PublicKeyID(k.Public().(ed25519.PublicKey))}
}

var nonceSeq atomic.Int64

// signed builds q and signs it per s at the env's clock.
func (e *env) signed(t testing.TB, q req, s signing) *http.Request {
	t.Helper()
	r := q.build()
	hasBody := r.ContentLength != 0
	if hasBody && !s.noDigest {
		cd, err := rfc9421.ContentDigest(s.digest, q.body)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set(rfc9421.HeaderContentDigest, cd)
	}
	comps := s.components
	if comps == nil {
		comps = rfc9421.DefaultPolicy().Required(hasBody)
	}
	sp := rfc9421.SignParams{KeyID: s.keyID, Alg: s.alg, Components: comps, Nonce: s.nonce}
	if sp.Nonce == "" && !s.noNonce {
		sp.Nonce = "nonce-" + strconv.FormatInt(nonceSeq.Add(1), 10)
	}
	if !s.noCreated {
		created := s.created
		if created == 0 {
			created = e.clock.Now().Unix()
		}
		sp.Created = time.Unix(created, 0)
	}
	if s.expires != 0 {
		sp.Expires = time.Unix(s.expires, 0)
	}
	key := s.key
	if s.alg != "" && s.alg != key.Alg {
		// Sign refuses a mismatched alg; sign with the real key, claim
		// another algorithm by hand below.
		sp.Alg = ""
	}
	in, sig, err := rfc9421.Sign(rfc9421.FromHTTP(r), key, sp)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if s.alg != "" && s.alg != key.Alg {
		in += `;alg="` + string(s.alg) + `"`
	}
	r.Header.Set(rfc9421.HeaderSignatureInput, in)
	r.Header.Set(rfc9421.HeaderSignature, sig)
	return r
}

func wantOK(t testing.TB, v *native.Verified, ref *caddyauth.Refusal) *native.Verified {
	t.Helper()
	if ref != nil {
		t.Fatalf("refused %d %s: %s (missing %v)", ref.Status, ref.Code, ref.Message, ref.Missing)
	}
	if v == nil {
		t.Fatal("no Verified")
	}
	return v
}

// verifyOK verifies r and fails the test unless it passes.
func (e *env) verifyOK(t testing.TB, r *http.Request) *native.Verified {
	t.Helper()
	v, ref := e.d.Verify(r)
	return wantOK(t, v, ref)
}

func wantRefusal(t testing.TB, ref *caddyauth.Refusal, status int, code, result string) {
	t.Helper()
	if ref == nil {
		t.Fatalf("verified, want %d %s", status, code)
	}
	if ref.Status != status || ref.Code != code || ref.Result != result {
		t.Fatalf("refusal %d %s result %s (%s), want %d %s result %s", ref.Status, ref.Code, ref.Result,
			ref.Message, status, code, result)
	}
	if status == http.StatusUnauthorized && len(ref.Challenges) == 0 {
		t.Errorf("401 %s without a WWW-Authenticate challenge", code)
	}
}

// answer writes ref and decodes the JSON body into a generic map.
func answer(t testing.TB, ref *caddyauth.Refusal) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	ref.Write(w)
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("refusal body %q: %v", w.Body.Bytes(), err)
	}
	return w, m
}
