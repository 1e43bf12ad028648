package sxt

import (
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Endpoint paths below the prefix.
//
// #nosec G101 -- URL paths such as "/auth/token", not credentials.
const (
	PathIDExists   = "/auth/idexists/"
	PathCode       = "/auth/code"
	PathToken      = "/auth/token"
	PathRefresh    = "/auth/refresh"
	PathValidToken = "/auth/validtoken"
	PathLogout     = "/auth/logout"
)

// Dialect serves and verifies the sxt protocol.
type Dialect struct {
	m *caddyauth.Manager
	o Options
	// challenge is the WWW-Authenticate value without an error.
	challenge string
}

// New returns the dialect over m with opts (defaults filled in).
func New(m *caddyauth.Manager, opts Options) (*Dialect, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Dialect{m: m, o: opts, challenge: `Bearer realm="` + opts.Realm + `"`}, nil
}

// Options returns the effective options.
func (d *Dialect) Options() Options { return d.o }

// Challenge is the WWW-Authenticate value of a request without credentials
// (RFC 6750 §3.1: no error attribute then).
func (d *Dialect) Challenge() string { return d.challenge }

// Endpoint returns the handler for r if r's path is one of the dialect's
// own endpoints, else nil. A wrong method on an endpoint path is answered
// 405 here rather than passed on as proxied traffic.
func (d *Dialect) Endpoint(r *http.Request) http.HandlerFunc {
	rest, ok := strings.CutPrefix(r.URL.Path, d.o.Prefix)
	if !ok || !strings.HasPrefix(rest, "/auth/") {
		return nil
	}
	var method string
	var h http.HandlerFunc
	switch {
	case strings.HasPrefix(rest, PathIDExists) && len(rest) > len(PathIDExists):
		method, h = http.MethodGet, d.IDExists
	case rest == PathCode:
		method, h = http.MethodPost, d.Code
	case rest == PathToken:
		method, h = http.MethodPost, d.Token
	case rest == PathRefresh:
		method, h = http.MethodPost, d.Refresh
	case rest == PathValidToken:
		method, h = http.MethodGet, d.ValidToken
	case rest == PathLogout:
		method, h = http.MethodPost, d.Logout
	default:
		return nil
	}
	if r.Method != method {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", method)
			(&caddyauth.Refusal{Status: http.StatusMethodNotAllowed, Code: caddyauth.CodeMethodNotAllowed,
				Message: "use " + method, Result: caddyauth.ResultMalformed}).Write(w)
		}
	}
	return h
}

// Present reports whether r carries a bearer credential: an Authorization
// header with the Bearer scheme (in any case), so the request is attributed
// to this dialect before it is verified. A token only in the query string
// is not a credential (SEC-14).
func Present(r *http.Request) bool {
	for _, v := range r.Header.Values("Authorization") {
		if isBearer(v) {
			return true
		}
	}
	return false
}

// StripCredentials removes the Authorization header of a bearer request so
// the token is neither forwarded nor logged (SEC-43, SEC-44). Other
// Authorization schemes are left for the upstream.
func StripCredentials(h http.Header) {
	for _, v := range h.Values("Authorization") {
		if isBearer(v) {
			delete(h, "Authorization")
			return
		}
	}
}

// isBearer reports whether an Authorization value uses the Bearer scheme.
func isBearer(v string) bool {
	v = strings.TrimLeft(v, " \t")
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(v, "Bearer")
}
