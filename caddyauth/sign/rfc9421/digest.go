package rfc9421

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"

	"github.com/dunglas/httpsfv"
)

// DigestAlgorithm is an RFC 9530 hash algorithm key of Content-Digest.
type DigestAlgorithm string

// The digest algorithms checked; others in a Content-Digest are ignored
// (RFC 9530 §2), but at least one of these must be present.
const (
	DigestSHA256 DigestAlgorithm = "sha-256"
	DigestSHA512 DigestAlgorithm = "sha-512"
)

func digestOf(alg DigestAlgorithm, body []byte) []byte {
	switch alg {
	case DigestSHA256:
		s := sha256.Sum256(body)
		return s[:]
	case DigestSHA512:
		s := sha512.Sum512(body)
		return s[:]
	}
	return nil
}

// ContentDigest returns the Content-Digest field value for body with alg
// (sha-256 when alg is empty), e.g. "sha-256=:X48E9q…=:".
func ContentDigest(alg DigestAlgorithm, body []byte) (string, error) {
	if alg == "" {
		alg = DigestSHA256
	}
	sum := digestOf(alg, body)
	if sum == nil {
		return "", fmt.Errorf("rfc9421: content digest: unsupported algorithm %q", alg)
	}
	d := httpsfv.NewDictionary()
	d.Add(string(alg), httpsfv.NewItem(sum))
	return httpsfv.Marshal(d)
}

// VerifyContentDigest checks the Content-Digest field lines values against
// the raw body bytes (RFC 9530): every sha-256 and sha-512 member must match,
// compared in constant time, and at least one must be present. Refusals:
// insufficient_coverage when the field is absent (the policy requires a
// digest of every body), malformed_signature for bad syntax or a member of
// the wrong type or length, unsupported_algorithm when only other
// algorithms are present, bad_signature on a mismatch. A repeated key keeps
// its last value (RFC 8941); the signature covers the whole field, so the
// repetition itself is signed.
func VerifyContentDigest(values []string, body []byte) error {
	if len(values) == 0 {
		return &Error{Code: CodeInsufficientCoverage, Detail: "a request with a body must send Content-Digest",
			Missing: []string{FieldContentDigest}}
	}
	d, err := parseDictionary(HeaderContentDigest, values)
	if err != nil {
		return err
	}
	checked := 0
	for _, alg := range []DigestAlgorithm{DigestSHA256, DigestSHA512} {
		m, ok := d.Get(string(alg))
		if !ok {
			continue
		}
		it, ok := m.(httpsfv.Item)
		if !ok {
			return malformed("Content-Digest " + string(alg) + " is not a byte sequence")
		}
		got, ok := it.Value.([]byte)
		if !ok {
			return malformed("Content-Digest " + string(alg) + " is not a byte sequence")
		}
		want := digestOf(alg, body)
		if len(got) != len(want) {
			return malformed(fmt.Sprintf("Content-Digest %s must be %d bytes", alg, len(want)))
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return &Error{Code: CodeBadSignature, Detail: "Content-Digest does not match the body"}
		}
		checked++
	}
	if checked == 0 {
		return &Error{Code: CodeUnsupportedAlgorithm, Detail: "Content-Digest must carry sha-256 or sha-512"}
	}
	return nil
}
