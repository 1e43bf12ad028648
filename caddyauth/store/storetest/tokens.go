package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// errSentinel is what the suite's fn callbacks return, to check that
// UpdateSession and UpdateUser hand a caller's error back unwrapped.
var errSentinel = errors.New("storetest: sentinel from fn")

// NewTokenSession returns an sxt session (see NewSession) holding an access
// and a refresh token, with digests derived from id so that sessions built
// with different ids never share one.
func NewTokenSession(id string, userID int64, now time.Time) *caddyauth.Session {
	s := NewSession(id, userID, caddyauth.DialectSXT, now)
	s.Tokens = []caddyauth.Token{
		{Digest: Digest(id + "/access"), Kind: caddyauth.TokenAccess, Expires: now.Add(15 * time.Minute)},
		{Digest: Digest(id + "/refresh"), Kind: caddyauth.TokenRefresh, Expires: now.Add(AbsoluteTimeout)},
	}
	return s
}

func mustByToken(t *testing.T, st caddyauth.Store, digest string) *caddyauth.Session {
	t.Helper()
	got, err := st.SessionByToken(t.Context(), digest)
	if err != nil {
		t.Fatalf("SessionByToken(%.12s…): %v", digest, err)
	}
	if got == nil {
		t.Fatalf("SessionByToken(%.12s…) returned nil, nil", digest)
	}
	return got
}

func checkTokenNotFound(t *testing.T, st caddyauth.Store, digest string) {
	t.Helper()
	got, err := st.SessionByToken(t.Context(), digest)
	if !errors.Is(err, caddyauth.ErrNotFound) {
		id := ""
		if got != nil {
			id = got.ID
		}
		t.Errorf("SessionByToken(%.12s…) = %q, %v; want ErrNotFound", digest, id, err)
	}
}

// checkByEveryToken checks that each of want's digests finds want.
func checkByEveryToken(t *testing.T, st caddyauth.Store, what string, want *caddyauth.Session) {
	t.Helper()
	for _, tk := range want.Tokens {
		checkEqual(t, fmt.Sprintf("%s: SessionByToken(%s)", what, tk.Kind), want, mustByToken(t, st, tk.Digest))
	}
}

