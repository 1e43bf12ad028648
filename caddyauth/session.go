package caddyauth

import (
	"bytes"
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
	// KindBearer: the session ID is the SHA-256 digest of a bearer token.
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
	return &c
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
}
