package plugin

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/native"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authenticates requests with sessiongate sessions.
//
// Requests to an enabled dialect's own endpoints (amatino: `POST /session`
// to log in, `DELETE /session` to log out; videntity: `POST /session/login`,
// `/session/ping`, `/session/logout`; sxt: `<prefix>/auth/idexists/{userId}`,
// `code`, `token`, `refresh`, `validtoken`, `logout`) are answered by the
// handler.
// Every other request must carry valid credentials of an enabled dialect
// (native: an RFC 9421 `Signature-Input` and `Signature`, see NativeConfig);
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

	// Sxt enables the sxt dialect: Ed25519 challenge login, access and
	// refresh tokens at `<prefix>/auth/…` (default prefix `/v1`), and
	// `Authorization: Bearer <access token>` on proxied requests.
	Sxt *SxtConfig `json:"sxt,omitempty"`

	// Native enables the gateway's own scheme: RFC 9421 HTTP Message
	// Signatures (`Signature-Input` and `Signature`) with hmac-sha256 keyed
	// by an amatino session's api key (keyid = the session id) or ed25519
	// with a user's registered public key, under a server-enforced coverage
	// policy, single-use nonces and `Content-Digest` over the body. It has
	// no endpoints of its own.
	Native *NativeConfig `json:"native,omitempty"`

	// IdentityPrefix is the prefix of the headers the gateway sets for the
	// upstream. Every incoming header with this prefix is removed. Default:
	// `X-Auth-`.
	IdentityPrefix string `json:"identity_prefix,omitempty"`

	// KeepCredentials forwards the credentials (X-Session-ID, X-Signature,
	// X-Timestamp, X-Session-Key, a session_key form field, a bearer
	// Authorization header, Signature-Input and Signature) to the upstream
	// instead of removing them.
	// Default: false.
	KeepCredentials bool `json:"keep_credentials,omitempty"`

	app       *App
	amatino   *amatino.Dialect
	videntity *videntity.Dialect
	sxt       *sxt.Dialect
	native    *native.Dialect
	prefix    string // lower case, '-' separated
	hdrID     string // the identity headers, in canonical form
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

// SxtConfig configures the sxt dialect.
type SxtConfig struct {
	// Prefix is the path the auth endpoints live under
	// (`<prefix>/auth/code`, …); `/` puts them at the root. Default: `/v1`.
	Prefix string `json:"prefix,omitempty"`
	// Registration says whether a first login of an unknown userId
	// registers it with the key it used: `closed` (never), `open`
	// (anyone), or `join_code` (only when its auth/code request carried
	// JoinCode). Default: closed.
	Registration string `json:"registration,omitempty"`
	// JoinCode is the code new users must send with `registration
	// join_code`. Use a placeholder such as `{env.SXT_JOIN_CODE}`.
	JoinCode string `json:"join_code,omitempty"`
	// CodeLifetime is how long an auth code can be answered; at most 5m.
	// Default: 30s.
	CodeLifetime caddy.Duration `json:"code_lifetime,omitempty"`
	// AccessLifetime is the lifetime of an access token; not above
	// RefreshLifetime. Default: 25m.
	AccessLifetime caddy.Duration `json:"access_lifetime,omitempty"`
	// RefreshLifetime is the lifetime of a refresh token: a session
	// nobody refreshes within it ends. Not above SessionLifetime.
	// Default: 30m.
	RefreshLifetime caddy.Duration `json:"refresh_lifetime,omitempty"`
	// SessionLifetime is the absolute lifetime of a session from its
	// login; refreshing never extends it. Default: 24h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`
	// RefreshGrace is how long after a refresh the same refresh token may
	// be presented again and get the identical new pair (a client retrying
	// a lost answer) instead of ending the session as reuse; at most 60s.
	// Default: 0s.
	RefreshGrace caddy.Duration `json:"refresh_grace,omitempty"`
	// RefreshAcceptsAccessToken accepts the access token on auth/refresh,
	// for the one client that sends it there. Default: false.
	RefreshAcceptsAccessToken bool `json:"refresh_accepts_access_token,omitempty"`
	// Realm is the realm of the `WWW-Authenticate: Bearer` challenges.
	// Default: `sessiongate`.
	Realm string `json:"realm,omitempty"`
}

