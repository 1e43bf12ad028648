package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// measurement is one configuration measured in one round.
type measurement struct {
	Round    int              `json:"round"`
	Config   string           `json:"config"`
	Requests int64            `json:"requests"`
	Failed   int64            `json:"failed"`
	Statuses map[string]int64 `json:"statuses"` // "0" = transport error
	Seconds  float64          `json:"seconds"`
	RPS      float64          `json:"rps"`
	P50us    float64          `json:"p50_us"`
	P99us    float64          `json:"p99_us"`
	P999us   float64          `json:"p999_us"`
	// CPU per request in µs, from utime+stime deltas (/proc/<pid>/stat).
	CaddyCPUus float64 `json:"caddy_cpu_us_per_req"`
	BenchCPUus float64 `json:"bench_cpu_us_per_req"` // generator + in-process upstream
	RedisCPUus float64 `json:"redis_cpu_us_per_req,omitempty"`
	// AuthUs is the generator's wall time per request spent putting the
	// credentials on it (amatino: the HMAC-SHA512 signature, computed per
	// request).
	AuthUs float64 `json:"generator_auth_us_per_req"`
	// Utilisation: CPU seconds / wall seconds (1.0 = one core busy).
	CaddyUtil float64 `json:"caddy_cpu_util"`
	BenchUtil float64 `json:"bench_cpu_util"`
	RedisUtil float64 `json:"redis_cpu_util,omitempty"`
	// Busy share of CPU 0 (bench, redis) and CPU 1 (Caddy) over the run,
	// and the part of it not ours ("foreign": other processes).
	CPU0Busy    float64 `json:"cpu0_busy"`
	CPU1Busy    float64 `json:"cpu1_busy"`
	ForeignCPU0 float64 `json:"foreign_cpu0"`
	ForeignCPU1 float64 `json:"foreign_cpu1"`
	LoadAvg     string  `json:"loadavg_after"`
	CaddyRSSKiB int64   `json:"caddy_rss_kib"`
	CaddyHWMKiB int64   `json:"caddy_peak_rss_kib"`
	// CaddyPeakAnonKiB is the largest RssAnon seen (sampled every 100 ms
	// from Caddy's start to the end of the measurement): RSS without the
	// file pages of the bolt mmap.
	CaddyPeakAnonKiB int64 `json:"caddy_peak_anon_rss_kib"`
	// HeapMiB is Go's HeapAlloc right after a forced GC at the end
	// (admin /debug/pprof/heap?gc=1, then /debug/vars): live heap.
	HeapMiB float64 `json:"caddy_heap_after_gc_mib"`
	// From Caddy's /metrics, over the measured run: the key cache's hit
	// share (-1: no lookups) and the mean of verify_duration_seconds (wall
	// time of the dialect's Verify, µs; -1: none).
	CacheHitRate float64 `json:"cache_hit_rate"`
	VerifyUs     float64 `json:"verify_us_mean"`
	// Contended: other processes took enough of a pinned CPU during this
	// measurement to distort it (see contended); ComparedContended: so
	// they did during a measurement this one is compared with (its
	// baseline; for login_flood also amatino_get).
	Contended         bool `json:"contended"`
	ComparedContended bool `json:"compared_contended"`
	// Ratios to the same round's baseline (0 when not applicable), and
	// Caddy's extra CPU per request over the baseline's.
	Baseline        string  `json:"baseline,omitempty"`
	CPUOverBaseUs   float64 `json:"caddy_cpu_us_per_req_over_baseline"`
	RatioRPS        float64 `json:"ratio_rps_vs_baseline"`
	RatioP99        float64 `json:"ratio_p99_vs_baseline"`
	FloodP99VsQuiet float64 `json:"flood_p99_vs_amatino_get_p99,omitempty"`
	// Peak RSS and peak anonymous RSS above the same round's baseline.
	PeakRSSOverBaselineMiB  float64 `json:"peak_rss_over_baseline_mib"`
	PeakAnonOverBaselineMiB float64 `json:"peak_anon_rss_over_baseline_mib"`
	// Login flood counts (login_flood only).
	Logins200   int64 `json:"logins_200,omitempty"`
	Logins503   int64 `json:"logins_503,omitempty"`
	LoginsOther int64 `json:"logins_other,omitempty"`
	// sessions_1m: the warm-up requesting distinct sessions to fill the
	// cache, and the live heap per cached session over amatino_get's (or
	// plain's) heap of the same round: key cache plus replay memory.
	FillRequests     int64   `json:"fill_requests,omitempty"`
	FillSeconds      float64 `json:"fill_seconds,omitempty"`
	CachedSessions   int64   `json:"cached_sessions,omitempty"`
	HeapPerCachedB   float64 `json:"heap_bytes_per_cached_session,omitempty"`
	HeapPerCachedRef string  `json:"heap_per_cached_session_vs,omitempty"`
	// Active is the working set of sessions_1m configurations.
	Active int `json:"active_working_set,omitempty"`
	// Profile is the CPU profile taken during this measurement, if any,
	// and from it the CPU time per request of the authentication handler
	// alone (sessiongate's, or Caddy's basic_auth), without the proxying
	// below it, and of the whole Caddy.
	Profile          string  `json:"profile,omitempty"`
	ProfileAuthUs    float64 `json:"profile_auth_handler_us_per_req,omitempty"`
	ProfileAllUs     float64 `json:"profile_caddy_us_per_req,omitempty"`
	ProfileAuthShare float64 `json:"profile_auth_handler_share,omitempty"`
}

