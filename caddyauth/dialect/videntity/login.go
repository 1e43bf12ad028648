package videntity

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Form fields of the endpoints.
const (
	fieldUsername      = "username"
	fieldPassword      = "password"
	fieldAccountNumber = "account_number"
)

// Login serves POST /session/login and /sessions/login: username, password
// and account_number, answered with a new session_key. Every kind of wrong
// credential gets the same answer (SEC-03) after exactly one KDF run (SEC-04,
// by caddyauth.Manager.CheckPassword). Every login makes a new session.
func (d *Dialect) Login(w http.ResponseWriter, r *http.Request) {
	method := LoginPath
	if r.URL.Path == LoginAliasPath {
		method = LoginAliasPath
	}
	ctx := r.Context()
	ip := caddyauth.ClientIP(ctx)
	fail := func(e *apiError) {
		d.m.Observer().Login(caddyauth.DialectVidentity, e.result)
		d.m.Audit(caddyauth.Event{Type: "login_failed", Dialect: caddyauth.DialectVidentity, Reason: e.code, ClientIP: ip})
		d.writeError(w, method, e)
	}
	f, e := readForm(r, fieldUsername, fieldPassword, fieldAccountNumber)
	if e != nil {
		fail(e)
		return
	}
	if e := f.require(fieldUsername, fieldPassword, fieldAccountNumber); e != nil {
		fail(e)
		return
	}
	u, err := d.m.CheckPassword(ctx, caddyauth.PasswordLogin{Username: f[fieldUsername],
		AccountNumber: f[fieldAccountNumber], CheckAccount: true, Password: f[fieldPassword]})
	switch {
	case err == nil:
	case errors.Is(err, caddyauth.ErrAccountLocked):
		e := errAuthentication() // same answer (SEC-03)
		e.result = caddyauth.ResultLocked
		fail(e)
		return
	case errors.Is(err, caddyauth.ErrBadCredentials):
		fail(errAuthentication())
		return
	case errors.Is(err, caddyauth.ErrThrottled):
		fail(errThrottled(caddyauth.RetryAfter(err)))
		return
	case errors.Is(err, caddyauth.ErrPasswordTooLong):
		fail(errInvalid("Field password is too long"))
		return
	case errors.Is(err, caddyauth.ErrBusy):
		fail(errBusy())
		return
	default:
		fail(errUnavailable())
		return
	}

	key, s, err := d.startSession(ctx, u)
	switch {
	case errors.Is(err, caddyauth.ErrBadCredentials):
		// Disabled or deleted while the password was hashed.
		fail(errAuthentication())
		return
	case err != nil:
		fail(errUnavailable())
		return
	}
	d.m.Observer().Login(caddyauth.DialectVidentity, "ok")
	d.m.Audit(caddyauth.Event{Type: "login", Dialect: caddyauth.DialectVidentity, Reason: "ok",
		UserID: u.ID, SessionHash: d.m.LogHash(s.ID), ClientIP: ip})
	d.writeSuccess(w, method, "Login successful", []field{{FieldSessionKey, key}})
}

// startSession stores a session for a fresh key, known to the store only by
// its digest.
func (d *Dialect) startSession(ctx context.Context, u *caddyauth.User) (string, *caddyauth.Session, error) {
	var err error
	for range 3 { // 256-bit keys collide never; retry anyway
		key := newSessionKey()
		var s *caddyauth.Session
		s, err = d.m.StartSession(ctx, caddyauth.NewSession{User: u, Dialect: caddyauth.DialectVidentity,
			Kind: caddyauth.KindSessionKey, ID: sessionID(key),
			Lifetime: d.o.SessionLifetime, IdleTimeout: d.o.IdleTimeout})
		if err == nil {
			return key, s, nil
		}
		if !errors.Is(err, caddyauth.ErrExists) {
			break
		}
	}
	return "", nil, err
}

// Ping serves POST /session/ping: session_key, whose idle timer it resets
// to IdleTimeout from now, never past the absolute deadline (SEC-11,
// SEC-12).
func (d *Dialect) Ping(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, e := d.formSession(r)
	if e != nil {
		d.writeError(w, PingPath, e)
		return
	}
	if _, err := d.m.Touch(ctx, s, d.o.IdleTimeout); err != nil {
		d.writeError(w, PingPath, sessionError(err))
		return
	}
	d.m.Audit(caddyauth.Event{Type: "ping", Dialect: caddyauth.DialectVidentity, Reason: "ok",
		UserID: s.UserID, SessionHash: d.m.LogHash(s.ID), ClientIP: caddyauth.ClientIP(ctx)})
	d.writeSuccess(w, PingPath, "Session idle timer reset", nil)
}

