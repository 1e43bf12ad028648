package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
)

// Several gateway nodes sharing one Redis: each node is a built Caddy
// process with `store redis { … }`, all of them on one real redis-server
// started by redistest. The clients are the WIRE.md clients of
// client_test.go and sxt_test.go.

// hangGuard bounds every wait for something that must happen. It is far
// above the 30 s cache TTL, the worst case the design allows for a
// revocation to reach another node, so it catches hangs, not slowness.
const hangGuard = 45 * time.Second

// redisEnv is a redis-server and the environment every node sharing it
// gets: the same master key and the Redis password, both through
// placeholders, as operators configure them.
type redisEnv struct {
	srv *redistest.Server
	env []string
}

func newRedisEnv(t *testing.T, opts redistest.Options) *redisEnv {
	t.Helper()
	opts.Password = "redis-password-" + randHex(8)
	srv := redistest.Start(t, opts)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return &redisEnv{srv: srv, env: []string{"SG_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key),
		"SG_REDIS_PASSWORD=" + opts.Password}}
}

// redisStoreBlock is the global block's store for Redis at addr, with
// extra option lines.
func redisStoreBlock(addr string, extra ...string) string {
	var b strings.Builder
	b.WriteString("store redis {\n\t\t\taddress " + addr + "\n\t\t\tpassword {env.SG_REDIS_PASSWORD}\n")
	for _, l := range extra {
		b.WriteString("\t\t\t" + l + "\n")
	}
	b.WriteString("\t\t}")
	return b.String()
}

// noThrottle turns the per-IP and per-node login throttles off: the tests
// log in far faster than any client, from one address. Lockouts stay on.
const noThrottle = "\t\tlogin_limits {\n\t\t\tip_rate off\n\t\t\tglobal_rate off\n\t\t}\n"

// gwOpts adds the redis store (at addr, or the server's address) and
// the shared master key to o.
func (e *redisEnv) gwOpts(o gwOpts, addr string, storeLines ...string) gwOpts {
	if addr == "" {
		addr = e.srv.Addr()
	}
	o.Store = redisStoreBlock(addr, storeLines...)
	o.Global += "\t\tmaster_key {env.SG_MASTER_KEY}\n"
	o.Env = append(slices.Clone(o.Env), e.env...)
	return o
}

// node starts a gateway node on the shared Redis (or on addr, e.g. a
// proxy in front of it) and waits until it has subscribed to
// invalidations, so that what other nodes publish reaches it.
func (e *redisEnv) node(t *testing.T, up *upstream, o gwOpts, addr string, storeLines ...string) *gateway {
	t.Helper()
	g := newGateway(t, up, e.gwOpts(o, addr, storeLines...))
	waitFor(t, "the node's first subscription", func() bool { return cacheFlushes(t, g) >= 1 })
	return g
}

// cacheFlushes is the node's caddy_sessiongate_key_cache_flushes_total.
func cacheFlushes(t *testing.T, g *gateway) float64 {
	t.Helper()
	v, ok := metricValue(g.Metrics(t), "caddy_sessiongate_key_cache_flushes_total", "")
	if !ok {
		t.Fatal("no caddy_sessiongate_key_cache_flushes_total on /metrics")
	}
	return v
}

// waitFor polls cond until it holds; it fails the test after hangGuard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, hangGuard)
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not synchronisation
	}
}

// pathSeq makes every signed request's path unique, so no two requests of
// a session ever carry the same signature (the nodes run `replay reject`).
var pathSeq atomic.Int64

func uniquePath(what string) string { return fmt.Sprintf("/%s/%d", what, pathSeq.Add(1)) }

// signedGet sends a signed GET for s to c's node at a fresh path.
func signedGet(t *testing.T, c *amClient, s amSession, what string) (*http.Response, []byte) {
	t.Helper()
	return mustDo(t, c, c.signed(http.MethodGet, uniquePath(what), nil, s, signCurrent, 0))
}

// mustGet200 asserts that s works at c's node.
func mustGet200(t *testing.T, c *amClient, s amSession, what string) {
	t.Helper()
	if resp, body := signedGet(t, c, s, what); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
	}
}

