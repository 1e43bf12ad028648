package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Session key names; see the package doc for the layout.
func (s *Store) sessionKey(id string) string            { return s.data + "s:" + id }
func (s *Store) tokenKey(digest string) string          { return s.data + "t:" + digest }
func (s *Store) userSessionsKey(userID int64) string    { return s.data + "us:" + itoa(userID) }
func (s *Store) deadlineKey(d caddyauth.Dialect) string { return s.data + "dl:" + string(d) }
func (s *Store) dialectsKey() string                    { return s.data + "dialects" }

// checkTokens refuses a token without digest, and returns ErrExists when a
// session lists one digest twice (the index could not hold both).
func checkTokens(sess *caddyauth.Session, op string) error {
	seen := make(map[string]struct{}, len(sess.Tokens))
	for _, tk := range sess.Tokens {
		if tk.Digest == "" {
			return fmt.Errorf("redis store: %s: token without digest", op)
		}
		if _, dup := seen[tk.Digest]; dup {
			return fmt.Errorf("redis store: %s: token listed twice: %w", op, caddyauth.ErrExists)
		}
		seen[tk.Digest] = struct{}{}
	}
	return nil
}

// tokensFree checks, inside tx, that no other session holds a token digest.
// The keys must be watched already.
func (s *Store) tokensFree(ctx context.Context, op string, tx *goredis.Tx, id string, digests []string) error {
	for _, d := range digests {
		owner, ok, err := s.get(ctx, op, tx, s.tokenKey(d))
		if err != nil {
			return err
		}
		if ok && string(owner) != id {
			return fmt.Errorf("redis store: %s: token of another session: %w", op, caddyauth.ErrExists)
		}
	}
	return nil
}

// queueStore queues the writes that store sess, its record rec and every
// index entry pointing to it.
func (s *Store) queueStore(ctx context.Context, p goredis.Pipeliner, sess *caddyauth.Session, rec []byte) {
	at := s.expireAt(sess, time.Now())
	p.SetArgs(ctx, s.sessionKey(sess.ID), rec, goredis.SetArgs{ExpireAt: at})
	p.SAdd(ctx, s.userSessionsKey(sess.UserID), sess.ID)
	p.ZAdd(ctx, s.deadlineKey(sess.Dialect), goredis.Z{Score: deadlineScore(sess), Member: deadlineMember(sess.UserID, sess.ID)})
	p.SAdd(ctx, s.dialectsKey(), string(sess.Dialect))
	for _, tk := range sess.Tokens {
		p.SetArgs(ctx, s.tokenKey(tk.Digest), sess.ID, goredis.SetArgs{ExpireAt: at})
	}
}

// queueRemove queues the writes that remove sess and every index entry
// pointing to it.
func (s *Store) queueRemove(ctx context.Context, p goredis.Pipeliner, sess *caddyauth.Session) {
	p.Del(ctx, s.sessionKey(sess.ID))
	p.SRem(ctx, s.userSessionsKey(sess.UserID), sess.ID)
	p.ZRem(ctx, s.deadlineKey(sess.Dialect), deadlineMember(sess.UserID, sess.ID))
	for _, tk := range sess.Tokens {
		// The session holds its digests exclusively (CreateSession and
		// UpdateSession refuse a taken one), so its token keys are its own.
		p.Del(ctx, s.tokenKey(tk.Digest))
	}
}

