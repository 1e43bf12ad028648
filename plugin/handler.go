package plugin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authenticates requests with sessiongate sessions.
//
// Requests to an enabled dialect's own endpoints (amatino: `POST /session`
// to log in, `DELETE /session` to log out; videntity: `POST /session/login`,
// `/session/ping`, `/session/logout`) are answered by the handler.
// Every other request must carry valid credentials of an enabled dialect;
// then the handler sets the identity headers (`X-Auth-User-Id`, and
// `X-Auth-User-Email` and `X-Auth-Username` where known) and the
// placeholders `{http.auth.user.id}`, `{http.auth.user.email}`,
// `{http.auth.user.username}` and `{http.auth.user.dialect}`, removes the
// credential headers, and passes the request on (usually to
// `reverse_proxy`). Any header with the identity prefix that the client sent
// is deleted first, in any case or `_` spelling.
//
// Refusals never reach the next handler: 401 with `WWW-Authenticate` and a
// JSON body `{"error": code, "message": text}`; 400 for malformed or
// ambiguous credentials; 413 for a body over the limit that had to be read;
// 503 with `Retry-After` when the store cannot answer.
type Handler struct {
	// Amatino enables the amatino dialect: its login and logout endpoints at
	// `/session` and HMAC-SHA512 request signatures.
	Amatino *AmatinoConfig `json:"amatino,omitempty"`

	// Videntity enables the videntity dialect: form login at
	// `/session/login` (alias `/sessions/login`), `/session/ping` and
	// `/session/logout` answered in XML, and session keys on proxied
	// requests (`X-Session-Key` header or `session_key` form field).
	Videntity *VidentityConfig `json:"videntity,omitempty"`

	// IdentityPrefix is the prefix of the headers the gateway sets for the
	// upstream. Every incoming header with this prefix is removed. Default:
	// `X-Auth-`.
	IdentityPrefix string `json:"identity_prefix,omitempty"`

	// KeepCredentials forwards the credentials (X-Session-ID, X-Signature,
	// X-Timestamp, X-Session-Key, a session_key form field) to the upstream
	// instead of removing them. Default: false.
	KeepCredentials bool `json:"keep_credentials,omitempty"`

	app       *App
	amatino   *amatino.Dialect
	videntity *videntity.Dialect
	prefix    string // lower case, '-' separated
	hdrID     string
	hdrMail   string
	hdrName   string
	logger    *zap.Logger
}

// AmatinoConfig configures the amatino dialect.
type AmatinoConfig struct {
	// Window is how far the signed second may be from the gateway's clock,
	// either way. Default: 30s.
	Window caddy.Duration `json:"window,omitempty"`
	// LegacyBodySignatures also accepts the body-signing variants of older
	// clients (raw body, or a compact re-serialisation of a JSON body).
	// Default: true.
	LegacyBodySignatures *bool `json:"legacy_body_signatures,omitempty"`
	// RequireBodySignature accepts only body-covering signatures. Default:
	// false.
	RequireBodySignature bool `json:"require_body_signature,omitempty"`
	// Replay is `observe` (count repeated signatures, let them through) or
	// `reject` (refuse them with 401). Current clients repeat signatures for
	// two requests to one path within one second. Default: observe.
	Replay string `json:"replay,omitempty"`
	// MaxBody bounds, in bytes, a body that must be read to check a
	// body-covering signature; larger bodies get 413. Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// SessionLifetime is the absolute lifetime of an amatino session.
	// Default: 24h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`
	// IdleTimeout ends a session after this long without use being
	// recorded. Amatino clients never ping, so it only makes sense with
	// IdleResetOnUse. Default: 0 (off).
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// IdleResetOnUse resets the idle timer on each verified request,
	// coalesced to at most one store write per session per tenth of the idle
	// timeout (at most a minute). Default: false.
	IdleResetOnUse bool `json:"idle_reset_on_use,omitempty"`
}

