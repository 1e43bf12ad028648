package caddyauth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// acctStore is the test store of account management: a memory store that
// fails chosen operations with ErrUnavailable and records what it was asked
// to publish to other nodes (it is an Invalidator, like the redis store).
type acctStore struct {
	*enginetest.Store
	mu        sync.Mutex
	failing   map[string]bool
	published [][]string
}

func (s *acctStore) fail(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing[op] {
		return fmt.Errorf("acctStore %s: %w: connection refused", op, caddyauth.ErrUnavailable)
	}
	return nil
}

func (s *acctStore) setFailing(ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = map[string]bool{}
	for _, op := range ops {
		s.failing[op] = true
	}
}

func (s *acctStore) CreateUser(ctx context.Context, u *caddyauth.User) (*caddyauth.User, error) {
	if err := s.fail("create_user"); err != nil {
		return nil, err
	}
	return s.Store.CreateUser(ctx, u)
}

func (s *acctStore) UserByID(ctx context.Context, id int64) (*caddyauth.User, error) {
	if err := s.fail("get_user"); err != nil {
		return nil, err
	}
	return s.Store.UserByID(ctx, id)
}

func (s *acctStore) UserByEmail(ctx context.Context, e string) (*caddyauth.User, error) {
	if err := s.fail("get_user"); err != nil {
		return nil, err
	}
	return s.Store.UserByEmail(ctx, e)
}

func (s *acctStore) UpdateUser(ctx context.Context, id int64, fn func(*caddyauth.User) error) (*caddyauth.User, error) {
	if err := s.fail("update_user"); err != nil {
		return nil, err
	}
	return s.Store.UpdateUser(ctx, id, fn)
}

func (s *acctStore) ListUsers(ctx context.Context, after int64, limit int) ([]*caddyauth.User, error) {
	if err := s.fail("list_users"); err != nil {
		return nil, err
	}
	return s.Store.ListUsers(ctx, after, limit)
}

func (s *acctStore) DeleteUserSessions(ctx context.Context, id int64) ([]*caddyauth.Session, error) {
	if err := s.fail("delete_user_sessions"); err != nil {
		return nil, err
	}
	return s.Store.DeleteUserSessions(ctx, id)
}

func (s *acctStore) ListUserSessions(ctx context.Context, id int64) ([]*caddyauth.Session, error) {
	if err := s.fail("list_user_sessions"); err != nil {
		return nil, err
	}
	return s.Store.ListUserSessions(ctx, id)
}

func (s *acctStore) CountSessions(ctx context.Context) (map[caddyauth.Dialect]int, error) {
	if err := s.fail("count_sessions"); err != nil {
		return nil, err
	}
	return s.Store.CountSessions(ctx)
}

func (s *acctStore) PublishInvalidation(_ context.Context, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = append(s.published, append([]string(nil), keys...))
	return nil
}

func (s *acctStore) SubscribeInvalidations(ctx context.Context, _ func([]string), _ func()) {
	<-ctx.Done()
}

func (s *acctStore) publishedKeys() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, ks := range s.published {
		for _, k := range ks {
			out[k] = true
		}
	}
	return out
}

var (
	_ caddyauth.Store       = (*acctStore)(nil)
	_ caddyauth.Invalidator = (*acctStore)(nil)
)

type acctFixture struct {
	m      *caddyauth.Manager
	store  *acctStore
	obs    *enginetest.Observer
	hasher *password.Hasher
	clock  *caddyauth.FakeClock
	// staticKey is the public key (base64) of static user 1.
	staticKey string
}

const staticPW = "static user password"

func newKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}

// newAcctFixture: static users 1 (alice, with a key) and 4 (carol), an empty
// store, the cheap hasher.
func newAcctFixture(t testing.TB) *acctFixture {
	t.Helper()
	f := &acctFixture{store: &acctStore{Store: enginetest.NewStore()}, obs: enginetest.NewObserver(),
		hasher: enginetest.CheapHasher(t), clock: caddyauth.NewFakeClock(epoch), staticKey: newKey(t)}
	k, _ := base64.StdEncoding.DecodeString(f.staticKey)
	static, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 1, Email: "Alice@Example.com", Username: "alice", PasswordHash: enginetest.Hash(t, staticPW),
			PublicKeys: []caddyauth.PublicKey{{Key: k}}},
		{ID: 4, Email: "carol@example.com", Username: "carol", PasswordHash: enginetest.Hash(t, staticPW)},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.m, err = caddyauth.NewManager(caddyauth.Config{Store: f.store,
		Users:  caddyauth.Layered{Static: static, Store: f.store},
		Hasher: f.hasher, Sealer: enginetest.NewSealer(t), Clock: f.clock, Observer: f.obs})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *acctFixture) create(t testing.TB, nu caddyauth.NewUser) *caddyauth.User {
	t.Helper()
	u, err := f.m.CreateUser(context.Background(), nu)
	if err != nil {
		t.Fatalf("CreateUser(%+v): %v", nu.Email, err)
	}
	return u
}

