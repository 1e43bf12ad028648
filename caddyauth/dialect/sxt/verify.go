package sxt

import (
	"errors"
	"net/http"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Verified is a request that passed verification.
type Verified struct {
	// Session is the live session (shared with the cache: read only). Its
	// UserID is the user the request acts for.
	Session *caddyauth.Session
}

// Verify checks the bearer access token of a request (RFC 6750): exactly one
// `Authorization: Bearer <token>` header and no access_token in the query
// (else 400 invalid_request), the token's syntax before any lookup
// (SEC-36), then the session through the key cache keyed by the token's
// digest. Unknown, revoked, expired and refresh tokens are all 401
// invalid_token (SEC-15); no credential is a 401 without error detail; 503
// when the store cannot answer.
func (d *Dialect) Verify(r *http.Request) (*Verified, *caddyauth.Refusal) {
	tok, ref := d.bearerToken(r)
	if ref != nil {
		return nil, ref
	}
	s, err := d.m.AccessSession(r.Context(), tok)
	switch {
	case err == nil && s.Dialect == caddyauth.DialectSXT && s.Kind == caddyauth.KindBearer:
		return &Verified{Session: s}, nil
	case err == nil, errors.Is(err, caddyauth.ErrUnknownSession):
		return nil, d.invalidToken("the token is unknown or revoked", caddyauth.ResultUnknownSession)
	case errors.Is(err, caddyauth.ErrTokenKind):
		return nil, d.invalidToken("a refresh token is not an access token", caddyauth.ResultBadToken)
	case errors.Is(err, caddyauth.ErrTokenExpired), errors.Is(err, caddyauth.ErrSessionExpired):
		return nil, d.invalidToken("the token expired", caddyauth.ResultExpired)
	default:
		return nil, caddyauth.Unavailable()
	}
}
