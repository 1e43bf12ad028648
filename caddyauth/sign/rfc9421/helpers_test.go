package rfc9421_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// The WIRE.md amatino key and session id, reused as a native hmac-sha256
// credential: keyid = decimal session id, key = the api key string's bytes.
const (
	apiKey    = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA"
	sessionID = "4200100"
	nowUnix   = int64(1700000000)
	testNonce = "n-1"
)

var now = time.Unix(nowUnix, 0)

// edKey is the WIRE.md sxt key (seed bytes 1..32).
var edKey = func() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}()

var edKeyID = caddyauth.PublicKeyID(edKey.Public().(ed25519.PublicKey))

var errStoreDown = errors.New("store down")

// resolver knows the hmac session and the ed25519 key; keyid "down"
// simulates a store that cannot answer.
var resolver = rfc9421.KeyResolverFunc(func(_ context.Context, id string) (rfc9421.Key, error) {
	switch id {
	case sessionID:
		return rfc9421.HMACKey([]byte(apiKey)), nil
	case edKeyID:
		return rfc9421.Ed25519Verifier(edKey.Public().(ed25519.PublicKey)), nil
	case "down":
		return rfc9421.Key{}, errStoreDown
	case "short-ed25519":
		return rfc9421.Ed25519Verifier(make([]byte, 31)), nil
	case "empty-hmac":
		return rfc9421.HMACKey(nil), nil
	}
	return rfc9421.Key{}, rfc9421.ErrUnknownKey
})

var defaultComponents = []string{"@method", "@authority", "@path", "@query"}
var bodyComponents = []string{"@method", "@authority", "@path", "@query", "content-digest", "content-type"}

// getReq is WIRE.md's example: GET http://127.0.0.1:8080/entities?x=1.
func getReq() rfc9421.Request {
	return rfc9421.Request{Method: "GET", Scheme: "http", Authority: "127.0.0.1:8080",
		Target: "/entities?x=1", Header: http.Header{}}
}

// postReq is a POST of body with Content-Type and a sha-256 Content-Digest.
func postReq(t testing.TB, target, body string) rfc9421.Request {
	t.Helper()
	d, err := rfc9421.ContentDigest(rfc9421.DigestSHA256, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Digest", d)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return rfc9421.Request{Method: "POST", Scheme: "http", Authority: "127.0.0.1:8080",
		Target: target, Header: h, HasBody: true}
}

// hmacParams are signature parameters meeting the default policy.
func hmacParams(components []string) rfc9421.SignParams {
	return rfc9421.SignParams{KeyID: sessionID, Components: components, Created: now, Nonce: testNonce}
}

// signed returns a copy of req carrying the signature made with key and sp.
func signed(t testing.TB, req rfc9421.Request, key rfc9421.Key, sp rfc9421.SignParams) rfc9421.Request {
	t.Helper()
	in, sig, err := rfc9421.Sign(req, key, sp)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	out := req
	out.Header = req.Header.Clone()
	out.Header.Set(rfc9421.HeaderSignatureInput, in)
	out.Header.Set(rfc9421.HeaderSignature, sig)
	return out
}

func hmacSigned(t testing.TB, req rfc9421.Request, components []string) rfc9421.Request {
	t.Helper()
	return signed(t, req, rfc9421.HMACKey([]byte(apiKey)), hmacParams(components))
}

// verify runs Verify with the default policy at now.
func verify(req rfc9421.Request) (*rfc9421.Result, error) {
	return rfc9421.Verify(context.Background(), req, resolver, rfc9421.DefaultPolicy(), now)
}

// wantCode fails unless err is an *Error with code.
func wantCode(t testing.TB, err error, code rfc9421.Code) *rfc9421.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("verified; want %s", code)
	}
	e, ok := rfc9421.AsError(err)
	if !ok {
		t.Fatalf("err = %v (%T); want *Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v); want %s", e.Code, e, code)
	}
	return e
}

func b64Of(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func newEdKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func newClock(at time.Time) *caddyauth.FakeClock { return caddyauth.NewFakeClock(at) }

// newGuard is the engine's in-memory replay guard on clock.
func newGuard(clock caddyauth.Clock) *caddyauth.MemoryReplayGuard {
	return caddyauth.NewMemoryReplayGuard(0, clock)
}

// failingGuard is a replay guard whose store cannot answer.
type failingGuard struct{}

func (failingGuard) SeenOnce(context.Context, string, time.Duration) (bool, error) {
	return false, errStoreDown
}
