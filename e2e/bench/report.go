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
	CaddyUtil   stat      `json:"caddy_cpu_util"`
	BenchUtil   stat      `json:"bench_cpu_util"`
	RSSMiB      stat      `json:"caddy_rss_mib"`
	PeakRSSMiB  stat      `json:"caddy_peak_rss_mib"`
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
// per-round values.
type verdict struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	Value  stat   `json:"value"`
	Met    bool   `json:"met"`
	// Contended: the configuration or its baseline ran while other
	// processes took a pinned CPU; the verdict is not trustworthy.
	Contended bool `json:"contended"`
}

func summarizeAll(res *results) []*summary {
	var out []*summary
	baseContended := map[string]bool{} // baselines come first
	for ci, c := range res.Configs {
		s := &summary{Config: c.Name, Description: c.Description, Baseline: c.Baseline}
		var rps, p50, p99, ccpu, bcpu, cu, bu, rss, hwm, rr, rp, f0, f1 []float64
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
			cu = append(cu, m.CaddyUtil)
			bu = append(bu, m.BenchUtil)
			rss = append(rss, float64(m.CaddyRSSKiB)/1024)
			hwm = append(hwm, float64(m.CaddyHWMKiB)/1024)
			if m.RatioRPS > 0 {
				rr = append(rr, m.RatioRPS)
				rp = append(rp, m.RatioP99)
			}
			s.Failed += m.Failed
			s.Logins200 += m.Logins200
			s.Logins503 += m.Logins503
			s.LoginsOther += m.LoginsOther
		}
		s.RPS, s.P50us, s.P99us = summarize(rps), summarize(p50), summarize(p99)
		s.CaddyCPUus, s.BenchCPUus = summarize(ccpu), summarize(bcpu)
		s.CaddyUtil, s.BenchUtil = summarize(cu), summarize(bu)
		s.RSSMiB, s.PeakRSSMiB = summarize(rss), summarize(hwm)
		s.ForeignCPU0, s.ForeignCPU1 = summarize(f0), summarize(f1)
		s.Bottleneck = bottleneck(s.CaddyUtil.Median, s.BenchUtil.Median, s.ForeignCPU0.Median, s.ForeignCPU1.Median)
		if len(rr) > 0 {
			a, b := summarize(rr), summarize(rp)
			s.RatioRPS, s.RatioP99 = &a, &b
		}
		for _, ch := range c.Checks {
			var vals []float64
			for _, m := range ms {
				if v, ok := ch.Value(m); ok {
					vals = append(vals, v)
				}
			}
			if len(vals) == 0 {
				continue
			}
			v := summarize(vals)
			met := v.Median >= ch.Bound
			if ch.Op == "<=" {
				met = v.Median <= ch.Bound
			}
			if ch.Label == "failed signed requests" { // must hold in every round
				met = v.Max <= ch.Bound
			}
			s.Checks = append(s.Checks, verdict{Check: ch.Label, Target: fmt.Sprintf("%s %g", ch.Op, ch.Bound),
				Value: v, Met: met, Contended: strings.HasPrefix(s.Bottleneck, "contended") ||
					(c.Baseline != "" && baseContended[c.Baseline])})
		}
		baseContended[c.Name] = strings.HasPrefix(s.Bottleneck, "contended")
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
	Date       string           `json:"date"`
	Command    string           `json:"command"`
	Machine    machineInfo      `json:"machine"`
	GoVersion  string           `json:"go_version"`
	Rounds     int              `json:"rounds"`
	Duration   string           `json:"duration"`
	Warmup     string           `json:"warmup"`
	Conns      int              `json:"conns"`
	Pinning    string           `json:"pinning"`
	ClkTck     int64            `json:"clk_tck"`
	ClkTckFrom string           `json:"clk_tck_source"`
	Notes      []string         `json:"notes"`
	Summary    []*summary       `json:"summary"`
	PerRound   [][]*measurement `json:"per_round"`
}

