package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/password"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// The demo user of the test gateway.
const (
	userEmail  = "alice@example.com"
	userID     = int64(1001)
	userSecret = "correct horse battery staple"
	maxBody    = 1 << 20
)

// userKey is alice's registered Ed25519 key (the WIRE.md sxt seed 1..32).
var userKey = func() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}()

// gateway is a small stand-in for the Caddy handler, built from the real
// engine parts: the Manager over a memory store, the amatino dialect for
// login, logout and amatino verification, and the rfc9421 package for the
// native scheme, wired the way the design note says the handler should be.
// Requests that pass are answered with an echo of what a backend would
// receive.
type gateway struct {
	m      *caddyauth.Manager
	d      *amatino.Dialect
	clock  caddyauth.Clock
	policy rfc9421.Policy
	srv    *httptest.Server

	upstream atomic.Int64 // requests that passed verification
	seen     atomic.Int64 // requests that reached the gateway, logins excluded

	mu    sync.Mutex
	codes map[string]string            // sxt auth code → userId
	keys  map[string]ed25519.PublicKey // sxt-registered keys by key id
}

// echo is what a passed request's answer says.
type echo struct {
	Method     string `json:"method"`
	Target     string `json:"target"`
	UserID     int64  `json:"user_id"`
	BodySHA256 string `json:"body_sha256"`
	Scheme     string `json:"scheme"`
}

// newGateway starts a gateway on a free loopback port with clock (nil for
// the system clock).
func newGateway(clock caddyauth.Clock) (*gateway, error) {
	if clock == nil {
		clock = caddyauth.SystemClock{}
	}
	hasher, err := password.NewHasher(enginetest.CheapHasherConfig())
	if err != nil {
		return nil, err
	}
	phc, err := hasher.Hash(context.Background(), userSecret)
	if err != nil {
		return nil, err
	}
	pub := userKey.Public().(ed25519.PublicKey)
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: userID, Email: userEmail, PasswordHash: phc,
		PublicKeys: []caddyauth.PublicKey{{ID: caddyauth.PublicKeyID(pub), Key: pub}}}})
	if err != nil {
		return nil, err
	}
	sealer, err := caddyauth.NewSealer(caddyauth.NewMasterKey())
	if err != nil {
		return nil, err
	}
	g := &gateway{clock: clock, policy: rfc9421.DefaultPolicy(), codes: map[string]string{},
		keys: map[string]ed25519.PublicKey{}}
	g.m, err = caddyauth.NewManager(caddyauth.Config{Store: enginetest.NewStore(), Users: users, Hasher: hasher,
		Sealer: sealer, Clock: clock})
	if err != nil {
		return nil, err
	}
	if g.d, err = amatino.New(g.m, amatino.Options{}); err != nil {
		return nil, err
	}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	return g, nil
}

func (g *gateway) close() { g.srv.Close() }

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/auth/code" && r.Method == http.MethodPost:
		g.sxtCode(w, r)
		return
	case r.URL.Path == "/v1/auth/token" && r.Method == http.MethodPost:
		g.sxtToken(w, r)
		return
	}
	if h := g.d.Endpoint(r); h != nil {
		h(w, r)
		return
	}
	g.seen.Add(1)
	if amatino.Present(r) {
		v, ref := g.d.Verify(r, amatino.SignedPath(r))
		if ref != nil {
			ref.Write(w)
			return
		}
		g.pass(w, r, v.Session.UserID, nil)
		return
	}
	g.native(w, r)
}

// native verifies an RFC 9421 request: signature, then replay, then the
// body's digest, and only then lets it through.
func (g *gateway) native(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var userOf int64
	resolver := rfc9421.KeyResolverFunc(func(ctx context.Context, keyID string) (rfc9421.Key, error) {
		if strings.HasPrefix(keyID, "ed25519-") {
			g.mu.Lock()
			pub, ok := g.keys[keyID]
			g.mu.Unlock()
			if ok {
				userOf = userID
				return rfc9421.Ed25519Verifier(pub), nil
			}
			u, err := g.m.Users().UserByKeyID(ctx, keyID)
			if err != nil {
				if errors.Is(err, caddyauth.ErrNotFound) {
					return rfc9421.Key{}, rfc9421.ErrUnknownKey
				}
				return rfc9421.Key{}, err
			}
			userOf = u.ID
			return rfc9421.Ed25519Verifier(u.Key(keyID).Key), nil
		}
		if _, ok := caddyauth.ParsePositiveDecimal(keyID); !ok {
			return rfc9421.Key{}, rfc9421.ErrUnknownKey
		}
		s, err := g.m.Session(ctx, keyID)
		switch {
		case err == nil && s.Dialect == caddyauth.DialectAmatino && s.Kind == caddyauth.KindHMACKey:
			userOf = s.UserID
			return rfc9421.HMACKey(s.Secret), nil
		case err == nil, errors.Is(err, caddyauth.ErrUnknownSession):
			return rfc9421.Key{}, rfc9421.ErrUnknownKey
		}
		return rfc9421.Key{}, err
	})
	req := rfc9421.FromHTTP(r)
	res, err := rfc9421.Verify(ctx, req, resolver, g.policy, g.clock.Now())
	if err == nil {
		err = rfc9421.CheckReplay(ctx, g.m, res, g.policy)
	}
	var body []byte
	if err == nil && (res.CoversDigest || req.HasBody) {
		if body, err = caddyauth.ReadBody(r, maxBody); err == nil {
			err = rfc9421.VerifyContentDigest(r.Header[rfc9421.HeaderContentDigest], body)
		}
	}
	if err != nil {
		g.refuse(w, req.HasBody, err)
		return
	}
	g.pass(w, r, userOf, body)
}

