package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// errAbort rolls back a transaction whose outcome the method reports itself
// (the error of a caller's fn, a refused change): run would wrap it, and
// the contract wants it unwrapped.
var errAbort = errors.New("bolt: transaction aborted")

// checkTokens refuses tokens bbolt cannot index (empty or oversized
// digests) and a digest listed twice, before any transaction starts.
func checkTokens(ts []caddyauth.Token) error {
	seen := make(map[string]struct{}, len(ts))
	for _, tk := range ts {
		if tk.Digest == "" || len(tk.Digest) > maxIDLen {
			return fmt.Errorf("token digest empty or longer than %d bytes", maxIDLen)
		}
		if _, dup := seen[tk.Digest]; dup {
			return fmt.Errorf("token listed twice: %w", caddyauth.ErrExists)
		}
		seen[tk.Digest] = struct{}{}
	}
	return nil
}

func tokenDigests(ts []caddyauth.Token) [][]byte {
	out := make([][]byte, len(ts))
	for i, tk := range ts {
		out[i] = []byte(tk.Digest)
	}
	return out
}

// indexTokens points every digest at session id, or returns ErrExists if
// one belongs to another session (the caller's transaction then rolls back,
// so nothing is written).
func indexTokens(b *buckets, id []byte, digests [][]byte) error {
	for _, d := range digests {
		if owner := b.tokens.Get(d); owner != nil && !bytes.Equal(owner, id) {
			return fmt.Errorf("token of another session: %w", caddyauth.ErrExists)
		}
		if err := b.tokens.Put(d, id); err != nil {
			return err
		}
	}
	return nil
}

// unindexTokens drops the digests that point at session id, and only those:
// an entry of another session is never the caller's to remove.
func unindexTokens(b *buckets, id string, digests [][]byte) error {
	for _, d := range digests {
		if owner := b.tokens.Get(d); owner != nil && string(owner) == id {
			if err := b.tokens.Delete(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// SessionByToken returns the session holding the token digest, or
// ErrNotFound.
func (s *Store) SessionByToken(ctx context.Context, digest string) (*caddyauth.Session, error) {
	s.gets.Add(1)
	var out *caddyauth.Session
	err := s.runWith(ctx, "session by token", false, needSessions|needTokens, func(b *buckets) error {
		if digest == "" {
			return caddyauth.ErrNotFound // bbolt has no empty keys
		}
		id := b.tokens.Get([]byte(digest))
		if id == nil {
			return caddyauth.ErrNotFound
		}
		sess, err := get(b, string(id))
		if err != nil {
			return err
		}
		// The record, not the index, is the truth: an index entry whose
		// session no longer lists the token is not a match.
		if sess.Token(digest) == nil {
			return caddyauth.ErrNotFound
		}
		out = sess
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateSession applies fn to a decoded copy of session id in one write
// transaction. bbolt runs one writer at a time, so nothing can come in
// between the read and the write and fn runs exactly once.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*caddyauth.Session) error) (*caddyauth.Session, error) {
	if fn == nil {
		return nil, errors.New("bolt: update session: nil fn")
	}
	var out *caddyauth.Session
	var abort error
	err := s.run(ctx, "update session", true, func(b *buckets) error {
		old, err := get(b, id)
		if err != nil {
			return err
		}
		next, err := get(b, id) // a second decode: fn's copy shares nothing with old
		if err != nil {
			return err
		}
		if err := fn(next); err != nil {
			abort = err
			return errAbort
		}
		if next.ID != old.ID || next.UserID != old.UserID || next.Dialect != old.Dialect {
			abort = errors.New("bolt: update session: id, user id and dialect cannot change")
			return errAbort
		}
		if err := checkTokens(next.Tokens); err != nil {
			abort = fmt.Errorf("bolt: update session: %w", err)
			return errAbort
		}
		if err := unindexTokens(b, id, tokenDigests(old.Tokens)); err != nil {
			return err
		}
		if err := indexTokens(b, []byte(id), tokenDigests(next.Tokens)); err != nil {
			return err
		}
		if oldDK, newDK := deadlineKey(old), deadlineKey(next); !bytes.Equal(oldDK, newDK) {
			if err := b.byDeadline.Delete(oldDK); err != nil {
				return err
			}
			if err := b.byDeadline.Put(newDK, []byte{}); err != nil {
				return err
			}
		}
		rec := encodeSession(next)
		if err := b.sessions.Put([]byte(id), rec); err != nil {
			return err
		}
		// Return what a read would: the decoded record, in UTC.
		out, err = decodeSession(id, rec)
		return err
	})
	if abort != nil {
		return nil, abort
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
