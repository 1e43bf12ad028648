package sxt

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"unicode"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Auth code and signature syntax.
const (
	// CodeBytes is the entropy of an auth code: 128 bits, sent as 32
	// lower-case hex characters like the codes of the original service.
	CodeBytes = 16
	// SignatureHexLen is an Ed25519 signature in lower-case hex.
	SignatureHexLen = 2 * ed25519.SignatureSize
	// Scheme is the only signature scheme.
	Scheme = "ed25519"
)

// newAuthCode returns a fresh auth code from crypto/rand.
func newAuthCode() string {
	b := make([]byte, CodeBytes)
	rand.Read(b) // crypto/rand.Read never returns an error (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// validCode reports whether s has the form newAuthCode produces, checked
// before the code is looked up (SEC-36).
func validCode(s string) bool {
	return len(s) == 2*CodeBytes && lowerHex(s)
}

// decodeSignature decodes exactly 128 lower-case hex characters to the 64
// bytes of an Ed25519 signature (SEC-30): upper case, other lengths or
// other characters are refused, so one signature has one spelling.
func decodeSignature(s string) ([]byte, bool) {
	if len(s) != SignatureHexLen || !lowerHex(s) {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// verify checks an Ed25519 signature over the auth code's bytes alone, as
// sxt clients sign it. ed25519.Verify panics on a key that is not 32 bytes,
// so the length is checked here whatever the caller did.
func verify(key, sig []byte, code string) bool {
	if len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(key), []byte(code), sig)
}

// validUserID reports whether s can be an sxt userId: the username rules of
// the user store (1 to caddyauth.MaxUsernameChars printable characters, no
// spaces), so a registered userId is always a valid username.
func validUserID(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > caddyauth.MaxUsernameChars {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
