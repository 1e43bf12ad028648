package caddyauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// Dialect names a session protocol. The values are used as metric labels, so
// the set is closed.
type Dialect string

// The dialects the gateway speaks.
const (
	DialectAmatino   Dialect = "amatino"
	DialectSXT       Dialect = "sxt"
	DialectVidentity Dialect = "videntity"
	DialectNative    Dialect = "native"
)

// CredentialKind says what the session's credential material is.
type CredentialKind string

// Credential kinds.
const (
	// KindHMACKey: Session.Secret holds an HMAC key the verifier needs, so it
	// is stored encrypted (sealed) rather than hashed.
	KindHMACKey CredentialKind = "hmac_key"
	// KindBearer: the session holds bearer tokens (sxt access and refresh
	// tokens) in Tokens, by SHA-256 digest only; its ID is random.
	KindBearer CredentialKind = "bearer"
	// KindSessionKey: the session ID is the SHA-256 digest of a session key.
	KindSessionKey CredentialKind = "session_key"
)

// Session is one logged-in session of one user, whatever the dialect.
//
// Stores persist every field as given and return it unchanged. Secret is
// opaque to a store: the Manager seals it (AES-256-GCM) before CreateSession
// and opens it after a read, so stores never see key material in clear.
type Session struct {
	// ID identifies the session in the store. For amatino it is the decimal
	// session_id; for token dialects a digest of the token, never the token.
	ID string `json:"id"`
	// UserID is the owning user's numeric id.
	UserID int64 `json:"user_id"`
	// Dialect is the protocol that created the session.
	Dialect Dialect `json:"dialect"`
	// Kind says how the credential is presented and stored.
	Kind CredentialKind `json:"kind"`
	// Secret is credential material (sealed when stored; see above).
	Secret []byte `json:"secret,omitempty"`
	// Created is when the session was issued.
	Created time.Time `json:"created"`
	// LastSeen is the last time the session was used or pinged, as far as
	// the store was told.
	LastSeen time.Time `json:"last_seen"`
	// IdleDeadline is when the session dies unless touched; zero = no idle
	// timeout.
	IdleDeadline time.Time `json:"idle_deadline,omitzero"`
	// AbsoluteDeadline is when the session dies whatever happens; never moved.
	AbsoluteDeadline time.Time `json:"absolute_deadline"`
	// Tokens are the bearer tokens of a token session (sxt), by digest
	// only. Stores index every token's Digest so SessionByToken finds the
	// session, and drop the index entries with the session.
	Tokens []Token `json:"tokens,omitempty"`
}

// TokenKind says what a bearer token is for.
type TokenKind string

// Token kinds.
const (
	TokenAccess  TokenKind = "access"
	TokenRefresh TokenKind = "refresh"
)

// Token is one bearer token of a session. The token itself is never stored:
// Digest is the lower-case hex SHA-256 of it (SEC-16).
type Token struct {
	// Digest is hex(SHA-256(token)), 64 characters; unique across sessions.
	Digest string `json:"digest"`
	// Kind is access or refresh; a refresh token is never an access token.
	Kind TokenKind `json:"kind"`
	// Expires is when the token stops being accepted (never after the
	// session's AbsoluteDeadline).
	Expires time.Time `json:"expires"`
	// RotatedAt is set when a refresh token was exchanged for a new pair.
	// The token is kept (RFC 6749 §10.4 "invalidated but retained") so that
	// presenting it again is recognised as reuse (SEC-18).
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// Successor is opaque to stores: the sealed pair the rotation issued,
	// kept for the retry grace (SEC-19).
	Successor []byte `json:"successor,omitempty"`
}

// Token returns the session's token with digest, or nil.
func (s *Session) Token(digest string) *Token {
	for i := range s.Tokens {
		if s.Tokens[i].Digest == digest {
			return &s.Tokens[i]
		}
	}
	return nil
}

// Deadline is the instant after which the session is no longer valid: the
// earlier of the idle and absolute deadlines.
func (s *Session) Deadline() time.Time {
	if !s.IdleDeadline.IsZero() && s.IdleDeadline.Before(s.AbsoluteDeadline) {
		return s.IdleDeadline
	}
	return s.AbsoluteDeadline
}

// Expired reports whether the session is past its deadline at now.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.Deadline())
}

// Clone returns a deep copy, so callers can never mutate a cached or stored
// value through a shared pointer.
func (s *Session) Clone() *Session {
	if s == nil {
		return nil
	}
	c := *s
	c.Secret = bytes.Clone(s.Secret) // keeps nil as nil and empty as empty
	c.Tokens = cloneTokens(s.Tokens)
	return &c
}

func cloneTokens(ts []Token) []Token {
	if ts == nil {
		return nil
	}
	out := make([]Token, len(ts))
	for i, t := range ts {
		t.Successor = bytes.Clone(t.Successor)
		out[i] = t
	}
	return out
}

// User is an account that can log in.
type User struct {
	// ID is the numeric user id (amatino's user_id). Positive.
	ID int64 `json:"id"`
	// Email is the login email; compared case-insensitively.
	Email string `json:"email,omitempty"`
	// Username is the login name (videntity username, sxt userId).
	Username string `json:"username,omitempty"`
	// AccountNumber is the videntity account number.
	AccountNumber string `json:"account_number,omitempty"`
	// PasswordHash is an argon2id PHC string.
	PasswordHash string `json:"password_hash,omitempty"`
	// Disabled users cannot log in.
	Disabled bool `json:"disabled,omitempty"`
	// PublicKeys are the user's registered Ed25519 keys (sxt login, native
	// ed25519 signatures).
	PublicKeys []PublicKey `json:"public_keys,omitempty"`
	// Created is when the user was added to the store (zero for static
	// users).
	Created time.Time `json:"created,omitzero"`
}

// PublicKey is one registered Ed25519 public key of a user.
type PublicKey struct {
	// ID is PublicKeyID(Key): stable, unique, and safe to show (it is the
	// RFC 9421 keyid of the native scheme).
	ID string `json:"id"`
	// Key is the 32-byte Ed25519 public key.
	Key []byte `json:"key"`
	// Added is when the key was registered.
	Added time.Time `json:"added,omitzero"`
}

// PublicKeyID is the stable id the gateway assigns to a public key: "ed25519-"
// and the unpadded base64url of the first 12 bytes of its SHA-256. Derived,
// not drawn, so every node and every reload assigns the same id.
func PublicKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return "ed25519-" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Clone returns a deep copy of u.
func (u *User) Clone() *User {
	if u == nil {
		return nil
	}
	c := *u
	if u.PublicKeys != nil {
		c.PublicKeys = make([]PublicKey, len(u.PublicKeys))
		for i, k := range u.PublicKeys {
			k.Key = bytes.Clone(k.Key)
			c.PublicKeys[i] = k
		}
	}
	return &c
}

// Key returns the user's public key with id, or nil.
func (u *User) Key(id string) *PublicKey {
	for i := range u.PublicKeys {
		if u.PublicKeys[i].ID == id {
			return &u.PublicKeys[i]
		}
	}
	return nil
}
