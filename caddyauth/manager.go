package caddyauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// Errors the Manager returns; dialects map them to their wire answers.
var (
	// ErrBadCredentials: unknown user, wrong password, wrong account
	// number, disabled account. One error for all of them, so no answer
	// can tell them apart (SEC-03).
	ErrBadCredentials = errors.New("bad credentials")
	// ErrBusy: the password hashing pool is full; answer 503 + Retry-After
	// at once (SEC-05).
	ErrBusy = errors.New("login capacity exhausted")
	// ErrUnknownSession: no such session (or one that cannot be opened).
	ErrUnknownSession = errors.New("unknown session")
	// ErrSessionExpired: the session exists but is past its deadline.
	ErrSessionExpired = errors.New("session expired")
	// ErrPasswordTooLong: over MaxPasswordBytes, refused before hashing.
	ErrPasswordTooLong = errors.New("password too long")
	// ErrAccountLocked is ErrBadCredentials for an account locked after
	// too many failures (SEC-06): errors.Is(err, ErrBadCredentials) holds,
	// so dialects give it the very same answer (SEC-03); only metrics and
	// the audit log say "locked".
	ErrAccountLocked = fmt.Errorf("%w (account locked)", ErrBadCredentials)
)

// MaxPasswordBytes bounds a password before it reaches the KDF (SEC-02): far
// above any passphrase, far below a memory or CPU problem.
const MaxPasswordBytes = 1024

// Config assembles a Manager.
type Config struct {
	// Store persists sessions. Required.
	Store Store
	// Users finds users for login. Required.
	Users UserDirectory
	// Hasher verifies passwords with bounded concurrency. Required.
	Hasher *password.Hasher
	// Sealer encrypts secrets at rest and hashes ids for logs. Required.
	Sealer *Sealer
	// Cache sits in front of Store; nil means a default-sized cache.
	Cache *KeyCache
	// Replay remembers signatures or nonces; nil means Ephemeral's
	// SeenOnce.
	Replay ReplayGuard
	// MaxSessionsPerUser caps the live sessions of one user: a login that
	// makes one too many ends the user's oldest session (SEC-13). 0 means
	// no cap.
	MaxSessionsPerUser int
	// LocalReplay is this node's in-memory guard for observe-only replay
	// counting; nil means Replay when that is in memory, else a new
	// in-memory guard.
	LocalReplay ReplayGuard
	// Ephemeral holds challenges, replay marks and failure counters; nil
	// means LocalEphemeral (one node). A shared store passes itself.
	Ephemeral Ephemeral
	// Abuse holds lockouts and throttles; nil means the defaults of
	// AbuseConfig over Ephemeral.
	Abuse *Abuse
	// Clock defaults to SystemClock.
	Clock Clock
	// Observer defaults to NopObserver.
	Observer Observer
}

// Manager is the session engine shared by every dialect: it checks
// passwords, starts, finds and ends sessions. It is safe for concurrent use.
type Manager struct {
	store  Store
	users  UserDirectory
	hasher *password.Hasher
	sealer *Sealer
	cache  *KeyCache
	replay ReplayGuard
	eph    Ephemeral
	abuse  *Abuse
	clock  Clock
	obs    Observer
	// inv, when the store is shared between nodes, tells the others to
	// drop ended sessions from their caches.
	inv Invalidator
	// idc caches users for identity headers.
	idc *identityCache
	// localReplay is this node's guard for observe-only replay counting.
	localReplay ReplayGuard
	// maxSessions is Config.MaxSessionsPerUser.
	maxSessions int
}

