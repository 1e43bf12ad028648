package caddyauth_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

func TestNewManagerRequiresParts(t *testing.T) {
	f := newFixture(t)
	users, _ := caddyauth.NewStaticUsers(nil)
	full := caddyauth.Config{Store: memory.New(), Users: users, Hasher: f.hasher, Sealer: f.sealer}
	for name, mut := range map[string]func(*caddyauth.Config){
		"no store":  func(c *caddyauth.Config) { c.Store = nil },
		"no users":  func(c *caddyauth.Config) { c.Users = nil },
		"no hasher": func(c *caddyauth.Config) { c.Hasher = nil },
		"no sealer": func(c *caddyauth.Config) { c.Sealer = nil },
	} {
		c := full
		mut(&c)
		if _, err := caddyauth.NewManager(c); err == nil {
			t.Errorf("%s: NewManager succeeded", name)
		}
	}
	m, err := caddyauth.NewManager(full)
	if err != nil {
		t.Fatalf("NewManager(full): %v", err)
	}
	if m.Cache() == nil || m.Replay() == nil || m.Observer() == nil {
		t.Fatal("defaults not filled in")
	}
}

// SEC-03, SEC-04: every wrong login is the same ErrBadCredentials, and every
// attempt, right or wrong, known user or not, costs exactly one KDF run.
func TestCheckPasswordOneKDFSameError_SEC03_SEC04(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		login   caddyauth.PasswordLogin
		wantErr error // nil: success
		wantID  int64
	}{
		{"unknown email", caddyauth.PasswordLogin{Email: "nobody@example.com", Password: alicePW}, caddyauth.ErrBadCredentials, 0},
		{"unknown id", caddyauth.PasswordLogin{UserID: 999, Password: alicePW}, caddyauth.ErrBadCredentials, 0},
		{"unknown username", caddyauth.PasswordLogin{Username: "nobody", Password: alicePW}, caddyauth.ErrBadCredentials, 0},
		{"no selector", caddyauth.PasswordLogin{Password: alicePW}, caddyauth.ErrBadCredentials, 0},
		{"known email wrong password", caddyauth.PasswordLogin{Email: "alice@example.com", Password: "wrong"}, caddyauth.ErrBadCredentials, 0},
		{"known id wrong password", caddyauth.PasswordLogin{UserID: 1, Password: "wrong"}, caddyauth.ErrBadCredentials, 0},
		{"known email empty password", caddyauth.PasswordLogin{Email: "alice@example.com", Password: ""}, caddyauth.ErrBadCredentials, 0},
		{"known email right password", caddyauth.PasswordLogin{Email: "alice@example.com", Password: alicePW}, nil, 1},
		{"email other case right password", caddyauth.PasswordLogin{Email: "ALICE@EXAMPLE.COM", Password: alicePW}, nil, 1},
		{"known id right password", caddyauth.PasswordLogin{UserID: 1, Password: alicePW}, nil, 1},
		{"known username right password", caddyauth.PasswordLogin{Username: "alice", Password: alicePW}, nil, 1},
		{"disabled user right password", caddyauth.PasswordLogin{UserID: 2, Password: disabledPW}, caddyauth.ErrBadCredentials, 0},
		{"disabled user wrong password", caddyauth.PasswordLogin{UserID: 2, Password: "wrong"}, caddyauth.ErrBadCredentials, 0},
		{"user without hash", caddyauth.PasswordLogin{Email: "nohash@example.com", Password: ""}, caddyauth.ErrBadCredentials, 0},
		{"wrong account number", caddyauth.PasswordLogin{Username: "alice", Password: alicePW, CheckAccount: true, AccountNumber: "AC-0002"}, caddyauth.ErrBadCredentials, 0},
		{"empty account number", caddyauth.PasswordLogin{Username: "alice", Password: alicePW, CheckAccount: true}, caddyauth.ErrBadCredentials, 0},
		{"wrong account number and password", caddyauth.PasswordLogin{Username: "alice", Password: "x", CheckAccount: true, AccountNumber: "AC-9"}, caddyauth.ErrBadCredentials, 0},
		{"right account number", caddyauth.PasswordLogin{Username: "alice", Password: alicePW, CheckAccount: true, AccountNumber: "AC-0001"}, nil, 1},
		{"emoji passphrase (SEC-02)", caddyauth.PasswordLogin{Email: "emoji@example.com", Password: emojiPW}, nil, 3},
		{"emoji passphrase truncated (SEC-02)", caddyauth.PasswordLogin{Email: "emoji@example.com", Password: emojiPW[:len(emojiPW)-4]}, caddyauth.ErrBadCredentials, 0},
		{"exactly 1024 bytes is hashed (SEC-02)", caddyauth.PasswordLogin{UserID: 1, Password: strings.Repeat("a", caddyauth.MaxPasswordBytes)}, caddyauth.ErrBadCredentials, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.hasher.Calls()
			u, err := f.m.CheckPassword(ctx, tc.login)
			if got := f.hasher.Calls() - before; got != 1 {
				t.Errorf("KDF calls = %d, want exactly 1 (SEC-04)", got)
			}
			if tc.wantErr != nil {
				if err != tc.wantErr { // identity, not just errors.Is: one error value for all (SEC-03)
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if u != nil {
					t.Fatalf("user = %+v on failure", u)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if u == nil || u.ID != tc.wantID {
				t.Fatalf("user = %+v, want id %d", u, tc.wantID)
			}
		})
	}
}

// SEC-02: an over-long password is refused before the KDF.
func TestCheckPasswordTooLong_SEC02(t *testing.T) {
	f := newFixture(t)
	for _, n := range []int{caddyauth.MaxPasswordBytes + 1, 64 << 10, 1 << 20} {
		for _, l := range []caddyauth.PasswordLogin{
			{Email: "alice@example.com"}, {UserID: 1}, {Email: "nobody@example.com"}, {UserID: 999},
		} {
			l.Password = strings.Repeat("p", n)
			before := f.hasher.Calls()
			start := time.Now()
			u, err := f.m.CheckPassword(context.Background(), l)
			if !errors.Is(err, caddyauth.ErrPasswordTooLong) || u != nil {
				t.Errorf("len %d %+v: got (%v, %v), want ErrPasswordTooLong", n, l.Email, u, err)
			}
			if got := f.hasher.Calls() - before; got != 0 {
				t.Errorf("len %d: KDF calls = %d, want 0", n, got)
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("len %d: refusal took %s, want < 50ms", n, d)
			}
		}
	}
}

// A directory that cannot answer is not "bad credentials".
type brokenUsers struct{}

func (brokenUsers) UserByEmail(context.Context, string) (*caddyauth.User, error) {
	return nil, caddyauth.ErrUnavailable
}
func (brokenUsers) UserByID(context.Context, int64) (*caddyauth.User, error) {
	return nil, errors.New("ldap down")
}
func (brokenUsers) UserByUsername(context.Context, string) (*caddyauth.User, error) {
	return nil, caddyauth.ErrUnavailable
}
func (brokenUsers) UserByKeyID(context.Context, string) (*caddyauth.User, error) {
	return nil, caddyauth.ErrUnavailable
}

func TestCheckPasswordDirectoryUnavailable_REL01(t *testing.T) {
	f := newFixture(t)
	obs := enginetest.NewObserver()
	m, err := caddyauth.NewManager(caddyauth.Config{Store: memory.New(), Users: brokenUsers{}, Hasher: f.hasher,
		Sealer: f.sealer, Clock: f.clock, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []caddyauth.PasswordLogin{{Email: "a@b", Password: "x"}, {UserID: 5, Password: "x"}} {
		_, err := m.CheckPassword(context.Background(), l)
		if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrBadCredentials) {
			t.Errorf("%+v: err = %v, want ErrUnavailable", l, err)
		}
	}
	if obs.StoreErrors("get_user") != 2 {
		t.Errorf("StoreError(get_user) = %d, want 2", obs.StoreErrors("get_user"))
	}
}

// SEC-16: the secret reaches the store only sealed, and comes back in clear
// through the Manager.
func TestSessionRoundTripSealed_SEC16(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := []byte("q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA")
	s := f.start(t, "4200100", key, time.Hour, 0)
	if !bytes.Equal(s.Secret, key) {
		t.Fatalf("StartSession returned secret %q, want the clear key", s.Secret)
	}
	if s.ID != "4200100" || s.UserID != 1 || s.Dialect != caddyauth.DialectAmatino || s.Kind != caddyauth.KindHMACKey {
		t.Fatalf("StartSession returned %+v", s)
	}
	if !s.Created.Equal(epoch) || !s.AbsoluteDeadline.Equal(epoch.Add(time.Hour)) || !s.IdleDeadline.IsZero() {
		t.Fatalf("times: created %s absolute %s idle %s", s.Created, s.AbsoluteDeadline, s.IdleDeadline)
	}
	if f.obs.Created(caddyauth.DialectAmatino) != 1 {
		t.Errorf("SessionCreated(amatino) = %d, want 1", f.obs.Created(caddyauth.DialectAmatino))
	}

	stored, err := f.store.Store.GetSession(ctx, "4200100")
	if err != nil {
		t.Fatalf("store.GetSession: %v", err)
	}
	if len(stored.Secret) == 0 || bytes.Equal(stored.Secret, key) || bytes.Contains(stored.Secret, key) {
		t.Fatalf("stored secret %q is not sealed", stored.Secret)
	}
	// Neither is any 8-byte piece of the key stored in clear.
	for i := 0; i+8 <= len(key); i++ {
		if bytes.Contains(stored.Secret, key[i:i+8]) {
			t.Fatalf("stored secret contains key fragment %q", key[i:i+8])
		}
	}
	// Modifying the returned session must not change what later calls see.
	s.Secret[0] ^= 0xff

	got, err := f.m.Session(ctx, "4200100")
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if !bytes.Equal(got.Secret, key) || got.UserID != 1 || got.Dialect != caddyauth.DialectAmatino {
		t.Fatalf("Session returned %+v (secret %q)", got, got.Secret)
	}
	// Second lookup is a cache hit with the same clear secret.
	got2, err := f.m.Session(ctx, "4200100")
	if err != nil || !bytes.Equal(got2.Secret, key) {
		t.Fatalf("second Session: %v %q", err, got2.Secret)
	}
	if hits, misses := f.obs.CacheLookups(); hits != 1 || misses != 1 {
		t.Errorf("cache lookups: hits %d misses %d, want 1 and 1", hits, misses)
	}
	if f.store.Gets() != 2 { // one direct read above, one through the Manager
		t.Errorf("store Gets = %d, want 2", f.store.Gets())
	}

	ended, err := f.m.EndSession(ctx, "4200100", "logout")
	if err != nil || ended == nil || ended.ID != "4200100" {
		t.Fatalf("EndSession: %+v, %v", ended, err)
	}
	if f.obs.EndedTotal("logout") != 1 {
		t.Errorf("SessionEnded(logout) = %d, want 1", f.obs.EndedTotal("logout"))
	}
	if _, err := f.m.Session(ctx, "4200100"); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Fatalf("Session after EndSession: %v, want ErrUnknownSession", err)
	}
	if _, err := f.m.EndSession(ctx, "4200100", "logout"); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Fatalf("second EndSession: %v, want ErrUnknownSession", err)
	}
	if f.obs.EndedTotal("logout") != 1 {
		t.Errorf("SessionEnded(logout) = %d after a second EndSession, want still 1", f.obs.EndedTotal("logout"))
	}
}