// startSessions starts n amatino sessions for user u and loads each into the
// key cache.
func (f *acctFixture) startSessions(t testing.TB, u *caddyauth.User, n int) []*caddyauth.Session {
	t.Helper()
	ctx := context.Background()
	var out []*caddyauth.Session
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%d%03d", u.ID, i+1)
		s, err := f.m.StartSession(ctx, caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
			Kind: caddyauth.KindHMACKey, ID: id, Secret: []byte("key-" + id), Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Session(ctx, id); err != nil {
			t.Fatalf("session %s not usable: %v", id, err)
		}
		out = append(out, s)
		f.clock.Advance(time.Second) // distinct creation times: listings are oldest first
	}
	return out
}

func (f *acctFixture) login(email, pw string) error {
	_, err := f.m.CheckPassword(context.Background(), caddyauth.PasswordLogin{Email: email, Password: pw})
	return err
}

func fieldOf(err error) string {
	var fe *caddyauth.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	var ce *caddyauth.ConflictError
	if errors.As(err, &ce) {
		return ce.Field
	}
	return ""
}

// Every invalid value is refused with a FieldError naming the field, before
// any KDF run and without writing anything.
func TestCreateUserValidation(t *testing.T) {
	f := newAcctFixture(t)
	weak := func() string {
		h, err := password.NewHasher(password.Config{AllowWeakParams: true,
			Params: password.Params{Time: 1, MemoryKiB: 8, Threads: 1, SaltLen: 16, KeyLen: 32}})
		if err != nil {
			t.Fatal(err)
		}
		phc, _ := h.Hash(context.Background(), "whatever password")
		return phc
	}()
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	identity := base64.StdEncoding.EncodeToString(append([]byte{1}, make([]byte, 31)...))
	nonCanon := base64.StdEncoding.EncodeToString(append([]byte{0xee}, append([]byte(strings.Repeat("\xff", 30)), 0x7f)...))
	good := newKey(t)
	tooMany := make([]string, caddyauth.MaxPublicKeys+1)
	for i := range tooMany {
		tooMany[i] = newKey(t)
	}
	cases := []struct {
		name  string
		nu    caddyauth.NewUser
		field string
	}{
		{"negative id", caddyauth.NewUser{ID: -3}, "id"},
		{"email without @", caddyauth.NewUser{Email: "bob.example.com"}, "email"},
		{"email two @", caddyauth.NewUser{Email: "bob@x@example.com"}, "email"},
		{"email empty local", caddyauth.NewUser{Email: "@example.com"}, "email"},
		{"email empty domain", caddyauth.NewUser{Email: "bob@"}, "email"},
		{"email empty label", caddyauth.NewUser{Email: "bob@example..com"}, "email"},
		{"email trailing dot", caddyauth.NewUser{Email: "bob@example.com."}, "email"},
		{"email space", caddyauth.NewUser{Email: "bob smith@example.com"}, "email"},
		{"email newline", caddyauth.NewUser{Email: "bob@example.com\n{\"level\":\"error\"}"}, "email"},
		{"email quote", caddyauth.NewUser{Email: `"bob"@example.com`}, "email"},
		{"email bad utf8", caddyauth.NewUser{Email: "bob\xff@example.com"}, "email"},
		{"email local too long", caddyauth.NewUser{Email: strings.Repeat("a", 65) + "@example.com"}, "email"},
		{"email too long", caddyauth.NewUser{Email: "a@" + strings.Repeat("b", 249) + ".com"}, "email"},
		{"username space", caddyauth.NewUser{Username: "bob smith"}, "username"},
		{"username tab", caddyauth.NewUser{Username: "bob\tsmith"}, "username"},
		{"username control", caddyauth.NewUser{Username: "bob\x00"}, "username"},
		{"username too long", caddyauth.NewUser{Username: strings.Repeat("é", 65)}, "username"},
		{"username bad utf8", caddyauth.NewUser{Username: "bob\xc3"}, "username"},
		{"account letters", caddyauth.NewUser{AccountNumber: "AC-0001"}, "account_number"},
		{"account too long", caddyauth.NewUser{AccountNumber: strings.Repeat("1", 33)}, "account_number"},
		{"password short", caddyauth.NewUser{Email: "b@example.com", Password: "1234567"}, "password"},
		{"password long", caddyauth.NewUser{Email: "b@example.com", Password: strings.Repeat("x", caddyauth.MaxPasswordBytes+1)}, "password"},
		{"password bad utf8", caddyauth.NewUser{Email: "b@example.com", Password: "abcdefgh\xff"}, "password"},
		{"password and hash", caddyauth.NewUser{Email: "b@example.com", Password: "long enough pw", PasswordHash: enginetest.Hash(t, "x")}, "password"},
		{"hash not phc", caddyauth.NewUser{Email: "b@example.com", PasswordHash: "$2a$10$abcdefghijklmnopqrstuv"}, "password_hash"},
		{"hash weaker than configured", caddyauth.NewUser{Email: "b@example.com", PasswordHash: weak}, "password_hash"},
		{"key short", caddyauth.NewUser{PublicKeys: []string{good[:43]}}, "public_key"},
		{"key unpadded", caddyauth.NewUser{PublicKeys: []string{strings.TrimRight(good, "=") + "A"}}, "public_key"},
		{"key url alphabet", caddyauth.NewUser{PublicKeys: []string{base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb", 32)))}}, "public_key"},
		{"key 33 bytes", caddyauth.NewUser{PublicKeys: []string{base64.StdEncoding.EncodeToString(make([]byte, 33))}}, "public_key"},
		{"key 31 bytes", caddyauth.NewUser{PublicKeys: []string{base64.StdEncoding.EncodeToString(append(make([]byte, 30), 1))}}, "public_key"},
		{"key all zero", caddyauth.NewUser{PublicKeys: []string{zero}}, "public_key"},
		{"key small order", caddyauth.NewUser{PublicKeys: []string{identity}}, "public_key"},
		{"key non-canonical", caddyauth.NewUser{PublicKeys: []string{nonCanon}}, "public_key"},
		{"key twice", caddyauth.NewUser{PublicKeys: []string{good, good}}, "public_keys"},
		{"too many keys", caddyauth.NewUser{PublicKeys: tooMany}, "public_keys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.hasher.Calls()
			u, err := f.m.CreateUser(context.Background(), tc.nu)
			if !errors.Is(err, caddyauth.ErrInvalidUser) {
				t.Fatalf("got %+v, %v; want ErrInvalidUser", u, err)
			}
			if got := fieldOf(err); got != tc.field {
				t.Errorf("field %q, want %q (%v)", got, tc.field, err)
			}
			if tc.nu.Password != "" && strings.Contains(err.Error(), tc.nu.Password) {
				t.Errorf("error %q echoes the password", err)
			}
			if n := f.hasher.Calls() - before; n != 0 {
				t.Errorf("%d KDF runs for a refused request", n)
			}
		})
	}
	if us, _ := f.store.ListUsers(context.Background(), 0, 100); len(us) != 0 {
		t.Fatalf("%d users stored by refused requests", len(us))
	}
}

func TestCreateUserStoresWhatWasAsked(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	key := newKey(t)
	given := enginetest.Hash(t, "given hash password")
	cases := []struct {
		name   string
		nu     caddyauth.NewUser
		wantID int64
		pw     string // a password that must log in, "" for none
	}{
		// Static ids are 1 and 4: the first assigned id is above them.
		{"assigned id", caddyauth.NewUser{Email: "Bob@Example.com", Username: "bob", AccountNumber: "0042",
			Password: "bob's password", PublicKeys: []string{key}}, 5, "bob's password"},
		{"explicit id", caddyauth.NewUser{ID: 100, Email: "dave@example.com", PasswordHash: given}, 100, "given hash password"},
		{"next assigned id", caddyauth.NewUser{Username: "erin"}, 101, ""},
		{"unicode username", caddyauth.NewUser{Username: "zoë_Ω"}, 102, ""},
	}
	for _, tc := range cases {
		u := f.create(t, tc.nu)
		if u.ID != tc.wantID {
			t.Errorf("%s: id %d, want %d", tc.name, u.ID, tc.wantID)
		}
		if !u.Created.Equal(epoch) {
			t.Errorf("%s: created %v, want %v", tc.name, u.Created, epoch)
		}
		stored, err := f.store.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if stored.Email != tc.nu.Email || stored.Username != tc.nu.Username || stored.AccountNumber != tc.nu.AccountNumber {
			t.Errorf("%s: stored %+v", tc.name, stored)
		}
		if tc.nu.PasswordHash != "" && stored.PasswordHash != tc.nu.PasswordHash {
			t.Errorf("%s: hash not stored as given", tc.name)
		}
		if tc.nu.Password != "" && (stored.PasswordHash == "" || strings.Contains(stored.PasswordHash, tc.nu.Password)) {
			t.Errorf("%s: password not hashed: %q", tc.name, stored.PasswordHash)
		}
		if tc.pw != "" {
			if err := f.login(tc.nu.Email, tc.pw); err != nil {
				t.Errorf("%s: login: %v", tc.name, err)
			}
			if err := f.login(tc.nu.Email, tc.pw+"x"); !errors.Is(err, caddyauth.ErrBadCredentials) {
				t.Errorf("%s: wrong password: %v", tc.name, err)
			}
		}
	}
	bob, _ := f.store.UserByUsername(ctx, "bob")
	k, _ := base64.StdEncoding.DecodeString(key)
	if len(bob.PublicKeys) != 1 || bob.PublicKeys[0].ID != caddyauth.PublicKeyID(k) || !bob.PublicKeys[0].Added.Equal(epoch) {
		t.Errorf("bob's keys: %+v", bob.PublicKeys)
	}
	if got, err := f.m.Users().UserByKeyID(ctx, caddyauth.PublicKeyID(k)); err != nil || got.ID != 5 {
		t.Errorf("login lookup by key id: %+v, %v", got, err)
	}
	if n := len(f.obs.EventsOf(caddyauth.EventUserCreated)); n != len(cases) {
		t.Errorf("%d user_created events, want %d", n, len(cases))
	}
	reg := f.obs.EventsOf(caddyauth.EventKeyRegistered)
	if len(reg) != 1 || reg[0].UserID != 5 || reg[0].KeyID != caddyauth.PublicKeyID(k) {
		t.Errorf("key_registered events %+v", reg)
	}
}

// Static users win: no stored user may take a static user's id, email (in
// any case), username or key; store collisions are named too.
func TestCreateUserConflicts(t *testing.T) {
	f := newAcctFixture(t)
	stored := newKey(t)
	f.create(t, caddyauth.NewUser{ID: 10, Email: "bob@example.com", Username: "bob", PublicKeys: []string{stored}})
	cases := []struct {
		name   string
		nu     caddyauth.NewUser
		field  string
		static bool
	}{
		{"static id", caddyauth.NewUser{ID: 1, Email: "new@example.com"}, "id", true},
		{"static email other case", caddyauth.NewUser{Email: "ALICE@example.COM"}, "email", true},
		{"static username", caddyauth.NewUser{Username: "carol"}, "username", true},
		{"static key", caddyauth.NewUser{PublicKeys: []string{f.staticKey}}, "public_key", true},
		{"stored id", caddyauth.NewUser{ID: 10}, "id", false},
		{"stored email other case", caddyauth.NewUser{Email: "BOB@example.com"}, "email", false},
		{"stored username", caddyauth.NewUser{Username: "bob"}, "username", false},
		{"stored key", caddyauth.NewUser{PublicKeys: []string{newKey(t), stored}}, "public_key", false},
	}
	for _, tc := range cases {
		_, err := f.m.CreateUser(context.Background(), tc.nu)
		if !errors.Is(err, caddyauth.ErrExists) || errors.Is(err, caddyauth.ErrStaticUser) != tc.static {
			t.Errorf("%s: %v; want ErrExists, static=%v", tc.name, err, tc.static)
			continue
		}
		if got := fieldOf(err); got != tc.field {
			t.Errorf("%s: field %q, want %q", tc.name, got, tc.field)
		}
	}
	if us, _ := f.store.ListUsers(context.Background(), 0, 100); len(us) != 1 {
		t.Fatalf("%d stored users, want 1", len(us))
	}
}

func TestAccountAndListAccounts(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	for _, id := range []int64{2, 3, 7} {
		f.create(t, caddyauth.NewUser{ID: id, Username: fmt.Sprintf("u%d", id)})
	}
	// A stored user with a static id (written behind the Manager's back, as
	// an older config might have allowed) is shadowed.
	if _, err := f.store.Store.CreateUser(ctx, &caddyauth.User{ID: 4, Username: "shadow"}); err != nil {
		t.Fatal(err)
	}
	ids := func(as []caddyauth.Account) string {
		var b strings.Builder
		for _, a := range as {
			fmt.Fprintf(&b, "%d", a.User.ID)
			if a.Static {
				b.WriteString("s")
			}
			b.WriteString(" ")
		}
		return strings.TrimSpace(b.String())
	}
	cases := []struct {
		after int64
		limit int
		want  string
	}{
		{0, 0, "1s 2 3 4s 7"},
		{0, 2, "1s 2"},
		{2, 2, "3 4s"},
		{4, 2, "7"},
		{7, 2, ""},
	}
	for _, tc := range cases {
		got, err := f.m.ListAccounts(ctx, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != tc.want {
			t.Errorf("ListAccounts(%d, %d) = %q, want %q", tc.after, tc.limit, ids(got), tc.want)
		}
	}
	for _, tc := range []struct {
		after int64
		limit int
		field string
	}{{-1, 10, "after"}, {0, caddyauth.MaxListLimit + 1, "limit"}} {
		if _, err := f.m.ListAccounts(ctx, tc.after, tc.limit); fieldOf(err) != tc.field {
			t.Errorf("ListAccounts(%d, %d): %v, want a %s error", tc.after, tc.limit, err, tc.field)
		}
	}
	a, err := f.m.Account(ctx, 4)
	if err != nil || !a.Static || a.User.Username != "carol" {
		t.Errorf("Account(4) = %+v, %v; want static carol", a, err)
	}
	a, err = f.m.Account(ctx, 7)
	if err != nil || a.Static || a.User.Username != "u7" {
		t.Errorf("Account(7) = %+v, %v", a, err)
	}
	for _, id := range []int64{0, -1, 99} {
		if _, err := f.m.Account(ctx, id); !errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("Account(%d): %v, want ErrNotFound", id, err)
		}
	}
}

// SEC-13: disabling a user ends all its sessions (store and every node's
// cache), login fails; enabling lets it log in again; other users keep
// theirs.
func TestDisableEnableSEC13(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	bob := f.create(t, caddyauth.NewUser{ID: 42, Email: "bob@example.com", Password: "bob's password"})
	other := f.create(t, caddyauth.NewUser{ID: 43, Email: "olga@example.com", Password: "olga's password"})
	bobs := f.startSessions(t, bob, 3)
	keep := f.startSessions(t, other, 1)

	n, err := f.m.DisableUser(ctx, bob.ID)
	if err != nil || n != 3 {
		t.Fatalf("DisableUser = %d, %v; want 3", n, err)
	}
	for _, s := range bobs {
		if _, err := f.m.Session(ctx, s.ID); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("session %s after disable: %v", s.ID, err)
		}
		if !f.store.publishedKeys()[s.ID] {
			t.Errorf("session %s not published to the other nodes", s.ID)
		}
	}
	if _, err := f.m.Session(ctx, keep[0].ID); err != nil {
		t.Errorf("user 43's session ended too: %v", err)
	}
	if err := f.login("bob@example.com", "bob's password"); !errors.Is(err, caddyauth.ErrBadCredentials) {
		t.Errorf("disabled user logged in: %v", err)
	}
	if got := f.obs.Ended(caddyauth.DialectAmatino, "revoked"); got != 3 {
		t.Errorf("%d sessions counted revoked, want 3", got)
	}
	// Disabling again ends nothing new and emits no second user_disabled.
	if n, err := f.m.DisableUser(ctx, bob.ID); err != nil || n != 0 {
		t.Errorf("second DisableUser = %d, %v", n, err)
	}
	if got := len(f.obs.EventsOf(caddyauth.EventUserDisabled)); got != 1 {
		t.Errorf("%d user_disabled events, want 1", got)
	}
	rev := f.obs.EventsOf(caddyauth.EventSessionsRevoked)
	if len(rev) == 0 || rev[0].Count != 3 || rev[0].UserID != 42 || rev[0].Reason != "user_disabled" {
		t.Errorf("sessions_revoked events %+v", rev)
	}

	if err := f.m.EnableUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.login("bob@example.com", "bob's password"); err != nil {
		t.Errorf("enabled user cannot log in: %v", err)
	}
	if err := f.m.EnableUser(ctx, bob.ID); err != nil {
		t.Errorf("enabling an enabled user: %v", err)
	}
	if got := len(f.obs.EventsOf(caddyauth.EventUserEnabled)); got != 1 {
		t.Errorf("%d user_enabled events, want 1", got)
	}

	for _, tc := range []struct {
		id   int64
		want error
	}{{1, caddyauth.ErrStaticUser}, {99, caddyauth.ErrNotFound}, {0, caddyauth.ErrNotFound}} {
		if _, err := f.m.DisableUser(ctx, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("DisableUser(%d): %v, want %v", tc.id, err, tc.want)
		}
		if err := f.m.EnableUser(ctx, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("EnableUser(%d): %v, want %v", tc.id, err, tc.want)
		}
	}
}

// SEC-13: a password change ends every session; the old password stops
// working, the new one works.
func TestChangePasswordSEC13(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	bob := f.create(t, caddyauth.NewUser{ID: 42, Email: "bob@example.com", Password: "old password"})
	sessions := f.startSessions(t, bob, 2)
	n, err := f.m.ChangePassword(ctx, bob.ID, "new password", "")
	if err != nil || n != 2 {
		t.Fatalf("ChangePassword = %d, %v; want 2", n, err)
	}
	for _, s := range sessions {
		if _, err := f.m.Session(ctx, s.ID); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("session %s survived the password change: %v", s.ID, err)
		}
	}
	if err := f.login("bob@example.com", "old password"); !errors.Is(err, caddyauth.ErrBadCredentials) {
		t.Errorf("old password: %v", err)
	}
	if err := f.login("bob@example.com", "new password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := f.m.ChangePassword(ctx, bob.ID, "", enginetest.Hash(t, "hashed elsewhere")); err != nil {
		t.Fatal(err)
	}
	if err := f.login("bob@example.com", "hashed elsewhere"); err != nil {
		t.Errorf("password set by hash: %v", err)
	}
	if got := len(f.obs.EventsOf(caddyauth.EventPasswordChanged)); got != 2 {
		t.Errorf("%d password_changed events, want 2", got)
	}

	for _, tc := range []struct {
		name     string
		id       int64
		pw, hash string
		want     error
		field    string
	}{
		{"static", 1, "new password", "", caddyauth.ErrStaticUser, ""},
		{"unknown", 99, "new password", "", caddyauth.ErrNotFound, ""},
		{"short", 42, "short", "", caddyauth.ErrInvalidUser, "password"},
		{"neither", 42, "", "", caddyauth.ErrInvalidUser, "password"},
		{"both", 42, "new password", enginetest.Hash(t, "x"), caddyauth.ErrInvalidUser, "password"},
		{"bad hash", 42, "", "$argon2id$nonsense", caddyauth.ErrInvalidUser, "password_hash"},
	} {
		before := f.hasher.Calls()
		_, err := f.m.ChangePassword(ctx, tc.id, tc.pw, tc.hash)
		if !errors.Is(err, tc.want) || fieldOf(err) != tc.field {
			t.Errorf("%s: %v, want %v on %q", tc.name, err, tc.want, tc.field)
		}
		if f.hasher.Calls() != before {
			t.Errorf("%s: a refused change ran the KDF", tc.name)
		}
	}
	if err := f.login("bob@example.com", "hashed elsewhere"); err != nil {
		t.Errorf("a refused change altered the password: %v", err)
	}
}