func testTokensRoundTrip(t *testing.T, st caddyauth.Store) {
	zone := time.FixedZone("UTC-3:30", -(3*3600 + 1800))
	now := time.Now() // monotonic reading and the Local zone
	tests := []struct {
		name string
		s    func() *caddyauth.Session
	}{
		{"access and refresh", func() *caddyauth.Session {
			return NewTokenSession("tok-basic", 7, Epoch)
		}},
		{"one token", func() *caddyauth.Session {
			s := NewTokenSession("tok-one", 7, Epoch)
			s.Tokens = s.Tokens[1:]
			return s
		}},
		{"non-UTC and monotonic times", func() *caddyauth.Session {
			s := NewTokenSession("tok-zones", 7, now)
			s.Tokens[0].Expires = now.Add(time.Minute).In(zone)
			s.Tokens[1].Expires = now.Add(time.Hour).Local()
			s.Tokens[1].RotatedAt = now.In(zone)
			return s
		}},
		{"rotated with successor", func() *caddyauth.Session {
			s := NewTokenSession("tok-rotated", 7, Epoch)
			s.Tokens[1].RotatedAt = Epoch.Add(time.Second + 1)
			s.Tokens[1].Successor = []byte("sealed pair \x00\xff")
			s.Tokens = append(s.Tokens,
				caddyauth.Token{Digest: Digest("tok-rotated/access2"), Kind: caddyauth.TokenAccess, Expires: Epoch.Add(16 * time.Minute)},
				caddyauth.Token{Digest: Digest("tok-rotated/refresh2"), Kind: caddyauth.TokenRefresh, Expires: Epoch.Add(AbsoluteTimeout)},
			)
			return s
		}},
		{"empty non-nil successor", func() *caddyauth.Session {
			s := NewTokenSession("tok-empty-successor", 7, Epoch)
			s.Tokens[1].RotatedAt = Epoch
			s.Tokens[1].Successor = []byte{}
			return s
		}},
		{"large successor", func() *caddyauth.Session {
			s := NewTokenSession("tok-large-successor", 7, Epoch)
			s.Tokens[1].Successor = make([]byte, 2048)
			for i := range s.Tokens[1].Successor {
				s.Tokens[1].Successor[i] = byte(i * 13)
			}
			return s
		}},
		{"zero and extreme expiry", func() *caddyauth.Session {
			s := NewTokenSession("tok-extreme", 7, Epoch)
			s.Tokens[0].Expires = time.Time{}
			s.Tokens[1].Expires = time.Date(2500, time.January, 1, 0, 0, 0, 3, time.UTC)
			s.Tokens[1].RotatedAt = time.Date(1960, time.January, 1, 0, 0, 0, 5, time.UTC)
			return s
		}},
		{"many tokens", func() *caddyauth.Session {
			s := NewTokenSession("tok-many", 7, Epoch)
			for i := range 40 {
				s.Tokens = append(s.Tokens, caddyauth.Token{
					Digest: Digest(fmt.Sprintf("tok-many/%d", i)), Kind: caddyauth.TokenRefresh,
					Expires: Epoch.Add(time.Duration(i) * time.Minute), RotatedAt: Epoch.Add(time.Duration(i) * time.Second),
				})
			}
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.s()
			mustCreate(t, st, want)
			checkEqual(t, "GetSession", want, mustGet(t, st, want.ID))
			checkByEveryToken(t, st, "round trip", want)
		})
	}
	t.Run("nil successor stays nil", func(t *testing.T) {
		got := mustGet(t, st, "tok-basic")
		for i, tk := range got.Tokens {
			if tk.Successor != nil {
				t.Errorf("Tokens[%d]: nil Successor came back as %d bytes", i, len(tk.Successor))
			}
		}
	})
	t.Run("unknown digests", func(t *testing.T) {
		known := Digest("tok-basic/access")
		// Neighbours of a stored digest must not match it, nor may a
		// session id.
		for _, d := range []string{"", Digest("never issued"), known[:63], known + "0", strings.ToUpper(known), "tok-basic", "TOK-BASIC"} {
			checkTokenNotFound(t, st, d)
		}
	})
	t.Run("session without tokens", func(t *testing.T) {
		s := NewSession("tok-none", 7, caddyauth.DialectSXT, Epoch)
		mustCreate(t, st, s)
		got := mustGet(t, st, s.ID)
		checkEqual(t, "GetSession", s, got)
		if len(got.Tokens) != 0 {
			t.Errorf("session without tokens came back with %d", len(got.Tokens))
		}
	})
}

