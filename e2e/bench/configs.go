package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// authKind is how the load generator authenticates each request.
type authKind int

const (
	authNone        authKind = iota
	authAmatino              // X-Session-ID + X-Signature (current clients: ts ++ path), one session
	authAmatinoMany          // the same over many preloaded sessions (sessions_1m)
	authBasic                // Authorization: Basic
	authSxt                  // Authorization: Bearer <access token>
	authVidentity            // X-Session-Key: <session key>
)

// check is one DESIGN.md target: a per-round value compared with a bound;
// the median over rounds decides met/missed.
type check struct {
	Label string                               // e.g. "rps ratio vs plain"
	Op    string                               // ">=" or "<="
	Bound float64                              // e.g. 0.95
	Value func(m *measurement) (float64, bool) // per-round value; false when not computable
	// EveryRound: the bound must hold in every round, not only for the
	// median (a count of failures, where one bad round is a failure).
	EveryRound bool
	// Memory: the value is a memory figure, which foreign CPU load does
	// not distort, so contended rounds count too.
	Memory bool
}

// config is one benchmark configuration.
type config struct {
	Name        string
	Description string
	Method      string
	Path        string
	BodySize    int
	Auth        authKind
	Legacy      bool   // sign ts ++ path ++ raw body (older clients)
	HashPolicy  string // "cheap" (measured user, insecure_allow_weak) or "default"
	Flood       bool   // run logins at full hash concurrency during the measurement
	// Store is the session store: "" (bolt in the Caddy's temp dir) or
	// "redis" (the bench's redis-server, pinned with the generator).
	Store string
	// CacheSize is the global cache_size: 0 leaves the default (100 000),
	// -1 disables the key cache.
	CacheSize int
	// Big marks configurations that run only with -big or -only (they
	// take minutes: sessions_1m preloads a million sessions).
	Big bool
	// Active is the working set of the preloaded-sessions configurations:
	// the measurement draws uniformly from this many of the sessions
	// (0: all of them).
	Active int
	Checks []check
	// Baseline is the plain reverse_proxy configuration with the same
	// request shape (method, body size) that ratios are taken against.
	Baseline string
}

func ratioRPS(m *measurement) (float64, bool)  { return m.RatioRPS, m.RatioRPS > 0 }
func ratioP99(m *measurement) (float64, bool)  { return m.RatioP99, m.RatioP99 > 0 }
func floodP99(m *measurement) (float64, bool)  { return m.FloodP99VsQuiet, m.FloodP99VsQuiet > 0 }
func failedCnt(m *measurement) (float64, bool) { return float64(m.Failed), true }
func peakOver(m *measurement) (float64, bool) {
	return m.PeakRSSOverBaselineMiB, m.Baseline != "" && m.CaddyHWMKiB > 0
}
func peakAnonOver(m *measurement) (float64, bool) {
	return m.PeakAnonOverBaselineMiB, m.Baseline != "" && m.CaddyPeakAnonKiB > 0
}

// rpsCheck is the usual throughput target against the configuration's
// baseline.
func rpsCheck(base string, bound float64) check {
	return check{Label: "rps ratio vs " + base, Op: ">=", Bound: bound, Value: ratioRPS}
}