// SEC-31: the admin path to add a key; one user's key is never another's;
// every registration is audited as key_registered with the key id.
func TestAddRemoveKeySEC31(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	bob := f.create(t, caddyauth.NewUser{ID: 42, Username: "bob"})
	f.create(t, caddyauth.NewUser{ID: 43, Username: "olga"})
	key := newKey(t)
	pk, err := f.m.AddKey(ctx, bob.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(key)
	if pk.ID != caddyauth.PublicKeyID(raw) || !pk.Added.Equal(epoch) {
		t.Errorf("AddKey = %+v", pk)
	}
	if u, err := f.m.Users().UserByKeyID(ctx, pk.ID); err != nil || u.ID != bob.ID {
		t.Errorf("lookup of the new key: %+v, %v", u, err)
	}
	ev := f.obs.EventsOf(caddyauth.EventKeyRegistered)
	if len(ev) != 1 || ev[0].UserID != 42 || ev[0].KeyID != pk.ID {
		t.Errorf("key_registered events %+v", ev)
	}

	cases := []struct {
		name  string
		id    int64
		key   string
		want  error
		field string
	}{
		{"again", 42, key, caddyauth.ErrExists, "public_key"},
		{"to another user", 43, key, caddyauth.ErrExists, "public_key"},
		{"static user's key", 43, f.staticKey, caddyauth.ErrStaticUser, "public_key"},
		{"to a static user", 1, newKey(t), caddyauth.ErrStaticUser, ""},
		{"unknown user", 99, newKey(t), caddyauth.ErrNotFound, ""},
		{"malformed", 42, "not a key", caddyauth.ErrInvalidUser, "public_key"},
	}
	for _, tc := range cases {
		if _, err := f.m.AddKey(ctx, tc.id, tc.key); !errors.Is(err, tc.want) || fieldOf(err) != tc.field {
			t.Errorf("%s: %v, want %v on %q", tc.name, err, tc.want, tc.field)
		}
	}
	for i := 1; i < caddyauth.MaxPublicKeys; i++ {
		if _, err := f.m.AddKey(ctx, bob.ID, newKey(t)); err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
	}
	if _, err := f.m.AddKey(ctx, bob.ID, newKey(t)); !errors.Is(err, caddyauth.ErrTooManyKeys) {
		t.Errorf("key beyond the cap: %v", err)
	}

	if err := f.m.RemoveKey(ctx, bob.ID, pk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Users().UserByKeyID(ctx, pk.ID); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("removed key still finds a user: %v", err)
	}
	if ev := f.obs.EventsOf(caddyauth.EventKeyRemoved); len(ev) != 1 || ev[0].KeyID != pk.ID {
		t.Errorf("key_removed events %+v", ev)
	}
	for _, tc := range []struct {
		id    int64
		keyID string
		want  error
	}{{42, pk.ID, caddyauth.ErrUnknownKey}, {1, "ed25519-x", caddyauth.ErrStaticUser}, {99, pk.ID, caddyauth.ErrNotFound}} {
		if err := f.m.RemoveKey(ctx, tc.id, tc.keyID); !errors.Is(err, tc.want) {
			t.Errorf("RemoveKey(%d, %s): %v, want %v", tc.id, tc.keyID, err, tc.want)
		}
	}
	// Now free, the key can go to another user.
	if _, err := f.m.AddKey(ctx, 43, key); err != nil {
		t.Errorf("re-adding a removed key to another user: %v", err)
	}
}

// SEC-13: revoke one session by its hash, and all of a user's; the user
// sees only metadata, never the session id.
func TestUserSessionsAndRevokeSEC13(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	bob := f.create(t, caddyauth.NewUser{ID: 42, Username: "bob"})
	olga := f.create(t, caddyauth.NewUser{ID: 43, Username: "olga"})
	sessions := f.startSessions(t, bob, 3)
	olgas := f.startSessions(t, olga, 1)
	f.clock.Advance(time.Minute)

	infos, err := f.m.UserSessions(ctx, bob.ID)
	if err != nil || len(infos) != 3 {
		t.Fatalf("UserSessions = %d, %v", len(infos), err)
	}
	for i, in := range infos {
		if in.IDHash != f.m.LogHash(sessions[i].ID) || in.Dialect != caddyauth.DialectAmatino || in.UserID != 42 ||
			!in.Created.Equal(sessions[i].Created) || !in.AbsoluteDeadline.Equal(sessions[i].Created.Add(time.Hour)) || in.Expired {
			t.Errorf("session %d: %+v", i, in)
		}
		if strings.Contains(fmt.Sprintf("%+v", in), sessions[i].ID) {
			t.Errorf("session info carries the raw id: %+v", in)
		}
	}
	f.clock.Advance(2 * time.Hour)
	if infos, _ := f.m.UserSessions(ctx, bob.ID); len(infos) != 3 || !infos[0].Expired {
		t.Errorf("expired sessions: %+v", infos)
	}
	f.clock.Advance(-2 * time.Hour)

	for _, tc := range []struct {
		name string
		id   int64
		hash string
		want error
	}{
		{"not a hash", 42, sessions[0].ID, caddyauth.ErrInvalidUser},
		{"upper case", 42, strings.ToUpper(infos[0].IDHash), caddyauth.ErrInvalidUser},
		{"another user's session", 42, f.m.LogHash(olgas[0].ID), caddyauth.ErrUnknownSession},
		{"no such session", 42, "0123456789abcdef", caddyauth.ErrUnknownSession},
	} {
		if err := f.m.RevokeSession(ctx, tc.id, tc.hash); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := f.m.RevokeSession(ctx, bob.ID, infos[1].IDHash); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Session(ctx, sessions[1].ID); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("revoked session: %v", err)
	}
	if ev := f.obs.EventsOf(caddyauth.EventSessionRevoked); len(ev) != 1 || ev[0].SessionHash != infos[1].IDHash || ev[0].UserID != 42 {
		t.Errorf("session_revoked events %+v", ev)
	}
	if err := f.m.RevokeSession(ctx, bob.ID, infos[1].IDHash); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("revoking twice: %v", err)
	}

	n, err := f.m.RevokeUser(ctx, bob.ID, "admin")
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v; want 2", n, err)
	}
	for _, s := range sessions {
		if _, err := f.m.Session(ctx, s.ID); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("session %s after revoke-all: %v", s.ID, err)
		}
	}
	if _, err := f.m.Session(ctx, olgas[0].ID); err != nil {
		t.Errorf("user 43's session: %v", err)
	}
	if got := f.obs.Ended(caddyauth.DialectAmatino, "revoked"); got != 3 {
		t.Errorf("%d sessions counted revoked, want 3", got)
	}
	// Sessions of a static user can be listed and revoked too.
	alice := f.m.Users()
	u, _ := alice.UserByID(ctx, 1)
	f.startSessions(t, u, 1)
	if infos, err := f.m.UserSessions(ctx, 1); err != nil || len(infos) != 1 {
		t.Errorf("static user's sessions: %d, %v", len(infos), err)
	}
	if n, err := f.m.RevokeUser(ctx, 1, "admin"); err != nil || n != 1 {
		t.Errorf("revoke static user's sessions: %d, %v", n, err)
	}
	if _, err := f.m.UserSessions(ctx, 99); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("sessions of an unknown user: %v", err)
	}
}

