// Package e2e runs the custom Caddy binary (./xcaddy) as a separate process
// and talks to it over loopback like real clients do: the amatino wire format
// from WIRE.md, the admin API, and the CLI. Nothing here imports the
// product's signing code: the client is written from WIRE.md alone — except
// native_test.go, which drives the product's Go client (caddyauth/client)
// end to end; the native bad-input corpus has its own WIRE.md signer.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// caddyBin is the binary TestMain builds once for the whole package.
var caddyBin string

// repoRoot is the module root, the parent of this directory.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: getwd:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "sessiongate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	// The same command, with no extra flags, as `go build -o bin/caddy
	// ./xcaddy`, so the build cache is shared.
	build := exec.Command("go", "build", "-o", caddyBin, "./xcaddy")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building ./xcaddy:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: built ./xcaddy in %s\n", time.Since(start).Round(time.Millisecond))
	if err := makeUsers(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: test users:", err)
		return 1
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Test users

// testUser is a static user of the gateway config.
type testUser struct {
	Name   string
	ID     int64
	Email  string
	Secret string
	PHC    string
}

var (
	alice = &testUser{Name: "alice", ID: 42, Email: "alice@example.test"}
	bob   = &testUser{Name: "bob", ID: 43, Email: "bob@example.test"}
)

// makeUsers gives each user a unique canary secret (so SEC-44 can look for
// it in logs) and a cheap argon2id hash, so that logins cost microseconds.
// password.Hash refuses parameters below the floor; a Hasher with
// AllowWeakParams makes them, as the gateway's own `insecure_allow_weak`
// does.
func makeUsers() error {
	h, err := password.NewHasher(password.Config{Slots: 1, AllowWeakParams: true,
		Params: password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		return err
	}
	for _, u := range []*testUser{alice, bob} {
		u.Secret = "canary-secret-" + u.Name + "-" + randHex(12)
		if u.PHC, err = h.Hash(context.Background(), u.Secret); err != nil {
			return err
		}
		registerSecret("user secret", u.Secret)
		registerSecret("password hash", u.PHC)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Recording upstream

// recorded is one request the upstream received.
type recorded struct {
	Method     string
	RequestURI string
	Header     http.Header
	Trailer    http.Header
	Body       []byte
	SHA256     [32]byte
}

// upstream is the backend behind the gateway: it records every request and
// answers 200 JSON.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(),
			Trailer: r.Trailer.Clone(), Body: body, SHA256: sha256.Sum256(body)}
		u.mu.Lock()
		u.reqs = append(u.reqs, rec)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"user":%q}`+"\n", r.Header.Get("X-Auth-User-Id"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// Addr is host:port of the upstream.
func (u *upstream) Addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// Hits is how many requests reached the upstream.
func (u *upstream) Hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// Last is the last request the upstream received.
func (u *upstream) Last(t *testing.T) recorded {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received no request")
	}
	return u.reqs[len(u.reqs)-1]
}

// ---------------------------------------------------------------------------
// Gateway process

// gwOpts shapes the gateway's Caddyfile.
type gwOpts struct {
	// Amatino is the body of the main site's `amatino { }` block.
	Amatino string
	// Videntity also enables the videntity dialect on the main site.
	Videntity bool
	// Sxt, when not empty, enables the sxt dialect on the main site with
	// this as the body of its `sxt { }` block (one option per line).
	Sxt string
	// Native, when not empty, enables the native (RFC 9421) scheme on the
	// main site with this as the body of its `native { }` block (one option
	// per line; a comment line for the defaults).
	Native string
	// Site is extra lines for the main site's block.
	Site string
	// Global is extra lines for the global `sessiongate { }` block.
	Global string
	// Limits replaces the global block's login_limits block. Empty means
	// lockout and throttles off: most tests log in far more often, from
	// one IP, than the defaults allow; abuse_test.go turns them on.
	Limits string
	// Store, when set, replaces the global block's `store bolt …` line,
	// e.g. with a `store redis { … }` block (see redisStore in
	// redis_test.go; a redis store also needs a master_key in Global).
	Store string
	// Env is extra KEY=value environment of the Caddy process, for
	// {env.*} placeholders.
	Env []string
	// ExtraSites is appended to the Caddyfile (template: {{.Port2}},
	// {{.Upstream}} are available).
	ExtraSites string
	// Caddyfile, if set, replaces the whole generated file (same template
	// fields).
	Caddyfile string
}

// tmplData are the fields a Caddyfile template can use.
type tmplData struct {
	Admin, Port, Port2 int
	Upstream           string
	Dir                string
	Users              string
	Amatino, Global    string
	Limits             string
	Store              string
	Videntity          bool
	Sxt                string
	Native             string
	Site               string
	ExtraSites         string
}

const defaultCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	log {
		output stderr
		format json
		level DEBUG
	}
	sessiongate {
		{{if .Store}}{{.Store}}{{else}}store bolt {{.Dir}}/sessions.db{{end}}
		hash {
			time 1
			memory 64KiB
			threads 1
			slots 4
			queue 256
			insecure_allow_weak
		}
		{{if .Limits}}{{.Limits}}{{else}}login_limits {
			max_failures off
			ip_rate off
			global_rate off
		}{{end}}
{{.Users}}{{.Global}}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
{{.Site}}
	sessiongate {
		amatino {
{{.Amatino}}
		}
{{- if .Videntity}}
		videntity
{{- end}}
{{- if .Sxt}}
		sxt {
{{.Sxt}}
		}
{{- end}}
{{- if .Native}}
		native {
{{.Native}}
		}
{{- end}}
	}
	reverse_proxy {{.Upstream}}
}
{{.ExtraSites}}
`

func usersBlock(us ...*testUser) string {
	var b strings.Builder
	for _, u := range us {
		fmt.Fprintf(&b, "\t\tuser %s {\n\t\t\tid %d\n\t\t\temail %s\n\t\t\tpassword_hash %q\n\t\t}\n",
			u.Name, u.ID, u.Email, u.PHC)
	}
	return b.String()
}

// gateway is one Caddy process running a generated Caddyfile.
type gateway struct {
	t         *testing.T
	dir       string // temp dir: Caddyfile, bolt file, XDG dirs
	file      string // the Caddyfile
	admin     int
	port      int
	port2     int
	env       []string
	waitPorts []int

	logs *lockedBuffer

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error // of the last process that exited
}

// lockedBuffer collects the process's stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// freePorts asks the kernel for n free loopback ports, holding each
// listener until all are chosen and never handing out a port twice in this
// process, so two gateways (or two ports of one) cannot collide.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
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
			t.Fatalf("free port: %v", err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if usedPorts[p] {
			continue
		}
		usedPorts[p] = true
		ports = append(ports, p)
	}
	return ports
}

// newGateway writes the Caddyfile for o in a temp dir, with users alice and
// bob, upstream up, and starts Caddy. The process is killed at cleanup. If
// another process took one of the chosen ports before Caddy bound it, it
// tries again with new ports.
func newGateway(t *testing.T, up *upstream, o gwOpts) *gateway {
	t.Helper()
	for attempt := 1; ; attempt++ {
		g := prepareGateway(t, up, o)
		err := g.start()
		if err == nil {
			return g
		}
		if attempt < 3 && strings.Contains(g.Logs(), "address already in use") {
			t.Logf("port taken by another process, retrying: %v", err)
			g.Kill()
			continue
		}
		t.Fatal(err)
	}
}

func prepareGateway(t *testing.T, up *upstream, o gwOpts) *gateway {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t, 3)
	g := &gateway{t: t, dir: dir, admin: ports[0], port: ports[1], port2: ports[2], logs: &lockedBuffer{}}
	for _, sub := range []string{"data", "config", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	g.env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HOME="+filepath.Join(dir, "home"))
	g.env = append(g.env, o.Env...)
	src := o.Caddyfile
	if src == "" {
		src = defaultCaddyfile
	}
	upAddr := "127.0.0.1:9" // discard port: nothing listens, only for configs without an upstream
	if up != nil {
		upAddr = up.Addr()
	}
	data := tmplData{Admin: g.admin, Port: g.port, Port2: g.port2, Upstream: upAddr, Dir: dir,
		Users: usersBlock(alice, bob), Amatino: o.Amatino, Global: o.Global, Limits: o.Limits, Store: o.Store, Videntity: o.Videntity, Sxt: o.Sxt, Native: o.Native, Site: o.Site}
	extra, err := execTemplate(o.ExtraSites, data)
	if err != nil {
		t.Fatalf("extra sites template: %v", err)
	}
	data.ExtraSites = extra
	text, err := execTemplate(src, data)
	if err != nil {
		t.Fatalf("Caddyfile template: %v", err)
	}
	g.file = filepath.Join(dir, "Caddyfile")
	registerCaddyfileSecrets(text)
	if err := os.WriteFile(g.file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	g.waitPorts = []int{g.port}
	if strings.Contains(o.ExtraSites, "{{.Port2}}") || strings.Contains(o.Caddyfile, "{{.Port2}}") {
		g.waitPorts = append(g.waitPorts, g.port2)
	}
	t.Cleanup(g.cleanup)
	return g
}

func execTemplate(src string, data tmplData) (string, error) {
	tp, err := template.New("caddyfile").Option("missingkey=error").Parse(src)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tp.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Start runs Caddy on the gateway's files and waits until it is ready (at
// most 30 s); it fails the test otherwise.
func (g *gateway) Start() {
	g.t.Helper()
	if err := g.start(); err != nil {
		g.t.Fatal(err)
	}
}

// start runs Caddy and waits until the admin API answers, the main port
// answers as a sessiongate gateway (401 with the amatino challenge) and
// every other site port accepts connections.
func (g *gateway) start() error {
	g.mu.Lock()
	if g.cmd != nil {
		g.mu.Unlock()
		return fmt.Errorf("gateway already running")
	}
	cmd := exec.Command(caddyBin, "run", "--config", g.file, "--adapter", "caddyfile")
	cmd.Dir = g.dir
	cmd.Env = g.env
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		return fmt.Errorf("start caddy: %w", err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		g.mu.Lock()
		g.exitErr = err
		g.mu.Unlock()
		close(done)
	}()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		select {
		case <-done:
			return fmt.Errorf("caddy exited before it was ready:\n%s", tail(g.Logs(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy not ready within 30s:\n%s", tail(g.Logs(), 4000))
		}
		if g.ready(hc) {
			return nil
		}
		time.Sleep(25 * time.Millisecond) // poll interval, not synchronisation
	}
}

func (g *gateway) ready(hc *http.Client) bool {
	get := func(url string) (*http.Response, bool) {
		resp, err := hc.Get(url)
		if err != nil {
			return nil, false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, true
	}
	if resp, ok := get(g.AdminURL("/config/")); !ok || resp.StatusCode != http.StatusOK {
		return false
	}
	resp, ok := get(g.URL("/"))
	if !ok || resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="sessiongate"`) {
		return false
	}
	for _, p := range g.waitPorts[1:] {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return g.Running()
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 10 s).
func (g *gateway) Stop() { g.signal(syscall.SIGTERM, 10*time.Second) }

// Kill sends SIGKILL and waits for the process to exit.
func (g *gateway) Kill() { g.signal(syscall.SIGKILL, 10*time.Second) }

func (g *gateway) signal(sig syscall.Signal, grace time.Duration) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd, g.done = nil, nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-done
	if sig != syscall.SIGKILL {
		g.t.Errorf("caddy did not exit within %s of %v", grace, sig)
	}
}

func (g *gateway) cleanup() {
	g.Stop()
	// SEC-44 for every gateway: its output and the refusals its clients
	// received hold no secret the suite knows (canary_test.go).
	scanGatewayOutput(g.t, "caddy", g.Logs())
	for _, leak := range takeLeaks(g.port, g.port2, g.admin) {
		g.t.Errorf("SEC-44: %s", leak)
	}
	if g.t.Failed() {
		g.t.Logf("caddy output (tail, secrets redacted):\n%s", tail(suiteSecrets.redact(g.Logs()), 6000))
	}
}

// Pid is the running process's id.
func (g *gateway) Pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// ExitErr is the wait error of the last process that exited (nil: exit
// status 0).
func (g *gateway) ExitErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exitErr
}

// Running reports whether the process is still alive.
func (g *gateway) Running() bool {
	g.mu.Lock()
	done := g.done
	g.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Logs is everything the process wrote to stdout and stderr so far.
func (g *gateway) Logs() string { return g.logs.String() }

// URL is the main site's URL for path.
func (g *gateway) URL(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", g.port, path) }

// URL2 is the second site's URL for path.
func (g *gateway) URL2(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", g.port2, path)
}

// Addr is host:port of the main site.
func (g *gateway) Addr() string { return fmt.Sprintf("127.0.0.1:%d", g.port) }

// AdminURL is the admin API's URL for path.
func (g *gateway) AdminURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", g.admin, path)
}

// runCaddy runs the binary with args (a CLI subcommand) in the gateway's
// environment, bounded by timeout; it returns combined output and the error.
func (g *gateway) runCaddy(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, args...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("caddy %s: no exit within %s: %w", strings.Join(args, " "), timeout, ctx.Err())
	}
	return string(out), err
}

// Metrics fetches the admin /metrics text.
func (g *gateway) Metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// metricValue finds the sample of metric name whose labels are exactly
// labels (`k="v",k2="v2"`, in any order).
func metricValue(text, name, labels string) (float64, bool) {
	want := labelSet(labels)
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		var got map[string]string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				continue
			}
			got, rest = labelSet(rest[1:end]), rest[end+1:]
		case strings.HasPrefix(rest, " "):
			got = map[string]string{}
		default:
			continue // a longer metric name
		}
		if !reflect.DeepEqual(got, want) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

func labelSet(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1, for headers net/http would normalise or refuse to send

// rawDo writes raw to addr and reads one response.
func rawDo(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read raw response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read raw response body: %v", err)
	}
	checkRefusal("http://"+addr, resp.StatusCode, body) // SEC-44
	return resp, body
}

// jsonError decodes a refusal body {"error", "message"}.
func jsonError(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("refusal body is not JSON: %v: %q", err, body)
	}
	return e.Error
}

// expectRefusal checks status, JSON error code and, for 401,
// WWW-Authenticate.
func expectRefusal(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, resp.StatusCode, status, body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if got := jsonError(t, body); got != code {
		t.Errorf("%s: error %q, want %q (body %s)", what, got, code, body)
	}
	if status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", what)
	}
}