func TestStartSessionDuplicateID(t *testing.T) {
	f := newFixture(t)
	f.start(t, "77", []byte("k1"), time.Hour, 0)
	_, err := f.m.StartSession(context.Background(), caddyauth.NewSession{User: f.user(t, 1),
		Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey, ID: "77", Secret: []byte("k2"), Lifetime: time.Hour})
	if !errors.Is(err, caddyauth.ErrExists) {
		t.Fatalf("duplicate StartSession: %v, want ErrExists", err)
	}
	s, err := f.m.Session(context.Background(), "77")
	if err != nil || string(s.Secret) != "k1" {
		t.Fatalf("original session damaged: %v %q", err, s.Secret)
	}
}

// SEC-16: a gateway started with another master key refuses every session
// (fail closed) and does not panic.
func TestWrongMasterKeyFailsClosed_SEC16(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"1", "2", "3"} {
		f.start(t, id, []byte("secret-"+id), time.Hour, 0)
	}
	other, err := caddyauth.NewManager(caddyauth.Config{Store: f.store, Users: f.m.Users(), Hasher: f.hasher,
		Sealer: enginetest.NewSealer(t), Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		s, err := other.Session(ctx, id)
		if !errors.Is(err, caddyauth.ErrUnknownSession) || s != nil {
			t.Errorf("session %s under the wrong key: (%+v, %v), want ErrUnknownSession", id, s, err)
		}
		// The refusal is not cached as a success either.
		if other.Cache().Len() != 0 {
			t.Errorf("cache holds %d entries after refusals", other.Cache().Len())
		}
	}
	// The original manager still opens them: the refusal deleted nothing.
	for _, id := range []string{"1", "2", "3"} {
		if s, err := f.m.Session(ctx, id); err != nil || string(s.Secret) != "secret-"+id {
			t.Errorf("session %s under the right key: %v", id, err)
		}
	}
}

