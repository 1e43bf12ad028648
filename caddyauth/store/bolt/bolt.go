// Package bolt is the embedded, durable caddyauth.Store, on go.etcd.io/bbolt.
//
// Every method is one bbolt transaction, so it is atomic, and every write
// transaction commits with fsync (NoSync stays false): when a method returns
// nil, the write survives a crash of the process or the machine (REL-06).
//
// Layout, one bucket each:
//
//	sessions     ID → session record (see codec.go)
//	by_user      8-byte big-endian user ID ++ ID → empty
//	by_deadline  8-byte sortable Deadline() UnixNano ++ 0x00 ++ ID → empty
//	counts       dialect → 8-byte big-endian count
//	tokens       token Digest → session ID
//	users        8-byte big-endian user ID → user record (see usercodec.go);
//	             the bucket's sequence is the last id CreateUser assigned
//	user_email   lower-case Email → 8-byte big-endian user ID
//	user_name    Username → 8-byte big-endian user ID
//	user_key     public key ID → 8-byte big-endian user ID
//	meta         schema version; Ping's probe key
//
// The indexes are maintained in the same transaction as the record, so
// ListUserSessions and DeleteUserSessions read only the user's keys,
// PurgeExpired walks only expired keys, CountSessions reads one key per
// dialect however many sessions there are, and SessionByToken and the
// user-by lookups are one index read and one record read.
//
// Schema 1 files (before tokens and users) are upgraded in place on Open:
// the new buckets are created and the version is raised to 2. Their session
// records decode unchanged. The raised version makes an older build refuse
// the file instead of misreading records that carry tokens.
//
// A file is locked by the process that opened it; a second Open of the same
// file (another instance, or an old config during a reload that did not share
// its handle, REL-07) waits Options.Timeout and fails with ErrUnavailable.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/sessiongate/sessiongate/caddyauth"
)

var _ caddyauth.Store = (*Store)(nil)

// Bucket and meta key names.
var (
	bucketSessions   = []byte("sessions")
	bucketByUser     = []byte("by_user")
	bucketByDeadline = []byte("by_deadline")
	bucketCounts     = []byte("counts")
	bucketMeta       = []byte("meta")
	bucketTokens     = []byte("tokens")
	bucketUsers      = []byte("users")
	bucketUserEmail  = []byte("user_email")
	bucketUserName   = []byte("user_name")
	bucketUserKey    = []byte("user_key")

	keySchema = []byte("schema")
	keyPing   = []byte("ping")
)

// schemaVersion is written to meta on creation and upgrade. Open refuses a
// file with a version it does not know rather than misreading it; files of
// oldSchemaVersion are upgraded (see the package comment).
const (
	schemaVersion    = "2"
	oldSchemaVersion = "1"
)

// maxIDLen bounds session IDs. bbolt refuses keys over 32 KiB; real IDs are
// at most a 64-character digest, so anything near the limit is a bug, and
// refusing it up front gives a clearer error than bbolt's.
const maxIDLen = 4096

// Defaults for Options.
const (
	DefaultTimeout  = time.Second
	DefaultFileMode = os.FileMode(0o600)
)

// Options configures Open.
type Options struct {
	// Timeout bounds how long Open waits for the file lock held by another
	// process. Default 1s. (bbolt itself would wait forever on zero, which
	// would hang a start-up behind a stuck instance.)
	Timeout time.Duration
	// FileMode for a new file. Default 0600: the file holds sealed keys and
	// token digests, which are nobody else's business (SEC-16).
	FileMode os.FileMode
}

// Store is a caddyauth.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	path string
	gets atomic.Uint64

	// mu is held for reading for the whole of every transaction and for
	// writing by Close, so Close waits for transactions in flight and no
	// transaction starts on a closed handle. db is nil once closed.
	mu sync.RWMutex
	db *bbolt.DB
}

// Open opens or creates the store file at path, creating missing parent
// directories with mode 0700.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("bolt: open: empty path")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.FileMode == 0 {
		opts.FileMode = DefaultFileMode
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: create directory: %w: %v", path, caddyauth.ErrUnavailable, err)
	}
	db, err := bbolt.Open(path, opts.FileMode, &bbolt.Options{
		Timeout: opts.Timeout,
		// fsync on every commit: a login is acknowledged only once it is on
		// disk (REL-06). Spelled out so nobody "optimises" it away.
		NoSync: false,
		// The hashmap freelist stays fast when a purge frees many pages of
		// a large file; it is what etcd uses.
		FreelistType: bbolt.FreelistMapType,
		// Logger stays nil (discard): bbolt's debug logs print keys, and
		// keys are session IDs.
	})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: the file is locked, probably by another running instance (gave up after %s): %w",
			path, opts.Timeout, caddyauth.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w: %v", path, caddyauth.ErrUnavailable, err)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close() // the schema error is the one to report
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return &Store{path: path, db: db}, nil
}

