package plugin

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Collectors are created once per process and registered on every config's
// registry (CRAFT.md): counts survive reloads, and two handler instances in
// one config never register twice. Labels come from closed sets only; never a
// user, session, key, IP or path (SEC-47).
const ns, sub = "caddy", "sessiongate"

var (
	dialectLabels = []string{"amatino", "native", "sxt", "videntity"}

	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "requests_total", Help: "Requests verified by sessiongate, by dialect and result."},
		[]string{"dialect", "result"})
	replaysTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "replays_total", Help: "Repeated signatures, by dialect and action (rejected or observed)."},
		[]string{"dialect", "action"})
	loginsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "logins_total", Help: "Login attempts, by dialect and result."},
		[]string{"dialect", "result"})
	sessionsCreated = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "sessions_created_total", Help: "Sessions created, by dialect."},
		[]string{"dialect"})
	sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "sessions_ended_total", Help: "Sessions ended, by dialect and reason (logout, expired, revoked, refresh_reuse)."},
		[]string{"dialect", "reason"})
	sessionsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
		Name: "sessions_active", Help: "Sessions in the store (including expired ones not yet purged), by dialect, as of the last janitor run."},
		[]string{"dialect"})
	cacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "key_cache_requests_total", Help: "Key cache lookups, by result (hit, miss)."},
		[]string{"result"})
	cacheEntries = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
		Name: "key_cache_entries", Help: "Entries in the key cache, as of the last janitor run."})
	cacheFlushes = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "key_cache_flushes_total", Help: "Whole key cache flushes on (re)subscribing to a shared store's invalidation channel (REL-04)."})
	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "store_errors_total", Help: "Store operations that could not be answered, by operation."},
		[]string{"op"})
	verifyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
		Name: "verify_duration_seconds", Help: "Time spent verifying a request's credentials, by dialect.",
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25}},
		[]string{"dialect"})
	refreshReuse = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "refresh_reuse_detected_total", Help: "Rotated refresh tokens presented again, each ending its session (SEC-18), by dialect."},
		[]string{"dialect"})
	clockSkew = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
		Name: "clock_skew_seconds", Help: "Offset of the matched signature second (amatino) or of created (native) from the server's clock (signed: positive = client ahead).",
		// ±300 covers the native scheme's default past window.
		Buckets: []float64{-300, -120, -60, -30, -10, -5, -2, -1, 0, 1, 2, 5, 10, 30, 60, 120, 300}})

	collectors = []prometheus.Collector{requestsTotal, replaysTotal, loginsTotal, sessionsCreated, sessionsEnded,
		sessionsActive, cacheRequests, cacheEntries, cacheFlushes, storeErrors, verifyDuration, clockSkew, refreshReuse}
)

var (
	requestResults = []string{"ok", "missing", "malformed", "unknown_session", "expired", "bad_signature",
		"bad_token", "replay", "locked", "store_unavailable"}
	loginResults = []string{"ok", "bad_credentials", "locked", "throttled", "malformed", "unavailable"}
	endReasons   = []string{"logout", "expired", "revoked", "refresh_reuse"}
)

func init() {
	// Pre-create the known label combinations so zeros show on /metrics.
	for _, d := range dialectLabels {
		for _, r := range requestResults {
			requestsTotal.WithLabelValues(d, r)
		}
		for _, r := range loginResults {
			loginsTotal.WithLabelValues(d, r)
		}
		for _, a := range []string{"rejected", "observed"} {
			replaysTotal.WithLabelValues(d, a)
		}
		for _, r := range endReasons {
			sessionsEnded.WithLabelValues(d, r)
		}
		sessionsCreated.WithLabelValues(d)
		sessionsActive.WithLabelValues(d)
		verifyDuration.WithLabelValues(d)
	}
	refreshReuse.WithLabelValues(string(caddyauth.DialectSXT))
	requestsTotal.WithLabelValues("none", "missing")
	requestsTotal.WithLabelValues("none", "malformed")
	cacheRequests.WithLabelValues("hit")
	cacheRequests.WithLabelValues("miss")
}

// registerMetrics registers the collectors on reg, tolerating collectors
// already registered there (a second handler in the same config).
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