// readSession reads and decodes session id through c; ErrNotFound when
// absent.
func (s *Store) readSession(ctx context.Context, op string, c goredis.Cmdable, id string) (*caddyauth.Session, error) {
	rec, ok, err := s.get(ctx, op, c, s.sessionKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	sess, err := decodeSession(id, rec)
	if err != nil {
		return nil, fmt.Errorf("redis store: %s: %w", op, err)
	}
	return sess, nil
}

// CreateSession stores sess. ErrExists if its ID or one of its token digests
// is taken.
func (s *Store) CreateSession(ctx context.Context, sess *caddyauth.Session) error {
	const op = "create session"
	if err := s.begin(op); err != nil {
		return err
	}
	if sess == nil || sess.ID == "" || sess.Dialect == "" {
		return fmt.Errorf("redis store: %s: session without id or dialect", op)
	}
	c := normalize(sess.Clone())
	if err := checkTokens(c, op); err != nil {
		return err
	}
	rec, err := encodeSession(c)
	if err != nil {
		return fmt.Errorf("redis store: %s: %w", op, err)
	}
	sk := s.sessionKey(c.ID)
	watch := []string{sk}
	digests := make([]string, 0, len(c.Tokens))
	for _, tk := range c.Tokens {
		watch = append(watch, s.tokenKey(tk.Digest))
		digests = append(digests, tk.Digest)
	}
	return s.txn(ctx, op, func(tx *goredis.Tx) error {
		n, err := tx.Exists(ctx, sk).Result()
		if err != nil {
			return s.fail(op, err)
		}
		if n > 0 {
			return fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrExists)
		}
		if err := s.tokensFree(ctx, op, tx, c.ID, digests); err != nil {
			return s.confirm(ctx, op, tx, err)
		}
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) { s.queueStore(ctx, p, c, rec) })
	}, watch...)
}

// GetSession returns session id, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	const op = "get session"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	return s.readSession(ctx, op, s.client, id)
}

// TouchSession sets LastSeen and IdleDeadline of session id, and moves its
// expiry and deadline entry along.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, idleDeadline time.Time) error {
	const op = "touch session"
	if err := s.begin(op); err != nil {
		return err
	}
	return s.txn(ctx, op, func(tx *goredis.Tx) error {
		sess, err := s.readSession(ctx, op, tx, id)
		if err != nil {
			return err
		}
		sess.LastSeen, sess.IdleDeadline = lastSeen.UTC(), idleDeadline.UTC()
		rec, err := encodeSession(sess)
		if err != nil {
			return fmt.Errorf("redis store: %s: %w", op, err)
		}
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) { s.queueStore(ctx, p, sess, rec) })
	}, s.sessionKey(id))
}

// DeleteSession removes session id and returns what was stored, or
// ErrNotFound. The WATCH on the record makes exactly one of several
// concurrent deletes succeed.
func (s *Store) DeleteSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	const op = "delete session"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	var out *caddyauth.Session
	err := s.txn(ctx, op, func(tx *goredis.Tx) error {
		sess, err := s.readSession(ctx, op, tx, id)
		if err != nil {
			return err
		}
		out = sess
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) { s.queueRemove(ctx, p, sess) })
	}, s.sessionKey(id))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// userSessions reads, through c, the sessions listed in the user's set.
// Members whose record is gone (expired by Redis) or belongs to another
// user now are returned in stale, for the caller to clean or ignore.
func (s *Store) userSessions(ctx context.Context, op string, c goredis.Cmdable, userID int64, ids []string) (live []*caddyauth.Session, stale []string, err error) {
	if len(ids) == 0 {
		return []*caddyauth.Session{}, nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.sessionKey(id)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, nil, s.fail(op, err)
	}
	live = make([]*caddyauth.Session, 0, len(ids))
	for i, v := range vals {
		rec, ok := v.(string)
		if !ok {
			stale = append(stale, ids[i])
			continue
		}
		sess, err := decodeSession(ids[i], []byte(rec))
		if err != nil {
			return nil, nil, fmt.Errorf("redis store: %s: %w", op, err)
		}
		if sess.UserID != userID {
			stale = append(stale, ids[i])
			continue
		}
		live = append(live, sess)
	}
	return live, stale, nil
}

