package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/client"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

const nowUnix = int64(1700000000)

func startGateway(t *testing.T, clock caddyauth.Clock) *gateway {
	t.Helper()
	g, err := newGateway(clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.close)
	return g
}

func login() *client.PasswordLogin {
	return &client.PasswordLogin{Secret: userSecret, AccountEmail: userEmail}
}

func newTransport(t *testing.T, g *gateway, c client.Config) *client.Transport {
	t.Helper()
	c.BaseURL = g.srv.URL
	if c.Now == nil {
		c.Now = g.clock.Now
	}
	tr, err := client.New(c)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return tr
}

// do sends method target with body (and a JSON content type when there is
// one) and decodes the echo of a 200.
func do(t *testing.T, tr *client.Transport, g *gateway, method, target, body string) (int, echo, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.srv.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tr.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e echo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("decode echo %s: %v", raw, err)
		}
	}
	return resp.StatusCode, e, string(raw)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestModes: each mode logs in as needed and gets GET and POST requests
// through the real verifiers; the backend receives the body byte for byte.
func TestModes(t *testing.T) {
	tests := []struct {
		name   string
		cfg    client.Config
		scheme string
	}{
		{"amatino", client.Config{Mode: client.ModeAmatino, Login: login()}, "amatino"},
		{"amatino with X-Timestamp and body", client.Config{Mode: client.ModeAmatino, Login: login(),
			AmatinoTimestamp: true, AmatinoBody: true}, "amatino"},
		{"rfc9421 hmac", client.Config{Mode: client.ModeRFC9421HMAC, Login: login()}, "rfc9421"},
		{"rfc9421 hmac sha-512 with alg", client.Config{Mode: client.ModeRFC9421HMAC, Login: login(),
			Digest: rfc9421.DigestSHA512, SendAlg: true}, "rfc9421"},
		{"rfc9421 ed25519", client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: userKey}, "rfc9421"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, nil)
			tr := newTransport(t, g, tc.cfg)
			const body = `[{"name": "Acme", "description": null}]`
			for _, rq := range []struct{ method, target, body string }{
				{"GET", "/entities?page=2", ""},
				{"POST", "/entities", body},
				{"DELETE", "/entities/7?force=true", ""},
				{"PUT", "/a%2Fb", "x"},
			} {
				status, e, raw := do(t, tr, g, rq.method, rq.target, rq.body)
				if status != http.StatusOK {
					t.Fatalf("%s %s: %d %s", rq.method, rq.target, status, raw)
				}
				if e.UserID != userID || e.Method != rq.method || e.Target != rq.target ||
					e.BodySHA256 != sha(rq.body) || e.Scheme != tc.scheme {
					t.Fatalf("%s %s: echo %+v", rq.method, rq.target, e)
				}
			}
			if got := g.upstream.Load(); got != 4 {
				t.Fatalf("upstream saw %d requests, want 4", got)
			}
		})
	}
}

