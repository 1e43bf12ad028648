// Command bench is sessiongate's benchmark harness: it builds the custom
// Caddy (./xcaddy), runs each configuration in a fresh Caddy process against
// an in-process upstream on 127.0.0.1, drives it with a closed-loop Go load
// generator, and reports every figure as a ratio to plain reverse_proxy
// measured in the same round (DESIGN.md, "Performance").
//
// Run from the module root:
//
//	go run ./e2e/bench [-rounds 3] [-duration 5s] [-conns 32] [-out dir] [-only name,...] [-big] [-profile name,...]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	conns    int
	out      string
	only     string
	big      bool
	sessions int    // sessions_1m: sessions preloaded
	profile  string // configurations to CPU-profile in the last round
	caddyBin string // set by the parent when it re-execs itself pinned
	pinning  string // how pinning was done, passed to the pinned child
	noPin    bool
}

// envPinned marks the re-executed, pinned child so it does not re-exec again.
const envPinned = "SESSIONGATE_BENCH_PINNED"

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each round runs every configuration once (interleaved)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured load per configuration and round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.conns, "conns", 32, "closed-loop workers, one keep-alive connection each")
	flag.StringVar(&o.out, "out", "e2e/bench/results", "directory for latest.md and latest.json")
	flag.StringVar(&o.only, "only", "", "comma-separated configurations to run (plain is always added as the baseline)")
	flag.BoolVar(&o.big, "big", false, "also run the big configurations (sessions_1m: preloads -sessions sessions, minutes)")
	flag.IntVar(&o.sessions, "sessions", 1_000_000, "sessions_1m: live sessions preloaded into the bolt store")
	flag.StringVar(&o.profile, "profile", "", "comma-separated configurations (or \"all\") to CPU-profile through Caddy's admin pprof in the last round; saved under -out/profiles")
	flag.StringVar(&o.caddyBin, "caddy-bin", "", "internal: a prebuilt caddy binary (skips the build)")
	flag.StringVar(&o.pinning, "pinning", "", "internal: pinning description from the parent")
	flag.BoolVar(&o.noPin, "no-pin", false, "do not pin to CPUs (taskset)")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.rounds < 1 || o.conns < 1 || o.duration <= 0 || o.rounds > 100 || o.conns > 4096 {
		return fmt.Errorf("bad flags: rounds %d, conns %d, duration %s", o.rounds, o.conns, o.duration)
	}
	if o.duration > 10*time.Minute {
		return fmt.Errorf("duration %s too long (at most 10m)", o.duration)
	}
	if o.sessions < 1 || o.sessions > 10_000_000 {
		return fmt.Errorf("bad flags: sessions %d", o.sessions)
	}
	configs, err := selectConfigs(o.only, o.big)
	if err != nil {
		return err
	}

	// Parent: build Caddy once (unpinned, so the build uses every core),
	// then re-exec this program pinned to CPU 0 with the binary's path.
	if os.Getenv(envPinned) == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		tmp, err := os.MkdirTemp("", "sessiongate-bench-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		bin := filepath.Join(tmp, "caddy")
		start := time.Now()
		build := exec.Command("go", "build", "-o", bin, "./xcaddy")
		build.Dir = root
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building ./xcaddy: %w", err)
		}
		fmt.Fprintf(os.Stderr, "bench: built ./xcaddy in %s\n", time.Since(start).Round(time.Millisecond))
		o.caddyBin = bin
		if !filepath.IsAbs(o.out) {
			o.out = filepath.Join(root, o.out)
		}

		self, err := os.Executable()
		if err != nil {
			return err
		}
		args := []string{"-caddy-bin", bin, "-rounds", fmt.Sprint(o.rounds), "-duration", o.duration.String(),
			"-warmup", o.warmup.String(), "-conns", fmt.Sprint(o.conns), "-out", o.out, "-only", o.only,
			"-sessions", fmt.Sprint(o.sessions), "-profile", o.profile}
		if o.big {
			args = append(args, "-big")
		}
		ts, tsErr := exec.LookPath("taskset")
		var child *exec.Cmd
		switch {
		case o.noPin:
			o.pinning = "none (-no-pin)"
			child = exec.Command(self, append(args, "-no-pin", "-pinning", o.pinning)...)
		case tsErr != nil || numCPU() < 2:
			o.pinning = fmt.Sprintf("none: pinning skipped (taskset found: %v, CPUs: %d)", tsErr == nil, numCPU())
			fmt.Fprintln(os.Stderr, "bench:", o.pinning)
			child = exec.Command(self, append(args, "-no-pin", "-pinning", o.pinning)...)
		default:
			o.pinning = "taskset: load generator + upstream (this program, re-executed) on CPU 0; Caddy on CPU 1 (`taskset -c 1 caddy run`)"
			child = exec.Command(ts, append([]string{"-c", "0", self}, append(args, "-pinning", o.pinning)...)...)
		}
		child.Env = append(os.Environ(), envPinned+"=1")
		child.Stdout, child.Stderr = os.Stdout, os.Stderr
		return child.Run()
	}

	if o.caddyBin == "" {
		return fmt.Errorf("%s set but no -caddy-bin", envPinned)
	}
	loadBefore := loadAvg()
	b, err := newBench(o, configs)
	if err != nil {
		return err
	}
	defer b.close()
	res, err := b.runAll(configs)
	if err != nil {
		return err
	}
	return writeReport(o, res, b, loadBefore)
}

// repoRoot finds the module root (the directory holding go.mod with this
// module's path), starting at the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/sessiongate/sessiongate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the sessiongate module (run from the repo root)")
		}
		dir = parent
	}
}
