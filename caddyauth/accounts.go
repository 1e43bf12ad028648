package caddyauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// Account management: users kept in the store beside the static ones of the
// configuration, managed while the gateway runs (the admin API and the
// `caddy sessiongate` commands call these). Static users win every conflict
// and are read-only here: the configuration is the operator's last word.

// Audit event types of account management (with EventKeyRegistered). The
// plugin turns them into Caddy events (prefixed `sessiongate_`); like every
// audit event they carry ids and counts, never a password, hash or key.
const (
	EventUserCreated      = "user_created"
	EventUserDisabled     = "user_disabled"
	EventUserEnabled      = "user_enabled"
	EventPasswordChanged  = "password_changed"
	EventPasswordRehashed = "password_rehashed"
	EventKeyRemoved       = "key_removed"
	EventSessionRevoked   = "session_revoked"
	EventSessionsRevoked  = "sessions_revoked"
)

// Limits on account data.
const (
	// MaxEmailBytes is RFC 5321's limit on a forward path.
	MaxEmailBytes = 254
	// MaxUsernameChars bounds a username, in characters.
	MaxUsernameChars = 64
	// MaxAccountNumberDigits bounds an account number.
	MaxAccountNumberDigits = 32
	// MinPasswordChars is the shortest password accepted for a new or
	// changed password (NIST 800-63B §5.1.1.2 asks for at least 8).
	MinPasswordChars = 8
	// MaxPublicKeys bounds the keys of one user, so one account cannot
	// grow its record without limit.
	MaxPublicKeys = 32
	// DefaultListLimit and MaxListLimit bound one page of ListAccounts.
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Errors of account management. Callers map them to answers: invalid → 400,
// not found → 404, static and conflicts → 409, unavailable and busy → 503.
var (
	// ErrInvalidUser is matched by every FieldError.
	ErrInvalidUser = errors.New("invalid user data")
	// ErrStaticUser means the user, or the email, username, id or key, is
	// one of a static user's, and static users cannot be changed at run
	// time.
	ErrStaticUser = errors.New("defined in the configuration")
	// ErrTooManyKeys means the user already has MaxPublicKeys keys.
	ErrTooManyKeys = errors.New("too many public keys")
	// ErrUnknownKey means the user has no key with that id.
	ErrUnknownKey = errors.New("unknown public key")
)

// FieldError is a refused value: Field names it (as the admin API spells
// it) and Problem says what is wrong without echoing the value, which may be
// a password.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Is makes every FieldError match ErrInvalidUser.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidUser }

// ConflictError is a create or change that collides with another user. It
// matches ErrExists, and ErrStaticUser when the other user is static.
type ConflictError struct {
	// Field is id, email, username or public_key; "" when the store only
	// said that something collided.
	Field string
	// Static is set when the other user is a static one.
	Static bool
	// Own is set when the value is already the user's own (a key added
	// twice).
	Own bool
}

func (e *ConflictError) Error() string {
	what := "a value"
	if e.Field != "" {
		what = "this " + strings.ReplaceAll(e.Field, "_", " ")
	}
	switch {
	case e.Static:
		return what + " belongs to a user defined in the configuration"
	case e.Own:
		return what + " is already registered to this user"
	}
	return what + " is already taken by another user"
}

// Is makes a ConflictError match ErrExists, and ErrStaticUser if Static.
func (e *ConflictError) Is(target error) bool {
	return target == ErrExists || (e.Static && target == ErrStaticUser)
}

// NewUser is a user to add to the store.
type NewUser struct {
	// ID is the numeric id; 0 lets the store assign the next free one
	// (never one of a static user).
	ID int64
	// Email, Username and AccountNumber are optional login names.
	Email         string
	Username      string
	AccountNumber string
	// Password is hashed with the Manager's hasher; PasswordHash is an
	// argon2id PHC string taken as is. At most one of them; with neither,
	// the user can only log in with a public key.
	Password     string
	PasswordHash string
	// PublicKeys are Ed25519 public keys, each 32 bytes in padded standard
	// base64.
	PublicKeys []string
}

// Account is a user as the admin API lists it: the record and where it
// lives.
type Account struct {
	User *User
	// Static users come from the configuration and are read-only.
	Static bool
}

// SessionInfo is what may be shown about a session: its keyed id hash and
// its timestamps, never the id, key or tokens.
type SessionInfo struct {
	IDHash           string
	UserID           int64
	Dialect          Dialect
	Kind             CredentialKind
	Created          time.Time
	LastSeen         time.Time
	IdleDeadline     time.Time
	AbsoluteDeadline time.Time
	// Expired: past its deadline but not yet purged.
	Expired bool
}

// Stats is a snapshot of the engine for operators.
type Stats struct {
	// Sessions counts stored sessions per dialect (expired ones not yet
	// purged included).
	Sessions map[Dialect]int
	// CacheEntries is the key cache's size; CacheHits and CacheMisses are
	// its lookups since the cache was created.
	CacheEntries int
	CacheHits    uint64
	CacheMisses  uint64
	// StaticUsers is the number of users in the configuration.
	StaticUsers int
}

// static returns the configured users of the Manager's directory, or nil.
func (m *Manager) static() *StaticUsers {
	switch d := m.users.(type) {
	case Layered:
		return d.Static
	case *Layered:
		if d != nil {
			return d.Static
		}
	case *StaticUsers:
		return d
	}
	return nil
}

func (m *Manager) isStatic(id int64) bool {
	st := m.static()
	if st == nil {
		return false
	}
	_, ok := st.byID[id]
	return ok
}

// fromStore reports whether logins of user id are answered by the store:
// only then may the engine write to the user (re-hash).
func (m *Manager) fromStore(id int64) bool {
	switch d := m.users.(type) {
	case Layered:
		return d.Store != nil && !m.isStatic(id)
	case *Layered:
		return d != nil && d.Store != nil && !m.isStatic(id)
	}
	return false
}

// storeFailed counts a store error and makes it an ErrUnavailable, keeping
// ErrNotFound and ErrExists, which are answers rather than failures.
func (m *Manager) storeFailed(op string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		return err
	}
	m.obs.StoreError(op)
	return asUnavailable(err)
}