// initSchema creates the buckets of a new file and checks the schema version
// of an existing one.
func initSchema(tx *bbolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w: %v", name, caddyauth.ErrUnavailable, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keySchema); {
	case v == nil, string(v) == oldSchemaVersion:
		if err := meta.Put(keySchema, []byte(schemaVersion)); err != nil {
			return fmt.Errorf("write schema version: %w: %v", caddyauth.ErrUnavailable, err)
		}
	case string(v) != schemaVersion:
		// Not ErrUnavailable: retrying will not help; the file is from
		// another version of the gateway.
		return fmt.Errorf("unsupported schema version %q (this build reads %q)", v, schemaVersion)
	}
	return nil
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Gets returns how many times GetSession was called, whatever its outcome.
// Tests use it to prove a malformed credential never reached the store
// (SEC-36).
func (s *Store) Gets() uint64 { return s.gets.Load() }

// allBuckets are created by Open when missing.
var allBuckets = [][]byte{bucketSessions, bucketByUser, bucketByDeadline, bucketCounts, bucketMeta,
	bucketTokens, bucketUsers, bucketUserEmail, bucketUserName, bucketUserKey}

// buckets are the store's buckets within one transaction.
type buckets struct {
	sessions, byUser, byDeadline, counts, meta  *bbolt.Bucket
	tokens, users, userEmail, userName, userKey *bbolt.Bucket
}

// bucketSet names the buckets an operation uses. Opening a bucket costs a
// B+tree lookup and an allocation, so the reads on a cache miss (GetSession,
// SessionByToken) open only what they touch instead of all ten.
type bucketSet uint16

const (
	needSessions bucketSet = 1 << iota
	needByUser
	needByDeadline
	needCounts
	needMeta
	needTokens
	needUsers
	needUserEmail
	needUserName
	needUserKey

	needAll bucketSet = 1<<iota - 1
)

// bucketsOf opens the buckets in need (the others stay nil). A missing one
// means a damaged file: unavailable, never "not found" (REL-01).
func bucketsOf(tx *bbolt.Tx, need bucketSet) (*buckets, error) {
	b := &buckets{}
	for _, o := range [...]struct {
		bit  bucketSet
		name []byte
		dst  **bbolt.Bucket
	}{
		{needSessions, bucketSessions, &b.sessions},
		{needByUser, bucketByUser, &b.byUser},
		{needByDeadline, bucketByDeadline, &b.byDeadline},
		{needCounts, bucketCounts, &b.counts},
		{needMeta, bucketMeta, &b.meta},
		{needTokens, bucketTokens, &b.tokens},
		{needUsers, bucketUsers, &b.users},
		{needUserEmail, bucketUserEmail, &b.userEmail},
		{needUserName, bucketUserName, &b.userName},
		{needUserKey, bucketUserKey, &b.userKey},
	} {
		if need&o.bit == 0 {
			continue
		}
		if *o.dst = tx.Bucket(o.name); *o.dst == nil {
			return nil, fmt.Errorf("%w: missing bucket", caddyauth.ErrUnavailable)
		}
	}
	return b, nil
}

// run runs fn in one transaction (writable or not), after checking that the
// store is open and ctx is live, and gives every error the op's context.
// Errors that already carry a caddyauth sentinel keep it; anything else
// (bbolt I/O, commit, fsync) becomes ErrUnavailable: the store could not
// answer, which must never read as "no such session" (REL-01).
func (s *Store) run(ctx context.Context, op string, writable bool, fn func(*buckets) error) error {
	return s.runWith(ctx, op, writable, needAll, fn)
}

// runWith is run opening only the buckets in need.
func (s *Store) runWith(ctx context.Context, op string, writable bool, need bucketSet, fn func(*buckets) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("bolt: %s: %w", op, caddyauth.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w: %w", op, caddyauth.ErrUnavailable, err)
	}
	txFn := func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx, need)
		if err != nil {
			return err
		}
		return fn(b)
	}
	var err error
	if writable {
		err = s.db.Update(txFn)
	} else {
		err = s.db.View(txFn)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, caddyauth.ErrNotFound), errors.Is(err, caddyauth.ErrExists),
		errors.Is(err, caddyauth.ErrUnavailable), errors.Is(err, caddyauth.ErrClosed):
		return fmt.Errorf("bolt: %s: %w", op, err)
	case errors.Is(err, bberrors.ErrDatabaseNotOpen):
		return fmt.Errorf("bolt: %s: %w", op, caddyauth.ErrClosed)
	default:
		return fmt.Errorf("bolt: %s: %w: %v", op, caddyauth.ErrUnavailable, err)
	}
}

