package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/client"
)

// TestMetrics: the counters of a happy path show on the admin /metrics,
// with labels from closed sets only (SEC-47).
func TestMetrics(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)
	for _, req := range []*http.Request{
		c.signed(http.MethodGet, "/entities?x=1", nil, s, signCurrent, 0),
		c.signed(http.MethodPost, "/entities", jsonBodyN(1024), s, signCurrent, 0),
	} {
		if resp, body := mustDo(t, c, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", req.Method, resp.StatusCode, body)
		}
	}
	if resp, body, err := c.logout(s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %v %s", err, body)
	}

	m := g.Metrics(t)
	for _, want := range []struct {
		name, labels string
		min          float64
	}{
		{"caddy_sessiongate_requests_total", `dialect="amatino",result="ok"`, 2},
		{"caddy_sessiongate_logins_total", `dialect="amatino",result="ok"`, 1},
		{"caddy_sessiongate_sessions_created_total", `dialect="amatino"`, 1},
		{"caddy_sessiongate_sessions_ended_total", `dialect="amatino",reason="logout"`, 1},
	} {
		v, ok := metricValue(m, want.name, want.labels)
		if !ok || v < want.min {
			t.Errorf("%s{%s} = %v (present %v), want ≥ %v", want.name, want.labels, v, ok, want.min)
		}
	}
	// SEC-47: no user, email, session or key in any label.
	for _, line := range strings.Split(m, "\n") {
		if !strings.HasPrefix(line, "caddy_sessiongate_") {
			continue
		}
		for _, bad := range []string{"@", alice.Email, strconv.FormatInt(s.SessionID, 10), s.APIKey, `"42"`} {
			if strings.Contains(line, bad) {
				t.Errorf("metric line %q contains %q", line, bad)
			}
		}
	}
}

// TestLogsCarryNoSecrets (SEC-44): after logins, signed requests, failures
// and logout at DEBUG level, no secret, api_key, signature or raw session id
// is anywhere in Caddy's output; the audit log records the login.
// accessLogFilter is README's access log setup: Caddy records request
// headers as they arrived, so the credentials must be filtered out.
const accessLogFilter = `	log {
		format filter {
			request>headers>X-Signature delete
			request>headers>X-Session-Id delete
			request>headers>X-Timestamp delete
			request>headers>X-Session-Key delete
		}
	}`

