package e2e

// `caddy sessiongate sign --scheme rfc9421` against the built binary: the
// request its curl line describes, sent to a gateway with the native scheme
// enabled, reaches the upstream.

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// signShellWords splits a POSIX shell command line written the way the sign
// command writes it: words separated by spaces, each either bare or in
// single quotes (a quote inside written as quote, backslash-quote, quote).
func signShellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			w.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// signCurlRequest builds the request a curl line printed by the sign
// command sends: -X, -H, --data-binary (text or @file) and the URL; any
// other option fails the test, so the line holds nothing this does not
// replay.
func signCurlRequest(t *testing.T, line string) *http.Request {
	t.Helper()
	words := signShellWords(t, line)
	if len(words) < 2 || words[0] != "curl" {
		t.Fatalf("not a curl line: %q", line)
	}
	method, target := "GET", ""
	header := http.Header{}
	var body []byte
	for i := 1; i < len(words); i++ {
		arg := words[i]
		next := func() string {
			if i+1 >= len(words) {
				t.Fatalf("curl line: %s without a value", arg)
			}
			i++
			return words[i]
		}
		switch arg {
		case "-X":
			method = next()
		case "-H":
			k, v, ok := strings.Cut(next(), ": ")
			if !ok {
				t.Fatalf("curl line: header %q", words[i])
			}
			header.Add(k, v)
		case "--data-binary":
			d := next()
			if f, ok := strings.CutPrefix(d, "@"); ok {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				body = b
			} else {
				body = []byte(d)
			}
		default:
			if strings.HasPrefix(arg, "-") || target != "" {
				t.Fatalf("curl line: unexpected argument %q", arg)
			}
			target = arg
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatalf("curl line: %v", err)
	}
	req.Header = header
	return req
}

// TestSignCommandRFC9421: the Signature-Input and Signature (and, with a
// body, Content-Digest and Content-Type) that `caddy sessiongate sign
// --scheme rfc9421` prints for a logged-in session are accepted by a
// gateway with the native scheme, for a GET with a query and for POSTs with
// a body given inline and from a file; the upstream receives the request
// with the session's identity and without the signature fields (SEC-43).
// The printed signature is good for one request only (SEC-23).
func TestSignCommandRFC9421(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Native: nativeDefaults})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)
	sid := strconv.FormatInt(s.SessionID, 10)
	bodyFile := filepath.Join(t.TempDir(), "body.bin")
	fileBody := []byte("raw bytes\r\n\x00\xff it's")
	if err := os.WriteFile(bodyFile, fileBody, 0o600); err != nil {
		t.Fatal(err)
	}

	// sign runs the command and returns the request its curl line sends,
	// after checking that the printed fields are the ones it carries.
	sign := func(method, target string, args ...string) *http.Request {
		t.Helper()
		full := append([]string{"sign", "--scheme", "rfc9421", "--session-id", sid, "--method", method, "--path", target, "--url", g.URL("")}, args...)
		out, errOut, err := g.sessiongate(t, s.APIKey+"\n", full...)
		if err != nil {
			t.Fatalf("sign %v: %v\n%s%s", args, err, out, errOut)
		}
		if strings.Contains(out+errOut, s.APIKey) {
			t.Errorf("sign printed the api_key")
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		req := signCurlRequest(t, lines[len(lines)-1])
		if req.URL.String() != g.URL(target) {
			t.Errorf("curl line targets %s, want %s", req.URL, g.URL(target))
		}
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "Signature-Input: sig1=(") || !strings.HasPrefix(lines[1], "Signature: sig1=:") {
			t.Fatalf("sign printed:\n%s", out)
		}
		for _, l := range lines[:len(lines)-1] {
			k, v, _ := strings.Cut(l, ": ")
			if got := req.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("printed %s: %q, but the curl line sends %q", k, v, got)
			}
		}
		return req
	}

	get := sign("GET", "/entities?x=1&y=%2F")
	resp, b := mustDo(t, c, get)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET signed by the CLI: %d %s", resp.StatusCode, b)
	}
	rec := up.Last(t)
	if rec.Method != "GET" || rec.RequestURI != "/entities?x=1&y=%2F" {
		t.Errorf("upstream saw %s %s", rec.Method, rec.RequestURI)
	}
	checkForwarded(t, rec, alice)
	checkNoNativeCredentials(t, rec)

	// The same printed fields again: the nonce was used (SEC-23).
	again, _ := http.NewRequest(get.Method, get.URL.String(), nil)
	again.Header = get.Header.Clone()
	resp, b = mustDo(t, c, again)
	expectRefusal(t, "the printed GET sent twice", resp, b, http.StatusUnauthorized, "replay")

	for _, tc := range []struct {
		name string
		args []string
		body []byte
		ct   string
	}{
		{"inline JSON", []string{"--body", `{"name":"O'Brien"}`}, []byte(`{"name":"O'Brien"}`), "application/json"},
		{"file", []string{"--body-file", bodyFile, "--content-type", "application/octet-stream"}, fileBody, "application/octet-stream"},
	} {
		req := sign("POST", "/entities", tc.args...)
		if req.Header.Get("Content-Digest") == "" || req.Header.Get("Content-Type") != tc.ct {
			t.Errorf("%s: curl line sends Content-Digest %q, Content-Type %q", tc.name, req.Header.Get("Content-Digest"), req.Header.Get("Content-Type"))
		}
		resp, b := mustDo(t, c, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: POST signed by the CLI: %d %s", tc.name, resp.StatusCode, b)
		}
		rec := up.Last(t)
		if rec.Method != "POST" || !bytes.Equal(rec.Body, tc.body) || rec.Header.Get("Content-Type") != tc.ct {
			t.Errorf("%s: upstream saw %s, body %q, Content-Type %q", tc.name, rec.Method, rec.Body, rec.Header.Get("Content-Type"))
		}
		checkForwarded(t, rec, alice)
		checkNoNativeCredentials(t, rec)
	}

	// A printed POST with another body: Content-Digest no longer matches.
	req := sign("POST", "/entities", "--body", `{"amount":1}`)
	forged, _ := http.NewRequest("POST", req.URL.String(), strings.NewReader(`{"amount":9}`))
	forged.Header = req.Header.Clone()
	resp, b = mustDo(t, c, forged)
	expectRefusal(t, "printed POST with another body", resp, b, http.StatusUnauthorized, "bad_signature")
	if up.Hits() != 3 {
		t.Errorf("upstream hits %d, want 3", up.Hits())
	}
}