// NewManager checks cfg and returns a Manager.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Users == nil || cfg.Hasher == nil || cfg.Sealer == nil {
		return nil, fmt.Errorf("session manager: store, users, hasher and sealer are required")
	}
	m := &Manager{store: cfg.Store, users: cfg.Users, hasher: cfg.Hasher, sealer: cfg.Sealer,
		cache: cfg.Cache, replay: cfg.Replay, eph: cfg.Ephemeral, clock: cfg.Clock, obs: cfg.Observer,
		maxSessions: cfg.MaxSessionsPerUser}
	if m.clock == nil {
		m.clock = SystemClock{}
	}
	if m.eph == nil {
		m.eph = NewLocalEphemeral(DefaultEphemeralSize, m.clock)
	}
	m.abuse = cfg.Abuse
	if m.abuse == nil {
		m.abuse = NewAbuse(AbuseConfig{}, m.eph, m.clock)
	}
	if inv, ok := cfg.Store.(Invalidator); ok {
		m.inv = inv
	}
	if m.cache == nil {
		m.cache = NewKeyCache(DefaultCacheSize, DefaultCacheTTL)
	}
	m.idc = newIdentityCache(m.cache.TTL())
	if m.replay == nil {
		if cfg.Ephemeral != nil {
			m.replay = cfg.Ephemeral
		} else {
			m.replay = NewMemoryReplayGuard(DefaultReplayCacheSize, m.clock)
		}
	}
	m.localReplay = cfg.LocalReplay
	if m.localReplay == nil {
		if m.LocalReplay() {
			m.localReplay = m.replay
		} else {
			m.localReplay = NewMemoryReplayGuard(DefaultReplayCacheSize, m.clock)
		}
	}
	if m.obs == nil {
		m.obs = NopObserver{}
	}
	m.abuse.mu.Lock()
	if m.abuse.obs == nil {
		m.abuse.obs = m.obs
	}
	m.abuse.mu.Unlock()
	return m, nil
}

// Now is the manager's clock.
func (m *Manager) Now() time.Time { return m.clock.Now() }

// Store returns the session store.
func (m *Manager) Store() Store { return m.store }

// Cache returns the key cache.
func (m *Manager) Cache() *KeyCache { return m.cache }

// Replay returns the replay guard.
func (m *Manager) Replay() ReplayGuard { return m.replay }

// Ephemeral returns the challenge, replay and counter state.
func (m *Manager) Ephemeral() Ephemeral { return m.eph }

// Abuse returns the lockouts and throttles.
func (m *Manager) Abuse() *Abuse { return m.abuse }

// TokenCacheKey is the key cache key of a bearer token's session: the token
// digest with a prefix, so it can never collide with a session id.
func TokenCacheKey(digest string) string { return "token:" + digest }

// cacheKeys lists every key cache entry that can hold s: its id and one per
// token.
func cacheKeys(s *Session) []string {
	keys := make([]string, 0, 1+len(s.Tokens))
	keys = append(keys, s.ID)
	for _, t := range s.Tokens {
		keys = append(keys, TokenCacheKey(t.Digest))
	}
	return keys
}

// Forget drops every cache entry of the sessions, on this node and, when the
// store is shared, on every other node (through the store's invalidation
// channel). A failed publish is counted; the cache TTL still bounds how long
// another node can serve the ended session (REL-03).
func (m *Manager) Forget(ctx context.Context, sessions ...*Session) {
	var keys []string
	for _, s := range sessions {
		if s != nil {
			keys = append(keys, cacheKeys(s)...)
		}
	}
	if len(keys) == 0 {
		return
	}
	for _, k := range keys {
		m.cache.Remove(k)
	}
	if m.inv != nil {
		if err := m.inv.PublishInvalidation(ctx, keys); err != nil {
			m.obs.StoreError("publish_invalidation")
		}
	}
}

// Observer returns the observer.
func (m *Manager) Observer() Observer { return m.obs }

// Users returns the user directory.
func (m *Manager) Users() UserDirectory { return m.users }

// LogHash is the keyed hash of a session id used in logs.
func (m *Manager) LogHash(id string) string { return m.sealer.LogHash(id) }

// Audit sends an event to the observer, stamping the time.
func (m *Manager) Audit(e Event) {
	if e.Time.IsZero() {
		e.Time = m.clock.Now().UTC()
	}
	m.obs.Audit(e)
}

