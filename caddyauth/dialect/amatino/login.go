package amatino

import (
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/sessiongate/sessiongate/caddyauth"
)

type loginAnswer struct {
	APIKey    string `json:"api_key"`
	SessionID int64  `json:"session_id"`
	UserID    int64  `json:"user_id"`
}

type logoutAnswer struct {
	SessionID int64 `json:"session_id"`
}

// Login serves POST /session: `{"secret", "account_email", "user_id"}` with
// exactly one of the last two non-null, answered with
// `{"api_key", "session_id", "user_id"}`. Every kind of wrong credential gets
// the same answer (SEC-03) after the same work (SEC-04). A session id the
// client sends is ignored: every login makes a new session (SEC-09).
func (d *Dialect) Login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ip := caddyauth.ClientIP(ctx)
	fail := func(ref *caddyauth.Refusal, result string) {
		d.m.Observer().Login(caddyauth.DialectAmatino, result)
		d.m.Audit(caddyauth.Event{Type: "login_failed", Dialect: caddyauth.DialectAmatino, Reason: ref.Code, ClientIP: ip})
		ref.Write(w)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			fail(&caddyauth.Refusal{Status: http.StatusUnsupportedMediaType, Code: caddyauth.CodeUnsupportedMedia,
				Message: "login body must be application/json"}, "malformed")
			return
		}
	}
	body, ref := readBody(r, MaxLoginBody)
	if ref != nil {
		fail(ref, "malformed")
		return
	}
	login, ref := parseLogin(body)
	if ref != nil {
		fail(ref, "malformed")
		return
	}
	u, err := d.m.CheckPassword(ctx, login)
	switch {
	case err == nil:
	case errors.Is(err, caddyauth.ErrAccountLocked):
		fail(badCredentials(), caddyauth.ResultLocked) // same answer (SEC-03)
		return
	case errors.Is(err, caddyauth.ErrBadCredentials):
		fail(badCredentials(), "bad_credentials")
		return
	case errors.Is(err, caddyauth.ErrThrottled):
		fail(&caddyauth.Refusal{Status: http.StatusTooManyRequests, Code: caddyauth.CodeThrottled,
			Message: "too many login attempts, retry later", RetryAfter: caddyauth.RetryAfter(err)}, "throttled")
		return
	case errors.Is(err, caddyauth.ErrPasswordTooLong):
		fail(invalid("secret is too long"), "malformed")
		return
	case errors.Is(err, caddyauth.ErrBusy):
		fail(&caddyauth.Refusal{Status: http.StatusServiceUnavailable, Code: caddyauth.CodeBusy,
			Message: "too many logins in progress, retry shortly", RetryAfter: 1}, "throttled")
		return
	default:
		fail(caddyauth.Unavailable(), "unavailable")
		return
	}

	key := caddyauth.NewAmatinoKey()
	var s *caddyauth.Session
	for range 3 { // 63-bit ids collide essentially never; retry anyway
		n := caddyauth.NewSessionNumber()
		s, err = d.m.StartSession(ctx, caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
			Kind: caddyauth.KindHMACKey, ID: strconv.FormatInt(n, 10), Secret: []byte(key),
			Lifetime: d.o.SessionLifetime, IdleTimeout: d.o.IdleTimeout})
		if !errors.Is(err, caddyauth.ErrExists) {
			break
		}
	}
	switch {
	case errors.Is(err, caddyauth.ErrBadCredentials):
		// Disabled or deleted while the password was hashed.
		fail(badCredentials(), "bad_credentials")
		return
	case err != nil:
		fail(caddyauth.Unavailable(), "unavailable")
		return
	}
	d.m.Observer().Login(caddyauth.DialectAmatino, "ok")
	d.m.Audit(caddyauth.Event{Type: "login", Dialect: caddyauth.DialectAmatino, Reason: "ok",
		UserID: u.ID, SessionHash: d.m.LogHash(s.ID), ClientIP: ip})
	n, _ := strconv.ParseInt(s.ID, 10, 64)
	caddyauth.WriteJSON(w, http.StatusOK, loginAnswer{APIKey: key, SessionID: n, UserID: u.ID})
}

// Logout serves DELETE /session, signed like any request; it ends the
// session and answers `{"session_id": n}`.
func (d *Dialect) Logout(w http.ResponseWriter, r *http.Request) {
	v, ref := d.Verify(r, SignedPath(r))
	if ref != nil {
		ref.Write(w)
		return
	}
	if _, err := d.m.EndSession(r.Context(), v.Session.ID, "logout"); err != nil {
		if errors.Is(err, caddyauth.ErrUnknownSession) {
			// Ended concurrently: from the client's view the same outcome.
			unknownSession().Write(w)
			return
		}
		caddyauth.Unavailable().Write(w)
		return
	}
	d.m.Audit(caddyauth.Event{Type: "logout", Dialect: caddyauth.DialectAmatino, Reason: "logout",
		UserID: v.Session.UserID, SessionHash: d.m.LogHash(v.Session.ID), ClientIP: caddyauth.ClientIP(r.Context())})
	n, _ := strconv.ParseInt(v.Session.ID, 10, 64)
	caddyauth.WriteJSON(w, http.StatusOK, logoutAnswer{SessionID: n})
}

// parseLogin checks the login body field by field (SEC-32, SEC-33).
func parseLogin(body []byte) (caddyauth.PasswordLogin, *caddyauth.Refusal) {
	var l caddyauth.PasswordLogin
	f, err := caddyauth.DecodeStrictObject(body, "secret", "account_email", "user_id")
	if err != nil {
		return l, invalid("login body: " + err.Error())
	}
	secret, ok := caddyauth.JSONString(f["secret"])
	if !ok {
		return l, invalid("secret must be a string")
	}
	l.Password = secret
	emailNull, idNull := caddyauth.IsJSONNull(f["account_email"]), caddyauth.IsJSONNull(f["user_id"])
	switch {
	case emailNull == idNull:
		return l, invalid("exactly one of account_email and user_id must be given")
	case !emailNull:
		e, ok := caddyauth.JSONString(f["account_email"])
		if !ok || e == "" || len(e) > MaxEmailBytes {
			return l, invalid("account_email must be a non-empty string of at most 254 bytes")
		}
		l.Email = e
	default:
		id, ok := caddyauth.JSONPositiveInt(f["user_id"])
		if !ok {
			return l, invalid("user_id must be a positive integer")
		}
		l.UserID = id
	}
	return l, nil
}

// readBody reads a body of at most max bytes, answering 413 beyond.
func readBody(r *http.Request, max int64) ([]byte, *caddyauth.Refusal) {
	b, err := caddyauth.ReadBody(r, max)
	switch {
	case errors.Is(err, caddyauth.ErrBodyTooLarge):
		return nil, tooLarge()
	case err != nil:
		return nil, invalid("cannot read request body")
	}
	return b, nil
}

func invalid(msg string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest, Message: msg,
		Result: caddyauth.ResultMalformed}
}

func tooLarge() *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusRequestEntityTooLarge, Code: caddyauth.CodeBodyTooLarge,
		Message: "request body too large", Result: caddyauth.ResultMalformed}
}

func badCredentials() *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: caddyauth.CodeBadCredentials,
		Message: "email, user id or secret is incorrect", Challenges: []string{Challenge}}
}

func unknownSession() *caddyauth.Refusal {
	return unauthorized(caddyauth.CodeUnknownSession, "unknown session", caddyauth.ResultUnknownSession)
}

func unauthorized(code, msg, result string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: code, Message: msg, Result: result,
		Challenges: []string{Challenge}}
}