var allConfigs = []*config{
	{Name: "plain", Description: "reverse_proxy only (baseline for GETs)", Method: "GET", Path: "/entities", Auth: authNone},
	{Name: "plain_post_1k", Description: "reverse_proxy only, POST 1 KiB (baseline for 1 KiB POSTs)", Method: "POST",
		Path: "/entities", BodySize: 1 << 10, Auth: authNone, Baseline: "plain"},
	{Name: "plain_post_64k", Description: "reverse_proxy only, POST 64 KiB (baseline for 64 KiB POSTs)", Method: "POST",
		Path: "/entities", BodySize: 64 << 10, Auth: authNone, Baseline: "plain"},
	{Name: "amatino_get", Description: "amatino signed GET, cache hit", Method: "GET", Path: "/entities",
		Auth: authAmatino, HashPolicy: "cheap", Baseline: "plain",
		Checks: []check{rpsCheck("plain", 0.95), {Label: "p99 ratio vs plain", Op: "<=", Bound: 1.15, Value: ratioP99}}},
	{Name: "amatino_post_1k", Description: "amatino signed POST, 1 KiB body (body not signed)", Method: "POST",
		Path: "/entities", BodySize: 1 << 10, Auth: authAmatino, HashPolicy: "cheap", Baseline: "plain_post_1k",
		Checks: []check{rpsCheck("plain_post_1k", 0.95)}},
	{Name: "amatino_post_64k", Description: "amatino signed POST, 64 KiB body (body not signed)", Method: "POST",
		Path: "/entities", BodySize: 64 << 10, Auth: authAmatino, HashPolicy: "cheap", Baseline: "plain_post_64k",
		Checks: []check{rpsCheck("plain_post_64k", 0.95)}},
	{Name: "amatino_post_64k_legacy", Description: "amatino POST, 64 KiB, legacy raw-body signature", Method: "POST",
		Path: "/entities", BodySize: 64 << 10, Auth: authAmatino, Legacy: true, HashPolicy: "cheap",
		Baseline: "plain_post_64k", Checks: []check{rpsCheck("plain_post_64k", 0.75)}},
	{Name: "sxt_get", Description: "sxt bearer GET (registered user in the store), cache hit", Method: "GET",
		Path: "/entities", Auth: authSxt, HashPolicy: "cheap", Baseline: "plain",
		Checks: []check{rpsCheck("plain", 0.97)}},
	{Name: "videntity_get", Description: "videntity X-Session-Key GET, cache hit", Method: "GET", Path: "/entities",
		Auth: authVidentity, HashPolicy: "cheap", Baseline: "plain", Checks: []check{rpsCheck("plain", 0.97)}},
	{Name: "amatino_redis_get", Description: "amatino signed GET, redis store, cache hit (replay marks in redis)",
		Method: "GET", Path: "/entities", Auth: authAmatino, HashPolicy: "cheap", Store: "redis", Baseline: "plain",
		Checks: []check{rpsCheck("plain", 0.90)}},
	{Name: "amatino_redis_nocache", Description: "amatino signed GET, redis store, key cache off (cache_size -1)",
		Method: "GET", Path: "/entities", Auth: authAmatino, HashPolicy: "cheap", Store: "redis", CacheSize: -1,
		Baseline: "plain"},
	{Name: "basic_auth", Description: "Caddy basic_auth, bcrypt (built-in peer, cached)", Method: "GET",
		Path: "/entities", Auth: authBasic, Baseline: "plain"},
	{Name: "login_flood", Description: "amatino signed GET during a login flood (default argon2id)", Method: "GET",
		Path: "/entities", Auth: authAmatino, HashPolicy: "default", Flood: true, Baseline: "plain",
		Checks: []check{{Label: "p99 vs amatino_get p99 (same round)", Op: "<=", Bound: 2.0, Value: floodP99},
			{Label: "failed signed requests", Op: "<=", Bound: 0, Value: failedCnt, EveryRound: true}}},
	{Name: "sessions_1m", Description: "amatino signed GET, 1 000 000 live sessions in bolt, default cache; a random working set of 200 000 of them",
		Method: "GET", Path: "/entities", Auth: authAmatinoMany, HashPolicy: "cheap", Big: true, Active: 200_000,
		Baseline: "plain", Checks: sessionChecks},
	{Name: "sessions_1m_uniform", Description: "the same, every request a uniformly random one of all 1 000 000 sessions (worst case for the cache)",
		Method: "GET", Path: "/entities", Auth: authAmatinoMany, HashPolicy: "cheap", Big: true,
		Baseline: "plain", Checks: sessionChecks},
}

