package amatino

import (
	"net/http"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

// LoginPath is where amatino clients log in (POST) and out (DELETE). The
// clients append it to a bare origin, so it is fixed.
const LoginPath = "/session"

// Challenge is the WWW-Authenticate value of amatino refusals.
const Challenge = `X-Signature realm="sessiongate", headers="X-Session-ID X-Signature"`

// Dialect serves and verifies the amatino protocol.
type Dialect struct {
	m *caddyauth.Manager
	o Options
	// workHook, set only by tests (export_test.go), is told the MAC work
	// of every Verify that reached the signature check.
	workHook func(sign.Work)
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

// Endpoint returns the handler for r if r is one of the dialect's own
// endpoints (login or logout), else nil.
func (d *Dialect) Endpoint(r *http.Request) http.HandlerFunc {
	if r.URL.Path != LoginPath {
		return nil
	}
	switch r.Method {
	case http.MethodPost:
		return d.Login
	case http.MethodDelete:
		return d.Logout
	}
	return nil
}

// Present reports whether r carries any amatino credential header, so that
// a request can be attributed to this dialect before it is verified.
func Present(r *http.Request) bool {
	h := r.Header
	return len(h[hdrSessionID]) > 0 || len(h[hdrSignature]) > 0 || len(h[hdrTimestamp]) > 0
}

// StripCredentials removes the credential headers so they are neither
// forwarded nor logged (SEC-43, SEC-44).
func StripCredentials(h http.Header) {
	delete(h, hdrSessionID)
	delete(h, hdrSignature)
	delete(h, hdrTimestamp)
}
