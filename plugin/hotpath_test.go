package plugin

// The handler's per-request hot path, measured through ServeHTTP without
// starting Caddy: e2e/bench/results/notes.md lists sanitize, setIdentity,
// withRequestContext and the Prometheus lookups as the handler's own cost
// besides the verifier. Run with
//
//	go test -run '^$' -bench 'Hot|Sanitize|Observer' -benchmem ./plugin/

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

const (
	hotSessionID = "123456"
	hotKey       = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA" // WIRE.md vector key
	hotPath      = "/entities"
	hotUserID    = 1001
)

// hotFixture is an amatino handler on a memory-store app with one static
// user and one session, and a signed GET of hotPath as a python-requests
// client sends it (ten ordinary and credential headers) plus two spoofed
// identity headers the handler must delete.
type hotFixture struct {
	h      *Handler
	base   *http.Request
	ctx    context.Context // Caddy's per-request context, without the replacer
	header http.Header     // the client's headers; copied into each request
}

func newHotFixture(tb testing.TB) *hotFixture {
	tb.Helper()
	a := &App{Store: &StoreConfig{Backend: "memory"}, Hash: cheapHash,
		Users: []UserConfig{{ID: hotUserID, Email: "bench@example.test", Username: "bench",
			PasswordHash: enginetest.Hash(tb, "x")}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		tb.Fatalf("provision app: %v", err)
	}
	tb.Cleanup(func() { a.Cleanup() })
	u, err := a.Manager().IdentityUser(context.Background(), hotUserID)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := a.Manager().StartSession(context.Background(), caddyauth.NewSession{User: u,
		Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey, ID: hotSessionID, Secret: []byte(hotKey),
		Lifetime: time.Hour}); err != nil {
		tb.Fatal(err)
	}
	h := &Handler{Amatino: &AmatinoConfig{}}
	if err := h.provision(a); err != nil {
		tb.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		tb.Fatal(err)
	}

	// X-Timestamp pins the signed second: one HMAC per request however
	// long the benchmark runs (a run stays well inside the 30 s window).
	ts := time.Now().Unix()
	f := &hotFixture{h: h, header: http.Header{
		"User-Agent":      {"python-requests/2.31.0"},
		"Accept":          {"application/json"},
		"Accept-Encoding": {"gzip, deflate"},
		"Connection":      {"keep-alive"},
		"X-Session-Id":    {hotSessionID},
		"X-Signature":     {sign.AmatinoSign([]byte(hotKey), ts, hotPath, nil)},
		"X-Timestamp":     {strconv.FormatInt(ts, 10)},
		"X-Request-Id":    {"7f9c2ba4e88f827d616045507605853e"},
		"Traceparent":     {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Forwarded":       {"for=192.0.2.60;proto=https"},
		"X-Auth-User-Id":  {"1"},
		"X_auth_user_id":  {"1"},
	}}
	f.base = httptest.NewRequest(http.MethodGet, hotPath, nil)
	// What Caddy's server puts in every request's context before the
	// handler chain: the vars (with the client IP) and the original request.
	vars := map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.60"}
	f.ctx = context.WithValue(context.Background(), caddyhttp.VarsCtxKey, vars)
	f.ctx = context.WithValue(f.ctx, caddyhttp.OriginalRequestCtxKey, *f.base)
	return f
}

// request returns a fresh request carrying the client's headers in hdr
// (cleared and refilled, so a benchmark reuses one map) and a new
// replacer, as Caddy makes one per request.
func (f *hotFixture) request(hdr http.Header) (*http.Request, *caddy.Replacer) {
	clear(hdr)
	for k, v := range f.header {
		hdr[k] = v
	}
	repl := caddy.NewReplacer()
	r := f.base.WithContext(context.WithValue(f.ctx, caddy.ReplacerCtxKey, repl))
	r.Header = hdr
	return r, repl
}

// passed is the next handler: it records the request it was given.
type passed struct{ r *http.Request }

func (p *passed) ServeHTTP(_ http.ResponseWriter, r *http.Request) error {
	p.r = r
	return nil
}

// TestServeHTTPAmatinoHotPathSEC40: the benchmarked request passes with the
// identity headers and placeholders set, the spoofed identity headers and
// the credentials gone (SEC-40, SEC-43), and the success counted in the
// series /metrics shows (SEC-47).
func TestServeHTTPAmatinoHotPathSEC40(t *testing.T) {
	f := newHotFixture(t)
	okBefore := counterValue(t, requestsTotal, "amatino", "ok")
	var next passed
	r, repl := f.request(make(http.Header))
	w := httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, r, &next); err != nil {
		t.Fatal(err)
	}
	if next.r == nil {
		t.Fatalf("request refused: %d %s", w.Code, w.Body)
	}
	got := next.r.Header
	want := map[string]string{"X-Auth-User-Id": "1001", "X-Auth-User-Email": "bench@example.test",
		"X-Auth-Username": "bench", "X_auth_user_id": "", "X-Session-Id": "", "X-Signature": "", "X-Timestamp": "",
		"User-Agent": "python-requests/2.31.0", "Connection": "keep-alive"}
	for name, v := range want {
		if g := got[name]; v == "" && len(g) != 0 || v != "" && (len(g) != 1 || g[0] != v) {
			t.Errorf("header %s = %q, want %q", name, g, v)
		}
	}
	for name, v := range map[string]string{"http.auth.user.id": "1001", "http.auth.user.email": "bench@example.test",
		"http.auth.user.username": "bench", "http.auth.user.dialect": "amatino"} {
		if g, _ := repl.GetString(name); g != v {
			t.Errorf("placeholder %s = %q, want %q", name, g, v)
		}
	}
	if d := counterValue(t, requestsTotal, "amatino", "ok") - okBefore; d != 1 {
		t.Errorf("requests_total{amatino,ok} grew by %v, want 1", d)
	}
}

// BenchmarkHotServeHTTPAmatinoGET: a signed amatino GET through
// Handler.ServeHTTP on a key-cache hit, including what the harness does per
// request (header map refill, a replacer and a context, as Caddy's server
// makes them). The signature repeats, so replay observe counts it each time.
func BenchmarkHotServeHTTPAmatinoGET(b *testing.B) {
	f := newHotFixture(b)
	var next passed
	w := httptest.NewRecorder()
	hdr := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := f.request(hdr)
		next.r = nil
		if err := f.h.ServeHTTP(w, r, &next); err != nil || next.r == nil {
			b.Fatalf("request refused: %v %d %s", err, w.Code, w.Body)
		}
	}
}

