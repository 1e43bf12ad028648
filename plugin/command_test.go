package plugin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/password"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// cmdFixture runs `caddy sessiongate …` command trees against the admin
// routes served over real HTTP, the way the commands reach a running Caddy.
type cmdFixture struct {
	*adminFixture
	addr string
}

func newCmdFixture(t *testing.T) *cmdFixture {
	t.Helper()
	f := newAdminFixture(t)
	srv := httptest.NewServer(f.mux)
	t.Cleanup(srv.Close)
	return &cmdFixture{adminFixture: f, addr: strings.TrimPrefix(srv.URL, "http://")}
}

// runCmd runs `sessiongate args…` with stdin; it returns stdout, stderr and
// the error.
func runCmd(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "sessiongate", SilenceUsage: true, SilenceErrors: true}
	addSessiongateCommands(root)
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// admin runs a user or session command against the fixture's admin API.
func (f *cmdFixture) admin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	// --address goes after the subcommand, as an operator would type it.
	args = append(args[:len(args):len(args)], "--address", f.addr)
	out, errOut, err := runCmd(t, stdin, args...)
	for _, s := range f.secrets {
		if strings.Contains(out, s) || strings.Contains(errOut, s) || (err != nil && strings.Contains(err.Error(), s)) {
			t.Errorf("%v printed secret %q", args, s)
		}
	}
	return out + errOut, err
}

type cmdCase struct {
	name     string
	stdin    string
	args     []string
	contains string // in the output, or in the error when wantErr
	wantErr  bool
}

func (f *cmdFixture) runCases(t *testing.T, cases []cmdCase) {
	t.Helper()
	for _, tc := range cases {
		out, err := f.admin(t, tc.stdin, tc.args...)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: %v: error %v, want error=%v (output %q)", tc.name, tc.args, err, tc.wantErr, out)
			continue
		}
		text := out
		if err != nil {
			text = err.Error()
		}
		if !strings.Contains(text, tc.contains) {
			t.Errorf("%s: %q does not contain %q", tc.name, text, tc.contains)
		}
	}
}

func TestCommandUserAdd(t *testing.T) {
	f := newCmdFixture(t)
	m := f.app.Manager()
	ctx := context.Background()
	const pw = "cli-canary-password-1"
	key := f.newKey(t)
	hash := "$argon2id$" // keep the scan on even though the real one is added below
	phc, err := password.NewHasher(password.Config{AllowWeakParams: true, Params: password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	given, _ := phc.Hash(ctx, "cli hashed password")
	f.secrets = append(f.secrets, pw, hash, given)

	out, err := f.admin(t, pw+"\n", "user", "add", "--email", "cli@example.com", "--username", "cli", "--account-number", "42", "--key", key)
	if err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Added user 2.") || !strings.Contains(out, "cli@example.com") || !strings.Contains(out, "password:        set") {
		t.Errorf("user add printed %q", out)
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "cli@example.com", Password: pw}); err != nil {
		t.Errorf("the added user cannot log in with the piped password: %v", err)
	}
	f.runCases(t, []cmdCase{
		{"hashed", given + "\n", []string{"user", "add", "--id", "50", "--email", "h@example.com", "--hashed"}, "Added user 50.", false},
		{"no password", "", []string{"user", "add", "--username", "keyonly", "--no-password", "--json"}, `"has_password": false`, false},
		{"CRLF line", "crlf-password-ok\r\n", []string{"user", "add", "--username", "crlf"}, "Added user", false},
		{"static email", pw + "\n", []string{"user", "add", "--email", "static@example.com"}, "HTTP 409", true},
		{"taken username", pw + "\n", []string{"user", "add", "--username", "cli"}, "username is already taken", true},
		{"short password", "short\n", []string{"user", "add", "--username", "s1"}, "HTTP 400", true},
		{"empty password", "\n", []string{"user", "add", "--username", "s2"}, "empty password", true},
		{"bad key", pw + "\n", []string{"user", "add", "--username", "s3", "--key", "AAAA"}, "public_key", true},
		{"negative id", pw + "\n", []string{"user", "add", "--id", "-1"}, "--id", true},
		{"both modes", "", []string{"user", "add", "--no-password", "--hashed"}, "exclude each other", true},
		{"no such flag", "", []string{"user", "add", "--password", "x"}, "unknown flag", true},
	})
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "h@example.com", Password: "cli hashed password"}); err != nil {
		t.Errorf("user added with --hashed cannot log in: %v", err)
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Username: "crlf", Password: "crlf-password-ok"}); err != nil {
		t.Errorf("a CRLF-terminated password kept its CR: %v", err)
	}
	f.checkNoSecrets(t)
}

