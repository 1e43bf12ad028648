package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// identityHeaders collects every header of h that a component could read as
// a gateway identity header: any case, `_` for `-`.
func identityHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, vs := range h {
		n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		if strings.HasPrefix(n, "x-auth-") {
			out[n] = append(out[n], vs...)
		}
	}
	return out
}

// checkForwarded asserts what the upstream must see for a request of u:
// exactly the identity headers the gateway sets, once each, and no
// credential (SEC-40, SEC-41, SEC-43).
func checkForwarded(t *testing.T, rec recorded, u *testUser) {
	t.Helper()
	want := map[string][]string{
		"x-auth-user-id":    {strconv.FormatInt(u.ID, 10)},
		"x-auth-user-email": {u.Email},
		"x-auth-username":   {u.Name},
	}
	if got := identityHeaders(rec.Header); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream identity headers %v, want %v", got, want)
	}
	if got := identityHeaders(rec.Trailer); len(got) != 0 {
		t.Errorf("upstream identity trailers %v, want none", got)
	}
	for _, h := range []string{"X-Signature", "X-Session-Id", "X-Timestamp", "Authorization"} {
		if v, ok := rec.Header[h]; ok {
			t.Errorf("upstream received credential header %s: %q (SEC-43)", h, v)
		}
	}
}