// CreateUser validates nu and adds it to the store. Errors: a FieldError,
// a ConflictError (also ErrStaticUser when a static user holds the id,
// email, username or a key), ErrBusy (hashing pool full), ErrUnavailable.
func (m *Manager) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	now := m.clock.Now().UTC()
	u := &User{ID: nu.ID, Email: nu.Email, Username: nu.Username, AccountNumber: nu.AccountNumber, Created: now}
	if err := checkUserFields(u); err != nil {
		return nil, err
	}
	if len(nu.PublicKeys) > MaxPublicKeys {
		return nil, &FieldError{"public_keys", fmt.Sprintf("at most %d keys", MaxPublicKeys)}
	}
	for _, s := range nu.PublicKeys {
		k, err := ParsePublicKeyBase64(s)
		if err != nil {
			return nil, err
		}
		pk := PublicKey{ID: PublicKeyID(k), Key: k, Added: now}
		if u.Key(pk.ID) != nil {
			return nil, &FieldError{"public_keys", "the same key is listed twice"}
		}
		u.PublicKeys = append(u.PublicKeys, pk)
	}
	if err := m.checkConflicts(ctx, u, true); err != nil {
		return nil, err
	}
	// Hash last: it is the expensive step, and a refused request should
	// not cost a KDF run.
	hash, err := m.newPasswordHash(ctx, nu.Password, nu.PasswordHash)
	if err != nil {
		return nil, err
	}
	u.PasswordHash = hash

	created, err := m.createUser(ctx, u)
	if err != nil {
		return nil, err
	}
	m.Audit(Event{Type: EventUserCreated, UserID: created.ID})
	for _, k := range created.PublicKeys {
		m.Audit(Event{Type: EventKeyRegistered, UserID: created.ID, KeyID: k.ID, Reason: "admin"})
	}
	return created, nil
}

