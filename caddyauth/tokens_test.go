package caddyauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/bolt"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

// The sxt defaults: access 25 min, refresh 30 min, absolute 24 h.
var sxtLifetimes = caddyauth.TokenLifetimes{Access: 25 * time.Minute, Refresh: 30 * time.Minute, Session: 24 * time.Hour}

func refreshOpts(grace time.Duration) caddyauth.RefreshOptions {
	return caddyauth.RefreshOptions{Access: sxtLifetimes.Access, Refresh: sxtLifetimes.Refresh, Grace: grace}
}

// login starts a token session of user 1 at the fixture's clock.
func (f *fixture) login(t testing.TB) (*caddyauth.Session, *caddyauth.TokenPair) {
	t.Helper()
	s, p, err := f.m.StartTokenSession(context.Background(), f.user(t, 1), caddyauth.DialectSXT, sxtLifetimes)
	if err != nil {
		t.Fatalf("StartTokenSession: %v", err)
	}
	return s, p
}

func (f *fixture) refresh(t testing.TB, tok string, grace time.Duration) *caddyauth.TokenPair {
	t.Helper()
	_, p, err := f.m.RotateRefresh(context.Background(), tok, refreshOpts(grace))
	if err != nil {
		t.Fatalf("RotateRefresh at %s: %v", f.clock.Now().Sub(epoch), err)
	}
	return p
}

func (f *fixture) access(tok string) error {
	_, err := f.m.AccessSession(context.Background(), tok)
	return err
}

