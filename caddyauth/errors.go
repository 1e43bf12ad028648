package caddyauth

import "errors"

// Store errors. Implementations return these (possibly wrapped) so the engine
// can tell "no such thing" from "cannot answer": the first is a 401, the
// second a 503 and never a deleted session (REL-01).
var (
	// ErrNotFound means the store answered and the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a create collided with an existing record.
	ErrExists = errors.New("already exists")
	// ErrUnavailable means the store could not answer (I/O error, lock
	// timeout, network). Wrap the cause: fmt.Errorf("...: %w: %v", ErrUnavailable, err).
	ErrUnavailable = errors.New("store unavailable")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
)