// DeleteUserSessions removes every session of userID and returns them, in
// one transaction over the user's set and every listed record, so a
// session the user creates meanwhile is either removed or not yet listed,
// never half-removed (SEC-13).
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) ([]*caddyauth.Session, error) {
	const op = "delete user sessions"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	uk := s.userSessionsKey(userID)
	var out []*caddyauth.Session
	err := s.txn(ctx, op, func(tx *goredis.Tx) error {
		ids, err := tx.SMembers(ctx, uk).Result()
		if err != nil {
			return s.fail(op, err)
		}
		if len(ids) == 0 {
			out = []*caddyauth.Session{}
			return nil
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.sessionKey(id)
		}
		if err := tx.Watch(ctx, keys...).Err(); err != nil {
			return s.fail(op, err)
		}
		live, stale, err := s.userSessions(ctx, op, tx, userID, ids)
		if err != nil {
			return err
		}
		out = live
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) {
			for _, sess := range live {
				s.queueRemove(ctx, p, sess)
			}
			for _, id := range stale {
				p.SRem(ctx, uk, id)
			}
		})
	}, uk)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListUserSessions returns userID's sessions. Each is read atomically; the
// list as a whole is a snapshot of the set followed by a read of the
// records, which is all a listing needs.
func (s *Store) ListUserSessions(ctx context.Context, userID int64) ([]*caddyauth.Session, error) {
	const op = "list user sessions"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	ids, err := s.client.SMembers(ctx, s.userSessionsKey(userID)).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	live, _, err := s.userSessions(ctx, op, s.client, userID, ids)
	return live, err
}

// purgeBatch is how many deadline set members PurgeExpired reads at a time.
const purgeBatch = 256

// PurgeExpired removes every session whose Deadline() is at or before now
// and returns them. Entries of sessions Redis already expired are removed
// too, but not returned: their records are gone. Several nodes may purge at
// once; each session is removed, and returned, by exactly one of them.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) ([]*caddyauth.Session, error) {
	const op = "purge expired"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	dialects, err := s.client.SMembers(ctx, s.dialectsKey()).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	// Scores are milliseconds rounded down, so every session due at now
	// scores at most now's milliseconds; the exact check is on the record.
	maxScore := itoa(now.UnixMilli())
	var out []*caddyauth.Session
	for _, d := range dialects {
		dk := s.deadlineKey(caddyauth.Dialect(d))
		// kept counts members in range that stay (deadline later within
		// the same millisecond, or touched meanwhile): the next batch
		// starts after them.
		kept := int64(0)
		for {
			members, err := s.client.ZRangeByScore(ctx, dk, &goredis.ZRangeBy{
				Min: "-inf", Max: maxScore, Offset: kept, Count: purgeBatch,
			}).Result()
			if err != nil {
				return nil, s.fail(op, err)
			}
			for _, m := range members {
				sess, left, err := s.purgeOne(ctx, op, caddyauth.Dialect(d), m, now)
				if err != nil {
					return nil, err
				}
				if sess != nil {
					out = append(out, sess)
				}
				if !left {
					kept++
				}
			}
			if len(members) < purgeBatch {
				break
			}
		}
	}
	return out, nil
}

// purgeOne removes the session behind deadline set member m of dialect d if
// it is due at now. It returns the removed session (nil if none was) and
// whether m left the set.
func (s *Store) purgeOne(ctx context.Context, op string, d caddyauth.Dialect, m string, now time.Time) (*caddyauth.Session, bool, error) {
	dk := s.deadlineKey(d)
	userID, id, ok := parseDeadlineMember(m)
	if !ok {
		// Not written by this store; drop it so it is not read again.
		if err := s.client.ZRem(ctx, dk, m).Err(); err != nil {
			return nil, false, s.fail(op, err)
		}
		return nil, true, nil
	}
	var (
		removed *caddyauth.Session
		left    bool
	)
	err := s.txn(ctx, op, func(tx *goredis.Tx) error {
		removed, left = nil, false
		sess, err := s.readSession(ctx, op, tx, id)
		switch {
		case errors.Is(err, caddyauth.ErrNotFound):
			// Redis expired the record: clean the entries that point to it.
			// The WATCH on the record key makes this lose against a
			// concurrent create of the same id.
			left = true
			return s.exec(ctx, op, tx, func(p goredis.Pipeliner) {
				p.ZRem(ctx, dk, m)
				p.SRem(ctx, s.userSessionsKey(userID), id)
			})
		case errors.Is(err, errCorrupt):
			return nil // left for an operator; one bad record must not stop every purge
		case err != nil:
			return err
		case sess.UserID != userID || sess.Dialect != d:
			// The id was reused after its old record expired; only the
			// old entries go.
			left = true
			return s.exec(ctx, op, tx, func(p goredis.Pipeliner) {
				p.ZRem(ctx, dk, m)
				if sess.UserID != userID {
					p.SRem(ctx, s.userSessionsKey(userID), id)
				}
			})
		case sess.Deadline().After(now):
			return nil // touched, or due later in the same millisecond
		}
		left = true
		removed = sess
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) { s.queueRemove(ctx, p, sess) })
	}, s.sessionKey(id))
	if err != nil {
		return nil, false, err
	}
	return removed, left, nil
}

