package caddyauth

import (
	"context"
	"time"
)

// Store persists sessions. Every method is atomic: a concurrent reader sees a
// session entirely before or entirely after a write. Implementations return
// ErrNotFound, ErrExists, ErrUnavailable or ErrClosed (wrapped as they like)
// so the engine can map them to answers; any other error is treated as
// ErrUnavailable.
//
// A Store does not check deadlines on reads: the engine does, so that an
// expired session answers "expired" until it is purged. Durability: when a
// method that writes returns nil, the write survives a crash of the process
// (for bolt: the transaction committed with fsync).
//
// storetest.Run is the conformance suite every implementation must pass.
type Store interface {
	// CreateSession stores s. ErrExists if a session with s.ID exists.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with id, or ErrNotFound.
	GetSession(ctx context.Context, id string) (*Session, error)
	// TouchSession sets LastSeen and IdleDeadline of session id (ping, use).
	// It never changes AbsoluteDeadline. ErrNotFound if absent.
	TouchSession(ctx context.Context, id string, lastSeen, idleDeadline time.Time) error
	// DeleteSession removes session id and returns what was stored, or
	// ErrNotFound. Exactly one of several concurrent deletes of one id
	// succeeds.
	DeleteSession(ctx context.Context, id string) (*Session, error)
	// DeleteUserSessions removes every session of the user and returns them.
	DeleteUserSessions(ctx context.Context, userID int64) ([]*Session, error)
	// ListUserSessions returns the user's sessions (any order).
	ListUserSessions(ctx context.Context, userID int64) ([]*Session, error)
	// PurgeExpired removes every session whose Deadline() is at or before
	// now, and returns the removed sessions.
	PurgeExpired(ctx context.Context, now time.Time) ([]*Session, error)
	// CountSessions returns the number of stored sessions per dialect
	// (including expired ones not yet purged).
	CountSessions(ctx context.Context) (map[Dialect]int, error)
	// SessionByToken returns the session holding a token (any kind, rotated
	// or not) whose Digest is digest, or ErrNotFound.
	SessionByToken(ctx context.Context, digest string) (*Session, error)
	// UpdateSession changes session id atomically: it reads the session,
	// calls fn with a copy, and stores what fn left, unless another write
	// to the session came in between (then it reads again and calls fn
	// again: fn must depend only on its argument). If fn returns an error,
	// nothing is written and UpdateSession returns that error unwrapped, so
	// callers can use sentinels. fn must not change ID, UserID or Dialect
	// (the store refuses the write). The token index follows Tokens: added
	// digests are indexed (ErrExists if another session holds one, and
	// nothing is written), removed ones are dropped. Returns the stored
	// result, or ErrNotFound.
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error)

	// CreateUser stores u and returns the stored copy. When u.ID is 0 the
	// store assigns the next free id (greater than every id it has
	// assigned or stored). ErrExists if the id, the email (compared in
	// lower case), the username or any public key id is taken.
	CreateUser(ctx context.Context, u *User) (*User, error)
	// UserByID, UserByEmail (case-insensitive) and UserByUsername find a
	// stored user, or ErrNotFound.
	UserByID(ctx context.Context, id int64) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
	// UserByKeyID finds the user holding public key id keyID, or
	// ErrNotFound.
	UserByKeyID(ctx context.Context, keyID string) (*User, error)
	// UpdateUser changes user id atomically, like UpdateSession: fn gets a
	// copy, may be called more than once, and its error is returned
	// unwrapped with nothing written. fn must not change ID. The email,
	// username and key indexes follow (ErrExists on a collision with
	// another user, nothing written). Returns the stored result, or
	// ErrNotFound.
	UpdateUser(ctx context.Context, id int64, fn func(*User) error) (*User, error)
	// ListUsers returns at most limit users with id > afterID, in
	// ascending id order (paging: pass the last id seen).
	ListUsers(ctx context.Context, afterID int64, limit int) ([]*User, error)

	// Ping checks that the store can answer a write and a delete; used as the
	// start-up probe.
	Ping(ctx context.Context) error
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

// Ephemeral is short-lived state that every gateway node must see alike:
// one-shot challenges (sxt auth codes), replay marks and failure counters.
// A store shared between nodes (redis) implements it, so a challenge issued
// by node A can be answered at node B and a replay sent to B is caught. For
// stores of one node the engine uses LocalEphemeral, which on one node is the
// same thing without a disk write per signed request.
//
// Keys are chosen by the engine and carry their purpose as a prefix
// ("code:", "replay:", "fail:"); implementations may hash or prefix them
// further but must keep them apart.
type Ephemeral interface {
	// PutOnce stores value under key for ttl. ErrExists if a live value is
	// there.
	PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// TakeOnce returns the value under key and deletes it, atomically: of
	// several concurrent takers exactly one gets it. ErrNotFound if absent
	// or expired.
	TakeOnce(ctx context.Context, key string) ([]byte, error)
	// SeenOnce records key for ttl and reports whether it was new (SET NX
	// PX).
	SeenOnce(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
	// AddFailure counts one failure under key in a fixed window: the first
	// failure starts a window of length window; it returns the count in
	// the current window and the time left in it.
	AddFailure(ctx context.Context, key string, window time.Duration) (count int64, left time.Duration, err error)
	// Failures returns the count and time left of key's current window
	// without adding (0, 0 when none).
	Failures(ctx context.Context, key string) (count int64, left time.Duration, err error)
	// ResetFailures forgets key's failures (a successful login).
	ResetFailures(ctx context.Context, key string) error
}

// Invalidator is implemented by stores shared between nodes: a node that ends
// sessions tells the others to drop them from their key caches.
type Invalidator interface {
	// PublishInvalidation asks every node (this one included) to drop the
	// cache entries with these keys (session ids and token digests).
	PublishInvalidation(ctx context.Context, keys []string) error
	// SubscribeInvalidations delivers invalidations until ctx ends: drop
	// for each message, flush on every (re)subscription, because pub/sub
	// loses what was published while a node was disconnected (REL-04). It
	// returns when ctx ends.
	SubscribeInvalidations(ctx context.Context, drop func(keys []string), flush func())
}
