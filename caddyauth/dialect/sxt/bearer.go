package sxt

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Error codes of sxt answers, beside caddyauth's: the RFC 6750 and RFC 6749
// names, which bearer clients know.
const (
	// CodeInvalidToken: the access token is unknown, expired, revoked, or
	// of the wrong kind (RFC 6750 §3.1).
	CodeInvalidToken = "invalid_token"
	// CodeInvalidGrant: the refresh token cannot be exchanged (RFC 6749
	// §5.2): unknown, expired, already used, or its session ended.
	CodeInvalidGrant = "invalid_grant"
)

// queryTokenParam is where RFC 6750 §2.3 would put a token; the gateway
// never accepts one there (SEC-14, RFC 9700 §4.3.2).
const queryTokenParam = "access_token"

// bearerToken returns the bearer token of r per RFC 6750 §2.1: exactly one
// Authorization header, scheme Bearer (any case), one b64token. A request
// with no bearer credential gets a 401 without error detail (a token in the
// query alone is no credential); two Authorization headers, `Bearer a b`, or
// a header plus an access_token query parameter get 400 invalid_request
// (SEC-14, SEC-15). A token that cannot be one the gateway issued gets 401
// invalid_token before any lookup (SEC-36).
func (d *Dialect) bearerToken(r *http.Request) (string, *caddyauth.Refusal) {
	vals := r.Header.Values("Authorization")
	inQuery := r.URL != nil && queryHasToken(r.URL.RawQuery)
	switch {
	case len(vals) > 1:
		return "", d.invalidRequest("send exactly one Authorization header")
	case len(vals) == 0 || !isBearer(vals[0]):
		return "", d.missing()
	case inQuery:
		return "", d.invalidRequest("send the token in the Authorization header only, not also in the query")
	}
	v := strings.TrimLeft(vals[0], " \t")
	tok := strings.TrimLeft(v[len("Bearer"):], " ")
	if tok == "" || !b64token(tok) {
		return "", d.invalidRequest("the Authorization header must be `Bearer <token>`")
	}
	if !caddyauth.ValidBearerToken(tok) {
		return "", d.invalidToken("the token is not one this gateway issued", caddyauth.ResultMalformed)
	}
	return tok, nil
}

// b64token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// queryHasToken reports an access_token parameter in a raw query, however
// its name is percent-encoded.
func queryHasToken(raw string) bool {
	for pair := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if len(k) < len(queryTokenParam) || len(k) > 3*len(queryTokenParam) {
			continue
		}
		if name, err := url.QueryUnescape(k); err == nil && name == queryTokenParam {
			return true
		}
	}
	return false
}

// missing is the answer to a request without a bearer credential: 401 and
// a challenge without error attribute (RFC 6750 §3.1).
func (d *Dialect) missing() *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: caddyauth.CodeMissingCredentials,
		Message: "a bearer token is required", Result: caddyauth.ResultMissing, Challenges: []string{d.challenge}}
}

// invalidRequest is RFC 6750's 400 invalid_request.
func (d *Dialect) invalidRequest(msg string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest, Message: msg,
		Result: caddyauth.ResultMalformed, Challenges: []string{d.challenge + `, error="invalid_request"`}}
}

// invalidToken is RFC 6750's 401 invalid_token, with result as the metric
// label.
func (d *Dialect) invalidToken(msg, result string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Message: msg,
		Result: result, Challenges: []string{d.challenge + `, error="invalid_token"`}}
}

// invalidGrant is RFC 6749's 400 invalid_grant for a refresh that cannot be
// honoured, whatever the reason (the client's only remedy is to log in).
func invalidGrant() *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: CodeInvalidGrant,
		Message: "the refresh token is invalid, expired, already used or revoked", Result: caddyauth.ResultBadToken}
}

// invalid is a 400 for a malformed endpoint body.
func invalid(msg string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest, Message: msg,
		Result: caddyauth.ResultMalformed}
}

// badCredentials is the one answer to every failed auth/token call (wrong
// or reused code, bad signature, unknown key, closed registration), so that
// none tells an attacker which check failed.
func (d *Dialect) badCredentials() *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: caddyauth.CodeBadCredentials,
		Message: "userId, authCode, signature or key is not valid", Result: caddyauth.ResultBadSignature,
		Challenges: []string{d.challenge}}
}
