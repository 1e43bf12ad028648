// Package redistest starts a real redis-server for tests: on a free loopback
// port, in a temporary directory, stopped when the test ends. Tests of the
// redis store and the end-to-end tests use it, so that what they exercise is
// the server the gateway runs against in production, not a stand-in.
//
// The binary redis-server must be on PATH (the Makefile installs Debian's
// package when it is missing); Start fails the test if it is not.
//
// A server can be killed (SIGKILL) and restarted on the same port and data
// directory, and paused (SIGSTOP) and resumed (SIGCONT), for the fault tests
// of SECURITY.md (REL-01, REL-04, REL-05, REL-10).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options says how to run the server. The zero value is a server without
// persistence (`--save "" --appendonly no`) and without a password.
type Options struct {
	// AppendOnly turns on the append-only file with `appendfsync always`:
	// every acknowledged write is on disk before the reply, so a SIGKILL
	// loses nothing that was acknowledged (REL-05).
	AppendOnly bool
	// Password, when set, is required from clients (`requirepass`).
	Password string
	// Args are extra `--name value` arguments for redis-server, appended
	// after the ones Options builds.
	Args []string
}

// startTimeout bounds how long Start and Restart wait for the server to
// answer PING (it may be replaying an append-only file).
const startTimeout = 20 * time.Second

// Server is one redis-server process. Its methods must not be called
// concurrently with each other.
type Server struct {
	t    testing.TB
	opts Options
	port int
	dir  string

	mu   sync.Mutex
	proc *process
}

// process is one run of redis-server. done is closed when it has exited.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server on a free loopback port in a fresh temporary
// directory, waits until it answers PING, and stops it when the test ends.
// It fails the test when the server cannot be started.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not on PATH (apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, opts: opts, dir: t.TempDir()}
	t.Cleanup(s.cleanup)
	// A port found free can be taken by someone else before redis-server
	// binds it; a few attempts make that race harmless.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		if lastErr = s.launch(bin); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir is the server's working directory (its append-only file lives there).
func (s *Server) Dir() string { return s.dir }

// Password is the password clients must give, or "".
func (s *Server) Password() string { return s.opts.Password }

// PID is the process id of the running server, or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Client returns a plain client of the server for the test's own checks and
// fault injection (CLIENT KILL, DUMP, ...), closed when the test ends.
func (s *Server) Client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{
		Addr:     s.Addr(),
		Password: s.opts.Password,
		// Protocol 2 keeps replies plain (no RESP3 maps or push frames),
		// which is what byte-level checks expect.
		Protocol:              2,
		DialTimeout:           2 * time.Second,
		ReadTimeout:           5 * time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill sends SIGKILL and waits until the process is gone: a crash, with no
// chance to write anything.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		s.t.Fatal("redistest: Kill: server is not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("redistest: SIGKILL redis-server: %v", err)
	}
	<-p.done
}

// Restart starts the server again on the same port and directory (so an
// append-only file is replayed) and waits until it answers PING. The server
// must have been killed first.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("redistest: Restart: server is still running; Kill it first")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	if err := s.launch(bin); err != nil {
		s.t.Fatalf("redistest: restart redis-server on port %d: %v", s.port, err)
	}
}

// Pause sends SIGSTOP: the server keeps its sockets (connections and dials
// still succeed at the TCP level) but answers nothing, like a stalled host.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume sends SIGCONT after Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("redistest: %v: server is not running", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: send %v to redis-server: %v", sig, err)
	}
}

// args builds the command line.
func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--save", "",
		"--logfile", "",
		"--appendfilename", "appendonly.aof",
	}
	if s.opts.AppendOnly {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		a = append(a, "--appendonly", "no")
	}
	if s.opts.Password != "" {
		a = append(a, "--requirepass", s.opts.Password)
	}
	return append(a, s.opts.Args...)
}

// launch starts the process and waits for PING. On failure the process is
// killed and the error carries the end of its log.
func (s *Server) launch(bin string) error {
	logPath := filepath.Join(s.dir, "redis-"+strconv.Itoa(s.port)+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) // #nosec G304 -- in the test's own temporary directory
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(bin, s.args()...) // #nosec G204 -- the redis-server binary the test found, with arguments it built
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setParentDeathSignal(cmd)

	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the thread that forked, so that
		// thread must live as long as the child: keep it locked to this
		// goroutine, which waits for the child's exit.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer logFile.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	if err := s.waitReady(p); err != nil {
		s.mu.Lock()
		s.proc = nil
		s.mu.Unlock()
		_ = cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%w; log:\n%s", err, tail(logPath))
	}
	return nil
}

// waitReady polls PING until the server answers PONG (not LOADING, not a
// refused connection), the process exits, or startTimeout passes. It speaks
// RESP itself rather than through go-redis, whose pool logs every refused
// dial while the server is still starting.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited during start-up (last PING: %v)", lastErr)
		default:
		}
		if lastErr = ping(s.Addr(), s.opts.Password); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not answer PING within %v: %v", startTimeout, lastErr)
}

// ping sends AUTH (when there is a password) and PING on a new connection
// and checks the replies.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	var req strings.Builder
	want := []string{}
	if password != "" {
		fmt.Fprintf(&req, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		want = append(want, "+OK")
	}
	req.WriteString("*1\r\n$4\r\nPING\r\n")
	want = append(want, "+PONG")
	if _, err := io.WriteString(c, req.String()); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for _, w := range want {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimRight(line, "\r\n"); got != w {
			return fmt.Errorf("got %q, want %q", got, w)
		}
	}
	return nil
}

// cleanup kills the server (resuming it first is unnecessary: SIGKILL ends
// a stopped process too).
func (s *Server) cleanup() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a log file, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path) // #nosec G304 -- the server's log, in the test's own temporary directory
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