// jsonBodyN is a JSON body of exactly n bytes.
func jsonBodyN(n int) []byte {
	head, tail := `{"name":"Acme","pad":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// TestHappyPath: login, signed GET and POST forwarded with the identity and
// without the credentials (SEC-43), the body byte-identical, logout, and the
// ended session refused without reaching the upstream (SEC-10). Also login
// by user_id.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))

	s := c.login(t, alice)
	if len(s.APIKey) != 44 {
		t.Errorf("api_key %d characters, want 44 (WIRE.md)", len(s.APIKey))
	}

	resp, body := mustDo(t, c, c.signed(http.MethodGet, "/entities?x=1", nil, s, signCurrent, 0))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed GET: %d %s", resp.StatusCode, body)
	}
	rec := up.Last(t)
	if rec.Method != http.MethodGet || rec.RequestURI != "/entities?x=1" {
		t.Errorf("upstream got %s %s, want GET /entities?x=1", rec.Method, rec.RequestURI)
	}
	checkForwarded(t, rec, alice)

	payload := jsonBodyN(1024)
	resp, body = mustDo(t, c, c.signed(http.MethodPost, "/entities", payload, s, signCurrent, 0))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed POST: %d %s", resp.StatusCode, body)
	}
	rec = up.Last(t)
	if rec.Method != http.MethodPost || rec.SHA256 != sha256.Sum256(payload) {
		t.Errorf("upstream got %s with %d body bytes (sha %x), want POST with the %d bytes sent",
			rec.Method, len(rec.Body), rec.SHA256, len(payload))
	}
	checkForwarded(t, rec, alice)

	resp, body, err := c.logout(s)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	var lo struct {
		SessionID *int64 `json:"session_id"`
	}
	if err := json.Unmarshal(body, &lo); err != nil || lo.SessionID == nil || *lo.SessionID != s.SessionID {
		t.Errorf("logout answer %s, want {\"session_id\": %d}", body, s.SessionID)
	}

	hits := up.Hits()
	resp, body = mustDo(t, c, c.signed(http.MethodGet, "/entities?x=1", nil, s, signCurrent, 0))
	expectRefusal(t, "after logout (SEC-10)", resp, body, http.StatusUnauthorized, "unknown_session")
	if up.Hits() != hits {
		t.Errorf("upstream hit after logout: %d → %d", hits, up.Hits())
	}

	// Login by user_id.
	sb, err := c.tryLogin("", bob.ID, bob.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if sb.UserID != bob.ID {
		t.Errorf("login by user_id answered user_id %d, want %d", sb.UserID, bob.ID)
	}
	resp, body, err = c.get(sb, "/bob")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("signed GET as bob: %v %v %s", err, resp, body)
	}
	checkForwarded(t, up.Last(t), bob)
}

// TestIdentitySpoofing: identity headers from the client never reach the
// upstream in any spelling (SEC-40, SEC-41), cannot be used to remove the
// gateway's (SEC-42), and do not authenticate anyone.
func TestIdentitySpoofing(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)

	creds := func(path string, body []byte) string {
		req := c.signed(http.MethodGet, path, body, s, signCurrent, 0)
		return "X-Session-ID: " + req.Header.Get("X-Session-ID") + "\r\nX-Signature: " + req.Header.Get("X-Signature") + "\r\n"
	}
	host := "Host: " + g.Addr() + "\r\n"

	t.Run("SEC-40/SEC-41 spellings and duplicates", func(t *testing.T) {
		before := up.Hits()
		raw := "GET /entities HTTP/1.1\r\n" + host +
			"X-Auth-User-Id: 1\r\n" +
			"x-auth-user-id: 2\r\n" +
			"X_Auth_User_Id: 3\r\n" +
			"X-AUTH-USER-EMAIL: admin@example.test\r\n" +
			"x_auth_username: root\r\n" +
			"X-Auth-Anything: y\r\n" +
			creds("/entities", nil) +
			"Connection: close\r\n\r\n"
		resp, body := rawDo(t, g.Addr(), raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("spoofed + valid signature: %d %s", resp.StatusCode, body)
		}
		if up.Hits() != before+1 {
			t.Fatalf("upstream hits %d → %d, want +1", before, up.Hits())
		}
		checkForwarded(t, up.Last(t), alice)
	})

	t.Run("SEC-41 trailer announced", func(t *testing.T) {
		before := up.Hits()
		raw := "POST /entities HTTP/1.1\r\n" + host + creds("/entities", nil) +
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X-Auth-User-Id\r\n" +
			"Connection: close\r\n\r\n" +
			"2\r\n{}\r\n0\r\nX-Auth-User-Id: 1\r\n\r\n"
		resp, body := rawDo(t, g.Addr(), raw)
		if resp.StatusCode == http.StatusOK {
			checkForwarded(t, up.Last(t), alice)
		} else {
			expectRefusal(t, "Trailer: X-Auth-User-Id", resp, body, http.StatusBadRequest, "invalid_request")
			if up.Hits() != before {
				t.Errorf("upstream called for a refused request")
			}
		}
	})

	t.Run("SEC-41 trailer not announced", func(t *testing.T) {
		before := up.Hits()
		raw := "POST /entities HTTP/1.1\r\n" + host + creds("/entities", nil) +
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n" +
			"Connection: close\r\n\r\n" +
			"2\r\n{}\r\n0\r\nX-Auth-User-Id: 1\r\nX_Auth_User_Email: admin@example.test\r\n\r\n"
		resp, body := rawDo(t, g.Addr(), raw)
		if resp.StatusCode == http.StatusOK {
			if up.Hits() != before+1 {
				t.Fatalf("200 but upstream hits %d → %d", before, up.Hits())
			}
			checkForwarded(t, up.Last(t), alice)
		} else if resp.StatusCode != http.StatusBadRequest || up.Hits() != before {
			t.Errorf("undeclared identity trailer: %d %s, upstream hits %d → %d", resp.StatusCode, body, before, up.Hits())
		}
	})

	for _, conn := range []string{"keep-alive, X-Auth-User-Id", "X-Auth-User-Email", "keep-alive,x_auth_username"} {
		t.Run("SEC-42 Connection: "+conn, func(t *testing.T) {
			before := up.Hits()
			raw := "GET /entities HTTP/1.1\r\n" + host + creds("/entities", nil) + "Connection: " + conn + "\r\n\r\n"
			resp, body := rawDo(t, g.Addr(), raw)
			expectRefusal(t, "Connection naming an identity header", resp, body, http.StatusBadRequest, "invalid_request")
			if up.Hits() != before {
				t.Errorf("upstream called: hits %d → %d", before, up.Hits())
			}
		})
	}

	t.Run("SEC-40 unauthenticated", func(t *testing.T) {
		before := up.Hits()
		raw := "GET /entities HTTP/1.1\r\n" + host + "X-Auth-User-Id: 42\r\nX-Auth-User-Email: " + alice.Email +
			"\r\nConnection: close\r\n\r\n"
		resp, body := rawDo(t, g.Addr(), raw)
		expectRefusal(t, "identity headers without credentials", resp, body, http.StatusUnauthorized, "missing_credentials")
		if up.Hits() != before {
			t.Errorf("upstream called: hits %d → %d", before, up.Hits())
		}
	})
}

// TestRefusals: every refusal over the wire, with its status, JSON code and
// WWW-Authenticate, and never an upstream hit.
func TestRefusals(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)
	host := "Host: " + g.Addr() + "\r\n"

	check := func(t *testing.T, what string, req *http.Request, status int, code string) {
		t.Helper()
		resp, body := mustDo(t, c, req)
		expectRefusal(t, what, resp, body, status, code)
	}

	t.Run("no credentials", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, g.URL("/entities"), nil)
		check(t, "no credentials", req, http.StatusUnauthorized, "missing_credentials")
	})
	t.Run("SEC-27 empty X-Session-ID", func(t *testing.T) {
		req := c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0)
		req.Header.Set("X-Session-ID", "")
		check(t, "empty X-Session-ID", req, http.StatusUnauthorized, "missing_credentials")
	})
	t.Run("SEC-27 no X-Session-ID", func(t *testing.T) {
		req := c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0)
		req.Header.Del("X-Session-ID")
		check(t, "no X-Session-ID", req, http.StatusUnauthorized, "missing_credentials")
	})
	t.Run("bad signature", func(t *testing.T) {
		wrong := s
		wrong.APIKey = strings.Repeat("A", 44)
		check(t, "signed with another key", c.signed(http.MethodGet, "/entities", nil, wrong, signCurrent, 0),
			http.StatusUnauthorized, "bad_signature")
		req := c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0)
		req.URL.Path = "/entities2"
		check(t, "signature for /entities sent to /entities2", req, http.StatusUnauthorized, "bad_signature")
	})
	t.Run("unknown session", func(t *testing.T) {
		other := s
		other.SessionID = s.SessionID ^ 1
		check(t, "unknown session id", c.signed(http.MethodGet, "/entities", nil, other, signCurrent, 0),
			http.StatusUnauthorized, "unknown_session")
	})
	t.Run("SEC-36 malformed session id", func(t *testing.T) {
		sig := c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0).Header.Get("X-Signature")
		for name, id := range map[string]string{
			"abc":          "abc",
			"10 KB":        strings.Repeat("7", 10<<10),
			"garbage":      "../../etc/passwd",
			"leading zero": "0" + strconv.FormatInt(s.SessionID, 10),
			"negative":     "-" + strconv.FormatInt(s.SessionID, 10),
			"non-ASCII":    "١٢٣",
			"overflow":     "99999999999999999999",
		} {
			raw := "GET /entities HTTP/1.1\r\n" + host + "X-Session-ID: " + id + "\r\nX-Signature: " + sig +
				"\r\nConnection: close\r\n\r\n"
			resp, body := rawDo(t, g.Addr(), raw)
			expectRefusal(t, "session id "+name, resp, body, http.StatusUnauthorized, "malformed_credentials")
		}
	})
	t.Run("SEC-27 two X-Signature", func(t *testing.T) {
		req := c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0)
		sig := req.Header.Get("X-Signature")
		req.Header.Add("X-Signature", sig)
		check(t, "two X-Signature headers (both valid)", req, http.StatusBadRequest, "invalid_request")

		req = c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0)
		req.Header.Set("X-Signature", sig+", "+sig)
		check(t, "X-Signature: sig, sig", req, http.StatusBadRequest, "invalid_request")

		req = c.signed(http.MethodGet, "/entities", nil, s, signCurrent, 0)
		req.Header.Add("X-Session-ID", strconv.FormatInt(s.SessionID, 10))
		check(t, "two X-Session-ID headers", req, http.StatusBadRequest, "invalid_request")
	})
	t.Run("SEC-03 login failures identical", func(t *testing.T) {
		cases := map[string][]byte{
			"wrong secret by email":   loginJSON(alice.Email, 0, "wrong-"+alice.Secret),
			"unknown email":           loginJSON("nobody@example.test", 0, alice.Secret),
			"unknown user_id":         loginJSON("", 999999, alice.Secret),
			"wrong secret by user_id": loginJSON("", alice.ID, "wrong-"+alice.Secret),
			"other user's secret":     loginJSON(alice.Email, 0, bob.Secret),
		}
		var refName string
		var refStatus int
		var refBody []byte
		var refHdr http.Header
		for name, b := range cases {
			resp, body, err := c.post("/session", "application/json", b)
			if err != nil {
				t.Fatal(err)
			}
			hdr := resp.Header.Clone()
			hdr.Del("Date")
			if refName == "" {
				refName, refStatus, refBody, refHdr = name, resp.StatusCode, body, hdr
				expectRefusal(t, name, resp, body, http.StatusUnauthorized, "bad_credentials")
				continue
			}
			if resp.StatusCode != refStatus || !bytes.Equal(body, refBody) || !reflect.DeepEqual(hdr, refHdr) {
				t.Errorf("%s answered %d %q %v; %s answered %d %q %v", name, resp.StatusCode, body, hdr,
					refName, refStatus, refBody, refHdr)
			}
		}
	})
	t.Run("login text/plain", func(t *testing.T) {
		resp, body, err := c.post("/session", "text/plain", loginJSON(alice.Email, 0, alice.Secret))
		if err != nil {
			t.Fatal(err)
		}
		expectRefusal(t, "text/plain login", resp, body, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
	t.Run("SEC-34 login body over 64 KiB", func(t *testing.T) {
		big := []byte(`{"secret":"` + strings.Repeat("s", 64<<10) + `","account_email":"a@b.c","user_id":null}`)
		resp, body, err := c.post("/session", "application/json", big)
		if err != nil {
			t.Fatal(err)
		}
		expectRefusal(t, "login of 64 KiB + "+strconv.Itoa(len(big)-64<<10)+" bytes", resp, body,
			http.StatusRequestEntityTooLarge, "body_too_large")
		exact := []byte(`{"secret":"","account_email":"a@b.c","user_id":null}`)
		exact = append(exact[:11], append(bytes.Repeat([]byte("s"), 64<<10-len(exact)), exact[11:]...)...)
		if len(exact) != 64<<10 {
			t.Fatalf("test bug: body of %d bytes", len(exact))
		}
		resp, body, err = c.post("/session", "application/json", exact)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusRequestEntityTooLarge {
			t.Errorf("login of exactly 64 KiB: 413 %s", body)
		}
	})
	t.Run("login with email and user_id", func(t *testing.T) {
		resp, body, err := c.post("/session", "application/json", loginJSON(alice.Email, alice.ID, alice.Secret))
		if err != nil {
			t.Fatal(err)
		}
		expectRefusal(t, "both email and user_id", resp, body, http.StatusBadRequest, "invalid_request")
	})

	if n := up.Hits(); n != 0 {
		t.Errorf("upstream hit %d times by refused requests", n)
	}
}

const maxBodySite = `
http://127.0.0.1:{{.Port2}} {
	bind 127.0.0.1
	sessiongate {
		amatino {
			max_body 1KiB
		}
	}
	reverse_proxy {{.Upstream}}
}
`

// TestLegacyBodySignatures: old clients that sign the raw body (or the
// compact re-serialisation of a JSON body) are accepted and the body reaches
// the upstream unchanged; a body that must be read to check such a signature
// is bounded by max_body (SEC-34).
func TestLegacyBodySignatures(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{ExtraSites: maxBodySite})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)

	t.Run("raw body", func(t *testing.T) {
		payload := jsonBodyN(3000)
		resp, body := mustDo(t, c, c.signed(http.MethodPost, "/entities?y=2", payload, s, signRawBody, 0))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("raw-body signature: %d %s", resp.StatusCode, body)
		}
		rec := up.Last(t)
		if rec.SHA256 != sha256.Sum256(payload) || rec.RequestURI != "/entities?y=2" {
			t.Errorf("upstream got %s with %d bytes, want /entities?y=2 with the %d bytes sent", rec.RequestURI,
				len(rec.Body), len(payload))
		}
		checkForwarded(t, rec, alice)
	})

	t.Run("compact JSON", func(t *testing.T) {
		// Old Python clients sign a compact re-serialisation of the JSON
		// they send (WIRE.md).
		sent := []byte(`[{"name": "Acme", "description": null}]`)
		req := c.signed(http.MethodPost, "/entities", sent, s, signCurrent, 0)
		req.Header.Set("X-Signature", amSign(s.APIKey, time.Now().Unix(), "/entities",
			[]byte(`[{"name":"Acme","description":null}]`)))
		resp, body := mustDo(t, c, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("compact-JSON signature: %d %s", resp.StatusCode, body)
		}
		if rec := up.Last(t); !bytes.Equal(rec.Body, sent) {
			t.Errorf("upstream body %q, want %q", rec.Body, sent)
		}
	})

	c2 := newClient(t, g.URL2(""))
	t.Run("SEC-34 over max_body", func(t *testing.T) {
		before := up.Hits()
		payload := jsonBodyN(2048)
		resp, body := mustDo(t, c2, c2.signed(http.MethodPost, "/entities", payload, s, signRawBody, 0))
		expectRefusal(t, "legacy-signed 2 KiB body over max_body 1KiB", resp, body,
			http.StatusRequestEntityTooLarge, "body_too_large")
		if up.Hits() != before {
			t.Errorf("upstream called for a body over max_body")
		}
	})
	t.Run("SEC-34 exactly max_body", func(t *testing.T) {
		payload := jsonBodyN(1024)
		resp, body := mustDo(t, c2, c2.signed(http.MethodPost, "/entities", payload, s, signRawBody, 0))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("legacy-signed body of exactly max_body: %d %s", resp.StatusCode, body)
		}
		if rec := up.Last(t); rec.SHA256 != sha256.Sum256(payload) {
			t.Errorf("upstream body differs from the %d bytes sent", len(payload))
		}
	})
	t.Run("current variant ignores max_body", func(t *testing.T) {
		// The body is not read when the current variant matches, so no
		// limit applies to it.
		payload := jsonBodyN(4096)
		resp, body := mustDo(t, c2, c2.signed(http.MethodPost, "/entities", payload, s, signCurrent, 0))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("current-variant 4 KiB body: %d %s", resp.StatusCode, body)
		}
		if rec := up.Last(t); rec.SHA256 != sha256.Sum256(payload) {
			t.Errorf("upstream body differs from the %d bytes sent", len(payload))
		}
	})
}

// TestReplay: with `replay reject` a repeated signature is refused
// (SEC-23); by default it is counted and let through (WIRE.md).
func TestReplay(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{ExtraSites: `
http://127.0.0.1:{{.Port2}} {
	bind 127.0.0.1
	sessiongate {
		amatino {
			replay reject
		}
	}
	reverse_proxy {{.Upstream}}
}
`})
	cObs, cRej := newClient(t, g.URL("")), newClient(t, g.URL2(""))
	s := cObs.login(t, alice)

	send := func(c *amClient, req *http.Request) (*http.Response, []byte) {
		again := req.Clone(req.Context())
		resp, body := mustDo(t, c, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first use of a signature: %d %s", resp.StatusCode, body)
		}
		return mustDo(t, c, again)
	}

	t.Run("SEC-23 reject", func(t *testing.T) {
		before := up.Hits()
		resp, body := send(cRej, cRej.signed(http.MethodGet, "/replayed", nil, s, signCurrent, 0))
		expectRefusal(t, "second use of a signature under replay reject", resp, body, http.StatusUnauthorized, "replay")
		if up.Hits() != before+1 {
			t.Errorf("upstream hits %d → %d, want +1", before, up.Hits())
		}
		m := g.Metrics(t)
		if v, _ := metricValue(m, "caddy_sessiongate_replays_total", `dialect="amatino",action="rejected"`); v < 1 {
			t.Errorf("replays_total{rejected} = %v, want ≥ 1", v)
		}
	})
	t.Run("observe (default)", func(t *testing.T) {
		resp, body := send(cObs, cObs.signed(http.MethodGet, "/observed", nil, s, signCurrent, 0))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second use of a signature under observe: %d %s", resp.StatusCode, body)
		}
		m := g.Metrics(t)
		if v, ok := metricValue(m, "caddy_sessiongate_replays_total", `dialect="amatino",action="observed"`); !ok || v < 1 {
			t.Errorf("replays_total{observed} = %v (found %v), want ≥ 1", v, ok)
		}
	})
}