// untilRefused sends signed GETs for s to c's node until one is refused
// with 401 unknown_session, and returns how long that took from since.
// Until then only 200 is acceptable: a node may serve a session it has
// cached until the invalidation arrives, nothing else.
func untilRefused(t *testing.T, c *amClient, s amSession, since time.Time, what string) time.Duration {
	t.Helper()
	for {
		resp, body := signedGet(t, c, s, "poll")
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			took := time.Since(since)
			expectRefusal(t, what, resp, body, http.StatusUnauthorized, "unknown_session")
			return took
		case http.StatusOK:
		default:
			t.Fatalf("%s: %d %s while waiting for the refusal", what, resp.StatusCode, body)
		}
		if time.Since(since) > hangGuard {
			t.Fatalf("%s: the session still works %s later", what, hangGuard)
		}
	}
}

// percentile is the p-th percentile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// TestRedisTwoNodes: two nodes share sessions, replay marks and
// revocations. Not parallel, so the measured logout latency is the nodes'
// own and not the noise of other tests.
func TestRedisTwoNodes(t *testing.T) {
	e := newRedisEnv(t, redistest.Options{})
	up := newUpstream(t)
	o := gwOpts{Amatino: "\t\t\treplay reject",
		Global: "\t\tlogin_limits {\n\t\t\tip_rate off\n\t\t\tglobal_rate off\n\t\t\tmax_failures 3\n\t\t}\n"}
	a, b := e.node(t, up, o, ""), e.node(t, up, o, "")
	ca, cb := newClient(t, a.URL("")), newClient(t, b.URL(""))

	t.Run("a session from A works on B", func(t *testing.T) {
		s := ca.login(t, alice)
		hits := up.Hits()
		mustGet200(t, cb, s, "on-b")
		if up.Hits() != hits+1 {
			t.Fatalf("upstream hits %d → %d, want +1", hits, up.Hits())
		}
		checkForwarded(t, up.Last(t), alice)
	})

	// SEC-24: the replay guard is in Redis, so a byte-identical replay sent
	// to the other node is caught.
	t.Run("SEC-24 replay to the other node", func(t *testing.T) {
		s := ca.login(t, bob)
		ts := time.Now().Unix()
		reqA := ca.signed(http.MethodGet, "/orders?page=1", nil, s, signCurrent, ts)
		reqB := cb.signed(http.MethodGet, "/orders?page=1", nil, s, signCurrent, ts)
		for _, h := range []string{"X-Session-ID", "X-Signature"} {
			if reqA.Header.Get(h) != reqB.Header.Get(h) {
				t.Fatalf("the replay differs in %s", h)
			}
		}
		resp, body := mustDo(t, ca, reqA)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("original at A: %d %s", resp.StatusCode, body)
		}
		hits := up.Hits()
		resp, body = mustDo(t, cb, reqB)
		expectRefusal(t, "replay at B", resp, body, http.StatusUnauthorized, "replay")
		if up.Hits() != hits {
			t.Errorf("the replay reached the upstream")
		}
		if v, ok := metricValue(b.Metrics(t), "caddy_sessiongate_replays_total", `dialect="amatino",action="rejected"`); !ok || v != 1 {
			t.Errorf("B's rejected replays = %v (found %v), want 1", v, ok)
		}
	})

	// SEC-10, REL-04: a logout on A is refused on B, which had the session
	// in its key cache; the time from A's answer to B's first refusal is
	// measured (and only logged: the machine is shared and noisy).
	t.Run("SEC-10 logout on A refused on B", func(t *testing.T) {
		const reps = 20
		lat := make([]time.Duration, 0, reps)
		for i := range reps {
			s := ca.login(t, alice)
			mustGet200(t, cb, s, "warm") // now in B's key cache
			resp, body, err := ca.logout(s)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("logout %d at A: %v %v %s", i, err, resp, body)
			}
			lat = append(lat, untilRefused(t, cb, s, time.Now(), fmt.Sprintf("logout %d on B", i)))
			resp, body = signedGet(t, ca, s, "after-logout")
			expectRefusal(t, "after logout on A", resp, body, http.StatusUnauthorized, "unknown_session")
		}
		slices.Sort(lat)
		t.Logf("logout on A → first 401 on B over %d logouts: p50 %s, p99 %s, max %s",
			reps, percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1])
	})

	// SEC-13: revoke-all through A's admin API ends the user's sessions on
	// both nodes, whichever node issued them; another user's session lives.
	t.Run("SEC-13 revoke-all reaches both nodes", func(t *testing.T) {
		adm := newAdminClient(t, a)
		sessions := []amSession{ca.login(t, alice), cb.login(t, alice), ca.login(t, alice)}
		other := cb.login(t, bob)
		for _, s := range append(slices.Clone(sessions), other) {
			mustGet200(t, ca, s, "cache-a")
			mustGet200(t, cb, s, "cache-b")
		}
		list := adm.must(t, http.StatusOK, http.MethodGet, fmt.Sprintf("/sessiongate/users/%d/sessions", alice.ID), "")
		live, _ := list["sessions"].([]any)
		if len(live) < len(sessions) {
			t.Fatalf("alice has %d sessions listed, want at least %d", len(live), len(sessions))
		}
		out := adm.must(t, http.StatusOK, http.MethodDelete, fmt.Sprintf("/sessiongate/users/%d/sessions", alice.ID), "")
		if n, _ := out["sessions_revoked"].(float64); int(n) != len(live) {
			t.Errorf("revoked %v sessions, want %d", out["sessions_revoked"], len(live))
		}
		revoked := time.Now()
		for i, s := range sessions {
			for _, n := range []struct {
				name string
				c    *amClient
			}{{"A", ca}, {"B", cb}} {
				took := untilRefused(t, n.c, s, revoked, fmt.Sprintf("session %d after revoke-all, on %s", i, n.name))
				t.Logf("session %d refused on %s %s after the revoke-all answer", i, n.name, took)
			}
		}
		mustGet200(t, ca, other, "bob-a")
		mustGet200(t, cb, other, "bob-b")
		secrets := []string{alice.Secret, bob.Secret, other.APIKey}
		for _, s := range sessions {
			secrets = append(secrets, s.APIKey)
		}
		adm.checkNoSecrets(t, secrets...)
	})

	// SEC-06: failed logins are counted in Redis, so failures at either
	// node add up and the lockout holds at both. Node-local counters
	// would let the right password in here.
	t.Run("SEC-06 lockout counts failures of both nodes", func(t *testing.T) {
		loginFails(t, ca, bob.Email, "wrong-1-"+randHex(4), "first wrong password, at A")
		loginFails(t, ca, bob.Email, "wrong-2-"+randHex(4), "second wrong password, at A")
		loginFails(t, cb, bob.Email, "wrong-3-"+randHex(4), "third wrong password, at B")
		loginFails(t, ca, bob.Email, bob.Secret, "right password at A, account locked")
		loginFails(t, cb, bob.Email, bob.Secret, "right password at B, account locked")
	})
}

