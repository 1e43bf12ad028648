package caddyauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Bearer tokens (the sxt dialect's access and refresh tokens) live in a
// token session: one Session per login with a random ID, holding its tokens
// by SHA-256 digest only (SEC-16). The store indexes the digests, so a
// presented token finds its session with one lookup (Store.SessionByToken),
// through the key cache for proxied requests.
//
// Lifetimes: the session's AbsoluteDeadline is fixed at login and never
// moves (SEC-12); its IdleDeadline is the expiry of its newest refresh
// token, so a session nobody refreshes in time ends (and is purged) with
// its refresh token. Every token expiry is capped at the absolute deadline.

// Token syntax.
const (
	// BearerTokenBytes is the entropy of a bearer token: 256 bits (SEC-08).
	BearerTokenBytes = 32
	// BearerTokenLen is the length of a token in unpadded base64url.
	BearerTokenLen = 43
)

// Errors of token sessions, beside ErrUnknownSession, ErrSessionExpired and
// ErrUnavailable.
var (
	// ErrTokenExpired: the token exists but is past its own expiry.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenKind: the token exists but is not of the kind the request
	// needs (a refresh token presented as an access token, or the reverse).
	ErrTokenKind = errors.New("wrong kind of token")
	// ErrRefreshReuse: a refresh token that was already exchanged was
	// presented again, outside the retry grace. The whole session has been
	// ended (SEC-18).
	ErrRefreshReuse = errors.New("refresh token reused")
	// ErrRefreshInProgress: the same refresh token is being exchanged by a
	// concurrent request on this node. That request wins; this one is
	// refused without ending the session (SEC-19).
	ErrRefreshInProgress = errors.New("refresh already in progress")
)

// NewBearerToken returns a fresh bearer token: 32 bytes from crypto/rand in
// unpadded base64url, 43 characters (SEC-08).
func NewBearerToken() string {
	b := make([]byte, BearerTokenBytes)
	rand.Read(b) // crypto/rand.Read never returns an error (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenDigest is what stores know of a token: the lower-case hex SHA-256 of
// its string.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidBearerToken reports whether tok has the exact form NewBearerToken
// produces: 43 characters of base64url that decode canonically to 32 bytes.
// Anything else cannot be a token the gateway issued, so it is refused
// before any cache or store lookup (SEC-36).
func ValidBearerToken(tok string) bool {
	if len(tok) != BearerTokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	return err == nil && len(b) == BearerTokenBytes
}

// newTokenSessionID returns a random session id for dialect d: the dialect
// and 256 random bits in hex, never derived from a token, so that knowing a
// session id (an admin listing, a log correlation) helps nobody to a token.
func newTokenSessionID(d Dialect) string {
	b := make([]byte, 32)
	rand.Read(b)
	return string(d) + "-" + hex.EncodeToString(b)
}

// TokenLifetimes are the lifetimes of a token session.
type TokenLifetimes struct {
	// Access is the lifetime of an access token.
	Access time.Duration
	// Refresh is the lifetime of a refresh token.
	Refresh time.Duration
	// Session is the absolute lifetime of the session from login; no
	// token outlives it and refreshing never extends it.
	Session time.Duration
}

// TokenPair is a new access and refresh token, in clear, as the client gets
// them. Only their digests are stored (and, for the retry grace, the pair
// sealed under the master key; the short JSON names keep that small).
type TokenPair struct {
	// Access is the access token.
	Access string `json:"a"`
	// Refresh is the refresh token.
	Refresh string `json:"r"`
	// AccessExpires is when the access token stops being accepted.
	AccessExpires time.Time `json:"ae"`
	// RefreshExpires is when the refresh token stops being accepted.
	RefreshExpires time.Time `json:"re"`
}

// newTokenPair draws a pair issued at now, with expiries capped at the
// session's absolute deadline.
func newTokenPair(now, absolute time.Time, access, refresh time.Duration) *TokenPair {
	capAt := func(t time.Time) time.Time {
		if t.After(absolute) {
			return absolute
		}
		return t
	}
	return &TokenPair{Access: NewBearerToken(), Refresh: NewBearerToken(),
		AccessExpires: capAt(now.Add(access)), RefreshExpires: capAt(now.Add(refresh))}
}

// tokens returns the stored form of p.
func (p *TokenPair) tokens() []Token {
	return []Token{
		{Digest: TokenDigest(p.Access), Kind: TokenAccess, Expires: p.AccessExpires},
		{Digest: TokenDigest(p.Refresh), Kind: TokenRefresh, Expires: p.RefreshExpires},
	}
}

// StartTokenSession stores a new token session of user u in dialect d and
// returns it with its first token pair. It returns only after the store
// acknowledged the write, so an acknowledged login survives a crash.
func (m *Manager) StartTokenSession(ctx context.Context, u *User, d Dialect, lt TokenLifetimes) (*Session, *TokenPair, error) {
	if lt.Access <= 0 || lt.Refresh <= 0 || lt.Session <= 0 {
		return nil, nil, fmt.Errorf("start token session: lifetimes must be positive")
	}
	now := m.clock.Now().UTC()
	absolute := now.Add(lt.Session)
	var err error
	for range 3 { // 256-bit ids and tokens never collide; retry anyway
		p := newTokenPair(now, absolute, lt.Access, lt.Refresh)
		s := &Session{ID: newTokenSessionID(d), UserID: u.ID, Dialect: d, Kind: KindBearer,
			Created: now, LastSeen: now, IdleDeadline: p.RefreshExpires, AbsoluteDeadline: absolute,
			Tokens: p.tokens()}
		if err = m.store.CreateSession(ctx, s.Clone()); err == nil {
			m.obs.SessionCreated(d)
			if err := m.confirmLogin(ctx, s, u); err != nil {
				return nil, nil, err
			}
			m.enforceSessionCap(ctx, s.UserID, s.ID)
			return s, p, nil
		}
		if !errors.Is(err, ErrExists) {
			break
		}
	}
	m.obs.StoreError("create_session")
	return nil, nil, fmt.Errorf("start token session: %w", asUnavailable(err))
}

// TokenSession returns the live session holding token (of any kind, rotated
// or not) and that token, through the key cache keyed by the token's digest
// (TokenCacheKey). A burst of requests with one token costs one store read.
// Both values are shared with the cache: do not modify them. Errors:
// ErrUnknownSession, ErrSessionExpired, ErrUnavailable.
func (m *Manager) TokenSession(ctx context.Context, token string) (*Session, *Token, error) {
	if !ValidBearerToken(token) {
		return nil, nil, ErrUnknownSession
	}
	digest := TokenDigest(token)
	now := m.clock.Now()
	s, hit, err := m.cache.Load(ctx, TokenCacheKey(digest), now, func(ctx context.Context) (*Session, error) {
		st, err := m.store.SessionByToken(ctx, digest)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, ErrUnknownSession
			}
			m.obs.StoreError("session_by_token")
			return nil, asUnavailable(err)
		}
		if st.Expired(now) {
			return nil, ErrSessionExpired
		}
		return st, nil
	})
	m.obs.CacheLookup(hit)
	if err != nil {
		return nil, nil, err
	}
	if s.Expired(now) {
		return nil, nil, ErrSessionExpired
	}
	t := s.Token(digest)
	if t == nil {
		// The store's index and the record disagree; never trust that.
		return nil, nil, ErrUnknownSession
	}
	return s, t, nil
}

