package plugin

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// TestResolvedChildrenAreTheExposedSeriesSEC47: every child the tables hold
// is the very child WithLabelValues of the documented collector returns for
// its label values, so what a request increments is the series /metrics
// shows; exactly the combinations pre-created before the tables are
// resolved (no new zero series), and values outside them fall back to the
// vector instead of being lost (SEC-47).
func TestResolvedChildrenAreTheExposedSeriesSEC47(t *testing.T) {
	tests := []struct {
		name     string
		tab      tableUnderTest
		a, b     string
		want     func() any // the collector's own child
		resolved bool
	}{
		{"requests amatino ok", table2(requestsByDialect), "amatino", "ok",
			func() any { return requestsTotal.WithLabelValues("amatino", "ok") }, true},
		{"requests videntity store_unavailable", table2(requestsByDialect), "videntity", "store_unavailable",
			func() any { return requestsTotal.WithLabelValues("videntity", "store_unavailable") }, true},
		{"requests none missing", table2(requestsByDialect), "none", "missing",
			func() any { return requestsTotal.WithLabelValues("none", "missing") }, true},
		{"requests none malformed", table2(requestsByDialect), "none", "malformed",
			func() any { return requestsTotal.WithLabelValues("none", "malformed") }, true},
		{"requests none bad_signature, never pre-created", table2(requestsByDialect), "none", "bad_signature",
			func() any { return requestsTotal.WithLabelValues("none", "bad_signature") }, false},
		{"requests unknown dialect", table2(requestsByDialect), "bogus", "ok",
			func() any { return requestsTotal.WithLabelValues("bogus", "ok") }, false},
		{"requests unknown result", table2(requestsByDialect), "sxt", "bogus",
			func() any { return requestsTotal.WithLabelValues("sxt", "bogus") }, false},
		{"replays native observed", table2(replaysByDialect), "native", "observed",
			func() any { return replaysTotal.WithLabelValues("native", "observed") }, true},
		{"logins sxt throttled", table2(loginsByDialect), "sxt", "throttled",
			func() any { return loginsTotal.WithLabelValues("sxt", "throttled") }, true},
		{"ended amatino refresh_reuse", table2(endedByDialect), "amatino", "refresh_reuse",
			func() any { return sessionsEnded.WithLabelValues("amatino", "refresh_reuse") }, true},
		{"created native", table1(createdByDialect), "native", "",
			func() any { return sessionsCreated.WithLabelValues("native") }, true},
		{"active videntity", table1(activeByDialect), "videntity", "",
			func() any { return sessionsActive.WithLabelValues("videntity") }, true},
		{"verify amatino", table1(verifyByDialect), "amatino", "",
			func() any { return verifyDuration.WithLabelValues("amatino") }, true},
		{"verify unknown dialect", table1(verifyByDialect), "none", "",
			func() any { return verifyDuration.WithLabelValues("none") }, false},
		{"refresh reuse sxt", table1(refreshReuseBy), "sxt", "",
			func() any { return refreshReuse.WithLabelValues("sxt") }, true},
		{"refresh reuse amatino, never pre-created", table1(refreshReuseBy), "amatino", "",
			func() any { return refreshReuse.WithLabelValues("amatino") }, false},
		{"cache hit", table1(cacheByResult), "hit", "",
			func() any { return cacheRequests.WithLabelValues("hit") }, true},
		{"cache miss", table1(cacheByResult), "miss", "",
			func() any { return cacheRequests.WithLabelValues("miss") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := tt.tab.resolved(tt.a, tt.b); r != tt.resolved {
				t.Errorf("resolved = %v, want %v", r, tt.resolved)
			}
			got := tt.tab.get(tt.a, tt.b)
			if got == nil {
				t.Fatal("no child")
			}
			if want := tt.want(); got != want {
				t.Fatalf("the table's child %p is not the collector's %p", got, want)
			}
		})
	}
}