// NativeConfig configures the native (RFC 9421) scheme. The policy fields'
// zero values are the defaults; an empty list means its default.
type NativeConfig struct {
	// RequireComponents are the components every signature must cover.
	// Default: `@method @authority @path @query`.
	RequireComponents []string `json:"require_components,omitempty"`
	// RequireBodyComponents must also be covered when the request has a
	// body. Default: `content-digest content-type`.
	RequireBodyComponents []string `json:"require_body_components,omitempty"`
	// RequireParams are the signature parameters every signature must
	// carry; keyid is mandatory, and nonce needs created. Default: `created
	// keyid nonce`.
	RequireParams []string `json:"require_params,omitempty"`
	// PastWindow is how old a signature's `created` may be; whole seconds
	// up to 1h. Default: 300s.
	PastWindow caddy.Duration `json:"past_window,omitempty"`
	// FutureWindow is how far ahead of the gateway's clock `created` may
	// be; whole seconds up to 1h. Default: 5s.
	FutureWindow caddy.Duration `json:"future_window,omitempty"`
	// IgnoreExpires accepts signatures past their own `expires`
	// parameter. Default: false (honoured).
	IgnoreExpires bool `json:"ignore_expires,omitempty"`
	// Label is the signature label to verify when a request carries
	// several. Default: none (exactly one signature).
	Label string `json:"label,omitempty"`
	// MaxBody bounds, in bytes, a body read to check its Content-Digest;
	// larger bodies get 413. Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// IdleResetOnUse resets an hmac-sha256 session's idle timer on each
	// verified request, coalesced to at most one store write per session
	// per tenth of the idle timeout (at most a minute). Default: false.
	IdleResetOnUse bool `json:"idle_reset_on_use,omitempty"`
}

// options converts the config to the dialect's options.
func (c *NativeConfig) options() native.Options {
	return native.Options{Components: c.RequireComponents, BodyComponents: c.RequireBodyComponents,
		Params: c.RequireParams, PastWindow: time.Duration(c.PastWindow), FutureWindow: time.Duration(c.FutureWindow),
		IgnoreExpires: c.IgnoreExpires, Label: c.Label, MaxBody: c.MaxBody, IdleResetOnUse: c.IdleResetOnUse}
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
	return h.provision(appIface.(*App))
}

// provision sets the handler up on app: Provision without the Caddy context,
// so tests and benchmarks can build a handler on an app of their own.
func (h *Handler) provision(app *App) error {
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	h.app = app
	var err error
	if h.IdentityPrefix == "" {
		h.IdentityPrefix = "X-Auth-"
	}
	h.prefix = normHeader(h.IdentityPrefix)
	// Canonical once here, as Header.Set would make them on every request.
	h.hdrID = textproto.CanonicalMIMEHeaderKey(h.IdentityPrefix + "User-Id")
	h.hdrMail = textproto.CanonicalMIMEHeaderKey(h.IdentityPrefix + "User-Email")
	h.hdrName = textproto.CanonicalMIMEHeaderKey(h.IdentityPrefix + "Username")
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
	if h.Sxt != nil {
		c := h.Sxt
		warnLiteralSecret(h.logger, "sxt join_code", c.JoinCode)
		h.sxt, err = sxt.New(h.app.Manager(), sxt.Options{Prefix: c.Prefix,
			Registration: sxt.Registration(c.Registration), JoinCode: caddy.NewReplacer().ReplaceKnown(c.JoinCode, ""),
			CodeLifetime: time.Duration(c.CodeLifetime), AccessLifetime: time.Duration(c.AccessLifetime),
			RefreshLifetime: time.Duration(c.RefreshLifetime), SessionLifetime: time.Duration(c.SessionLifetime),
			RefreshGrace: time.Duration(c.RefreshGrace), RefreshAcceptsAccessToken: c.RefreshAcceptsAccessToken,
			Realm: c.Realm})
		if err != nil {
			return fmt.Errorf("sessiongate handler: %w", err)
		}
	}
	if h.Native != nil {
		if h.native, err = native.New(h.app.Manager(), h.Native.options()); err != nil {
			return fmt.Errorf("sessiongate handler: %w", err)
		}
	}
	return nil
}