// CountSessions returns the number of stored sessions per dialect, expired
// ones included until purged. Dialects without sessions are absent.
func (s *Store) CountSessions(ctx context.Context) (map[caddyauth.Dialect]int, error) {
	const op = "count sessions"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	dialects, err := s.client.SMembers(ctx, s.dialectsKey()).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	out := make(map[caddyauth.Dialect]int, len(dialects))
	if len(dialects) == 0 {
		return out, nil
	}
	// One MULTI, so the counts are a snapshot of one instant.
	cmds := make([]*goredis.IntCmd, len(dialects))
	_, err = s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for i, d := range dialects {
			cmds[i] = p.ZCard(ctx, s.deadlineKey(caddyauth.Dialect(d)))
		}
		return nil
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	for i, d := range dialects {
		if n := cmds[i].Val(); n > 0 {
			out[caddyauth.Dialect(d)] = int(n)
		}
	}
	return out, nil
}

// SessionByToken returns the session holding the token digest, or
// ErrNotFound.
func (s *Store) SessionByToken(ctx context.Context, digest string) (*caddyauth.Session, error) {
	const op = "session by token"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	if digest == "" {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	id, ok, err := s.get(ctx, op, s.client, s.tokenKey(digest))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	sess, err := s.readSession(ctx, op, s.client, string(id))
	if err != nil {
		return nil, err
	}
	// The two reads are not one transaction: the token may have been
	// dropped from the session in between. The record is the authority.
	if sess.Token(digest) == nil {
		return nil, fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	}
	return sess, nil
}

// UpdateSession changes session id through fn, as an optimistic
// transaction: fn may run more than once. The token index follows Tokens.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*caddyauth.Session) error) (*caddyauth.Session, error) {
	const op = "update session"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	var out *caddyauth.Session
	err := s.txn(ctx, op, func(tx *goredis.Tx) error {
		old, err := s.readSession(ctx, op, tx, id)
		if err != nil {
			return err
		}
		next := old.Clone()
		if err := fn(next); err != nil {
			return err
		}
		if next.ID != old.ID || next.UserID != old.UserID || next.Dialect != old.Dialect {
			return fmt.Errorf("redis store: %s: id, user id and dialect cannot change", op)
		}
		normalize(next)
		if err := checkTokens(next, op); err != nil {
			return err
		}
		var added, removed []string
		for _, tk := range next.Tokens {
			if old.Token(tk.Digest) == nil {
				added = append(added, tk.Digest)
			}
		}
		for _, tk := range old.Tokens {
			if next.Token(tk.Digest) == nil {
				removed = append(removed, tk.Digest)
			}
		}
		if len(added) > 0 {
			keys := make([]string, len(added))
			for i, d := range added {
				keys[i] = s.tokenKey(d)
			}
			if err := tx.Watch(ctx, keys...).Err(); err != nil {
				return s.fail(op, err)
			}
			if err := s.tokensFree(ctx, op, tx, id, added); err != nil {
				return s.confirm(ctx, op, tx, err)
			}
		}
		rec, err := encodeSession(next)
		if err != nil {
			return fmt.Errorf("redis store: %s: %w", op, err)
		}
		out = next
		return s.exec(ctx, op, tx, func(p goredis.Pipeliner) {
			for _, d := range removed {
				p.Del(ctx, s.tokenKey(d))
			}
			s.queueStore(ctx, p, next, rec)
		})
	}, s.sessionKey(id))
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}
