package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
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
	// Utilisation: CPU seconds / wall seconds (1.0 = one core busy).
	CaddyUtil float64 `json:"caddy_cpu_util"`
	BenchUtil float64 `json:"bench_cpu_util"`
	// Busy share of CPU 0 (bench) and CPU 1 (Caddy) over the run, and the
	// part of it not ours ("foreign": other processes on this machine).
	CPU0Busy    float64 `json:"cpu0_busy"`
	CPU1Busy    float64 `json:"cpu1_busy"`
	ForeignCPU0 float64 `json:"foreign_cpu0"`
	ForeignCPU1 float64 `json:"foreign_cpu1"`
	LoadAvg     string  `json:"loadavg_after"`
	CaddyRSSKiB int64   `json:"caddy_rss_kib"`
	CaddyHWMKiB int64   `json:"caddy_peak_rss_kib"`
	// Ratios to the same round's baseline (0 when not applicable).
	Baseline        string  `json:"baseline,omitempty"`
	RatioRPS        float64 `json:"ratio_rps_vs_baseline"`
	RatioP99        float64 `json:"ratio_p99_vs_baseline"`
	FloodP99VsQuiet float64 `json:"flood_p99_vs_amatino_get_p99,omitempty"`
	// Login flood counts (login_flood only).
	Logins200   int64 `json:"logins_200,omitempty"`
	Logins503   int64 `json:"logins_503,omitempty"`
	LoginsOther int64 `json:"logins_other,omitempty"`
}

// results is every measurement, in run order.
type results struct {
	Configs []*config
	Rounds  [][]*measurement // [round][config index]
	ClkTck  int64
}

func (b *bench) runAll(configs []*config) (*results, error) {
	res := &results{Configs: configs, ClkTck: b.clkTck}
	for r := 1; r <= b.opts.rounds; r++ {
		var row []*measurement
		for _, c := range configs {
			fmt.Fprintf(os.Stderr, "bench: round %d/%d: %s ...", r, b.opts.rounds, c.Name)
			m, err := b.measure(c, r)
			if err != nil {
				fmt.Fprintln(os.Stderr)
				return nil, fmt.Errorf("round %d, %s: %w", r, c.Name, err)
			}
			fmt.Fprintf(os.Stderr, " %.0f req/s, p99 %.0f µs, failed %d\n", m.RPS, m.P99us, m.Failed)
			row = append(row, m)
		}
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
			}
			if m.Config == "login_flood" && quiet != nil && quiet.P99us > 0 {
				m.FloodP99VsQuiet = m.P99us / quiet.P99us
			}
		}
		res.Rounds = append(res.Rounds, row)
	}
	return res, nil
}

// measure starts a fresh Caddy for c, logs in if needed, warms up, then
// measures one bounded load run.
func (b *bench) measure(c *config, round int) (*measurement, error) {
	p, err := b.startCaddy(c)
	if err != nil {
		return nil, err
	}
	defer p.stop()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: newTransport(b.opts.conns)}
	defer hc.CloseIdleConnections()
	base := p.url("")
	var sess *session
	if c.Auth == authAmatino {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		st, s, err := login(ctx, hc, base, b.secret)
		cancel()
		if err != nil || st != http.StatusOK {
			return nil, fmt.Errorf("login: status %d, %v\n%s", st, err, p.logs.tail(2000))
		}
		sess = s
	}
	var body []byte
	if c.BodySize > 0 {
		body = bytes.Repeat([]byte("a"), c.BodySize)
	}
	url := p.url(c.Path)

	// Warm-up (unmeasured): connections, caches (basic_auth's bcrypt cache,
	// the session key cache), Go runtime.
	w := runLoad(hc, c, url, sess, body, b.opts.conns, b.opts.warmup)
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

	pid := strconv.Itoa(p.pid())
	c0, err := procCPU(pid)
	if err != nil {
		cancelFlood()
		return nil, err
	}
	s0, _ := procCPU("self")
	k0 := cpuTimes()
	t0 := time.Now()
	r := runLoad(hc, c, url, sess, body, b.opts.conns, b.opts.duration)
	wall := time.Since(t0)
	c1, err := procCPU(pid)
	if err != nil {
		cancelFlood()
		return nil, err
	}
	s1, _ := procCPU("self")
	k1 := cpuTimes()
	rss, hwm := procMem(pid)
	cancelFlood()
	waitFlood()

	m := &measurement{Round: round, Config: c.Name, Requests: r.Requests, Failed: r.Failed,
		Statuses: map[string]int64{}, Seconds: r.Elapsed.Seconds(),
		P50us:       us(r.quantile(0.50)),
		P99us:       us(r.quantile(0.99)),
		P999us:      us(r.quantile(0.999)),
		CaddyRSSKiB: rss, CaddyHWMKiB: hwm,
		Logins200: fc.ok.Load(), Logins503: fc.busy.Load(), LoginsOther: fc.other.Load()}
	for k, v := range r.Statuses {
		m.Statuses[strconv.Itoa(k)] = v
	}
	if r.Elapsed > 0 {
		m.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	}
	caddySec := float64(c1-c0) / float64(b.clkTck)
	benchSec := float64(s1-s0) / float64(b.clkTck)
	if r.Requests > 0 {
		m.CaddyCPUus = caddySec / float64(r.Requests) * 1e6
		m.BenchCPUus = benchSec / float64(r.Requests) * 1e6
	}
	m.CaddyUtil = caddySec / wall.Seconds()
	m.BenchUtil = benchSec / wall.Seconds()
	if b.pinned {
		// Whatever else ran on the two CPUs (other processes on a shared
		// machine): the CPU's busy share minus our process's share.
		m.CPU0Busy, m.CPU1Busy = busyFraction(k0, k1, 0), busyFraction(k0, k1, 1)
		m.ForeignCPU0 = max(0, m.CPU0Busy-m.BenchUtil)
		m.ForeignCPU1 = max(0, m.CPU1Busy-m.CaddyUtil)
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(data))
	}
	return m, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