// sessionChecks are DESIGN.md's targets for 1 M live sessions.
var sessionChecks = []check{rpsCheck("plain", 0.90),
	{Label: "peak RSS (VmHWM) − plain's, MiB", Op: "<=", Bound: 100, Value: peakOver, Memory: true},
	{Label: "peak anonymous RSS − plain's, MiB", Op: "<=", Bound: 100, Value: peakAnonOver, Memory: true}}

// selectConfigs returns the configurations to run, plain first. plain is
// always included, so is each selected configuration's baseline, and
// amatino_get whenever login_flood is (its p99 is the quiet baseline). Big
// configurations run with big or when named in only.
func selectConfigs(only string, big bool) ([]*config, error) {
	want := map[string]bool{"plain": true}
	if only == "" {
		for _, c := range allConfigs {
			want[c.Name] = !c.Big || big
		}
	}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		found := false
		for _, c := range allConfigs {
			found = found || c.Name == n
		}
		if !found {
			return nil, fmt.Errorf("unknown configuration %q", n)
		}
		want[n] = true
	}
	if big && only != "" {
		for _, c := range allConfigs {
			want[c.Name] = want[c.Name] || c.Big
		}
	}
	if want["login_flood"] {
		want["amatino_get"] = true
	}
	for _, c := range allConfigs {
		if want[c.Name] && c.Baseline != "" {
			want[c.Baseline] = true
		}
	}
	var out []*config
	for _, c := range allConfigs {
		if want[c.Name] {
			out = append(out, c)
		}
	}
	return out, nil
}

// usesSessiongate reports whether c's Caddy runs the sessiongate app.
func (c *config) usesSessiongate() bool {
	return c.Auth != authNone && c.Auth != authBasic
}

// envMasterKey carries the master key to Caddy (master_key placeholder),
// for the stores whose key the bench must know: redis, and the preloaded
// bolt file of sessions_1m.
const envMasterKey = "SESSIONGATE_BENCH_MASTER_KEY"

// caddyfile renders the Caddyfile of c. seq numbers Caddy starts, so each
// redis configuration gets its own key prefix in the shared redis-server.
func (b *bench) caddyfile(c *config, dir string, admin, port, seq int) string {
	var g strings.Builder
	fmt.Fprintf(&g, "{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n", admin)
	site := ""
	switch c.Auth {
	case authBasic:
		site = fmt.Sprintf("\tbasic_auth {\n\t\t%s %s\n\t}\n", benchUser, b.bcryptHash)
	case authAmatino, authAmatinoMany, authSxt, authVidentity:
		g.WriteString("\tsessiongate {\n")
		if c.Store == "redis" {
			fmt.Fprintf(&g, "\t\tstore redis {\n\t\t\taddress %s\n\t\t\tkey_prefix sgbench%d:\n\t\t}\n", b.redis.addr, seq)
		} else {
			fmt.Fprintf(&g, "\t\tstore bolt %s\n", filepath.Join(dir, "sessions.db"))
		}
		if c.Store == "redis" || c.Auth == authAmatinoMany {
			fmt.Fprintf(&g, "\t\tmaster_key {env.%s}\n", envMasterKey)
		}
		if c.CacheSize != 0 {
			fmt.Fprintf(&g, "\t\tcache_size %d\n", c.CacheSize)
		}
		phc := b.cheapPHC
		if c.HashPolicy == "cheap" {
			g.WriteString("\t\thash {\n\t\t\ttime 1\n\t\t\tmemory 64KiB\n\t\t\tthreads 1\n\t\t\tinsecure_allow_weak\n\t\t}\n")
		} else {
			phc = b.defaultPHC // no hash block: default argon2id parameters, slots, queue
		}
		if c.Flood {
			// The abuse controls (on by default) would answer most of the
			// flood 429 before any hashing; the flood is about the hash pool.
			g.WriteString("\t\tlogin_limits {\n\t\t\tip_rate off\n\t\t\tglobal_rate off\n\t\t\tmax_failures off\n\t\t}\n")
		}
		fmt.Fprintf(&g, "\t\tuser %s {\n\t\t\tid %d\n\t\t\temail %s\n\t\t\taccount_number %s\n\t\t\tpassword_hash %q\n\t\t}\n",
			benchUser, benchUserID, benchEmail, benchAccount, phc)
		g.WriteString("\t}\n")
		switch c.Auth {
		case authSxt:
			site = "\tsessiongate {\n\t\tsxt {\n\t\t\tregistration open\n\t\t}\n\t}\n"
		case authVidentity:
			site = "\tsessiongate {\n\t\tvidentity\n\t}\n"
		default:
			site = "\tsessiongate {\n\t\tamatino\n\t}\n"
		}
	}
	g.WriteString("}\n\n")
	fmt.Fprintf(&g, "http://127.0.0.1:%d {\n\tbind 127.0.0.1\n%s\treverse_proxy %s\n}\n", port, site, b.upstreamAddr)
	return g.String()
}

