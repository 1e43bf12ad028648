package sxt

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

type vectorCase struct {
	SeedHex      string `json:"seed_hex"`
	PublicKeyB64 string `json:"public_key_b64"`
	AuthCode     string `json:"auth_code"`
	SignatureHex string `json:"signature_hex"`
}

// loadVectors reads testdata/vectors.json, a copy of the project's
// vectors/sxt.json.
func loadVectors(t *testing.T) []vectorCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Cases []vectorCase }
	if err := json.Unmarshal(raw, &v); err != nil || len(v.Cases) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	return v.Cases
}

// The WIRE.md vector: the seed gives the key, the key signs the code's bytes
// alone, and the gateway verifies exactly that — also through the whole
// auth/token endpoint, with the vector's code issued for a user holding the
// vector's key.
func TestWireVector(t *testing.T) {
	for _, c := range loadVectors(t) {
		seed, _ := hex.DecodeString(c.SeedHex)
		priv := ed25519.NewKeyFromSeed(seed)
		if got := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)); got != c.PublicKeyB64 {
			t.Fatalf("public key %s, want %s", got, c.PublicKeyB64)
		}
		if got := hex.EncodeToString(ed25519.Sign(priv, []byte(c.AuthCode))); got != c.SignatureHex {
			t.Fatalf("signature %s, want %s", got, c.SignatureHex)
		}
		key, err := caddyauth.ParsePublicKeyBase64(c.PublicKeyB64)
		if err != nil {
			t.Fatal(err)
		}
		sig, ok := decodeSignature(c.SignatureHex)
		if !ok || !verify(key, sig, c.AuthCode) {
			t.Fatal("vector signature refused")
		}
		if verify(key, sig, c.AuthCode+"0") || verify(key[:31], sig, c.AuthCode) {
			t.Fatal("signature accepted for another code or a short key")
		}

		users, _ := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 7, Username: "vector", PublicKeys: []caddyauth.PublicKey{{Key: key}}}})
		m, err := caddyauth.NewManager(caddyauth.Config{Store: enginetest.NewStore(), Users: users,
			Hasher: enginetest.CheapHasher(t), Sealer: enginetest.NewSealer(t)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ephemeral().PutOnce(context.Background(), codeKeyPrefix+c.AuthCode,
			append([]byte{flagNoJoin}, "vector"...), d.o.CodeLifetime); err != nil {
			t.Fatal(err)
		}
		body := `{"userId":"vector","authCode":"` + c.AuthCode + `","signature":"` + c.SignatureHex +
			`","key":"` + c.PublicKeyB64 + `","scheme":"ed25519"}`
		r := httptest.NewRequest(http.MethodPost, "/v1/auth/token", strings.NewReader(body))
		w := httptest.NewRecorder()
		d.Endpoint(r)(w, r)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"accessToken"`) {
			t.Fatalf("vector login: %d %s", w.Code, w.Body)
		}
	}
}

// SEC-29: 10^5 codes, all distinct, all 128-bit lower-case hex.
func TestAuthCodesDistinctSEC29(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for range n {
		c := newAuthCode()
		if !validCode(c) {
			t.Fatalf("code %q is not 32 lower-case hex characters", c)
		}
		if _, dup := seen[c]; dup {
			t.Fatalf("duplicate code after %d", len(seen))
		}
		seen[c] = struct{}{}
	}
}

// SEC-30: signatures decode only from exactly 128 lower-case hex
// characters, and verify never panics on odd lengths.
func TestDecodeSignature(t *testing.T) {
	good := strings.Repeat("ab", 64)
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{good, true},
		{good[:126], false},
		{good + "ab", false},
		{strings.ToUpper(good), false},
		{good[:127] + "g", false},
		{"", false},
	} {
		if _, ok := decodeSignature(tt.s); ok != tt.ok {
			t.Errorf("decodeSignature(%q…) = %v", tt.s[:min(8, len(tt.s))], ok)
		}
	}
	for _, n := range []int{0, 31, 33, 64} {
		if verify(make([]byte, n), make([]byte, 64), "c") {
			t.Errorf("%d-byte key verified", n)
		}
	}
	if verify(make([]byte, 32), make([]byte, 63), "c") {
		t.Error("63-byte signature verified")
	}
}

func TestValidUserID(t *testing.T) {
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"alice", true},
		{"user@example.com", true},
		{"ü-ß", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"a b", false},
		{"a\x00", false},
		{"a\u200b", false},
		{"\xff", false},
	} {
		if got := validUserID(tt.s); got != tt.ok {
			t.Errorf("validUserID(%q) = %v", tt.s, got)
		}
	}
}