// refuse answers a native refusal: the JSON error body with, for clock
// skew, the server's time; Accept-Signature on a missing signature.
func (g *gateway) refuse(w http.ResponseWriter, hasBody bool, err error) {
	e, ok := rfc9421.AsError(err)
	if !ok {
		if errors.Is(err, caddyauth.ErrSessionExpired) {
			caddyauth.WriteJSON(w, http.StatusUnauthorized, map[string]any{"error": caddyauth.CodeSessionExpired, "message": "session expired"})
			return
		}
		caddyauth.Unavailable().Write(w)
		return
	}
	ans := map[string]any{"error": e.Code, "message": e.Detail}
	if len(e.Missing) > 0 {
		ans["missing"] = e.Missing
	}
	if !e.ServerTime.IsZero() {
		ans["server_time"] = e.ServerTime.Unix()
		ans["skew"] = int64(e.Skew / time.Second)
	}
	if e.Code == rfc9421.CodeMissingSignature {
		w.Header().Set(rfc9421.HeaderAcceptSignature, g.policy.AcceptSignature(hasBody))
	}
	caddyauth.WriteJSON(w, e.Status(), ans)
}

// pass is the backend: it echoes what it received.
func (g *gateway) pass(w http.ResponseWriter, r *http.Request, user int64, body []byte) {
	if body == nil && r.Body != nil {
		var err error
		if body, err = caddyauth.ReadBody(r, maxBody); err != nil {
			caddyauth.WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": caddyauth.CodeBodyTooLarge})
			return
		}
	}
	g.upstream.Add(1)
	sum := sha256.Sum256(body)
	caddyauth.WriteJSON(w, http.StatusOK, echo{Method: r.Method, Target: r.RequestURI, UserID: user,
		BodySHA256: hex.EncodeToString(sum[:]), Scheme: schemeOf(r)})
}

func schemeOf(r *http.Request) string {
	switch {
	case r.Header.Get("Signature-Input") != "":
		return "rfc9421"
	case r.Header.Get("X-Signature") != "":
		return "amatino"
	}
	return ""
}

// sxtCode and sxtToken follow WIRE.md's sxt contract closely enough for
// the client's key flow: a single-use random code, signed bare with
// Ed25519; an unknown key is registered for the user (registration open).
func (g *gateway) sxtCode(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID string `json:"userId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.UserID == "" {
		caddyauth.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": caddyauth.CodeInvalidRequest})
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	code := hex.EncodeToString(b)
	g.mu.Lock()
	g.codes[code] = in.UserID
	g.mu.Unlock()
	caddyauth.WriteJSON(w, http.StatusOK, map[string]string{"authCode": code})
}

func (g *gateway) sxtToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID, AuthCode, Signature, Key, Scheme string
	}
	bad := func() {
		caddyauth.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": caddyauth.CodeBadCredentials})
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Scheme != "ed25519" {
		bad()
		return
	}
	g.mu.Lock()
	owner, ok := g.codes[in.AuthCode]
	delete(g.codes, in.AuthCode)
	g.mu.Unlock()
	key, kerr := base64.StdEncoding.Strict().DecodeString(in.Key)
	sig, serr := hex.DecodeString(in.Signature)
	if !ok || owner != in.UserID || kerr != nil || serr != nil || len(key) != ed25519.PublicKeySize ||
		len(sig) != ed25519.SignatureSize || !ed25519.Verify(key, []byte(in.AuthCode), sig) {
		bad()
		return
	}
	g.mu.Lock()
	g.keys[caddyauth.PublicKeyID(key)] = key
	g.mu.Unlock()
	now := g.clock.Now()
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"accessToken": "access-" + in.AuthCode,
		"refreshToken": "refresh-" + in.AuthCode, "accessTokenExpires": now.Add(25 * time.Minute).UnixMilli(),
		"refreshTokenExpires": now.Add(24 * time.Hour).UnixMilli()})
}

// mustGateway is newGateway for examples, which have no *testing.T.
func mustGateway() *gateway {
	g, err := newGateway(nil)
	if err != nil {
		panic(fmt.Sprintf("start test gateway: %v", err))
	}
	return g
}
