package e2e

// Fault injection against the built binary: SIGKILL during login bursts on
// the bolt store (REL-06), config reloads under signed traffic (REL-07),
// validate and refused loads while serving (REL-08), and SIGTERM with
// requests in flight.

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSeed is the seed of a randomised test: $envVar if set (to replay a
// failure), else def. It is logged either way.
func testSeed(t *testing.T, envVar string, def uint64) uint64 {
	t.Helper()
	seed := def
	if v := os.Getenv(envVar); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envVar, v, err)
		}
		seed = n
	}
	t.Logf("seed %d (replay with %s=%d)", seed, envVar, seed)
	return seed
}

// TestFaultREL06DurabilityLoop (REL-06): 20 rounds of concurrent amatino
// logins on one bolt file with a SIGKILL at a seeded random moment of each
// burst. After every kill the file passes bbolt's consistency check; after
// every restart each login that was answered 200 before the kill still
// verifies; at the end every acknowledged session of every round does.
func TestFaultREL06DurabilityLoop(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(testSeed(t, "E2E_KILL_SEED", uint64(time.Now().UnixNano())), 6))
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	dbPath := filepath.Join(g.dir, "sessions.db")

	const rounds, workers = 20, 8
	var all []amSession
	verify := func(what string, ss []amSession) {
		t.Helper()
		c := newClient(t, g.URL(""))
		lost := 0
		for _, s := range ss {
			resp, body, err := c.get(s, "/durable/"+strconv.FormatInt(s.SessionID, 10))
			if err == nil && resp.StatusCode == http.StatusOK {
				continue
			}
			if lost++; lost <= 3 {
				st := 0
				if resp != nil {
					st = resp.StatusCode
				}
				t.Errorf("%s: acknowledged session lost: %v %d %s", what, err, st, body)
			}
		}
		if lost > 0 {
			t.Fatalf("%s: %d of %d acknowledged sessions lost", what, lost, len(ss))
		}
	}

	for round := 1; round <= rounds; round++ {
		c := newClient(t, g.URL(""))
		killAfter := int64(1 + rng.IntN(48))
		extra := time.Duration(rng.IntN(2000)) * time.Microsecond

		var (
			mu    sync.Mutex
			acked []amSession
			wg    sync.WaitGroup
			n     atomic.Int64
			stop  atomic.Bool
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := alice
				if w%2 == 1 {
					u = bob
				}
				for !stop.Load() {
					resp, body, err := c.post("/session", "application/json", loginJSON(u.Email, 0, u.Secret))
					if err != nil {
						return // the process is gone
					}
					var s amSession
					if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &s) != nil || s.SessionID <= 0 {
						t.Errorf("round %d: login answered %d %s", round, resp.StatusCode, body)
						return
					}
					mu.Lock()
					acked = append(acked, s)
					mu.Unlock()
					n.Add(1)
				}
			}()
		}
		for deadline := time.Now().Add(30 * time.Second); n.Load() < killAfter; {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("round %d: only %d logins in 30s", round, n.Load())
			}
			time.Sleep(200 * time.Microsecond) // poll interval
		}
		time.Sleep(extra) // the random moment within the burst
		g.Kill()
		stop.Store(true)
		wg.Wait()
		if g.ExitErr() == nil {
			t.Fatalf("round %d: the process exited cleanly before SIGKILL", round)
		}

		// The file right after the crash: consistent, with at least every
		// acknowledged session in it.
		view := readStore(t, dbPath)
		if got := view.Counts["amatino"]; got < len(all)+len(acked) {
			t.Errorf("round %d: bolt file holds %d amatino sessions, want ≥ %d acknowledged", round, got, len(all)+len(acked))
		}

		g.Start()
		verify(fmt.Sprintf("round %d (killed after %d acknowledged logins + %s)", round, len(acked), extra), acked)
		all = append(all, acked...)
		t.Logf("round %d: SIGKILL after %d acknowledged logins (target %d, +%s); %d acknowledged in all",
			round, len(acked), killAfter, extra, len(all))
	}
	verify("after all rounds", all)
	g.Stop()
	if err := g.ExitErr(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	view := readStore(t, dbPath, alice.ID, bob.ID)
	for _, s := range all {
		if _, ok := view.Sessions[strconv.FormatInt(s.SessionID, 10)]; !ok {
			t.Errorf("acknowledged session %d is not in the bolt file", s.SessionID)
		}
	}
}