// stored reads the session straight from the store.
func (f *fixture) stored(t testing.TB, id string) *caddyauth.Session {
	t.Helper()
	s, err := f.store.GetSession(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	return s
}

// SEC-08: tokens are 32 bytes from crypto/rand, unique, in one canonical
// 43-character form.
func TestBearerTokensSEC08(t *testing.T) {
	const n = 1_000_000
	seen := make(map[string]struct{}, n)
	for range n {
		tok := caddyauth.NewBearerToken()
		if len(tok) != caddyauth.BearerTokenLen {
			t.Fatalf("token of %d characters", len(tok))
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(b) != 32 {
			t.Fatalf("token does not decode to 32 bytes: %d, %v", len(b), err)
		}
		if _, dup := seen[tok]; dup {
			t.Fatalf("duplicate token after %d", len(seen))
		}
		seen[tok] = struct{}{}
	}
}

// SEC-36: what cannot be a token the gateway issued is refused by syntax.
func TestValidBearerToken(t *testing.T) {
	good := caddyauth.NewBearerToken()
	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{"issued", good, true},
		{"empty", "", false},
		{"one short", good[:42], false},
		{"one long", good + "A", false},
		{"padded", good + "=", false},
		{"standard alphabet", strings.Repeat("+", 43), false},
		{"non-canonical tail", good[:42] + "B", false}, // low bits of the last symbol set
		{"NUL", good[:42] + "\x00", false},
		{"non-ASCII", good[:41] + "é", false},
	}
	for _, tt := range tests {
		if got := caddyauth.ValidBearerToken(tt.tok); got != tt.want {
			t.Errorf("%s: ValidBearerToken = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// SEC-08, SEC-16: a token session has a random id unrelated to its tokens,
// and the store holds digests only.
func TestStartTokenSessionStoresDigestsOnly(t *testing.T) {
	f := newFixture(t)
	s, p := f.login(t)
	if !strings.HasPrefix(s.ID, "sxt-") || len(s.ID) != 4+64 {
		t.Errorf("session id %q: want sxt- and 64 hex digits", s.ID)
	}
	if p.Access == p.Refresh || !caddyauth.ValidBearerToken(p.Access) || !caddyauth.ValidBearerToken(p.Refresh) {
		t.Fatalf("bad pair %+v", p)
	}
	st := f.stored(t, s.ID)
	raw, _ := json.Marshal(st)
	for _, secret := range []string{p.Access, p.Refresh} {
		if strings.Contains(string(raw), secret) || strings.Contains(st.ID, caddyauth.TokenDigest(secret)) {
			t.Errorf("stored session reveals a token or derives its id from one: %s", raw)
		}
	}
	if len(st.Tokens) != 2 || st.Tokens[0].Digest != caddyauth.TokenDigest(p.Access) || st.Tokens[0].Kind != caddyauth.TokenAccess ||
		st.Tokens[1].Digest != caddyauth.TokenDigest(p.Refresh) || st.Tokens[1].Kind != caddyauth.TokenRefresh {
		t.Errorf("stored tokens %+v", st.Tokens)
	}
	if !st.AbsoluteDeadline.Equal(epoch.Add(24*time.Hour)) || !st.IdleDeadline.Equal(epoch.Add(30*time.Minute)) ||
		!p.AccessExpires.Equal(epoch.Add(25*time.Minute)) || !p.RefreshExpires.Equal(epoch.Add(30*time.Minute)) {
		t.Errorf("deadlines: session %v/%v, pair %v/%v", st.IdleDeadline, st.AbsoluteDeadline, p.AccessExpires, p.RefreshExpires)
	}
	if f.obs.Created(caddyauth.DialectSXT) != 1 {
		t.Errorf("sessions created: %s", f.obs.Counts())
	}
	_, p2 := f.login(t)
	if p2.Access == p.Access || p2.Refresh == p.Refresh {
		t.Error("two logins share a token (SEC-09)")
	}
}

// SEC-11: the access token lives 25 minutes to the second, while the
// session still refreshes.
func TestAccessLifetimeSEC11(t *testing.T) {
	tests := []struct {
		at      time.Duration
		wantErr error
	}{
		{0, nil},
		{25*time.Minute - time.Second, nil},
		{25 * time.Minute, caddyauth.ErrTokenExpired},
		{25*time.Minute + time.Second, caddyauth.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			f := newFixture(t)
			_, p := f.login(t)
			if err := f.access(p.Access); err != nil { // fills the cache
				t.Fatalf("fresh access token: %v", err)
			}
			f.clock.Advance(tt.at)
			if err := f.access(p.Access); !errors.Is(err, tt.wantErr) {
				t.Fatalf("access at %s: %v, want %v", tt.at, err, tt.wantErr)
			}
			// The session still refreshes, and the new access token works.
			p2 := f.refresh(t, p.Refresh, 0)
			if err := f.access(p2.Access); err != nil {
				t.Fatalf("refreshed access token: %v", err)
			}
		})
	}
}

// SEC-11: the refresh token lives 30 minutes; a session nobody refreshes in
// time ends with it.
func TestRefreshLifetime(t *testing.T) {
	tests := []struct {
		at      time.Duration
		wantErr error
	}{
		{30*time.Minute - time.Second, nil},
		{30 * time.Minute, caddyauth.ErrSessionExpired},
		{30*time.Minute + time.Second, caddyauth.ErrSessionExpired},
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			f := newFixture(t)
			_, p := f.login(t)
			f.clock.Advance(tt.at)
			_, p2, err := f.m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(0))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("refresh at %s: %v, want %v", tt.at, err, tt.wantErr)
			}
			if err == nil && !p2.RefreshExpires.Equal(epoch.Add(tt.at+30*time.Minute)) {
				t.Errorf("new refresh token expires %v", p2.RefreshExpires)
			}
		})
	}
}

// SEC-12: refreshing never moves the absolute deadline: 24 h after login
// the session ends even when refreshed every 20 minutes.
func TestAbsoluteCapSEC12(t *testing.T) {
	f := newFixture(t)
	s, p := f.login(t)
	absolute := epoch.Add(24 * time.Hour)
	for f.clock.Now().Add(20 * time.Minute).Before(epoch.Add(23*time.Hour + 59*time.Minute)) {
		f.clock.Advance(20 * time.Minute)
		p = f.refresh(t, p.Refresh, 0)
	}
	f.clock.Set(epoch.Add(23*time.Hour + 59*time.Minute))
	p = f.refresh(t, p.Refresh, 0)
	if !p.AccessExpires.Equal(absolute) || !p.RefreshExpires.Equal(absolute) {
		t.Errorf("refresh at 23h59m: expiries %v / %v, want both capped at %v", p.AccessExpires, p.RefreshExpires, absolute)
	}
	st := f.stored(t, s.ID)
	if !st.AbsoluteDeadline.Equal(absolute) || st.IdleDeadline.After(absolute) {
		t.Errorf("stored deadlines moved: idle %v absolute %v", st.IdleDeadline, st.AbsoluteDeadline)
	}
	// Rotated refresh tokens past their expiry are pruned: the session
	// does not grow with every refresh.
	if len(st.Tokens) > 4 {
		t.Errorf("session holds %d tokens after a day of refreshes", len(st.Tokens))
	}
	f.clock.Set(absolute.Add(-time.Second))
	if err := f.access(p.Access); err != nil {
		t.Fatalf("access at 24h-1s: %v", err)
	}
	f.clock.Set(absolute.Add(time.Second))
	if err := f.access(p.Access); !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Errorf("access at 24h+1s: %v, want ErrSessionExpired", err)
	}
	if _, _, err := f.m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(0)); !errors.Is(err, caddyauth.ErrSessionExpired) {
		t.Errorf("refresh at 24h+1s: %v, want ErrSessionExpired", err)
	}
}