// CreateSession stores sess. ErrExists if its ID is taken.
func (s *Store) CreateSession(ctx context.Context, sess *caddyauth.Session) error {
	if sess == nil || sess.ID == "" || sess.Dialect == "" {
		// The dialect keys the counts bucket, and bbolt refuses empty keys.
		return errors.New("bolt: create session: session without id or dialect")
	}
	if len(sess.ID) > maxIDLen {
		return fmt.Errorf("bolt: create session: id longer than %d bytes", maxIDLen)
	}
	if err := checkTokens(sess.Tokens); err != nil {
		return fmt.Errorf("bolt: create session: %w", err)
	}
	// Everything bbolt keeps is built before the transaction, from a
	// snapshot of sess: the caller may reuse sess as soon as we return.
	id := []byte(sess.ID)
	rec := encodeSession(sess)
	uk := userKey(sess.UserID, sess.ID)
	dk := deadlineKey(sess)
	dialect := sess.Dialect
	digests := tokenDigests(sess.Tokens)
	return s.run(ctx, "create session", true, func(b *buckets) error {
		if b.sessions.Get(id) != nil {
			return caddyauth.ErrExists
		}
		if err := indexTokens(b, id, digests); err != nil {
			return err
		}
		if err := b.sessions.Put(id, rec); err != nil {
			return err
		}
		if err := b.byUser.Put(uk, []byte{}); err != nil {
			return err
		}
		if err := b.byDeadline.Put(dk, []byte{}); err != nil {
			return err
		}
		return addCount(b, dialect, 1)
	})
}