func TestStats(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	bob := f.create(t, caddyauth.NewUser{ID: 42, Username: "bob"})
	s := f.startSessions(t, bob, 2) // two misses
	if _, err := f.m.Session(ctx, s[0].ID); err != nil {
		t.Fatal(err)
	}
	st, err := f.m.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sessions[caddyauth.DialectAmatino] != 2 || st.CacheEntries != 2 || st.CacheHits != 1 ||
		st.CacheMisses != 2 || st.StaticUsers != 2 {
		t.Errorf("Stats = %+v", st)
	}
}

// REL-01: a store that cannot answer gives ErrUnavailable, counted, never
// "not found" and never a half-done change.
func TestAccountsStoreUnavailableREL01(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	f.create(t, caddyauth.NewUser{ID: 42, Username: "bob", Password: "bob's password"})
	cases := []struct {
		op   string
		call func() error
	}{
		{"create_user", func() error { _, err := f.m.CreateUser(ctx, caddyauth.NewUser{Username: "new"}); return err }},
		{"get_user", func() error { _, err := f.m.Account(ctx, 42); return err }},
		{"get_user", func() error { _, err := f.m.CreateUser(ctx, caddyauth.NewUser{ID: 50}); return err }},
		{"list_users", func() error { _, err := f.m.ListAccounts(ctx, 0, 10); return err }},
		{"update_user", func() error { _, err := f.m.DisableUser(ctx, 42); return err }},
		{"update_user", func() error { return f.m.EnableUser(ctx, 42) }},
		{"update_user", func() error { return f.m.RemoveKey(ctx, 42, "ed25519-x") }},
		{"delete_user_sessions", func() error { _, err := f.m.RevokeUser(ctx, 42, "admin"); return err }},
		{"list_user_sessions", func() error { _, err := f.m.UserSessions(ctx, 42); return err }},
		{"list_user_sessions", func() error { return f.m.RevokeSession(ctx, 42, "0123456789abcdef") }},
		{"count_sessions", func() error { _, err := f.m.Stats(ctx); return err }},
	}
	for i, tc := range cases {
		f.store.setFailing(tc.op)
		err := tc.call()
		f.store.setFailing()
		if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("case %d (%s): %v, want ErrUnavailable", i, tc.op, err)
		}
	}
	if f.obs.StoreErrors("update_user") != 3 || f.obs.StoreErrors("list_users") != 1 {
		t.Errorf("store errors not counted: %s", f.obs.Counts())
	}
	if u, err := f.store.UserByID(ctx, 42); err != nil || u.Disabled {
		t.Errorf("user changed by a failed request: %+v, %v", u, err)
	}
}

