package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

// bench holds what every configuration shares: the Caddy binary, the
// in-process upstream, the users' hashes.
type bench struct {
	opts         options
	pinned       bool
	taskset      string
	clkTck       int64
	upstream     *http.Server
	upstreamAddr string
	secret       string
	cheapPHC     string // argon2id t=1 m=64KiB p=1 (insecure_allow_weak)
	defaultPHC   string // argon2id with password.DefaultParams
	bcryptHash   string // from `caddy hash-password`
	// masterKey is given to every Caddy (master_key placeholder, used by the
	// redis and sessions_1m configurations): the preload seals under it.
	masterKey []byte
	redis     *redisServer  // when a redis configuration runs
	many      *manySessions // when sessions_1m runs
	starts    int           // Caddy starts so far (redis key prefixes)
}

func newBench(o options, configs []*config) (b *bench, err error) {
	b = &bench{opts: o, clkTck: clockTicks(), secret: benchSecret, masterKey: caddyauth.NewMasterKey()}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if !o.noPin {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("pinning requested but no taskset: %w", err)
		}
		b.pinned, b.taskset = true, ts
	}

	// Upstream: 200 with a tiny body, request bodies read and discarded.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.upstreamAddr = ln.Addr().String()
	b.upstream = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.upstream.Serve(ln) }()

	h, err := password.NewHasher(password.Config{Slots: 1, AllowWeakParams: true,
		Params: password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		return nil, err
	}
	if b.cheapPHC, err = h.Hash(context.Background(), b.secret); err != nil {
		return nil, err
	}
	if b.defaultPHC, err = password.Hash(b.secret, password.DefaultParams); err != nil {
		return nil, err
	}
	out, err := exec.Command(o.caddyBin, "hash-password", "--plaintext", b.secret).Output()
	if err != nil {
		return nil, fmt.Errorf("caddy hash-password: %w", err)
	}
	b.bcryptHash = strings.TrimSpace(string(out))

	for _, c := range configs {
		switch {
		case c.Store == "redis" && b.redis == nil:
			ts := ""
			if b.pinned {
				ts = b.taskset
			}
			if b.redis, err = startRedis(ts); err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "bench: redis-server on %s (pid %d)\n", b.redis.addr, b.redis.pid())
		case c.Auth == authAmatinoMany && b.many == nil:
			fmt.Fprintf(os.Stderr, "bench: sessions_1m: preloading %d sessions ...\n", o.sessions)
			if b.many, err = preloadSessions(o.sessions, b.masterKey); err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "bench: sessions_1m: %d sessions preloaded in %s, file %.0f MiB\n",
				b.many.n, b.many.took.Round(time.Second), float64(b.many.size)/(1<<20))
		}
	}
	return b, nil
}

func (b *bench) close() {
	if b.upstream != nil {
		_ = b.upstream.Close()
	}
	b.redis.close()
	b.many.close()
}

// clockTicks is USER_HZ from `getconf CLK_TCK`, 100 if that fails.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

func numCPU() int { return runtime.NumCPU() }

// procCPU returns utime+stime of pid ("self" for this process) in ticks.
func procCPU(pid string) (int64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%s/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the comm field: state is field 3, utime 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%s/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%s/stat times", pid)
	}
	return u + st, nil
}

// cpuTimes returns per-CPU (busy, total) ticks from /proc/stat, indexed by
// CPU number; busy excludes idle and iowait, and includes steal.
func cpuTimes() map[int][2]int64 {
	out := map[int][2]int64{}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var total, idle int64
		for i, v := range f[1:] {
			if i >= 8 { // guest and guest_nice are already in user and nice
				break
			}
			x, _ := strconv.ParseInt(v, 10, 64)
			total += x
			if i == 3 || i == 4 { // idle, iowait
				idle += x
			}
		}
		out[n] = [2]int64{total - idle, total}
	}
	return out
}

// busyFraction is CPU n's busy share between two cpuTimes snapshots.
func busyFraction(a, b map[int][2]int64, n int) float64 {
	x, ok1 := a[n]
	y, ok2 := b[n]
	if !ok1 || !ok2 || y[1] <= x[1] {
		return 0
	}
	return float64(y[0]-x[0]) / float64(y[1]-x[1])
}

