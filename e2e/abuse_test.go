package e2e

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// loginAttempt sends one login and returns the status, the Retry-After
// header and the body. xff, when set, is sent as X-Forwarded-For.
func loginAttempt(t *testing.T, c *amClient, u *testUser, secret, xff string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+"/session", bytes.NewReader(loginJSON(u.Email, 0, secret)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, body, err := c.do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}

// SEC-07: the per-IP login throttle answers 429 with Retry-After once the
// burst is spent, and a spoofed X-Forwarded-For from a peer that is not a
// trusted proxy changes nothing: Caddy derives the client IP, not the
// client.
func TestLoginThrottleSEC07(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Limits: `login_limits {
			max_failures off
			ip_rate 0.01
			ip_burst 3
			global_rate off
		}`})
	c := newClient(t, g.URL(""))
	for i := range 3 {
		if st, _, body := loginAttempt(t, c, alice, alice.Secret, "198.51.100."+strconv.Itoa(i+1)); st != http.StatusOK {
			t.Fatalf("login %d within the burst: %d %s", i, st, body)
		}
	}
	for _, xff := range []string{"", "203.0.113.9", "203.0.113.10, 203.0.113.11"} {
		st, ra, body := loginAttempt(t, c, alice, alice.Secret, xff)
		if st != http.StatusTooManyRequests || ra == "" {
			t.Fatalf("login over the burst (X-Forwarded-For %q): %d Retry-After %q %s", xff, st, ra, body)
		}
		if !strings.Contains(string(body), `"throttled"`) {
			t.Errorf("429 body %s lacks the throttled code", body)
		}
	}
	if m := g.Metrics(t); !strings.Contains(m, `caddy_sessiongate_logins_total{dialect="amatino",result="throttled"} 3`) {
		t.Errorf("throttled logins not counted:\n%s", grepLines(m, "logins_total"))
	}
	if up.Hits() != 0 {
		t.Errorf("upstream called %d times", up.Hits())
	}
}

// SEC-07 with trusted_proxies: when the peer is a trusted proxy, Caddy takes
// the client IP from X-Forwarded-For, so each client has its own bucket.
func TestLoginThrottleTrustedProxy(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{
		Limits: `login_limits {
			max_failures off
			ip_rate 0.01
			ip_burst 1
			global_rate off
		}`,
		Caddyfile: strings.Replace(defaultCaddyfile, "\tpersist_config off\n",
			"\tpersist_config off\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n", 1),
	})
	c := newClient(t, g.URL(""))
	for i := range 3 {
		xff := "198.51.100." + strconv.Itoa(i+1)
		if st, _, body := loginAttempt(t, c, alice, alice.Secret, xff); st != http.StatusOK {
			t.Fatalf("first login of client %s: %d %s", xff, st, body)
		}
	}
	if st, _, _ := loginAttempt(t, c, alice, alice.Secret, "198.51.100.1"); st != http.StatusTooManyRequests {
		t.Fatalf("second login of client 198.51.100.1: %d, want 429", st)
	}
}

// SEC-06 + SEC-03: after max_failures wrong secrets the account is locked
// for every source IP; the right secret then gets byte for byte the answer
// of a wrong one; another account is unaffected.
func TestAccountLockoutSEC06(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Limits: `login_limits {
			max_failures 3
			ip_rate off
			global_rate off
		}`})
	c := newClient(t, g.URL(""))
	var wrong []byte
	for i := range 3 {
		st, _, body := loginAttempt(t, c, alice, "not-the-secret", "")
		if st != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %d %s", i, st, body)
		}
		wrong = body
	}
	st, _, body := loginAttempt(t, c, alice, alice.Secret, "")
	if st != http.StatusUnauthorized || !bytes.Equal(body, wrong) {
		t.Fatalf("locked account with the right secret: %d %s, want the wrong-secret answer %s", st, body, wrong)
	}
	if st, _, body := loginAttempt(t, c, bob, bob.Secret, ""); st != http.StatusOK {
		t.Fatalf("another account: %d %s", st, body)
	}
	m := g.Metrics(t)
	if !strings.Contains(m, `caddy_sessiongate_logins_total{dialect="amatino",result="locked"} 1`) {
		t.Errorf("locked login not counted:\n%s", grepLines(m, "logins_total"))
	}
	if n := strings.Count(g.Logs(), `"lockout"`); n != 1 {
		t.Errorf("%d lockout audit lines, want 1", n)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
