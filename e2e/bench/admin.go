package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What the harness reads from Caddy's admin endpoint: the gateway's
// Prometheus counters (/metrics), the live heap after a forced GC
// (/debug/pprof/heap?gc=1, then /debug/vars) and CPU profiles
// (/debug/pprof/profile). None of it runs during a measured run except the
// CPU profile, which samples at 100 Hz.

var adminClient = &http.Client{Timeout: 2 * time.Minute}

// Series read from /metrics.
const (
	metricCacheHit  = `caddy_sessiongate_key_cache_requests_total{result="hit"}`
	metricCacheMiss = `caddy_sessiongate_key_cache_requests_total{result="miss"}`
)

func verifySum(dialect string) string {
	return `caddy_sessiongate_verify_duration_seconds_sum{dialect="` + dialect + `"}`
}

func verifyCount(dialect string) string {
	return `caddy_sessiongate_verify_duration_seconds_count{dialect="` + dialect + `"}`
}

// scrapeMetrics returns every sample of Caddy's /metrics by its series
// name with labels as printed; empty when the endpoint cannot be read (the
// figures derived from it are then reported as missing, -1).
func scrapeMetrics(p *caddyProc) map[string]float64 {
	out := map[string]float64{}
	resp, err := adminClient.Get(p.adminURL("/metrics"))
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// heapAfterGC forces a GC in Caddy and returns HeapAlloc in MiB (0 when the
// admin endpoint cannot tell). The heap profile that forced the GC is saved
// to save, unless save is empty.
func heapAfterGC(p *caddyProc, save string) float64 {
	resp, err := adminClient.Get(p.adminURL("/debug/pprof/heap?gc=1"))
	if err != nil {
		return 0
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && save != "" && resp.StatusCode == http.StatusOK {
		if err := os.WriteFile(save, data, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "\nbench: heap profile: %v\n", err)
		}
	}
	resp, err = adminClient.Get(p.adminURL("/debug/vars"))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var vars struct {
		Memstats struct {
			HeapAlloc uint64
		} `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return 0
	}
	return float64(vars.Memstats.HeapAlloc) / (1 << 20)
}

func profilePath(out, config string) string {
	return filepath.Join(out, "profiles", config+".pprof")
}

// profileSummary is what a CPU profile says: its duration and the CPU time
// of all of Caddy and of the authentication handler alone.
type profileSummary struct {
	duration, all, auth time.Duration
}

// authHandler matches the authentication handlers' ServeHTTP: sessiongate's
// and Caddy's basic_auth. Samples below the reverse proxy (everything the
// handler's next does) are ignored, so what remains is the handler's own
// work, with the garbage collection it assists, but not background GC.
const (
	authHandler  = `sessiongate/plugin\.\(\*Handler\)\.ServeHTTP|caddyhttp/caddyauth\.\(?\*?Authentication\)?\.ServeHTTP`
	proxyHandler = `reverseproxy`
)

// saveProfile takes a CPU profile of Caddy for about the measured run
// (whole seconds, one less than the run so it ends inside it), writes it
// with a `go tool pprof -top` summary beside it, and summarises it.
func (b *bench) saveProfile(p *caddyProc, config string) (*profileSummary, error) {
	secs := max(1, int(b.opts.duration.Seconds())-1)
	resp, err := adminClient.Get(p.adminURL(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin pprof: status %d", resp.StatusCode)
	}
	path := profilePath(b.opts.out, config)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", path).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w: %s", err, top)
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".pprof")+".top.txt", top, 0o644); err != nil {
		return nil, err
	}
	ps := &profileSummary{}
	if ps.duration, ps.all, _, err = pprofTotals(top); err != nil {
		return nil, err
	}
	own, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=1000000",
		"-focus="+authHandler, "-ignore="+proxyHandler, path).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w: %s", err, own)
	}
	_, _, ps.auth, err = pprofTotals(own)
	return ps, err
}

// pprofTotals reads a `go tool pprof -top` header: the profile's duration,
// its total samples, and the time of the nodes shown (with every node shown:
// the samples the filters kept; 0 when nothing matched).
func pprofTotals(top []byte) (duration, total, shown time.Duration, err error) {
	parse := func(s string) time.Duration {
		d, perr := time.ParseDuration(strings.TrimSpace(strings.TrimSuffix(s, ",")))
		if perr != nil && err == nil {
			err = fmt.Errorf("pprof header %q: %w", s, perr)
		}
		return d
	}
	for _, line := range strings.Split(string(top), "\n") {
		switch {
		case strings.HasPrefix(line, "Duration: "):
			// Duration: 4.01s, Total samples = 3.95s (98.50%)
			f := strings.Fields(line)
			if len(f) >= 6 {
				duration, total = parse(f[1]), parse(f[5])
			}
		case strings.HasPrefix(line, "Showing nodes accounting for "):
			// Showing nodes accounting for 50ms, 6.10% of 820ms total
			f := strings.Fields(line)
			if len(f) >= 5 {
				shown = parse(f[4])
			}
		}
	}
	if duration == 0 && err == nil {
		err = fmt.Errorf("no Duration line in pprof output")
	}
	return duration, total, shown, err
}

// anonSampler records the largest RssAnon of a process, every 100 ms.
type anonSampler struct {
	quit chan struct{}
	done chan int64
}

func sampleAnon(pid string) *anonSampler {
	s := &anonSampler{quit: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, procAnon(pid))
			select {
			case <-s.quit:
				s.done <- max(peak, procAnon(pid))
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak in KiB; later calls return 0.
func (s *anonSampler) stop() int64 {
	select {
	case <-s.quit:
		return 0
	default:
	}
	close(s.quit)
	return <-s.done
}

// procAnon is RssAnon of pid in KiB (0 if unreadable).
func procAnon(pid string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssAnon:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