// createUser stores u. When the store is to assign the id, it must not
// assign a static user's: the store counts up from its own highest id, so
// while that is below the highest static id the first id above the static
// ones is asked for explicitly.
func (m *Manager) createUser(ctx context.Context, u *User) (*User, error) {
	auto := u.ID == 0
	for attempt := 0; ; attempt++ {
		if auto {
			u.ID = 0
			if maxStatic := m.maxStaticID(); maxStatic > 0 {
				above, err := m.store.ListUsers(ctx, maxStatic, 1)
				if err != nil {
					return nil, m.storeFailed("list_users", err)
				}
				if len(above) == 0 {
					u.ID = maxStatic + 1
				}
			}
		}
		created, err := m.store.CreateUser(ctx, u)
		if err == nil {
			return created, nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("create user: %w", m.storeFailed("create_user", err))
		}
		// A concurrent create took the id chosen above; the next round
		// finds a store id above the static ones and lets the store pick.
		if auto && u.ID != 0 && attempt < 2 {
			continue
		}
		return nil, fmt.Errorf("create user: %w", &ConflictError{})
	}
}

func (m *Manager) maxStaticID() int64 {
	st := m.static()
	if st == nil {
		return 0
	}
	var hi int64
	for id := range st.byID {
		hi = max(hi, id)
	}
	return hi
}

// checkConflicts finds which value of u another user holds, so the answer
// can name it: static users first (ErrStaticUser), then the store. The
// store's own ErrExists on write stays the final word under races.
func (m *Manager) checkConflicts(ctx context.Context, u *User, withID bool) error {
	type probe struct {
		field string
		set   bool
		st    func(*StaticUsers) (*User, error)
		sto   func() (*User, error)
	}
	probes := []probe{
		{"id", withID && u.ID != 0, func(s *StaticUsers) (*User, error) { return s.UserByID(ctx, u.ID) },
			func() (*User, error) { return m.store.UserByID(ctx, u.ID) }},
		{"email", u.Email != "", func(s *StaticUsers) (*User, error) { return s.UserByEmail(ctx, u.Email) },
			func() (*User, error) { return m.store.UserByEmail(ctx, u.Email) }},
		{"username", u.Username != "", func(s *StaticUsers) (*User, error) { return s.UserByUsername(ctx, u.Username) },
			func() (*User, error) { return m.store.UserByUsername(ctx, u.Username) }},
	}
	for _, k := range u.PublicKeys {
		probes = append(probes, probe{"public_key", true,
			func(s *StaticUsers) (*User, error) { return s.UserByKeyID(ctx, k.ID) },
			func() (*User, error) { return m.store.UserByKeyID(ctx, k.ID) }})
	}
	st := m.static()
	for _, p := range probes {
		if !p.set {
			continue
		}
		if st != nil {
			if _, err := p.st(st); err == nil {
				return &ConflictError{Field: p.field, Static: true}
			}
		}
		other, err := p.sto()
		switch {
		case err == nil && (withID || other.ID != u.ID):
			return &ConflictError{Field: p.field}
		case err != nil && !errors.Is(err, ErrNotFound):
			return fmt.Errorf("check user: %w", m.storeFailed("get_user", err))
		}
	}
	return nil
}