// TestLogsCarryNoSecrets: SEC-44 over the whole log output at DEBUG level,
// including the access log set up as README says.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Site: accessLogFilter, Videntity: true})
	c := newClient(t, g.URL(""))

	var canaries []string
	add := func(vals ...string) { canaries = append(canaries, vals...) }
	add(alice.Secret, bob.Secret)
	send := func(req *http.Request) (*http.Response, []byte) {
		add(req.Header.Values("X-Signature")...)
		return mustDo(t, c, req)
	}

	s := c.login(t, alice)
	sb, err := c.tryLogin("", bob.ID, bob.Secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range []amSession{s, sb} {
		add(ss.APIKey, strconv.FormatInt(ss.SessionID, 10))
	}
	wrong := "canary-wrong-" + randHex(12)
	add(wrong)
	for _, b := range [][]byte{loginJSON(alice.Email, 0, wrong), loginJSON("", bob.ID, wrong),
		loginJSON("ghost@example.test", 0, wrong)} {
		if resp, body, err := c.post("/session", "application/json", b); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login: %v %v %s", err, resp, body)
		}
	}

	for _, req := range []*http.Request{
		c.signed(http.MethodGet, "/a?q=1", nil, s, signCurrent, 0),
		c.signed(http.MethodPost, "/b", jsonBodyN(200), s, signRawBody, 0),
		c.signed(http.MethodGet, "/c", nil, sb, signCurrent, 0),
	} {
		if resp, body := send(req); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
		}
	}
	bad := s
	bad.APIKey = "canary-key-" + randHex(16)
	if resp, _ := send(c.signed(http.MethodGet, "/d", nil, bad, signCurrent, 0)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", resp.StatusCode)
	}
	if resp, _ := send(c.signed(http.MethodDelete, "/session", nil, s, signCurrent, 0)); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := send(c.signed(http.MethodGet, "/e", nil, s, signCurrent, 0)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}

	// A videntity key in its header (unknown, so refused) is a secret too.
	vkey := "Canary" + randHex(20)
	add(vkey)
	keyReq, _ := http.NewRequest(http.MethodGet, g.URL("/f"), nil)
	keyReq.Header.Set("X-Session-Key", vkey)
	if resp, _ := send(keyReq); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown session key: %d", resp.StatusCode)
	}

	g.Stop() // flushes everything the process wrote
	logs := g.Logs()
	// The access log was on and recorded who made the proxied requests.
	if want := fmt.Sprintf(`"user_id":"%d"`, alice.ID); !strings.Contains(logs, `"logger":"http.log.access`) || !strings.Contains(logs, want) {
		t.Fatalf("no access log line with %s", want)
	}
	for _, cn := range canaries {
		if strings.Contains(logs, cn) {
			i := strings.Index(logs, cn)
			t.Errorf("log output contains a secret %q: …%s…", cn, logs[max(0, i-200):min(len(logs), i+len(cn)+50)])
		}
	}

	events := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		var e struct {
			Logger string `json:"logger"`
			Event  string `json:"event"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Logger == "sessiongate.audit" {
			events[e.Event]++
		}
	}
	if events["login"] < 2 || events["logout"] < 1 || events["login_failed"] < 3 {
		t.Errorf(`audit events %v, want ≥ 2 "login", ≥ 1 "logout", ≥ 3 "login_failed" from logger sessiongate.audit`, events)
	}
}

// adminLoad POSTs a JSON config to the admin /load, forcing a reload even
// when it is unchanged.
func adminLoad(g *gateway, cfg []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, g.AdminURL("/load"), bytes.NewReader(cfg))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// boltHandles counts the process's open descriptors on path.
func boltHandles(t *testing.T, pid int, path string) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("no %s: %v", dir, err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// setHandlerOption sets key=val in the amatino config of every sessiongate
// handler of a JSON config.
func setHandlerOption(v any, key string, val any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		if x["handler"] == "sessiongate" {
			if am, ok := x["amatino"].(map[string]any); ok {
				am[key] = val
				n++
			}
		}
		for _, c := range x {
			n += setHandlerOption(c, key, val)
		}
	case []any:
		for _, c := range x {
			n += setHandlerOption(c, key, val)
		}
	}
	return n
}

// TestReloadUnderTraffic (REL-07, REL-08): ten forced reloads through the
// admin API while signed requests flow: every reload 200, no failed request,
// one bolt handle, the session still valid; an invalid config is refused
// while the old one keeps serving.
func TestReloadUnderTraffic(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)

	resp, err := http.Get(g.AdminURL("/config/"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !json.Valid(cfg) {
		t.Fatalf("GET /config/: %d %s", resp.StatusCode, cfg)
	}
	var tree any
	if err := json.Unmarshal(cfg, &tree); err != nil {
		t.Fatal(err)
	}
	if setHandlerOption(tree, "replay", "bogus") == 0 {
		t.Fatalf("no sessiongate handler with an amatino block in the running config: %s", cfg)
	}
	badCfg, _ := json.Marshal(tree)

	var (
		ok, failed atomic.Int64
		retried    atomic.Int64
		mu         sync.Mutex
		failures   []string
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	deadline := time.Now().Add(20 * time.Second)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, body, err := c.getAcrossReload(s, fmt.Sprintf("/traffic/%d/%d", w, i), &retried)
				if err == nil && resp.StatusCode == http.StatusOK {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				mu.Lock()
				if len(failures) < 10 {
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					}
				}
				mu.Unlock()
			}
		}()
	}
	// waitProgress waits until n more requests succeeded, so reloads really
	// interleave with traffic.
	waitProgress := func(n int64) {
		t.Helper()
		target := ok.Load() + n
		for ok.Load() < target && failed.Load() == 0 {
			if time.Now().After(deadline) {
				t.Errorf("traffic made no progress (ok %d, failed %d)", ok.Load(), failed.Load())
				return
			}
			time.Sleep(5 * time.Millisecond) // poll interval
		}
	}
	finish := func() {
		close(stop)
		wg.Wait()
	}

	waitProgress(5)
	loadsBefore := strings.Count(g.Logs(), `"msg":"load complete"`)
	for i := range 10 {
		code, body, err := adminLoad(g, cfg)
		if err != nil || code != http.StatusOK {
			finish()
			t.Fatalf("reload %d: %v %d %s", i+1, err, code, body)
		}
		waitProgress(3)
	}
	if n := strings.Count(g.Logs(), `"msg":"load complete"`) - loadsBefore; n < 10 {
		t.Errorf("%d reloads logged \"load complete\", want 10 (were the reloads skipped?)", n)
	}

	// REL-08: an invalid config is refused and the old one keeps serving.
	code, body, err := adminLoad(g, badCfg)
	if err != nil || code == http.StatusOK {
		t.Errorf("loading a config with replay \"bogus\": %v %d %s, want an error status", err, code, body)
	}
	waitProgress(5)
	finish()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d proxied requests failed during reloads: %q", n, n+ok.Load(), failures)
	}
	t.Logf("%d requests during 10 reloads and 1 refused load, %d retried after a connection closed by a reload", ok.Load(), retried.Load())
	resp2, body2, err := c.get(s, "/after-reloads")
	if err != nil || resp2.StatusCode != http.StatusOK {
		t.Fatalf("session after reloads: %v %v %s", err, resp2, body2)
	}
	// A new login writes to the store: the cache above may hide a store the
	// reloads broke.
	s2, err := c.tryLogin("", bob.ID, bob.Secret)
	if err != nil {
		t.Fatalf("login after reloads: %v", err)
	}
	if resp, body, err := c.get(s2, "/after-reloads"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("new session after reloads: %v %s", err, body)
	}
	if n := boltHandles(t, g.Pid(), filepath.Join(g.dir, "sessions.db")); n != 1 {
		t.Errorf("process holds %d descriptors on the bolt file after 10 reloads, want 1 (REL-07)", n)
	}
}

// TestValidateWhileRunning (REL-08): `caddy validate` on the running
// gateway's config, and so on its bolt file, exits 0 without waiting for the
// file lock, and the gateway keeps serving its sessions.
func TestValidateWhileRunning(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice) // the store is open and locked by now
	if resp, body, err := c.get(s, "/before"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("before validate: %v %s", err, body)
	}
	out, err := g.runCaddy(20*time.Second, "validate", "--config", g.file, "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("caddy validate while the gateway runs: %v\n%s", err, tail(out, 3000))
	}
	if !strings.Contains(out, "Valid configuration") {
		t.Errorf("caddy validate output lacks \"Valid configuration\":\n%s", tail(out, 2000))
	}
	if resp, body, err := c.get(s, "/after"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after validate: %v %s", err, body)
	}
	s2 := c.login(t, bob)
	if resp, body, err := c.get(s2, "/after"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("new session after validate: %v %s", err, body)
	}
}

// TestDurabilityKill (REL-06, short): rounds of concurrent logins with a
// SIGKILL at a random moment of the second batch; after each restart every
// login that was answered 200 still verifies. Then a SIGTERM exits cleanly
// and the next start warns of nothing.
func TestDurabilityKill(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	var acked []amSession

	verifyAll := func(round int) {
		t.Helper()
		c := newClient(t, g.URL(""))
		lost := 0
		for _, s := range acked {
			resp, body, err := c.get(s, "/durable")
			if err != nil || resp.StatusCode != http.StatusOK {
				lost++
				if lost <= 3 {
					t.Errorf("round %d: acknowledged session %d lost: %v %s", round, s.SessionID, err, body)
				}
			}
		}
		if lost > 0 {
			t.Errorf("round %d: %d of %d acknowledged sessions lost", round, lost, len(acked))
		}
	}

	const rounds, workers = 3, 20
	for round := 1; round <= rounds; round++ {
		if round > 1 {
			g.Start()
			verifyAll(round - 1)
		}
		c := newClient(t, g.URL(""))

		// Batch 1: 20 concurrent logins, all must succeed.
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := alice
				if i%2 == 1 {
					u = bob
				}
				s, err := c.tryLogin(u.Email, 0, u.Secret)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked = append(acked, s)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d batch 1: %v", round, err)
		}

		// Batch 2: logins in a loop; SIGKILL after a random number of them.
		killAfter := int64(1 + rand.IntN(40))
		var succeeded atomic.Int64
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 30 {
					s, err := c.tryLogin(alice.Email, 0, alice.Secret)
					if err != nil {
						return // the process is gone
					}
					mu.Lock()
					acked = append(acked, s)
					mu.Unlock()
					succeeded.Add(1)
				}
			}()
		}
		deadline := time.Now().Add(20 * time.Second)
		for succeeded.Load() < killAfter && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // poll interval
		}
		g.Kill()
		wg.Wait()
		t.Logf("round %d: killed after %d logins of batch 2 (target %d); %d acknowledged so far",
			round, succeeded.Load(), killAfter, len(acked))
	}
	g.Start()
	verifyAll(rounds)

	// A clean stop: SIGTERM exits 0, and the next start finds the store
	// without complaint and with every session.
	g.Stop()
	if err := g.ExitErr(); err != nil {
		t.Errorf("caddy exit after SIGTERM: %v", err)
	}
	from := len(g.Logs())
	g.Start()
	verifyAll(rounds + 1)
	for _, line := range strings.Split(g.Logs()[from:], "\n") {
		var e struct{ Level, Logger string }
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Logger, "sessiongate") &&
			(e.Level == "warn" || e.Level == "error") {
			t.Errorf("start after a clean stop logged: %s", line)
		}
	}
}

// exampleCaddyfile is the repository's Caddyfile.example.
func exampleCaddyfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCaddyfileExample: the shipped example adapts and is formatted, and the
// demo it describes works end to end.
func TestCaddyfileExample(t *testing.T) {
	t.Parallel()
	src := exampleCaddyfile(t)
	example := filepath.Join(repoRoot, "Caddyfile.example")

	// The demo, on free ports, with an admin endpoint of its own.
	demo := strings.ReplaceAll(src, "127.0.0.1:8080", "127.0.0.1:{{.Port}}")
	demo = strings.ReplaceAll(demo, "127.0.0.1:8081", "127.0.0.1:{{.Port2}}")
	if demo == src {
		t.Fatal("Caddyfile.example no longer serves 127.0.0.1:8080 and 127.0.0.1:8081; update this test")
	}
	lines := strings.Split(demo, "\n")
	inserted := false
	for i, l := range lines {
		if l == "{" {
			lines = append(lines[:i+1], append([]string{"\tadmin 127.0.0.1:{{.Admin}}"}, lines[i+1:]...)...)
			inserted = true
			break
		}
	}
	if !inserted {
		t.Fatal("Caddyfile.example has no global options block")
	}
	g := prepareGateway(t, nil, gwOpts{Caddyfile: strings.Join(lines, "\n")})

	t.Run("adapt", func(t *testing.T) {
		if out, err := g.runCaddy(60*time.Second, "adapt", "--config", example, "--adapter", "caddyfile"); err != nil {
			t.Errorf("caddy adapt Caddyfile.example: %v\n%s", err, tail(out, 3000))
		}
	})
	t.Run("fmt", func(t *testing.T) {
		if out, err := g.runCaddy(60*time.Second, "fmt", "--diff", example); err != nil {
			t.Errorf("caddy fmt --diff Caddyfile.example: %v\n%s", err, tail(out, 3000))
		}
	})

	// The demo run, in the parent test: Start fails the test that owns g.
	{
		g.Start()
		c := newClient(t, g.URL(""))
		s, err := c.tryLogin("demo@example.com", 0, "correct horse battery staple")
		if err != nil {
			t.Fatalf("demo login: %v", err)
		}
		if s.UserID != 1001 {
			t.Errorf("demo login user_id %d, want 1001", s.UserID)
		}
		resp, body, err := c.get(s, "/hello?a=b")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("demo signed GET: %v %v %s", err, resp, body)
		}
		var echo struct {
			Method  string              `json:"method"`
			Path    string              `json:"path"`
			Query   string              `json:"query"`
			Headers map[string][]string `json:"headers"`
		}
		if err := json.Unmarshal(body, &echo); err != nil {
			t.Fatalf("echo answer %q: %v", body, err)
		}
		if got := echo.Headers["X-Auth-User-Id"]; len(got) != 1 || got[0] != "1001" {
			t.Errorf("echo saw X-Auth-User-Id %q, want [\"1001\"] (echo %s)", got, body)
		}
		if got := echo.Headers["X-Auth-User-Email"]; len(got) != 1 || got[0] != "demo@example.com" {
			t.Errorf("echo saw X-Auth-User-Email %q, want [\"demo@example.com\"]", got)
		}
		for _, h := range []string{"X-Signature", "X-Session-Id"} {
			if v, ok := echo.Headers[h]; ok {
				t.Errorf("echo saw credential header %s: %q", h, v)
			}
		}
		if echo.Path != "/hello" || echo.Query != "a=b" {
			t.Errorf("echo saw path %q query %q, want /hello and a=b", echo.Path, echo.Query)
		}
		// The demo's native scheme, through the Go client (it logs in with
		// amatino and signs RFC 9421 with the session's key).
		_, hc := nativeClient(t, g, client.Config{Mode: client.ModeRFC9421HMAC,
			Login: &client.PasswordLogin{AccountEmail: "demo@example.com", Secret: "correct horse battery staple"}})
		nresp, nbody := send(t, hc, newReq(t, http.MethodPost, g.URL("/native?x=1"), []byte(`{"a":1}`), "application/json"))
		if nresp.StatusCode != http.StatusOK || !strings.Contains(string(nbody), `"1001"`) {
			t.Errorf("demo native POST: %d %s", nresp.StatusCode, nbody)
		}
		if resp, body, err := c.logout(s); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("demo logout: %v %s", err, body)
		}
		resp, body, err = c.get(s, "/hello")
		if err != nil {
			t.Fatal(err)
		}
		expectRefusal(t, "demo after logout", resp, body, http.StatusUnauthorized, "unknown_session")
	}
}

// TestValidateWarnsLiteralSecretsSEC49 (SEC-49): `caddy validate` of a Caddyfile that
// writes the master key, the Redis password and the sxt join code literally
// succeeds but warns once per setting, naming it and never its value; the
// same settings taken from placeholders load without a warning.
func TestValidateWarnsLiteralSecretsSEC49(t *testing.T) {
	t.Parallel()
	const (
		literalPassword = "literal-redis-pw-5b1f0c"
		literalJoin     = "literal-join-code-8e2a"
	)
	literalKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	settings := []string{"master_key", "store redis password", "sxt join_code"}
	validate := func(t *testing.T, o gwOpts) string {
		t.Helper()
		g := prepareGateway(t, nil, o)
		out, err := g.runCaddy(30*time.Second, "validate", "--config", g.file, "--adapter", "caddyfile")
		if err != nil || !strings.Contains(out, "Valid configuration") {
			t.Fatalf("caddy validate: %v\n%s", err, tail(out, 3000))
		}
		return out
	}
	// Redis is never dialled by validate: the store opens lazily at start.
	t.Run("literal", func(t *testing.T) {
		out := validate(t, gwOpts{
			Store:  "store redis {\n\t\t\taddress 127.0.0.1:9\n\t\t\tpassword " + literalPassword + "\n\t\t}",
			Global: "\t\tmaster_key " + literalKey + "\n",
			Sxt:    "registration join_code " + literalJoin,
		})
		for _, s := range settings {
			if n := strings.Count(out, `"setting":"`+s+`"`); n != 1 {
				t.Errorf("%d warnings naming %q, want 1:\n%s", n, s, tail(out, 3000))
			}
		}
		// Caddy's own DEBUG log of the adjusted config shows a literal
		// value (the reason for the warning); the warnings never do.
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, "written literally") {
				continue
			}
			for _, secret := range []string{literalPassword, literalJoin, literalKey} {
				if strings.Contains(l, secret) {
					t.Errorf("a warning shows the secret value %q: %s", secret, l)
				}
			}
		}
	})
	t.Run("placeholders", func(t *testing.T) {
		out := validate(t, gwOpts{
			Store:  "store redis {\n\t\t\taddress 127.0.0.1:9\n\t\t\tpassword {env.SG_TEST_REDIS_PW}\n\t\t}",
			Global: "\t\tmaster_key {env.SG_TEST_MASTER_KEY}\n",
			Sxt:    "registration join_code {env.SG_TEST_JOIN}",
			Env:    []string{"SG_TEST_REDIS_PW=" + literalPassword, "SG_TEST_MASTER_KEY=" + literalKey, "SG_TEST_JOIN=" + literalJoin},
		})
		if strings.Contains(out, "written literally") {
			t.Errorf("placeholder settings warned:\n%s", tail(out, 3000))
		}
		// Placeholders are resolved at load and never written back, so
		// not even Caddy's DEBUG config dump shows the values.
		for _, secret := range []string{literalPassword, literalJoin, literalKey} {
			if strings.Contains(out, secret) {
				t.Errorf("validate output shows the secret value %q taken from a placeholder", secret)
			}
		}
	})
}