// Validate checks that at least one dialect is enabled.
func (h *Handler) Validate() error {
	if h.Amatino == nil && h.Videntity == nil && h.Sxt == nil && h.Native == nil {
		return fmt.Errorf("sessiongate handler: enable at least one dialect (amatino, native, sxt, videntity)")
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

	// Exactly one credential scheme per request. Header-only dialects are
	// asked first: videntity claims any form body, so only its key header
	// counts as a second scheme.
	useAmatino := h.amatino != nil && amatino.Present(r)
	useSxt := h.sxt != nil && sxt.Present(r)
	useNative := h.native != nil && native.Present(r)
	useVidentity := h.videntity != nil && videntity.Present(r)
	schemes := 0
	for _, used := range []bool{useAmatino, useSxt, useNative, useVidentity && videntity.HasKeyHeader(r)} {
		if used {
			schemes++
		}
	}
	if schemes > 1 {
		h.stripCredentials(r)
		h.refuse(w, r, "none", &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest,
			Message: "credentials of more than one scheme", Result: caddyauth.ResultMalformed})
		return nil
	}
	var (
		dialect caddyauth.Dialect
		userID  int64
		ref     *caddyauth.Refusal
		offset  int
	)
	start := time.Now()
	switch {
	case useAmatino:
		dialect = caddyauth.DialectAmatino
		var v *amatino.Verified
		if v, ref = h.amatino.Verify(r, amatino.SignedPath(r)); ref == nil {
			userID, offset = v.Session.UserID, v.Offset
		}
	case useSxt:
		dialect = caddyauth.DialectSXT
		var v *sxt.Verified
		if v, ref = h.sxt.Verify(r); ref == nil {
			userID = v.Session.UserID
		}
	case useNative:
		dialect = caddyauth.DialectNative
		var v *native.Verified
		if v, ref = h.native.Verify(r); ref == nil {
			userID, offset = v.UserID, int(v.Skew/time.Second)
		}
	case useVidentity:
		dialect = caddyauth.DialectVidentity
		var v *videntity.Verified
		if v, ref = h.videntity.Verify(r); ref == nil {
			userID = v.Session.UserID
		}
	default:
		h.stripCredentials(r)
		ref := &caddyauth.Refusal{Status: http.StatusUnauthorized,
			Code: caddyauth.CodeMissingCredentials, Message: "credentials required",
			Result: caddyauth.ResultMissing, Challenges: h.challenges()}
		if h.native != nil {
			// RFC 9421 §5.1: tell a generic client what to sign.
			ref.Header = http.Header{"Accept-Signature": {h.native.Challenge(native.HasBody(r))}}
		}
		h.refuse(w, r, "none", ref)
		return nil
	}
	verifyByDialect.one(string(dialect)).Observe(time.Since(start).Seconds())
	h.stripCredentials(r)
	if ref != nil {
		h.refuse(w, r, string(dialect), ref)
		return nil
	}
	if ref := h.setIdentity(r, userID, dialect); ref != nil {
		h.refuse(w, r, string(dialect), ref)
		return nil
	}
	requestsByDialect.two(string(dialect), caddyauth.ResultOK).Inc()
	if dialect == caddyauth.DialectAmatino || dialect == caddyauth.DialectNative {
		clockSkew.Observe(float64(offset))
	}
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
	if h.sxt != nil {
		if ep := h.sxt.Endpoint(r); ep != nil {
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
	uri, host := r.RequestURI, r.Host
	if orig, ok := ctx.Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		uri, host = orig.RequestURI, orig.Host
	}
	ctx = caddyauth.WithClientIP(ctx, ip)
	ctx = caddyauth.WithRequestURI(ctx, uri)
	if h.native != nil {
		ctx = native.WithAuthority(ctx, host)
	}
	return r.WithContext(ctx)
}

// sanitize deletes every identity header the client sent, whatever its case
// or `_` spelling (SEC-40, SEC-41), and refuses a request whose Connection
// header names one of them (Caddy's proxy would delete our header; SEC-42)
// or that announces one as a trailer.
func (h *Handler) sanitize(r *http.Request) *caddyauth.Refusal {
	for name := range r.Header {
		if hasHeaderPrefix(name, h.prefix) {
			delete(r.Header, name)
		}
	}
	for _, name := range [...]string{"Connection", "Trailer"} {
		for _, v := range r.Header.Values(name) {
			// The tokens of strings.Split(v, ","), without the slice.
			for more := true; more; {
				var tok string
				tok, v, more = strings.Cut(v, ",")
				if hasHeaderPrefix(strings.TrimSpace(tok), h.prefix) {
					return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest,
						Message: name + " header names a gateway identity header", Result: caddyauth.ResultMalformed}
				}
			}
		}
	}
	for name := range r.Trailer {
		if hasHeaderPrefix(name, h.prefix) {
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
	if h.sxt != nil {
		sxt.StripCredentials(r.Header)
	}
	if h.native != nil {
		native.StripCredentials(r.Header)
	}
}

// setIdentity sets the identity headers and placeholders of a verified
// request. The user comes through the Manager's identity cache; a user that
// is gone refuses the request (401), and a store that cannot answer gives
// 503 rather than a request forwarded without the identity it should carry.
func (h *Handler) setIdentity(r *http.Request, userID int64, d caddyauth.Dialect) *caddyauth.Refusal {
	id := strconv.FormatInt(userID, 10)
	u, err := h.app.Manager().IdentityUser(r.Context(), userID)
	switch {
	case err == nil:
	case errors.Is(err, caddyauth.ErrNotFound):
		return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: caddyauth.CodeUnknownSession,
			Message: "unknown session", Result: caddyauth.ResultUnknownSession, Challenges: h.challenges()}
	default:
		return caddyauth.Unavailable()
	}
	email, name := u.Email, u.Username
	// What Header.Set does (the keys are canonical already), with one
	// backing array for the three values instead of one allocation each;
	// each slice is capped, so a later append copies rather than writing
	// into its neighbour.
	vals := []string{id, email, name}
	r.Header[h.hdrID] = vals[0:1:1]
	if email != "" {
		r.Header[h.hdrMail] = vals[1:2:2]
	}
	if name != "" {
		r.Header[h.hdrName] = vals[2:3:3]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", id)
		repl.Set("http.auth.user.email", email)
		repl.Set("http.auth.user.username", name)
		repl.Set("http.auth.user.dialect", dialectValue(d))
	}
	return nil
}

// dialectValues are the dialect names boxed once, so setting the dialect
// placeholder allocates nothing.
var dialectValues = func() []any {
	v := make([]any, len(dialectLabels))
	for i, d := range dialectLabels {
		v[i] = d
	}
	return v
}()

// dialectValue is string(d) as an interface value.
func dialectValue(d caddyauth.Dialect) any {
	if i := indexOf(dialectLabels, string(d)); i >= 0 {
		return dialectValues[i]
	}
	return string(d)
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, dialect string, ref *caddyauth.Refusal) {
	result := ref.Result
	if result == "" {
		result = caddyauth.ResultMalformed
	}
	requestsByDialect.two(dialect, result).Inc()
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
	if h.sxt != nil {
		c = append(c, h.sxt.Challenge())
	}
	if h.native != nil {
		c = append(c, native.AuthChallenge)
	}
	return c
}

// normHeader folds a header name for comparison: lower case, `_` as `-`.
func normHeader(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// hasHeaderPrefix reports whether normHeader(name) starts with prefix, a
// normHeader-folded ASCII prefix, without building the folded copy: sanitize
// asks it of every header of every request. Folding is per character, so
// while name is ASCII its first len(prefix) bytes decide alone. A non-ASCII
// byte, which real header names never hold, takes normHeader itself, so
// that Unicode case mapping (the Kelvin sign lower-cases to `k`) deletes
// exactly what it always did.
func hasHeaderPrefix(name, prefix string) bool {
	for i := 0; i < len(prefix); i++ {
		if i == len(name) {
			return false
		}
		c := name[i]
		switch {
		case c >= utf8.RuneSelf:
			return strings.HasPrefix(normHeader(name), prefix)
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
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
