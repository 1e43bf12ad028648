package redis

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Records are the JSON of caddyauth.Session and caddyauth.User: Redis users
// can read them with redis-cli, and JSON carries times to the nanosecond
// (RFC 3339) for every year the engine uses. A session record leaves out
// the ID, which is its key: JSON would replace bytes of an id that is not
// valid UTF-8, and the key is the authority anyway.

// errCorrupt marks a record that cannot be decoded. It never names the key
// or shows the bytes, which may be credential material.
var errCorrupt = errors.New("corrupt record")

// encodeSession returns the record of s, which must be normalized.
func encodeSession(s *caddyauth.Session) ([]byte, error) {
	c := *s // marshal only reads, so a shallow copy is enough
	c.ID = ""
	b, err := json.Marshal(&c) // #nosec G117 -- the Manager sealed Secret (AES-256-GCM) before any store sees it
	if err != nil {
		// Only a time outside years 0–9999 gets here.
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return b, nil
}

// decodeSession parses the record stored under id. Times come back in UTC.
func decodeSession(id string, rec []byte) (*caddyauth.Session, error) {
	var s caddyauth.Session
	if err := json.Unmarshal(rec, &s); err != nil {
		return nil, errCorrupt
	}
	s.ID = id
	return normalize(&s), nil
}

// normalize converts every time to UTC (which also drops the monotonic
// reading), so what the store returns does not depend on the writer's zone.
func normalize(s *caddyauth.Session) *caddyauth.Session {
	s.Created = s.Created.UTC()
	s.LastSeen = s.LastSeen.UTC()
	s.IdleDeadline = s.IdleDeadline.UTC()
	s.AbsoluteDeadline = s.AbsoluteDeadline.UTC()
	for i := range s.Tokens {
		s.Tokens[i].Expires = s.Tokens[i].Expires.UTC()
		s.Tokens[i].RotatedAt = s.Tokens[i].RotatedAt.UTC()
	}
	return s
}

// encodeUser returns the record of u, which must be normalized.
func encodeUser(u *caddyauth.User) ([]byte, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encode user: %w", err)
	}
	return b, nil
}

// decodeUser parses the record of user id.
func decodeUser(id int64, rec []byte) (*caddyauth.User, error) {
	var u caddyauth.User
	if err := json.Unmarshal(rec, &u); err != nil || u.ID != id {
		return nil, errCorrupt
	}
	return normalizeUser(&u), nil
}

func normalizeUser(u *caddyauth.User) *caddyauth.User {
	u.Created = u.Created.UTC()
	for i := range u.PublicKeys {
		u.PublicKeys[i].Added = u.PublicKeys[i].Added.UTC()
	}
	return u
}

// deadlineScore is a session's score in the deadline sets: its Deadline()
// in Unix milliseconds, rounded down. Exact in a float64 for every year the
// engine uses; PurgeExpired compares the exact deadline after reading the
// record, so the rounding never purges a live session.
func deadlineScore(s *caddyauth.Session) float64 {
	return float64(s.Deadline().UnixMilli())
}

// deadlineMember is a session's member in its dialect's deadline set. The
// user id is in it so that PurgeExpired can clean the user's set even when
// Redis already expired the record.
func deadlineMember(userID int64, id string) string {
	return itoa(userID) + ":" + id
}

// parseDeadlineMember splits a deadline set member.
func parseDeadlineMember(m string) (userID int64, id string, ok bool) {
	uid, id, found := strings.Cut(m, ":")
	if !found {
		return 0, "", false
	}
	n, err := strconv.ParseInt(uid, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return n, id, true
}

// expireAt is when Redis drops a session record: Retention after its
// deadline, or after now when the deadline has passed already (a session
// written expired must still be purged and counted).
func (s *Store) expireAt(sess *caddyauth.Session, now time.Time) time.Time {
	d := sess.Deadline()
	if d.Before(now) {
		d = now
	}
	return d.Add(s.opts.Retention).Truncate(time.Millisecond)
}

// userIDMember is a user id in the uids set: zero-padded, so that the set's
// lexical order (all scores are 0) is numeric order.
func userIDMember(id int64) string { return fmt.Sprintf("%019d", id) }
