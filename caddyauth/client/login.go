package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// PasswordLogin is the amatino login (POST /session): the secret and
// exactly one of AccountEmail and UserID.
type PasswordLogin struct {
	// Secret is the account's passphrase.
	Secret string
	// AccountEmail identifies the account by email.
	AccountEmail string
	// UserID identifies the account by numeric id.
	UserID int64
}

func (l *PasswordLogin) check() error {
	if (l.AccountEmail == "") == (l.UserID == 0) {
		return errors.New("client: Login needs exactly one of AccountEmail and UserID")
	}
	if l.UserID < 0 {
		return errors.New("client: Login UserID must be positive")
	}
	return nil
}

// Session is an amatino session: what POST /session answers.
type Session struct {
	// APIKey is the HMAC key, used as its string's UTF-8 bytes.
	APIKey string
	// SessionID is the session's id (the hmac-sha256 keyid).
	SessionID int64
	// UserID is the logged-in user.
	UserID int64
}

// SXTLogin is the sxt key flow (WIRE.md, sxt): request an auth code for
// UserID, sign it with the Ed25519 key, exchange it for tokens. The first
// exchange for an unknown user registers the key when the gateway's
// registration is open.
type SXTLogin struct {
	// Prefix is where the sxt endpoints are. Default: "/v1".
	Prefix string
	// UserID is the sxt userId.
	UserID string
	// JoinCode is sent with the code request when the gateway's
	// registration needs one.
	JoinCode string
}

// Tokens are what the sxt token exchange answers.
type Tokens struct {
	// AccessToken authenticates proxied sxt requests (Bearer).
	AccessToken string
	// RefreshToken gets a new pair.
	RefreshToken string
	// AccessTokenExpires and RefreshTokenExpires are when they stop
	// working.
	AccessTokenExpires, RefreshTokenExpires time.Time
}

// Error is a refusal from the gateway's login endpoints: the HTTP status
// and the JSON error code and message.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the gateway's error code (e.g. bad_credentials), "" if the
	// answer was not the gateway's JSON.
	Code string
	// Message is the gateway's explanation.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("client: gateway answered %d", e.Status)
	}
	return fmt.Sprintf("client: gateway answered %d %s: %s", e.Status, e.Code, e.Message)
}

// credentials returns the session to sign with (nil in ed25519 mode), logging
// in or running the sxt flow first when needed. One login at a time: other
// callers wait for it and use its result.
func (t *Transport) credentials(ctx context.Context) (*Session, error) {
	if t.cfg.Mode == ModeRFC9421Ed25519 {
		if t.cfg.SXT == nil {
			return nil, nil
		}
		t.mu.Lock()
		done := t.sxtDone
		t.mu.Unlock()
		if done {
			return nil, nil
		}
		t.loginMu.Lock()
		defer t.loginMu.Unlock()
		t.mu.Lock()
		done = t.sxtDone
		t.mu.Unlock()
		if done {
			return nil, nil
		}
		tok, err := t.sxtFlow(ctx)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		t.tokens, t.sxtDone = tok, true
		t.mu.Unlock()
		return nil, nil
	}
	t.mu.Lock()
	s := t.sess
	t.mu.Unlock()
	if s != nil {
		return s, nil
	}
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	t.mu.Lock()
	s = t.sess
	t.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if t.cfg.Login == nil {
		return nil, errors.New("client: session was dropped and there is no Login to get another")
	}
	s, err := t.login(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.sess = s
	t.mu.Unlock()
	return s, nil
}

// dropSession forgets used if it is still the current session, so the next
// request logs in again; a session another request already replaced stays.
func (t *Transport) dropSession(used *Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if used != nil && t.sess == used {
		t.sess = nil
	}
}

// Login logs in now with Config.Login and returns the new session, which
// later requests use.
func (t *Transport) Login(ctx context.Context) (Session, error) {
	if t.cfg.Login == nil {
		return Session{}, errors.New("client: no Login configured")
	}
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	s, err := t.login(ctx)
	if err != nil {
		return Session{}, err
	}
	t.mu.Lock()
	t.sess = s
	t.mu.Unlock()
	return *s, nil
}

type loginRequest struct {
	Secret       string  `json:"secret"`
	AccountEmail *string `json:"account_email"`
	UserID       *int64  `json:"user_id"`
}

type loginAnswer struct {
	APIKey    string `json:"api_key"`
	SessionID int64  `json:"session_id"`
	UserID    int64  `json:"user_id"`
}

func (t *Transport) login(ctx context.Context) (*Session, error) {
	l := t.cfg.Login
	body := loginRequest{Secret: l.Secret}
	if l.AccountEmail != "" {
		body.AccountEmail = &l.AccountEmail
	} else {
		body.UserID = &l.UserID
	}
	var a loginAnswer
	if err := t.postJSON(ctx, "/session", body, &a); err != nil {
		return nil, fmt.Errorf("client: login: %w", err)
	}
	if a.APIKey == "" || a.SessionID <= 0 {
		return nil, errors.New("client: login: answer lacks api_key or session_id")
	}
	return &Session{APIKey: a.APIKey, SessionID: a.SessionID, UserID: a.UserID}, nil
}

// Logout ends the current session (DELETE /session, signed the amatino way,
// which every amatino session accepts) and forgets it. A later request logs
// in again if Login is set.
func (t *Transport) Logout(ctx context.Context) error {
	t.mu.Lock()
	s := t.sess
	t.mu.Unlock()
	if s == nil {
		return errors.New("client: not logged in")
	}
	u, err := t.originURL("/session")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return fmt.Errorf("client: logout: %w", err)
	}
	t.signAmatino(req, nil, s)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("client: logout: %w", err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("client: logout: %w", answerError(resp))
	}
	t.dropSession(s)
	return nil
}

