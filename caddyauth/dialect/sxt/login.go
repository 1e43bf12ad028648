package sxt

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// codeKeyPrefix keeps auth codes apart from other ephemeral state.
const codeKeyPrefix = "code:"

// An auth code's record: one flag byte, then the userId it was issued for.
// The flag says whether the request carried the right joinCode, which
// auth/token needs to register a new user under `registration join_code`.
const (
	flagNoJoin = '0'
	flagJoined = '1'
)

type codeAnswer struct {
	AuthCode string `json:"authCode"`
}

type tokenAnswer struct {
	AccessToken         string `json:"accessToken"`
	RefreshToken        string `json:"refreshToken"`
	AccessTokenExpires  int64  `json:"accessTokenExpires"`
	RefreshTokenExpires int64  `json:"refreshTokenExpires"`
}

type userAnswer struct {
	UserID string `json:"userId"`
}

// IDExists serves GET <prefix>/auth/idexists/{userId}, answered with the
// bare text `true` or `false`. The protocol makes user ids public by
// design; a userId that cannot be valid simply does not exist.
func (d *Dialect) IDExists(w http.ResponseWriter, r *http.Request) {
	if ref := d.noBody(r); ref != nil {
		ref.Write(w)
		return
	}
	id, ok := d.pathUserID(r)
	exists := false
	if ok {
		_, err := d.m.Users().UserByUsername(r.Context(), id)
		switch {
		case err == nil:
			exists = true
		case !errors.Is(err, caddyauth.ErrNotFound):
			caddyauth.Unavailable().Write(w)
			return
		}
	}
	body := "false"
	if exists {
		body = "true"
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body)) // a client that went away cannot be told
}

// pathUserID returns the percent-decoded last path segment of an idexists
// request, if it is one segment and a valid userId.
func (d *Dialect) pathUserID(r *http.Request) (string, bool) {
	raw, ok := strings.CutPrefix(r.URL.EscapedPath(), d.o.Prefix+PathIDExists)
	if !ok {
		return "", false
	}
	if strings.IndexByte(raw, '/') >= 0 {
		return "", false
	}
	id, err := url.PathUnescape(raw)
	if err != nil || !validUserID(id) {
		return "", false
	}
	return id, true
}

// Code serves POST <prefix>/auth/code: `{"userId": u}` (clients may add
// `joinCode` and `prefix`), answered with `{"authCode": code}`, a fresh
// random code bound to u, single use, alive CodeLifetime (SEC-29). Codes are
// issued alike for every userId, known or not.
func (d *Dialect) Code(w http.ResponseWriter, r *http.Request) {
	body, ref := d.jsonBody(r)
	if ref != nil {
		ref.Write(w)
		return
	}
	f, err := caddyauth.DecodeStrictObject(body, "userId", "joinCode", "prefix")
	if err != nil {
		invalid("auth/code body: " + err.Error()).Write(w)
		return
	}
	id, ok := caddyauth.JSONString(f["userId"])
	if !ok || !validUserID(id) {
		invalid("userId must be a string of 1 to 64 printable characters without spaces").Write(w)
		return
	}
	join, ok := optionalString(f["joinCode"])
	if !ok {
		invalid("joinCode must be a string").Write(w)
		return
	}
	if _, ok := optionalString(f["prefix"]); !ok {
		invalid("prefix must be a string").Write(w)
		return
	}
	flag := byte(flagNoJoin)
	if d.o.Registration == RegistrationJoinCode && join != "" &&
		subtle.ConstantTimeCompare([]byte(join), []byte(d.o.JoinCode)) == 1 {
		flag = flagJoined
	}
	record := append([]byte{flag}, id...)
	for range 3 { // 128-bit codes never collide; retry anyway
		code := newAuthCode()
		err = d.m.Ephemeral().PutOnce(r.Context(), codeKeyPrefix+code, record, d.o.CodeLifetime)
		if err == nil {
			caddyauth.WriteJSON(w, http.StatusOK, codeAnswer{AuthCode: code})
			return
		}
		if !errors.Is(err, caddyauth.ErrExists) {
			break
		}
	}
	d.m.Observer().StoreError("put_once")
	caddyauth.Unavailable().Write(w)
}