// SEC-16: a sealed secret moved to another session's record does not open.
func TestSealedSecretBoundToID_SEC16(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.start(t, "10", []byte("key-ten"), time.Hour, 0)
	st, err := f.store.Store.GetSession(ctx, "10")
	if err != nil {
		t.Fatal(err)
	}
	moved := st.Clone()
	moved.ID = "11"
	if err := f.store.Store.CreateSession(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Session(ctx, "11"); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Fatalf("session with a secret sealed for another id: %v, want ErrUnknownSession", err)
	}
}

// Absolute deadline, with the fake clock: valid one second before, expired
// at and after it; through the cache and through the store.
func TestSessionAbsoluteDeadline(t *testing.T) {
	for _, warm := range []bool{false, true} {
		f := newFixture(t)
		ctx := context.Background()
		const life = 10 * time.Second // shorter than the cache TTL, so a cached entry sees the deadline
		f.start(t, "5", []byte("k"), life, 0)
		if warm {
			if _, err := f.m.Session(ctx, "5"); err != nil {
				t.Fatal(err)
			}
		}
		f.clock.Set(epoch.Add(life - time.Second))
		if _, err := f.m.Session(ctx, "5"); err != nil {
			t.Fatalf("warm=%v: one second before the deadline: %v", warm, err)
		}
		f.clock.Set(epoch.Add(life - time.Nanosecond))
		if _, err := f.m.Session(ctx, "5"); err != nil {
			t.Fatalf("warm=%v: 1ns before the deadline: %v", warm, err)
		}
		for _, at := range []time.Duration{life, life + time.Nanosecond, life + time.Second, life + time.Hour} {
			f.clock.Set(epoch.Add(at))
			if s, err := f.m.Session(ctx, "5"); !errors.Is(err, caddyauth.ErrSessionExpired) || s != nil {
				t.Fatalf("warm=%v: at deadline+%s: (%v, %v), want ErrSessionExpired", warm, at-life, s, err)
			}
		}
	}

	// A long lifetime: the cache TTL passes many times before the deadline.
	f := newFixture(t)
	f.start(t, "6", []byte("k"), 24*time.Hour, 0)
	f.clock.Set(epoch.Add(24*time.Hour - time.Second))
	if _, err := f.m.Session(context.Background(), "6"); err != nil {
		t.Fatalf("24h-1s: %v", err)
	}
	f.clock.Set(epoch.Add(24 * time.Hour))
	if _, err := f.m.Session(context.Background(), "6"); !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Fatalf("24h: %v, want ErrSessionExpired", err)
	}
}

