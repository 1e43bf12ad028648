package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
	"github.com/sessiongate/sessiongate/caddyauth/store/storetest"
)

// callBound is how long a call to a stalled Redis may take before the test
// calls it hung. The real bound is a timeout or two (500 ms each); this one
// is generous because the machine is shared, and it asserts "returns", not
// "returns fast".
const callBound = 5 * time.Second

// everyMethod lists one call of each store method, returning its error.
func everyMethod(st *Store, sess *caddyauth.Session) []struct {
	name string
	call func(ctx context.Context) error
} {
	digest := sess.Tokens[0].Digest
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreateSession", func(ctx context.Context) error {
			return st.CreateSession(ctx, storetest.NewSession("new", 1, caddyauth.DialectAmatino, storetest.Epoch))
		}},
		{"GetSession", func(ctx context.Context) error { _, err := st.GetSession(ctx, sess.ID); return err }},
		{"TouchSession", func(ctx context.Context) error {
			return st.TouchSession(ctx, sess.ID, time.Now(), time.Now().Add(time.Hour))
		}},
		{"DeleteSession", func(ctx context.Context) error { _, err := st.DeleteSession(ctx, sess.ID); return err }},
		{"DeleteUserSessions", func(ctx context.Context) error { _, err := st.DeleteUserSessions(ctx, sess.UserID); return err }},
		{"ListUserSessions", func(ctx context.Context) error { _, err := st.ListUserSessions(ctx, sess.UserID); return err }},
		{"PurgeExpired", func(ctx context.Context) error {
			_, err := st.PurgeExpired(ctx, time.Now().Add(48*time.Hour))
			return err
		}},
		{"CountSessions", func(ctx context.Context) error { _, err := st.CountSessions(ctx); return err }},
		{"SessionByToken", func(ctx context.Context) error { _, err := st.SessionByToken(ctx, digest); return err }},
		{"UpdateSession", func(ctx context.Context) error {
			_, err := st.UpdateSession(ctx, sess.ID, func(*caddyauth.Session) error { return nil })
			return err
		}},
		{"CreateUser", func(ctx context.Context) error {
			_, err := st.CreateUser(ctx, storetest.NewUser(0, "new-user", storetest.Epoch))
			return err
		}},
		{"UserByID", func(ctx context.Context) error { _, err := st.UserByID(ctx, 1); return err }},
		{"UserByEmail", func(ctx context.Context) error { _, err := st.UserByEmail(ctx, "outage@example.com"); return err }},
		{"UserByUsername", func(ctx context.Context) error { _, err := st.UserByUsername(ctx, "outage"); return err }},
		{"UserByKeyID", func(ctx context.Context) error { _, err := st.UserByKeyID(ctx, "ed25519-x"); return err }},
		{"UpdateUser", func(ctx context.Context) error {
			_, err := st.UpdateUser(ctx, 1, func(*caddyauth.User) error { return nil })
			return err
		}},
		{"ListUsers", func(ctx context.Context) error { _, err := st.ListUsers(ctx, 0, 10); return err }},
		{"Ping", func(ctx context.Context) error { return st.Ping(ctx) }},
		{"PutOnce", func(ctx context.Context) error { return st.PutOnce(ctx, "code:x", []byte("v"), time.Minute) }},
		{"TakeOnce", func(ctx context.Context) error { _, err := st.TakeOnce(ctx, "code:y"); return err }},
		{"SeenOnce", func(ctx context.Context) error { _, err := st.SeenOnce(ctx, "replay:x", time.Minute); return err }},
		{"AddFailure", func(ctx context.Context) error { _, _, err := st.AddFailure(ctx, "fail:x", time.Minute); return err }},
		{"Failures", func(ctx context.Context) error { _, _, err := st.Failures(ctx, "fail:x"); return err }},
		{"ResetFailures", func(ctx context.Context) error { return st.ResetFailures(ctx, "fail:x") }},
		{"PublishInvalidation", func(ctx context.Context) error { return st.PublishInvalidation(ctx, []string{sess.ID}) }},
	}
}

// checkAllUnavailable calls every method at once (as a busy gateway would)
// and checks that each returns, within callBound, an error that is
// ErrUnavailable and not ErrNotFound: "cannot answer" must never look like
// "no such session".
func checkAllUnavailable(t *testing.T, st *Store, sess *caddyauth.Session) {
	t.Helper()
	methods := everyMethod(st, sess)
	errs := make([]error, len(methods))
	done := make([]chan struct{}, len(methods))
	for i, m := range methods {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			// No deadline of the caller's: only the store's timeouts may end
			// the call.
			errs[i] = m.call(context.Background())
		}()
	}
	hung := time.After(callBound)
	for i, m := range methods {
		select {
		case <-done[i]:
		case <-hung:
			t.Fatalf("%s did not return within %v", m.name, callBound)
		}
		err := errs[i]
		if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrNotFound) || errors.Is(err, caddyauth.ErrExists) {
			t.Errorf("%s = %v, want ErrUnavailable", m.name, err)
		}
	}
}

