package e2e

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
)

// An sxt client written from WIRE.md alone:
//
//	POST <base>/auth/code   {"userId"}                                  → {"authCode"}
//	POST <base>/auth/token  {"userId","authCode","signature","key","scheme"}
//	                        signature = lower-case hex of Ed25519(code's UTF-8 bytes)
//	                        key = 32-byte public key, padded standard base64
//	                        → {"accessToken","refreshToken","accessTokenExpires","refreshTokenExpires"} (ms)
//	POST <base>/auth/refresh     Bearer <refresh> → a new pair
//	GET  <base>/auth/validtoken  Bearer <access>  → {"userId"}, or 401 with an empty body
//	POST <base>/auth/logout      Bearer <access>
//
// and everything else with `Authorization: Bearer <access>`.

// sxtKey is a client key pair.
type sxtKey struct {
	priv ed25519.PrivateKey
	pub  string
}

func newSxtKey(seed []byte) sxtKey {
	priv := ed25519.NewKeyFromSeed(seed)
	return sxtKey{priv: priv, pub: base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))}
}

func randomSxtKey(t *testing.T) sxtKey {
	t.Helper()
	seed, err := hex.DecodeString(randHex(ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return newSxtKey(seed)
}

func (k sxtKey) sign(code string) string {
	return hex.EncodeToString(ed25519.Sign(k.priv, []byte(code)))
}

// sxtTokens is a token answer.
type sxtTokens struct {
	AccessToken         string `json:"accessToken"`
	RefreshToken        string `json:"refreshToken"`
	AccessTokenExpires  int64  `json:"accessTokenExpires"`
	RefreshTokenExpires int64  `json:"refreshTokenExpires"`
}

// sxtClient talks to one gateway; base ends in /v1, as sxt clients are
// configured.
type sxtClient struct {
	base string
	hc   *http.Client
}

func newSxtClient(t *testing.T, g *gateway) *sxtClient {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &sxtClient{base: g.URL("/v1"), hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// do sends a request; hdr is name, value pairs (a name may repeat).
func (c *sxtClient) do(t *testing.T, method, url string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	registerAnswerCredentials(b) // tokens and auth codes (SEC-44)
	checkRefusal(url, resp.StatusCode, b)
	return resp, b
}

func (c *sxtClient) code(t *testing.T, userID string) string {
	t.Helper()
	resp, body := c.do(t, http.MethodPost, c.base+"/auth/code", map[string]string{"userId": userID, "joinCode": ""})
	var a struct {
		AuthCode string `json:"authCode"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil || a.AuthCode == "" {
		t.Fatalf("auth/code: %d %s", resp.StatusCode, body)
	}
	return a.AuthCode
}

// token answers code with key k.
func (c *sxtClient) token(t *testing.T, userID, code string, k sxtKey) (*http.Response, []byte) {
	t.Helper()
	sig := k.sign(code)
	registerSecret("sxt login signature", sig)
	return c.do(t, http.MethodPost, c.base+"/auth/token", map[string]string{"userId": userID, "authCode": code,
		"signature": sig, "key": k.pub, "scheme": "ed25519"})
}

// parseSxtTokens checks a token answer as clients do: all four fields, and
// Cache-Control: no-store (SEC-14).
func parseSxtTokens(t *testing.T, what string, resp *http.Response, body []byte) sxtTokens {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 4 {
		t.Fatalf("%s: answer %s, want exactly four fields", what, body)
	}
	var tk sxtTokens
	if err := json.Unmarshal(body, &tk); err != nil || tk.AccessToken == "" || tk.RefreshToken == "" ||
		tk.AccessTokenExpires <= time.Now().UnixMilli() || tk.RefreshTokenExpires < tk.AccessTokenExpires {
		t.Fatalf("%s: answer %s: %v", what, body, err)
	}
	return tk
}

func (c *sxtClient) login(t *testing.T, userID string, k sxtKey) sxtTokens {
	t.Helper()
	resp, body := c.token(t, userID, c.code(t, userID), k)
	return parseSxtTokens(t, "login "+userID, resp, body)
}

func (c *sxtClient) refresh(t *testing.T, tok string) (*http.Response, []byte) {
	t.Helper()
	return c.do(t, http.MethodPost, c.base+"/auth/refresh", nil, "Authorization", "Bearer "+tok)
}

// get sends a proxied GET with a bearer token.
func (c *sxtClient) get(t *testing.T, g *gateway, path, tok string) (*http.Response, []byte) {
	t.Helper()
	return c.do(t, http.MethodGet, g.URL(path), nil, "Authorization", "Bearer "+tok)
}

// TestSxtVector pins the client's signing against the WIRE.md vector, so a
// failure elsewhere is the gateway's, not the client's.
func TestSxtVector(t *testing.T) {
	t.Parallel()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	k := newSxtKey(seed)
	if k.pub != "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=" {
		t.Errorf("public key %s", k.pub)
	}
	if got := k.sign("5f2c9a0e7b1d4c3a8e6f0b2d9c4a7e1f"); got != "ae303d36d6311dcf8e7c3f3464d130324523ab70413449e77f6ea8f1137aa2983a4c2b32d7c7c5cb3bbc617b6bc2d39bac056989a3a8af49dea30c3d91c4f307" {
		t.Errorf("signature %s", got)
	}
}

// TestSxtFlow runs the whole sxt life cycle against the built binary on the
// bolt store.
func TestSxtFlow(t *testing.T) {
	t.Parallel()
	runSxtFlow(t, gwOpts{Sxt: "registration open"})
}

// TestSxtFlowRedis runs it on the redis store, against a real redis-server.
func TestSxtFlowRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	const bolt = "store bolt {{.Dir}}/sessions.db"
	if !strings.Contains(defaultCaddyfile, bolt) {
		t.Fatal("the default Caddyfile no longer has the bolt store line to replace")
	}
	// Nodes sharing redis share the master key; given as operators do,
	// through a file placeholder.
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString([]byte(randHex(16)))), 0o600); err != nil {
		t.Fatal(err)
	}
	runSxtFlow(t, gwOpts{Sxt: "registration open", Global: "\t\tmaster_key {file." + keyFile + "}\n",
		Caddyfile: strings.Replace(defaultCaddyfile, bolt, "store redis {\n\t\t\taddress "+srv.Addr()+"\n\t\t}", 1)})
}

// runSxtFlow drives a gateway configured by o through the sxt life cycle:
// register, log in, call the backend, refresh, reuse (SEC-18), log out
// (SEC-10), restart. The upstream is reached only by verified requests,
// sees the identity and never the token (SEC-43).
func runSxtFlow(t *testing.T, o gwOpts) {
	up := newUpstream(t)
	g := newGateway(t, up, o)
	c := newSxtClient(t, g)
	k := randomSxtKey(t)

	exists := func(id string) string {
		resp, body := c.do(t, http.MethodGet, c.base+"/auth/idexists/"+id, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("idexists: %d %s", resp.StatusCode, body)
		}
		return string(body)
	}
	if got := exists("walker"); got != "false" {
		t.Fatalf("idexists before registration: %q", got)
	}
	tk := c.login(t, "walker", k)
	if got := exists("walker"); got != "true" {
		t.Fatalf("idexists after registration: %q", got)
	}

	// A bearer request reaches the backend with the identity, without the
	// token, and with a forged identity header replaced (SEC-40).
	resp, body := c.do(t, http.MethodGet, g.URL("/orders?page=2"), nil,
		"Authorization", "Bearer "+tk.AccessToken, "X-Auth-User-Id", "1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer GET: %d %s", resp.StatusCode, body)
	}
	rec := up.Last(t)
	if rec.RequestURI != "/orders?page=2" || rec.Header.Get("X-Auth-Username") != "walker" ||
		len(rec.Header.Values("X-Auth-User-Id")) != 1 || rec.Header.Get("X-Auth-User-Id") == "1" {
		t.Errorf("upstream saw %s with identity %v", rec.RequestURI, rec.Header)
	}
	if rec.Header.Get("Authorization") != "" || strings.Contains(fmt.Sprint(rec.Header), tk.AccessToken) {
		t.Error("the bearer token reached the upstream (SEC-43)")
	}
	userID := rec.Header.Get("X-Auth-User-Id")

	resp, body = c.do(t, http.MethodGet, c.base+"/auth/validtoken", map[string]string{}, "Authorization", "Bearer "+tk.AccessToken)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"userId":"walker"}` {
		t.Fatalf("validtoken: %d %s", resp.StatusCode, body)
	}

	hits := up.Hits()
	resp, body = c.refresh(t, tk.RefreshToken)
	tk2 := parseSxtTokens(t, "refresh", resp, body)
	resp, body = c.get(t, g, "/orders", tk.AccessToken)
	expectRefusal(t, "old access token", resp, body, http.StatusUnauthorized, "invalid_token")
	if resp, body = c.get(t, g, "/orders", tk2.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("new access token: %d %s", resp.StatusCode, body)
	}
	if up.Last(t).Header.Get("X-Auth-User-Id") != userID {
		t.Error("the refreshed session acts for another user")
	}

	// SEC-18: the rotated refresh token again ends the whole session.
	resp, body = c.refresh(t, tk.RefreshToken)
	expectRefusal(t, "R1 again", resp, body, http.StatusBadRequest, "invalid_grant")
	resp, body = c.refresh(t, tk2.RefreshToken)
	expectRefusal(t, "R2 after reuse", resp, body, http.StatusBadRequest, "invalid_grant")
	resp, body = c.get(t, g, "/orders", tk2.AccessToken)
	expectRefusal(t, "A2 after reuse", resp, body, http.StatusUnauthorized, "invalid_token")
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="sessiongate", error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	m := g.Metrics(t)
	for _, mv := range []struct{ name, labels string }{
		{"caddy_sessiongate_refresh_reuse_detected_total", `dialect="sxt"`},
		{"caddy_sessiongate_sessions_ended_total", `dialect="sxt",reason="refresh_reuse"`},
	} {
		if v, ok := metricValue(m, mv.name, mv.labels); !ok || v != 1 {
			t.Errorf("%s{%s} = %v (found %v), want 1", mv.name, mv.labels, v, ok)
		}
	}

	// SEC-10: logout ends access and refresh token.
	tk3 := c.login(t, "walker", k)
	resp, body = c.do(t, http.MethodPost, c.base+"/auth/logout", nil, "Authorization", "Bearer "+tk3.AccessToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	resp, body = c.get(t, g, "/orders", tk3.AccessToken)
	expectRefusal(t, "access after logout", resp, body, http.StatusUnauthorized, "invalid_token")
	resp, body = c.refresh(t, tk3.RefreshToken)
	expectRefusal(t, "refresh after logout", resp, body, http.StatusBadRequest, "invalid_grant")
	resp, body = c.do(t, http.MethodGet, c.base+"/auth/validtoken", nil, "Authorization", "Bearer "+tk3.AccessToken)
	if resp.StatusCode != http.StatusUnauthorized || len(body) != 0 {
		t.Errorf("validtoken after logout: %d %q, want 401 with an empty body", resp.StatusCode, body)
	}
	if up.Hits() != hits+1 {
		t.Errorf("upstream hits %d, want %d: a refused request reached it", up.Hits(), hits+1)
	}
	if v, ok := metricValue(g.Metrics(t), "caddy_sessiongate_logins_total", `dialect="sxt",result="ok"`); !ok || v != 2 {
		t.Errorf("sxt logins ok = %v, want 2", v)
	}

	// An acknowledged login survives a restart of the gateway; the
	// registered user too.
	tk4 := c.login(t, "walker", k)
	g.Stop()
	g.Start()
	if resp, body = c.get(t, g, "/orders", tk4.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("access token after restart: %d %s", resp.StatusCode, body)
	}
	resp, body = c.refresh(t, tk4.RefreshToken)
	parseSxtTokens(t, "refresh after restart", resp, body)
	if strings.Contains(g.Logs(), tk4.AccessToken) || strings.Contains(g.Logs(), tk4.RefreshToken) {
		t.Error("a token appears in the logs (SEC-44)")
	}
}

// TestSxtRefusals covers the RFC 6750 answers of proxied requests (SEC-14,
// SEC-15), closed registration (SEC-31), a static user's key from the
// global block, and two credential schemes in one request: none of these
// reaches the upstream.
func TestSxtRefusals(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	static := randomSxtKey(t)
	g := newGateway(t, up, gwOpts{Sxt: "prefix /v1",
		Global: fmt.Sprintf("\t\tuser keyholder {\n\t\t\tid 77\n\t\t\tpublic_key %s\n\t\t}\n", static.pub)})
	c := newSxtClient(t, g)

	// Registration is closed by default: no user is made (SEC-31).
	resp, body := c.token(t, "newcomer", c.code(t, "newcomer"), randomSxtKey(t))
	expectRefusal(t, "closed registration", resp, body, http.StatusUnauthorized, "bad_credentials")
	if _, body := c.do(t, http.MethodGet, c.base+"/auth/idexists/newcomer", nil); string(body) != "false" {
		t.Errorf("idexists after a refused registration: %q", body)
	}
	// A key of the static user logs it in; the code is single use (SEC-29).
	code := c.code(t, "keyholder")
	resp, body = c.token(t, "keyholder", code, static)
	tk := parseSxtTokens(t, "static user", resp, body)
	resp, body = c.token(t, "keyholder", code, static)
	expectRefusal(t, "code used twice", resp, body, http.StatusUnauthorized, "bad_credentials")
	resp, body = c.token(t, "keyholder", c.code(t, "keyholder"), randomSxtKey(t))
	expectRefusal(t, "another key", resp, body, http.StatusUnauthorized, "bad_credentials")

	a := tk.AccessToken
	hits := up.Hits()
	tests := []struct {
		name      string
		path      string
		hdr       []string
		status    int
		code      string
		challenge string // the Bearer challenge expected, exactly
	}{
		{"no credential", "/x", nil, 401, "missing_credentials", `Bearer realm="sessiongate"`},
		{"token in the query only", "/x?access_token=" + a, nil, 401, "missing_credentials", `Bearer realm="sessiongate"`},
		{"header and query", "/x?access_token=" + a, []string{"Authorization", "Bearer " + a}, 400, "invalid_request",
			`Bearer realm="sessiongate", error="invalid_request"`},
		{"two Authorization headers", "/x", []string{"Authorization", "Bearer " + a, "Authorization", "Bearer " + a}, 400,
			"invalid_request", `Bearer realm="sessiongate", error="invalid_request"`},
		{"Bearer a b", "/x", []string{"Authorization", "Bearer " + a + " b"}, 400, "invalid_request",
			`Bearer realm="sessiongate", error="invalid_request"`},
		{"refresh token as access token", "/x", []string{"Authorization", "Bearer " + tk.RefreshToken}, 401, "invalid_token",
			`Bearer realm="sessiongate", error="invalid_token"`},
		{"made-up token", "/x", []string{"Authorization", "Bearer " + strings.Repeat("A", 43)}, 401, "invalid_token",
			`Bearer realm="sessiongate", error="invalid_token"`},
		{"bearer and amatino", "/x", []string{"Authorization", "Bearer " + a, "X-Session-ID", "1", "X-Signature", "x"}, 400,
			"invalid_request", ""},
	}
	for _, tt := range tests {
		resp, body := c.do(t, http.MethodGet, g.URL(tt.path), nil, tt.hdr...)
		expectRefusal(t, tt.name, resp, body, tt.status, tt.code)
		var bearer []string
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			if strings.HasPrefix(v, "Bearer ") {
				bearer = append(bearer, v)
			}
		}
		if tt.challenge != "" && (len(bearer) != 1 || bearer[0] != tt.challenge) {
			t.Errorf("%s: Bearer challenges %q, want %q", tt.name, bearer, tt.challenge)
		}
	}
	if up.Hits() != hits {
		t.Errorf("%d refused requests reached the upstream", up.Hits()-hits)
	}
	if resp, body := c.get(t, g, "/x", a); resp.StatusCode != http.StatusOK {
		t.Fatalf("the valid token after the refusals: %d %s", resp.StatusCode, body)
	}
}
