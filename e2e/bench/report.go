package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// stat is a median with its spread over rounds.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// summary is one configuration over all rounds.
type summary struct {
	Config      string    `json:"config"`
	Description string    `json:"description"`
	Baseline    string    `json:"baseline,omitempty"`
	Bottleneck  string    `json:"bottleneck"`
	RPS         stat      `json:"rps"`
	P50us       stat      `json:"p50_us"`
	P99us       stat      `json:"p99_us"`
	CaddyCPUus  stat      `json:"caddy_cpu_us_per_req"`
	BenchCPUus  stat      `json:"bench_cpu_us_per_req"`
	RedisCPUus  stat      `json:"redis_cpu_us_per_req"`
	AuthUs      stat      `json:"generator_auth_us_per_req"`
	CaddyUtil   stat      `json:"caddy_cpu_util"`
	BenchUtil   stat      `json:"bench_cpu_util"`
	RedisUtil   stat      `json:"redis_cpu_util"`
	RSSMiB      stat      `json:"caddy_rss_mib"`
	PeakRSSMiB  stat      `json:"caddy_peak_rss_mib"`
	PeakAnonMiB stat      `json:"caddy_peak_anon_rss_mib"`
	HeapMiB     stat      `json:"caddy_heap_after_gc_mib"`
	HitRate     stat      `json:"cache_hit_rate"`
	VerifyUs    stat      `json:"verify_us_mean"`
	HeapPerB    *stat     `json:"heap_bytes_per_cached_session,omitempty"`
	FillSeconds *stat     `json:"fill_seconds,omitempty"`
	CPUOverBase *stat     `json:"caddy_cpu_us_per_req_over_baseline,omitempty"`
	CleanRounds int       `json:"clean_rounds"`
	RatioRPS    *stat     `json:"ratio_rps_vs_baseline,omitempty"`
	RatioP99    *stat     `json:"ratio_p99_vs_baseline,omitempty"`
	Failed      int64     `json:"failed_total"`
	ForeignCPU0 stat      `json:"foreign_cpu0"`
	ForeignCPU1 stat      `json:"foreign_cpu1"`
	Checks      []verdict `json:"checks,omitempty"`
	Logins200   int64     `json:"logins_200_total,omitempty"`
	Logins503   int64     `json:"logins_503_total,omitempty"`
	LoginsOther int64     `json:"logins_other_total,omitempty"`
}

// verdict is one DESIGN.md target checked against the median of its
// per-round values. Rounds in which the configuration or what it is
// compared with was contended are left out when at least one clean round
// remains: on a shared machine a burst of foreign load in one measurement
// says nothing about the gateway.
type verdict struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	Value  stat   `json:"value"` // over the clean rounds (all rounds when none is clean)
	All    stat   `json:"all_rounds"`
	Met    bool   `json:"met"`
	// Clean is how many rounds the verdict rests on.
	Clean int `json:"clean_rounds"`
	// Contended: no round was clean; the verdict is not trustworthy.
	Contended bool `json:"contended"`
}