// PasswordLogin is a login attempt with a password. Exactly one of Email,
// UserID (> 0) or Username selects the user.
type PasswordLogin struct {
	Email    string
	UserID   int64
	Username string
	// AccountNumber, when CheckAccount is set, must equal the user's.
	AccountNumber string
	CheckAccount  bool
	Password      string
}

// CheckPassword returns the user if the login is right. Every attempt that
// reaches it costs exactly one KDF evaluation, whether the user exists or not
// (SEC-04), and every kind of wrong answer is the same ErrBadCredentials
// (SEC-03), locked accounts included (ErrAccountLocked is an
// ErrBadCredentials). Other errors: ErrThrottled (a *ThrottleError, before
// any work), ErrBusy, ErrPasswordTooLong, ErrUnavailable.
func (m *Manager) CheckPassword(ctx context.Context, l PasswordLogin) (*User, error) {
	if len(l.Password) > MaxPasswordBytes {
		return nil, ErrPasswordTooLong
	}
	// SEC-07: the throttles run before any lookup or hash, so a flood
	// costs neither.
	if err := m.abuse.AllowLogin(ClientIP(ctx)); err != nil {
		return nil, err
	}
	account := AccountKey(l)
	locked := m.abuse.Locked(ctx, account)
	var (
		u   *User
		err error
	)
	switch {
	case l.Email != "":
		u, err = m.users.UserByEmail(ctx, l.Email)
	case l.UserID > 0:
		u, err = m.users.UserByID(ctx, l.UserID)
	case l.Username != "":
		u, err = m.users.UserByUsername(ctx, l.Username)
	default:
		err = ErrNotFound
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		m.obs.StoreError("get_user")
		return nil, fmt.Errorf("look up user: %w", ErrUnavailable)
	}
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	}
	ok, herr := m.hasher.Verify(ctx, hash, l.Password)
	if errors.Is(herr, password.ErrBusy) {
		return nil, ErrBusy
	}
	if herr != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("check password: %w", ctx.Err())
	}
	// Decide only after the KDF ran, so timing does not tell which check
	// failed.
	if locked {
		// Right or wrong, a locked account is refused; the attempt does
		// not extend the lock.
		return nil, ErrAccountLocked
	}
	if u == nil || !ok || u.Disabled || (l.CheckAccount && !constantTimeEqual(l.AccountNumber, u.AccountNumber)) {
		if m.abuse.Failed(ctx, account) {
			e := Event{Type: "lockout", Reason: ResultLocked, ClientIP: ClientIP(ctx)}
			if u != nil {
				e.UserID = u.ID
			}
			m.Audit(e)
		}
		return nil, ErrBadCredentials
	}
	m.abuse.Succeeded(ctx, account)
	// SEC-01: a store user's hash made with weaker parameters than the
	// current ones is replaced now, while the password is at hand.
	m.rehash(ctx, u, l.Password)
	return u, nil
}

// NewSession describes a session to start.
type NewSession struct {
	User    *User
	Dialect Dialect
	Kind    CredentialKind
	// ID is the store id; for KindHMACKey the session number in decimal.
	ID string
	// Secret, for KindHMACKey, is sealed before it reaches the store.
	Secret []byte
	// Lifetime is the absolute lifetime from now.
	Lifetime time.Duration
	// IdleTimeout, if > 0, ends the session after that long without a
	// touch.
	IdleTimeout time.Duration
}