// newPasswordHash turns the password or hash of a request into the hash to
// store ("" when neither was given).
func (m *Manager) newPasswordHash(ctx context.Context, pw, phc string) (string, error) {
	switch {
	case pw != "" && phc != "":
		return "", &FieldError{"password", "give a password or a password_hash, not both"}
	case phc != "":
		return phc, m.checkPasswordHash(phc)
	case pw == "":
		return "", nil
	}
	if err := checkNewPassword(pw); err != nil {
		return "", err
	}
	h, err := m.hasher.Hash(ctx, pw)
	switch {
	case errors.Is(err, password.ErrBusy):
		return "", ErrBusy
	case err != nil:
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// checkPasswordHash accepts an argon2id PHC string whose parameters meet the
// floor (SEC-01), or are at least the configured ones when the operator
// configured weaker ones on purpose (tests).
func (m *Manager) checkPasswordHash(phc string) error {
	h, err := password.Parse(phc)
	if err != nil {
		return &FieldError{"password_hash", "not an argon2id PHC string (as printed by caddy sessiongate hash-password)"}
	}
	if h.Params.Validate() != nil && !h.Params.AtLeast(m.hasher.Params()) {
		return &FieldError{"password_hash", "parameters below the argon2id minimum (t=2 with m=19456 KiB, or t=1 with m=47104 KiB)"}
	}
	return nil
}

func checkNewPassword(pw string) error {
	switch {
	case len(pw) > MaxPasswordBytes:
		return &FieldError{"password", fmt.Sprintf("longer than %d bytes", MaxPasswordBytes)}
	case !utf8.ValidString(pw):
		return &FieldError{"password", "not valid UTF-8"}
	case utf8.RuneCountInString(pw) < MinPasswordChars:
		return &FieldError{"password", fmt.Sprintf("shorter than %d characters", MinPasswordChars)}
	}
	return nil
}

// checkUserFields validates the login names of u.
func checkUserFields(u *User) error {
	if u.ID < 0 {
		return &FieldError{"id", "must be a positive integer (or 0 to assign one)"}
	}
	if u.Email != "" {
		if err := checkEmail(u.Email); err != nil {
			return err
		}
	}
	if u.Username != "" {
		if err := checkUsername(u.Username); err != nil {
			return err
		}
	}
	if u.AccountNumber != "" {
		if len(u.AccountNumber) > MaxAccountNumberDigits || strings.TrimLeft(u.AccountNumber, "0123456789") != "" {
			return &FieldError{"account_number", fmt.Sprintf("must be 1 to %d digits", MaxAccountNumberDigits)}
		}
	}
	return nil
}

// checkEmail is a sanity check, not RFC 5322: one @, a local part of at
// most 64 bytes, a domain of non-empty labels, and nothing that a log line,
// a header or a shell could misread (spaces, controls, quotes, brackets).
func checkEmail(s string) error {
	bad := func(why string) error { return &FieldError{"email", why} }
	if len(s) > MaxEmailBytes {
		return bad(fmt.Sprintf("longer than %d bytes", MaxEmailBytes))
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) || strings.ContainsRune(`"(),:;<>[\]`+"`", r) {
			return bad("contains a space, control or special character")
		}
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") {
		return bad("must be local-part@domain with a single @")
	}
	if local == "" || len(local) > 64 {
		return bad("the part before @ must be 1 to 64 bytes")
	}
	if domain == "" || slices.Contains(strings.Split(domain, "."), "") {
		return bad("the domain must be dot-separated non-empty labels")
	}
	return nil
}

func checkUsername(s string) error {
	bad := &FieldError{"username", fmt.Sprintf("must be 1 to %d printable characters without spaces", MaxUsernameChars)}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxUsernameChars {
		return bad
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return bad
		}
	}
	return nil
}

// weakKeys are the Ed25519 points of small order (and the sign-bit
// variants of the two with x = 0): a signature "verifies" under them for
// many messages, so they are never accepted as a user's key.
var weakKeys = func() [][]byte {
	var out [][]byte
	for _, h := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000080",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	} {
		b, _ := hex.DecodeString(h)
		out = append(out, b)
	}
	return out
}()

// ParsePublicKeyBase64 decodes an Ed25519 public key given as exactly 44
// characters of padded standard base64 (32 bytes). It refuses the all-zero
// key, the small-order points and non-canonical encodings, none of which
// belongs to a real key pair. The error never echoes the input.
func ParsePublicKeyBase64(s string) ([]byte, error) {
	bad := func(why string) error { return &FieldError{"public_key", why} }
	if len(s) != 44 {
		return nil, bad("must be 44 characters of padded standard base64 (32 bytes)")
	}
	k, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(k) != 32 {
		return nil, bad("must be 44 characters of padded standard base64 (32 bytes)")
	}
	if bytes.Equal(k, make([]byte, 32)) {
		return nil, bad("the all-zero key is not a public key")
	}
	for _, w := range weakKeys {
		if bytes.Equal(k, w) {
			return nil, bad("a small-order point is not a public key")
		}
	}
	// y ≥ 2^255-19: a second spelling of a small y, refused like any
	// non-canonical encoding.
	if k[0] >= 0xed && k[31]&0x7f == 0x7f && bytes.Count(k[1:31], []byte{0xff}) == 30 {
		return nil, bad("not a canonical Ed25519 point encoding")
	}
	return k, nil
}