// SEC-17: a refresh returns a new pair and invalidates the presented refresh
// token and the old access token.
func TestRotationSEC17(t *testing.T) {
	f := newFixture(t)
	s, p1 := f.login(t)
	if err := f.access(p1.Access); err != nil { // cached before the rotation
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	p2 := f.refresh(t, p1.Refresh, 0)
	if p2.Access == p1.Access || p2.Refresh == p1.Refresh {
		t.Fatal("rotation reused a token")
	}
	if err := f.access(p1.Access); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("old access token after rotation: %v, want ErrUnknownSession", err)
	}
	if err := f.access(p2.Access); err != nil {
		t.Errorf("new access token: %v", err)
	}
	st := f.stored(t, s.ID)
	old := st.Token(caddyauth.TokenDigest(p1.Refresh))
	if old == nil || !old.RotatedAt.Equal(epoch.Add(time.Minute)) || old.Successor != nil {
		t.Errorf("rotated token kept as %+v, want retained, marked rotated, no successor with grace 0", old)
	}
	if _, _, err := f.m.RotateRefresh(context.Background(), p1.Refresh, refreshOpts(0)); !errors.Is(err, caddyauth.ErrRefreshReuse) {
		t.Errorf("R1 again: %v, want ErrRefreshReuse", err)
	}
	if n := len(f.obs.EventsOf(caddyauth.EventRefreshReuse)); n != 1 {
		t.Errorf("%d refresh_reuse events", n)
	}
}

// SEC-18: presenting a rotated refresh token ends the whole session: its
// successor and its access token die too, on this node's cache as well; the
// reuse is counted and logged once, without secrets.
func TestReuseRevokesFamilySEC18(t *testing.T) {
	f := newFixture(t)
	s, p1 := f.login(t)
	p2 := f.refresh(t, p1.Refresh, 0)
	if err := f.access(p2.Access); err != nil { // A2 cached
		t.Fatal(err)
	}
	rs, _, err := f.m.RotateRefresh(context.Background(), p1.Refresh, refreshOpts(0))
	if !errors.Is(err, caddyauth.ErrRefreshReuse) {
		t.Fatalf("R1 again: %v, want ErrRefreshReuse", err)
	}
	if rs == nil || rs.ID != s.ID {
		t.Errorf("reuse reports session %v", rs)
	}
	if _, _, err := f.m.RotateRefresh(context.Background(), p2.Refresh, refreshOpts(0)); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("R2 after reuse: %v, want ErrUnknownSession", err)
	}
	if err := f.access(p2.Access); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("A2 after reuse: %v, want ErrUnknownSession", err)
	}
	if _, err := f.store.GetSession(context.Background(), s.ID); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("session still stored: %v", err)
	}
	if got := f.obs.Ended(caddyauth.DialectSXT, "refresh_reuse"); got != 1 {
		t.Errorf("refresh_reuse ends %d: %s", got, f.obs.Counts())
	}
	ev := f.obs.EventsOf(caddyauth.EventRefreshReuse)
	if len(ev) != 1 || ev[0].UserID != 1 || ev[0].SessionHash != f.m.LogHash(s.ID) || ev[0].Dialect != caddyauth.DialectSXT {
		t.Fatalf("reuse events %+v", ev)
	}
	raw, _ := json.Marshal(ev[0])
	for _, secret := range []string{s.ID, p1.Refresh, p2.Refresh, p2.Access} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("audit event carries a secret: %s", raw)
		}
	}
}

// heldUpdates holds every UpdateSession until the gate opens, so a test can
// have a rotation in flight for as long as it needs.
type heldUpdates struct {
	caddyauth.Store
	gate chan struct{}
}