// results is every measurement, in run order.
type results struct {
	Configs []*config
	Rounds  [][]*measurement // [round][config index]
	ClkTck  int64
}

func (b *bench) runAll(configs []*config) (*results, error) {
	res := &results{Configs: configs, ClkTck: b.clkTck}
	profile := map[string]bool{}
	for _, n := range strings.Split(b.opts.profile, ",") {
		profile[strings.TrimSpace(n)] = true
	}
	for r := 1; r <= b.opts.rounds; r++ {
		var row []*measurement
		for _, c := range configs {
			fmt.Fprintf(os.Stderr, "bench: round %d/%d: %s ...", r, b.opts.rounds, c.Name)
			prof := r == b.opts.rounds && (profile["all"] || profile[c.Name])
			m, err := b.measure(c, r, prof)
			if err != nil {
				fmt.Fprintln(os.Stderr)
				return nil, fmt.Errorf("round %d, %s: %w", r, c.Name, err)
			}
			fmt.Fprintf(os.Stderr, " %.0f req/s, p99 %.0f µs, Caddy %.0f µs/req, failed %d\n", m.RPS, m.P99us, m.CaddyCPUus, m.Failed)
			row = append(row, m)
		}
		relate(configs, row)
		res.Rounds = append(res.Rounds, row)
	}
	return res, nil
}

// relate fills in what compares a measurement with others of its round.
func relate(configs []*config, row []*measurement) {
	byName := map[string]*measurement{}
	for _, m := range row {
		byName[m.Config] = m
	}
	quiet := byName["amatino_get"]
	for i, m := range row {
		if base := byName[configs[i].Baseline]; base != nil && base.RPS > 0 && base.P99us > 0 {
			m.Baseline = base.Config
			m.RatioRPS = m.RPS / base.RPS
			m.RatioP99 = m.P99us / base.P99us
			m.PeakRSSOverBaselineMiB = float64(m.CaddyHWMKiB-base.CaddyHWMKiB) / 1024
			m.PeakAnonOverBaselineMiB = float64(m.CaddyPeakAnonKiB-base.CaddyPeakAnonKiB) / 1024
			m.CPUOverBaseUs = m.CaddyCPUus - base.CaddyCPUus
			m.ComparedContended = base.Contended
		}
		if m.Config == "login_flood" && quiet != nil && quiet.P99us > 0 {
			m.FloodP99VsQuiet = m.P99us / quiet.P99us
			m.ComparedContended = m.ComparedContended || quiet.Contended
		}
		if m.CachedSessions > 0 {
			ref := quiet
			if ref == nil {
				ref = byName["plain"]
			}
			if ref != nil && ref.HeapMiB > 0 && m.HeapMiB > 0 {
				m.HeapPerCachedRef = ref.Config
				m.HeapPerCachedB = (m.HeapMiB - ref.HeapMiB) * (1 << 20) / float64(m.CachedSessions)
			}
		}
	}
}