func TestSessionIdleDeadline(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.start(t, "8", []byte("k"), time.Hour, 10*time.Minute)
	if !s.IdleDeadline.Equal(epoch.Add(10*time.Minute)) || !s.Deadline().Equal(s.IdleDeadline) {
		t.Fatalf("idle deadline %s, deadline %s", s.IdleDeadline, s.Deadline())
	}
	f.clock.Set(epoch.Add(10*time.Minute - time.Second))
	if _, err := f.m.Session(ctx, "8"); err != nil {
		t.Fatalf("idle-1s: %v", err)
	}
	f.clock.Set(epoch.Add(10 * time.Minute))
	if _, err := f.m.Session(ctx, "8"); !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Fatalf("at idle deadline: %v, want ErrSessionExpired", err)
	}
	// The absolute deadline still applies when it comes before the idle one.
	f.clock.Set(epoch)
	s = f.start(t, "9", []byte("k"), 5*time.Minute, 10*time.Minute)
	if !s.Deadline().Equal(epoch.Add(5 * time.Minute)) {
		t.Fatalf("deadline %s, want absolute", s.Deadline())
	}
	f.clock.Set(epoch.Add(5 * time.Minute))
	if _, err := f.m.Session(ctx, "9"); !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Fatalf("at absolute deadline before idle: %v", err)
	}
}