// weakHash is a PHC string made with parameters below the test hasher's
// (m=8 KiB against 64 KiB).
func weakHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := password.NewHasher(password.Config{AllowWeakParams: true,
		Params: password.Params{Time: 1, MemoryKiB: 8, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	phc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return phc
}

// SEC-01: a store user's hash with parameters weaker than the configured
// ones is upgraded at the next successful login, and only then.
func TestRehashOnLoginSEC01(t *testing.T) {
	f := newAcctFixture(t)
	ctx := context.Background()
	const pw = "upgrade me please"
	old := weakHash(t, pw)
	if _, err := f.store.Store.CreateUser(ctx, &caddyauth.User{ID: 42, Email: "bob@example.com", PasswordHash: old}); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		u, err := f.store.UserByID(ctx, 42)
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHash
	}

	if err := f.login("bob@example.com", "wrong password"); !errors.Is(err, caddyauth.ErrBadCredentials) {
		t.Fatal(err)
	}
	if stored() != old {
		t.Fatal("a failed login changed the hash")
	}

	// A failed write leaves the old hash and the login succeeds anyway.
	f.store.setFailing("update_user")
	if err := f.login("bob@example.com", pw); err != nil {
		t.Fatalf("login with a failing re-hash write: %v", err)
	}
	f.store.setFailing()
	if stored() != old || f.obs.StoreErrors("rehash") != 1 {
		t.Fatalf("failed re-hash: hash changed or not counted (%s)", f.obs.Counts())
	}

	if err := f.login("bob@example.com", pw); err != nil {
		t.Fatal(err)
	}
	now := stored()
	phc, err := password.Parse(now)
	if err != nil || now == old || !phc.Params.AtLeast(f.hasher.Params()) {
		t.Fatalf("hash not upgraded: %q (%v)", now, err)
	}
	if len(f.obs.EventsOf(caddyauth.EventPasswordRehashed)) != 1 {
		t.Errorf("password_rehashed events: %d", len(f.obs.EventsOf(caddyauth.EventPasswordRehashed)))
	}
	// Once upgraded it is left alone.
	if err := f.login("bob@example.com", pw); err != nil {
		t.Fatal(err)
	}
	if stored() != now {
		t.Error("an up-to-date hash was re-hashed")
	}
}

// Static users' hashes are never written, whatever their parameters.
func TestRehashLeavesStaticUsersSEC01(t *testing.T) {
	f := newAcctFixture(t)
	static, _ := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 1, Email: "weak@example.com", PasswordHash: weakHash(t, "static weak pw")}})
	m, err := caddyauth.NewManager(caddyauth.Config{Store: f.store, Users: caddyauth.Layered{Static: static, Store: f.store},
		Hasher: f.hasher, Sealer: enginetest.NewSealer(t), Observer: f.obs})
	if err != nil {
		t.Fatal(err)
	}
	before := f.hasher.Calls()
	if _, err := m.CheckPassword(context.Background(), caddyauth.PasswordLogin{Email: "weak@example.com", Password: "static weak pw"}); err != nil {
		t.Fatal(err)
	}
	if f.hasher.Calls()-before != 1 || len(f.obs.EventsOf(caddyauth.EventPasswordRehashed)) != 0 {
		t.Errorf("static user re-hashed: %d KDF runs", f.hasher.Calls()-before)
	}
}