func summarizeAll(res *results) []*summary {
	var out []*summary
	for ci, c := range res.Configs {
		s := &summary{Config: c.Name, Description: c.Description, Baseline: c.Baseline}
		var rps, p50, p99, ccpu, bcpu, rcpu, auth, cu, bu, ru, rss, hwm, anon, heap, hit, ver, hpb, fill, rr, rp, over, f0, f1 []float64
		var ms []*measurement
		for _, row := range res.Rounds {
			m := row[ci]
			ms = append(ms, m)
			rps = append(rps, m.RPS)
			f0 = append(f0, m.ForeignCPU0)
			f1 = append(f1, m.ForeignCPU1)
			p50 = append(p50, m.P50us)
			p99 = append(p99, m.P99us)
			ccpu = append(ccpu, m.CaddyCPUus)
			bcpu = append(bcpu, m.BenchCPUus)
			rcpu = append(rcpu, m.RedisCPUus)
			auth = append(auth, m.AuthUs)
			cu = append(cu, m.CaddyUtil)
			bu = append(bu, m.BenchUtil)
			ru = append(ru, m.RedisUtil)
			rss = append(rss, float64(m.CaddyRSSKiB)/1024)
			hwm = append(hwm, float64(m.CaddyHWMKiB)/1024)
			anon = append(anon, float64(m.CaddyPeakAnonKiB)/1024)
			heap = append(heap, m.HeapMiB)
			hit = append(hit, m.CacheHitRate)
			ver = append(ver, m.VerifyUs)
			if m.HeapPerCachedB != 0 {
				hpb = append(hpb, m.HeapPerCachedB)
			}
			if m.FillSeconds > 0 {
				fill = append(fill, m.FillSeconds)
			}
			if m.RatioRPS > 0 {
				rr = append(rr, m.RatioRPS)
				rp = append(rp, m.RatioP99)
				over = append(over, m.CPUOverBaseUs)
			}
			if !m.Contended {
				s.CleanRounds++
			}
			s.Failed += m.Failed
			s.Logins200 += m.Logins200
			s.Logins503 += m.Logins503
			s.LoginsOther += m.LoginsOther
		}
		s.RPS, s.P50us, s.P99us = summarize(rps), summarize(p50), summarize(p99)
		s.CaddyCPUus, s.BenchCPUus = summarize(ccpu), summarize(bcpu)
		s.RedisCPUus, s.AuthUs = summarize(rcpu), summarize(auth)
		s.CaddyUtil, s.BenchUtil, s.RedisUtil = summarize(cu), summarize(bu), summarize(ru)
		s.RSSMiB, s.PeakRSSMiB, s.PeakAnonMiB = summarize(rss), summarize(hwm), summarize(anon)
		s.HeapMiB, s.HitRate, s.VerifyUs = summarize(heap), summarize(hit), summarize(ver)
		if len(hpb) > 0 {
			v := summarize(hpb)
			s.HeapPerB = &v
		}
		if len(fill) > 0 {
			v := summarize(fill)
			s.FillSeconds = &v
		}
		s.ForeignCPU0, s.ForeignCPU1 = summarize(f0), summarize(f1)
		// CPU 0 holds the generator, the upstream and redis-server.
		s.Bottleneck = bottleneck(s.CaddyUtil.Median, s.BenchUtil.Median+s.RedisUtil.Median, s.ForeignCPU0.Median, s.ForeignCPU1.Median)
		if len(rr) > 0 {
			a, b, o := summarize(rr), summarize(rp), summarize(over)
			s.RatioRPS, s.RatioP99, s.CPUOverBase = &a, &b, &o
		}
		for _, ch := range c.Checks {
			var vals, clean []float64
			for _, m := range ms {
				if v, ok := ch.Value(m); ok {
					vals = append(vals, v)
					if ch.Memory || !m.Contended && !m.ComparedContended {
						clean = append(clean, v)
					}
				}
			}
			if len(vals) == 0 {
				continue
			}
			all := summarize(vals)
			v := all
			if len(clean) > 0 {
				v = summarize(clean)
			}
			met := v.Median >= ch.Bound
			if ch.Op == "<=" {
				met = v.Median <= ch.Bound
			}
			if ch.EveryRound {
				met = v.Max <= ch.Bound
				if ch.Op == ">=" {
					met = v.Min >= ch.Bound
				}
			}
			s.Checks = append(s.Checks, verdict{Check: ch.Label, Target: fmt.Sprintf("%s %g", ch.Op, ch.Bound),
				Value: v, All: all, Met: met, Clean: len(clean), Contended: len(clean) == 0})
		}
		out = append(out, s)
	}
	return out
}

// bottleneck says which side limited throughput, from the CPU utilisation
// of Caddy (alone on its CPU) and of the bench process (generator +
// upstream, alone on the other CPU): a side near 1.0 is saturated.
func bottleneck(caddyUtil, benchUtil, foreign0, foreign1 float64) string {
	switch {
	case contended(benchUtil, foreign0, foreign1):
		return fmt.Sprintf("contended (other processes: %.0f%% of CPU 0, %.0f%% of CPU 1)", foreign0*100, foreign1*100)
	case caddyUtil >= 0.9 && benchUtil < 0.9:
		return "Caddy"
	case benchUtil >= 0.9 && caddyUtil < 0.9:
		return "generator"
	case benchUtil >= 0.9 && caddyUtil >= 0.9:
		return "both"
	default:
		return "neither CPU (latency)"
	}
}