// VidentityConfig configures the videntity dialect.
type VidentityConfig struct {
	// IdleTimeout ends a session this long after its login or last ping.
	// At least 1m. Default: 30m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// SessionLifetime ends a session this long after login, whatever the
	// pings; not below IdleTimeout. Default: 24h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`
	// IdleResetOnUse also resets the idle timer on verified proxied
	// requests, coalesced to at most one store write per session per tenth
	// of the idle timeout (at most a minute). The videntity documentation
	// says only ping resets it. Default: false.
	IdleResetOnUse bool `json:"idle_reset_on_use,omitempty"`
	// MaxBody bounds, in bytes, a proxied form body read to find its
	// session_key; larger bodies get 413. Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.sessiongate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision connects the handler to the sessiongate app (created with
// defaults if the config has no global block).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("sessiongate")
	if err != nil {
		return fmt.Errorf("sessiongate handler: load app: %w", err)
	}
	h.app = appIface.(*App)
	if h.IdentityPrefix == "" {
		h.IdentityPrefix = "X-Auth-"
	}
	h.prefix = normHeader(h.IdentityPrefix)
	h.hdrID = h.IdentityPrefix + "User-Id"
	h.hdrMail = h.IdentityPrefix + "User-Email"
	h.hdrName = h.IdentityPrefix + "Username"
	if h.Amatino != nil {
		c := h.Amatino
		h.amatino, err = amatino.New(h.app.Manager(), amatino.Options{
			Window: time.Duration(c.Window), LegacyBodySignatures: c.LegacyBodySignatures,
			RequireBodySignature: c.RequireBodySignature, Replay: amatino.ReplayMode(c.Replay),
			MaxBody: c.MaxBody, SessionLifetime: time.Duration(c.SessionLifetime),
			IdleTimeout: time.Duration(c.IdleTimeout), IdleResetOnUse: c.IdleResetOnUse})
		if err != nil {
			return fmt.Errorf("sessiongate handler: %w", err)
		}
	}
	if h.Videntity != nil {
		c := h.Videntity
		h.videntity, err = videntity.New(h.app.Manager(), videntity.Options{
			IdleTimeout: time.Duration(c.IdleTimeout), SessionLifetime: time.Duration(c.SessionLifetime),
			IdleResetOnUse: c.IdleResetOnUse, MaxBody: c.MaxBody})
		if err != nil {
			return fmt.Errorf("sessiongate handler: %w", err)
		}
	}
	return nil
}

// Validate checks that at least one dialect is enabled.
func (h *Handler) Validate() error {
	if h.Amatino == nil && h.Videntity == nil {
		return fmt.Errorf("sessiongate handler: enable at least one dialect (amatino, videntity)")
	}
	if !validHeaderPrefix(h.IdentityPrefix) {
		return fmt.Errorf("sessiongate handler: identity_prefix %q is not a valid header name prefix", h.IdentityPrefix)
	}
	return nil
}

// ServeHTTP serves dialect endpoints, or verifies the request and passes it
// on with identity headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	r = h.withRequestContext(r)
	if ref := h.sanitize(r); ref != nil {
		h.refuse(w, r, "none", ref)
		return nil
	}
	if ep := h.endpoint(r); ep != nil {
		ep(w, r)
		h.stripCredentials(r)
		return nil
	}

	// Header-only dialects are asked first: videntity claims any form body.
	useAmatino := h.amatino != nil && amatino.Present(r)
	useVidentity := h.videntity != nil && videntity.Present(r)
	if useAmatino && useVidentity && videntity.HasKeyHeader(r) {
		h.stripCredentials(r)
		h.refuse(w, r, "none", &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest,
			Message: "credentials of more than one scheme", Result: caddyauth.ResultMalformed})
		return nil
	}
	var (
		dialect caddyauth.Dialect
		sess    *caddyauth.Session
		ref     *caddyauth.Refusal
		offset  int
	)
	start := time.Now()
	switch {
	case useAmatino:
		dialect = caddyauth.DialectAmatino
		var v *amatino.Verified
		if v, ref = h.amatino.Verify(r, amatino.SignedPath(r)); ref == nil {
			sess, offset = v.Session, v.Offset
		}
	case useVidentity:
		dialect = caddyauth.DialectVidentity
		var v *videntity.Verified
		if v, ref = h.videntity.Verify(r); ref == nil {
			sess = v.Session
		}
	default:
		h.stripCredentials(r)
		h.refuse(w, r, "none", &caddyauth.Refusal{Status: http.StatusUnauthorized,
			Code: caddyauth.CodeMissingCredentials, Message: "credentials required",
			Result: caddyauth.ResultMissing, Challenges: h.challenges()})
		return nil
	}
	verifyDuration.WithLabelValues(string(dialect)).Observe(time.Since(start).Seconds())
	h.stripCredentials(r)
	if ref != nil {
		h.refuse(w, r, string(dialect), ref)
		return nil
	}
	requestsTotal.WithLabelValues(string(dialect), caddyauth.ResultOK).Inc()
	if dialect == caddyauth.DialectAmatino {
		clockSkew.Observe(float64(offset))
	}
	h.setIdentity(r, sess, dialect)
	return next.ServeHTTP(w, r)
}

