// Package redis is the caddyauth.Store for several gateway nodes: sessions,
// users, replay marks and login failure counters live in Redis (single
// server, sentinel or cluster, through go-redis's UniversalClient), and nodes
// tell each other over pub/sub which cached sessions to drop.
//
// # Layout
//
// With the default KeyPrefix "sessiongate:" the keys are:
//
//	{sessiongate}:s:<id>           session record (JSON), PXAT deadline + Retention
//	{sessiongate}:t:<digest>       token digest → session id, same expiry as its session
//	{sessiongate}:us:<user id>     set of the user's session ids
//	{sessiongate}:dl:<dialect>     sorted set "<user id>:<id>" scored by Deadline() in Unix ms
//	{sessiongate}:dialects         set of the dialects that have (had) sessions
//	{sessiongate}:u:<user id>      user record (JSON)
//	{sessiongate}:ue:<lower email> user id
//	{sessiongate}:un:<username>    user id
//	{sessiongate}:uk:<key id>      user id
//	{sessiongate}:uids             sorted set of zero-padded user ids (paging)
//	{sessiongate}:umax             highest user id assigned or stored
//	sessiongate:e:<purpose>:<hex>  ephemeral state (challenges, replay marks,
//	                               failure counters), keyed by SHA-256 of the
//	                               engine's key
//	sessiongate:invalidate         the pub/sub channel
//
// # Atomicity and Redis Cluster
//
// Every Store method that touches more than one key is an optimistic
// transaction: WATCH the keys it read, queue the writes in MULTI, EXEC, and
// start over (a bounded number of times) when another client changed a
// watched key in between. Transactions, like multi-key Lua scripts, are only
// valid in cluster mode when every key is in one hash slot, so the session
// and user keys carry the prefix as a hash tag ({sessiongate}). That puts all
// of them on one master: a cluster then buys failover, not sharding, which is
// fine for the size of session data, and correctness does not depend on the
// deployment. The ephemeral keys are single-key commands (SET NX PX, GETDEL,
// INCR + PEXPIRE in one script) and the bulk of the traffic (one replay mark
// per signed request), so they carry no tag and spread over the cluster.
//
// # Expiry
//
// Session keys expire by themselves (PEXPIREAT) at their Deadline() plus
// Options.Retention, not at the deadline: the engine must still be able to
// answer "expired" rather than "unknown" for a while, and PurgeExpired, run
// by every node's janitor, must find the ended sessions to count them. The
// indexes (user sets, deadline sets) have no TTL; PurgeExpired removes their
// entries with the sessions, and removes entries whose session Redis already
// expired. Readers tolerate such dangling entries.
//
// # Failures
//
// Every failure to reach Redis (refused dial, timeout, LOADING, READONLY,
// wrong password, pool exhausted) is returned wrapped in
// caddyauth.ErrUnavailable, never as ErrNotFound: a Redis that cannot answer
// must produce 503 + Retry-After, never a 401 or a forgotten session
// (REL-01). Commands are not retried by the client (one timeout bounds the
// wait, REL-10); the pool re-dials by itself when Redis is back.
package redis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/caddyauth"
)

var (
	_ caddyauth.Store       = (*Store)(nil)
	_ caddyauth.Ephemeral   = (*Store)(nil)
	_ caddyauth.Invalidator = (*Store)(nil)
)

// Defaults of Options.
const (
	// DefaultAddr is the server used when Options.Addrs is empty.
	DefaultAddr = "127.0.0.1:6379"
	// DefaultKeyPrefix starts every key the store writes.
	DefaultKeyPrefix = "sessiongate:"
	// DefaultTimeout is the default dial, read and write timeout: short,
	// so a stalled Redis turns into a quick 503 instead of pinned requests
	// (REL-10).
	DefaultTimeout = 500 * time.Millisecond
	// DefaultRetention is how long a session record outlives its deadline.
	// It is ten janitor runs at the default purge interval (1 minute), so
	// PurgeExpired finds, removes and counts every ended session even if
	// several runs fail, while dead records still go away on their own
	// within minutes when no janitor runs at all.
	DefaultRetention = 10 * time.Minute
)

// Options configure a Store. The zero value talks to 127.0.0.1:6379, db 0,
// without a password.
type Options struct {
	// Addrs are the servers: one address (host:port) for a single server;
	// the sentinels' addresses when MasterName is set; two or more for a
	// cluster (the seed nodes). Default: 127.0.0.1:6379.
	Addrs []string
	// MasterName is the sentinel master name; setting it selects sentinel
	// mode.
	MasterName string
	// Cluster selects cluster mode with a single address (a managed
	// cluster's configuration endpoint). Two or more Addrs select it anyway.
	Cluster bool
	// DB is the database number (single server and sentinel only).
	DB int
	// Username is the ACL user (Redis 6+); empty means the default user.
	Username string
	// Password authenticates to Redis. Take it from a placeholder such as
	// {env.REDIS_PASSWORD}; it is never logged or put in an error.
	Password string
	// TLS, when non-nil, makes every connection use TLS with this
	// configuration.
	TLS *tls.Config
	// KeyPrefix starts every key, so several gateways (or other
	// applications) can share one Redis. It must not contain '{' or '}':
	// the store puts it in a hash tag itself. Default: "sessiongate:".
	KeyPrefix string
	// DialTimeout bounds each connection attempt. Default: 500ms.
	DialTimeout time.Duration
	// ReadTimeout bounds the wait for each reply: a Redis that does not
	// answer within it makes the gateway answer 503. Default: 500ms.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending each request. Default: 500ms.
	WriteTimeout time.Duration
	// PoolSize is the number of connections per Redis node. Default: 10
	// per CPU.
	PoolSize int
	// Channel is the pub/sub channel for cache invalidations. Every node
	// sharing the store must use the same one. Default: KeyPrefix +
	// "invalidate".
	Channel string
	// Retention is how long a session record is kept after its deadline,
	// so the engine answers "expired" rather than "unknown" and the
	// janitor counts the expiry. It must be longer than the purge
	// interval. Default: 10 minutes.
	Retention time.Duration
}

