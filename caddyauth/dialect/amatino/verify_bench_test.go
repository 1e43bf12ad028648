package amatino_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// wallCostClock is frozen at one second, so a signature made before the
// loop stays at offset 0, but every read still pays for a real time.Now:
// the clock reads Verify causes are part of what these benchmarks measure.
type wallCostClock struct{ t time.Time }

func (c wallCostClock) Now() time.Time {
	_ = time.Now()
	return c.t
}

// newBenchDialect builds the dialect the way a single-node gateway runs it:
// memory store, default key cache, default replay guard and default abuse
// controls (signature lock on), no-op observer. The session wireSessionID
// exists and is cached before the loop.
func newBenchDialect(b *testing.B, opts amatino.Options) *amatino.Dialect {
	b.Helper()
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 101, Email: "alice@example.com",
		PasswordHash: enginetest.Hash(b, alicePW)}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := caddyauth.NewManager(caddyauth.Config{Store: enginetest.NewStore(), Users: users,
		Hasher: enginetest.CheapHasher(b), Sealer: enginetest.NewSealer(b), Clock: wallCostClock{time.Unix(wireTS, 0)}})
	if err != nil {
		b.Fatal(err)
	}
	d, err := amatino.New(m, opts)
	if err != nil {
		b.Fatal(err)
	}
	u, err := users.UserByID(context.Background(), 101)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.StartSession(context.Background(), caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
		Kind: caddyauth.KindHMACKey, ID: wireSessionID, Secret: []byte(wireKey), Lifetime: 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	return d
}

// benchVerify runs Verify on one request over and over. The same request
// is reused: Verify puts a body it read back in place, so each iteration
// reads it afresh, and the signature is a repeat after the first iteration
// (observe mode counts it and lets it through, as for real clients that
// repeat a signature within a second).
func benchVerify(b *testing.B, opts amatino.Options, method string, sig string, body []byte) {
	d := newBenchDialect(b, opts)
	r := signed(method, wirePath, wireSessionID, sig, body)
	path := amatino.SignedPath(r)
	if _, ref := d.Verify(r, path); ref != nil {
		b.Fatalf("refused %d %s: %s", ref.Status, ref.Code, ref.Message)
	}
	b.ReportAllocs()
	cpu0, ok0 := processCPU()
	for b.Loop() {
		if _, ref := d.Verify(r, path); ref != nil {
			b.Fatalf("refused %d %s: %s", ref.Status, ref.Code, ref.Message)
		}
	}
	// On a shared machine wall time per op swings with other load; the
	// process's CPU time per op (GC included) swings far less.
	if cpu1, ok1 := processCPU(); ok0 && ok1 && b.N > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkVerifyGET is a current client's signed GET with an in-sync
// clock: one HMAC at offset 0, the session from the cache, the replay mark.
func BenchmarkVerifyGET(b *testing.B) {
	benchVerify(b, amatino.Options{}, http.MethodGet, wireSig, nil)
}

// BenchmarkVerifyPOSTPath64KiB is a current client's POST with a 64 KiB
// body it did not sign: the body must be neither read nor hashed.
func BenchmarkVerifyPOSTPath64KiB(b *testing.B) {
	benchVerify(b, amatino.Options{}, http.MethodPost, wireSig, bytes.Repeat([]byte("a"), 64<<10))
}

// BenchmarkVerifyPOSTLegacyBody64KiB is an older client's POST whose
// signature covers its 64 KiB body (legacy_body_signatures, the default),
// with an in-sync clock.
func BenchmarkVerifyPOSTLegacyBody64KiB(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 64<<10)
	benchVerify(b, amatino.Options{}, http.MethodPost, sigAt(wireKey, wireTS, wirePath, body), body)
}
