package videntity

import (
	"mime"
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Endpoint paths. Clients append them to a bare origin, so they are fixed.
const (
	LoginPath = "/session/login"
	// LoginAliasPath is served exactly like LoginPath; answers name the
	// path the client used.
	LoginAliasPath = "/sessions/login"
	PingPath       = "/session/ping"
	LogoutPath     = "/session/logout"
)

// Where proxied requests carry the key.
const (
	// HeaderSessionKey carries the key in a header.
	HeaderSessionKey = "X-Session-Key"
	// FieldSessionKey carries the key in a form body, and in the ping and
	// logout forms.
	FieldSessionKey = "session_key"
)

// Challenge is the WWW-Authenticate value of videntity 401s.
const Challenge = `SessionKey realm="sessiongate"`

const formType = "application/x-www-form-urlencoded"

// Dialect serves and verifies the videntity protocol.
type Dialect struct {
	m *caddyauth.Manager
	o Options
}

// New returns the dialect over m with opts (defaults filled in).
func New(m *caddyauth.Manager, opts Options) (*Dialect, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Dialect{m: m, o: opts}, nil
}

// Options returns the effective options.
func (d *Dialect) Options() Options { return d.o }

// Endpoint returns the handler for r if r is a POST to one of the dialect's
// own endpoints, else nil.
func (d *Dialect) Endpoint(r *http.Request) http.HandlerFunc {
	if r.Method != http.MethodPost {
		return nil
	}
	switch r.URL.Path {
	case LoginPath, LoginAliasPath:
		return d.Login
	case PingPath:
		return d.Ping
	case LogoutPath:
		return d.Logout
	}
	return nil
}

// Present reports whether r may carry a videntity key: an X-Session-Key
// header (in any spelling), or a form body. It never reads the body, so a
// form without a session_key field is attributed to this dialect too (and
// Verify refuses it with missing_credentials): ask header-only dialects
// first.
func Present(r *http.Request) bool {
	return HasKeyHeader(r) || isForm(r.Header)
}

// HasKeyHeader reports whether r carries an X-Session-Key header in any
// spelling: the credential only this dialect can claim without reading the
// body.
func HasKeyHeader(r *http.Request) bool {
	for k := range r.Header {
		if isKeyHeader(k) {
			return true
		}
	}
	return false
}

// StripCredentials removes the key so it is neither forwarded nor logged
// (SEC-43, SEC-44): every X-Session-Key header, and the session_key pairs of
// a form body that Verify read, dropped from the raw bytes with every other
// byte kept in order, the lengths corrected. A body Verify did not read is
// left as it is (see the package documentation).
func StripCredentials(r *http.Request) {
	for k := range r.Header {
		if isKeyHeader(k) {
			delete(r.Header, k)
		}
	}
	if b, ok := r.Body.(*formBody); ok {
		if out, changed := dropKeyPairs(b.raw); changed {
			setBody(r, out)
		}
	}
}

// isKeyHeader matches X-Session-Key whatever its case, and its `_`
// spellings, which some upstreams read as the same header.
func isKeyHeader(name string) bool {
	return len(name) == len(HeaderSessionKey) &&
		strings.EqualFold(strings.ReplaceAll(name, "_", "-"), HeaderSessionKey)
}

// isForm reports whether the (first) Content-Type is a form. A malformed
// parameter does not stop it being a form: Go's own ParseForm, and so
// likely the upstream, still reads such a body as one.
func isForm(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == formType
}