func testTokensReturnCopies(t *testing.T, st caddyauth.Store) {
	ref := NewTokenSession("tok-copy", 7, Epoch)
	ref.Tokens[1].Successor = []byte("successor")

	in := ref.Clone()
	if err := st.CreateSession(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	// Mutating Create's argument must not reach the store.
	in.Tokens[0].Digest = Digest("mutated")
	in.Tokens[1].Successor[0] ^= 0xff
	in.Tokens[1].RotatedAt = Epoch
	checkEqual(t, "after mutating Create's argument", ref, mustGet(t, st, ref.ID))
	checkTokenNotFound(t, st, Digest("mutated"))

	for _, read := range []struct {
		name string
		get  func() *caddyauth.Session
	}{
		{"GetSession", func() *caddyauth.Session { return mustGet(t, st, ref.ID) }},
		{"SessionByToken", func() *caddyauth.Session { return mustByToken(t, st, ref.Tokens[0].Digest) }},
	} {
		got := read.get()
		got.Tokens[0].Digest = Digest("mutated")
		got.Tokens[0].Expires = time.Time{}
		got.Tokens[1].Successor[0] ^= 0xff
		got.Tokens = append(got.Tokens, caddyauth.Token{Digest: Digest("appended"), Kind: caddyauth.TokenAccess})
		checkEqual(t, "after mutating the result of "+read.name, ref, mustGet(t, st, ref.ID))
		checkTokenNotFound(t, st, Digest("appended"))

		// Two reads must not share token memory.
		a, b := read.get(), read.get()
		a.Tokens[1].Successor[1] ^= 0xff
		a.Tokens[0].Kind = caddyauth.TokenRefresh
		checkEqual(t, "a second "+read.name+" result", ref, b)
	}
}

func testCreateTokenCollision(t *testing.T, st caddyauth.Store) {
	holder := NewTokenSession("tok-holder", 7, Epoch)
	mustCreate(t, st, holder)

	// Another session listing one of holder's digests, among fresh ones.
	intruder := NewTokenSession("tok-intruder", 8, Epoch)
	intruder.Tokens = append(intruder.Tokens, holder.Tokens[1])
	if err := st.CreateSession(t.Context(), intruder.Clone()); !errors.Is(err, caddyauth.ErrExists) {
		t.Fatalf("CreateSession with another session's token = %v, want ErrExists", err)
	}
	// Nothing of the refused session was written: not the record, not its
	// fresh tokens, not the count, and the contested digest still finds
	// its holder.
	checkNotFound(t, st, intruder.ID)
	checkTokenNotFound(t, st, intruder.Tokens[0].Digest)
	checkTokenNotFound(t, st, intruder.Tokens[1].Digest)
	checkByEveryToken(t, st, "holder", holder)
	if list, err := st.ListUserSessions(t.Context(), 8); err != nil || len(list) != 0 {
		t.Errorf("ListUserSessions(8) = %q, %v; want empty", IDs(list), err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{caddyauth.DialectSXT: 1})

	// Without the contested digest it is accepted.
	intruder.Tokens = intruder.Tokens[:2]
	mustCreate(t, st, intruder)
	checkByEveryToken(t, st, "intruder", intruder)
	checkByEveryToken(t, st, "holder", holder)
}

func testUpdateSession(t *testing.T, st caddyauth.Store) {
	ctx := t.Context()
	ref := NewTokenSession("upd", 7, Epoch)
	ref.Tokens[1].Successor = []byte("old successor")
	other := NewTokenSession("upd-other", 8, Epoch)
	// Later than every deadline ref gets below, so purges there spare it.
	other.IdleDeadline = Epoch.Add(3 * time.Hour)
	mustCreate(t, st, ref)
	mustCreate(t, st, other)

	// checkUnchanged verifies that a refused update wrote nothing: the
	// record and every token of both sessions are as they were.
	checkUnchanged := func(t *testing.T, what string) {
		t.Helper()
		checkEqual(t, what+": session", ref, mustGet(t, st, ref.ID))
		checkByEveryToken(t, st, what, ref)
		checkByEveryToken(t, st, what+" (other)", other)
	}

	refused := []struct {
		name string
		fn   func(*caddyauth.Session) error
		// check inspects the error; the write must be refused either way.
		check func(t *testing.T, err error)
	}{
		{"fn error is returned unwrapped", func(s *caddyauth.Session) error {
			// Mutate first: none of it may be written.
			s.LastSeen = Epoch.Add(time.Hour)
			s.Secret = []byte("x")
			s.Tokens[1].Successor[0] ^= 0xff
			s.Tokens[1].RotatedAt = Epoch.Add(time.Hour)
			s.Tokens = append(s.Tokens, caddyauth.Token{Digest: Digest("upd/fn-error"), Kind: caddyauth.TokenAccess})
			return errSentinel
		}, func(t *testing.T, err error) {
			if err != errSentinel { //nolint:errorlint // the contract is "unwrapped"
				t.Errorf("UpdateSession = %v, want the sentinel itself", err)
			}
			if !errors.Is(err, errSentinel) {
				t.Errorf("UpdateSession = %v, not errors.Is the sentinel", err)
			}
		}},
		{"ID change", func(s *caddyauth.Session) error { s.ID = "upd-renamed"; return nil }, nil},
		{"UserID change", func(s *caddyauth.Session) error { s.UserID = 8; return nil }, nil},
		{"Dialect change", func(s *caddyauth.Session) error { s.Dialect = caddyauth.DialectAmatino; return nil }, nil},
		{"token of another session", func(s *caddyauth.Session) error {
			s.LastSeen = Epoch.Add(time.Hour)
			s.Tokens = append(s.Tokens[:1],
				caddyauth.Token{Digest: Digest("upd/fresh"), Kind: caddyauth.TokenRefresh, Expires: Epoch.Add(time.Hour)},
				other.Tokens[0])
			return nil
		}, func(t *testing.T, err error) {
			if !errors.Is(err, caddyauth.ErrExists) {
				t.Errorf("UpdateSession = %v, want ErrExists", err)
			}
		}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.UpdateSession(ctx, ref.ID, tc.fn)
			if err == nil {
				t.Fatalf("UpdateSession succeeded (%v), want a refusal", Diff(ref, got))
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			checkUnchanged(t, "after a refused update")
			checkNotFound(t, st, "upd-renamed")
			checkTokenNotFound(t, st, Digest("upd/fn-error"))
			checkTokenNotFound(t, st, Digest("upd/fresh"))
			if list, err := st.ListUserSessions(ctx, 8); err != nil || len(list) != 1 {
				t.Errorf("ListUserSessions(8) = %q, %v; want [upd-other]", IDs(list), err)
			}
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		called := false
		got, err := st.UpdateSession(ctx, "upd-ghost", func(*caddyauth.Session) error { called = true; return nil })
		if !errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("UpdateSession(unknown) = %v, %v; want ErrNotFound", got != nil, err)
		}
		if called {
			t.Error("fn was called for an unknown session")
		}
		checkNotFound(t, st, "upd-ghost")
	})

	t.Run("rotation", func(t *testing.T) {
		zone := time.FixedZone("UTC+9", 9*3600)
		want := ref.Clone()
		want.LastSeen = Epoch.Add(time.Minute)
		want.Tokens = []caddyauth.Token{
			// The old access token is dropped, the refresh token retained
			// as rotated, and a new pair appended.
			want.Tokens[1],
			{Digest: Digest("upd/access2"), Kind: caddyauth.TokenAccess, Expires: Epoch.Add(16 * time.Minute)},
			{Digest: Digest("upd/refresh2"), Kind: caddyauth.TokenRefresh, Expires: Epoch.Add(AbsoluteTimeout)},
		}
		want.Tokens[0].RotatedAt = Epoch.Add(time.Minute)
		want.Tokens[0].Successor = []byte("new successor")

		var seen *caddyauth.Session
		got, err := st.UpdateSession(ctx, ref.ID, func(s *caddyauth.Session) error {
			checkEqual(t, "fn's argument", ref, s)
			seen = s
			old := s.Token(ref.Tokens[1].Digest)
			if old == nil {
				return errSentinel // reported by checkEqual above
			}
			r := *old
			s.LastSeen = want.LastSeen.In(zone)
			r.RotatedAt = want.Tokens[0].RotatedAt.In(zone)
			r.Successor = []byte("new successor")
			s.Tokens = []caddyauth.Token{r, want.Tokens[1], want.Tokens[2]}
			s.Tokens[1].Expires = s.Tokens[1].Expires.In(zone)
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateSession: %v", err)
		}
		checkEqual(t, "UpdateSession result", want, got)
		checkEqual(t, "GetSession after update", want, mustGet(t, st, ref.ID))
		checkByEveryToken(t, st, "after rotation", want)
		checkTokenNotFound(t, st, ref.Tokens[0].Digest)
		checkByEveryToken(t, st, "other", other)

		// Neither fn's argument nor the result is the stored value.
		seen.Tokens[0].Successor[0] ^= 0xff
		seen.LastSeen = time.Time{}
		got.Tokens[0].Successor[1] ^= 0xff
		got.Tokens = got.Tokens[:1]
		checkEqual(t, "after mutating fn's argument and the result", want, mustGet(t, st, ref.ID))
		ref = want
	})

	t.Run("a removed digest can move to another session", func(t *testing.T) {
		moved := ref.Tokens[1]
		if _, err := st.UpdateSession(ctx, ref.ID, func(s *caddyauth.Session) error {
			s.Tokens = append(s.Tokens[:1], s.Tokens[2:]...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ref.Tokens = append(ref.Tokens[:1:1], ref.Tokens[2:]...)
		checkTokenNotFound(t, st, moved.Digest)
		got, err := st.UpdateSession(ctx, other.ID, func(s *caddyauth.Session) error {
			s.Tokens = append(s.Tokens, moved)
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateSession adding a freed digest: %v", err)
		}
		other.Tokens = append(other.Tokens, moved)
		checkEqual(t, "UpdateSession result", other, got)
		checkByEveryToken(t, st, "other", other)
		checkByEveryToken(t, st, "ref", ref)
	})

	t.Run("no-op update", func(t *testing.T) {
		got, err := st.UpdateSession(ctx, ref.ID, func(*caddyauth.Session) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		checkEqual(t, "result of a no-op update", ref, got)
		checkUnchanged(t, "after a no-op update")
	})

	t.Run("deadlines follow", func(t *testing.T) {
		// PurgeExpired works from Deadline(), so a moved deadline must be
		// what it sees: here the idle deadline moves later, then earlier.
		oldIdle := ref.IdleDeadline
		later := oldIdle.Add(time.Hour)
		if _, err := st.UpdateSession(ctx, ref.ID, func(s *caddyauth.Session) error { s.IdleDeadline = later; return nil }); err != nil {
			t.Fatal(err)
		}
		ref.IdleDeadline = later
		if got, err := st.PurgeExpired(ctx, oldIdle); err != nil || len(got) != 0 {
			t.Fatalf("PurgeExpired(old idle deadline) = %q, %v; want nothing", IDs(got), err)
		}
		earlier := Epoch.Add(time.Minute)
		if _, err := st.UpdateSession(ctx, ref.ID, func(s *caddyauth.Session) error { s.IdleDeadline = earlier; return nil }); err != nil {
			t.Fatal(err)
		}
		ref.IdleDeadline = earlier
		got, err := st.PurgeExpired(ctx, earlier)
		if err != nil {
			t.Fatal(err)
		}
		checkSet(t, "PurgeExpired(new idle deadline)", []*caddyauth.Session{ref}, got)
		for _, tk := range ref.Tokens {
			checkTokenNotFound(t, st, tk.Digest)
		}
		checkByEveryToken(t, st, "other", other)
	})
}

// testRotationRace is SEC-19 at the store level: of concurrent exchanges of
// one refresh token, exactly one rotates it. Run it with -race.
func testRotationRace(t *testing.T, st caddyauth.Store) {
	const n = 50
	ref := NewTokenSession("race", 7, Epoch)
	refresh := ref.Tokens[1].Digest
	mustCreate(t, st, ref)

	rotate := func(g int) func(*caddyauth.Session) error {
		return func(s *caddyauth.Session) error {
			r := s.Token(refresh)
			if r == nil || !r.RotatedAt.IsZero() {
				return errSentinel
			}
			r.RotatedAt = Epoch.Add(time.Duration(g+1) * time.Second)
			r.Successor = fmt.Appendf(nil, "successor of %d", g)
			s.Tokens = append(s.Tokens, caddyauth.Token{
				Digest: Digest(fmt.Sprintf("race/refresh/%d", g)), Kind: caddyauth.TokenRefresh, Expires: Epoch.Add(AbsoluteTimeout),
			})
			return nil
		}
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
		got   = make([]*caddyauth.Session, n)
	)
	for g := range n {
		wg.Go(func() {
			<-start
			got[g], errs[g] = st.UpdateSession(context.Background(), ref.ID, rotate(g))
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for g, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both rotated the refresh token", winner, g)
		case err == nil:
			winner = g
		case err != errSentinel: //nolint:errorlint // the contract is "unwrapped"
			t.Errorf("UpdateSession #%d = %v, want nil or the sentinel", g, err)
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine rotated the refresh token")
	}
	want := ref.Clone()
	if err := rotate(winner)(want); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "the winner's result", want, got[winner])
	stored := mustGet(t, st, ref.ID)
	checkEqual(t, "GetSession after the race", want, stored)
	unrotated := 0
	for _, tk := range stored.Tokens {
		if tk.Kind == caddyauth.TokenRefresh && tk.RotatedAt.IsZero() {
			unrotated++
		}
	}
	if unrotated != 1 {
		t.Errorf("%d unrotated refresh tokens after the race, want exactly 1", unrotated)
	}
	// Only the winner's new token was indexed.
	for g := range n {
		d := Digest(fmt.Sprintf("race/refresh/%d", g))
		if g == winner {
			checkEqual(t, "SessionByToken(winner's token)", want, mustByToken(t, st, d))
		} else {
			checkTokenNotFound(t, st, d)
		}
	}
}

func testTokenIndexDropped(t *testing.T, st caddyauth.Store) {
	ctx := t.Context()
	mk := func(id string, uid int64) *caddyauth.Session {
		s := NewTokenSession(id, uid, Epoch)
		// A rotated token too: retained tokens are indexed like live ones.
		s.Tokens[1].RotatedAt = Epoch.Add(time.Second)
		s.Tokens = append(s.Tokens, caddyauth.Token{Digest: Digest(id + "/refresh2"), Kind: caddyauth.TokenRefresh, Expires: Epoch.Add(time.Hour)})
		return s
	}
	removals := []struct {
		name   string
		remove func(t *testing.T, s *caddyauth.Session)
	}{
		{"DeleteSession", func(t *testing.T, s *caddyauth.Session) {
			got, err := st.DeleteSession(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkEqual(t, "DeleteSession result", s, got)
		}},
		{"DeleteUserSessions", func(t *testing.T, s *caddyauth.Session) {
			got, err := st.DeleteUserSessions(ctx, s.UserID)
			if err != nil {
				t.Fatal(err)
			}
			checkSet(t, "DeleteUserSessions result", []*caddyauth.Session{s}, got)
		}},
		{"PurgeExpired", func(t *testing.T, s *caddyauth.Session) {
			got, err := st.PurgeExpired(ctx, s.Deadline())
			if err != nil {
				t.Fatal(err)
			}
			checkSet(t, "PurgeExpired result", []*caddyauth.Session{s}, got)
		}},
	}
	for i, tc := range removals {
		t.Run(tc.name, func(t *testing.T) {
			uid := int64(100 + i)
			s := mk("drop-"+tc.name, uid)
			// A bystander with a later deadline, of another user, must keep
			// its tokens.
			bystander := mk("keep-"+tc.name, uid+50)
			bystander.IdleDeadline = bystander.IdleDeadline.Add(time.Hour)
			mustCreate(t, st, s)
			mustCreate(t, st, bystander)
			checkByEveryToken(t, st, "before removal", s)

			tc.remove(t, s)
			for _, tk := range s.Tokens {
				checkTokenNotFound(t, st, tk.Digest)
			}
			checkByEveryToken(t, st, "bystander", bystander)

			// The digests are free again: a new session may hold them.
			reuse := NewSession("reuse-"+tc.name, uid, caddyauth.DialectSXT, Epoch.Add(time.Hour))
			reuse.Tokens = s.Clone().Tokens
			mustCreate(t, st, reuse)
			checkByEveryToken(t, st, "reusing session", reuse)
		})
	}
}
