package amatino_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// disablingStore disables user 42 in the store just before the session of
// its login is written: the interleaving of an admin disable that arrives
// while the login is hashing the password.
type disablingStore struct {
	*enginetest.Store
	m *caddyauth.Manager
}

func (s *disablingStore) CreateSession(ctx context.Context, sess *caddyauth.Session) error {
	if _, err := s.m.DisableUser(ctx, sess.UserID); err != nil {
		return err
	}
	return s.Store.CreateSession(ctx, sess)
}

// TestLoginRacingDisableAnswersLikeDisabledSEC13 (SEC-13, SEC-03): a login
// whose user is disabled while its password is being checked gets the
// answer of a wrong password, 401 bad_credentials, not a 503, and leaves no
// session in the store.
func TestLoginRacingDisableAnswersLikeDisabledSEC13(t *testing.T) {
	ctx := context.Background()
	st := &disablingStore{Store: enginetest.NewStore()}
	m, err := caddyauth.NewManager(caddyauth.Config{Store: st, Users: caddyauth.Layered{Store: st},
		Hasher: enginetest.CheapHasher(t), Sealer: enginetest.NewSealer(t),
		Clock: caddyauth.NewFakeClock(time.Unix(wireTS, 0)), Abuse: enginetest.AbuseOrNone()})
	if err != nil {
		t.Fatal(err)
	}
	st.m = m
	if _, err := m.CreateUser(ctx, caddyauth.NewUser{ID: 42, Email: "erin@example.com", Password: "erin's password"}); err != nil {
		t.Fatal(err)
	}
	d, err := amatino.New(m, amatino.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/session",
		strings.NewReader(`{"account_email":"erin@example.com","secret":"erin's password"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	d.Login(w, r)
	var body struct{ Error string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusUnauthorized || body.Error != caddyauth.CodeBadCredentials {
		t.Fatalf("login racing a disable: %d %s, want 401 %s", w.Code, w.Body.Bytes(), caddyauth.CodeBadCredentials)
	}
	if live, err := st.ListUserSessions(ctx, 42); err != nil || len(live) != 0 {
		t.Errorf("sessions of the disabled user after the login: %d, %v; want none", len(live), err)
	}
	if st.Creates.Load() != 1 {
		t.Errorf("%d session writes, want the one the confirmation undid", st.Creates.Load())
	}
}