// contended: other processes took ≥ 10 % of Caddy's CPU, or of the bench's
// CPU while the bench needed most of it.
func contended(benchUtil, foreign0, foreign1 float64) bool {
	return foreign1 >= 0.1 || (foreign0 >= 0.1 && benchUtil+foreign0 >= 0.9)
}

// machineInfo describes where the run happened.
type machineInfo struct {
	Hostname string `json:"hostname"`
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus_visible_to_bench"`
	CPUsAll  int    `json:"cpus_online"`
	Kernel   string `json:"kernel"`
	GOOS     string `json:"goos"`
	GOARCH   string `json:"goarch"`
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	m.Hostname, _ = os.Hostname()
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					m.CPUModel = strings.TrimSpace(line[i+1:])
				}
				m.CPUsAll++
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// report is latest.json.
type report struct {
	Date       string      `json:"date"`
	Command    string      `json:"command"`
	Machine    machineInfo `json:"machine"`
	GoVersion  string      `json:"go_version"`
	Rounds     int         `json:"rounds"`
	Duration   string      `json:"duration"`
	Warmup     string      `json:"warmup"`
	Conns      int         `json:"conns"`
	Pinning    string      `json:"pinning"`
	ClkTck     int64       `json:"clk_tck"`
	ClkTckFrom string      `json:"clk_tck_source"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end.
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
	// Sessions1M describes the preload, when sessions_1m ran.
	Sessions1M *preloadInfo     `json:"sessions_1m,omitempty"`
	Notes      []string         `json:"notes"`
	Summary    []*summary       `json:"summary"`
	PerRound   [][]*measurement `json:"per_round"`
}

// preloadInfo is how sessions_1m's store was built.
type preloadInfo struct {
	Sessions    int     `json:"sessions"`
	Fill        int     `json:"fill_distinct_sessions"`
	Seconds     float64 `json:"preload_seconds"`
	FileMiB     float64 `json:"file_mib"`
	CacheSize   int     `json:"cache_size"`
	Description string  `json:"description"`
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func writeReport(o options, res *results, b *bench, loadBefore string) error {
	goVer := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		goVer = strings.TrimSpace(string(out)) + " (bench built with " + runtime.Version() + ")"
	}
	rep := &report{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Command:   commandLine(o),
		Machine:   machine(),
		GoVersion: goVer,
		Rounds:    o.rounds, Duration: o.duration.String(), Warmup: o.warmup.String(), Conns: o.conns,
		Pinning: o.pinning, ClkTck: res.ClkTck, ClkTckFrom: "getconf CLK_TCK (100 if it fails)",
		LoadBefore: loadBefore, LoadAfter: loadAvg(),
		Notes: []string{
			"Each configuration and round runs a fresh Caddy with its own temp dir, XDG dirs and free ports; rounds are interleaved (round 1: every config, round 2: every config, ...).",
			"Ratios are medians of per-round ratios to plain reverse_proxy of the same round with the same request shape (plain for GETs, plain_post_1k / plain_post_64k for POSTs); spreads are min-max over rounds.",
			"amatino requests are signed by the load generator per request with the real algorithm (HMAC-SHA512 over unix seconds ++ path [++ body for legacy], base64), nothing cached; 'gen auth µs/req' is the generator's wall time for it, to compare with Caddy CPU µs/req.",
			"bench CPU/req is the whole bench process: load generator + in-process upstream. redis-server shares CPU 0 with it.",
			"login_flood: caddy CPU/req includes the argon2id work of the logins running at the same time.",
			"sessions_1m: peak RSS (VmHWM) includes the bolt file's pages mapped by the store (file-backed, shared with the page cache); peak anonymous RSS (RssAnon, sampled every 100 ms) is the process's own memory.",
			"verify µs is the mean of caddy_sessiongate_verify_duration_seconds over the measured run: wall time of the dialect's Verify on a 1-CPU Caddy, so it includes time the goroutine waited for the CPU.",
			"DESIGN.md asks for at least 6 rounds; fewer rounds make the medians less reliable.",
		},
		Summary:  summarizeAll(res),
		PerRound: res.Rounds,
	}
	if b.many != nil {
		rep.Sessions1M = &preloadInfo{Sessions: b.many.n, Fill: min(b.many.n, fillCount),
			Seconds: b.many.took.Seconds(), FileMiB: float64(b.many.size) / (1 << 20), CacheSize: defaultCacheSize,
			Description: "amatino sessions of one static user, created with bolt.Store.CreateSession (one fsynced transaction each, on tmpfs), secrets sealed with caddyauth.Sealer under the master key Caddy gets; the file is copied next to each Caddy. Warm-up requests fill distinct sessions (each once); the measurement draws sessions uniformly from the configuration's working set (sessions_1m: a random 200 000 of them; sessions_1m_uniform: all)."}
	}
	md := renderMarkdown(rep)
	fmt.Print(md)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "latest.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s and %s\n", filepath.Join(o.out, "latest.md"), filepath.Join(o.out, "latest.json"))
	return nil
}

func spread(s stat, format string) string {
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
}

// commandLine is the command that reproduces the run.
func commandLine(o options) string {
	c := fmt.Sprintf("go run ./e2e/bench -rounds %d -duration %s -warmup %s -conns %d", o.rounds, o.duration, o.warmup, o.conns)
	if o.only != "" {
		c += fmt.Sprintf(" -only %s", o.only)
	}
	if o.big {
		c += fmt.Sprintf(" -big -sessions %d", o.sessions)
	}
	if o.profile != "" {
		c += " -profile " + o.profile
	}
	return c
}

// optional formats a median that may be missing (negative: not measured).
func optional(v float64, format string) string {
	if v < 0 {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

func renderMarkdown(rep *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sessiongate benchmark — %s\n\n", rep.Date)
	fmt.Fprintf(&b, "- command: `%s`\n", rep.Command)
	fmt.Fprintf(&b, "- machine: %s, %s, %d CPUs online, kernel %s\n", rep.Machine.Hostname, rep.Machine.CPUModel, rep.Machine.CPUsAll, rep.Machine.Kernel)
	fmt.Fprintf(&b, "- Go: %s\n", rep.GoVersion)
	fmt.Fprintf(&b, "- rounds %d × (warm-up %s + measured %s), %d closed-loop keep-alive connections\n", rep.Rounds, rep.Warmup, rep.Duration, rep.Conns)
	fmt.Fprintf(&b, "- pinning: %s\n", rep.Pinning)
	fmt.Fprintf(&b, "- load average (1, 5, 15 min) before: %s; after: %s\n", rep.LoadBefore, rep.LoadAfter)
	if p := rep.Sessions1M; p != nil {
		fmt.Fprintf(&b, "- sessions_1m*: %d sessions preloaded in %.0f s (bolt file %.0f MiB); warm-up requests %d distinct sessions (key cache size %d), then the measurement draws uniformly from the working set (sessions_1m: a random 200 000; sessions_1m_uniform: all)\n",
			p.Sessions, p.Seconds, p.FileMiB, p.Fill, p.CacheSize)
	}
	fmt.Fprintf(&b, "- CPU/req from utime+stime in /proc/<pid>/stat, CLK_TCK = %d (%s)\n\n", rep.ClkTck, rep.ClkTckFrom)

	b.WriteString("Median over all rounds (min–max). Ratios: median of per-round ratios to the baseline (plain reverse_proxy with the same request shape) of the same round. " +
		"+CPU = Caddy CPU µs/req minus the baseline's, same round: the gateway's whole cost per request (its own work, the GC of its garbage, the identity headers Caddy forwards). " +
		"Clean = rounds without foreign load on the pinned CPUs.\n\n")
	b.WriteString("| config | req/s | rps ratio | p50 µs | p99 µs | p99 ratio | Caddy CPU µs/req | +CPU µs/req | Caddy peak RSS MiB | failed | clean |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		rr, rp, over := "—", "—", "—"
		if s.RatioRPS != nil {
			rr, rp, over = spread(*s.RatioRPS, "%.3f"), spread(*s.RatioP99, "%.2f"), spread(*s.CPUOverBase, "%.1f")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s | %s | %s | %s | %.1f | %d | %d of %d |\n",
			s.Config, spread(s.RPS, "%.0f"), rr, s.P50us.Median, spread(s.P99us, "%.0f"), rp,
			spread(s.CaddyCPUus, "%.1f"), over, s.PeakRSSMiB.Max, s.Failed, s.CleanRounds, s.RPS.N)
	}

	b.WriteString("\n### Where the time and memory go\n\n")
	b.WriteString("Util = CPU seconds / wall seconds of Caddy (CPU 1) and of the bench process (generator + upstream) and redis-server (CPU 0). " +
		"Limited by = the side at ≥ 0.9 of a core, or \"contended\" when other processes took ≥ 10 % of a pinned CPU (from /proc/stat). " +
		"Gen auth = the generator's time to put credentials on a request (amatino: sign it). Hit = key cache hits / lookups (Caddy's /metrics). " +
		"Verify = mean verify_duration_seconds. Heap = Go heap after a forced GC at the end.\n\n")
	b.WriteString("| config | Caddy util | bench util | redis util | limited by | bench CPU µs/req | gen auth µs/req | redis CPU µs/req | hit % | verify µs | heap MiB | peak anon RSS MiB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		hit := "—"
		if s.HitRate.Median >= 0 {
			hit = fmt.Sprintf("%.1f", s.HitRate.Median*100)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %s | %.1f | %.2f | %.1f | %s | %s | %.1f | %.1f |\n",
			s.Config, s.CaddyUtil.Median, s.BenchUtil.Median, s.RedisUtil.Median, s.Bottleneck, s.BenchCPUus.Median,
			s.AuthUs.Median, s.RedisCPUus.Median, hit, optional(s.VerifyUs.Median, "%.1f"), s.HeapMiB.Median, s.PeakAnonMiB.Max)
	}

	b.WriteString("\n## DESIGN.md targets\n\nA verdict rests on the clean rounds: those in which neither the configuration nor what it is compared with " +
		"(its baseline; for login_flood also amatino_get) was contended; memory targets use every round (foreign CPU load does not change memory). " +
		"With no clean round a verdict uses every round and says \"inconclusive\".\n\n" +
		"| config | check | value: median (min–max) over clean rounds | clean rounds | all rounds | target | verdict |\n|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		for _, v := range s.Checks {
			verdictStr := "**missed**"
			if v.Met {
				verdictStr = "met"
			}
			if v.Contended {
				verdictStr += " (no clean round: inconclusive)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d of %d | %s | %s | %s |\n", s.Config, v.Check, spread(v.Value, "%.3f"),
				v.Clean, v.All.N, spread(v.All, "%.3f"), v.Target, verdictStr)
		}
	}
	for _, s := range rep.Summary {
		if s.Config == "login_flood" {
			fmt.Fprintf(&b, "\nlogin_flood logins during the measurements: %d × 200, %d × 503 (expected: hash slots and queue full), %d other.\n",
				s.Logins200, s.Logins503, s.LoginsOther)
		}
		if s.HeapPerB != nil {
			ref := ""
			for _, row := range rep.PerRound {
				for _, m := range row {
					if m.Config == s.Config && m.HeapPerCachedRef != "" {
						ref = m.HeapPerCachedRef
					}
				}
			}
			fmt.Fprintf(&b, "\n%s: live heap per cached session (key cache + replay memory, both full), over %s's heap: %s bytes; cache fill took %s s.\n",
				s.Config, ref, spread(*s.HeapPerB, "%.0f"), spread(*s.FillSeconds, "%.1f"))
		}
	}
	var profiled []*measurement
	for _, row := range rep.PerRound {
		for _, m := range row {
			if m.Profile != "" {
				profiled = append(profiled, m)
			}
		}
	}
	if len(profiled) > 0 {
		b.WriteString("\n### CPU profiles (last round, Caddy admin /debug/pprof/profile)\n\n" +
			"Auth handler = samples under sessiongate's (or basic_auth's) ServeHTTP minus those under the reverse proxy it calls: " +
			"the authentication's own CPU, with the GC it assists but not background GC. Per request = profile time / (rate × profile duration). " +
			"Files: profiles/<config>.pprof, summaries in profiles/<config>.top.txt, heap after the final GC in profiles/<config>.heap.pprof.\n\n")
		b.WriteString("| config | auth handler µs/req | Caddy µs/req (profile) | auth handler share |\n|---|---|---|---|\n")
		for _, m := range profiled {
			fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f %% |\n", m.Config, m.ProfileAuthUs, m.ProfileAllUs, m.ProfileAuthShare*100)
		}
	}
	b.WriteString("\nNot measured here: revocation seen by a second node (redis, < 50 ms p99).\n")
	b.WriteString("\nNotes:\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}