// StartSession stores a new session and returns it (with its secret in
// clear, as the caller needs to hand it out). It returns only after the store
// acknowledged the write, so an acknowledged login survives a crash.
// ErrExists if the id is taken (the caller draws a new one).
func (m *Manager) StartSession(ctx context.Context, ns NewSession) (*Session, error) {
	now := m.clock.Now().UTC()
	s := &Session{ID: ns.ID, UserID: ns.User.ID, Dialect: ns.Dialect, Kind: ns.Kind,
		Created: now, LastSeen: now, AbsoluteDeadline: now.Add(ns.Lifetime)}
	if ns.IdleTimeout > 0 {
		s.IdleDeadline = now.Add(ns.IdleTimeout)
	}
	stored := s.Clone()
	if ns.Secret != nil {
		stored.Secret = m.sealer.Seal(ns.ID, ns.Secret)
		s.Secret = append([]byte(nil), ns.Secret...)
	}
	if err := m.store.CreateSession(ctx, stored); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, err
		}
		m.obs.StoreError("create_session")
		return nil, fmt.Errorf("start session: %w", asUnavailable(err))
	}
	m.obs.SessionCreated(ns.Dialect)
	if err := m.confirmLogin(ctx, s, ns.User); err != nil {
		return nil, err
	}
	m.enforceSessionCap(ctx, s.UserID, s.ID)
	return s, nil
}

// confirmLogin closes the race between a login and a concurrent change of
// its user: a disable, a deletion or a password change, each of which ends
// every session of the user (SEC-13). The login read the user before hashing
// the password; a change that ran meanwhile revoked the user's sessions
// before this one existed. Reading the user again once the session is
// stored settles it, on any linearizable store: if the read still sees the
// user as the login saw it (enabled, same password hash), the change's write
// came after it, so the revocation that follows that write lists, and ends,
// this session; otherwise the session is ended here and the login refused
// like a disabled user's (ErrBadCredentials). A rehash by this very login
// (SEC-01) updated seen, so it does not count as a change. Static users
// cannot change, so they cost no read.
func (m *Manager) confirmLogin(ctx context.Context, s *Session, seen *User) error {
	if !m.fromStore(s.UserID) {
		return nil
	}
	u, err := m.users.UserByID(ctx, s.UserID)
	if err == nil && !u.Disabled && u.PasswordHash == seen.PasswordHash {
		return nil
	}
	// The credentials were never handed out, so a session this fails to
	// end is unusable; it still goes, so it is not counted as live.
	_, _ = m.EndSession(ctx, s.ID, "revoked")
	reason := "user_disabled"
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		m.obs.StoreError("get_user")
		return fmt.Errorf("confirm login of user %d: %w", s.UserID, asUnavailable(err))
	case err != nil:
		reason = "user_deleted"
	case !u.Disabled:
		reason = "password_changed"
	}
	m.Audit(Event{Type: EventSessionsRevoked, UserID: s.UserID, Dialect: s.Dialect, Reason: reason, Count: 1})
	return ErrBadCredentials
}

// Session returns the live session with id, through the key cache. The
// returned value is shared with the cache: do not modify it. Errors:
// ErrUnknownSession, ErrSessionExpired, ErrUnavailable.
func (m *Manager) Session(ctx context.Context, id string) (*Session, error) {
	now := m.clock.Now()
	s, hit, err := m.cache.Load(ctx, id, now, func(ctx context.Context) (*Session, error) {
		st, err := m.store.GetSession(ctx, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, ErrUnknownSession
			}
			m.obs.StoreError("get_session")
			return nil, asUnavailable(err)
		}
		if st.Expired(now) {
			return nil, ErrSessionExpired
		}
		if st.Secret != nil {
			clear, err := m.sealer.Open(st.ID, st.Secret)
			if err != nil {
				// Wrong master key or tampering: fail closed (SEC-16).
				return nil, ErrUnknownSession
			}
			st.Secret = clear
		}
		return st, nil
	})
	m.obs.CacheLookup(hit)
	if err != nil {
		return nil, err
	}
	if s.Expired(now) {
		return nil, ErrSessionExpired
	}
	return s, nil
}

// EndSession deletes a session and drops it from the cache. reason is one of
// logout, revoked, refresh_reuse (metric label). ErrUnknownSession if it was
// already gone.
func (m *Manager) EndSession(ctx context.Context, id, reason string) (*Session, error) {
	s, err := m.store.DeleteSession(ctx, id)
	// Drop the cache entry whatever the store said: a stale entry must
	// never outlive a logout on this node.
	m.cache.Remove(id)
	if s != nil {
		m.Forget(ctx, s)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrUnknownSession
		}
		m.obs.StoreError("delete_session")
		return nil, fmt.Errorf("end session: %w", asUnavailable(err))
	}
	m.obs.SessionEnded(s.Dialect, reason)
	return s, nil
}