func (g *heldUpdates) UpdateSession(ctx context.Context, id string, fn func(*caddyauth.Session) error) (*caddyauth.Session, error) {
	<-g.gate
	return g.Store.UpdateSession(ctx, id, fn)
}

// storesUnderTest are the stores rotation runs on here: memory and bolt.
func storesUnderTest(t *testing.T) map[string]func(t *testing.T) caddyauth.Store {
	return map[string]func(t *testing.T) caddyauth.Store{
		"memory": func(t *testing.T) caddyauth.Store { return memory.New() },
		"bolt": func(t *testing.T) caddyauth.Store {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{})
			if err != nil {
				t.Fatalf("open bolt: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// managerOn returns a Manager over st with the fixture's users and clock.
func managerOn(t *testing.T, f *fixture, st caddyauth.Store) *caddyauth.Manager {
	t.Helper()
	m, err := caddyauth.NewManager(caddyauth.Config{Store: st, Users: f.m.Users(), Hasher: f.hasher,
		Sealer: f.sealer, Clock: f.clock, Observer: f.obs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// liveRefreshTokens counts the unrotated refresh tokens of session id.
func liveRefreshTokens(t *testing.T, st caddyauth.Store, id string) int {
	t.Helper()
	s, err := st.GetSession(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	n := 0
	for _, tk := range s.Tokens {
		if tk.Kind == caddyauth.TokenRefresh && tk.RotatedAt.IsZero() {
			n++
		}
	}
	return n
}

// SEC-19: 50 concurrent refreshes of one token on one node: exactly one
// gets a new pair, 49 are refused without ending the session, and the
// session holds exactly one live refresh token. The winner is held inside
// the store until the 49 losers have answered, so the race is certain.
func TestConcurrentRefreshSEC19(t *testing.T) {
	for name, open := range storesUnderTest(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			g := &heldUpdates{Store: open(t), gate: make(chan struct{})}
			m := managerOn(t, f, g)
			s, p, err := m.StartTokenSession(context.Background(), f.user(t, 1), caddyauth.DialectSXT, sxtLifetimes)
			if err != nil {
				t.Fatal(err)
			}

			type result struct {
				p   *caddyauth.TokenPair
				err error
			}
			results := make(chan result, 50)
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					_, np, err := m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(0))
					results <- result{np, err}
				})
			}
			for range 49 {
				select {
				case r := <-results:
					if !errors.Is(r.err, caddyauth.ErrRefreshInProgress) {
						t.Fatalf("loser: %v, want ErrRefreshInProgress", r.err)
					}
				case <-time.After(time.Minute): // hang guard: losers must not wait for the winner
					close(g.gate)
					t.Fatal("concurrent refreshes waited for the one in flight")
				}
			}
			close(g.gate)
			wg.Wait()
			win := <-results
			if win.err != nil {
				t.Fatalf("winner: %v", win.err)
			}
			if n := liveRefreshTokens(t, g, s.ID); n != 1 {
				t.Errorf("%d live refresh tokens, want 1", n)
			}
			if _, err := m.AccessSession(context.Background(), win.p.Access); err != nil {
				t.Errorf("winner's access token: %v", err)
			}
			if f.obs.EndedTotal("refresh_reuse") != 0 {
				t.Errorf("a concurrent loser ended the session: %s", f.obs.Counts())
			}
		})
	}
}

// SEC-19: two nodes sharing a store race one refresh token. The store's
// compare-and-swap lets one rotate; the other sees a rotated token: with
// grace 0 that is reuse and ends the session, with a grace it gets the
// identical pair. Never are two different pairs issued.
func TestTwoNodeRefreshRace(t *testing.T) {
	for name, open := range storesUnderTest(t) {
		for _, grace := range []time.Duration{0, 10 * time.Second} {
			t.Run(name+"/grace "+grace.String(), func(t *testing.T) {
				f := newFixture(t)
				st := open(t)
				nodes := []*caddyauth.Manager{managerOn(t, f, st), managerOn(t, f, st)}
				s, p, err := nodes[0].StartTokenSession(context.Background(), f.user(t, 1), caddyauth.DialectSXT, sxtLifetimes)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				pairs := make([]*caddyauth.TokenPair, 2)
				errs := make([]error, 2)
				for i, m := range nodes {
					wg.Go(func() { _, pairs[i], errs[i] = m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(grace)) })
				}
				wg.Wait()
				var issued []*caddyauth.TokenPair
				for i := range 2 {
					switch {
					case errs[i] == nil:
						issued = append(issued, pairs[i])
					case grace > 0 || !errors.Is(errs[i], caddyauth.ErrRefreshReuse):
						t.Errorf("node %d: %v", i, errs[i])
					}
				}
				switch {
				case grace > 0 && (len(issued) != 2 || *issued[0] != *issued[1]):
					t.Errorf("with grace: pairs %+v, want the identical pair twice", issued)
				case grace == 0 && len(issued) != 1:
					t.Errorf("without grace: %d pairs issued, want 1 (the other is reuse)", len(issued))
				}
				if grace == 0 {
					if _, err := st.GetSession(context.Background(), s.ID); !errors.Is(err, caddyauth.ErrNotFound) {
						t.Errorf("reuse without grace kept the session: %v", err)
					}
				}
			})
		}
	}
}

// SEC-19: with a grace of 10 s, a retry at 5 s returns the identical pair
// (sealed at rest, SEC-16), and a retry at 11 s is reuse.
func TestRefreshGraceSEC19(t *testing.T) {
	f := newFixture(t)
	s, p1 := f.login(t)
	p2 := f.refresh(t, p1.Refresh, 10*time.Second)
	st := f.stored(t, s.ID)
	succ := st.Token(caddyauth.TokenDigest(p1.Refresh)).Successor
	if len(succ) == 0 || strings.Contains(string(succ), p2.Refresh) || strings.Contains(string(succ), p2.Access) {
		t.Fatalf("successor kept as %q: want sealed", succ)
	}
	f.clock.Advance(5 * time.Second)
	again := f.refresh(t, p1.Refresh, 10*time.Second)
	if *again != *p2 {
		t.Fatalf("retry at 5s: %+v, want the identical %+v", again, p2)
	}
	if err := f.access(p2.Access); err != nil {
		t.Errorf("A2 after the retry: %v", err)
	}
	f.clock.Advance(6 * time.Second) // 11 s after the rotation
	if _, _, err := f.m.RotateRefresh(context.Background(), p1.Refresh, refreshOpts(10*time.Second)); !errors.Is(err, caddyauth.ErrRefreshReuse) {
		t.Fatalf("retry at 11s: %v, want ErrRefreshReuse", err)
	}
	if err := f.access(p2.Access); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("A2 after reuse: %v, want ErrUnknownSession", err)
	}
}

