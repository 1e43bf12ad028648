package plugin

import (
	"errors"
	"slices"

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
	loginResults  = []string{"ok", "bad_credentials", "locked", "throttled", "malformed", "unavailable"}
	replayActions = []string{"rejected", "observed"}
	endReasons    = []string{"logout", "expired", "revoked", "refresh_reuse"}
	cacheResults  = []string{"hit", "miss"}
	// requestDialects are the dialect labels of requests_total: a refusal
	// before any dialect was chosen counts as "none".
	requestDialects = slices.Concat(dialectLabels, []string{"none"})
)

// The children of the labelled collectors for the known label values,
// resolved once: a request then increments its counters without
// WithLabelValues hashing its label values and taking the vector's lock
// (about 1 µs per request in e2e/bench's profile). Resolving a child creates
// its series, so exactly the combinations that always showed as zeros on
// /metrics are resolved here; any other (an unexpected value, store_errors'
// operations) goes through WithLabelValues and appears on first use, as
// before. The collectors and so their children live for the whole process
// and are never Reset, so these stay the series that every config's
// registry exposes across reloads (SEC-47).
var (
	requestsByDialect = newChildren[prometheus.Counter](requestsTotal, requestDialects, requestResults)
	replaysByDialect  = newChildren[prometheus.Counter](replaysTotal, dialectLabels, replayActions)
	loginsByDialect   = newChildren[prometheus.Counter](loginsTotal, dialectLabels, loginResults)
	endedByDialect    = newChildren[prometheus.Counter](sessionsEnded, dialectLabels, endReasons)
	createdByDialect  = newChildren[prometheus.Counter](sessionsCreated, dialectLabels, nil)
	activeByDialect   = newChildren[prometheus.Gauge](sessionsActive, dialectLabels, nil)
	verifyByDialect   = newChildren[prometheus.Observer](verifyDuration, dialectLabels, nil)
	refreshReuseBy    = newChildren[prometheus.Counter](refreshReuse, dialectLabels, nil)
	cacheByResult     = newChildren[prometheus.Counter](cacheRequests, cacheResults, nil)
)

func init() {
	// Pre-create the known label combinations so zeros show on /metrics.
	for _, d := range dialectLabels {
		for _, r := range requestResults {
			requestsByDialect.resolve(d, r)
		}
		for _, r := range loginResults {
			loginsByDialect.resolve(d, r)
		}
		for _, a := range replayActions {
			replaysByDialect.resolve(d, a)
		}
		for _, r := range endReasons {
			endedByDialect.resolve(d, r)
		}
		createdByDialect.resolve(d, "")
		activeByDialect.resolve(d, "")
		verifyByDialect.resolve(d, "")
	}
	refreshReuseBy.resolve(string(caddyauth.DialectSXT), "")
	requestsByDialect.resolve("none", caddyauth.ResultMissing)
	requestsByDialect.resolve("none", caddyauth.ResultMalformed)
	for _, r := range cacheResults {
		cacheByResult.resolve(r, "")
	}
}

// labelled is what client_golang's vectors share: the child for a set of
// label values (CounterVec, GaugeVec, HistogramVec).
type labelled[T any] interface {
	WithLabelValues(lvs ...string) T
}

// children holds the resolved children of a vector with one label (cols
// nil) or two, for label values from closed sets: rows × cols, in order.
// It is filled in init and only read afterwards, so it needs no lock.
type children[T any] struct {
	vec        labelled[T]
	rows, cols []string
	cells      []child[T]
}

type child[T any] struct {
	c  T
	ok bool // resolved; an unresolved cell falls back to the vector
}

func newChildren[T any](vec labelled[T], rows, cols []string) *children[T] {
	return &children[T]{vec: vec, rows: rows, cols: cols, cells: make([]child[T], len(rows)*max(len(cols), 1))}
}

// cell returns the index of the (a, b) cell, or -1 if a or b is not one of
// the table's values. b is ignored for a one-label vector.
func (t *children[T]) cell(a, b string) int {
	i := indexOf(t.rows, a)
	if i < 0 || t.cols == nil {
		return i
	}
	j := indexOf(t.cols, b)
	if j < 0 {
		return -1
	}
	return i*len(t.cols) + j
}

// resolve creates the child for (a, b) (b ignored for a one-label vector)
// and keeps it. It panics on values outside the table: that is a mistake
// in this file, found by any test.
func (t *children[T]) resolve(a, b string) {
	i := t.cell(a, b)
	if i < 0 {
		panic("sessiongate metrics: label values " + a + "," + b + " are not in the table")
	}
	if t.cols == nil {
		t.cells[i] = child[T]{c: t.vec.WithLabelValues(a), ok: true}
	} else {
		t.cells[i] = child[T]{c: t.vec.WithLabelValues(a, b), ok: true}
	}
}

// one returns the child for the value a of a one-label vector.
func (t *children[T]) one(a string) T {
	if i := t.cell(a, ""); i >= 0 && t.cells[i].ok {
		return t.cells[i].c
	}
	return t.vec.WithLabelValues(a)
}

// two returns the child for the values a, b of a two-label vector.
func (t *children[T]) two(a, b string) T {
	if i := t.cell(a, b); i >= 0 && t.cells[i].ok {
		return t.cells[i].c
	}
	return t.vec.WithLabelValues(a, b)
}

// indexOf is the position of v in set, or -1. The sets hold at most ten
// short values: a scan beats hashing v.
func indexOf(set []string, v string) int {
	for i, s := range set {
		if s == v {
			return i
		}
	}
	return -1
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