// normalized returns o with defaults applied, or an error naming the bad
// option.
func (o Options) normalized() (Options, error) {
	if len(o.Addrs) == 0 {
		o.Addrs = []string{DefaultAddr}
	}
	for _, a := range o.Addrs {
		if a == "" {
			return o, errors.New("empty address")
		}
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return o, fmt.Errorf("key prefix %q must not contain '{' or '}'", o.KeyPrefix)
	}
	if strings.Trim(o.KeyPrefix, ":") == "" {
		return o, fmt.Errorf("key prefix %q needs a character other than ':'", o.KeyPrefix)
	}
	if o.DB < 0 {
		return o, fmt.Errorf("db %d is negative", o.DB)
	}
	if o.PoolSize < 0 {
		return o, fmt.Errorf("pool size %d is negative", o.PoolSize)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"dial timeout", &o.DialTimeout, DefaultTimeout},
		{"read timeout", &o.ReadTimeout, DefaultTimeout},
		{"write timeout", &o.WriteTimeout, DefaultTimeout},
		{"retention", &o.Retention, DefaultRetention},
	} {
		if *d.v < 0 {
			return o, fmt.Errorf("%s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.Channel == "" {
		o.Channel = o.KeyPrefix + "invalidate"
	}
	return o, nil
}

// universal maps the options onto go-redis's.
func (o Options) universal() *goredis.UniversalOptions {
	return &goredis.UniversalOptions{
		Addrs:         o.Addrs,
		MasterName:    o.MasterName,
		IsClusterMode: o.Cluster,
		DB:            o.DB,
		Username:      o.Username,
		Password:      o.Password,
		TLSConfig:     o.TLS,
		ClientName:    "sessiongate",
		DialTimeout:   o.DialTimeout,
		ReadTimeout:   o.ReadTimeout,
		WriteTimeout:  o.WriteTimeout,
		// The caller's deadline counts too, so a request can bound its
		// whole wait on the store.
		ContextTimeoutEnabled: true,
		PoolSize:              o.PoolSize,
		// Waiting for a free connection is bounded like a reply: when every
		// connection hangs on a stalled Redis, more waiting does not help.
		PoolTimeout: o.ReadTimeout,
		// One attempt per command and per dial: a retry would multiply the
		// time a request waits on a dead Redis, and re-running an INCR
		// whose reply was lost would count a failure twice. The pool checks
		// idle connections before reuse, so a Redis restart does not fail
		// requests on stale connections.
		MaxRetries:    -1,
		DialerRetries: 1,
	}
}

// describe names the store for errors: mode and addresses, never the
// password.
func (o Options) describe() string {
	addrs := strings.Join(o.Addrs, ",")
	switch {
	case o.MasterName != "":
		return fmt.Sprintf("redis store (sentinel master %q via %s, db %d)", o.MasterName, addrs, o.DB)
	case o.Cluster || len(o.Addrs) > 1:
		return fmt.Sprintf("redis store (cluster %s)", addrs)
	default:
		return fmt.Sprintf("redis store (%s, db %d)", addrs, o.DB)
	}
}

// Store is a caddyauth.Store, caddyauth.Ephemeral and caddyauth.Invalidator
// on Redis. It is safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	opts   Options
	// data starts the session and user keys: the prefix as a hash tag.
	data string
	// eph starts the ephemeral keys (no hash tag, see the package doc).
	eph    string
	closed atomic.Bool
	// pingEvery is how long the subscription may stay silent before it is
	// pinged; a ping unanswered for as long again means the connection is
	// dead or Redis is stalled, and the subscription is made anew.
	pingEvery time.Duration
	// resubscribes counts subscriptions that ended by failure, and pongs
	// the answers to the subscription's pings, for tests that must know
	// what the subscription loop saw.
	resubscribes atomic.Int64
	pongs        atomic.Int64
}

// Open connects to Redis as o says and probes it with a write and a delete
// (Ping), so a wrong address or password fails here, with an error that
// names the store and never contains the password.
func Open(ctx context.Context, o Options) (*Store, error) {
	o, err := o.normalized()
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	s := newStore(goredis.NewUniversalClient(o.universal()), o)
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%s: start-up probe failed: %w", o.describe(), err)
	}
	return s, nil
}

