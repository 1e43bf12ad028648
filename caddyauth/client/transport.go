package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// Mode says how the Transport signs requests.
type Mode int

// Signing modes.
const (
	// ModeAmatino signs the legacy way (WIRE.md, amatino): X-Session-ID and
	// X-Signature = base64(HMAC-SHA512(api key, unix seconds ++ path)). The
	// method, query and (by default) body are not covered; use it to test
	// compatibility, not for new clients.
	ModeAmatino Mode = iota + 1
	// ModeRFC9421HMAC logs in the amatino way, then signs every request
	// with RFC 9421 hmac-sha256: keyid = the session id, key = the api key
	// string's bytes, a fresh nonce, created = now, and Content-Digest for
	// a body.
	ModeRFC9421HMAC
	// ModeRFC9421Ed25519 signs with RFC 9421 ed25519 under a user's
	// registered key; keyid = the id the gateway assigned to the key. No
	// session is needed; the sxt key flow (Config.SXT) can run first to
	// register the key.
	ModeRFC9421Ed25519
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeAmatino:
		return "amatino"
	case ModeRFC9421HMAC:
		return "rfc9421-hmac"
	case ModeRFC9421Ed25519:
		return "rfc9421-ed25519"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// DefaultMaxBody bounds the request body the Transport buffers to digest
// and sign: the gateway's default body limit for signed requests.
const DefaultMaxBody = 10 << 20

// maxAnswer bounds the gateway answers the Transport reads itself (login,
// refusals): they are small JSON objects.
const maxAnswer = 64 << 10

// Config configures a Transport.
type Config struct {
	// Mode is how requests are signed. Required.
	Mode Mode
	// BaseURL is the gateway's origin, e.g. "http://127.0.0.1:8080", where
	// POST /session (and the sxt endpoints under SXT.Prefix) are. Empty:
	// the scheme and host of the first request.
	BaseURL string
	// Base sends the signed requests. Default: http.DefaultTransport.
	Base http.RoundTripper
	// Login logs in (POST /session) on first use when Session is nil,
	// and again when the gateway says the session is gone. Amatino and
	// hmac modes need Login or Session.
	Login *PasswordLogin
	// Session is a session obtained elsewhere; it is used as is.
	Session *Session
	// PrivateKey is the Ed25519 key of ModeRFC9421Ed25519.
	PrivateKey ed25519.PrivateKey
	// KeyID is the keyid of ModeRFC9421Ed25519. Default: the id the gateway
	// assigns to PrivateKey's public key (caddyauth.PublicKeyID).
	KeyID string
	// SXT, in ModeRFC9421Ed25519, runs the sxt key flow (auth code signed
	// with PrivateKey) once before the first request, which registers the
	// key when the gateway's registration is open.
	SXT *SXTLogin
	// Components are the RFC 9421 components covered on every request.
	// Default: @method, @authority, @path, @query (the gateway's default
	// policy).
	Components []string
	// BodyComponents are also covered when the request has a body.
	// Default: content-digest, content-type.
	BodyComponents []string
	// Digest is the Content-Digest algorithm. Default: sha-256.
	Digest rfc9421.DigestAlgorithm
	// SendAlg adds the alg parameter to RFC 9421 signatures. Off by
	// default: the gateway knows each key's algorithm.
	SendAlg bool
	// Label is the RFC 9421 signature label. Default: "sig1".
	Label string
	// MaxBody bounds the request body buffered for the digest; a larger
	// body fails the request before anything is sent. Default:
	// DefaultMaxBody.
	MaxBody int64
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Rand is the source of nonces. Default: crypto/rand.
	Rand io.Reader
	// AmatinoTimestamp, in ModeAmatino, sends X-Timestamp so the gateway
	// checks that one second only.
	AmatinoTimestamp bool
	// AmatinoBody, in ModeAmatino, appends the raw body to the signed
	// message, as clients from before mid-2020 did.
	AmatinoBody bool
	// NoRetry disables the one automatic retry after a clock_skew refusal
	// (with the clock corrected by the server's time) or after the gateway
	// reports the session unknown or expired, or the hmac keyid unknown
	// (with a new login).
	NoRetry bool
}

// Transport is an http.RoundTripper that logs in and signs every request.
// It never changes the caller's request: it signs and sends a clone. It is
// safe for concurrent use; concurrent first requests share one login.
type Transport struct {
	cfg  Config
	base http.RoundTripper

	loginMu sync.Mutex // serialises logins; never held with mu

	mu      sync.Mutex
	origin  string
	sess    *Session
	tokens  *Tokens
	sxtDone bool
	offset  time.Duration // server clock minus ours, learnt from clock_skew
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport for c, or an error naming what is missing or
// inconsistent.
func New(c Config) (*Transport, error) {
	switch c.Mode {
	case ModeAmatino, ModeRFC9421HMAC:
		if c.Session == nil && c.Login == nil {
			return nil, fmt.Errorf("client: %s mode needs Login or Session", c.Mode)
		}
		if c.Login != nil {
			if err := c.Login.check(); err != nil {
				return nil, err
			}
		}
		if c.Session != nil && (c.Session.APIKey == "" || c.Session.SessionID <= 0) {
			return nil, errors.New("client: Session needs an api key and a positive session id")
		}
	case ModeRFC9421Ed25519:
		if len(c.PrivateKey) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("client: ed25519 mode needs a %d-byte PrivateKey", ed25519.PrivateKeySize)
		}
		if c.KeyID == "" {
			c.KeyID = caddyauth.PublicKeyID(c.PrivateKey.Public().(ed25519.PublicKey))
		}
		if c.SXT != nil && c.SXT.UserID == "" {
			return nil, errors.New("client: SXT needs a UserID")
		}
	default:
		return nil, fmt.Errorf("client: unknown mode %d", int(c.Mode))
	}
	if c.Components == nil {
		c.Components = rfc9421.DefaultPolicy().Components
	}
	if c.BodyComponents == nil {
		c.BodyComponents = rfc9421.DefaultPolicy().BodyComponents
	}
	if c.Mode != ModeAmatino {
		p := rfc9421.Policy{Components: c.Components, BodyComponents: c.BodyComponents, Label: c.Label}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if c.Digest == "" {
		c.Digest = rfc9421.DigestSHA256
	}
	if _, err := rfc9421.ContentDigest(c.Digest, nil); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBody < 0 {
		return nil, errors.New("client: MaxBody must not be negative")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	t := &Transport{cfg: c, base: c.Base}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if c.BaseURL != "" {
		t.origin = strings.TrimSuffix(c.BaseURL, "/")
	}
	if c.Session != nil {
		s := *c.Session
		t.sess = &s
	}
	return t, nil
}

// Client returns an http.Client that sends through t.
func (t *Transport) Client() *http.Client { return &http.Client{Transport: t} }

// Session returns the current session, if logged in.
func (t *Transport) Session() (Session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess == nil {
		return Session{}, false
	}
	return *t.sess, true
}

// Tokens returns the sxt tokens of the key flow, if it ran.
func (t *Transport) Tokens() (Tokens, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tokens == nil {
		return Tokens{}, false
	}
	return *t.tokens, true
}

// ClockOffset is what the Transport adds to its clock: the server's time
// minus its own, learnt from a clock_skew refusal (0 until then).
func (t *Transport) ClockOffset() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.offset
}

func (t *Transport) now() time.Time {
	t.mu.Lock()
	off := t.offset
	t.mu.Unlock()
	return t.cfg.Now().Add(off)
}

// RoundTrip logs in if needed, signs a clone of req and sends it. The body
// is buffered (at most MaxBody bytes) so that it can be digested, sent, and
// sent again on the one retry; req.Body is always closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := t.readBody(req)
	if err != nil {
		return nil, err
	}
	t.learnOrigin(req)
	resp, used, err := t.send(req, body)
	if err != nil || t.cfg.NoRetry || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ref := peekRefusal(resp)
	switch {
	case ref.Code == string(rfc9421.CodeClockSkew) && ref.ServerTime > 0:
		t.mu.Lock()
		t.offset = time.Unix(ref.ServerTime, 0).Sub(t.cfg.Now().Truncate(time.Second))
		t.mu.Unlock()
	case t.cfg.Login != nil && t.cfg.Mode != ModeRFC9421Ed25519 && sessionGone(ref.Code):
		t.dropSession(used)
	default:
		return resp, nil
	}
	// The refusal was answered by the gateway, so the request never reached
	// the backend: sending it again is safe even for a POST.
	drain(resp)
	resp, _, err = t.send(req, body)
	return resp, err
}

// sessionGone reports a refusal meaning the session is no longer there; for
// an hmac-sha256 signature unknown_key says the same, its keyid being the
// session id.
func sessionGone(code string) bool {
	switch code {
	case caddyauth.CodeUnknownSession, caddyauth.CodeSessionExpired, string(rfc9421.CodeUnknownKey):
		return true
	}
	return false
}

// send signs and sends one attempt, and says which session signed it.
func (t *Transport) send(req *http.Request, body []byte) (*http.Response, *Session, error) {
	signed, sess, err := t.sign(req.Context(), req, body)
	if err != nil {
		return nil, nil, err
	}
	resp, err := t.base.RoundTrip(signed)
	return resp, sess, err
}

// Sign returns a clone of req carrying the credentials of t's mode, with
// body (already read from req by the caller; nil for none) as its body. It
// logs in first if needed. RoundTrip uses it; it is exported for tools that
// print signed requests instead of sending them.
func (t *Transport) Sign(ctx context.Context, req *http.Request, body []byte) (*http.Request, error) {
	t.learnOrigin(req)
	out, _, err := t.sign(ctx, req, body)
	return out, err
}

func (t *Transport) sign(ctx context.Context, req *http.Request, body []byte) (*http.Request, *Session, error) {
	sess, err := t.credentials(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := req.Clone(ctx)
	setBody(out, body)
	out.Header.Del(rfc9421.HeaderSignatureInput)
	out.Header.Del(rfc9421.HeaderSignature)
	if t.cfg.Mode == ModeAmatino {
		t.signAmatino(out, body, sess)
		return out, sess, nil
	}
	if err := t.signRFC9421(out, body, sess); err != nil {
		return nil, nil, err
	}
	return out, sess, nil
}

func (t *Transport) signAmatino(out *http.Request, body []byte, sess *Session) {
	ts := t.now().Unix()
	var signedBody []byte
	if t.cfg.AmatinoBody {
		signedBody = body
	}
	out.Header.Set("X-Session-ID", strconv.FormatInt(sess.SessionID, 10))
	out.Header.Set("X-Signature", sign.AmatinoSign([]byte(sess.APIKey), ts, signedPath(out), signedBody))
	if t.cfg.AmatinoTimestamp {
		out.Header.Set("X-Timestamp", strconv.FormatInt(ts, 10))
	} else {
		out.Header.Del("X-Timestamp")
	}
}

func (t *Transport) signRFC9421(out *http.Request, body []byte, sess *Session) error {
	comps := append([]string(nil), t.cfg.Components...)
	if len(body) > 0 {
		if ct := out.Header.Get("Content-Type"); ct == "" {
			return errors.New("client: a request with a body needs a Content-Type (the gateway requires it to be signed)")
		}
		d, err := rfc9421.ContentDigest(t.cfg.Digest, body)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		out.Header.Set(rfc9421.HeaderContentDigest, d)
		for _, c := range t.cfg.BodyComponents {
			if !contains(comps, c) {
				comps = append(comps, c)
			}
		}
	}
	nonce, err := rfc9421.NewNonce(t.cfg.Rand)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	sp := rfc9421.SignParams{Label: t.cfg.Label, Components: comps, Created: t.now(), Nonce: nonce}
	var key rfc9421.Key
	if t.cfg.Mode == ModeRFC9421Ed25519 {
		key, sp.KeyID = rfc9421.Ed25519Signer(t.cfg.PrivateKey), t.cfg.KeyID
	} else {
		key, sp.KeyID = rfc9421.HMACKey([]byte(sess.APIKey)), strconv.FormatInt(sess.SessionID, 10)
	}
	if t.cfg.SendAlg {
		sp.Alg = key.Alg
	}
	in, sig, err := rfc9421.Sign(rfc9421Request(out, len(body) > 0), key, sp)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	out.Header.Set(rfc9421.HeaderSignatureInput, in)
	out.Header.Set(rfc9421.HeaderSignature, sig)
	return nil
}

// rfc9421Request describes r as net/http will send it: Host from r.Host
// or the URL, and the origin-form target r.URL.RequestURI(), which is what
// http.Transport writes on the request line when no proxy is used. Through
// a forward proxy the target is in absolute form; @path and @query (the
// default components) are the same either way.
func rfc9421Request(r *http.Request, hasBody bool) rfc9421.Request {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	return rfc9421.Request{Method: method, Scheme: r.URL.Scheme, Authority: host, Target: r.URL.RequestURI(),
		Header: r.Header, HasBody: hasBody}
}

// signedPath is the amatino signed path: the request target up to the
// query, as it goes on the wire.
func signedPath(r *http.Request) string {
	p, _, _ := strings.Cut(r.URL.RequestURI(), "?")
	return p
}

// readBody buffers req's body up to MaxBody and closes it.
func (t *Transport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	if req.ContentLength > t.cfg.MaxBody {
		return nil, fmt.Errorf("client: request body of %d bytes is over MaxBody (%d)", req.ContentLength, t.cfg.MaxBody)
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, t.cfg.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: read request body: %w", err)
	}
	if int64(len(b)) > t.cfg.MaxBody {
		return nil, fmt.Errorf("client: request body is over MaxBody (%d bytes)", t.cfg.MaxBody)
	}
	return b, nil
}

// setBody makes body the request's replayable body.
func setBody(r *http.Request, body []byte) {
	if len(body) == 0 {
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return
	}
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.Body, _ = r.GetBody()
	r.TransferEncoding = nil
}

// learnOrigin remembers the first request's scheme and host as the login
// origin when BaseURL was not given.
func (t *Transport) learnOrigin(req *http.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.origin == "" && req.URL != nil && req.URL.Host != "" {
		t.origin = req.URL.Scheme + "://" + req.URL.Host
	}
}

func (t *Transport) originURL(path string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.origin == "" {
		return "", errors.New("client: no BaseURL and no request to learn it from")
	}
	return t.origin + path, nil
}

// refusal is the gateway's JSON error answer. server_time accompanies
// clock_skew refusals of the native scheme.
type refusal struct {
	Code       string `json:"error"`
	Message    string `json:"message"`
	ServerTime int64  `json:"server_time"`
}

// peekRefusal reads a JSON refusal from resp and puts the body back, so the
// caller still gets the whole answer when there is no retry.
func peekRefusal(resp *http.Response) refusal {
	var ref refusal
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" || resp.Body == nil {
		return ref
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), rest), rest}
	if err == nil {
		_ = json.Unmarshal(b, &ref)
	}
	return ref
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close() // only read to reuse the connection
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