// GetSession returns session id, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	s.gets.Add(1)
	var out *caddyauth.Session
	err := s.runWith(ctx, "get session", false, needSessions, func(b *buckets) error {
		var err error
		out, err = get(b, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TouchSession sets LastSeen and IdleDeadline of session id and moves its
// expiry index entry. AbsoluteDeadline is left alone.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, idleDeadline time.Time) error {
	return s.run(ctx, "touch session", true, func(b *buckets) error {
		sess, err := get(b, id)
		if err != nil {
			return err
		}
		oldDK := deadlineKey(sess)
		sess.LastSeen, sess.IdleDeadline = lastSeen, idleDeadline
		if err := b.sessions.Put([]byte(id), encodeSession(sess)); err != nil {
			return err
		}
		if newDK := deadlineKey(sess); !bytes.Equal(oldDK, newDK) {
			if err := b.byDeadline.Delete(oldDK); err != nil {
				return err
			}
			if err := b.byDeadline.Put(newDK, []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteSession removes session id and returns it, or ErrNotFound. bbolt
// runs one writer at a time, so of concurrent deletes exactly one finds it.
func (s *Store) DeleteSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	var out *caddyauth.Session
	err := s.run(ctx, "delete session", true, func(b *buckets) error {
		sess, err := get(b, id)
		if err != nil {
			return err
		}
		out = sess
		return remove(b, sess)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteUserSessions removes every session of userID and returns them.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) ([]*caddyauth.Session, error) {
	var out []*caddyauth.Session
	err := s.run(ctx, "delete user sessions", true, func(b *buckets) error {
		ids := userIDs(b, userID)
		for _, id := range ids {
			sess, err := get(b, id)
			if errors.Is(err, caddyauth.ErrNotFound) {
				// A dangling index entry: drop it so it cannot haunt the
				// next revoke-all.
				if err := b.byUser.Delete(userKey(userID, id)); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if err := remove(b, sess); err != nil {
				return err
			}
			out = append(out, sess)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListUserSessions returns userID's sessions.
func (s *Store) ListUserSessions(ctx context.Context, userID int64) ([]*caddyauth.Session, error) {
	var out []*caddyauth.Session
	err := s.run(ctx, "list user sessions", false, func(b *buckets) error {
		for _, id := range userIDs(b, userID) {
			sess, err := get(b, id)
			if errors.Is(err, caddyauth.ErrNotFound) {
				continue // dangling index entry; a write will clean it up
			}
			if err != nil {
				return err
			}
			out = append(out, sess)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PurgeExpired removes and returns every session whose Deadline() is at or
// before now. It walks by_deadline from the start and stops at the first key
// after now, so its cost follows the number of expired sessions, not the
// size of the store.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) ([]*caddyauth.Session, error) {
	limit := deadlinePrefix(now)
	var out []*caddyauth.Session
	err := s.run(ctx, "purge expired", true, func(b *buckets) error {
		// Collect first: deleting under a live cursor skips keys.
		var keys [][]byte
		c := b.byDeadline.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:min(len(k), 8)], limit) <= 0; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if len(k) < 9 {
				if err := b.byDeadline.Delete(k); err != nil {
					return err
				}
				continue
			}
			sess, err := get(b, string(k[9:]))
			switch {
			case errors.Is(err, caddyauth.ErrNotFound):
				if err := b.byDeadline.Delete(k); err != nil {
					return err
				}
				continue
			case err != nil:
				return err
			}
			if !bytes.Equal(k, deadlineKey(sess)) {
				// Stale entry: the session's real entry is elsewhere.
				if err := b.byDeadline.Delete(k); err != nil {
					return err
				}
				continue
			}
			// Clamped prefixes (beyond 2262) can tie with now; the decoded
			// deadline decides.
			if sess.Deadline().After(now) {
				continue
			}
			if err := remove(b, sess); err != nil {
				return err
			}
			out = append(out, sess)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountSessions returns the number of stored sessions per dialect, expired
// or not. Dialects without sessions are absent.
func (s *Store) CountSessions(ctx context.Context) (map[caddyauth.Dialect]int, error) {
	out := make(map[caddyauth.Dialect]int)
	err := s.run(ctx, "count sessions", false, func(b *buckets) error {
		return b.counts.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: bad count record", caddyauth.ErrUnavailable)
			}
			n := binary.BigEndian.Uint64(v)
			if n > math.MaxInt32 {
				// No store holds two billion sessions of one dialect; this
				// is a damaged record, not a count to wrap around.
				return fmt.Errorf("%w: bad count record", caddyauth.ErrUnavailable)
			}
			out[caddyauth.Dialect(k)] = int(n)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Ping writes, reads back and deletes a probe key in one committed (so
// fsynced) transaction: it fails when the file cannot be written, which is
// what the start-up probe must find out (REL-01).
func (s *Store) Ping(ctx context.Context) error {
	probe := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	return s.run(ctx, "ping", true, func(b *buckets) error {
		if err := b.meta.Put(keyPing, probe); err != nil {
			return err
		}
		if !bytes.Equal(b.meta.Get(keyPing), probe) {
			return fmt.Errorf("%w: probe read back wrong", caddyauth.ErrUnavailable)
		}
		return b.meta.Delete(keyPing)
	})
}

// Check runs bbolt's consistency check (tx.Check) in a read transaction and
// returns every problem it reports, joined; nil means the file is sound.
// The REL-06 crash tests run it after each restart.
func (s *Store) Check() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("bolt: check: %w", caddyauth.ErrClosed)
	}
	var errs []error
	err := s.db.View(func(tx *bbolt.Tx) error {
		// Drain the channel fully: Check's goroutine blocks until we do.
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("bolt: check %s: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// Close waits for transactions in flight, then closes the file and releases
// its lock. Later calls return ErrClosed; closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("bolt: close %s: %w: %v", s.path, caddyauth.ErrUnavailable, err)
	}
	return nil
}

// get reads and decodes session id. The result is copied out of bbolt's
// memory, so it outlives the transaction.
func get(b *buckets, id string) (*caddyauth.Session, error) {
	rec := b.sessions.Get([]byte(id))
	if rec == nil {
		return nil, caddyauth.ErrNotFound
	}
	sess, err := decodeSession(id, rec)
	if err != nil {
		// Unavailable, not NotFound: a record we cannot read is not a
		// session we may treat as gone (REL-01).
		return nil, fmt.Errorf("%w: %w", caddyauth.ErrUnavailable, err)
	}
	return sess, nil
}

// remove deletes sess's record and index entries and decrements its count.
func remove(b *buckets, sess *caddyauth.Session) error {
	if err := b.sessions.Delete([]byte(sess.ID)); err != nil {
		return err
	}
	if err := b.byUser.Delete(userKey(sess.UserID, sess.ID)); err != nil {
		return err
	}
	if err := b.byDeadline.Delete(deadlineKey(sess)); err != nil {
		return err
	}
	if err := unindexTokens(b, sess.ID, tokenDigests(sess.Tokens)); err != nil {
		return err
	}
	return addCount(b, sess.Dialect, -1)
}

// userIDs returns the IDs indexed under userID, copied out of bbolt memory.
func userIDs(b *buckets, userID int64) []string {
	prefix := userPrefix(userID)
	var ids []string
	c := b.byUser.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// addCount adds delta to d's count, deleting the key at zero so the bucket
// holds only dialects in use. A count that would go negative (a file damaged
// by hand) is floored at zero rather than wrapping around.
func addCount(b *buckets, d caddyauth.Dialect, delta int64) error {
	k := []byte(d)
	var n int64
	if v := b.counts.Get(k); len(v) == 8 {
		n = bitsInt64(binary.BigEndian.Uint64(v))
	}
	n += delta
	if n <= 0 {
		return b.counts.Delete(k)
	}
	return b.counts.Put(k, binary.BigEndian.AppendUint64(nil, int64Bits(n)))
}