// TestLoginRacingDisableSEC13 (SEC-13): a login that read and checked its
// user before a DisableUser or ChangePassword, and stores its session only
// after that change revoked the user's sessions, must not leave that session
// behind: the Manager reads the user again once the session is stored and
// refuses the login like a disabled user's. The interleaving is replayed in
// order, so the test is deterministic; without the second read the session
// would survive. A rehash done by the login itself (SEC-01) is no change.
func TestLoginRacingDisableSEC13(t *testing.T) {
	starts := []struct {
		name  string
		start func(f *acctFixture, u *caddyauth.User) error
	}{
		{"hmac session", func(f *acctFixture, u *caddyauth.User) error {
			_, err := f.m.StartSession(context.Background(), caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
				Kind: caddyauth.KindHMACKey, ID: "777001", Secret: []byte("key"), Lifetime: time.Hour})
			return err
		}},
		{"token session", func(f *acctFixture, u *caddyauth.User) error {
			_, _, err := f.m.StartTokenSession(context.Background(), u, caddyauth.DialectSXT,
				caddyauth.TokenLifetimes{Access: time.Minute, Refresh: time.Hour, Session: 24 * time.Hour})
			return err
		}},
	}
	cases := []struct {
		name    string
		between func(f *acctFixture, id int64) // runs after the password check, before the session is stored
		failing []string                       // store operations failing meanwhile
		want    error
		live    int
	}{
		{"no disable", func(*acctFixture, int64) {}, nil, nil, 1},
		{"disabled meanwhile", func(f *acctFixture, id int64) {
			if n, err := f.m.DisableUser(context.Background(), id); err != nil || n != 0 {
				t.Fatalf("DisableUser = %d, %v; want 0 sessions to end yet", n, err)
			}
		}, nil, caddyauth.ErrBadCredentials, 0},
		{"store down for the second read", func(*acctFixture, int64) {}, []string{"get_user"}, caddyauth.ErrUnavailable, 0},
		{"password changed meanwhile", func(f *acctFixture, id int64) {
			if n, err := f.m.ChangePassword(context.Background(), id, "a new password", ""); err != nil || n != 0 {
				t.Fatalf("ChangePassword = %d, %v; want 0 sessions to end yet", n, err)
			}
		}, nil, caddyauth.ErrBadCredentials, 0},
	}
	weak := weakHash(t, "bob's password")
	for _, st := range starts {
		for _, tc := range append(cases, struct {
			name    string
			between func(f *acctFixture, id int64)
			failing []string
			want    error
			live    int
		}{"rehashed by this login", func(*acctFixture, int64) {}, nil, nil, 1}) {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				f := newAcctFixture(t)
				ctx := context.Background()
				bob := &caddyauth.User{ID: 42, Email: "bob@example.com"}
				if tc.name == "rehashed by this login" {
					// Below the admin API's minimum, so straight into the
					// store, as in TestRehashOnLoginSEC01.
					bob.PasswordHash = weak
					if _, err := f.store.Store.CreateUser(ctx, bob); err != nil {
						t.Fatal(err)
					}
				} else {
					bob = f.create(t, caddyauth.NewUser{ID: 42, Email: "bob@example.com", Password: "bob's password"})
				}
				u, err := f.m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: "bob's password"})
				if err != nil {
					t.Fatalf("CheckPassword: %v", err)
				}
				if tc.name == "rehashed by this login" && u.PasswordHash == weak {
					t.Fatal("the login did not rehash the weak hash")
				}
				tc.between(f, bob.ID)
				f.store.setFailing(tc.failing...)
				err = st.start(f, u)
				f.store.setFailing()
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("start = %v, want %v", err, tc.want)
				}
				live, err := f.store.ListUserSessions(ctx, bob.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(live) != tc.live {
					t.Errorf("%d sessions of the user stored, want %d", len(live), tc.live)
				}
			})
		}
	}
}