// A retry within the grace whose pair was already used is reuse: the grace
// covers a lost answer, not a second client.
func TestRefreshGraceAfterSuccessorUsed(t *testing.T) {
	f := newFixture(t)
	_, p1 := f.login(t)
	p2 := f.refresh(t, p1.Refresh, 10*time.Second)
	f.refresh(t, p2.Refresh, 10*time.Second)
	if _, _, err := f.m.RotateRefresh(context.Background(), p1.Refresh, refreshOpts(10*time.Second)); !errors.Is(err, caddyauth.ErrRefreshReuse) {
		t.Fatalf("R1 after R2 was used: %v, want ErrRefreshReuse", err)
	}
}

// A refresh token is never an access token, rotated or not; an access token
// refreshes only when the option says so.
func TestTokenKinds(t *testing.T) {
	f := newFixture(t)
	_, p1 := f.login(t)
	if err := f.access(p1.Refresh); !errors.Is(err, caddyauth.ErrTokenKind) {
		t.Errorf("refresh token as access: %v, want ErrTokenKind", err)
	}
	if _, _, err := f.m.RotateRefresh(context.Background(), p1.Access, refreshOpts(0)); !errors.Is(err, caddyauth.ErrTokenKind) {
		t.Errorf("access token on refresh, option off: %v, want ErrTokenKind", err)
	}
	p2 := f.refresh(t, p1.Refresh, 0)
	if err := f.access(p1.Refresh); !errors.Is(err, caddyauth.ErrTokenKind) {
		t.Errorf("rotated refresh token as access: %v, want ErrTokenKind", err)
	}

	o := refreshOpts(0)
	o.AcceptAccessToken = true
	_, p3, err := f.m.RotateRefresh(context.Background(), p2.Access, o)
	if err != nil {
		t.Fatalf("access token on refresh, option on: %v", err)
	}
	if err := f.access(p2.Access); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("A2 after it refreshed: %v, want ErrUnknownSession", err)
	}
	if err := f.access(p3.Access); err != nil {
		t.Errorf("A3: %v", err)
	}
	// R2 was rotated along: presenting it now is reuse.
	if _, _, err := f.m.RotateRefresh(context.Background(), p2.Refresh, o); !errors.Is(err, caddyauth.ErrRefreshReuse) {
		t.Errorf("R2 after A2 refreshed: %v, want ErrRefreshReuse", err)
	}
}