// loginStatus logs u in at c and returns the status and, on 200, the
// session.
func loginStatus(c *amClient, u *testUser) (int, amSession, error) {
	var s amSession
	resp, body, err := c.post("/session", "application/json", loginJSON(u.Email, 0, u.Secret))
	if err != nil {
		return 0, s, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &s); err != nil || s.APIKey == "" {
			return resp.StatusCode, s, fmt.Errorf("login answer %q: %v", body, err)
		}
	}
	return resp.StatusCode, s, nil
}

// REL-05: Redis with `appendonly yes` and `appendfsync always` is killed
// (SIGKILL) during a burst of logins on two nodes and restarted: every
// login that was answered 200 still verifies, on a node started afterwards
// with a cold cache; logins while Redis is down are answered 503 (REL-01).
func TestRedisKillRestartREL05(t *testing.T) {
	t.Parallel()
	e := newRedisEnv(t, redistest.Options{AppendOnly: true})
	up := newUpstream(t)
	o := gwOpts{Global: noThrottle}
	a, b := e.node(t, up, o, ""), e.node(t, up, o, "")
	clients := []*amClient{newClient(t, a.URL("")), newClient(t, b.URL(""))}

	var (
		mu       sync.Mutex
		acked    []amSession
		statuses = map[int]int{}
		failures []error
		killed   atomic.Bool
		downs    atomic.Int64 // refused logins after the kill
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := []*testUser{alice, bob}[(w+i)%2]
				code, s, err := loginStatus(clients[(w+i)%2], u)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err)
				case code == http.StatusOK:
					acked = append(acked, s)
				default:
					statuses[code]++
					if killed.Load() {
						downs.Add(1)
					}
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, "1000 acknowledged logins", func() bool { return count() >= 1000 })
	e.srv.Kill()
	killed.Store(true)
	waitFor(t, "20 logins refused while Redis is down", func() bool { return downs.Load() >= 20 })
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d logins got no answer, first: %v", len(failures), failures[0])
	}
	for code, n := range statuses {
		if code != http.StatusServiceUnavailable {
			t.Errorf("%d logins answered %d, want only 200 or 503 (REL-01)", n, code)
		}
	}

	e.srv.Restart()
	for i, c := range clients {
		waitFor(t, fmt.Sprintf("a login at node %d after the restart", i), func() bool {
			code, _, err := loginStatus(c, alice)
			return err == nil && code == http.StatusOK
		})
	}
	fresh := newClient(t, e.nodeURL(t, up))
	for i, s := range acked {
		if resp, body := signedGet(t, fresh, s, "after-restart"); resp.StatusCode != http.StatusOK {
			t.Errorf("acknowledged session %d of %d lost: %d %s", i, len(acked), resp.StatusCode, body)
		}
		if i%10 == 0 {
			mustGet200(t, clients[i%2], s, "after-restart-old-node")
		}
	}
	t.Logf("%d logins acknowledged before the SIGKILL, %d refused with 503 while Redis was down; all acknowledged sessions verified on a new node",
		len(acked), statuses[http.StatusServiceUnavailable])
}