// Account returns user id, static or stored. ErrNotFound if neither holds
// it.
func (m *Manager) Account(ctx context.Context, id int64) (Account, error) {
	if id <= 0 {
		return Account{}, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if st := m.static(); st != nil {
		if u, err := st.UserByID(ctx, id); err == nil {
			return Account{User: u.Clone(), Static: true}, nil
		}
	}
	u, err := m.store.UserByID(ctx, id)
	if err != nil {
		return Account{}, fmt.Errorf("user %d: %w", id, m.storeFailed("get_user", err))
	}
	return Account{User: u}, nil
}

// ListAccounts returns at most limit users with id > afterID, static and
// stored, in id order (paging: pass the last id seen). A stored user that
// has the id of a static user is shadowed by it and not listed. limit <= 0
// means DefaultListLimit; more than MaxListLimit is a FieldError.
func (m *Manager) ListAccounts(ctx context.Context, afterID int64, limit int) ([]Account, error) {
	switch {
	case afterID < 0:
		return nil, &FieldError{"after", "must not be negative"}
	case limit > MaxListLimit:
		return nil, &FieldError{"limit", fmt.Sprintf("at most %d", MaxListLimit)}
	case limit <= 0:
		limit = DefaultListLimit
	}
	stored, err := m.store.ListUsers(ctx, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", m.storeFailed("list_users", err))
	}
	out := make([]Account, 0, limit)
	if st := m.static(); st != nil {
		for id, u := range st.byID {
			if id > afterID {
				out = append(out, Account{User: u.Clone(), Static: true})
			}
		}
	}
	for _, u := range stored {
		if !m.isStatic(u.ID) {
			out = append(out, Account{User: u})
		}
	}
	// The first limit ids of the union are among the static ones and the
	// store's first limit, so one store page is enough.
	slices.SortFunc(out, func(a, b Account) int { return cmpInt64(a.User.ID, b.User.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// updateStoredUser changes a stored user; static ids are refused with
// ErrStaticUser before the store is asked.
func (m *Manager) updateStoredUser(ctx context.Context, id int64, fn func(*User) error) (*User, error) {
	if id <= 0 {
		return nil, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if m.isStatic(id) {
		return nil, fmt.Errorf("user %d: %w", id, ErrStaticUser)
	}
	u, err := m.store.UpdateUser(ctx, id, fn)
	m.forgetUser(id)
	var (
		fe *FieldError
		ce *ConflictError
	)
	switch {
	case err == nil:
		return u, nil
	case errors.As(err, &fe), errors.As(err, &ce), errors.Is(err, ErrTooManyKeys), errors.Is(err, ErrUnknownKey),
		errors.Is(err, errUnchanged):
		return nil, err // fn's own verdict
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("user %d: %w", id, ErrNotFound)
	case errors.Is(err, ErrExists):
		return nil, fmt.Errorf("update user %d: %w", id, &ConflictError{})
	}
	return nil, fmt.Errorf("update user %d: %w", id, m.storeFailed("update_user", err))
}

// errUnchanged stops an UpdateUser whose change is already in place, so
// nothing is written.
var errUnchanged = errors.New("unchanged")

// DisableUser stops user id from logging in and ends all its sessions
// (SEC-13). Disabling a disabled user only ends sessions again. It returns
// how many sessions it ended. Errors: ErrNotFound, ErrStaticUser,
// ErrUnavailable.
func (m *Manager) DisableUser(ctx context.Context, id int64) (int, error) {
	return m.setDisabled(ctx, id, true)
}

// EnableUser lets a disabled user log in again.
func (m *Manager) EnableUser(ctx context.Context, id int64) error {
	_, err := m.setDisabled(ctx, id, false)
	return err
}

func (m *Manager) setDisabled(ctx context.Context, id int64, disabled bool) (int, error) {
	_, err := m.updateStoredUser(ctx, id, func(u *User) error {
		if u.Disabled == disabled {
			return errUnchanged
		}
		u.Disabled = disabled
		return nil
	})
	changed := err == nil
	if err != nil && !errors.Is(err, errUnchanged) {
		return 0, err
	}
	if !disabled {
		if changed {
			m.Audit(Event{Type: EventUserEnabled, UserID: id})
		}
		return 0, nil
	}
	if changed {
		m.Audit(Event{Type: EventUserDisabled, UserID: id})
	}
	return m.RevokeUser(ctx, id, "user_disabled")
}

// ChangePassword sets a new password (hashed here) or PHC hash for user id,
// exactly one of them, and ends all its sessions (SEC-13). It returns how
// many sessions it ended. Errors: a FieldError, ErrNotFound, ErrStaticUser,
// ErrBusy, ErrUnavailable.
func (m *Manager) ChangePassword(ctx context.Context, id int64, newPassword, newHash string) (int, error) {
	if newPassword == "" && newHash == "" {
		return 0, &FieldError{"password", "give a password or a password_hash"}
	}
	// Refuse a static or unknown user before paying for a hash.
	if _, err := m.storedUser(ctx, id); err != nil {
		return 0, err
	}
	h, err := m.newPasswordHash(ctx, newPassword, newHash)
	if err != nil {
		return 0, err
	}
	if _, err := m.updateStoredUser(ctx, id, func(u *User) error {
		u.PasswordHash = h
		return nil
	}); err != nil {
		return 0, err
	}
	m.Audit(Event{Type: EventPasswordChanged, UserID: id})
	return m.RevokeUser(ctx, id, "password_changed")
}

// storedUser returns stored user id, refusing static ids.
func (m *Manager) storedUser(ctx context.Context, id int64) (*User, error) {
	if id > 0 && m.isStatic(id) {
		return nil, fmt.Errorf("user %d: %w", id, ErrStaticUser)
	}
	a, err := m.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.User, nil
}

// AddKey registers an Ed25519 public key (padded standard base64) to stored
// user id and returns it with its key id. This is the administrative path of
// SEC-31; it is audited as key_registered. Errors: a FieldError, a
// ConflictError (the key is another user's, or already this one's),
// ErrTooManyKeys, ErrNotFound, ErrStaticUser, ErrUnavailable.
func (m *Manager) AddKey(ctx context.Context, id int64, key string) (PublicKey, error) {
	k, err := ParsePublicKeyBase64(key)
	if err != nil {
		return PublicKey{}, err
	}
	pk := PublicKey{ID: PublicKeyID(k), Key: k, Added: m.clock.Now().UTC()}
	if _, err := m.storedUser(ctx, id); err != nil {
		return PublicKey{}, err
	}
	if err := m.checkConflicts(ctx, &User{ID: id, PublicKeys: []PublicKey{pk}}, false); err != nil {
		return PublicKey{}, err
	}
	if _, err := m.updateStoredUser(ctx, id, func(u *User) error {
		if u.Key(pk.ID) != nil {
			return &ConflictError{Field: "public_key", Own: true}
		}
		if len(u.PublicKeys) >= MaxPublicKeys {
			return ErrTooManyKeys
		}
		u.PublicKeys = append(u.PublicKeys, pk)
		return nil
	}); err != nil {
		return PublicKey{}, err
	}
	m.Audit(Event{Type: EventKeyRegistered, UserID: id, KeyID: pk.ID, Reason: "admin"})
	return pk, nil
}

// RemoveKey removes the key with keyID from stored user id. Errors:
// ErrUnknownKey, ErrNotFound (no such user), ErrStaticUser, ErrUnavailable.
func (m *Manager) RemoveKey(ctx context.Context, id int64, keyID string) error {
	if _, err := m.updateStoredUser(ctx, id, func(u *User) error {
		i := slices.IndexFunc(u.PublicKeys, func(k PublicKey) bool { return k.ID == keyID })
		if i < 0 {
			return ErrUnknownKey
		}
		u.PublicKeys = slices.Delete(u.PublicKeys, i, i+1)
		return nil
	}); err != nil {
		return err
	}
	m.Audit(Event{Type: EventKeyRemoved, UserID: id, KeyID: keyID})
	return nil
}

// RevokeUser ends every session of user id, on every node: the store
// deletes them and Forget drops them from each node's key cache (SEC-13).
// reason is the audit reason code (admin, user_disabled,
// password_changed). It returns how many sessions it ended.
func (m *Manager) RevokeUser(ctx context.Context, id int64, reason string) (int, error) {
	gone, err := m.store.DeleteUserSessions(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %d: %w", id, m.storeFailed("delete_user_sessions", err))
	}
	m.Forget(ctx, gone...)
	for _, s := range gone {
		m.obs.SessionEnded(s.Dialect, "revoked")
	}
	m.Audit(Event{Type: EventSessionsRevoked, UserID: id, Reason: reason, Count: len(gone)})
	return len(gone), nil
}

// RevokeSession ends the session of user id whose keyed id hash (LogHash)
// is idHash. ErrUnknownSession if the user has no such session.
func (m *Manager) RevokeSession(ctx context.Context, id int64, idHash string) error {
	if !isLogHash(idHash) {
		return &FieldError{"session", "must be the 16 lower-case hex digits shown by the session list"}
	}
	sessions, err := m.store.ListUserSessions(ctx, id)
	if err != nil {
		return fmt.Errorf("list sessions of user %d: %w", id, m.storeFailed("list_user_sessions", err))
	}
	for _, s := range sessions {
		if !constantTimeEqual(m.LogHash(s.ID), idHash) {
			continue
		}
		ended, err := m.EndSession(ctx, s.ID, "revoked")
		if err != nil {
			return err
		}
		m.Audit(Event{Type: EventSessionRevoked, UserID: id, Dialect: ended.Dialect, SessionHash: idHash, Reason: "admin"})
		return nil
	}
	return ErrUnknownSession
}

func isLogHash(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// UserSessions lists the sessions of user id (static or stored) as
// metadata, oldest first.
func (m *Manager) UserSessions(ctx context.Context, id int64) ([]SessionInfo, error) {
	if _, err := m.Account(ctx, id); err != nil {
		return nil, err
	}
	sessions, err := m.store.ListUserSessions(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %d: %w", id, m.storeFailed("list_user_sessions", err))
	}
	now := m.clock.Now()
	out := make([]SessionInfo, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, SessionInfo{IDHash: m.LogHash(s.ID), UserID: s.UserID, Dialect: s.Dialect, Kind: s.Kind,
			Created: s.Created, LastSeen: s.LastSeen, IdleDeadline: s.IdleDeadline,
			AbsoluteDeadline: s.AbsoluteDeadline, Expired: s.Expired(now)})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.IDHash, b.IDHash)
	})
	return out, nil
}

// Stats counts sessions per dialect and reports the key cache.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	counts, err := m.store.CountSessions(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("count sessions: %w", m.storeFailed("count_sessions", err))
	}
	hits, misses := m.cache.Stats()
	st := Stats{Sessions: counts, CacheEntries: m.cache.Len(), CacheHits: hits, CacheMisses: misses}
	if s := m.static(); s != nil {
		st.StaticUsers = s.Len()
	}
	return st, nil
}

// rehash replaces the stored hash of a store user who just logged in with
// pw when its parameters are weaker than the configured ones (SEC-01). It is
// best effort: a busy hasher or a failed write leaves the old hash, which
// still works, and the next login tries again. The write is a compare and
// swap on the old hash, so a password changed meanwhile is never undone.
func (m *Manager) rehash(ctx context.Context, u *User, pw string) {
	if u.PasswordHash == "" || !m.fromStore(u.ID) || !m.hasher.NeedsRehash(u.PasswordHash) {
		return
	}
	h, err := m.hasher.Hash(ctx, pw)
	if err != nil {
		if !errors.Is(err, password.ErrBusy) {
			m.obs.StoreError("rehash")
		}
		return
	}
	old := u.PasswordHash
	_, err = m.store.UpdateUser(ctx, u.ID, func(cur *User) error {
		if cur.PasswordHash != old {
			return errUnchanged
		}
		cur.PasswordHash = h
		return nil
	})
	switch {
	case err == nil:
		// The login goes on with the hash now stored, so confirming it
		// (confirmLogin) does not take this rehash for a change.
		u.PasswordHash = h
		m.Audit(Event{Type: EventPasswordRehashed, UserID: u.ID})
	case !errors.Is(err, errUnchanged):
		m.obs.StoreError("rehash")
	}
}
