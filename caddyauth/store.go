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
	// Ping checks that the store can answer a write and a delete; used as the
	// start-up probe.
	Ping(ctx context.Context) error
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}