// nodeURL starts one more node on the shared Redis and returns its base
// URL.
func (e *redisEnv) nodeURL(t *testing.T, up *upstream) string {
	t.Helper()
	return e.node(t, up, gwOpts{}, "").URL("")
}

// REL-01, REL-10: while Redis is stalled (SIGSTOP), a signed request whose
// session is not in the key cache is answered 503 with Retry-After within
// about dial_timeout + read_timeout, never 401 and never forwarded; a login
// is answered 503 and issues nothing; after SIGCONT the same session works.
func TestRedisStalledREL01REL10(t *testing.T) {
	t.Parallel()
	e := newRedisEnv(t, redistest.Options{})
	up := newUpstream(t)
	a := e.node(t, up, gwOpts{}, "", "dial_timeout 500ms", "read_timeout 300ms")
	c := newClient(t, a.URL(""))
	adm := newAdminClient(t, a)
	sessionsPath := fmt.Sprintf("/sessiongate/users/%d/sessions", alice.ID)
	count := func() int {
		out := adm.must(t, http.StatusOK, http.MethodGet, sessionsPath, "")
		l, _ := out["sessions"].([]any)
		return len(l)
	}
	s := c.login(t, alice) // logged in, never used: not in the key cache
	before := count()
	hits := up.Hits()

	e.srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			e.srv.Resume()
		}
	}()
	start := time.Now()
	resp, body := signedGet(t, c, s, "stalled")
	took := time.Since(start)
	expectRefusal(t, "signed request with Redis stalled", resp, body, http.StatusServiceUnavailable, "store_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if up.Hits() != hits {
		t.Error("a request was forwarded while the store could not answer")
	}
	start = time.Now()
	resp, body, err := c.post("/session", "application/json", loginJSON(alice.Email, 0, alice.Secret))
	loginTook := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	expectRefusal(t, "login with Redis stalled", resp, body, http.StatusServiceUnavailable, "store_unavailable")
	if bytes.Contains(body, []byte("api_key")) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("login during the stall: %v %s", resp.Header, body)
	}
	t.Logf("with Redis stalled: signed request answered 503 after %s, login after %s (dial_timeout 500ms, read_timeout 300ms)",
		took.Round(time.Millisecond), loginTook.Round(time.Millisecond))

	e.srv.Resume()
	resumed = true
	resumedAt := time.Now()
	for {
		resp, body := signedGet(t, c, s, "resumed")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Since(resumedAt) > hangGuard {
			t.Fatalf("after SIGCONT: %d %s", resp.StatusCode, body)
		}
	}
	t.Logf("the session worked again %s after SIGCONT", time.Since(resumedAt).Round(time.Millisecond))
	checkForwarded(t, up.Last(t), alice)
	if after := count(); after != before {
		t.Errorf("alice had %d sessions before the stall and %d after: the refused login issued one", before, after)
	}
}

