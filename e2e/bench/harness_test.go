package main

// Tests of the harness's own logic: what it runs, what it writes into each
// Caddyfile, how it reads pprof, and how verdicts treat contended rounds.
// They start no Caddy and take well under a second (plus compiling Caddy's
// Caddyfile adapter).

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessiongate/sessiongate/plugin"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want stat
	}{
		{"empty", nil, stat{}},
		{"one", []float64{3}, stat{Median: 3, Min: 3, Max: 3, N: 1}},
		{"odd", []float64{5, 1, 3}, stat{Median: 3, Min: 1, Max: 5, N: 3}},
		{"even", []float64{4, 1, 2, 10}, stat{Median: 3, Min: 1, Max: 10, N: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("summarize reordered its input: %v", tc.in)
			}
		})
	}
}

func names(cs []*config) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestSelectConfigs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		only    string
		big     bool
		want    []string // exactly these, in this order
		wantErr string
	}{
		{name: "only login_flood adds its baseline and the quiet amatino_get", only: "login_flood",
			want: []string{"plain", "amatino_get", "login_flood"}},
		{name: "a POST brings its POST baseline", only: "amatino_post_64k",
			want: []string{"plain", "plain_post_64k", "amatino_post_64k"}},
		{name: "a big configuration named in only runs without -big", only: "sessions_1m",
			want: []string{"plain", "sessions_1m"}},
		{name: "-big with only adds both big configurations", only: "sxt_get", big: true,
			want: []string{"plain", "sxt_get", "sessions_1m", "sessions_1m_uniform"}},
		{name: "unknown name", only: "plain,nope", wantErr: `unknown configuration "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selectConfigs(tc.only, tc.big)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), tc.want) {
				t.Errorf("got %v, want %v", names(got), tc.want)
			}
		})
	}

	// The default run is every configuration but the big ones; -big adds
	// them.
	def, err := selectConfigs("", false)
	if err != nil {
		t.Fatal(err)
	}
	all, err := selectConfigs("", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range allConfigs {
		if got := slices.Contains(def, c); got == c.Big {
			t.Errorf("default run includes %s: %v (big: %v)", c.Name, got, c.Big)
		}
		if !slices.Contains(all, c) {
			t.Errorf("-big run lacks %s", c.Name)
		}
	}
}

// TestCaddyfiles renders every configuration's Caddyfile, checks the lines
// each one depends on, and adapts it with Caddy's own Caddyfile adapter and
// the sessiongate plugin, so a typo fails here rather than minutes into a
// run.
func TestCaddyfiles(t *testing.T) {
	b := &bench{upstreamAddr: "127.0.0.1:1", cheapPHC: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		defaultPHC: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		bcryptHash: "$2a$14$Yv0TfQTtrMmG2ZvRmPdn4eE3NsoUj/3D7jKEf4tUTZc6pmjxJGzh2",
		redis:      &redisServer{addr: "127.0.0.1:2"}}
	want := map[string][]string{
		"plain":                 {"reverse_proxy 127.0.0.1:1"},
		"amatino_get":           {"store bolt /d/sessions.db", "\t\tamatino\n", "insecure_allow_weak", "account_number " + benchAccount},
		"sxt_get":               {"registration open"},
		"videntity_get":         {"\t\tvidentity\n"},
		"amatino_redis_get":     {"store redis {", "address 127.0.0.1:2", "key_prefix sgbench7:", "master_key {env." + envMasterKey + "}"},
		"amatino_redis_nocache": {"cache_size -1", "store redis {"},
		"basic_auth":            {"basic_auth {", benchUser + " $2a$14$"},
		"login_flood":           {"ip_rate off", "global_rate off", "max_failures off"},
		"sessions_1m":           {"store bolt /d/sessions.db", "master_key {env." + envMasterKey + "}"},
	}
	notWant := map[string][]string{
		"plain":       {"sessiongate"},
		"amatino_get": {"login_limits", "master_key", "cache_size", "store redis"},
		"login_flood": {"insecure_allow_weak"},
		"basic_auth":  {"sessiongate"},
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, c := range allConfigs {
		t.Run(c.Name, func(t *testing.T) {
			cf := b.caddyfile(c, "/d", 2019, 8080, 7)
			for _, s := range want[c.Name] {
				if !strings.Contains(cf, s) {
					t.Errorf("Caddyfile lacks %q:\n%s", s, cf)
				}
			}
			for _, s := range notWant[c.Name] {
				if strings.Contains(cf, s) {
					t.Errorf("Caddyfile has %q:\n%s", s, cf)
				}
			}
			js, warnings, err := adapter.Adapt([]byte(cf), nil)
			if err != nil {
				t.Fatalf("adapt: %v\n%s", err, cf)
			}
			if len(warnings) > 0 {
				t.Errorf("adapt warnings: %v\n%s", warnings, cf)
			}
			if !json.Valid(js) {
				t.Fatalf("adapter produced invalid JSON")
			}
		})
	}
}

func TestPprofTotals(t *testing.T) {
	const top = `File: caddy
Type: cpu
Time: 2026-11-23 06:00:08 UTC
Duration: 11.01s, Total samples = 9.39s (85.36%)
Active filters:
   focus=x
Showing nodes accounting for 650ms, 6.92% of 9.39s total
      flat  flat%   sum%        cum   cum%
`
	d, total, shown, err := pprofTotals([]byte(top))
	if err != nil {
		t.Fatal(err)
	}
	if d != 11010*time.Millisecond || total != 9390*time.Millisecond || shown != 650*time.Millisecond {
		t.Errorf("got duration %s, total %s, shown %s", d, total, shown)
	}

	// A filter that matched nothing prints no node line: zero, no error.
	_, _, shown, err = pprofTotals([]byte("Duration: 2s, Total samples = 1s (50%)\n"))
	if err != nil || shown != 0 {
		t.Errorf("no nodes: shown %s, err %v", shown, err)
	}
	if _, _, _, err := pprofTotals([]byte("not a pprof header\n")); err == nil {
		t.Error("garbage parsed without error")
	}
	if _, _, _, err := pprofTotals([]byte("Duration: soon, Total samples = 1s (50%)\n")); err == nil {
		t.Error("bad duration parsed without error")
	}
}

// TestVerdictsUseCleanRounds: a contended round (or one whose baseline was
// contended) does not count when a clean round exists; with none, the
// verdict uses every round and is marked inconclusive.
func TestVerdictsUseCleanRounds(t *testing.T) {
	cfgs := []*config{allConfigs[0], {Name: "x", Baseline: "plain",
		Checks: []check{{Label: "rps", Op: ">=", Bound: 0.95, Value: ratioRPS}}}}
	round := func(n int, plainContended, xContended bool, plainRPS, xRPS float64) []*measurement {
		row := []*measurement{
			{Round: n, Config: "plain", RPS: plainRPS, P99us: 1, Contended: plainContended},
			{Round: n, Config: "x", RPS: xRPS, P99us: 1, Contended: xContended},
		}
		relate(cfgs, row)
		return row
	}
	for _, tc := range []struct {
		name          string
		memory        bool
		rounds        [][]*measurement
		wantMet       bool
		wantClean     int
		wantContended bool
		wantMedian    float64
	}{
		{name: "the contended round is left out",
			rounds:  [][]*measurement{round(1, false, false, 100, 97), round(2, false, true, 100, 20), round(3, false, false, 100, 99)},
			wantMet: true, wantClean: 2, wantMedian: 0.98},
		{name: "a contended baseline counts as contended",
			rounds:  [][]*measurement{round(1, true, false, 100, 99), round(2, false, false, 100, 50)},
			wantMet: false, wantClean: 1, wantMedian: 0.5},
		{name: "a memory check counts contended rounds",
			memory:  true,
			rounds:  [][]*measurement{round(1, true, false, 100, 99), round(2, false, true, 100, 90), round(3, false, false, 100, 96)},
			wantMet: true, wantClean: 3, wantMedian: 0.96},
		{name: "no clean round: every round, inconclusive",
			rounds:  [][]*measurement{round(1, true, false, 100, 99), round(2, false, true, 100, 90), round(3, true, true, 100, 96)},
			wantMet: true, wantClean: 0, wantContended: true, wantMedian: 0.96},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgs[1].Checks[0].Memory = tc.memory
			sums := summarizeAll(&results{Configs: cfgs, Rounds: tc.rounds})
			if len(sums) != 2 || len(sums[1].Checks) != 1 {
				t.Fatalf("summaries: %+v", sums)
			}
			v := sums[1].Checks[0]
			if v.Met != tc.wantMet || v.Clean != tc.wantClean || v.Contended != tc.wantContended ||
				math.Abs(v.Value.Median-tc.wantMedian) > 1e-9 || v.All.N != len(tc.rounds) {
				t.Errorf("verdict %+v, want met %v, clean %d, contended %v, median %g",
					v, tc.wantMet, tc.wantClean, tc.wantContended, tc.wantMedian)
			}
		})
	}
}

// TestManySessionsKeys: the generator's derived keys are stable, distinct,
// and in the format of caddyauth.NewAmatinoKey (44 URL-safe characters);
// ids are 19 digits.
func TestManySessionsKeys(t *testing.T) {
	m := &manySessions{n: 1000, base: manyBase, seed: []byte("0123456789abcdef0123456789abcdef")}
	seen := map[string]bool{}
	for i := range m.n {
		k := string(m.key(i))
		if len(k) != 44 || strings.ContainsAny(k, "+/=") {
			t.Fatalf("key %d = %q: not 44 URL-safe base64 characters", i, k)
		}
		if seen[k] {
			t.Fatalf("key %d repeats", i)
		}
		seen[k] = true
		if id := m.id(i); len(id) != 19 {
			t.Fatalf("id %d = %q: not 19 digits", i, id)
		}
	}
	// The generator and the preload derive keys separately: same seed, same
	// key; another seed, another key.
	same := &manySessions{seed: slices.Clone(m.seed)}
	other := &manySessions{seed: []byte("another seed of thirty-two bytes")}
	if string(same.key(7)) != string(m.key(7)) || string(other.key(7)) == string(m.key(7)) {
		t.Fatal("key derivation does not depend on the seed and the index alone")
	}
}