// Logout serves POST /session/logout: session_key, whose session it ends
// (SEC-10).
func (d *Dialect) Logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, e := d.formSession(r)
	if e != nil {
		d.writeError(w, LogoutPath, e)
		return
	}
	if _, err := d.m.EndSession(ctx, s.ID, "logout"); err != nil {
		// Ended concurrently: from the client's view the same outcome.
		d.writeError(w, LogoutPath, sessionError(err))
		return
	}
	d.m.Audit(caddyauth.Event{Type: "logout", Dialect: caddyauth.DialectVidentity, Reason: "logout",
		UserID: s.UserID, SessionHash: d.m.LogHash(s.ID), ClientIP: caddyauth.ClientIP(ctx)})
	d.writeSuccess(w, LogoutPath, "Session ended", nil)
}

// formSession finds the live session of the session_key field. A key of the
// wrong syntax is not looked up (SEC-36).
func (d *Dialect) formSession(r *http.Request) (*caddyauth.Session, *apiError) {
	f, e := readForm(r, FieldSessionKey)
	if e != nil {
		return nil, e
	}
	if e := f.require(FieldSessionKey); e != nil {
		return nil, e
	}
	key := f[FieldSessionKey]
	if !validKey(key) {
		return nil, errNoSession()
	}
	return d.session(r.Context(), key)
}

// session returns the live videntity session of key. A session of another
// dialect under the same id (a digest of some other token) does not exist
// for videntity.
func (d *Dialect) session(ctx context.Context, key string) (*caddyauth.Session, *apiError) {
	s, err := d.m.Session(ctx, sessionID(key))
	if err != nil {
		return nil, sessionError(err)
	}
	if s.Dialect != caddyauth.DialectVidentity || s.Kind != caddyauth.KindSessionKey {
		return nil, errNoSession()
	}
	return s, nil
}

// sessionError maps the Manager's session errors to answers.
func sessionError(err error) *apiError {
	switch {
	case errors.Is(err, caddyauth.ErrUnknownSession):
		return errNoSession()
	case errors.Is(err, caddyauth.ErrSessionExpired):
		return errExpired()
	default:
		return errUnavailable()
	}
}

// form holds the known fields of an endpoint body.
type form map[string]string

// require returns the error for the first missing or empty field.
func (f form) require(names ...string) *apiError {
	for _, n := range names {
		if f[n] == "" {
			return errMissing(n)
		}
	}
	return nil
}

// readForm reads an endpoint body: a form (415 otherwise), not encoded, of
// at most MaxFormBody bytes (413, SEC-34), parsed strictly (SEC-33).
func readForm(r *http.Request, known ...string) (form, *apiError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != formType || len(r.Header.Values("Content-Type")) > 1 {
		return nil, errMediaType("Request body must be " + formType)
	}
	if encoded(r.Header) {
		return nil, errMediaType("Request body must not have a Content-Encoding")
	}
	body, err := caddyauth.ReadBody(r, MaxFormBody)
	switch {
	case errors.Is(err, caddyauth.ErrBodyTooLarge):
		return nil, errTooLarge()
	case err != nil:
		return nil, errInvalid("Cannot read request body")
	}
	return parseForm(body, known...)
}

// parseForm decodes pairs split on '&' (as Go's url.ParseQuery does) and
// keeps the known fields. It refuses, where ParseQuery would guess: a known
// field given twice, also under another percent-encoded spelling; a broken
// escape; a name or value that is not UTF-8. Unknown fields are ignored;
// error texts never repeat client input.
func parseForm(body []byte, known ...string) (form, *apiError) {
	f := form{}
	for pair := range strings.SplitSeq(string(body), "&") {
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(rawKey)
		v, err2 := url.QueryUnescape(rawVal)
		if err1 != nil || err2 != nil {
			return nil, errInvalid("Request body is not a valid form")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errInvalid("Form fields must be valid UTF-8")
		}
		for _, n := range known {
			if k != n {
				continue
			}
			if _, dup := f[n]; dup {
				return nil, errInvalid("Field " + n + " is given more than once")
			}
			f[n] = v
		}
	}
	return f, nil
}

// encoded reports a Content-Encoding other than identity: the bytes would
// not be the form the upstream reads.
func encoded(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for tok := range strings.SplitSeq(v, ",") {
			if t := strings.TrimSpace(tok); t != "" && !strings.EqualFold(t, "identity") {
				return true
			}
		}
	}
	return false
}