// endpoint returns the handler of an enabled dialect's own endpoint, if r
// is one.
func (h *Handler) endpoint(r *http.Request) http.HandlerFunc {
	if h.amatino != nil {
		if ep := h.amatino.Endpoint(r); ep != nil {
			return ep
		}
	}
	if h.videntity != nil {
		if ep := h.videntity.Endpoint(r); ep != nil {
			return ep
		}
	}
	return nil
}

// withRequestContext records what the engine needs from Caddy: the client
// IP Caddy derived (through trusted_proxies) and the request target before
// any rewrite.
func (h *Handler) withRequestContext(r *http.Request) *http.Request {
	ctx := r.Context()
	ip, _ := caddyhttp.GetVar(ctx, caddyhttp.ClientIPVarKey).(string)
	uri := r.RequestURI
	if orig, ok := ctx.Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		uri = orig.RequestURI
	}
	ctx = caddyauth.WithClientIP(ctx, ip)
	ctx = caddyauth.WithRequestURI(ctx, uri)
	return r.WithContext(ctx)
}

// sanitize deletes every identity header the client sent, whatever its case
// or `_` spelling (SEC-40, SEC-41), and refuses a request whose Connection
// header names one of them (Caddy's proxy would delete our header; SEC-42)
// or that announces one as a trailer.
func (h *Handler) sanitize(r *http.Request) *caddyauth.Refusal {
	for name := range r.Header {
		if strings.HasPrefix(normHeader(name), h.prefix) {
			delete(r.Header, name)
		}
	}
	for _, name := range []string{"Connection", "Trailer"} {
		for _, v := range r.Header.Values(name) {
			for _, tok := range strings.Split(v, ",") {
				if strings.HasPrefix(normHeader(strings.TrimSpace(tok)), h.prefix) {
					return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest,
						Message: name + " header names a gateway identity header", Result: caddyauth.ResultMalformed}
				}
			}
		}
	}
	for name := range r.Trailer {
		if strings.HasPrefix(normHeader(name), h.prefix) {
			return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest,
				Message: "trailer names a gateway identity header", Result: caddyauth.ResultMalformed}
		}
	}
	return nil
}

func (h *Handler) stripCredentials(r *http.Request) {
	if h.KeepCredentials {
		return
	}
	if h.amatino != nil {
		amatino.StripCredentials(r.Header)
	}
	if h.videntity != nil {
		videntity.StripCredentials(r)
	}
}

func (h *Handler) setIdentity(r *http.Request, s *caddyauth.Session, d caddyauth.Dialect) {
	id := strconv.FormatInt(s.UserID, 10)
	var email, name string
	if u, err := h.app.Manager().Users().UserByID(r.Context(), s.UserID); err == nil {
		email, name = u.Email, u.Username
	}
	r.Header.Set(h.hdrID, id)
	if email != "" {
		r.Header.Set(h.hdrMail, email)
	}
	if name != "" {
		r.Header.Set(h.hdrName, name)
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", id)
		repl.Set("http.auth.user.email", email)
		repl.Set("http.auth.user.username", name)
		repl.Set("http.auth.user.dialect", string(d))
	}
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, dialect string, ref *caddyauth.Refusal) {
	result := ref.Result
	if result == "" {
		result = caddyauth.ResultMalformed
	}
	requestsTotal.WithLabelValues(dialect, result).Inc()
	h.app.Manager().Audit(caddyauth.Event{Type: "refused", Dialect: caddyauth.Dialect(dialect), Reason: ref.Code,
		ClientIP: caddyauth.ClientIP(r.Context())})
	ref.Write(w)
}

func (h *Handler) challenges() []string {
	var c []string
	if h.amatino != nil {
		c = append(c, amatino.Challenge)
	}
	if h.videntity != nil {
		c = append(c, videntity.Challenge)
	}
	return c
}

// normHeader folds a header name for comparison: lower case, `_` as `-`.
func normHeader(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

func validHeaderPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range p {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