// subCutter is a TCP proxy between one node and Redis that can keep that
// node's subscription down while its other commands still work: while cut,
// a connection that sends SUBSCRIBE is closed instead of forwarded, so the
// node cannot subscribe again until the cut ends.
type subCutter struct {
	ln      net.Listener
	target  string
	cut     atomic.Bool
	refused atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newSubCutter(t *testing.T, target string) *subCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &subCutter{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *subCutter) Addr() string { return p.ln.Addr().String() }

func (p *subCutter) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

// hold registers conns so close can end them; false once closed.
func (p *subCutter) hold(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *subCutter) release(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *subCutter) pipe(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.hold(client, server) {
		client.Close()
		server.Close()
		return
	}
	defer p.release(client, server)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(client, server)
		p.release(client, server)
	}()
	buf := make([]byte, 32<<10)
	var tail []byte // the end of the previous read: a command may span two
	for {
		n, err := client.Read(buf)
		if n > 0 {
			window := append(tail, buf[:n]...)
			if p.cut.Load() && bytes.Contains(bytes.ToLower(window), []byte("subscribe")) {
				p.refused.Add(1)
				return
			}
			if _, err := server.Write(buf[:n]); err != nil {
				return
			}
			tail = append([]byte(nil), window[max(0, len(window)-len("subscribe")):]...)
		}
		if err != nil {
			return
		}
	}
}

func (p *subCutter) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// REL-04: B's subscription is cut (CLIENT KILL TYPE pubsub, and a proxy
// that keeps B from subscribing again) while A logs a session out. B misses
// the invalidation and still serves the session from its cache (bounded by
// cache_ttl, REL-03); the moment B has subscribed again it has flushed its
// cache (the flush counter on its /metrics rose) and refuses the session.
func TestRedisSubscriptionCutREL04(t *testing.T) {
	t.Parallel()
	e := newRedisEnv(t, redistest.Options{})
	px := newSubCutter(t, e.srv.Addr())
	up := newUpstream(t)
	a := e.node(t, up, gwOpts{}, "")
	b := e.node(t, up, gwOpts{}, px.Addr())
	ca, cb := newClient(t, a.URL("")), newClient(t, b.URL(""))

	s := ca.login(t, alice)
	mustGet200(t, cb, s, "warm") // now in B's key cache
	flushesB := cacheFlushes(t, b)

	px.cut.Store(true)
	killed, err := e.srv.Client().Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if killed < 2 {
		t.Fatalf("CLIENT KILL TYPE pubsub ended %d subscriptions, want both nodes'", killed)
	}
	waitFor(t, "B's attempt to subscribe again", func() bool { return px.refused.Load() >= 1 })

	resp, body, err := ca.logout(s)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("logout at A: %v %v %s", err, resp, body)
	}
	resp, body = signedGet(t, ca, s, "a-after-logout")
	expectRefusal(t, "A after its logout", resp, body, http.StatusUnauthorized, "unknown_session")
	// Without a subscription B cannot know: it serves its cached copy. If
	// it refused here, the cut did not hold and the rest proves nothing.
	if resp, body := signedGet(t, cb, s, "b-during-cut"); resp.StatusCode != http.StatusOK {
		t.Fatalf("B during the cut: %d %s, want 200 from its cache", resp.StatusCode, body)
	}
	if v := cacheFlushes(t, b); v != flushesB {
		t.Fatalf("B flushed its cache during the cut (%v → %v): it was not cut", flushesB, v)
	}

	px.cut.Store(false)
	restored := time.Now()
	waitFor(t, "B's flush on subscribing again", func() bool { return cacheFlushes(t, b) > flushesB })
	resubscribed := time.Since(restored)
	resp, body = signedGet(t, cb, s, "b-after-resubscribe")
	expectRefusal(t, "B once it subscribed again", resp, body, http.StatusUnauthorized, "unknown_session")
	t.Logf("B subscribed again %s after the cut ended (%d attempts refused during the cut); its first request afterwards was refused",
		resubscribed.Round(time.Millisecond), px.refused.Load())
}

