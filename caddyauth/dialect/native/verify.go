package native

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// Verified is a request that passed verification.
type Verified struct {
	// UserID is the authenticated user: the session's owner (hmac-sha256)
	// or the key's owner (ed25519).
	UserID int64
	// Session is the hmac-sha256 session (shared with the cache: read
	// only); nil for ed25519, which has none.
	Session *caddyauth.Session
	// KeyID is the signature's keyid; for hmac-sha256 it is a session id,
	// so never log it raw.
	KeyID string
	// Alg is the key's algorithm.
	Alg rfc9421.Algorithm
	// Skew is the signature's created time minus the gateway's, in whole
	// seconds: positive when the client's clock is ahead.
	Skew time.Duration
}

// ed25519KeyIDPrefix starts every public key id (caddyauth.PublicKeyID).
const ed25519KeyIDPrefix = "ed25519-"

type authorityKey struct{}

// WithAuthority records the Host the client sent, before any server-side
// rewrite, for @authority: signatures cover what the client sent (SEC-28).
func WithAuthority(ctx context.Context, host string) context.Context {
	return context.WithValue(ctx, authorityKey{}, host)
}

// SignedRequest returns what the client signed: r as net/http parsed it,
// with the request target (caddyauth.WithRequestURI) and the authority
// (WithAuthority) as the client sent them when they were recorded.
func SignedRequest(r *http.Request) rfc9421.Request {
	req := rfc9421.FromHTTP(r)
	if uri := caddyauth.RequestURI(r.Context()); uri != "" {
		req.Target = uri
	}
	if host, _ := r.Context().Value(authorityKey{}).(string); host != "" {
		req.Authority = host
	}
	return req
}

// Verify checks the native credentials of r (see the package doc for the
// order of the checks). On success the body, if it had to be read, has been
// put back byte for byte and the nonce is spent.
func (d *Dialect) Verify(r *http.Request) (*Verified, *caddyauth.Refusal) {
	ctx := r.Context()
	req := SignedRequest(r)
	v := &Verified{}
	res, err := rfc9421.Verify(ctx, req, d.resolver(v), d.policy, d.m.Now())
	if err != nil {
		return nil, d.refusal(err, req.HasBody)
	}
	v.KeyID, v.Alg, v.Skew = res.KeyID, res.Key.Alg, res.Skew

	if res.CoversDigest {
		body, ref := readBody(r, d.o.MaxBody)
		if ref != nil {
			return nil, ref
		}
		if req.HasBody {
			restoreBody(r, body)
		}
		if err := rfc9421.VerifyContentDigest(r.Header[rfc9421.HeaderContentDigest], body); err != nil {
			return nil, d.refusal(err, req.HasBody)
		}
	}

	if err := rfc9421.CheckReplay(ctx, d.m, res, d.policy); err != nil {
		if !errors.Is(err, rfc9421.ErrReplay) {
			return nil, caddyauth.Unavailable()
		}
		d.m.Observer().Replay(caddyauth.DialectNative, "rejected")
		e := caddyauth.Event{Type: "replay", Dialect: caddyauth.DialectNative, Reason: "rejected",
			UserID: v.UserID, ClientIP: caddyauth.ClientIP(ctx)}
		if v.Session != nil {
			e.SessionHash = d.m.LogHash(v.Session.ID)
		} else {
			e.KeyID = v.KeyID
		}
		d.m.Audit(e)
		return nil, d.refusal(err, req.HasBody)
	}

	if d.o.IdleResetOnUse && v.Session != nil {
		d.m.Used(ctx, v.Session, idleTimeout(v.Session))
	}
	return v, nil
}

// idleTimeout is the session's idle timeout as its login set it: the idle
// deadline's distance from the last use. A session does not store the
// timeout itself; near the absolute deadline, where the idle deadline is
// capped, this is shorter, which only makes touches more frequent.
func idleTimeout(s *caddyauth.Session) time.Duration {
	if s.IdleDeadline.IsZero() {
		return 0
	}
	return s.IdleDeadline.Sub(s.LastSeen)
}

// resolver finds the key of a keyid and records whose it is in v.
func (d *Dialect) resolver(v *Verified) rfc9421.KeyResolver {
	return rfc9421.KeyResolverFunc(func(ctx context.Context, keyID string) (rfc9421.Key, error) {
		if strings.HasPrefix(keyID, ed25519KeyIDPrefix) {
			return d.userKey(ctx, keyID, v)
		}
		return d.sessionKey(ctx, keyID, v)
	})
}

// sessionKey resolves an hmac-sha256 keyid: the decimal id of a live
// session holding an HMAC key. The syntax is checked before any lookup, so a
// keyid that cannot be a session id costs no cache or store access
// (SEC-36).
func (d *Dialect) sessionKey(ctx context.Context, keyID string, v *Verified) (rfc9421.Key, error) {
	if _, ok := caddyauth.ParsePositiveDecimal(keyID); !ok {
		return rfc9421.Key{}, rfc9421.ErrUnknownKey
	}
	s, err := d.m.Session(ctx, keyID)
	switch {
	case err == nil && s.Kind == caddyauth.KindHMACKey && len(s.Secret) > 0:
		v.UserID, v.Session = s.UserID, s
		return rfc9421.HMACKey(s.Secret), nil
	case err == nil, errors.Is(err, caddyauth.ErrUnknownSession):
		// A session of another kind has no HMAC key: as unknown as none.
		return rfc9421.Key{}, rfc9421.ErrUnknownKey
	}
	// ErrSessionExpired or ErrUnavailable, told apart by the caller.
	return rfc9421.Key{}, err
}