// TestPrecreatedSeriesUnchangedSEC47: the tables resolve exactly the label
// combinations that init always pre-created (and /metrics so shows as zeros):
// not one fewer, and no new series (SEC-47).
func TestPrecreatedSeriesUnchangedSEC47(t *testing.T) {
	dialects := []string{"amatino", "native", "sxt", "videntity"}
	results := []string{"ok", "missing", "malformed", "unknown_session", "expired", "bad_signature",
		"bad_token", "replay", "locked", "store_unavailable"}
	cross := func(a, b []string) [][2]string {
		var out [][2]string
		for _, x := range a {
			for _, y := range b {
				out = append(out, [2]string{x, y})
			}
		}
		return out
	}
	tests := []struct {
		name string
		tab  tableUnderTest
		want [][2]string
	}{
		{"requests_total", table2(requestsByDialect),
			append(cross(dialects, results), [2]string{"none", "missing"}, [2]string{"none", "malformed"})},
		{"logins_total", table2(loginsByDialect), cross(dialects,
			[]string{"ok", "bad_credentials", "locked", "throttled", "malformed", "unavailable"})},
		{"replays_total", table2(replaysByDialect), cross(dialects, []string{"rejected", "observed"})},
		{"sessions_ended_total", table2(endedByDialect), cross(dialects, []string{"logout", "expired", "revoked", "refresh_reuse"})},
		{"sessions_created_total", table1(createdByDialect), cross(dialects, []string{""})},
		{"sessions_active", table1(activeByDialect), cross(dialects, []string{""})},
		{"verify_duration_seconds", table1(verifyByDialect), cross(dialects, []string{""})},
		{"refresh_reuse_detected_total", table1(refreshReuseBy), [][2]string{{"sxt", ""}}},
		{"key_cache_requests_total", table1(cacheByResult), [][2]string{{"hit", ""}, {"miss", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range tt.want {
				if !tt.tab.resolved(c[0], c[1]) {
					t.Errorf("%v not pre-created", c)
				}
			}
			if n := tt.tab.count(); n != len(tt.want) {
				t.Errorf("%d cells resolved, want %d", n, len(tt.want))
			}
		})
	}
}

// tableUnderTest is a children table seen through the method the
// production code uses for it (one or two).
type tableUnderTest interface {
	get(a, b string) any
	resolved(a, b string) bool
	count() int
}

type oneLabel[T any] struct{ *children[T] }

func (x oneLabel[T]) get(a, _ string) any { return x.one(a) }

type twoLabels[T any] struct{ *children[T] }

func (x twoLabels[T]) get(a, b string) any { return x.two(a, b) }

func table1[T any](t *children[T]) tableUnderTest { return oneLabel[T]{t} }
func table2[T any](t *children[T]) tableUnderTest { return twoLabels[T]{t} }

// count is the number of resolved cells.
func (t *children[T]) count() int {
	n := 0
	for _, c := range t.cells {
		if c.ok {
			n++
		}
	}
	return n
}

// resolved reports whether the cell for (a, b) was resolved in init.
func (t *children[T]) resolved(a, b string) bool {
	i := t.cell(a, b)
	return i >= 0 && t.cells[i].ok
}

// TestObserverCountsOnRegisteredSeriesSEC47: after registering the
// collectors on several registries (two handlers, a reload), the observer's
// and handler's increments through the resolved children show on every
// registry, under the series names and labels that README documents.
func TestObserverCountsOnRegisteredSeriesSEC47(t *testing.T) {
	regs := []*prometheus.Registry{prometheus.NewPedanticRegistry(), prometheus.NewRegistry()}
	for _, reg := range regs {
		for range 2 {
			if err := registerMetrics(reg); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := &observer{}
	tests := []struct {
		name   string
		series string
		labels map[string]string
		do     func()
	}{
		{"cache hit", "caddy_sessiongate_key_cache_requests_total", map[string]string{"result": "hit"},
			func() { o.CacheLookup(true) }},
		{"cache miss", "caddy_sessiongate_key_cache_requests_total", map[string]string{"result": "miss"},
			func() { o.CacheLookup(false) }},
		{"replay observed", "caddy_sessiongate_replays_total", map[string]string{"dialect": "amatino", "action": "observed"},
			func() { o.Replay(caddyauth.DialectAmatino, "observed") }},
		{"login locked", "caddy_sessiongate_logins_total", map[string]string{"dialect": "videntity", "result": "locked"},
			func() { o.Login(caddyauth.DialectVidentity, "locked") }},
		{"session created", "caddy_sessiongate_sessions_created_total", map[string]string{"dialect": "sxt"},
			func() { o.SessionCreated(caddyauth.DialectSXT) }},
		{"session ended", "caddy_sessiongate_sessions_ended_total", map[string]string{"dialect": "native", "reason": "revoked"},
			func() { o.SessionEnded(caddyauth.DialectNative, "revoked") }},
		{"store error (not pre-created)", "caddy_sessiongate_store_errors_total", map[string]string{"op": "test_op_sec47"},
			func() { o.StoreError("test_op_sec47") }},
		{"request ok", "caddy_sessiongate_requests_total", map[string]string{"dialect": "sxt", "result": "ok"},
			func() { requestsByDialect.two("sxt", caddyauth.ResultOK).Inc() }},
		{"request refused before a dialect", "caddy_sessiongate_requests_total", map[string]string{"dialect": "none", "result": "missing"},
			func() { requestsByDialect.two("none", caddyauth.ResultMissing).Inc() }},
		{"verify duration", "caddy_sessiongate_verify_duration_seconds", map[string]string{"dialect": "native"},
			func() { verifyByDialect.one("native").Observe(0.001) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := make([]float64, len(regs))
			for i, reg := range regs {
				before[i] = seriesValue(t, reg, tt.series, tt.labels)
			}
			tt.do()
			for i, reg := range regs {
				if d := seriesValue(t, reg, tt.series, tt.labels) - before[i]; d != 1 {
					t.Errorf("registry %d: %s%v grew by %v, want 1", i, tt.series, tt.labels, d)
				}
			}
		})
	}
}

// seriesValue gathers reg and returns the counter value, or the histogram's
// sample count, of the series name{labels}; 0 if it is absent.
func seriesValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsEqual(m.GetLabel(), labels) {
				if h := m.GetHistogram(); h != nil {
					return float64(h.GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelsEqual(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, lp := range got {
		if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
			return false
		}
	}
	return true
}

// BenchmarkRequestCounters: the metric updates of a verified request (the
// verify histogram and the requests_total success) through the tables.
func BenchmarkRequestCounters(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		verifyByDialect.one(string(caddyauth.DialectAmatino)).Observe(0.000004)
		requestsByDialect.two(string(caddyauth.DialectAmatino), caddyauth.ResultOK).Inc()
	}
}

// BenchmarkRequestCountersWithLabelValues is BenchmarkRequestCounters the
// way the handler did it before the tables, for comparison.
func BenchmarkRequestCountersWithLabelValues(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		verifyDuration.WithLabelValues(string(caddyauth.DialectAmatino)).Observe(0.000004)
		requestsTotal.WithLabelValues(string(caddyauth.DialectAmatino), caddyauth.ResultOK).Inc()
	}
}
