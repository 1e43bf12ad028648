package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The operator's side: users in the store and sessions managed through the
// admin API (module admin.api.sessiongate) and the `caddy sessiongate`
// commands, against the built binary. Every answer and every command output
// is kept and scanned for the secrets of the test (SEC-16, SEC-44).

// adminClient calls /sessiongate/… on a gateway's admin endpoint and keeps
// every answer.
type adminClient struct {
	g  *gateway
	hc *http.Client

	mu      sync.Mutex
	answers []string
}

func newAdminClient(t *testing.T, g *gateway) *adminClient {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &adminClient{g: g, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (a *adminClient) keep(s string) {
	a.mu.Lock()
	a.answers = append(a.answers, s)
	a.mu.Unlock()
}

// call sends body (JSON, "" for none) and returns the status and the answer
// decoded as an object.
func (a *adminClient) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.g.AdminURL(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	a.keep(string(b))
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d, answer is not a JSON object: %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// must calls and fails the test unless the status is want.
func (a *adminClient) must(t *testing.T, want int, method, path, body string) map[string]any {
	t.Helper()
	code, out := a.call(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// checkNoSecrets scans every answer for each secret.
func (a *adminClient) checkNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ans := range a.answers {
		for _, s := range secrets {
			if s != "" && strings.Contains(ans, s) {
				t.Errorf("answer %q contains secret %q", ans, s)
			}
		}
	}
}

// adminAddr is the --address of the gateway's admin endpoint.
func (g *gateway) adminAddr() string { return strings.TrimPrefix(g.AdminURL(""), "http://") }

// sessiongate runs `caddy sessiongate args…` with stdin (a pipe) in the
// gateway's environment and returns stdout, stderr and the exit error.
func (g *gateway) sessiongate(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, append([]string{"sessiongate"}, args...)...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("caddy sessiongate %v: no exit within 60s", args)
	}
	return out.String(), errOut.String(), err
}

// loginFails asserts that a login by email is refused with 401.
func loginFails(t *testing.T, c *amClient, email, secret, why string) {
	t.Helper()
	resp, body, err := c.post("/session", "application/json", loginJSON(email, 0, secret))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s: login answered %d %s, want 401", why, resp.StatusCode, body)
	}
}

// signedStatus is the status of a signed GET with session s.
func signedStatus(t *testing.T, c *amClient, s amSession) int {
	t.Helper()
	resp, _, err := c.get(s, "/entities")
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// TestAdminUserLifecycle: a user created through the admin API logs in
// with amatino; disable refuses its session and its logins, enable lets it
// in again; a password change ends its sessions (SEC-13); revoke one and
// revoke all end exactly what they name; static users are read-only; the
// user survives a restart (bolt). No answer carries a secret.
func TestAdminUserLifecycle(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	a := newAdminClient(t, g)
	c := newClient(t, g.URL(""))
	pw := "admin-e2e-canary-" + randHex(8)
	pw2 := "admin-e2e-canary2-" + randHex(8)

	u := a.must(t, http.StatusCreated, "POST", "/sessiongate/users",
		`{"email":"carol@example.test","username":"carol","password":"`+pw+`"}`)
	if u["id"] != float64(44) || u["source"] != "store" || u["has_password"] != true {
		t.Fatalf("created user %v; want id 44 (after static 42, 43)", u)
	}
	carol := &testUser{Name: "carol", ID: 44, Email: "carol@example.test", Secret: pw}
	s1 := c.login(t, carol)
	if st := signedStatus(t, c, s1); st != http.StatusOK {
		t.Fatalf("signed GET of the new user: %d", st)
	}
	if got := up.Last(t).Header.Get("X-Auth-User-Id"); got != "44" {
		t.Errorf("upstream saw user %q, want 44", got)
	}

	out := a.must(t, http.StatusOK, "POST", "/sessiongate/users/44/disable", "")
	if out["sessions_revoked"] != float64(1) {
		t.Errorf("disable: %v", out)
	}
	hits := up.Hits()
	if st := signedStatus(t, c, s1); st != http.StatusUnauthorized {
		t.Errorf("session of a disabled user: %d, want 401", st)
	}
	if up.Hits() != hits {
		t.Error("a refused request reached the upstream")
	}
	loginFails(t, c, carol.Email, pw, "disabled user")

	a.must(t, http.StatusOK, "POST", "/sessiongate/users/44/enable", "")
	s2 := c.login(t, carol)
	s3 := c.login(t, carol)
	out = a.must(t, http.StatusOK, "PUT", "/sessiongate/users/44/password", `{"password":"`+pw2+`"}`)
	if out["sessions_revoked"] != float64(2) {
		t.Errorf("password change: %v", out)
	}
	for _, s := range []amSession{s2, s3} {
		if st := signedStatus(t, c, s); st != http.StatusUnauthorized {
			t.Errorf("session after the password change: %d, want 401", st)
		}
	}
	loginFails(t, c, carol.Email, pw, "old password")
	carol.Secret = pw2

	// Revoke one (by the hash the list shows), then all.
	keep, gone, last := c.login(t, carol), c.login(t, carol), c.login(t, carol)
	aliceSession := c.login(t, alice)
	list := a.must(t, http.StatusOK, "GET", "/sessiongate/users/44/sessions", "")
	sessions, _ := list["sessions"].([]any)
	if len(sessions) != 3 {
		t.Fatalf("session list: %v", list)
	}
	hashRe := regexp.MustCompile(`^[0-9a-f]{16}$`)
	var hashes []string
	for _, it := range sessions {
		s := it.(map[string]any)
		h, _ := s["session"].(string)
		if !hashRe.MatchString(h) || s["dialect"] != "amatino" || s["expired"] != false {
			t.Errorf("listed session %v", s)
		}
		hashes = append(hashes, h)
	}
	// Sessions are listed oldest first: the second is `gone`.
	a.must(t, http.StatusOK, "DELETE", "/sessiongate/users/44/sessions/"+hashes[1], "")
	if st := signedStatus(t, c, gone); st != http.StatusUnauthorized {
		t.Errorf("revoked session: %d, want 401", st)
	}
	for _, s := range []amSession{keep, last} {
		if st := signedStatus(t, c, s); st != http.StatusOK {
			t.Errorf("a session that was not revoked: %d", st)
		}
	}
	out = a.must(t, http.StatusOK, "DELETE", "/sessiongate/users/44/sessions", "")
	if out["sessions_revoked"] != float64(2) {
		t.Errorf("revoke all: %v", out)
	}
	for _, s := range []amSession{keep, last} {
		if st := signedStatus(t, c, s); st != http.StatusUnauthorized {
			t.Errorf("session after revoke-all: %d, want 401", st)
		}
	}
	if st := signedStatus(t, c, aliceSession); st != http.StatusOK {
		t.Errorf("another user's session after revoke-all: %d", st)
	}

	// Refusals, each with its status.
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/sessiongate/users/42/disable", "", 409},
		{"PUT", "/sessiongate/users/42/password", `{"password":"long enough"}`, 409},
		{"POST", "/sessiongate/users", `{"email":"ALICE@example.test"}`, 409},
		{"POST", "/sessiongate/users", `{"email":"carol@example.test"}`, 409},
		{"POST", "/sessiongate/users", `{"email":"bad"}`, 400},
		{"POST", "/sessiongate/users", `{"email":"x@example.test","password":"short"}`, 400},
		{"POST", "/sessiongate/users", `{"username":"x","username":"y"}`, 400},
		{"POST", "/sessiongate/users", `{"username":"x","role":"admin"}`, 400},
		{"GET", "/sessiongate/users/999", "", 404},
		{"POST", "/sessiongate/users/999/disable", "", 404},
		{"GET", "/sessiongate/users/abc", "", 400},
		{"DELETE", "/sessiongate/users/44/sessions/" + hashes[1], "", 404},
		{"DELETE", "/sessiongate/users/44/sessions/" + strconv.FormatInt(keep.SessionID, 10), "", 400},
		{"GET", "/sessiongate/users?limit=0", "", 400},
	} {
		code, out := a.call(t, tc.method, tc.path, tc.body)
		if code != tc.status || out["error"] == nil {
			t.Errorf("%s %s %s: %d %v, want %d with an error", tc.method, tc.path, tc.body, code, out, tc.status)
		}
	}

	st := a.must(t, http.StatusOK, "GET", "/sessiongate/stats", "")
	if st["static_users"] != float64(2) || st["sessions_total"] != float64(1) {
		t.Errorf("stats %v", st)
	}
	users := a.must(t, http.StatusOK, "GET", "/sessiongate/users", "")
	if list, _ := users["users"].([]any); len(list) != 3 {
		t.Errorf("users %v", users)
	}

	// Users live in the bolt store: a restart keeps them.
	g.Stop()
	g.Start()
	c2 := newClient(t, g.URL(""))
	if s := c2.login(t, carol); signedStatus(t, c2, s) != http.StatusOK {
		t.Error("the stored user cannot work after a restart")
	}

	// Events: each change was emitted as a Caddy event, with ids only.
	logs := g.Logs()
	for _, name := range []string{"sessiongate_user_created", "sessiongate_user_disabled", "sessiongate_user_enabled",
		"sessiongate_password_changed", "sessiongate_session_revoked", "sessiongate_sessions_revoked"} {
		if !strings.Contains(logs, `"name":"`+name+`"`) {
			t.Errorf("event %s not emitted", name)
		}
	}
	if !strings.Contains(logs, `"data":{"user_id":44}`) {
		t.Error("no event carries the user id")
	}
	secrets := []string{pw, pw2, "$argon2id$", s1.APIKey, s2.APIKey, keep.APIKey, gone.APIKey, strconv.FormatInt(gone.SessionID, 10)}
	a.checkNoSecrets(t, secrets...)
	for _, s := range []string{pw, pw2, s1.APIKey, keep.APIKey} {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains secret %q (SEC-44)", s)
		}
	}
}

// TestAdminCommands runs every `caddy sessiongate user|session` command as
// a subprocess against the running instance, success and refusal, and
// checks what it printed.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	addr := g.adminAddr()
	pw := "cli-e2e-canary-" + randHex(8)
	pw2 := "cli-e2e-canary2-" + randHex(8)
	key := randomSxtKey(t)
	var printed []string

	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, errOut, err := g.sessiongate(t, stdin, append(args, "--address", addr)...)
		printed = append(printed, out, errOut)
		return out + errOut, err
	}
	ok := func(want string, stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("%v printed %q, want %q", args, out, want)
		}
		return out
	}
	fails := func(want string, stdin string, args ...string) {
		t.Helper()
		out, err := run(stdin, args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%v: exit %v, want a failure\n%s", args, err, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("%v printed %q, want %q", args, out, want)
		}
	}

	ok("Added user 44.", pw+"\n", "user", "add", "--email", "dave@example.test", "--username", "dave", "--key", key.pub)
	dave := &testUser{Name: "dave", ID: 44, Email: "dave@example.test", Secret: pw}
	s1 := c.login(t, dave)
	ok("Added user 45.", "", "user", "add", "--username", "keyonly", "--no-password")
	fails("HTTP 409", pw+"\n", "user", "add", "--email", "alice@example.test")
	fails("HTTP 400", "short\n", "user", "add", "--email", "e@example.test")
	fails("unknown flag: --password", "", "user", "add", "--password", pw)

	out := ok("ID", "", "user", "list")
	for _, want := range []string{"alice@example.test", "static", "dave@example.test", "keyonly"} {
		if !strings.Contains(out, want) {
			t.Errorf("user list lacks %q:\n%s", want, out)
		}
	}
	ok("More users: --after 43", "", "user", "list", "--limit", "2")
	out = ok("source:          store", "", "user", "show", "44")
	if !strings.Contains(out, "ed25519-") || !strings.Contains(out, "password:        set") {
		t.Errorf("user show:\n%s", out)
	}
	ok(`"source": "static"`, "", "user", "show", "42", "--json")
	fails("HTTP 404", "", "user", "show", "999")
	fails("positive integer", "", "user", "show", "x")

	out = ok("SESSION", "", "session", "list", "44")
	hash := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+amatino`).FindStringSubmatch(out)
	if hash == nil {
		t.Fatalf("session list shows no session hash:\n%s", out)
	}
	ok("Session "+hash[1]+" of user 44 revoked.", "", "session", "revoke", "44", hash[1])
	if st := signedStatus(t, c, s1); st != http.StatusUnauthorized {
		t.Errorf("session revoked by the CLI: %d", st)
	}
	fails("HTTP 404", "", "session", "revoke", "44", hash[1])

	s2, s3 := c.login(t, dave), c.login(t, dave)
	ok("2 sessions of user 44 revoked.", "", "session", "revoke-all", "44")
	for _, s := range []amSession{s2, s3} {
		if st := signedStatus(t, c, s); st != http.StatusUnauthorized {
			t.Errorf("session after CLI revoke-all: %d", st)
		}
	}
	fails("HTTP 404", "", "session", "revoke-all", "999")

	s4 := c.login(t, dave)
	ok("User 44 disabled; 1 sessions revoked.", "", "user", "disable", "44")
	if st := signedStatus(t, c, s4); st != http.StatusUnauthorized {
		t.Errorf("session after CLI disable: %d", st)
	}
	loginFails(t, c, dave.Email, pw, "user disabled by the CLI")
	fails("HTTP 409", "", "user", "disable", "42")
	ok("User 44 enabled.", "", "user", "enable", "44")
	s5 := c.login(t, dave)
	ok("Password of user 44 changed; 1 sessions revoked.", pw2+"\n", "user", "passwd", "44")
	if st := signedStatus(t, c, s5); st != http.StatusUnauthorized {
		t.Errorf("session after CLI passwd: %d", st)
	}
	loginFails(t, c, dave.Email, pw, "old password after CLI passwd")
	dave.Secret = pw2
	c.login(t, dave)
	fails("HTTP 409", pw2+"\n", "user", "passwd", "43")

	k2 := randomSxtKey(t)
	out = ok("added to user 45.", "", "user", "key", "add", "45", k2.pub)
	keyID := regexp.MustCompile(`Key (ed25519-\S+) added`).FindStringSubmatch(out)
	if keyID == nil {
		t.Fatalf("key add printed no key id: %s", out)
	}
	fails("HTTP 409", "", "user", "key", "add", "44", k2.pub)
	fails("HTTP 400", "", "user", "key", "add", "45", "AAAA")
	ok("Key "+keyID[1]+" removed from user 45.", "", "user", "key", "remove", "45", keyID[1])
	fails("HTTP 404", "", "user", "key", "remove", "45", keyID[1])

	// Help texts exist and are Caddy-style.
	for _, sub := range [][]string{{"user", "--help"}, {"user", "add", "--help"}, {"session", "revoke-all", "--help"}, {"sign", "--help"}} {
		out, _, err := g.sessiongate(t, "", sub...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %v\n%s", sub, err, out)
		}
	}

	// Without a running instance at the address, a clear failure.
	dead := freePorts(t, 1)[0]
	if out, _, err := g.sessiongate(t, "", "user", "list", "--address", fmt.Sprintf("127.0.0.1:%d", dead)); err == nil {
		t.Errorf("user list against nothing succeeded: %s", out)
	}

	for _, p := range printed {
		for _, s := range []string{pw, pw2, "$argon2id$", s1.APIKey} {
			if strings.Contains(p, s) {
				t.Errorf("a command printed secret %q", s)
			}
		}
	}
	if ev := "sessiongate_key_added"; !strings.Contains(g.Logs(), `"name":"`+ev+`"`) {
		t.Errorf("event %s not emitted", ev)
	}
}

// TestSignCommand: the headers `caddy sessiongate sign` prints are accepted
// by the gateway, for a GET with a query and for a POST whose body is
// signed the old way.
func TestSignCommand(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)
	sid := strconv.FormatInt(s.SessionID, 10)

	send := func(method, target string, body []byte, args ...string) (int, string) {
		t.Helper()
		full := append([]string{"sign", "--session-id", sid, "--method", method, "--path", target, "--url", g.URL("")}, args...)
		out, errOut, err := g.sessiongate(t, s.APIKey+"\n", full...)
		if err != nil {
			t.Fatalf("sign: %v\n%s%s", err, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "X-Session-ID: ") || !strings.HasPrefix(lines[1], "X-Signature: ") ||
			!strings.HasPrefix(lines[2], "curl -X "+method+" ") {
			t.Fatalf("sign printed:\n%s", out)
		}
		if !strings.Contains(lines[2], "'"+g.URL(target)+"'") {
			t.Errorf("curl line %q does not target %s", lines[2], g.URL(target))
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, g.URL(target), rd)
		for _, l := range lines[:2] {
			k, v, _ := strings.Cut(l, ": ")
			req.Header.Set(k, v)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, b := mustDo(t, c, req)
		return resp.StatusCode, string(b)
	}
	if st, b := send("GET", "/entities?x=1", nil); st != http.StatusOK {
		t.Fatalf("GET signed by the CLI: %d %s", st, b)
	}
	if rec := up.Last(t); rec.RequestURI != "/entities?x=1" || rec.Header.Get("X-Auth-User-Id") != "42" {
		t.Errorf("upstream saw %s as %q", rec.RequestURI, rec.Header.Get("X-Auth-User-Id"))
	}
	body := []byte(`{"name":"Acme"}`)
	if st, b := send("POST", "/entities", body, "--body", string(body), "--sign-body"); st != http.StatusOK {
		t.Fatalf("POST with the body signed by the CLI: %d %s", st, b)
	}
	if rec := up.Last(t); !bytes.Equal(rec.Body, body) {
		t.Errorf("upstream body %q", rec.Body)
	}
	// A signature for another path is refused.
	out, _, err := g.sessiongate(t, s.APIKey+"\n", "sign", "--session-id", sid, "--path", "/other")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", g.URL("/entities"), nil)
	for _, l := range strings.Split(out, "\n")[:2] {
		k, v, _ := strings.Cut(l, ": ")
		req.Header.Set(k, v)
	}
	if resp, _ := mustDo(t, c, req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("signature for /other accepted on /entities: %d", resp.StatusCode)
	}
	if _, _, err := g.sessiongate(t, "", "sign", "--session-id", sid); err == nil {
		t.Error("sign without an api_key succeeded")
	}
}

// TestAdminKeyLogsInWithSxt (SEC-31): with registration closed, a stored
// user logs in with sxt only with a key the admin API added; once the key
// is removed it no longer does.
func TestAdminKeyLogsInWithSxt(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Sxt: "registration closed"})
	a := newAdminClient(t, g)
	sc := newSxtClient(t, g)
	k := randomSxtKey(t)

	a.must(t, http.StatusCreated, "POST", "/sessiongate/users", `{"username":"walker"}`)
	if resp, body := sc.token(t, "walker", sc.code(t, "walker"), k); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login with an unregistered key: %d %s", resp.StatusCode, body)
	}
	added := a.must(t, http.StatusCreated, "POST", "/sessiongate/users/44/keys", `{"public_key":"`+k.pub+`"}`)
	tk := sc.login(t, "walker", k)
	if resp, body := sc.get(t, g, "/orders", tk.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer request of the admin-keyed user: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(g.Logs(), `"event":"key_registered"`) {
		t.Error("key registration not in the audit log")
	}
	keyID, _ := added["id"].(string)
	a.must(t, http.StatusOK, "DELETE", "/sessiongate/users/44/keys/"+keyID, "")
	if resp, body := sc.token(t, "walker", sc.code(t, "walker"), k); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a removed key: %d %s", resp.StatusCode, body)
	}
	// Revoke-all ends the sxt session too.
	a.must(t, http.StatusOK, "DELETE", "/sessiongate/users/44/sessions", "")
	if resp, _ := sc.get(t, g, "/orders", tk.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bearer token after revoke-all: %d", resp.StatusCode)
	}
	a.checkNoSecrets(t, k.pub, tk.AccessToken, tk.RefreshToken)
}