// TestAmatinoSignature: the amatino headers are what caddyauth/sign
// verifies (WIRE.md): the MAC of unix seconds ++ path without query, and,
// with AmatinoBody, the body appended.
func TestAmatinoSignature(t *testing.T) {
	sess := &client.Session{APIKey: "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA", SessionID: 4200100, UserID: 1}
	clock := caddyauth.NewFakeClock(time.Unix(nowUnix, 0))
	for _, withBody := range []bool{false, true} {
		tr, err := client.New(client.Config{Mode: client.ModeAmatino, Session: sess, Now: clock.Now,
			AmatinoTimestamp: true, AmatinoBody: withBody})
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"a":1}`)
		req, _ := http.NewRequest("POST", "http://gw.example/entities?page=2", nil)
		signed, err := tr.Sign(context.Background(), req, body)
		if err != nil {
			t.Fatal(err)
		}
		if signed.Header.Get("X-Session-Id") != "4200100" || signed.Header.Get("X-Timestamp") != "1700000000" {
			t.Fatalf("headers %v", signed.Header)
		}
		mac, err := sign.DecodeSignature(signed.Header.Get("X-Signature"))
		if err != nil {
			t.Fatal(err)
		}
		var signedBody []byte
		if withBody {
			signedBody = body
		}
		if !sign.VerifyAt([]byte(sess.APIKey), mac, nowUnix, "/entities", signedBody) {
			t.Fatalf("withBody=%v: sign.VerifyAt refused the client's signature", withBody)
		}
		if sign.VerifyAt([]byte(sess.APIKey), mac, nowUnix, "/entities?page=2", signedBody) {
			t.Fatal("the query was signed")
		}
		if req.Header.Get("X-Signature") != "" {
			t.Fatal("the caller's request was modified")
		}
	}
	// The WIRE.md vector, through the client.
	tr, _ := client.New(client.Config{Mode: client.ModeAmatino, Session: sess, Now: clock.Now})
	req, _ := http.NewRequest("GET", "http://gw.example/entities", nil)
	signed, _ := tr.Sign(context.Background(), req, nil)
	if got := signed.Header.Get("X-Signature"); got != "XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ==" {
		t.Fatalf("WIRE.md vector: %s", got)
	}
}

// TestRFC9421Signature: the native headers verify with the rfc9421
// package's default policy; each request has its own 128-bit nonce.
func TestRFC9421Signature(t *testing.T) {
	sess := &client.Session{APIKey: "k3y", SessionID: 42, UserID: 1}
	clock := caddyauth.NewFakeClock(time.Unix(nowUnix, 0))
	tr, err := client.New(client.Config{Mode: client.ModeRFC9421HMAC, Session: sess, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	keys := rfc9421.KeyResolverFunc(func(_ context.Context, id string) (rfc9421.Key, error) {
		if id != "42" {
			return rfc9421.Key{}, rfc9421.ErrUnknownKey
		}
		return rfc9421.HMACKey([]byte("k3y")), nil
	})
	nonces := map[string]bool{}
	for i, body := range []string{"", `{"x":1}`, ""} {
		req, _ := http.NewRequest("POST", "http://GW.example:80/e%2Fx?q=1&r=2", nil)
		req.Header.Set("Content-Type", "application/json")
		signed, err := tr.Sign(context.Background(), req, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		r := rfc9421.FromHTTP(signed)
		r.Target = signed.URL.RequestURI()
		res, err := rfc9421.Verify(context.Background(), r, keys, rfc9421.DefaultPolicy(), clock.Now())
		if err != nil {
			t.Fatalf("request %d: %v\n%v", i, err, signed.Header)
		}
		if res.CoversDigest != (body != "") {
			t.Fatalf("request %d: digest covered = %v", i, res.CoversDigest)
		}
		if body != "" {
			if err := rfc9421.VerifyContentDigest(signed.Header["Content-Digest"], []byte(body)); err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(signed.Body)
			if string(got) != body || signed.ContentLength != int64(len(body)) {
				t.Fatalf("body %q, length %d", got, signed.ContentLength)
			}
		}
		if len(res.Nonce) != 22 || nonces[res.Nonce] {
			t.Fatalf("nonce %q (seen before: %v)", res.Nonce, nonces[res.Nonce])
		}
		nonces[res.Nonce] = true
	}
}

// TestClockCorrection: a client clock 10 minutes slow is refused once with
// clock_skew and the server's time, corrects itself, and the retried
// request passes; the backend sees it once.
func TestClockCorrection(t *testing.T) {
	g := startGateway(t, caddyauth.NewFakeClock(time.Unix(nowUnix, 0)))
	slow := func() time.Time { return time.Unix(nowUnix-600, 0) }
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), Now: slow})
	status, _, raw := do(t, tr, g, "POST", "/entities", `{"a":1}`)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, raw)
	}
	if tr.ClockOffset() != 600*time.Second {
		t.Fatalf("offset %v", tr.ClockOffset())
	}
	if g.seen.Load() != 2 || g.upstream.Load() != 1 {
		t.Fatalf("gateway saw %d, upstream %d; want 2 and 1", g.seen.Load(), g.upstream.Load())
	}
	// With NoRetry the refusal comes back to the caller, body intact.
	tr2 := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), Now: slow, NoRetry: true})
	status, _, raw = do(t, tr2, g, "GET", "/entities", "")
	if status != http.StatusUnauthorized || !strings.Contains(raw, `"error":"clock_skew"`) || !strings.Contains(raw, `"server_time":1700000000`) {
		t.Fatalf("%d %s", status, raw)
	}
}

// TestRelogin: when the gateway no longer knows the session, the Transport
// logs in again once and retries.
func TestRelogin(t *testing.T) {
	for _, mode := range []client.Mode{client.ModeAmatino, client.ModeRFC9421HMAC} {
		t.Run(mode.String(), func(t *testing.T) {
			g := startGateway(t, nil)
			tr := newTransport(t, g, client.Config{Mode: mode, Login: login()})
			if status, _, raw := do(t, tr, g, "GET", "/x", ""); status != http.StatusOK {
				t.Fatalf("%d %s", status, raw)
			}
			first, _ := tr.Session()
			if _, err := g.m.EndSession(context.Background(), strconv.FormatInt(first.SessionID, 10), "revoked"); err != nil {
				t.Fatal(err)
			}
			if status, _, raw := do(t, tr, g, "GET", "/x", ""); status != http.StatusOK {
				t.Fatalf("after revocation: %d %s", status, raw)
			}
			second, _ := tr.Session()
			if second.SessionID == first.SessionID {
				t.Fatal("no new session")
			}
		})
	}
}

// TestLogout ends the session at the gateway.
func TestLogout(t *testing.T) {
	g := startGateway(t, nil)
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC, Login: login()})
	s, err := tr.Login(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := g.m.Session(context.Background(), strconv.FormatInt(s.SessionID, 10)); !errors.Is(err, caddyauth.ErrUnknownSession) {
		t.Fatalf("session after logout: %v", err)
	}
	if _, ok := tr.Session(); ok {
		t.Fatal("transport kept the session")
	}
	if err := tr.Logout(context.Background()); err == nil {
		t.Fatal("second logout succeeded")
	}
}

// TestLoginRefused: wrong credentials are a typed error and nothing is
// sent to the backend.
func TestLoginRefused(t *testing.T) {
	g := startGateway(t, nil)
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC,
		Login: &client.PasswordLogin{Secret: "wrong", AccountEmail: userEmail}})
	req, _ := http.NewRequest("GET", g.srv.URL+"/x", nil)
	_, err := tr.Client().Do(req)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != caddyauth.CodeBadCredentials {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatal("error text holds the secret")
	}
	if g.seen.Load() != 0 {
		t.Fatal("a request was sent without a session")
	}
}

// TestSXTKeyFlow: the ed25519 mode runs the sxt key flow once (registering
// a new key), then signs with the gateway-assigned key id.
func TestSXTKeyFlow(t *testing.T) {
	g := startGateway(t, nil)
	_, fresh, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: fresh,
		SXT: &client.SXTLogin{UserID: "alice"}})
	// Before the flow the key is unknown: prove the gateway would refuse it.
	other := newTransport(t, g, client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: fresh})
	if status, _, raw := do(t, other, g, "GET", "/x", ""); status != http.StatusUnauthorized || !strings.Contains(raw, "unknown_key") {
		t.Fatalf("unregistered key: %d %s", status, raw)
	}
	for i := 0; i < 2; i++ {
		if status, _, raw := do(t, tr, g, "GET", "/x", ""); status != http.StatusOK {
			t.Fatalf("%d %s", status, raw)
		}
	}
	tok, ok := tr.Tokens()
	if !ok || !strings.HasPrefix(tok.AccessToken, "access-") || !tok.RefreshTokenExpires.After(tok.AccessTokenExpires) {
		t.Fatalf("tokens %+v", tok)
	}
	g.mu.Lock()
	n := len(g.keys)
	g.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d keys registered, want 1", n)
	}
}

// closeTracker records whether the Transport closed the request body.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// TestBodyHandling: bodies over MaxBody fail before anything is sent; a
// body without a content type cannot be signed for the native scheme; the
// caller's body is always closed and the caller's headers never changed.
func TestBodyHandling(t *testing.T) {
	g := startGateway(t, nil)
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), MaxBody: 10})
	tests := []struct {
		name, body, ctype string
		length            int64
		ok                bool
	}{
		{"at the limit", "0123456789", "text/plain", 10, true},
		{"declared over the limit", "0123456789x", "text/plain", 11, false},
		{"undeclared over the limit", "0123456789x", "text/plain", -1, false},
		{"no content type", "abc", "", 3, false},
	}
	for _, tc := range tests {
		ct := &closeTracker{Reader: strings.NewReader(tc.body)}
		req, _ := http.NewRequest("POST", g.srv.URL+"/upload", nil)
		req.Body, req.ContentLength = ct, tc.length
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		before := g.seen.Load()
		resp, err := tr.RoundTrip(req)
		if !ct.closed {
			t.Errorf("%s: body not closed", tc.name)
		}
		if len(req.Header[rfc9421.HeaderSignature]) != 0 || len(req.Header[rfc9421.HeaderContentDigest]) != 0 {
			t.Errorf("%s: caller's headers changed", tc.name)
		}
		if tc.ok {
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %v %v", tc.name, err, resp)
			}
			resp.Body.Close()
			continue
		}
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: sent", tc.name)
		}
		if g.seen.Load() != before {
			t.Fatalf("%s: reached the gateway", tc.name)
		}
	}
}

// TestConcurrentFirstUse: concurrent first requests share one login
// (REL-09: run with -race).
func TestConcurrentFirstUse(t *testing.T) {
	g := startGateway(t, nil)
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC, Login: login()})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				req, _ := http.NewRequest("POST", g.srv.URL+"/c", bytes.NewReader([]byte(`{}`)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					continue
				}
				if resp.StatusCode != http.StatusOK {
					errs <- errors.New(resp.Status)
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := g.m.Store().ListUserSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	if len(n) != 1 || g.upstream.Load() != 40 {
		t.Fatalf("%d sessions, %d upstream; want 1 and 40", len(n), g.upstream.Load())
	}
}

// TestNativeRefusals: what the gateway answers a request the client did
// not sign, or signed and then changed, as the design note prescribes.
func TestNativeRefusals(t *testing.T) {
	g := startGateway(t, nil)
	// No signature: 401 with Accept-Signature.
	resp, err := http.Post(g.srv.URL+"/x", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized ||
		resp.Header.Get("Accept-Signature") != rfc9421.DefaultPolicy().AcceptSignature(true) {
		t.Fatalf("%d, Accept-Signature %q", resp.StatusCode, resp.Header.Get("Accept-Signature"))
	}
	// A replayed request: the same signed request sent twice.
	tr := newTransport(t, g, client.Config{Mode: client.ModeRFC9421HMAC, Login: login()})
	req, _ := http.NewRequest("POST", g.srv.URL+"/x", nil)
	req.Header.Set("Content-Type", "application/json")
	signed, err := tr.Sign(context.Background(), req, []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		again := signed.Clone(context.Background())
		again.Body, _ = signed.GetBody()
		resp, err := http.DefaultTransport.RoundTrip(again)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (i == 1 && !strings.Contains(string(raw), `"error":"replay"`)) {
			t.Fatalf("send %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	// A body changed after signing: refused by the digest, never forwarded.
	before := g.upstream.Load()
	signed, _ = tr.Sign(context.Background(), req, []byte(`{"n":2}`))
	signed.Body = io.NopCloser(strings.NewReader(`{"n":3}`))
	resp, err = http.DefaultTransport.RoundTrip(signed)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(raw), "bad_signature") || g.upstream.Load() != before {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
}

// TestNewValidation: New refuses configurations that cannot work.
func TestNewValidation(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name string
		cfg  client.Config
	}{
		{"no mode", client.Config{Login: login()}},
		{"hmac without credentials", client.Config{Mode: client.ModeRFC9421HMAC}},
		{"login with both ids", client.Config{Mode: client.ModeAmatino,
			Login: &client.PasswordLogin{Secret: "s", AccountEmail: "a@x", UserID: 1}}},
		{"login with neither id", client.Config{Mode: client.ModeAmatino, Login: &client.PasswordLogin{Secret: "s"}}},
		{"session without key", client.Config{Mode: client.ModeAmatino, Session: &client.Session{SessionID: 1}}},
		{"ed25519 without key", client.Config{Mode: client.ModeRFC9421Ed25519}},
		{"ed25519 short key", client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: priv[:32]}},
		{"sxt without user", client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: priv, SXT: &client.SXTLogin{}}},
		{"unknown component", client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), Components: []string{"@host"}}},
		{"bad label", client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), Label: "Sig"}},
		{"unknown digest", client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), Digest: "md5"}},
		{"negative MaxBody", client.Config{Mode: client.ModeRFC9421HMAC, Login: login(), MaxBody: -1}},
	}
	for _, tc := range tests {
		if _, err := client.New(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	tr, err := client.New(client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://h/x", nil)
	signed, err := tr.Sign(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantID := caddyauth.PublicKeyID(priv.Public().(ed25519.PublicKey))
	if !strings.Contains(signed.Header.Get("Signature-Input"), `keyid="`+wantID+`"`) {
		t.Fatalf("default keyid: %s", signed.Header.Get("Signature-Input"))
	}
}