// trafficGen sends signed GETs at a steady rate until stopped and records
// every failure.
type trafficGen struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	retried    atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startTraffic sends one signed GET of s every interval through c.
func startTraffic(c *amClient, s amSession, interval time.Duration) *trafficGen {
	tg := &trafficGen{stop: make(chan struct{})}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tg.stop:
				return
			case <-tick.C:
			}
			resp, body, err := c.getAcrossReload(s, fmt.Sprintf("/steady/%d", i), &tg.retried)
			if err == nil && resp.StatusCode == http.StatusOK {
				tg.ok.Add(1)
				continue
			}
			tg.failed.Add(1)
			tg.mu.Lock()
			if len(tg.failures) < 10 {
				if err != nil {
					tg.failures = append(tg.failures, err.Error())
				} else {
					tg.failures = append(tg.failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
			}
			tg.mu.Unlock()
		}
	}()
	return tg
}

// waitOK waits until n more requests succeeded (hang guard: 30 s).
func (tg *trafficGen) waitOK(t *testing.T, n int64) {
	t.Helper()
	target := tg.ok.Load() + n
	for deadline := time.Now().Add(30 * time.Second); tg.ok.Load() < target; {
		if time.Now().After(deadline) {
			t.Fatalf("traffic made no progress: %d ok, %d failed", tg.ok.Load(), tg.failed.Load())
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// finish stops the traffic and fails the test if any request failed.
func (tg *trafficGen) finish(t *testing.T, what string) {
	t.Helper()
	close(tg.stop)
	tg.wg.Wait()
	if n := tg.failed.Load(); n != 0 {
		t.Errorf("%s: %d of %d signed requests failed: %q", what, n, n+tg.ok.Load(), tg.failures)
	}
	t.Logf("%s: %d signed requests, %d failed, %d retried after a connection closed by a reload", what,
		tg.ok.Load()+tg.failed.Load(), tg.failed.Load(), tg.retried.Load())
}

// runningConfig reads the gateway's JSON config from the admin API.
func runningConfig(t *testing.T, g *gateway) []byte {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/config/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cfg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !json.Valid(cfg) {
		t.Fatalf("GET /config/: %d %s", resp.StatusCode, cfg)
	}
	return cfg
}

// withHandlerOption returns cfg with key=val in every amatino block.
func withHandlerOption(t *testing.T, cfg []byte, key string, val any) []byte {
	t.Helper()
	var tree any
	if err := json.Unmarshal(cfg, &tree); err != nil {
		t.Fatal(err)
	}
	if setHandlerOption(tree, key, val) == 0 {
		t.Fatalf("no sessiongate handler with an amatino block in %s", cfg)
	}
	out, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// processLoad is the goroutine and descriptor count of the gateway.
type processLoad struct{ goroutines, fds int }

// measureLoad reads the gateway's goroutines (admin pprof) and open
// descriptors (/proc).
func measureLoad(t *testing.T, g *gateway) processLoad {
	t.Helper()
	n, err := goroutines(g)
	if err != nil {
		t.Fatalf("goroutine count: %v", err)
	}
	f, err := openFDs(g.Pid())
	if err != nil {
		t.Fatalf("descriptor count: %v", err)
	}
	return processLoad{n, f}
}

// settledLoad polls until two readings 200 ms apart agree (at most 10 s)
// and returns the last one: the count once connections and handlers that
// were winding down are gone.
func settledLoad(t *testing.T, g *gateway) processLoad {
	t.Helper()
	prev := measureLoad(t, g)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond) // poll interval
		cur := measureLoad(t, g)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	return prev
}

// TestFaultREL07ReloadsUnderTraffic (REL-07): 50 forced config reloads
// through the admin API, alternating between the running config and one
// with a different amatino window, while signed requests flow at 20 per
// second: every reload 200, zero failed requests, the sessions still valid,
// one bolt handle, and goroutines and descriptors back to the baseline.
func TestFaultREL07ReloadsUnderTraffic(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	// Caddy's reverse_proxy keeps idle upstream connections per config
	// (transport) until its keepalive idle timeout, 2m by default; a
	// client connection still served by the old server after a reload opens
	// one on the old, already cleaned-up transport. They are Caddy's, not
	// a leak of ours, and would hide one for 2 minutes: a short idle timeout
	// lets the counts settle within the test.
	cf := strings.Replace(defaultCaddyfile, "reverse_proxy {{.Upstream}}\n",
		"reverse_proxy {{.Upstream}} {\n\t\ttransport http {\n\t\t\tkeepalive 2s\n\t\t}\n\t}\n", 1)
	if cf == defaultCaddyfile {
		t.Fatal("defaultCaddyfile has no `reverse_proxy {{.Upstream}}` line; update this test")
	}
	g := newGateway(t, up, gwOpts{Caddyfile: cf})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)
	cfgA := runningConfig(t, g)
	cfgB := withHandlerOption(t, cfgA, "window", "45s")

	// Warm up: some traffic and one reload, so what is created lazily once
	// per process (store, janitor, transports) exists before the baseline.
	for i := range 5 {
		if resp, body, err := c.get(s, fmt.Sprintf("/warm/%d", i)); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("warm-up request: %v %s", err, body)
		}
	}
	c.hc.CloseIdleConnections()
	if code, body, err := adminLoad(g, cfgA); err != nil || code != http.StatusOK {
		t.Fatalf("warm-up reload: %v %d %s", err, code, body)
	}
	base := settledLoad(t, g)
	t.Logf("baseline: %d goroutines, %d descriptors", base.goroutines, base.fds)

	const reloads = 50
	tg := startTraffic(c, s, 50*time.Millisecond)
	tg.waitOK(t, 3)
	loadsBefore := strings.Count(g.Logs(), `"msg":"load complete"`)
	for i := range reloads {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		code, body, err := adminLoad(g, cfg)
		if err != nil || code != http.StatusOK {
			tg.finish(t, "reloads")
			t.Fatalf("reload %d: %v %d %s", i+1, err, code, body)
		}
		tg.waitOK(t, 1) // every reload interleaves with traffic
	}
	tg.waitOK(t, 3)
	tg.finish(t, fmt.Sprintf("%d reloads", reloads))
	if n := strings.Count(g.Logs(), `"msg":"load complete"`) - loadsBefore; n != reloads {
		t.Errorf("%d reloads logged \"load complete\", want %d (were reloads skipped?)", n, reloads)
	}

	// Sessions kept: the old one verifies, and a new login writes to the
	// store (the key cache could hide a store the reloads closed).
	if resp, body, err := c.get(s, "/after-reloads"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("session after reloads: %v %s", err, body)
	}
	s2, err := c.tryLogin("", bob.ID, bob.Secret)
	if err != nil {
		t.Fatalf("login after reloads: %v", err)
	}
	if resp, body, err := c.get(s2, "/after-reloads"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("new session after reloads: %v %s", err, body)
	}
	if n := boltHandles(t, g.Pid(), filepath.Join(g.dir, "sessions.db")); n != 1 {
		t.Errorf("%d descriptors on the bolt file after %d reloads, want 1", n, reloads)
	}

	// Back to the baseline: 50 reloads that each leaked one goroutine or
	// descriptor would be far outside the tolerance.
	const tolGoroutines, tolFDs = 5, 2
	c.hc.CloseIdleConnections()
	var last processLoad
	for deadline := time.Now().Add(30 * time.Second); ; {
		last = measureLoad(t, g)
		if last.goroutines <= base.goroutines+tolGoroutines && last.fds <= base.fds+tolFDs {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after %d reloads: %d goroutines (baseline %d, tolerance %d), %d descriptors (baseline %d, tolerance %d)",
				reloads, last.goroutines, base.goroutines, tolGoroutines, last.fds, base.fds, tolFDs)
			break
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
	t.Logf("after %d reloads: %d goroutines, %d descriptors", reloads, last.goroutines, last.fds)
}

// TestFaultREL08ValidateAndRefusedLoads (REL-08): with the gateway serving
// from its bolt file, `caddy validate` of the same Caddyfile exits 0 (it
// must not wait for the file lock), and invalid configs posted to /load are
// refused with 400 while signed traffic keeps succeeding and sessions stay
// valid.
func TestFaultREL08ValidateAndRefusedLoads(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	s := c.login(t, alice) // the store is open and locked from here on
	cfg := runningConfig(t, g)

	tg := startTraffic(c, s, 50*time.Millisecond)
	tg.waitOK(t, 3)

	out, err := g.runCaddy(30*time.Second, "validate", "--config", g.file, "--adapter", "caddyfile")
	if err != nil {
		t.Errorf("caddy validate of the running config: %v\n%s", err, tail(out, 3000))
	} else if !strings.Contains(out, "Valid configuration") {
		t.Errorf("caddy validate output lacks \"Valid configuration\":\n%s", tail(out, 2000))
	}
	tg.waitOK(t, 2)

	bad := []struct {
		name string
		cfg  []byte
	}{
		{"provisioning fails (replay \"bogus\")", withHandlerOption(t, cfg, "replay", "bogus")},
		{"unknown handler field", withHandlerOption(t, cfg, "no_such_option", true)},
		{"window below one second", withHandlerOption(t, cfg, "window", "500ms")},
		{"not JSON", []byte(`{"apps": {`)},
	}
	for _, b := range bad {
		code, body, err := adminLoad(g, b.cfg)
		if err != nil || code != http.StatusBadRequest {
			t.Errorf("POST /load, %s: %v %d %s, want 400", b.name, err, code, tail(body, 500))
		}
		tg.waitOK(t, 2) // the old config keeps serving
	}
	tg.finish(t, "validate and refused loads")

	if resp, body, err := c.get(s, "/after"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("session after refused loads: %v %s", err, body)
	}
	s2 := c.login(t, bob)
	if resp, body, err := c.get(s2, "/after"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("new session after refused loads: %v %s", err, body)
	}
	if got := runningConfig(t, g); string(got) != string(cfg) {
		t.Errorf("the running config changed after refused loads")
	}
}

// TestFaultSIGTERMDrain (REL-06): 100 signed requests held by the upstream
// are in flight when SIGTERM arrives; the listener closes, then the
// upstream answers, and every request completes with 200; the process exits
// 0 having closed the bolt file (it opens at once, consistent), and the next
// start works on the same file with the sessions intact.
func TestFaultSIGTERMDrain(t *testing.T) {
	t.Parallel()
	up := newHoldUpstream(t)
	cf := strings.Replace(defaultCaddyfile, "{{.Upstream}}", up.Addr(), 1)
	if cf == defaultCaddyfile {
		t.Fatal("defaultCaddyfile has no {{.Upstream}}; update this test")
	}
	g := prepareGateway(t, nil, gwOpts{Caddyfile: cf})
	g.Start()
	c := newClient(t, g.URL(""))
	s := c.login(t, alice)

	const n = 100
	type result struct {
		status int
		body   []byte
		err    error
	}
	results := make(chan result, n)
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	for i := range n {
		go func() {
			resp, err := hc.Do(c.signed(http.MethodGet, fmt.Sprintf("/slow/%d", i), nil, s, signCurrent, 0))
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			results <- result{resp.StatusCode, body, err}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); up.inFlight.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests reached the upstream", up.inFlight.Load(), n)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}

	wait := sigtermNoWait(t, g)
	// Shutting down: the listener is closed while the requests are held.
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", g.Addr(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the gateway still accepts connections 10s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if got := up.inFlight.Load(); got != n {
		t.Fatalf("%d requests in flight when the listener closed, want %d", got, n)
	}
	up.Release()

	for range n {
		r := <-results
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("request in flight at SIGTERM: %v %d %s", r.err, r.status, r.body)
		}
	}
	if !wait(30 * time.Second) {
		t.Fatal("the process did not exit within 30s of SIGTERM")
	}
	if err := g.ExitErr(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	if got := up.done.Load(); got != n {
		t.Errorf("upstream answered %d requests, want %d", got, n)
	}

	// The file was closed: it opens at once and is consistent.
	view := readStore(t, filepath.Join(g.dir, "sessions.db"), alice.ID)
	if _, ok := view.Sessions[strconv.FormatInt(s.SessionID, 10)]; !ok {
		t.Errorf("session %d not in the bolt file after SIGTERM", s.SessionID)
	}

	from := len(g.Logs())
	g.Start()
	for _, line := range strings.Split(g.Logs()[from:], "\n") {
		// Caddy's own start-up warnings (HTTP/2 needs TLS, …) are not ours.
		var e struct{ Level, Logger string }
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Logger, "sessiongate") &&
			(e.Level == "warn" || e.Level == "error") {
			t.Errorf("restart after SIGTERM logged: %s", line)
		}
		if strings.Contains(line, "locked") {
			t.Errorf("restart after SIGTERM mentions a lock: %s", line)
		}
	}
	c2 := newClient(t, g.URL(""))
	if resp, body, err := c2.get(s, "/after-restart"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("session after SIGTERM and restart: %v %s", err, body)
	}
}