func writeReport(o options, res *results) error {
	goVer := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		goVer = strings.TrimSpace(string(out)) + " (bench built with " + runtime.Version() + ")"
	}
	rep := &report{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Command:   fmt.Sprintf("go run ./e2e/bench -rounds %d -duration %s -warmup %s -conns %d -only %q", o.rounds, o.duration, o.warmup, o.conns, o.only),
		Machine:   machine(),
		GoVersion: goVer,
		Rounds:    o.rounds, Duration: o.duration.String(), Warmup: o.warmup.String(), Conns: o.conns,
		Pinning: o.pinning, ClkTck: res.ClkTck, ClkTckFrom: "getconf CLK_TCK (100 if it fails)",
		Notes: []string{
			"Each configuration and round runs a fresh Caddy with its own temp dir, XDG dirs and free ports; rounds are interleaved (round 1: every config, round 2: every config, ...).",
			"Ratios are medians of per-round ratios to plain reverse_proxy of the same round with the same request shape (plain for GETs, plain_post_1k / plain_post_64k for POSTs); spreads are min-max over rounds.",
			"amatino requests are signed by the load generator with the real algorithm (HMAC-SHA512 over unix seconds ++ path, base64); each worker computes the signature once per second and reuses it within that second, as a real client would.",
			"bench CPU/req is the whole bench process: load generator + in-process upstream.",
			"login_flood: caddy CPU/req includes the argon2id work of the logins running at the same time.",
			"DESIGN.md asks for at least 6 rounds; fewer rounds make the medians less reliable.",
		},
		Summary:  summarizeAll(res),
		PerRound: res.Rounds,
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

func renderMarkdown(rep *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sessiongate benchmark — %s\n\n", rep.Date)
	fmt.Fprintf(&b, "- command: `%s`\n", rep.Command)
	fmt.Fprintf(&b, "- machine: %s, %s, %d CPUs online, kernel %s\n", rep.Machine.Hostname, rep.Machine.CPUModel, rep.Machine.CPUsAll, rep.Machine.Kernel)
	fmt.Fprintf(&b, "- Go: %s\n", rep.GoVersion)
	fmt.Fprintf(&b, "- rounds %d × (warm-up %s + measured %s), %d closed-loop keep-alive connections\n", rep.Rounds, rep.Warmup, rep.Duration, rep.Conns)
	fmt.Fprintf(&b, "- pinning: %s\n", rep.Pinning)
	fmt.Fprintf(&b, "- CPU/req from utime+stime in /proc/<pid>/stat, CLK_TCK = %d (%s)\n\n", rep.ClkTck, rep.ClkTckFrom)

	b.WriteString("Median over rounds (min–max). Ratios: median of per-round ratios to the baseline (plain reverse_proxy with the same request shape) of the same round. " +
		"Util = CPU seconds / wall seconds of Caddy and of the bench process (generator + upstream), each alone on its CPU when pinned; " +
		"limited by = the side at ≥ 0.9 of a core, or \"contended\" when other processes took ≥ 10 % of either pinned CPU (from /proc/stat).\n\n")
	b.WriteString("| config | req/s | p50 µs | p99 µs | Caddy CPU µs/req | bench CPU µs/req | Caddy util | bench util | limited by | Caddy RSS MiB (peak) | baseline | rps ratio | p99 ratio | failed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		rr, rp, bl := "—", "—", "—"
		if s.Baseline != "" {
			bl = s.Baseline
		}
		if s.RatioRPS != nil {
			rr, rp = spread(*s.RatioRPS, "%.3f"), spread(*s.RatioP99, "%.2f")
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %.1f | %.2f | %.2f | %s | %.1f (%.1f) | %s | %s | %s | %d |\n",
			s.Config, spread(s.RPS, "%.0f"), s.P50us.Median, spread(s.P99us, "%.0f"), spread(s.CaddyCPUus, "%.1f"),
			s.BenchCPUus.Median, s.CaddyUtil.Median, s.BenchUtil.Median, s.Bottleneck, s.RSSMiB.Median, s.PeakRSSMiB.Max,
			bl, rr, rp, s.Failed)
	}
	b.WriteString("\n## DESIGN.md targets\n\n| config | check | value: median (min–max) | target | verdict |\n|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		for _, v := range s.Checks {
			verdictStr := "**missed**"
			if v.Met {
				verdictStr = "met"
			}
			if v.Contended {
				verdictStr += " (contended run: inconclusive)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Config, v.Check, spread(v.Value, "%.3f"), v.Target, verdictStr)
		}
	}
	for _, s := range rep.Summary {
		if s.Config == "login_flood" {
			fmt.Fprintf(&b, "\nlogin_flood logins during the measurements: %d × 200, %d × 503 (expected: hash slots and queue full), %d other.\n",
				s.Logins200, s.Logins503, s.LoginsOther)
		}
	}
	b.WriteString("\nNot measured (no such configuration yet): sxt bearer GET, videntity session-key GET (≥ 0.97×), redis store (≥ 0.90×), sessions_1m (≥ 0.90×, RSS ≤ plain + 100 MiB).\n")
	b.WriteString("\nNotes:\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}
