package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The clients below are written from WIRE.md with the standard library, not
// with the product's packages, so a bug shared by client and gateway cannot
// hide.

// authorizer puts one request's credentials on it. Each worker has its own,
// so signing needs no lock. authorize is timed by the worker: that is the
// generator's credential cost per request.
type authorizer interface {
	authorize(req *http.Request, now time.Time)
}

// amatinoAuth signs every request afresh with the real algorithm of WIRE.md:
// base64(HMAC-SHA512(api_key, unix seconds ++ path [++ raw body])). Nothing
// is cached between requests: the HMAC is computed per request, as a client
// that signs each call does.
type amatinoAuth struct {
	id   string
	key  []byte
	path string
	body []byte // legacy body-signing clients; nil otherwise
	buf  []byte
}

func (a *amatinoAuth) authorize(req *http.Request, now time.Time) {
	req.Header.Set("X-Session-ID", a.id)
	req.Header.Set("X-Signature", a.sign(a.key, now))
}

func (a *amatinoAuth) sign(key []byte, now time.Time) string {
	m := hmac.New(sha512.New, key)
	a.buf = strconv.AppendInt(a.buf[:0], now.Unix(), 10)
	m.Write(a.buf)
	m.Write([]byte(a.path))
	m.Write(a.body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// manyAuth signs for one of the preloaded sessions of sessions_1m. With next
// set (the warm-up), sessions come in the preload's random order, each once,
// so the key cache fills with distinct entries; otherwise uniformly at random
// from the working set.
type manyAuth struct {
	amatinoAuth
	m      *manySessions
	active int // working set, ≤ m.n
	rng    *rand.Rand
	next   *atomic.Int64
}

func (a *manyAuth) authorize(req *http.Request, now time.Time) {
	var i int
	if a.next != nil {
		i = int(a.m.order[int(a.next.Add(1)-1)%a.m.n])
	} else {
		i = int(a.m.order[a.rng.IntN(a.active)])
	}
	req.Header.Set("X-Session-ID", a.m.id(i))
	req.Header.Set("X-Signature", a.sign(a.m.key(i), now))
}

// headerAuth sets one fixed header: sxt's bearer token, videntity's session
// key, basic_auth's credentials.
type headerAuth struct{ name, value string }

func (a headerAuth) authorize(req *http.Request, _ time.Time) { req.Header.Set(a.name, a.value) }

// postJSON posts v as JSON and returns the status and at most 64 KiB of body.
func postJSON(ctx context.Context, hc *http.Client, url string, v any) (int, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(hc, req)
}

func do(hc *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, data, err
}

// sxtLogin registers (registration open) and logs in userID with a fresh
// Ed25519 key through WIRE.md's two calls, and returns the access token:
//
//	POST /v1/auth/code  {"userId"}                                  → {"authCode"}
//	POST /v1/auth/token {"userId","authCode","signature","key","scheme"}
//	     signature = lower-case hex Ed25519 over the code's UTF-8 bytes,
//	     key = the 32-byte public key in padded standard base64
func sxtLogin(ctx context.Context, hc *http.Client, base, userID string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return "", err
	}
	st, body, err := postJSON(ctx, hc, base+"/v1/auth/code", map[string]string{"userId": userID})
	var code struct {
		AuthCode string `json:"authCode"`
	}
	if err != nil || st != http.StatusOK || json.Unmarshal(body, &code) != nil || code.AuthCode == "" {
		return "", fmt.Errorf("sxt auth/code: status %d, %v: %.200s", st, err, body)
	}
	st, body, err = postJSON(ctx, hc, base+"/v1/auth/token", map[string]string{"userId": userID,
		"authCode": code.AuthCode, "signature": hex.EncodeToString(ed25519.Sign(priv, []byte(code.AuthCode))),
		"key": base64.StdEncoding.EncodeToString(pub), "scheme": "ed25519"})
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	if err != nil || st != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		// The body of a failed token call holds no token; print its start.
		return "", fmt.Errorf("sxt auth/token: status %d, %v: %.200s", st, err, body)
	}
	return tok.AccessToken, nil
}

// videntityLogin posts WIRE.md's login form and returns the session_key of
// the XML answer.
func videntityLogin(ctx context.Context, hc *http.Client, base, user, password, account string) (string, error) {
	form := url.Values{"username": {user}, "password": {password}, "account_number": {account}}
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/session/login", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, body, err := do(hc, req)
	var a struct {
		Status     string `xml:"status"`
		SessionKey string `xml:"response_name_value>session_key"`
	}
	if err != nil || st != http.StatusOK || xml.Unmarshal(body, &a) != nil || a.Status != "SUCCESS" || a.SessionKey == "" {
		return "", fmt.Errorf("videntity login: status %d, %v (answer status %q)", st, err, a.Status)
	}
	return a.SessionKey, nil
}
