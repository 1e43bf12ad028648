package rfc9421_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// vectorFile is the project's copy of RFC 9421 Appendix B.2.5 and B.2.6.
const vectorFile = "../../../../shared/vectors/rfc9421.json"

type vectors struct {
	Request struct {
		Method    string            `json:"method"`
		Target    string            `json:"target"`
		Authority string            `json:"authority"`
		Headers   map[string]string `json:"headers"`
		Body      string            `json:"body"`
	} `json:"request"`
	Cases []struct {
		Name            string `json:"name"`
		KeyB64          string `json:"key_b64"`
		PublicKeyRawB64 string `json:"public_key_raw_b64"`
		PrivateKeyPKCS8 string `json:"private_key_pkcs8_b64"`
		SignatureInput  string `json:"signature_input"`
		SignatureBase   string `json:"signature_base"`
		Signature       string `json:"signature"`
	} `json:"cases"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if len(v.Cases) != 2 {
		t.Fatalf("want 2 vector cases, got %d", len(v.Cases))
	}
	return v
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// TestVectors checks the RFC 9421 Appendix B.2.5 (hmac-sha256) and B.2.6
// (ed25519) examples: the signature base byte for byte, verification of the
// published signature, and (both algorithms being deterministic) that
// signing reproduces it.
func TestVectors(t *testing.T) {
	v := loadVectors(t)
	h := http.Header{}
	for k, val := range v.Request.Headers {
		h.Set(k, val)
	}
	req := rfc9421.Request{Method: v.Request.Method, Scheme: "https", Authority: v.Request.Authority,
		Target: v.Request.Target, Header: h, HasBody: v.Request.Body != ""}

	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			label, _, _ := strings.Cut(c.SignatureInput, "=")
			base, err := rfc9421.SignatureBase(req, []string{c.SignatureInput}, label)
			if err != nil {
				t.Fatalf("SignatureBase: %v", err)
			}
			if string(base) != c.SignatureBase {
				t.Fatalf("signature base differs:\n got %q\nwant %q", base, c.SignatureBase)
			}

			var key, signer rfc9421.Key
			switch {
			case c.KeyB64 != "":
				key = rfc9421.HMACKey(b64(t, c.KeyB64))
				signer = key
			default:
				key = rfc9421.Ed25519Verifier(b64(t, c.PublicKeyRawB64))
				pk, err := x509.ParsePKCS8PrivateKey(b64(t, c.PrivateKeyPKCS8))
				if err != nil {
					t.Fatalf("parse private key: %v", err)
				}
				signer = rfc9421.Ed25519Signer(pk.(ed25519.PrivateKey))
			}

			r := req
			r.Header = h.Clone()
			r.Header.Set(rfc9421.HeaderSignatureInput, c.SignatureInput)
			r.Header.Set(rfc9421.HeaderSignature, c.Signature)
			keyID := keyIDOf(t, c.SignatureInput)
			resolver := rfc9421.KeyResolverFunc(func(_ context.Context, id string) (rfc9421.Key, error) {
				if id != keyID {
					return rfc9421.Key{}, rfc9421.ErrUnknownKey
				}
				return key, nil
			})
			// The vectors cover what RFC 9421 shows, not the gateway's
			// policy: require only keyid, and verify at their created time.
			p := rfc9421.Policy{Components: []string{}, BodyComponents: []string{}, Params: []string{rfc9421.ParamKeyID}}
			res, err := rfc9421.Verify(context.Background(), r, resolver, p, time.Unix(1618884473, 0))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.KeyID != keyID || res.Label != label || res.Created.Unix() != 1618884473 {
				t.Fatalf("result = %+v", res)
			}

			// Flip one bit of the published signature: refused.
			sig := []byte(c.Signature)
			i := strings.IndexByte(c.Signature, ':') + 3
			sig[i] ^= 0x01
			r.Header.Set(rfc9421.HeaderSignature, string(sig))
			if _, err := rfc9421.Verify(context.Background(), r, resolver, p, time.Unix(1618884473, 0)); err == nil {
				t.Fatal("a one-bit change of the signature verified")
			}

			// Re-sign from the same parameters: identical output.
			comps := componentsOf(t, c.SignatureInput)
			in, out, err := rfc9421.Sign(req, signer, rfc9421.SignParams{Label: label, KeyID: keyID,
				Components: comps, Created: time.Unix(1618884473, 0)})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if in != c.SignatureInput || out != c.Signature {
				t.Fatalf("Sign:\n got %s\n     %s\nwant %s\n     %s", in, out, c.SignatureInput, c.Signature)
			}
		})
	}
}

// keyIDOf extracts the keyid string of a vector's Signature-Input.
func keyIDOf(t *testing.T, in string) string {
	t.Helper()
	_, rest, ok := strings.Cut(in, `keyid="`)
	if !ok {
		t.Fatalf("no keyid in %q", in)
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// componentsOf reads the covered components from the vector's text, so the
// re-signing check does not trust the parser under test for them.
func componentsOf(t *testing.T, in string) []string {
	t.Helper()
	open := strings.IndexByte(in, '(')
	end := strings.IndexByte(in, ')')
	if open < 0 || end < open {
		t.Fatalf("no inner list in %q", in)
	}
	var out []string
	for _, f := range strings.Fields(in[open+1 : end]) {
		out = append(out, strings.Trim(f, `"`))
	}
	return out
}