// procMem returns VmRSS and VmHWM of pid in KiB.
func procMem(pid string) (rss, hwm int64) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

// session is an amatino session obtained by logging in.
type session struct {
	APIKey    string `json:"api_key"`
	SessionID int64  `json:"session_id"`
	UserID    int64  `json:"user_id"`
}

// login performs one amatino login; it returns the HTTP status and, on 200,
// the session.
func login(ctx context.Context, hc *http.Client, base, secret string) (int, *session, error) {
	body := fmt.Sprintf(`{"secret": %q, "account_email": %q, "user_id": null}`, secret, benchEmail)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/session", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	var s session
	if err := json.Unmarshal(data, &s); err != nil || s.APIKey == "" || s.SessionID <= 0 {
		return resp.StatusCode, nil, fmt.Errorf("bad login answer %q", data)
	}
	return resp.StatusCode, &s, nil
}

// loadResult is what one measured load run produced.
type loadResult struct {
	Requests int64
	Failed   int64
	Statuses map[int]int64 // by HTTP status; 0 = transport error
	Elapsed  time.Duration
	Lat      []time.Duration // sorted
	// Auth is the workers' wall time spent putting credentials on requests
	// (signing): the generator's own cost of authentication.
	Auth time.Duration
}

func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Lat)))
	if i >= len(r.Lat) {
		i = len(r.Lat) - 1
	}
	return r.Lat[i]
}

func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// runLoad drives conns closed-loop workers against url for d (or until
// limit, when not nil, is used up) and returns the latencies of every
// completed request. newAuth gives each worker its authorizer (nil: none).
// Non-2xx answers count as failed.
func runLoad(hc *http.Client, c *config, url string, newAuth func() authorizer, body []byte, conns int,
	d time.Duration, limit *atomic.Int64) *loadResult {
	deadline := time.Now().Add(d)
	type workerOut struct {
		lat      []time.Duration
		statuses map[int]int64
		failed   int64
		auth     time.Duration
	}
	outs := make([]workerOut, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			o := &outs[w]
			o.lat = make([]time.Duration, 0, 4096)
			o.statuses = map[int]int64{}
			var a authorizer
			if newAuth != nil {
				a = newAuth()
			}
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || (limit != nil && limit.Add(-1) < 0) {
					return
				}
				var rd io.Reader
				if body != nil {
					rd = bytes.NewReader(body)
				}
				req, err := http.NewRequest(c.Method, url, rd)
				if err != nil {
					o.statuses[0]++
					o.failed++
					continue
				}
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				if a != nil {
					a.authorize(req, t0)
					o.auth += time.Since(t0)
				}
				resp, err := hc.Do(req)
				if err != nil {
					o.statuses[0]++
					o.failed++
					time.Sleep(time.Millisecond) // do not spin on a dead server
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				o.lat = append(o.lat, time.Since(t0))
				o.statuses[resp.StatusCode]++
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					o.failed++
				}
			}
		}(w)
	}
	wg.Wait()
	r := &loadResult{Statuses: map[int]int64{}, Elapsed: time.Since(start)}
	for _, o := range outs {
		r.Lat = append(r.Lat, o.lat...)
		r.Failed += o.failed
		r.Auth += o.auth
		for k, v := range o.statuses {
			r.Statuses[k] += v
			r.Requests += v
		}
	}
	slices.Sort(r.Lat)
	return r
}

// benchSecret is the bench user's password, for every scheme (argon2id for
// sessiongate, bcrypt for basic_auth).
const benchSecret = "bench-secret-not-for-production"

// floodCounts counts the login flood's answers.
type floodCounts struct {
	ok, busy, other atomic.Int64
}

// loginFlood runs workers that log in continuously until ctx ends. A 503
// (all hash slots and queue places taken) is expected; the worker retries
// after 5 ms instead of the advertised Retry-After, to keep every slot busy
// without spinning.
func loginFlood(ctx context.Context, base, secret string, workers int, fc *floodCounts) *sync.WaitGroup {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: newTransport(workers)}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				st, _, err := login(ctx, hc, base, secret)
				switch {
				case ctx.Err() != nil:
					return
				case err == nil && st == http.StatusOK:
					fc.ok.Add(1)
				case err == nil && st == http.StatusServiceUnavailable:
					fc.busy.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					fc.other.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	return &wg
}