// SeenOnce asks the replay guard whether key is new.
func (m *Manager) SeenOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	first, err := m.replay.SeenOnce(ctx, key, ttl)
	if err != nil {
		m.obs.StoreError("seen_once")
		return false, fmt.Errorf("replay guard: %w", asUnavailable(err))
	}
	return first, nil
}

// PurgeExpired removes expired sessions from store and cache, counting each
// as ended by expiry. It returns how many it removed.
func PurgeExpired(ctx context.Context, st Store, cache *KeyCache, obs Observer, now time.Time) (int, error) {
	gone, err := st.PurgeExpired(ctx, now)
	if err != nil {
		if obs != nil {
			obs.StoreError("purge")
		}
		return 0, fmt.Errorf("purge expired sessions: %w", err)
	}
	for _, s := range gone {
		if cache != nil {
			cache.Remove(s.ID)
		}
		if obs != nil {
			obs.SessionEnded(s.Dialect, "expired")
		}
	}
	return len(gone), nil
}

// asUnavailable makes every store failure an ErrUnavailable, keeping the
// cause for logs.
func asUnavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func constantTimeEqual(a, b string) bool {
	return subtleEq([]byte(a), []byte(b))
}

// Touch resets a session's idle timer (a ping): the new idle deadline is now
// plus idle, never past the absolute deadline, which never moves (SEC-12).
// Sessions without an idle timeout only get LastSeen updated. The cache entry
// is dropped so the next lookup sees the new deadline. Errors:
// ErrUnknownSession, ErrSessionExpired, ErrUnavailable.
func (m *Manager) Touch(ctx context.Context, s *Session, idle time.Duration) (*Session, error) {
	now := m.clock.Now().UTC()
	if s.Expired(now) {
		return nil, ErrSessionExpired
	}
	var idleDeadline time.Time
	if idle > 0 || !s.IdleDeadline.IsZero() {
		if idle <= 0 {
			idle = s.IdleDeadline.Sub(s.LastSeen)
		}
		idleDeadline = now.Add(idle)
		if idleDeadline.After(s.AbsoluteDeadline) {
			idleDeadline = s.AbsoluteDeadline
		}
	}
	err := m.store.TouchSession(ctx, s.ID, now, idleDeadline)
	m.cache.Remove(s.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrUnknownSession
		}
		m.obs.StoreError("touch_session")
		return nil, fmt.Errorf("touch session: %w", asUnavailable(err))
	}
	t := s.Clone()
	t.LastSeen, t.IdleDeadline = now, idleDeadline
	return t, nil
}

// TouchInterval is how stale LastSeen may get before ordinary use of a
// session (with idle_reset_on_use) writes a touch: a tenth of the idle
// timeout, at most a minute. So a busy session costs at most one store write
// per interval, not one per request, and its idle deadline is late by at
// most that interval.
func TouchInterval(idle time.Duration) time.Duration {
	iv := idle / 10
	if iv > time.Minute {
		iv = time.Minute
	}
	if iv < time.Second {
		iv = time.Second
	}
	return iv
}

// Used records ordinary use of a verified session when idle reset on use is
// on. It writes a touch only when LastSeen is older than TouchInterval(idle),
// and concurrent requests of one session share that single write. A store
// failure here is not the request's failure: the session was verified, and
// the next use retries.
func (m *Manager) Used(ctx context.Context, s *Session, idle time.Duration) {
	if idle <= 0 || m.clock.Now().Sub(s.LastSeen) < TouchInterval(idle) {
		return
	}
	// A failed touch is retried by the next use; the request goes on.
	_, _, _ = m.cache.group.Do("touch\x00"+s.ID, func() (any, error) {
		_, err := m.Touch(ctx, s, idle)
		return nil, err
	})
}
