package sxt

import (
	"errors"
	"net/http"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Refresh serves POST <prefix>/auth/refresh with `Authorization: Bearer
// <refresh token>` (or the access token, with RefreshAcceptsAccessToken) and
// an empty or `{}` body, answered with a new access and refresh token. The
// presented token dies; presenting it again ends the whole session, unless
// it comes back within RefreshGrace and gets the same pair (see
// caddyauth.Manager.RotateRefresh). Every refusal is 400 invalid_grant
// (RFC 6749 §5.2), except a missing or malformed Authorization header
// (RFC 6750 answers) and 503 when the store cannot answer.
func (d *Dialect) Refresh(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ip := caddyauth.ClientIP(ctx)
	if ref := d.noBody(r); ref != nil {
		ref.Write(w)
		return
	}
	tok, ref := d.bearerToken(r)
	if ref != nil {
		if ref.Code == CodeInvalidToken {
			ref = invalidGrant()
		}
		d.m.Audit(caddyauth.Event{Type: caddyauth.EventRefresh, Dialect: caddyauth.DialectSXT, Reason: ref.Code, ClientIP: ip})
		ref.Write(w)
		return
	}
	s, pair, err := d.m.RotateRefresh(ctx, tok, caddyauth.RefreshOptions{Access: d.o.AccessLifetime,
		Refresh: d.o.RefreshLifetime, Grace: d.o.RefreshGrace, AcceptAccessToken: d.o.RefreshAcceptsAccessToken})
	switch {
	case err == nil:
		d.m.Audit(caddyauth.Event{Type: caddyauth.EventRefresh, Dialect: caddyauth.DialectSXT, Reason: "ok",
			UserID: s.UserID, SessionHash: d.m.LogHash(s.ID), ClientIP: ip})
		writeTokens(w, pair)
	case errors.Is(err, caddyauth.ErrRefreshReuse):
		// RotateRefresh ended the session and audited the reuse.
		invalidGrant().Write(w)
	case errors.Is(err, caddyauth.ErrUnavailable):
		caddyauth.Unavailable().Write(w)
	default:
		d.m.Audit(caddyauth.Event{Type: caddyauth.EventRefresh, Dialect: caddyauth.DialectSXT,
			Reason: refreshReason(err), ClientIP: ip})
		invalidGrant().Write(w)
	}
}

// refreshReason is the audit reason of a refused refresh.
func refreshReason(err error) string {
	switch {
	case errors.Is(err, caddyauth.ErrSessionExpired), errors.Is(err, caddyauth.ErrTokenExpired):
		return "expired"
	case errors.Is(err, caddyauth.ErrTokenKind):
		return "wrong_token_kind"
	case errors.Is(err, caddyauth.ErrRefreshInProgress):
		return "refresh_in_progress"
	}
	return "unknown_token"
}

// ValidToken serves GET <prefix>/auth/validtoken with `Authorization: Bearer
// <access token>`: `{"userId": …}` when the token is valid, and otherwise
// the status with RFC 6750's WWW-Authenticate and an empty body, as sxt
// clients expect (503 with Retry-After when the store cannot answer).
func (d *Dialect) ValidToken(w http.ResponseWriter, r *http.Request) {
	if ref := d.noBody(r); ref != nil {
		ref.Write(w)
		return
	}
	v, ref := d.Verify(r)
	if ref != nil {
		if ref.Status == http.StatusServiceUnavailable {
			ref.Write(w)
		} else {
			writeBare(w, ref)
		}
		return
	}
	u, err := d.m.Users().UserByID(r.Context(), v.Session.UserID)
	switch {
	case err == nil && !u.Disabled && u.Username != "":
		caddyauth.WriteJSON(w, http.StatusOK, userAnswer{UserID: u.Username})
	case err == nil, errors.Is(err, caddyauth.ErrNotFound):
		writeBare(w, d.invalidToken("the token's user no longer exists", caddyauth.ResultUnknownSession))
	default:
		caddyauth.Unavailable().Write(w)
	}
}

// writeBare writes a refusal's status and challenges with an empty body.
func writeBare(w http.ResponseWriter, ref *caddyauth.Refusal) {
	h := w.Header()
	for _, c := range ref.Challenges {
		h.Add("WWW-Authenticate", c)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", "0")
	w.WriteHeader(ref.Status)
}

// Logout serves POST <prefix>/auth/logout with `Authorization: Bearer
// <access token>` and an empty or `{}` body: the session ends, with every
// access and refresh token of it (SEC-10), and the answer is 200 `{}`.
func (d *Dialect) Logout(w http.ResponseWriter, r *http.Request) {
	if ref := d.noBody(r); ref != nil {
		ref.Write(w)
		return
	}
	v, ref := d.Verify(r)
	if ref != nil {
		ref.Write(w)
		return
	}
	if _, err := d.m.EndSession(r.Context(), v.Session.ID, "logout"); err != nil {
		if errors.Is(err, caddyauth.ErrUnknownSession) {
			// Ended concurrently: from the client's view the same outcome.
			d.invalidToken("the token was revoked", caddyauth.ResultUnknownSession).Write(w)
			return
		}
		caddyauth.Unavailable().Write(w)
		return
	}
	d.m.Audit(caddyauth.Event{Type: "logout", Dialect: caddyauth.DialectSXT, Reason: "logout",
		UserID: v.Session.UserID, SessionHash: d.m.LogHash(v.Session.ID), ClientIP: caddyauth.ClientIP(r.Context())})
	caddyauth.WriteJSON(w, http.StatusOK, struct{}{})
}