// SEC-10: logout ends the session, access and refresh tokens alike, even
// where the access token was cached.
func TestLogoutEndsTokensSEC10(t *testing.T) {
	f := newFixture(t)
	s, p := f.login(t)
	if err := f.access(p.Access); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.EndSession(context.Background(), s.ID, "logout"); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if err := f.access(p.Access); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("access after logout: %v", err)
	}
	if _, _, err := f.m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(0)); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Errorf("refresh after logout: %v", err)
	}
	if f.obs.Ended(caddyauth.DialectSXT, "logout") != 1 {
		t.Errorf("ends: %s", f.obs.Counts())
	}
}

// Proxied lookups go through the key cache: a burst costs one store read.
// Malformed tokens never reach it (SEC-36).
func TestAccessSessionCache(t *testing.T) {
	f := newFixture(t)
	_, p := f.login(t)
	before := f.store.Gets()
	for range 5 {
		if err := f.access(p.Access); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.store.Gets() - before; got != 1 {
		t.Errorf("%d store reads for 5 lookups, want 1", got)
	}
	if hits, _ := f.obs.CacheLookups(); hits != 4 {
		t.Errorf("%d cache hits, want 4", hits)
	}
	before = f.store.Gets()
	for _, bad := range []string{"", "x", strings.Repeat("A", 10_000), p.Access[:42] + "\x00", "../" + p.Access[3:]} {
		if err := f.access(bad); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("malformed token: %v", err)
		}
		if _, _, err := f.m.RotateRefresh(context.Background(), bad, refreshOpts(0)); !errors.Is(err, caddyauth.ErrUnknownSession) {
			t.Errorf("malformed refresh token: %v", err)
		}
	}
	if f.store.Gets() != before {
		t.Error("a malformed token reached the store")
	}
}

// REL-01: a store that cannot answer is ErrUnavailable, never "unknown",
// and a failed rotation changes nothing.
func TestTokenStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	_, p := f.login(t)
	f.store.FailTokenGets.Store(true)
	if err := f.access(p.Access); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("access with the store down: %v", err)
	}
	if _, _, err := f.m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(0)); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("refresh with the store down: %v", err)
	}
	f.store.FailTokenGets.Store(false)
	f.store.FailUpdates.Store(true)
	if _, _, err := f.m.RotateRefresh(context.Background(), p.Refresh, refreshOpts(0)); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("refresh with updates failing: %v", err)
	}
	f.store.FailUpdates.Store(false)
	if err := f.access(p.Access); err != nil {
		t.Errorf("access after the outage: %v", err)
	}
	f.refresh(t, p.Refresh, 0) // the failed rotation left the token unused
	f.store.FailCreates.Store(true)
	if _, _, err := f.m.StartTokenSession(context.Background(), f.user(t, 1), caddyauth.DialectSXT, sxtLifetimes); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("login with the store down: %v", err)
	}
	if f.obs.StoreErrors("session_by_token") == 0 || f.obs.StoreErrors("update_session") == 0 {
		t.Errorf("store errors not counted: %s", f.obs.Counts())
	}
}

// Bad lifetimes are refused rather than issuing tokens that are born dead.
func TestTokenLifetimesRequired(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.m.StartTokenSession(context.Background(), f.user(t, 1), caddyauth.DialectSXT, caddyauth.TokenLifetimes{}); err == nil {
		t.Error("StartTokenSession accepted zero lifetimes")
	}
	_, p := f.login(t)
	if _, _, err := f.m.RotateRefresh(context.Background(), p.Refresh, caddyauth.RefreshOptions{}); err == nil {
		t.Error("RotateRefresh accepted zero lifetimes")
	}
	if f.store.Updates.Load() != 0 {
		t.Error("a refused rotation reached the store")
	}
}
