package e2e

// Helpers shared by the hardening tests (faults_test.go, forgery_test.go,
// badinput_test.go): a videntity user, a byte-exact HTTP/1.1 client over
// raw sockets, an upstream that holds requests, the bolt file read after the
// gateway stopped, and the process's goroutine and descriptor counts.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/store/bolt"
)

// ---------------------------------------------------------------------------
// Abuse controls

// limitsOff is a login_limits block (gwOpts.Limits) with every control off,
// the signature lock included. The forgery and bad-input tests check each
// request on its own merits: under the default lock, 20 bad signatures on a
// session would make later requests of that session skip the window search
// and the body variants, so later cases would be refused for the lock and
// not for what they test.
const limitsOff = `login_limits {
			max_failures off
			ip_rate off
			global_rate off
			signature_failures off
		}`

// ---------------------------------------------------------------------------
// Videntity user

// vidUser is a static user that can log in over videntity (username,
// password, account_number).
type vidUser struct {
	Name, Account, Secret, PHC string
	ID                         int64
}

// newVidUser makes a user with a canary secret and a cheap hash.
func newVidUser(t *testing.T, name string, id int64) *vidUser {
	t.Helper()
	u := &vidUser{Name: name, ID: id, Account: fmt.Sprintf("1000000000%05d", id),
		Secret: "canary-" + name + "-" + randHex(10)}
	u.PHC = enginetest.Hash(t, u.Secret)
	return u
}

// block is the user's entry for the global sessiongate block (gwOpts.Global).
func (u *vidUser) block() string {
	return fmt.Sprintf("\t\tuser %s {\n\t\t\tid %d\n\t\t\temail %s@example.test\n\t\t\taccount_number %s\n\t\t\tpassword_hash %q\n\t\t}\n",
		u.Name, u.ID, u.Name, u.Account, u.PHC)
}

// vidLogin logs u in over videntity and returns the session key.
func vidLogin(t *testing.T, g *gateway, u *vidUser) string {
	t.Helper()
	status, a, body := videntityPost(t, g, "/session/login",
		url.Values{"username": {u.Name}, "password": {u.Secret}, "account_number": {u.Account}})
	if status != http.StatusOK || a.Status != "SUCCESS" || a.SessionKey == "" {
		t.Fatalf("videntity login of %s: %d %s", u.Name, status, body)
	}
	return a.SessionKey
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 client

// rawAnswer is one response read off a raw connection.
type rawAnswer struct {
	Status int
	Header http.Header
	Body   []byte
}

// rawConn is one kept-alive connection on which requests are written byte
// for byte, so that tests can send what net/http would refuse or normalise.
// Not safe for concurrent use.
type rawConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

// rawAttempts bounds how often a request whose answer was lost to a
// connection reset is sent again (on a fresh connection).
const rawAttempts = 3

// roundTrip writes req and reads one response. When the server closes the
// connection (it does after a framing error) the next call dials anew. A
// request that gets no answer (a kept-alive connection the server closed
// meanwhile, or a reset that destroyed the answer) is sent again on a fresh
// connection, up to rawAttempts times in all.
func (rc *rawConn) roundTrip(req []byte) (rawAnswer, error) {
	var err error
	for range rawAttempts {
		if rc.c == nil {
			c, derr := net.DialTimeout("tcp", rc.addr, 5*time.Second)
			if derr != nil {
				return rawAnswer{}, fmt.Errorf("dial %s: %w", rc.addr, derr)
			}
			rc.c, rc.br = c, bufio.NewReader(c)
		}
		_ = rc.c.SetDeadline(time.Now().Add(20 * time.Second)) // hang guard only
		var a rawAnswer
		if a, err = rc.exchange(req); err == nil {
			return a, nil
		}
		rc.close()
	}
	return rawAnswer{}, err
}

func (rc *rawConn) exchange(req []byte) (rawAnswer, error) {
	if _, err := rc.c.Write(req); err != nil {
		return rawAnswer{}, fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return rawAnswer{}, fmt.Errorf("read response: %w", err)
	}
	body, err := readBody(resp)
	if err != nil {
		return rawAnswer{}, err
	}
	if resp.Close {
		rc.close()
	}
	return rawAnswer{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// readBody reads a response body. A body delimited by the end of the
// connection may end in a reset instead of a FIN: a server that refuses a
// request it could not parse closes with the rest of the request unread, and
// the kernel then resets. That ends the body as surely as a FIN.
func readBody(resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil && !(resp.ContentLength < 0 && resp.Close && isReset(err)) {
		return body, fmt.Errorf("read response body: %w", err)
	}
	return body, nil
}

func (rc *rawConn) close() {
	if rc.c != nil {
		rc.c.Close()
		rc.c, rc.br = nil, nil
	}
}

// rawExchange writes raw on a new connection, half-closes it if halfClose
// (so a server waiting for more body bytes sees the end of the stream), and
// reads every response until the server closes the connection. The
// deadline is a hang guard, not an assertion. An exchange whose first
// answer is lost to a connection reset is tried again, up to rawAttempts
// times in all.
func rawExchange(addr string, raw []byte, halfClose bool) ([]rawAnswer, error) {
	var (
		out []rawAnswer
		err error
	)
	for range rawAttempts {
		if out, err = rawExchangeOnce(addr, raw, halfClose); err == nil || len(out) > 0 || !isReset(err) {
			return out, err
		}
	}
	return out, err
}

func rawExchangeOnce(addr string, raw []byte, halfClose bool) ([]rawAnswer, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return nil, fmt.Errorf("write raw request: %w", err)
	}
	if halfClose {
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return nil, fmt.Errorf("half-close: %w", err)
		}
	}
	br := bufio.NewReader(c)
	var out []rawAnswer
	for {
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) || (isReset(err) && len(out) > 0) {
				return out, nil
			}
			return out, fmt.Errorf("wait for response %d: %w", len(out)+1, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out, fmt.Errorf("read response %d: %w", len(out)+1, err)
		}
		body, err := readBody(resp)
		if err != nil {
			return out, fmt.Errorf("response %d: %w", len(out)+1, err)
		}
		out = append(out, rawAnswer{Status: resp.StatusCode, Header: resp.Header, Body: body})
		if resp.Close {
			return out, nil
		}
	}
}