// AccessSession returns the live session whose access token is token: the
// token must exist, be an access token (a refresh token never is, rotated or
// not) and be unexpired at now, and its session live. The session is shared
// with the cache: do not modify it. Errors: ErrUnknownSession, ErrTokenKind,
// ErrTokenExpired, ErrSessionExpired, ErrUnavailable.
func (m *Manager) AccessSession(ctx context.Context, token string) (*Session, error) {
	s, t, err := m.TokenSession(ctx, token)
	if err != nil {
		return nil, err
	}
	if t.Kind != TokenAccess {
		return nil, ErrTokenKind
	}
	if !m.clock.Now().Before(t.Expires) {
		return nil, ErrTokenExpired
	}
	return s, nil
}

// RefreshOptions configure RotateRefresh.
type RefreshOptions struct {
	// Access and Refresh are the lifetimes of the new pair (capped at the
	// session's absolute deadline).
	Access, Refresh time.Duration
	// Grace is how long after a rotation the same refresh token may be
	// presented again and get the identical new pair (a client retrying
	// after a lost answer), as long as that pair's refresh token is still
	// unused. 0 (the default) keeps nothing: any second presentation is
	// reuse.
	Grace time.Duration
	// AcceptAccessToken lets the current access token stand in for the
	// refresh token (one client sends it). The session's live refresh
	// token is then the one rotated. No grace applies to such a refresh:
	// the presented access token dies with the rotation.
	AcceptAccessToken bool
}