// REL-01: a wrong Redis password fails the config load: Caddy exits with
// a message naming the redis store, and the password appears nowhere in
// its output.
func TestRedisWrongPasswordREL01(t *testing.T) {
	t.Parallel()
	e := newRedisEnv(t, redistest.Options{})
	wrong := "wrong-redis-password-" + randHex(8)
	o := e.gwOpts(gwOpts{}, "")
	o.Env = append(o.Env, "SG_REDIS_PASSWORD="+wrong) // the last value of a key wins
	g := prepareGateway(t, nil, o)
	if err := g.start(); err == nil {
		t.Fatal("Caddy started with a wrong Redis password")
	}
	if g.Running() {
		t.Fatal("Caddy still running after a failed load")
	}
	logs := g.Logs()
	for _, want := range []string{"redis", e.srv.Addr(), "start-up probe failed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("output does not contain %q:\n%s", want, tail(logs, 3000))
		}
	}
	for _, secret := range []string{wrong, e.srv.Password()} {
		if strings.Contains(logs, secret) {
			t.Errorf("a Redis password appears in the output")
		}
	}
}

// SEC-10, SEC-17, SEC-29 across nodes: the sxt flow split over two nodes.
// A challenge issued by A is answered at B and only once; the key
// registered at B logs in at A; a refresh at A retires the old access token
// on B; a logout at B ends access and refresh at A.
func TestRedisSxtTwoNodes(t *testing.T) {
	t.Parallel()
	e := newRedisEnv(t, redistest.Options{})
	up := newUpstream(t)
	o := gwOpts{Sxt: "registration open"}
	a, b := e.node(t, up, o, ""), e.node(t, up, o, "")
	ca, cb := newSxtClient(t, a), newSxtClient(t, b)
	k := randomSxtKey(t)

	code := ca.code(t, "walker")
	resp, body := cb.token(t, "walker", code, k)
	tk := parseSxtTokens(t, "A's code answered at B", resp, body)
	if resp, body = ca.token(t, "walker", code, k); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the same code again at A: %d %s, want 401 (SEC-29)", resp.StatusCode, body)
	}
	if resp, body = ca.do(t, http.MethodGet, ca.base+"/auth/idexists/walker", nil); string(body) != "true" {
		t.Errorf("idexists at A after registering at B: %d %s", resp.StatusCode, body)
	}
	tkA := ca.login(t, "walker", k) // the key registered at B works at A

	for _, n := range []struct {
		g *gateway
		c *sxtClient
	}{{a, ca}, {b, cb}} {
		if resp, body := n.c.get(t, n.g, "/orders", tk.AccessToken); resp.StatusCode != http.StatusOK {
			t.Fatalf("bearer GET: %d %s", resp.StatusCode, body)
		}
		if up.Last(t).Header.Get("X-Auth-Username") != "walker" || up.Last(t).Header.Get("Authorization") != "" {
			t.Errorf("upstream saw %v", up.Last(t).Header)
		}
	}

	// untilInvalid polls until the token is refused as invalid_token at
	// c's node; until then only 200 (a cached copy) is acceptable.
	untilInvalid := func(c *sxtClient, g *gateway, tok, what string) {
		t.Helper()
		since := time.Now()
		for {
			resp, body := c.get(t, g, "/orders", tok)
			if resp.StatusCode == http.StatusUnauthorized {
				expectRefusal(t, what, resp, body, http.StatusUnauthorized, "invalid_token")
				return
			}
			if resp.StatusCode != http.StatusOK || time.Since(since) > hangGuard {
				t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
			}
		}
	}

	resp, body = ca.refresh(t, tk.RefreshToken)
	tk2 := parseSxtTokens(t, "refresh at A", resp, body)
	untilInvalid(cb, b, tk.AccessToken, "the old access token at B after a refresh at A (SEC-17)")
	if resp, body := cb.get(t, b, "/orders", tk2.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("the new access token at B: %d %s", resp.StatusCode, body)
	}

	resp, body = cb.do(t, http.MethodPost, cb.base+"/auth/logout", nil, "Authorization", "Bearer "+tk2.AccessToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout at B: %d %s", resp.StatusCode, body)
	}
	untilInvalid(ca, a, tk2.AccessToken, "the access token at A after a logout at B (SEC-10)")
	resp, body = ca.refresh(t, tk2.RefreshToken)
	expectRefusal(t, "refresh at A after a logout at B", resp, body, http.StatusBadRequest, "invalid_grant")
	if resp, body := cb.get(t, b, "/orders", tkA.AccessToken); resp.StatusCode != http.StatusOK {
		t.Errorf("the other session of the user at B: %d %s", resp.StatusCode, body)
	}
}