// SEC-10: EndSession evicts the cache, so the ended session is unknown at
// once on this node even though it was cached.
func TestEndSessionEvictsCache_SEC10(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.start(t, "12", []byte("k"), time.Hour, 0)
	if _, err := f.m.Session(ctx, "12"); err != nil {
		t.Fatal(err)
	}
	if f.cache.Len() != 1 {
		t.Fatalf("cache Len = %d after a lookup, want 1", f.cache.Len())
	}
	if _, err := f.m.EndSession(ctx, "12", "revoked"); err != nil {
		t.Fatal(err)
	}
	if f.cache.Len() != 0 {
		t.Fatalf("cache Len = %d after EndSession, want 0", f.cache.Len())
	}
	if _, ok := f.cache.Get("12", f.clock.Now()); ok {
		t.Fatal("ended session still in cache")
	}
	if _, err := f.m.Session(ctx, "12"); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Fatalf("Session after EndSession: %v", err)
	}
	if f.obs.EndedTotal("revoked") != 1 {
		t.Errorf("SessionEnded(revoked) = %d", f.obs.EndedTotal("revoked"))
	}
}

// REL-01: a store that cannot answer is ErrUnavailable, never unknown or
// expired, and never deletes the session.
func TestSessionStoreUnavailable_REL01(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.start(t, "13", []byte("k"), time.Hour, 0)
	f.store.FailGets.Store(true)
	_, err := f.m.Session(ctx, "13")
	if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Fatalf("Session with a failing store: %v, want ErrUnavailable", err)
	}
	if f.obs.StoreErrors("get_session") != 1 {
		t.Errorf("StoreError(get_session) = %d", f.obs.StoreErrors("get_session"))
	}
	if f.store.Deletes.Load() != 0 || f.cache.Len() != 0 {
		t.Fatalf("deletes %d, cache %d after an outage", f.store.Deletes.Load(), f.cache.Len())
	}
	f.store.FailGets.Store(false)
	if _, err := f.m.Session(ctx, "13"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestPurgeExpiredCountsExpired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.start(t, "20", []byte("k"), time.Minute, 0)
	f.start(t, "21", []byte("k"), time.Hour, 2*time.Minute)
	f.start(t, "22", []byte("k"), time.Hour, 0)
	for _, id := range []string{"20", "21", "22"} {
		if _, err := f.m.Session(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	now := epoch.Add(2 * time.Minute) // 20 past absolute, 21 exactly at idle deadline
	n, err := caddyauth.PurgeExpired(ctx, f.store, f.cache, f.obs, now)
	if err != nil || n != 2 {
		t.Fatalf("PurgeExpired = %d, %v; want 2", n, err)
	}
	if f.obs.EndedTotal("expired") != 2 {
		t.Errorf("SessionEnded(expired) = %d, want 2", f.obs.EndedTotal("expired"))
	}
	counts, _ := f.store.CountSessions(ctx)
	if counts[caddyauth.DialectAmatino] != 1 {
		t.Errorf("sessions left: %v, want 1", counts)
	}
	for _, id := range []string{"20", "21"} {
		if _, ok := f.cache.Get(id, epoch); ok {
			t.Errorf("purged session %s still cached", id)
		}
	}
	if _, ok := f.cache.Get("22", epoch); !ok {
		t.Error("live session 22 evicted by purge")
	}
	// Nothing left to purge; nil cache and observer are allowed.
	if n, err := caddyauth.PurgeExpired(ctx, f.store, nil, nil, now); err != nil || n != 0 {
		t.Fatalf("second PurgeExpired = %d, %v", n, err)
	}
}

func TestSeenOnceThroughManager(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.m.SeenOnce(ctx, "k", time.Minute)
	if err != nil || !first {
		t.Fatalf("first SeenOnce = %v, %v", first, err)
	}
	first, err = f.m.SeenOnce(ctx, "k", time.Minute)
	if err != nil || first {
		t.Fatalf("second SeenOnce = %v, %v", first, err)
	}
}

func TestAuditStampsTime(t *testing.T) {
	f := newFixture(t)
	f.m.Audit(caddyauth.Event{Type: "login"})
	if ev := f.obs.Events(); len(ev) != 1 || !ev[0].Time.Equal(epoch) {
		t.Fatalf("events = %+v", ev)
	}
	if f.m.LogHash("42") != f.sealer.LogHash("42") {
		t.Fatal("Manager.LogHash differs from its Sealer's")
	}
}

// gatedStore blocks GetSession until released, once armed.
type gatedStore struct {
	*enginetest.Store
	armed   chan struct{} // closed by the first gated GetSession
	release chan struct{}
	once    sync.Once
}

func (g *gatedStore) GetSession(ctx context.Context, id string) (*caddyauth.Session, error) {
	g.once.Do(func() { close(g.armed) })
	<-g.release
	return g.Store.GetSession(ctx, id)
}

// A caller that joins a store read started before the session's deadline,
// but itself arrives at or after it, is told "expired" (REL-09: the shared
// result of a collapsed miss is checked against each caller's own time).
func TestSessionSharedFillCheckedPerCaller_REL09(t *testing.T) {
	f := newFixture(t)
	f.start(t, "30", []byte("k"), 10*time.Second, 0)
	g := &gatedStore{Store: f.store, armed: make(chan struct{}), release: make(chan struct{})}
	m, err := caddyauth.NewManager(caddyauth.Config{Store: g, Users: f.m.Users(), Hasher: f.hasher, Sealer: f.sealer,
		Cache: caddyauth.NewKeyCache(100, time.Minute), Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	early := make(chan error, 1)
	go func() { _, err := m.Session(ctx, "30"); early <- err }()
	<-g.armed
	f.clock.Set(epoch.Add(10 * time.Second)) // the deadline passes during the read
	late := make(chan error, 1)
	go func() { _, err := m.Session(ctx, "30"); late <- err }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, misses := m.Cache().Stats(); misses == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second caller did not miss")
		}
	}
	time.Sleep(20 * time.Millisecond) // let it reach the shared flight
	close(g.release)
	if err := <-early; err != nil {
		t.Fatalf("caller from before the deadline: %v", err)
	}
	if err := <-late; !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Fatalf("caller from after the deadline: %v, want ErrSessionExpired", err)
	}
}