// Token serves POST <prefix>/auth/token: `{"userId", "authCode",
// "signature", "key", "scheme"}` in any order, answered with a new access
// and refresh token. The code is taken (single use) before anything else is
// decided; it must have been issued for this userId and not be older than
// CodeLifetime; the signature (128 lower-case hex characters) must verify
// over the code's bytes under key; and key must be registered to the user —
// or, for an unknown userId, registration must be open (or the code was
// requested with the join code), and then the user is created with this key
// (SEC-29, SEC-30, SEC-31). Every failure of these checks is the same 401.
func (d *Dialect) Token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ip := caddyauth.ClientIP(ctx)
	fail := func(ref *caddyauth.Refusal, result, reason string) {
		d.m.Observer().Login(caddyauth.DialectSXT, result)
		d.m.Audit(caddyauth.Event{Type: "login_failed", Dialect: caddyauth.DialectSXT, Reason: reason, ClientIP: ip})
		ref.Write(w)
	}
	malformed := func(msg string) { fail(invalid(msg), "malformed", caddyauth.CodeInvalidRequest) }
	body, ref := d.jsonBody(r)
	if ref != nil {
		fail(ref, "malformed", ref.Code)
		return
	}
	f, err := caddyauth.DecodeStrictObject(body, "userId", "authCode", "signature", "key", "scheme")
	if err != nil {
		malformed("auth/token body: " + err.Error())
		return
	}
	var v [5]string
	for i, name := range []string{"userId", "authCode", "signature", "key", "scheme"} {
		s, ok := caddyauth.JSONString(f[name])
		if !ok {
			malformed(name + " must be a string")
			return
		}
		v[i] = s
	}
	id, code, sigHex, keyB64, scheme := v[0], v[1], v[2], v[3], v[4]
	if !validUserID(id) {
		malformed("userId must be 1 to 64 printable characters without spaces")
		return
	}
	if scheme != Scheme {
		malformed(`scheme must be "ed25519"`)
		return
	}
	key, err := caddyauth.ParsePublicKeyBase64(keyB64)
	if err != nil {
		malformed("key must be an Ed25519 public key: 32 bytes in padded standard base64 (44 characters), " +
			"not all-zero and not a small-order point")
		return
	}
	// SEC-07: the throttles run before any store work or signature check.
	if err := d.m.Abuse().AllowLogin(ip); err != nil {
		fail(&caddyauth.Refusal{Status: http.StatusTooManyRequests, Code: caddyauth.CodeThrottled,
			Message: "too many login attempts, retry later", RetryAfter: caddyauth.RetryAfter(err)}, "throttled", caddyauth.CodeThrottled)
		return
	}
	badCreds := func(reason string) { fail(d.badCredentials(), "bad_credentials", reason) }
	// SEC-06: failures are counted per userId only once a code issued for
	// that userId was consumed, so nobody can lock a user out by sending
	// made-up codes in its name. A locked userId gets the answer of a
	// wrong key (SEC-03).
	account := caddyauth.AccountKey(caddyauth.PasswordLogin{Username: id})
	accountFailed := func(reason string) {
		if d.m.Abuse().Failed(ctx, account) {
			d.m.Audit(caddyauth.Event{Type: "lockout", Dialect: caddyauth.DialectSXT, Reason: caddyauth.ResultLocked, ClientIP: ip})
		}
		badCreds(reason)
	}
	if !validCode(code) {
		badCreds("bad_code")
		return
	}
	record, err := d.m.Ephemeral().TakeOnce(ctx, codeKeyPrefix+code)
	switch {
	case errors.Is(err, caddyauth.ErrNotFound):
		badCreds("bad_code")
		return
	case err != nil:
		d.m.Observer().StoreError("take_once")
		fail(caddyauth.Unavailable(), "unavailable", caddyauth.CodeStoreUnavailable)
		return
	}
	if len(record) < 1 || string(record[1:]) != id {
		badCreds("bad_code")
		return
	}
	if d.m.Abuse().Locked(ctx, account) {
		fail(d.badCredentials(), caddyauth.ResultLocked, caddyauth.ResultLocked)
		return
	}
	sig, ok := decodeSignature(sigHex)
	if !ok || !verify(key, sig, code) {
		accountFailed("bad_signature")
		return
	}

	u, err := d.m.Users().UserByUsername(ctx, id)
	switch {
	case err == nil:
		pk := u.Key(caddyauth.PublicKeyID(key))
		if u.Disabled || pk == nil || !bytes.Equal(pk.Key, key) {
			accountFailed("bad_key")
			return
		}
	case errors.Is(err, caddyauth.ErrNotFound):
		if !(d.o.Registration == RegistrationOpen || d.o.Registration == RegistrationJoinCode && record[0] == flagJoined) {
			badCreds("registration_closed")
			return
		}
		// The Manager refuses a key or userId another user holds (SEC-31),
		// a static user's included, and audits key_registered.
		u, err = d.m.CreateUser(ctx, caddyauth.NewUser{Username: id, PublicKeys: []string{keyB64}})
		switch {
		case err == nil:
		case errors.Is(err, caddyauth.ErrExists), errors.Is(err, caddyauth.ErrInvalidUser):
			badCreds("bad_key")
			return
		default:
			fail(caddyauth.Unavailable(), "unavailable", caddyauth.CodeStoreUnavailable)
			return
		}
	default:
		fail(caddyauth.Unavailable(), "unavailable", caddyauth.CodeStoreUnavailable)
		return
	}

	s, pair, err := d.m.StartTokenSession(ctx, u, caddyauth.DialectSXT, d.lifetimes())
	switch {
	case errors.Is(err, caddyauth.ErrBadCredentials):
		// Disabled or deleted while the code was answered.
		badCreds("bad_key")
		return
	case err != nil:
		fail(caddyauth.Unavailable(), "unavailable", caddyauth.CodeStoreUnavailable)
		return
	}
	d.m.Abuse().Succeeded(ctx, account)
	d.m.Observer().Login(caddyauth.DialectSXT, "ok")
	d.m.Audit(caddyauth.Event{Type: "login", Dialect: caddyauth.DialectSXT, Reason: "ok",
		UserID: u.ID, SessionHash: d.m.LogHash(s.ID), ClientIP: ip})
	writeTokens(w, pair)
}

