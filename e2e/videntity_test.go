package e2e

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

type videntityAnswer struct {
	XMLName     xml.Name `xml:"response"`
	APIMethod   string   `xml:"api_method,attr"`
	Status      string   `xml:"status"`
	TxNumber    int64    `xml:"api_tx_number"`
	SessionKey  string   `xml:"response_name_value>session_key"`
	ErrorNumber int      `xml:"error_number"`
	ErrorName   string   `xml:"error_name"`
	Timestamp   string   `xml:"timestamp"`
}

func videntityPost(t *testing.T, g *gateway, path string, form url.Values) (int, videntityAnswer, string) {
	t.Helper()
	resp, err := http.Post(g.URL(path), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	checkRefusal(g.URL(path), resp.StatusCode, body) // SEC-44
	var a videntityAnswer
	if err := xml.Unmarshal(body, &a); err != nil {
		t.Fatalf("POST %s: answer is not the XML of WIRE.md: %v\n%s", path, err, body)
	}
	registerSecret("videntity session key", a.SessionKey)
	if !strings.HasPrefix(string(body), `<?xml version="1.0" encoding="utf-8"?>`) {
		t.Fatalf("POST %s: no XML declaration: %s", path, body)
	}
	return resp.StatusCode, a, string(body)
}

// TestVidentityFlow drives the videntity dialect against the built binary,
// with a client written from WIRE.md alone: form login, proxied requests
// with the key in a header and in a form body, ping, logout, refusals.
func TestVidentityFlow(t *testing.T) {
	secret := "canary-carol-" + randHex(8)
	phc := enginetest.Hash(t, secret)
	carol := fmt.Sprintf("\t\tuser carol {\n\t\t\tid 77\n\t\t\temail carol@example.test\n\t\t\taccount_number 100000000000077\n\t\t\tpassword_hash %q\n\t\t}\n", phc)
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Videntity: true, Global: carol})

	login := url.Values{"username": {"carol"}, "password": {secret}, "account_number": {"100000000000077"}}
	status, a, _ := videntityPost(t, g, "/session/login", login)
	if status != http.StatusOK || a.Status != "SUCCESS" || len(a.SessionKey) < 32 {
		t.Fatalf("login: %d %+v", status, a)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(a.Timestamp) {
		t.Fatalf("timestamp %q not YYYY-MM-DD HH:MM:SS", a.Timestamp)
	}
	key := a.SessionKey

	// The alias answers too, with its own api_method.
	status, a2, _ := videntityPost(t, g, "/sessions/login", login)
	if status != http.StatusOK || a2.APIMethod != "/sessions/login" || a2.TxNumber <= a.TxNumber {
		t.Fatalf("alias login: %d %+v (previous tx %d)", status, a2, a.TxNumber)
	}

	// Key in the header: identity forwarded, key removed (SEC-43).
	req, _ := http.NewRequest(http.MethodGet, g.URL("/reports?month=11"), nil)
	req.Header.Set("X-Session-Key", key)
	req.Header.Set("X-Auth-User-Id", "1") // spoofed: must be replaced (SEC-40)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("header key: status %d", resp.StatusCode)
	}
	got := up.Last(t)
	if v := got.Header.Values("X-Auth-User-Id"); len(v) != 1 || v[0] != "77" {
		t.Fatalf("upstream X-Auth-User-Id = %v, want [77]", v)
	}
	if got.Header.Get("X-Session-Key") != "" {
		t.Fatal("X-Session-Key forwarded upstream")
	}

	// Key in a form body: forwarded body has exactly that pair removed.
	form := "a=1&session_key=" + key + "&b=%20x"
	resp, err = http.Post(g.URL("/orders"), "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("form key: status %d", resp.StatusCode)
	}
	got = up.Last(t)
	if string(got.Body) != "a=1&b=%20x" || got.Header.Get("Content-Length") != "10" {
		t.Fatalf("upstream body %q (Content-Length %q), want %q", got.Body, got.Header.Get("Content-Length"), "a=1&b=%20x")
	}

	// Both sources at once: 400, upstream not called.
	hits := up.Hits()
	req, _ = http.NewRequest(http.MethodPost, g.URL("/orders"), strings.NewReader("session_key="+key))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Session-Key", key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || up.Hits() != hits {
		t.Fatalf("two key sources: status %d, upstream hits +%d", resp.StatusCode, up.Hits()-hits)
	}

	// Credentials of two schemes at once: 400, upstream not called.
	req, _ = http.NewRequest(http.MethodGet, g.URL("/reports"), nil)
	req.Header.Set("X-Session-Key", key)
	req.Header.Set("X-Session-ID", "12345")
	req.Header.Set("X-Signature", strings.Repeat("A", 86)+"==")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || up.Hits() != hits {
		t.Fatalf("two schemes: status %d, upstream hits +%d", resp.StatusCode, up.Hits()-hits)
	}

	// Ping, then logout; afterwards the key is refused everywhere (SEC-10).
	if status, a, _ := videntityPost(t, g, "/session/ping", url.Values{"session_key": {key}}); status != http.StatusOK || a.Status != "SUCCESS" {
		t.Fatalf("ping: %d %+v", status, a)
	}
	if status, a, _ := videntityPost(t, g, "/session/logout", url.Values{"session_key": {key}}); status != http.StatusOK || a.Status != "SUCCESS" {
		t.Fatalf("logout: %d %+v", status, a)
	}
	if status, a, _ := videntityPost(t, g, "/session/ping", url.Values{"session_key": {key}}); status != http.StatusNotFound || a.ErrorNumber != 2 || a.ErrorName != "SESSION_DOES_NOT_EXIST" {
		t.Fatalf("ping after logout: %d %+v", status, a)
	}
	hits = up.Hits()
	req, _ = http.NewRequest(http.MethodGet, g.URL("/reports"), nil)
	req.Header.Set("X-Session-Key", key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || up.Hits() != hits {
		t.Fatalf("after logout: status %d, upstream hits +%d", resp.StatusCode, up.Hits()-hits)
	}

	// SEC-03: wrong password, wrong account number, unknown user: the same
	// answer apart from api_tx_number and timestamp.
	mask := regexp.MustCompile(`<api_tx_number>\d+</api_tx_number>|<timestamp>[^<]*</timestamp>`)
	var first string
	for i, f := range []url.Values{
		{"username": {"carol"}, "password": {"wrong"}, "account_number": {"100000000000077"}},
		{"username": {"carol"}, "password": {secret}, "account_number": {"100000000000078"}},
		{"username": {"nobody"}, "password": {secret}, "account_number": {"100000000000077"}},
	} {
		status, a, body := videntityPost(t, g, "/session/login", f)
		if status != http.StatusUnauthorized || a.ErrorNumber != 1 || a.ErrorName != "AUTHENTICATION_ERROR" {
			t.Fatalf("failure %d: %d %+v", i, status, a)
		}
		if strings.Contains(body, secret) {
			t.Fatal("a password was echoed in an answer")
		}
		if m := mask.ReplaceAllString(body, ""); i == 0 {
			first = m
		} else if m != first {
			t.Fatalf("failure answers differ (SEC-03):\n%s\n%s", first, m)
		}
	}
	if strings.Contains(g.Logs(), secret) || strings.Contains(g.Logs(), key) {
		t.Fatal("a password or session key reached the log (SEC-44)")
	}
}
