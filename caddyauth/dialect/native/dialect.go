package native

import (
	"net/http"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// AuthChallenge is the WWW-Authenticate value of native 401s. RFC 9421
// registers no authentication scheme, and HTTP requires a challenge on every
// 401; like amatino's, the scheme is named after the header that carries
// the credential. What to sign is told by Accept-Signature.
const AuthChallenge = `Signature realm="sessiongate", headers="Signature-Input Signature"`

// Dialect verifies native (RFC 9421) requests. It has no endpoints: hmac
// keys come from amatino logins, ed25519 keys from registration (sxt, the
// admin API, or the configuration).
type Dialect struct {
	m      *caddyauth.Manager
	o      Options
	policy rfc9421.Policy
}

// New returns the dialect over m with opts (defaults filled in), or an error
// naming the option that cannot work.
func New(m *caddyauth.Manager, opts Options) (*Dialect, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Dialect{m: m, o: opts, policy: opts.Policy()}, nil
}

// Options returns the effective options.
func (d *Dialect) Options() Options { return d.o }

// Challenge returns the Accept-Signature value (RFC 9421 §5.1) for a
// request with or without a body: what a signature must cover, so that a
// generic RFC 9421 client can learn the policy from a 401.
func (d *Dialect) Challenge(hasBody bool) string { return d.policy.AcceptSignature(hasBody) }

// Present reports whether r carries a native credential (Signature-Input or
// Signature), so that a request can be attributed to this dialect before it
// is verified.
func Present(r *http.Request) bool {
	h := r.Header
	return len(h[rfc9421.HeaderSignatureInput]) > 0 || len(h[rfc9421.HeaderSignature]) > 0
}

// StripCredentials removes Signature-Input and Signature so they are neither
// forwarded nor logged (SEC-43, SEC-44). Content-Digest stays: it describes
// the body, which is forwarded unchanged.
func StripCredentials(h http.Header) {
	delete(h, rfc9421.HeaderSignatureInput)
	delete(h, rfc9421.HeaderSignature)
}

// HasBody reports whether r has content, as the policy sees it: a declared
// non-zero length, or a chunked body (length unknown).
func HasBody(r *http.Request) bool { return r.ContentLength != 0 }
