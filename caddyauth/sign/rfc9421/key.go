package rfc9421

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Algorithm is an RFC 9421 signature algorithm name (the alg parameter).
type Algorithm string

// The algorithms the gateway accepts.
const (
	// AlgHMACSHA256 is HMAC-SHA256 (RFC 9421 §3.3.3), keyed with a
	// session's api key string's UTF-8 bytes; the keyid is the decimal
	// session id.
	AlgHMACSHA256 Algorithm = "hmac-sha256"
	// AlgEd25519 is Ed25519 (RFC 9421 §3.3.6) with a user's registered
	// 32-byte public key; the keyid is the id the gateway assigned to it.
	AlgEd25519 Algorithm = "ed25519"
)

// Sizes fixed by the algorithms.
const (
	hmacSHA256Len = sha256.Size
)

// Key is the key material for one keyid. A verifier needs Secret (HMAC) or
// PublicKey (Ed25519); a signer needs Secret or PrivateKey.
type Key struct {
	// Alg is the key's algorithm; a signature's alg parameter, when sent,
	// must equal it.
	Alg Algorithm
	// Secret is the HMAC key. Never empty: an empty key would make every
	// signature forgeable, so it is refused.
	Secret []byte
	// PublicKey is the Ed25519 public key (32 bytes) for verification.
	PublicKey ed25519.PublicKey
	// PrivateKey is the Ed25519 private key (64 bytes) for signing.
	PrivateKey ed25519.PrivateKey
}

// HMACKey returns an hmac-sha256 key.
func HMACKey(secret []byte) Key { return Key{Alg: AlgHMACSHA256, Secret: secret} }

// Ed25519Verifier returns an ed25519 key for verification.
func Ed25519Verifier(pub ed25519.PublicKey) Key { return Key{Alg: AlgEd25519, PublicKey: pub} }

// Ed25519Signer returns an ed25519 key for signing.
func Ed25519Signer(priv ed25519.PrivateKey) Key { return Key{Alg: AlgEd25519, PrivateKey: priv} }

// KeyResolver finds the key for a keyid. It returns ErrUnknownKey (or an
// error wrapping it) when there is none; any other error (a store that
// cannot answer, an expired session the caller wants to name) is returned
// by Verify wrapped, for the caller to map with errors.Is.
type KeyResolver interface {
	ResolveKey(ctx context.Context, keyID string) (Key, error)
}

// KeyResolverFunc adapts a function to KeyResolver.
type KeyResolverFunc func(ctx context.Context, keyID string) (Key, error)

// ResolveKey implements KeyResolver.
func (f KeyResolverFunc) ResolveKey(ctx context.Context, keyID string) (Key, error) {
	return f(ctx, keyID)
}

// errKeyMaterial reports a resolver that returned a key unusable for its
// algorithm: a server fault, never the client's.
var errKeyMaterial = errors.New("rfc9421: key material unusable for its algorithm")

// verifySig checks sig over base with k, in constant time for HMAC. It never
// panics: wrong-length signatures are refused before any comparison and
// wrong-length keys are a server fault (errKeyMaterial).
func verifySig(k Key, base, sig []byte) error {
	switch k.Alg {
	case AlgHMACSHA256:
		if len(k.Secret) == 0 {
			return errKeyMaterial
		}
		if len(sig) != hmacSHA256Len {
			return &Error{Code: CodeBadSignature, Detail: fmt.Sprintf("hmac-sha256 signature must be %d bytes", hmacSHA256Len)}
		}
		m := hmac.New(sha256.New, k.Secret)
		m.Write(base)
		if !hmac.Equal(m.Sum(nil), sig) {
			return &Error{Code: CodeBadSignature, Detail: "signature does not match"}
		}
		return nil
	case AlgEd25519:
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return errKeyMaterial
		}
		if len(sig) != ed25519.SignatureSize {
			return &Error{Code: CodeBadSignature, Detail: fmt.Sprintf("ed25519 signature must be %d bytes", ed25519.SignatureSize)}
		}
		if !ed25519.Verify(k.PublicKey, base, sig) {
			return &Error{Code: CodeBadSignature, Detail: "signature does not match"}
		}
		return nil
	}
	return errKeyMaterial
}

// makeSig signs base with k.
func makeSig(k Key, base []byte) ([]byte, error) {
	switch k.Alg {
	case AlgHMACSHA256:
		if len(k.Secret) == 0 {
			return nil, errors.New("rfc9421: sign: empty hmac key")
		}
		m := hmac.New(sha256.New, k.Secret)
		m.Write(base)
		return m.Sum(nil), nil
	case AlgEd25519:
		if len(k.PrivateKey) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("rfc9421: sign: ed25519 private key must be %d bytes", ed25519.PrivateKeySize)
		}
		return ed25519.Sign(k.PrivateKey, base), nil
	}
	return nil, fmt.Errorf("rfc9421: sign: unsupported algorithm %q", k.Alg)
}

func knownAlg(a string) bool {
	return a == string(AlgHMACSHA256) || a == string(AlgEd25519)
}