// BenchmarkHotHarness is the harness alone (BenchmarkHotServeHTTPAmatinoGET
// minus ServeHTTP), to subtract.
func BenchmarkHotHarness(b *testing.B) {
	f := newHotFixture(b)
	hdr := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := f.request(hdr); r == nil {
			b.Fatal("no request")
		}
	}
}

// BenchmarkSanitize: sanitize of the fixture's headers (two spoofed identity
// headers deleted, a Connection header checked).
func BenchmarkSanitize(b *testing.B) {
	f := newHotFixture(b)
	hdr := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := f.request(hdr)
		if ref := f.h.sanitize(r); ref != nil {
			b.Fatal("refused:", ref.Message)
		}
	}
}

// BenchmarkObserverCounters: the observer calls of a verified request with
// a repeated signature (a key-cache hit and an observed replay).
func BenchmarkObserverCounters(b *testing.B) {
	o := &observer{}
	b.ReportAllocs()
	for b.Loop() {
		o.CacheLookup(true)
		o.Replay(caddyauth.DialectAmatino, "observed")
	}
}

// counterValue reads the child of vec that /metrics exposes for lvs.
func counterValue(t *testing.T, vec *prometheus.CounterVec, lvs ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(vec.WithLabelValues(lvs...))
}