// New returns a Store on an existing client, which the Store then owns
// (Close closes it). Connection settings in o (Addrs, timeouts, ...) are
// ignored: the client has its own. New does not probe Redis; call Ping.
func New(client goredis.UniversalClient, o Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redis store: nil client")
	}
	o, err := o.normalized()
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	return newStore(client, o), nil
}

func newStore(client goredis.UniversalClient, o Options) *Store {
	return &Store{
		client:    client,
		opts:      o,
		data:      "{" + strings.TrimSuffix(o.KeyPrefix, ":") + "}:",
		eph:       o.KeyPrefix + "e:",
		pingEvery: time.Second,
	}
}

// Client returns the underlying go-redis client (for health checks and
// tests). Closing it closes the Store's connections.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// String names the store (mode and addresses) for logs.
func (s *Store) String() string { return s.opts.describe() }

// Ping writes a probe key and deletes it: a store that can do both can
// store sessions. The probe key is in the same hash slot as the sessions, so
// in a cluster it probes the master that holds them.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.begin(op); err != nil {
		return err
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	key := s.data + "probe:" + hex.EncodeToString(nonce[:])
	if err := s.client.Set(ctx, key, "1", 10*time.Second).Err(); err != nil {
		return s.fail(op+" (write)", err)
	}
	if err := s.client.Del(ctx, key).Err(); err != nil {
		return s.fail(op+" (delete)", err)
	}
	return nil
}

// Close closes the connections. Later calls return ErrClosed, subscription
// loops return; closing twice is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis store: close: %w", err)
	}
	return nil
}

// begin refuses a call on a closed store.
func (s *Store) begin(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrClosed)
	}
	return nil
}

// fail classifies an error from go-redis: a missing key is ErrNotFound, a
// closed client ErrClosed, and everything else (network, timeout, LOADING,
// READONLY, authentication, pool) ErrUnavailable with the cause kept for
// the log.
func (s *Store) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrNotFound)
	case s.closed.Load() || errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrClosed)
	default:
		return fmt.Errorf("redis store: %s: %w: %w", op, caddyauth.ErrUnavailable, err)
	}
}

// maxAttempts bounds the optimistic retries of one transaction. Conflicts
// need another writer on the same keys in the same few milliseconds, so a
// transaction that loses this often is under a storm worth a 503.
const maxAttempts = 50

// errConflict means EXEC was aborted because a watched key changed.
var errConflict = errors.New("redis store: concurrent write")

// txn runs fn in an optimistic transaction watching keys: fn reads through
// tx (more keys may be watched with tx.Watch before reading them), then
// queues its writes with s.exec. When a watched key changed, fn runs again.
// Errors fn returns are returned unchanged, so fn classifies its own.
func (s *Store) txn(ctx context.Context, op string, fn func(tx *goredis.Tx) error, keys ...string) error {
	for attempt := range maxAttempts {
		var fnErr error
		err := s.client.Watch(ctx, func(tx *goredis.Tx) error {
			fnErr = fn(tx)
			return fnErr
		}, keys...)
		switch {
		case fnErr == nil && err == nil:
			return nil
		case errors.Is(fnErr, errConflict):
			// Retry below.
		case fnErr != nil:
			return fnErr
		default:
			return s.fail(op, err) // WATCH or UNWATCH failed
		}
		if attempt >= 2 {
			// Spread the contenders out so one of them wins the next round.
			t := time.NewTimer(time.Duration(mrand.Int64N(int64(attempt)*int64(time.Millisecond) + 1))) // #nosec G404 -- jitter, not a secret
			select {
			case <-ctx.Done():
				t.Stop()
				return s.fail(op, ctx.Err())
			case <-t.C:
			}
		}
	}
	return fmt.Errorf("redis store: %s: %w: %d write conflicts in a row", op, caddyauth.ErrUnavailable, maxAttempts)
}

// exec runs the writes queue adds as MULTI/EXEC on tx; errConflict if a
// watched key changed, so txn runs the transaction again.
func (s *Store) exec(ctx context.Context, op string, tx *goredis.Tx, queue func(p goredis.Pipeliner)) error {
	_, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		queue(p)
		return nil
	})
	if errors.Is(err, goredis.TxFailedErr) {
		return errConflict
	}
	return s.fail(op, err)
}

// confirm decides whether a refusal computed from several reads in tx
// stands. The reads are not one snapshot: another client may have written
// between them (two creates that both read the same highest user id, for
// one). An empty EXEC fails exactly when a watched key changed since WATCH;
// then the refusal may rest on a mixed state and the transaction runs again.
func (s *Store) confirm(ctx context.Context, op string, tx *goredis.Tx, refusal error) error {
	if err := s.exec(ctx, op, tx, func(p goredis.Pipeliner) { p.Ping(ctx) }); err != nil {
		return err
	}
	return refusal
}

// get reads key through c (the client or a transaction): its value and
// true, or false when the key does not exist.
func (s *Store) get(ctx context.Context, op string, c goredis.Cmdable, key string) ([]byte, bool, error) {
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	return b, true, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
