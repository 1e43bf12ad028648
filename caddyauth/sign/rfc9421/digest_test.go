package rfc9421_test

import (
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// RFC 9530 §2 / RFC 9421 B.2 body and its digests.
const (
	rfcBody   = `{"hello": "world"}`
	rfcSHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	rfcSHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)

func TestContentDigest(t *testing.T) {
	tests := []struct {
		alg  rfc9421.DigestAlgorithm
		want string
	}{
		{"", rfcSHA256},
		{rfc9421.DigestSHA256, rfcSHA256},
		{rfc9421.DigestSHA512, rfcSHA512},
	}
	for _, tc := range tests {
		got, err := rfc9421.ContentDigest(tc.alg, []byte(rfcBody))
		if err != nil || got != tc.want {
			t.Fatalf("%q: %q, %v; want %q", tc.alg, got, err, tc.want)
		}
	}
	if _, err := rfc9421.ContentDigest("md5", nil); err == nil {
		t.Fatal("md5 accepted")
	}
}

// TestVerifyContentDigest: every refusal the digest check can give, over
// the raw body bytes.
func TestVerifyContentDigest(t *testing.T) {
	sha256Of := func(body string) string {
		d, err := rfc9421.ContentDigest(rfc9421.DigestSHA256, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name   string
		values []string
		body   string
		code   rfc9421.Code // "" = accepted
	}{
		{"sha-256", []string{rfcSHA256}, rfcBody, ""},
		{"sha-512", []string{rfcSHA512}, rfcBody, ""},
		{"both, one line", []string{rfcSHA256 + ", " + rfcSHA512}, rfcBody, ""},
		{"both, two lines", []string{rfcSHA512, rfcSHA256}, rfcBody, ""},
		{"unknown algorithm ignored beside a known one", []string{"md5=:AAAA:, " + rfcSHA256}, rfcBody, ""},
		{"empty body", []string{sha256Of("")}, "", ""},
		{"body differs by one byte", []string{rfcSHA256}, rfcBody + " ", rfc9421.CodeBadSignature},
		{"body re-serialised", []string{rfcSHA256}, `{"hello":"world"}`, rfc9421.CodeBadSignature},
		{"one of two wrong", []string{rfcSHA256 + ", " + sha512Wrong()}, rfcBody, rfc9421.CodeBadSignature},
		{"absent", nil, rfcBody, rfc9421.CodeInsufficientCoverage},
		{"only unknown algorithms", []string{"md5=:AAAA:, sha-1=:AAAA:"}, rfcBody, rfc9421.CodeUnsupportedAlgorithm},
		{"upper-case key", []string{strings.ToUpper(rfcSHA256[:7]) + rfcSHA256[7:]}, rfcBody, rfc9421.CodeMalformedSignature},
		{"sha-256 too short", []string{"sha-256=:AAAA:"}, rfcBody, rfc9421.CodeMalformedSignature},
		{"sha-256 as a string", []string{`sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="`}, rfcBody, rfc9421.CodeMalformedSignature},
		{"sha-256 as an inner list", []string{`sha-256=(:AAAA:)`}, rfcBody, rfc9421.CodeMalformedSignature},
		{"bare key", []string{`sha-256`}, rfcBody, rfc9421.CodeMalformedSignature},
		{"not a dictionary", []string{`:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`}, rfcBody, rfc9421.CodeMalformedSignature},
		{"oversize", []string{rfcSHA256 + ", x=\"" + strings.Repeat("x", rfc9421.MaxFieldBytes) + `"`}, rfcBody, rfc9421.CodeMalformedSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := rfc9421.VerifyContentDigest(tc.values, []byte(tc.body))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := wantCode(t, err, tc.code)
			if tc.code == rfc9421.CodeInsufficientCoverage && (len(e.Missing) != 1 || e.Missing[0] != "content-digest") {
				t.Fatalf("missing = %q", e.Missing)
			}
		})
	}
}

// sha512Wrong is a well-formed sha-512 member of the wrong value.
func sha512Wrong() string {
	return "sha-512=:" + b64Of(make([]byte, 64)) + ":"
}