// rotationKey identifies a rotation in progress on this node. The node is
// its key cache: shared by the Managers of overlapping configurations
// during a reload, distinct for two Managers that stand for two nodes.
type rotationKey struct {
	node   *KeyCache
	digest string
}

// rotating holds the refresh tokens being exchanged right now.
var rotating sync.Map

// errRotated is returned by the rotation's update function when the
// presented refresh token was already exchanged: nothing is written.
var errRotated = errors.New("refresh token already rotated")

// RotateRefresh exchanges a refresh token for a new access and refresh pair
// in one atomic store update (SEC-17, SEC-19): the presented token is marked
// rotated and kept (so that presenting it again is recognised), the
// session's access tokens die, rotated refresh tokens past their expiry are
// pruned, and the new pair is added, its expiries capped at the absolute
// deadline, which never moves (SEC-12). Every node then drops the old
// session from its cache.
//
// A rotated refresh token presented again ends the whole session, all its
// tokens included, counted as refresh_reuse and audited (SEC-18); within
// o.Grace of the rotation it instead returns the identical pair, kept
// sealed in the rotated token for that purpose, as long as that pair is
// unused.
//
// Concurrency: of several concurrent requests with one refresh token, the
// store's compare-and-swap lets exactly one rotate. With a grace of 0 a
// loser reaching the store after the winner would look like reuse and end
// the session, killing the winner's fresh pair; so concurrent exchanges of
// one token on this node are collapsed first: only the first reaches the
// store, the others fail at once with ErrRefreshInProgress and end
// nothing. A presentation that arrives after the rotation finished is
// reuse. Across nodes of a shared store, clients that race their own
// refreshes need a grace of a few seconds.
//
// Errors: ErrUnknownSession, ErrSessionExpired, ErrTokenExpired,
// ErrTokenKind, ErrRefreshReuse, ErrRefreshInProgress, ErrUnavailable.
func (m *Manager) RotateRefresh(ctx context.Context, token string, o RefreshOptions) (*Session, *TokenPair, error) {
	if !ValidBearerToken(token) {
		return nil, nil, ErrUnknownSession
	}
	if o.Access <= 0 || o.Refresh <= 0 || o.Grace < 0 {
		return nil, nil, fmt.Errorf("rotate refresh token: lifetimes must be positive and grace not negative")
	}
	digest := TokenDigest(token)
	key := rotationKey{node: m.cache, digest: digest}
	if _, busy := rotating.LoadOrStore(key, struct{}{}); busy {
		return nil, nil, ErrRefreshInProgress
	}
	defer rotating.Delete(key)
	return m.rotate(ctx, digest, o)
}