// outageFixture is a store with one session (with a token) and one user.
func outageFixture(t *testing.T, srv *redistest.Server) (*Store, *caddyauth.Session) {
	t.Helper()
	st := openStore(t, srv, nil)
	sess := storetest.NewSession("before-outage", 42, caddyauth.DialectSXT, time.Now())
	sess.Tokens = []caddyauth.Token{{Digest: storetest.Digest("outage token"), Kind: caddyauth.TokenAccess, Expires: sess.AbsoluteDeadline}}
	if err := st.CreateSession(t.Context(), sess.Clone()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(t.Context(), storetest.NewUser(1, "outage", time.Now())); err != nil {
		t.Fatal(err)
	}
	return st, sess
}

// checkSessionIntact checks that sess is stored unchanged and findable by
// every index.
func checkSessionIntact(t *testing.T, st *Store, sess *caddyauth.Session) {
	t.Helper()
	ctx := t.Context()
	got, err := st.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatalf("GetSession(%q) after the outage: %v", sess.ID, err)
	}
	if d := storetest.Diff(sess, got); d != "" {
		t.Errorf("session after the outage: %s", d)
	}
	if _, err := st.SessionByToken(ctx, sess.Tokens[0].Digest); err != nil {
		t.Errorf("SessionByToken after the outage: %v", err)
	}
	list, err := st.ListUserSessions(ctx, sess.UserID)
	if err != nil || len(list) != 1 || list[0].ID != sess.ID {
		t.Errorf("ListUserSessions after the outage = %q, %v", storetest.IDs(list), err)
	}
}

// REL-01, REL-10: a stalled Redis (SIGSTOP: connections open, no answers)
// makes every method fail with ErrUnavailable within its timeouts, never
// hang and never answer "not found"; after SIGCONT everything works again
// and the session is still there.
func TestStalledRedis_REL01_REL10(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st, sess := outageFixture(t, srv)

	srv.Pause()
	checkAllUnavailable(t, st, sess)
	srv.Resume()

	eventually(t, "the store to answer again", func() bool { return st.Ping(t.Context()) == nil })
	checkSessionIntact(t, st, sess)
}

// REL-01: Redis down (connection refused) is ErrUnavailable for every
// method, and the store recovers by itself when Redis is back.
func TestRedisDown_REL01(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	st, sess := outageFixture(t, srv)

	srv.Kill()
	checkAllUnavailable(t, st, sess)
	// Again, once the pool has given up dialing and fails fast.
	checkAllUnavailable(t, st, sess)
	srv.Restart()

	eventually(t, "the store to answer again", func() bool { return st.Ping(t.Context()) == nil })
	checkSessionIntact(t, st, sess)
}

// REL-05: with appendonly yes and appendfsync always, every session whose
// CreateSession returned nil survives a SIGKILL of Redis in the middle of a
// burst of logins, with its indexes.
func TestAcknowledgedSessionsSurviveKill_REL05(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	st := openStore(t, srv, nil)
	const (
		workers = 8
		killAt  = 200 // acknowledged creates before the kill
	)
	var (
		mu    sync.Mutex
		acked []*caddyauth.Session
		wg    sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				s := storetest.NewSession(fmt.Sprintf("w%d-%d", w, i), int64(100+w), caddyauth.DialectAmatino, time.Now())
				s.Tokens = []caddyauth.Token{{Digest: storetest.Digest(s.ID), Kind: caddyauth.TokenAccess, Expires: s.AbsoluteDeadline}}
				err := st.CreateSession(context.Background(), s.Clone())
				if err != nil {
					if !errors.Is(err, caddyauth.ErrUnavailable) {
						t.Errorf("CreateSession during the kill = %v, want ErrUnavailable", err)
					}
					return // Redis is gone: stop, like a gateway answering 503
				}
				mu.Lock()
				acked = append(acked, s)
				if len(acked) >= killAt {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		})
	}
	<-enough
	srv.Kill() // while the workers keep creating
	wg.Wait()
	srv.Restart()
	eventually(t, "the store to answer again", func() bool { return st.Ping(t.Context()) == nil })

	ctx := t.Context()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d sessions acknowledged before the kill", len(acked))
	lost := 0
	byUser := map[int64]map[string]bool{}
	for _, s := range acked {
		got, err := st.GetSession(ctx, s.ID)
		if err != nil {
			lost++
			t.Errorf("acknowledged session %s lost: %v", s.ID, err)
			continue
		}
		if d := storetest.Diff(s, got); d != "" {
			t.Errorf("session %s: %s", s.ID, d)
		}
		if _, err := st.SessionByToken(ctx, s.Tokens[0].Digest); err != nil {
			t.Errorf("token of session %s lost: %v", s.ID, err)
		}
		if byUser[s.UserID] == nil {
			list, err := st.ListUserSessions(ctx, s.UserID)
			if err != nil {
				t.Fatal(err)
			}
			byUser[s.UserID] = map[string]bool{}
			for _, l := range list {
				byUser[s.UserID][l.ID] = true
			}
		}
		if !byUser[s.UserID][s.ID] {
			t.Errorf("session %s missing from its user's list", s.ID)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged sessions lost", lost, len(acked))
	}
}