// credentials logs in as c needs (once per Caddy) and returns the factory of
// the workers' authorizers; nil for no authentication.
func (b *bench) credentials(ctx context.Context, c *config, hc *http.Client, base string, body []byte) (func() authorizer, error) {
	switch c.Auth {
	case authAmatino:
		st, s, err := login(ctx, hc, base, b.secret)
		if err != nil || st != http.StatusOK {
			return nil, fmt.Errorf("amatino login: status %d, %v", st, err)
		}
		id, key := strconv.FormatInt(s.SessionID, 10), []byte(s.APIKey)
		return func() authorizer {
			a := &amatinoAuth{id: id, key: key, path: c.Path}
			if c.Legacy {
				a.body = body
			}
			return a
		}, nil
	case authAmatinoMany:
		active := b.many.n
		if c.Active > 0 {
			active = min(c.Active, active)
		}
		return func() authorizer {
			return &manyAuth{amatinoAuth: amatinoAuth{path: c.Path}, m: b.many, active: active,
				rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
		}, nil
	case authSxt:
		tok, err := sxtLogin(ctx, hc, base, benchSxtUser)
		if err != nil {
			return nil, err
		}
		return func() authorizer { return headerAuth{"Authorization", "Bearer " + tok} }, nil
	case authVidentity:
		key, err := videntityLogin(ctx, hc, base, benchUser, b.secret, benchAccount)
		if err != nil {
			return nil, err
		}
		return func() authorizer { return headerAuth{"X-Session-Key", key} }, nil
	case authBasic:
		v := "Basic " + base64.StdEncoding.EncodeToString([]byte(benchUser+":"+b.secret))
		return func() authorizer { return headerAuth{"Authorization", v} }, nil
	}
	return nil, nil
}

// measure starts a fresh Caddy for c, logs in if needed, warms up, then
// measures one bounded load run; with profile, Caddy's CPU profile of the
// measured run is saved.
func (b *bench) measure(c *config, round int, profile bool) (*measurement, error) {
	p, err := b.startCaddy(c)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	pid := strconv.Itoa(p.pid())
	peakAnon := sampleAnon(pid)
	defer peakAnon.stop()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: newTransport(b.opts.conns)}
	defer hc.CloseIdleConnections()
	base := p.url("")
	var body []byte
	if c.BodySize > 0 {
		body = bytes.Repeat([]byte("a"), c.BodySize)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	newAuth, err := b.credentials(ctx, c, hc, base, body)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, p.logs.tail(2000))
	}
	url := p.url(c.Path)

	// Warm-up (unmeasured): connections, caches (basic_auth's bcrypt cache,
	// the session key cache), Go runtime. sessions_1m instead requests
	// distinct sessions until the key cache is full and evicting.
	m := &measurement{Round: round, Config: c.Name, Statuses: map[string]int64{}, Active: c.Active}
	var w *loadResult
	if c.Auth == authAmatinoMany {
		fill := int64(min(b.many.n, fillCount))
		var next, limit atomic.Int64
		limit.Store(fill)
		w = runLoad(hc, c, url, func() authorizer {
			a := newAuth().(*manyAuth)
			a.next = &next
			return a
		}, body, b.opts.conns, 10*time.Minute, &limit)
		m.FillRequests, m.FillSeconds = w.Requests, w.Elapsed.Seconds()
		m.CachedSessions = min(fill, defaultCacheSize)
		if w.Failed > 0 {
			return nil, fmt.Errorf("cache fill: %d of %d requests failed (statuses %v)\n%s", w.Failed, w.Requests, w.Statuses, p.logs.tail(2000))
		}
	} else {
		w = runLoad(hc, c, url, newAuth, body, b.opts.conns, b.opts.warmup, nil)
	}
	if w.Requests == 0 || w.Failed == w.Requests {
		return nil, fmt.Errorf("warm-up: every request failed (statuses %v)\n%s", w.Statuses, p.logs.tail(2000))
	}

	var fc floodCounts
	cancelFlood := func() {}
	waitFlood := func() {}
	if c.Flood {
		ctx, cancel := context.WithCancel(context.Background())
		// Enough workers to keep every hash slot and queue place of the
		// default Hasher taken (slots = Caddy's GOMAXPROCS, queue = 4 per
		// slot), with some left over to be answered 503.
		wg := loginFlood(ctx, base, b.secret, 8*numCPU(), &fc)
		cancelFlood, waitFlood = cancel, wg.Wait
		time.Sleep(200 * time.Millisecond) // let the flood fill the slots first
	}
	defer func() { cancelFlood(); waitFlood() }()

	met0 := scrapeMetrics(p)
	type profResult struct {
		s   *profileSummary
		err error
	}
	var profDone chan profResult
	if profile {
		profDone = make(chan profResult, 1)
		go func() {
			s, err := b.saveProfile(p, c.Name)
			profDone <- profResult{s, err}
		}()
	}
	c0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	redisPid := ""
	if b.redis != nil {
		redisPid = strconv.Itoa(b.redis.pid())
	}
	var r0, r1 int64
	if redisPid != "" {
		r0, _ = procCPU(redisPid)
	}
	s0, _ := procCPU("self")
	k0 := cpuTimes()
	t0 := time.Now()
	r := runLoad(hc, c, url, newAuth, body, b.opts.conns, b.opts.duration, nil)
	wall := time.Since(t0)
	c1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	s1, _ := procCPU("self")
	if redisPid != "" {
		r1, _ = procCPU(redisPid)
	}
	k1 := cpuTimes()
	m.CaddyRSSKiB, m.CaddyHWMKiB = procMem(pid)
	m.CaddyPeakAnonKiB = peakAnon.stop()
	cancelFlood()
	waitFlood()
	met1 := scrapeMetrics(p)
	if profDone != nil {
		if pr := <-profDone; pr.err != nil {
			fmt.Fprintf(os.Stderr, "\nbench: profile of %s: %v\n", c.Name, pr.err)
		} else if reqs := float64(r.Requests) / r.Elapsed.Seconds() * pr.s.duration.Seconds(); reqs > 0 && pr.s.all > 0 {
			// Requests during the profile, from the run's rate.
			m.Profile = profilePath(b.opts.out, c.Name)
			m.ProfileAuthUs = us(pr.s.auth) / reqs
			m.ProfileAllUs = us(pr.s.all) / reqs
			m.ProfileAuthShare = pr.s.auth.Seconds() / pr.s.all.Seconds()
		}
	}
	heapProfile := ""
	if profile {
		heapProfile = strings.TrimSuffix(profilePath(b.opts.out, c.Name), ".pprof") + ".heap.pprof"
	}
	m.HeapMiB = heapAfterGC(p, heapProfile)

	m.Requests, m.Failed, m.Seconds = r.Requests, r.Failed, r.Elapsed.Seconds()
	m.P50us, m.P99us, m.P999us = us(r.quantile(0.50)), us(r.quantile(0.99)), us(r.quantile(0.999))
	m.Logins200, m.Logins503, m.LoginsOther = fc.ok.Load(), fc.busy.Load(), fc.other.Load()
	for k, v := range r.Statuses {
		m.Statuses[strconv.Itoa(k)] = v
	}
	if r.Elapsed > 0 {
		m.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	}
	caddySec := float64(c1-c0) / float64(b.clkTck)
	benchSec := float64(s1-s0) / float64(b.clkTck)
	redisSec := float64(r1-r0) / float64(b.clkTck)
	if r.Requests > 0 {
		m.CaddyCPUus = caddySec / float64(r.Requests) * 1e6
		m.BenchCPUus = benchSec / float64(r.Requests) * 1e6
		m.RedisCPUus = redisSec / float64(r.Requests) * 1e6
		m.AuthUs = us(r.Auth) / float64(r.Requests)
	}
	m.CaddyUtil = caddySec / wall.Seconds()
	m.BenchUtil = benchSec / wall.Seconds()
	m.RedisUtil = redisSec / wall.Seconds()
	m.CacheHitRate, m.VerifyUs = -1, -1
	hits := met1[metricCacheHit] - met0[metricCacheHit]
	if lookups := hits + met1[metricCacheMiss] - met0[metricCacheMiss]; lookups > 0 {
		m.CacheHitRate = hits / lookups
	}
	if c.usesSessiongate() {
		d := dialectOf(c)
		if n := met1[verifyCount(d)] - met0[verifyCount(d)]; n > 0 {
			m.VerifyUs = (met1[verifySum(d)] - met0[verifySum(d)]) / n * 1e6
		}
	}
	if b.pinned {
		// Whatever else ran on the two CPUs (other processes on a shared
		// machine): the CPU's busy share minus our processes' share.
		m.CPU0Busy, m.CPU1Busy = busyFraction(k0, k1, 0), busyFraction(k0, k1, 1)
		m.ForeignCPU0 = max(0, m.CPU0Busy-m.BenchUtil-m.RedisUtil)
		m.ForeignCPU1 = max(0, m.CPU1Busy-m.CaddyUtil)
		m.Contended = contended(m.BenchUtil+m.RedisUtil, m.ForeignCPU0, m.ForeignCPU1)
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(data))
	}
	return m, nil
}

// fillCount is how many distinct sessions sessions_1m requests before it
// measures: 10 % more than the default key cache holds, so the cache is full
// and evicting (and the replay memory, of the same default size, too).
const (
	defaultCacheSize = 100_000 // caddyauth.DefaultCacheSize, the configured default
	fillCount        = defaultCacheSize + defaultCacheSize/10
)

func dialectOf(c *config) string {
	switch c.Auth {
	case authSxt:
		return "sxt"
	case authVidentity:
		return "videntity"
	}
	return "amatino"
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