// rotate does RotateRefresh's work for one request.
func (m *Manager) rotate(ctx context.Context, digest string, o RefreshOptions) (*Session, *TokenPair, error) {
	now := m.clock.Now().UTC()
	s, err := m.store.SessionByToken(ctx, digest)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, ErrUnknownSession
		}
		m.obs.StoreError("session_by_token")
		return nil, nil, fmt.Errorf("rotate refresh token: %w", asUnavailable(err))
	}
	if s.Expired(now) {
		return nil, nil, ErrSessionExpired
	}
	pair := newTokenPair(now, s.AbsoluteDeadline, o.Access, o.Refresh)
	var sealed []byte
	if o.Grace > 0 {
		plain, err := json.Marshal(pair)
		if err != nil {
			return nil, nil, fmt.Errorf("rotate refresh token: encode successor: %w", err)
		}
		sealed = m.sealer.Seal(successorAAD(s.ID, digest), plain)
	}

	// What the update function saw, for the decisions after it. It may run
	// more than once (a store's compare-and-swap retry); the last run counts.
	var before, seen *Session
	_, err = m.store.UpdateSession(ctx, s.ID, func(cur *Session) error {
		before, seen = cur.Clone(), nil
		if cur.Expired(now) {
			return ErrSessionExpired
		}
		t := cur.Token(digest)
		if t == nil {
			return ErrUnknownSession
		}
		var rt *Token
		switch {
		case t.Kind == TokenRefresh && !t.RotatedAt.IsZero():
			seen = before
			return errRotated
		case t.Kind == TokenRefresh:
			if !now.Before(t.Expires) {
				return ErrTokenExpired
			}
			rt = t
		case t.Kind == TokenAccess && o.AcceptAccessToken:
			if rt = liveRefresh(cur, now); rt == nil {
				return ErrTokenExpired
			}
		default:
			return ErrTokenKind
		}
		rt.RotatedAt = now
		if rt.Digest == digest {
			rt.Successor = sealed
		}
		rotated := rt.Digest
		kept := make([]Token, 0, len(cur.Tokens)+2)
		for _, tk := range cur.Tokens {
			switch {
			case tk.Kind == TokenAccess:
				// Only the newest access token lives.
			case tk.Kind == TokenRefresh && tk.Digest != rotated && !tk.RotatedAt.IsZero() && !now.Before(tk.Expires):
				// Expired and already exchanged: nothing left to detect.
			default:
				kept = append(kept, tk)
			}
		}
		cur.Tokens = append(kept, pair.tokens()...)
		cur.LastSeen = now
		cur.IdleDeadline = pair.RefreshExpires
		return nil
	})
	switch {
	case err == nil:
		// Every node forgets the old state: the dead access token must not
		// be served from any cache.
		m.Forget(ctx, before)
		return before, pair, nil
	case errors.Is(err, errRotated) && seen != nil:
		if p := m.graceRetry(seen, digest, o.Grace, now); p != nil {
			return seen, p, nil
		}
		m.refreshReuse(ctx, seen)
		return seen, nil, ErrRefreshReuse
	case errors.Is(err, ErrUnknownSession), errors.Is(err, ErrSessionExpired),
		errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenKind):
		return nil, nil, err
	case errors.Is(err, ErrNotFound):
		// Ended between the read and the update.
		return nil, nil, ErrUnknownSession
	default:
		m.obs.StoreError("update_session")
		return nil, nil, fmt.Errorf("rotate refresh token: %w", asUnavailable(err))
	}
}

// liveRefresh returns the session's unrotated, unexpired refresh token with
// the latest expiry, or nil.
func liveRefresh(s *Session, now time.Time) *Token {
	var best *Token
	for i := range s.Tokens {
		t := &s.Tokens[i]
		if t.Kind == TokenRefresh && t.RotatedAt.IsZero() && now.Before(t.Expires) &&
			(best == nil || t.Expires.After(best.Expires)) {
			best = t
		}
	}
	return best
}

// graceRetry returns the pair a rotation of digest issued, if the retry is
// within grace of that rotation and the pair's refresh token is still
// unused in s; else nil.
func (m *Manager) graceRetry(s *Session, digest string, grace time.Duration, now time.Time) *TokenPair {
	t := s.Token(digest)
	if grace <= 0 || t == nil || len(t.Successor) == 0 || now.Sub(t.RotatedAt) > grace {
		return nil
	}
	plain, err := m.sealer.Open(successorAAD(s.ID, digest), t.Successor)
	if err != nil {
		return nil
	}
	var p TokenPair
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil
	}
	next := s.Token(TokenDigest(p.Refresh))
	if next == nil || !next.RotatedAt.IsZero() || !now.Before(next.Expires) {
		return nil
	}
	return &p
}

// refreshReuse ends the session of a reused refresh token and audits it
// (SEC-18). The session may already be gone (ended concurrently): the
// detection is audited all the same.
func (m *Manager) refreshReuse(ctx context.Context, s *Session) {
	if _, err := m.EndSession(ctx, s.ID, "refresh_reuse"); err != nil && !errors.Is(err, ErrUnknownSession) {
		// The store could not delete it: at least this node stops
		// serving it; the cache TTL bounds the others.
		m.Forget(ctx, s)
	}
	m.Audit(Event{Type: EventRefreshReuse, Dialect: s.Dialect, Reason: "refresh_reuse",
		UserID: s.UserID, SessionHash: m.LogHash(s.ID), ClientIP: ClientIP(ctx)})
}

// successorAAD binds a sealed successor pair to its session and to the
// rotated token, so it cannot be moved to another token's record.
func successorAAD(sessionID, digest string) string {
	return "successor\x00" + sessionID + "\x00" + digest
}