func (d *Dialect) lifetimes() caddyauth.TokenLifetimes {
	return caddyauth.TokenLifetimes{Access: d.o.AccessLifetime, Refresh: d.o.RefreshLifetime, Session: d.o.SessionLifetime}
}

// writeTokens answers a token pair, expiries in integer milliseconds since
// the epoch, with Cache-Control: no-store (SEC-14, RFC 6749 §5.1).
func writeTokens(w http.ResponseWriter, p *caddyauth.TokenPair) {
	caddyauth.WriteJSON(w, http.StatusOK, tokenAnswer{AccessToken: p.Access, RefreshToken: p.Refresh,
		AccessTokenExpires: p.AccessExpires.UnixMilli(), RefreshTokenExpires: p.RefreshExpires.UnixMilli()})
}

// jsonBody reads a JSON endpoint body: at most MaxAuthBody bytes (else 413),
// and application/json when a Content-Type is given (else 415).
func (d *Dialect) jsonBody(r *http.Request) ([]byte, *caddyauth.Refusal) {
	if ref := checkJSONType(r); ref != nil {
		return nil, ref
	}
	return readBody(r)
}

// noBody accepts what sxt clients send where no body is needed: nothing,
// or an empty JSON object (`{}`, GET requests included), at most
// MaxAuthBody bytes.
func (d *Dialect) noBody(r *http.Request) *caddyauth.Refusal {
	body, ref := readBody(r)
	if ref != nil {
		return ref
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if _, err := caddyauth.DecodeStrictObject(body); err != nil {
		return invalid("the body must be empty or {}")
	}
	return nil
}

func checkJSONType(r *http.Request) *caddyauth.Refusal {
	vals := r.Header.Values("Content-Type")
	if len(vals) == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(vals[0])
	if len(vals) > 1 || err != nil || mt != "application/json" {
		return &caddyauth.Refusal{Status: http.StatusUnsupportedMediaType, Code: caddyauth.CodeUnsupportedMedia,
			Message: "the body must be application/json", Result: caddyauth.ResultMalformed}
	}
	return nil
}

func readBody(r *http.Request) ([]byte, *caddyauth.Refusal) {
	b, err := caddyauth.ReadBody(r, MaxAuthBody)
	switch {
	case errors.Is(err, caddyauth.ErrBodyTooLarge):
		return nil, &caddyauth.Refusal{Status: http.StatusRequestEntityTooLarge, Code: caddyauth.CodeBodyTooLarge,
			Message: "request body too large", Result: caddyauth.ResultMalformed}
	case err != nil:
		return nil, invalid("cannot read request body")
	}
	return b, nil
}

// optionalString decodes a member that may be absent, null or a string.
func optionalString(raw []byte) (string, bool) {
	if caddyauth.IsJSONNull(raw) {
		return "", true
	}
	return caddyauth.JSONString(raw)
}