type codeRequest struct {
	UserID   string `json:"userId"`
	JoinCode string `json:"joinCode,omitempty"`
}

type codeAnswer struct {
	AuthCode string `json:"authCode"`
}

type tokenRequest struct {
	UserID    string `json:"userId"`
	AuthCode  string `json:"authCode"`
	Signature string `json:"signature"`
	Key       string `json:"key"`
	Scheme    string `json:"scheme"`
}

type tokenAnswer struct {
	AccessToken         string `json:"accessToken"`
	RefreshToken        string `json:"refreshToken"`
	AccessTokenExpires  int64  `json:"accessTokenExpires"`
	RefreshTokenExpires int64  `json:"refreshTokenExpires"`
}

// sxtFlow runs the sxt key flow: the auth code's UTF-8 bytes are signed
// as they are (no prefix, no hash), the signature sent as lower-case hex
// and the key as padded standard base64 (WIRE.md).
func (t *Transport) sxtFlow(ctx context.Context) (*Tokens, error) {
	x := t.cfg.SXT
	prefix := x.Prefix
	if prefix == "" {
		prefix = "/v1"
	}
	var code codeAnswer
	if err := t.postJSON(ctx, prefix+"/auth/code", codeRequest{UserID: x.UserID, JoinCode: x.JoinCode}, &code); err != nil {
		return nil, fmt.Errorf("client: sxt auth code: %w", err)
	}
	if code.AuthCode == "" {
		return nil, errors.New("client: sxt auth code: answer lacks authCode")
	}
	pub := t.cfg.PrivateKey.Public().(ed25519.PublicKey)
	tr := tokenRequest{UserID: x.UserID, AuthCode: code.AuthCode,
		Signature: hex.EncodeToString(ed25519.Sign(t.cfg.PrivateKey, []byte(code.AuthCode))),
		Key:       base64.StdEncoding.EncodeToString(pub), Scheme: "ed25519"}
	var tok tokenAnswer
	if err := t.postJSON(ctx, prefix+"/auth/token", tr, &tok); err != nil {
		return nil, fmt.Errorf("client: sxt token: %w", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.AccessTokenExpires == 0 || tok.RefreshTokenExpires == 0 {
		return nil, errors.New("client: sxt token: answer lacks a field")
	}
	return &Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		AccessTokenExpires:  time.UnixMilli(tok.AccessTokenExpires),
		RefreshTokenExpires: time.UnixMilli(tok.RefreshTokenExpires)}, nil
}

// postJSON posts in as JSON to the gateway's path and decodes a 200 answer
// into out; any other status is an *Error.
func (t *Transport) postJSON(ctx context.Context, path string, in, out any) error {
	u, err := t.originURL(path)
	if err != nil {
		return err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// answerError turns a non-200 gateway answer into an *Error.
func answerError(resp *http.Response) *Error {
	ref := peekRefusal(resp)
	return &Error{Status: resp.StatusCode, Code: ref.Code, Message: ref.Message}
}