// userKey resolves an ed25519 keyid: a registered public key of an enabled
// user. The id's shape is checked before the directory is asked.
func (d *Dialect) userKey(ctx context.Context, keyID string, v *Verified) (rfc9421.Key, error) {
	if !validPublicKeyID(keyID) {
		return rfc9421.Key{}, rfc9421.ErrUnknownKey
	}
	u, err := d.m.Users().UserByKeyID(ctx, keyID)
	switch {
	case errors.Is(err, caddyauth.ErrNotFound):
		return rfc9421.Key{}, rfc9421.ErrUnknownKey
	case err != nil:
		d.m.Observer().StoreError("get_user")
		return rfc9421.Key{}, caddyauth.ErrUnavailable
	}
	pk := u.Key(keyID)
	if u.Disabled || pk == nil {
		// A disabled user's keys are as unknown as unregistered ones: the
		// answer does not tell an attacker which keys exist.
		return rfc9421.Key{}, rfc9421.ErrUnknownKey
	}
	v.UserID = u.ID
	return rfc9421.Ed25519Verifier(pk.Key), nil
}

// validPublicKeyID reports whether id has the shape of caddyauth.PublicKeyID:
// the prefix and 16 unpadded base64url characters (12 bytes).
func validPublicKeyID(id string) bool {
	rest, ok := strings.CutPrefix(id, ed25519KeyIDPrefix)
	if !ok || len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// refusal turns a verification error into the gateway's answer: the
// rfc9421 code and status, the requests_total result, "missing" for
// insufficient coverage, the server's time for clock errors, and
// Accept-Signature where it tells the client what to sign. Errors that are
// not refusals (a store that cannot answer) are 503, never 401 (REL-01).
func (d *Dialect) refusal(err error, hasBody bool) *caddyauth.Refusal {
	e, ok := rfc9421.AsError(err)
	if !ok {
		if errors.Is(err, caddyauth.ErrSessionExpired) {
			return unauthorized(caddyauth.CodeSessionExpired, "session expired", caddyauth.ResultExpired)
		}
		return caddyauth.Unavailable()
	}
	msg := e.Detail
	if msg == "" {
		msg = strings.ReplaceAll(string(e.Code), "_", " ")
	}
	ref := &caddyauth.Refusal{Status: e.Status(), Code: string(e.Code), Message: msg, Result: resultOf(e.Code),
		Missing: e.Missing}
	if ref.Status == http.StatusUnauthorized {
		ref.Challenges = []string{AuthChallenge}
	}
	switch e.Code {
	case rfc9421.CodeClockSkew, rfc9421.CodeExpired:
		ref.ServerTime, ref.Skew = e.ServerTime, e.Skew
	case rfc9421.CodeMissingSignature, rfc9421.CodeInsufficientCoverage:
		ref.Header = http.Header{rfc9421.HeaderAcceptSignature: {d.Challenge(hasBody)}}
	}
	return ref
}

// resultOf maps a refusal code to its requests_total result.
func resultOf(c rfc9421.Code) string {
	switch c {
	case rfc9421.CodeMissingSignature:
		return caddyauth.ResultMissing
	case rfc9421.CodeUnknownKey:
		return caddyauth.ResultUnknownSession
	case rfc9421.CodeClockSkew, rfc9421.CodeExpired:
		return caddyauth.ResultExpired
	case rfc9421.CodeBadSignature:
		return caddyauth.ResultBadSignature
	case rfc9421.CodeReplay:
		return caddyauth.ResultReplay
	}
	// malformed_signature, unsupported_algorithm, insufficient_coverage.
	return caddyauth.ResultMalformed
}

func unauthorized(code, msg, result string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: code, Message: msg, Result: result,
		Challenges: []string{AuthChallenge}}
}

// readBody reads a body of at most max bytes, answering 413 beyond.
func readBody(r *http.Request, max int64) ([]byte, *caddyauth.Refusal) {
	b, err := caddyauth.ReadBody(r, max)
	switch {
	case errors.Is(err, caddyauth.ErrBodyTooLarge):
		return nil, &caddyauth.Refusal{Status: http.StatusRequestEntityTooLarge, Code: caddyauth.CodeBodyTooLarge,
			Message: "request body too large", Result: caddyauth.ResultMalformed}
	case err != nil:
		return nil, &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest,
			Message: "cannot read request body", Result: caddyauth.ResultMalformed}
	}
	return b, nil
}

// restoreBody puts a fully read body back so it is forwarded byte for byte,
// now with a known length.
func restoreBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.TransferEncoding = nil
	r.GetBody = nil
}