// isReset reports a connection reset: a server that closes a connection
// with unread request bytes in its buffer resets it.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// rawRequest renders an HTTP/1.1 request: the request line, Host, the given
// header lines in order, Content-Length when body is not nil (unless a
// header line already frames the body), a blank line and the body.
func rawRequest(host, method, target string, headers []string, body []byte) []byte {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	framed := false
	for _, h := range headers {
		b.WriteString(h + "\r\n")
		name, _, _ := strings.Cut(h, ":")
		if n := strings.ToLower(name); n == "content-length" || n == "transfer-encoding" {
			framed = true
		}
	}
	if body != nil && !framed {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return []byte(b.String())
}

// ---------------------------------------------------------------------------
// Holding upstream

// holdUpstream answers 200 only once the test releases it, so requests can
// be kept in flight across a signal.
type holdUpstream struct {
	srv      *httptest.Server
	release  chan struct{}
	once     sync.Once
	inFlight atomic.Int64
	done     atomic.Int64
}

func newHoldUpstream(t *testing.T) *holdUpstream {
	t.Helper()
	u := &holdUpstream{release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.inFlight.Add(1)
		select {
		case <-u.release:
		case <-r.Context().Done():
			u.inFlight.Add(-1)
			return
		}
		u.inFlight.Add(-1)
		u.done.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"held":true,"user":%q}`+"\n", r.Header.Get("X-Auth-User-Id"))
	}))
	t.Cleanup(func() {
		u.Release()
		u.srv.Close()
	})
	return u
}

// Addr is host:port of the upstream.
func (u *holdUpstream) Addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// Release lets every held request (and every later one) through.
func (u *holdUpstream) Release() { u.once.Do(func() { close(u.release) }) }

// ---------------------------------------------------------------------------
// Process control

// sigtermNoWait sends SIGTERM to the gateway's process without waiting, and
// returns a function that waits (at most grace, then SIGKILL) for the exit
// and reports whether it came within grace. The gateway counts as stopped
// from now on, so its cleanup does not signal again.
func sigtermNoWait(t *testing.T, g *gateway) func(grace time.Duration) bool {
	t.Helper()
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd, g.done = nil, nil
	g.mu.Unlock()
	if cmd == nil {
		t.Fatal("sigterm: gateway not running")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sigterm: %v", err)
	}
	var once sync.Once
	var inTime bool
	wait := func(grace time.Duration) bool {
		once.Do(func() {
			select {
			case <-done:
				inTime = true
			case <-time.After(grace):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		return inTime
	}
	t.Cleanup(func() { wait(10 * time.Second) })
	return wait
}

// goroutines reads the process's goroutine count from the admin endpoint's
// pprof index ("goroutine profile: total N").
func goroutines(g *gateway) (int, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(g.AdminURL("/debug/pprof/goroutine?debug=1"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("goroutine profile: %w", err)
	}
	_, n, ok := strings.Cut(strings.TrimSpace(line), "total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile header %q", line)
	}
	return strconv.Atoi(n)
}

// openFDs counts the process's open file descriptors.
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// ---------------------------------------------------------------------------
// The bolt file, read while the gateway is stopped

// storeView is what a bolt file holds for some users.
type storeView struct {
	Sessions map[string]caddyauth.Session
	Counts   map[caddyauth.Dialect]int
}

// readStore opens the bolt file of a stopped gateway, runs bbolt's
// consistency check, and reads the sessions of users and the per-dialect
// counts. The short timeout is the proof that nobody holds the lock.
func readStore(t *testing.T, path string, users ...int64) storeView {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("open the bolt file of the stopped gateway: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("close bolt file: %v", err)
		}
	}()
	if err := st.Check(); err != nil {
		t.Errorf("bolt consistency check (tx.Check): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := storeView{Sessions: map[string]caddyauth.Session{}}
	for _, id := range users {
		ss, err := st.ListUserSessions(ctx, id)
		if err != nil {
			t.Fatalf("list sessions of user %d: %v", id, err)
		}
		for _, s := range ss {
			v.Sessions[s.ID] = *s
		}
	}
	if v.Counts, err = st.CountSessions(ctx); err != nil {
		t.Fatalf("count sessions: %v", err)
	}
	return v
}
