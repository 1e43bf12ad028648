package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An amatino client written from WIRE.md alone:
//
//	message   = decimal unix seconds ++ path (no query) [++ body, legacy clients]
//	signature = std base64(HMAC-SHA512(key = api_key string bytes, message))
//
// sent as X-Session-ID (decimal) and X-Signature; the timestamp is not sent.

// amSession is the login answer.
type amSession struct {
	APIKey    string `json:"api_key"`
	SessionID int64  `json:"session_id"`
	UserID    int64  `json:"user_id"`
}

// amSign computes an amatino signature.
func amSign(apiKey string, ts int64, path string, body []byte) string {
	m := hmac.New(sha512.New, []byte(apiKey))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte(path))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestAmatinoVectors pins the client's signing against the WIRE.md vectors,
// so a failure elsewhere in this package is the gateway's, not the client's.
func TestAmatinoVectors(t *testing.T) {
	t.Parallel()
	const key = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA"
	if got, want := amSign(key, 1700000000, "/entities", nil),
		"XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ=="; got != want {
		t.Errorf("path vector: %s, want %s", got, want)
	}
	if got, want := amSign(key, 1700000000, "/entities", []byte(`[{"name":"Acme","description":null}]`)),
		"5vG6nSncOhPRBYQA/S5LrZUbWdwzqO5U8QOU9dq/XuG27v/ICr1XONqahCCl6w/evUdph0lXUkz1JLSFFR7qqw=="; got != want {
		t.Errorf("compact body vector: %s, want %s", got, want)
	}
}

// signMode says what the client covers.
type signMode int

const (
	signCurrent signMode = iota // ts ++ path
	signRawBody                 // ts ++ path ++ raw body (old clients)
)

// amClient talks to one gateway site.
type amClient struct {
	base string
	hc   *http.Client
}

func newClient(t *testing.T, base string) *amClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &amClient{base: base, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

type loginBody struct {
	Secret string  `json:"secret"`
	Email  *string `json:"account_email"`
	UserID *int64  `json:"user_id"`
}

// loginJSON is the body of a login by email (id == 0) or by user_id.
func loginJSON(email string, id int64, secret string) []byte {
	lb := loginBody{Secret: secret}
	if email != "" {
		lb.Email = &email
	}
	if id != 0 {
		lb.UserID = &id
	}
	b, _ := json.Marshal(lb)
	return b
}

// post sends a login body with a content type; it returns what came back.
func (c *amClient) post(path, contentType string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return c.do(req)
}

func (c *amClient) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, b, err
	}
	checkRefusal(req.URL.String(), resp.StatusCode, b) // SEC-44
	return resp, b, nil
}

// tryLogin logs in without failing the test (safe from any goroutine).
func (c *amClient) tryLogin(email string, id int64, secret string) (amSession, error) {
	var s amSession
	resp, body, err := c.post("/session", "application/json", loginJSON(email, id, secret))
	if err != nil {
		return s, err
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("login: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("login answer %q: %w", body, err)
	}
	if s.APIKey == "" || s.SessionID <= 0 {
		return s, fmt.Errorf("login answer incomplete: %s", body)
	}
	registerSecret("amatino api key", s.APIKey)
	registerSecret("raw session id", strconv.FormatInt(s.SessionID, 10))
	return s, nil
}

// login logs u in by email.
func (c *amClient) login(t *testing.T, u *testUser) amSession {
	t.Helper()
	s, err := c.tryLogin(u.Email, 0, u.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if s.UserID != u.ID {
		t.Fatalf("login answered user_id %d, want %d", s.UserID, u.ID)
	}
	return s
}

// signed builds a request to target (path and query) signed for s at ts
// (0: now).
func (c *amClient) signed(method, target string, body []byte, s amSession, mode signMode, ts int64) *http.Request {
	if ts == 0 {
		ts = time.Now().Unix()
	}
	path := target
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	var covered []byte
	if mode == signRawBody {
		covered = body
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+target, rd)
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sig := amSign(s.APIKey, ts, path, covered)
	registerSecret("amatino signature", sig)
	req.Header.Set("X-Session-ID", strconv.FormatInt(s.SessionID, 10))
	req.Header.Set("X-Signature", sig)
	return req
}

// get sends a signed GET (current variant) and returns status and body.
func (c *amClient) get(s amSession, target string) (*http.Response, []byte, error) {
	return c.do(c.signed(http.MethodGet, target, nil, s, signCurrent, 0))
}

// getAcrossReload is get for traffic that runs across config reloads. A
// reload closes the old server's connections; a request written onto one as
// it closes gets no answer at all (EOF or a reset, seen about once in 15 000
// requests over 100 reloads, with or without sessiongate in the chain: it is
// Caddy's and HTTP keep-alive's, not the gateway's). Clients meet it by
// retrying, and so does this: once, re-signed, and only when no response
// came. Any HTTP answer, error statuses included, is returned as it is, so
// a request the gateway received and refused still fails the test.
func (c *amClient) getAcrossReload(s amSession, target string, retried *atomic.Int64) (*http.Response, []byte, error) {
	resp, body, err := c.get(s, target)
	if err != nil && resp == nil {
		retried.Add(1)
		return c.get(s, target)
	}
	return resp, body, err
}

// logout sends the signed DELETE /session.
func (c *amClient) logout(s amSession) (*http.Response, []byte, error) {
	return c.do(c.signed(http.MethodDelete, "/session", nil, s, signCurrent, 0))
}

// mustDo sends req and fails the test on a transport error.
func mustDo(t *testing.T, c *amClient, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := c.do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp, body
}
