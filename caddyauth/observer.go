package caddyauth

import "time"

// Event is one audit event: a login, failed login, logout, refusal, replay,
// expiry. It carries no secrets: never a password, key, token, signature or
// raw session id, only a keyed hash of the id (SEC-44, SEC-45).
type Event struct {
	// Time is when it happened (UTC).
	Time time.Time
	// Type: login, login_failed, logout, ping, refused, replay, session_expired,
	// session_purged, and the Event* constants below.
	Type string
	// Dialect that the event concerns.
	Dialect Dialect
	// Reason is a stable code (bad_credentials, bad_signature, …).
	Reason string
	// UserID is the user concerned, 0 if unknown.
	UserID int64
	// SessionHash is Sealer.LogHash of the session id, "" if none.
	SessionHash string
	// ClientIP is the client address as the server derived it.
	ClientIP string
	// KeyID is the id of the public key concerned (PublicKeyID), "" if
	// none; an id, never the key.
	KeyID string
	// Count is how many things the event concerns (sessions revoked), 0
	// if not applicable.
	Count int
}

// Audit event types of token sessions.
const (
	// EventRefresh: a refresh token was exchanged for a new pair.
	EventRefresh = "refresh"
	// EventRefreshReuse: an exchanged refresh token was presented again
	// and its whole session ended (SEC-18).
	EventRefreshReuse = "refresh_reuse"
	// EventKeyRegistered: a public key was registered to a user (SEC-31).
	EventKeyRegistered = "key_registered"
)

// Observer receives what the engine wants counted or logged. The Caddy plugin
// turns it into Prometheus metrics and zap audit logs; the engine itself
// imports neither.
type Observer interface {
	// Audit records an audit event.
	Audit(Event)
	// CacheLookup counts a key-cache hit or miss.
	CacheLookup(hit bool)
	// SessionCreated counts a new session.
	SessionCreated(d Dialect)
	// SessionEnded counts an ended session; reason: logout, expired,
	// revoked, refresh_reuse.
	SessionEnded(d Dialect, reason string)
	// StoreError counts a store operation that could not be answered.
	StoreError(op string)
	// Login counts a login attempt; result: ok, bad_credentials, locked,
	// throttled, malformed, unavailable.
	Login(d Dialect, result string)
	// Replay counts a repeated signature or nonce; action: rejected,
	// observed.
	Replay(d Dialect, action string)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Audit(Event)                  {}
func (NopObserver) CacheLookup(bool)             {}
func (NopObserver) SessionCreated(Dialect)       {}
func (NopObserver) SessionEnded(Dialect, string) {}
func (NopObserver) StoreError(string)            {}
func (NopObserver) Login(Dialect, string)        {}
func (NopObserver) Replay(Dialect, string)       {}

var _ Observer = NopObserver{}