const (
	benchUser    = "bench"
	benchUserID  = 1001
	benchEmail   = "bench@example.test"
	benchAccount = "100000000001001" // videntity account_number
	benchSxtUser = "bench-sxt"       // registered through sxt (a store user)
)

// caddyProc is one running Caddy.
type caddyProc struct {
	cmd   *exec.Cmd
	dir   string
	port  int
	admin int
	logs  *lockedBuffer
	done  chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep memory bounded; only the tail matters
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startCaddy writes c's Caddyfile into a fresh temp dir (with its own XDG
// dirs) and starts Caddy on it, pinned to CPU 1 when pinning is on; it
// returns once the site answers HTTP.
func (b *bench) startCaddy(c *config) (*caddyProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := b.tryStartCaddy(c)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func (b *bench) tryStartCaddy(c *config) (*caddyProc, error) {
	dir, err := os.MkdirTemp("", "sessiongate-bench-"+c.Name+"-")
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "config", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if c.Auth == authAmatinoMany {
		// A copy of the preloaded file per Caddy: Caddy writes to it (the
		// start-up probe, the janitor), and every round starts alike.
		if err := b.many.copyTo(filepath.Join(dir, "sessions.db")); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b.starts++
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(b.caddyfile(c, dir, ports[0], ports[1], b.starts)), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"run", "--config", file, "--adapter", "caddyfile"}
	var cmd *exec.Cmd
	if b.pinned {
		cmd = exec.Command(b.taskset, append([]string{"-c", "1", b.opts.caddyBin}, args...)...)
	} else {
		cmd = exec.Command(b.opts.caddyBin, args...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HOME="+filepath.Join(dir, "home"),
		envMasterKey+"="+base64.StdEncoding.EncodeToString(b.masterKey))
	p := &caddyProc{cmd: cmd, dir: dir, port: ports[1], admin: ports[0], logs: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start caddy: %w", err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()

	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("caddy (%s) exited before it was ready:\n%s", c.Name, p.logs.tail(3000))
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("caddy (%s) not ready within 30s:\n%s", c.Name, p.logs.tail(3000))
		}
		if resp, err := hc.Get(p.url("/")); err == nil {
			resp.Body.Close()
			return p, nil
		}
		time.Sleep(25 * time.Millisecond) // poll interval
	}
}

func (p *caddyProc) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(p.port) + path
}

// adminURL is a URL on Caddy's admin endpoint (metrics, expvar, pprof).
func (p *caddyProc) adminURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(p.admin) + path
}

// pid is Caddy's pid (taskset execs Caddy, so it is the same process).
func (p *caddyProc) pid() int { return p.cmd.Process.Pid }

// stop terminates Caddy (SIGTERM, SIGKILL after 10 s) and removes its dir.
func (p *caddyProc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	os.RemoveAll(p.dir)
}