func TestCommandUserListShow(t *testing.T) {
	f := newCmdFixture(t)
	for i := 0; i < 3; i++ {
		if _, err := f.app.Manager().CreateUser(context.Background(), caddyauth.NewUser{Username: "u" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := f.admin(t, "", "user", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "static@example.com") ||
		!strings.Contains(lines[1], "static") || !strings.Contains(lines[4], "u2") {
		t.Errorf("user list:\n%s", out)
	}
	out, err = f.admin(t, "", "user", "list", "--limit", "2")
	if err != nil || !strings.Contains(out, "More users: --after 2") || strings.Contains(out, "u1") {
		t.Errorf("first page: %v\n%s", err, out)
	}
	out, err = f.admin(t, "", "user", "list", "--limit", "1", "--all", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var all struct {
		Users []userView `json:"users"`
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all.Users) != 4 || all.Users[3].Username != "u2" {
		t.Errorf("--all --json: %v\n%s", err, out)
	}
	f.runCases(t, []cmdCase{
		{"after", "", []string{"user", "list", "--after", "2"}, "u1", false},
		{"limit 0", "", []string{"user", "list", "--limit", "0"}, "--limit", true},
		{"negative after", "", []string{"user", "list", "--after", "-5"}, "--after", true},
		{"show static", "", []string{"user", "show", "1"}, "source:          static", false},
		{"show stored", "", []string{"user", "show", "3"}, "username:        u1", false},
		{"show json", "", []string{"user", "show", "3", "--json"}, `"username": "u1"`, false},
		{"show unknown", "", []string{"user", "show", "99"}, "HTTP 404", true},
		{"show bad id", "", []string{"user", "show", "abc"}, "positive integer", true},
		{"show no id", "", []string{"user", "show"}, "accepts 1 arg", true},
	})
}

// SEC-13 through the CLI: disable and passwd end sessions.
func TestCommandUserChangesSEC13(t *testing.T) {
	f := newCmdFixture(t)
	ids := f.addBob(t)
	m := f.app.Manager()
	ctx := context.Background()
	const newPW = "cli-new-canary-password"
	f.secrets = append(f.secrets, newPW)
	key := f.newKey(t)
	raw, _ := base64.StdEncoding.DecodeString(key)
	keyID := caddyauth.PublicKeyID(raw)

	f.runCases(t, []cmdCase{
		{"disable", "", []string{"user", "disable", "10"}, "User 10 disabled; 2 sessions revoked.", false},
		{"disable static", "", []string{"user", "disable", "1"}, "HTTP 409", true},
		{"disable unknown", "", []string{"user", "disable", "99"}, "HTTP 404", true},
		{"disable bad id", "", []string{"user", "disable", "0"}, "positive integer", true},
		{"enable", "", []string{"user", "enable", "10"}, "User 10 enabled.", false},
		{"enable static", "", []string{"user", "enable", "1"}, "HTTP 409", true},
		{"passwd", newPW + "\n", []string{"user", "passwd", "10"}, "Password of user 10 changed; 0 sessions revoked.", false},
		{"passwd short", "short\n", []string{"user", "passwd", "10"}, "HTTP 400", true},
		{"passwd empty", "", []string{"user", "passwd", "10"}, "empty password", true},
		{"passwd static", newPW + "\n", []string{"user", "passwd", "1"}, "HTTP 409", true},
		{"passwd unknown", newPW + "\n", []string{"user", "passwd", "99"}, "HTTP 404", true},
		{"passwd bad hash", "not-a-hash\n", []string{"user", "passwd", "10", "--hashed"}, "password_hash", true},
		{"key add", "", []string{"user", "key", "add", "10", key}, "Key " + keyID + " added to user 10.", false},
		{"key add again", "", []string{"user", "key", "add", "10", key}, "HTTP 409", true},
		{"key add malformed", "", []string{"user", "key", "add", "10", "bm90IGEga2V5"}, "HTTP 400", true},
		{"key add static", "", []string{"user", "key", "add", "1", f.newKey(t)}, "HTTP 409", true},
		{"key remove", "", []string{"user", "key", "remove", "10", keyID}, "Key " + keyID + " removed from user 10.", false},
		{"key remove again", "", []string{"user", "key", "remove", "10", keyID}, "HTTP 404", true},
		{"key remove missing arg", "", []string{"user", "key", "remove", "10"}, "accepts 2 arg", true},
	})
	for _, id := range ids {
		if _, err := m.Session(ctx, id); err == nil {
			t.Error("a session survived the disable")
		}
	}
	if _, err := m.CheckPassword(ctx, caddyauth.PasswordLogin{Email: "bob@example.com", Password: newPW}); err != nil {
		t.Errorf("the password set through the CLI does not work: %v", err)
	}
	f.checkNoSecrets(t)
}

func TestCommandSessionsSEC13(t *testing.T) {
	f := newCmdFixture(t)
	ids := f.addBob(t)
	m := f.app.Manager()
	h0, h1 := m.LogHash(ids[0]), m.LogHash(ids[1])
	out, err := f.admin(t, "", "session", "list", "10")
	if err != nil || !strings.Contains(out, h0) || !strings.Contains(out, h1) || !strings.Contains(out, "amatino") {
		t.Fatalf("session list: %v\n%s", err, out)
	}
	f.runCases(t, []cmdCase{
		{"list json", "", []string{"session", "list", "10", "--json"}, `"session": "` + h0 + `"`, false},
		{"list unknown", "", []string{"session", "list", "99"}, "HTTP 404", true},
		{"revoke", "", []string{"session", "revoke", "10", h0}, "Session " + h0 + " of user 10 revoked.", false},
		{"revoke again", "", []string{"session", "revoke", "10", h0}, "HTTP 404", true},
		{"revoke raw id", "", []string{"session", "revoke", "10", ids[1]}, "HTTP 400", true},
		{"revoke-all", "", []string{"session", "revoke-all", "10"}, "1 sessions of user 10 revoked.", false},
		{"revoke-all static", "", []string{"session", "revoke-all", "1"}, "0 sessions of user 1 revoked.", false},
		{"revoke-all unknown", "", []string{"session", "revoke-all", "99"}, "HTTP 404", true},
		{"revoke-all bad id", "", []string{"session", "revoke-all", "x"}, "positive integer", true},
	})
	if out, _ := f.admin(t, "", "session", "list", "10"); strings.Contains(out, h1) {
		t.Errorf("revoked sessions still listed:\n%s", out)
	}
}

func TestCommandNoInstance(t *testing.T) {
	srv := httptest.NewServer(nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there now
	_, _, err := runCmd(t, "", "user", "list", "--address", addr)
	if err == nil || !strings.Contains(err.Error(), "performing request") {
		t.Fatalf("no running instance: %v", err)
	}
}

func amatinoSig(key string, ts int64, path string, body []byte) string {
	m := hmac.New(sha512.New, []byte(key))
	m.Write([]byte(strconv.FormatInt(ts, 10) + path))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestCommandSign(t *testing.T) {
	const key = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bodyFile := filepath.Join(dir, "body.json")
	body := []byte(`[{"name":"O'Brien"}]`)
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  []string // lines of stdout
	}{
		{"WIRE.md vector", key + "\n", []string{"--session-id", "7", "--path", "/entities", "--time", "1700000000"}, []string{
			"X-Session-ID: 7",
			"X-Signature: XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ==",
			"curl -X GET -H 'X-Session-ID: 7' -H 'X-Signature: XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ==' 'http://localhost/entities'",
		}},
		{"explicit amatino scheme", key + "\n", []string{"--scheme", "amatino", "--session-id", "7", "--path", "/entities", "--time", "1700000000"}, []string{
			"X-Session-ID: 7",
			"X-Signature: XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ==",
			"curl -X GET -H 'X-Session-ID: 7' -H 'X-Signature: XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ==' 'http://localhost/entities'",
		}},
		{"query not signed, key file", "", []string{"--session-id", "7", "--path", "/entities?x=1", "--time", "1700000000", "--key-file", keyFile, "--url", "http://127.0.0.1:8080/"}, []string{
			"X-Session-ID: 7",
			"X-Signature: " + amatinoSig(key, 1700000000, "/entities", nil),
			"curl -X GET -H 'X-Session-ID: 7' -H 'X-Signature: " + amatinoSig(key, 1700000000, "/entities", nil) + "' 'http://127.0.0.1:8080/entities?x=1'",
		}},
		{"body not signed", key, []string{"--session-id", "9", "--method", "POST", "--path", "/e", "--time", "1700000001", "--body", string(body)}, []string{
			"X-Session-ID: 9",
			"X-Signature: " + amatinoSig(key, 1700000001, "/e", nil),
			"curl -X POST -H 'X-Session-ID: 9' -H 'X-Signature: " + amatinoSig(key, 1700000001, "/e", nil) + `' -H 'Content-Type: application/json' --data-binary '[{"name":"O'\''Brien"}]' 'http://localhost/e'`,
		}},
		{"legacy raw body from file", key + "\r\n", []string{"--session-id", "9", "--method", "PUT", "--path", "/e", "--time", "1700000002", "--body-file", bodyFile, "--sign-body"}, []string{
			"X-Session-ID: 9",
			"X-Signature: " + amatinoSig(key, 1700000002, "/e", body),
			"curl -X PUT -H 'X-Session-ID: 9' -H 'X-Signature: " + amatinoSig(key, 1700000002, "/e", body) + "' -H 'Content-Type: application/json' --data-binary '@" + bodyFile + "' 'http://localhost/e'",
		}},
	}
	for _, tc := range cases {
		out, _, err := runCmd(t, tc.stdin, append([]string{"sign"}, tc.args...)...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, out, strings.Join(tc.want, "\n"))
		}
	}
	// Without --time it signs for now: the signature matches some second
	// near the present (the gateway's window is ±30 s).
	out, _, err := runCmd(t, key, "sign", "--session-id", "7", "--path", "/now")
	if err != nil {
		t.Fatal(err)
	}
	sigLine := strings.Split(out, "\n")[1]
	sig, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sigLine, "X-Signature: "))
	if _, ok := sign.Search([]byte(key), sig, "/now", nil, time.Now().Unix(), 60); !ok {
		t.Errorf("signature for now %q does not verify near the present", sigLine)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no session id", key, []string{}, "--session-id"},
		{"session id zero", key, []string{"--session-id", "0"}, "--session-id"},
		{"session id text", key, []string{"--session-id", "abc"}, "--session-id"},
		{"lower-case method", key, []string{"--session-id", "1", "--method", "get"}, "--method"},
		{"relative path", key, []string{"--session-id", "1", "--path", "entities"}, "--path"},
		{"path with space", key, []string{"--session-id", "1", "--path", "/a b"}, "--path"},
		{"both bodies", key, []string{"--session-id", "1", "--body", "x", "--body-file", bodyFile}, "exclude"},
		{"missing body file", key, []string{"--session-id", "1", "--body-file", filepath.Join(dir, "none")}, "--body-file"},
		{"empty key", "\n", []string{"--session-id", "1"}, "empty api_key"},
		{"empty key file", "", []string{"--session-id", "1", "--key-file", filepath.Join(dir, "body.json") + ".none"}, "--key-file"},
		{"negative time", key, []string{"--session-id", "1", "--time", "-5"}, "--time"},
		{"key as flag", key, []string{"--session-id", "1", "--key", key}, "unknown flag"},
	} {
		_, _, err := runCmd(t, tc.stdin, append([]string{"sign"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error echoes the key", tc.name)
		}
	}
}

func TestCommandHashPassword(t *testing.T) {
	const pw = "hash me, a passphrase"
	out, _, err := runCmd(t, pw+"\n", "hash-password", "--time", "1", "--memory-kib", "47104")
	if err != nil {
		t.Fatal(err)
	}
	phc := strings.TrimSpace(out)
	h, err := password.Parse(phc)
	if err != nil || h.Time != 1 || h.MemoryKiB != 47104 {
		t.Fatalf("hash-password printed %q: %v", phc, err)
	}
	hs, _ := password.NewHasher(password.Config{Params: h.Params})
	if ok, err := hs.Verify(context.Background(), phc, pw); !ok || err != nil {
		t.Errorf("printed hash does not verify the piped password: %v", err)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"\n", nil, "empty password"},
		{pw, []string{"--time", "1", "--memory-kib", "1024"}, "floor"},
	} {
		_, _, err := runCmd(t, tc.stdin, append([]string{"hash-password"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("hash-password %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// signedLines splits the sign command's output into its header fields and
// its curl line.
func signedLines(t *testing.T, out string) (http.Header, []string, string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[len(lines)-1], "curl ") {
		t.Fatalf("sign printed:\n%s", out)
	}
	h := http.Header{}
	var order []string
	for _, l := range lines[:len(lines)-1] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("sign printed a line that is not a header field: %q", l)
		}
		h.Add(k, v)
		order = append(order, k)
	}
	return h, order, lines[len(lines)-1]
}

// TestCommandSignRFC9421: the printed Signature-Input and Signature verify
// under the gateway's default policy, with the key, keyid, created and
// coverage the Go client would use, and the curl line sends exactly the
// fields and target that were signed.
func TestCommandSignRFC9421(t *testing.T) {
	const key = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bodyFile := filepath.Join(dir, "body.txt")
	fileBody := []byte("line one\nO'Brien\x00\xff")
	if err := os.WriteFile(bodyFile, fileBody, 0o600); err != nil {
		t.Fatal(err)
	}
	jsonBody := `[{"name":"O'Brien"}]`
	cases := []struct {
		name        string
		stdin       string
		args        []string
		method      string
		target      string
		authority   string // the Host the curl line sends
		body        []byte // signed body; nil for none
		contentType string
		curlHost    string // a Host field the curl line must send, if any
		curlBody    string // the curl arguments that send the body
		curlURL     string
	}{
		{name: "GET with query", stdin: key + "\n",
			args:   []string{"--path", "/entities?x=1&y=%2F", "--url", "http://127.0.0.1:8080/"},
			method: "GET", target: "/entities?x=1&y=%2F", authority: "127.0.0.1:8080",
			curlURL: "'http://127.0.0.1:8080/entities?x=1&y=%2F'"},
		{name: "GET without query, default url", stdin: key,
			args:   []string{"--key-file", keyFile, "--path", "/"},
			method: "GET", target: "/", authority: "localhost", curlURL: "'http://localhost/'"},
		{name: "POST with body", stdin: key + "\r\n",
			args:   []string{"--method", "POST", "--path", "/entities", "--body", jsonBody, "--url", "https://API.example.com"},
			method: "POST", target: "/entities", authority: "API.example.com", body: []byte(jsonBody), contentType: "application/json",
			curlBody: `-H 'Content-Type: application/json' --data-binary '[{"name":"O'\''Brien"}]'`,
			curlURL:  "'https://API.example.com/entities'"},
		{name: "PUT with body file, content type and host", stdin: key,
			args: []string{"--method", "PUT", "--path", "/a/../b?q", "--body-file", bodyFile, "--content-type", "text/plain; charset=utf-8",
				"--url", "http://127.0.0.1:9000", "--host", "api.example.com"},
			method: "PUT", target: "/a/../b?q", authority: "api.example.com", body: fileBody, contentType: "text/plain; charset=utf-8",
			curlHost: "api.example.com",
			curlBody: "-H 'Content-Type: text/plain; charset=utf-8' --data-binary '@" + bodyFile + "' --path-as-is",
			curlURL:  "'http://127.0.0.1:9000/a/../b?q'"},
		{name: "empty body is no body", stdin: key,
			args:   []string{"--method", "POST", "--path", "/e", "--body", ""},
			method: "POST", target: "/e", authority: "localhost",
			curlBody: "-H 'Content-Type: application/json' --data-binary ''", curlURL: "'http://localhost/e'"},
	}
	policy := rfc9421.DefaultPolicy()
	const sid = "7"
	const ts = 1700000000
	nonces := map[string]bool{}
	for _, tc := range cases {
		args := append([]string{"sign", "--scheme", "rfc9421", "--session-id", sid, "--time", strconv.Itoa(ts)}, tc.args...)
		out, _, err := runCmd(t, tc.stdin, args...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if strings.Contains(out, key) {
			t.Errorf("%s: the output holds the api_key", tc.name)
		}
		h, order, curl := signedLines(t, out)
		wantOrder := []string{"Signature-Input", "Signature"}
		if tc.curlHost != "" {
			wantOrder = append(wantOrder, "Host")
		}
		if tc.body != nil {
			wantOrder = append(wantOrder, "Content-Digest", "Content-Type")
		}
		if strings.Join(order, ",") != strings.Join(wantOrder, ",") {
			t.Errorf("%s: printed fields %v, want %v", tc.name, order, wantOrder)
		}
		if got := h.Get("Host"); got != tc.curlHost {
			t.Errorf("%s: Host field %q, want %q", tc.name, got, tc.curlHost)
		}
		h.Del("Host") // the authority, not a header field, to the gateway
		if tc.body != nil {
			if got := h.Get("Content-Type"); got != tc.contentType {
				t.Errorf("%s: Content-Type %q, want %q", tc.name, got, tc.contentType)
			}
			if err := rfc9421.VerifyContentDigest(h.Values("Content-Digest"), tc.body); err != nil {
				t.Errorf("%s: Content-Digest does not match the body: %v", tc.name, err)
			}
			if !strings.HasPrefix(h.Get("Content-Digest"), "sha-256=:") {
				t.Errorf("%s: Content-Digest %q is not sha-256", tc.name, h.Get("Content-Digest"))
			}
		}

		req := rfc9421.Request{Method: tc.method, Scheme: "http", Authority: tc.authority, Target: tc.target, Header: h, HasBody: tc.body != nil}
		if strings.HasPrefix(tc.curlURL, "'https") {
			req.Scheme = "https"
		}
		keys := rfc9421.KeyResolverFunc(func(_ context.Context, id string) (rfc9421.Key, error) {
			if id != sid {
				return rfc9421.Key{}, &rfc9421.Error{Code: rfc9421.CodeUnknownKey}
			}
			return rfc9421.HMACKey([]byte(key)), nil
		})
		res, err := rfc9421.Verify(context.Background(), req, keys, policy, time.Unix(ts, 0))
		if err != nil {
			t.Errorf("%s: the printed signature does not verify: %v\n%s", tc.name, err, out)
			continue
		}
		if res.KeyID != sid || res.Created.Unix() != ts || len(res.Nonce) != 22 || !res.Expires.IsZero() {
			t.Errorf("%s: keyid %q created %v nonce %q expires %v", tc.name, res.KeyID, res.Created, res.Nonce, res.Expires)
		}
		if want := policy.Required(tc.body != nil); strings.Join(res.Components, " ") != strings.Join(want, " ") {
			t.Errorf("%s: covers %v, want %v", tc.name, res.Components, want)
		}
		if nonces[res.Nonce] {
			t.Errorf("%s: nonce %q printed twice", tc.name, res.Nonce)
		}
		nonces[res.Nonce] = true
		// The same fields on another method or host do not verify: the
		// signature covers what the curl line sends, not just the path.
		for _, other := range []rfc9421.Request{
			{Method: "DELETE", Scheme: req.Scheme, Authority: req.Authority, Target: req.Target, Header: h, HasBody: req.HasBody},
			{Method: req.Method, Scheme: req.Scheme, Authority: "evil.example", Target: req.Target, Header: h, HasBody: req.HasBody},
			{Method: req.Method, Scheme: req.Scheme, Authority: req.Authority, Target: req.Target + "&z", Header: h, HasBody: req.HasBody},
		} {
			if _, err := rfc9421.Verify(context.Background(), other, keys, policy, time.Unix(ts, 0)); err == nil {
				t.Errorf("%s: the signature also verifies for %s %s %s", tc.name, other.Method, other.Authority, other.Target)
			}
		}

		want := []string{"curl", "-X", tc.method, "-H", shellQuote("Signature-Input: " + h.Get("Signature-Input")),
			"-H", shellQuote("Signature: " + h.Get("Signature"))}
		if tc.curlHost != "" {
			want = append(want, "-H", shellQuote("Host: "+tc.curlHost))
		}
		if tc.body != nil {
			want = append(want, "-H", shellQuote("Content-Digest: "+h.Get("Content-Digest")))
		}
		if tc.curlBody != "" {
			want = append(want, tc.curlBody)
		}
		want = append(want, tc.curlURL)
		if curl != strings.Join(want, " ") {
			t.Errorf("%s: curl line\n%s\nwant\n%s", tc.name, curl, strings.Join(want, " "))
		}
	}

	// Without --time, created is now.
	out, _, err := runCmd(t, key, "sign", "--scheme", "rfc9421", "--session-id", sid, "--path", "/now")
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := signedLines(t, out)
	req := rfc9421.Request{Method: "GET", Scheme: "http", Authority: "localhost", Target: "/now", Header: h}
	keys := rfc9421.KeyResolverFunc(func(context.Context, string) (rfc9421.Key, error) { return rfc9421.HMACKey([]byte(key)), nil })
	if _, err := rfc9421.Verify(context.Background(), req, keys, policy, time.Now()); err != nil {
		t.Errorf("signature for now does not verify at present: %v", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown scheme", []string{"--scheme", "RFC9421"}, "--scheme"},
		{"sign-body", []string{"--scheme", "rfc9421", "--body", "x", "--sign-body"}, "--sign-body"},
		{"host with amatino", []string{"--host", "api.example.com"}, "--host"},
		{"url with path", []string{"--scheme", "rfc9421", "--url", "http://h/api"}, "--url"},
		{"url with query", []string{"--scheme", "rfc9421", "--url", "http://h/?a"}, "--url"},
		{"url without host", []string{"--scheme", "rfc9421", "--url", "http:///"}, "--url"},
		{"url not http", []string{"--scheme", "rfc9421", "--url", "ftp://h"}, "--url"},
		{"url relative", []string{"--scheme", "rfc9421", "--url", "127.0.0.1:8080"}, "--url"},
		{"url with user", []string{"--scheme", "rfc9421", "--url", "http://u:p@h"}, "--url"},
		{"host with path", []string{"--scheme", "rfc9421", "--host", "h/x"}, "--host"},
		{"host with space", []string{"--scheme", "rfc9421", "--host", "h x"}, "--host"},
		{"path not ASCII", []string{"--scheme", "rfc9421", "--path", "/caf\u00e9"}, "--path"},
		{"path with control", []string{"--scheme", "rfc9421", "--path", "/a\x00"}, "--path"},
		{"content type with CR LF", []string{"--scheme", "rfc9421", "--body", "x", "--content-type", "text/plain\r\nX-Evil: 1"}, "--content-type"},
		{"empty content type", []string{"--scheme", "rfc9421", "--body", "x", "--content-type", " "}, "--content-type"},
		{"lower-case method", []string{"--scheme", "rfc9421", "--method", "post"}, "--method"},
		{"key as flag", []string{"--scheme", "rfc9421", "--key", key}, "unknown flag"},
	} {
		out, _, err := runCmd(t, key, append([]string{"sign", "--session-id", sid}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		}
		if out != "" {
			t.Errorf("%s: refused, yet printed %q", tc.name, out)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error echoes the key", tc.name)
		}
	}
}
