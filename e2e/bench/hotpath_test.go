package main

// Microbenchmarks of the gateway's per-request hot path. They start no Caddy
// and run only with -bench:
//
//	go test ./e2e/bench/ -run '^$' -bench . -benchmem

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

const (
	hotKey  = "q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA" // WIRE.md vector key
	hotNow  = int64(1_700_000_000)
	hotPath = "/entities"
)

// Current clients, clock in sync: the first HMAC (offset 0) matches.
func BenchmarkWindowSearchOffset0(b *testing.B) {
	key := []byte(hotKey)
	sig := sign.AmatinoMAC(key, hotNow, hotPath, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := sign.Search(key, sig, hotPath, nil, hotNow, 30); !ok {
			b.Fatal("no match")
		}
	}
}

// A forgery: every second of the default ±30 s window is tried (61 HMACs).
func BenchmarkWindowSearchWorst(b *testing.B) {
	key := []byte(hotKey)
	sig := bytes.Repeat([]byte{0x5A}, sign.SignatureLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := sign.Search(key, sig, hotPath, nil, hotNow, 30); ok {
			b.Fatal("junk matched")
		}
	}
}

// A cache hit in the session key cache (the default size).
func BenchmarkCacheHit(b *testing.B) {
	c := caddyauth.NewKeyCache(100_000, 30*time.Second)
	now := time.Now()
	s := &caddyauth.Session{ID: "123456", UserID: 1001, Secret: []byte(hotKey), Created: now,
		LastSeen: now, AbsoluteDeadline: now.Add(24 * time.Hour)}
	fill := func(context.Context) (*caddyauth.Session, error) { return s, nil }
	ctx := context.Background()
	if _, _, err := c.Load(ctx, s.ID, now, fill); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := c.Load(ctx, s.ID, now, fill); err != nil || !hit {
			b.Fatal("no hit", err)
		}
	}
}

// The identity-header work after a verification (sanitize, setIdentity) is
// measured on the handler itself by plugin's BenchmarkSanitize and
// BenchmarkHotServeHTTPAmatinoGET, not by a copy of it here.

// newTokenManager is a Manager on the memory store with one sxt session; it
// returns the session's access token.
func newTokenManager(b *testing.B) (*caddyauth.Manager, string) {
	b.Helper()
	u := caddyauth.User{ID: 1001, Email: "bench@example.test", Username: "bench", PasswordHash: enginetest.Hash(b, "x")}
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{u})
	if err != nil {
		b.Fatal(err)
	}
	m, err := caddyauth.NewManager(caddyauth.Config{Store: memory.New(), Users: users,
		Hasher: enginetest.CheapHasher(b), Sealer: enginetest.NewSealer(b)})
	if err != nil {
		b.Fatal(err)
	}
	_, pair, err := m.StartTokenSession(context.Background(), &u, caddyauth.DialectSXT,
		caddyauth.TokenLifetimes{Access: time.Hour, Refresh: 2 * time.Hour, Session: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return m, pair.Access
}

// The sxt hot path: Manager.AccessSession of a valid access token, found
// through the key cache by the token's digest (syntax check, SHA-256, hex,
// cache key, LRU hit, token lookup in the session, kind and expiry checks).
func BenchmarkTokenAccessSession(b *testing.B) {
	m, tok := newTokenManager(b)
	ctx := context.Background()
	if _, err := m.AccessSession(ctx, tok); err != nil { // fills the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, err := m.AccessSession(ctx, tok); err != nil || s.UserID != 1001 {
			b.Fatal("access session:", err)
		}
	}
	if hits, _ := m.Cache().Stats(); hits == 0 {
		b.Fatal("the benchmark never hit the cache")
	}
}

// The digest alone (SHA-256 of the 43-character token, hex), the part of
// the token lookup that does not depend on the cache.
func BenchmarkTokenDigest(b *testing.B) {
	tok := caddyauth.NewBearerToken()
	b.ReportAllocs()
	for b.Loop() {
		if d := caddyauth.TokenDigest(tok); len(d) != 64 {
			b.Fatal("digest length", len(d))
		}
	}
}

// The load generator's per-request amatino signing (e2e/bench's own client):
// compare with Caddy's CPU per request to see the generator is not the
// bottleneck.
func BenchmarkGeneratorSign(b *testing.B) {
	a := &amatinoAuth{id: "123456", key: []byte(hotKey), path: hotPath}
	now := time.Unix(hotNow, 0)
	want := sign.AmatinoMAC([]byte(hotKey), hotNow, hotPath, nil)
	b.ReportAllocs()
	for b.Loop() {
		if got, err := sign.DecodeSignature(a.sign(a.key, now)); err != nil || !bytes.Equal(got, want) {
			b.Fatal("generator signature differs from the product's", err)
		}
	}
}

// heapPerEntry fills n entries with fill and reports the live heap growth
// per entry (after GC) as the "bytes/entry" metric; keep holds what was
// filled until after the measurement.
func heapPerEntry(b *testing.B, n int, fill func() (keep any)) {
	b.Helper()
	var before, after runtime.MemStats
	var per float64
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep := fill()
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
		runtime.KeepAlive(keep)
	}
	if per <= 0 {
		b.Fatalf("heap did not grow (%.0f bytes per entry)", per)
	}
	b.ReportMetric(per, "bytes/entry")
}

// The key cache's memory per entry, full at its default size with amatino
// sessions as Manager.Session caches them (19-digit id, opened 44-byte key):
// DESIGN.md asks for the cost per entry in bytes.
func BenchmarkKeyCacheEntryBytes(b *testing.B) {
	const n = caddyauth.DefaultCacheSize
	now := time.Now()
	ctx := context.Background()
	heapPerEntry(b, n, func() any {
		c := caddyauth.NewKeyCache(n, time.Hour)
		for i := range n {
			id := strconv.FormatInt(1_000_000_000_000_000_000+int64(i), 10)
			s := &caddyauth.Session{ID: id, UserID: 1001, Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey,
				Secret: []byte(caddyauth.NewAmatinoKey()), Created: now, LastSeen: now, AbsoluteDeadline: now.Add(24 * time.Hour)}
			if _, _, err := c.Load(ctx, id, now, func(context.Context) (*caddyauth.Session, error) { return s, nil }); err != nil {
				b.Fatal(err)
			}
		}
		if c.Len() != n {
			b.Fatalf("cache holds %d entries, want %d", c.Len(), n)
		}
		return c
	})
}

// The replay memory's cost per remembered amatino signature, full at its
// default size: with many sessions, every signature is new, so it fills as
// fast as the key cache.
func BenchmarkReplayEntryBytes(b *testing.B) {
	const n = caddyauth.DefaultReplayCacheSize
	ctx := context.Background()
	sig := strings.Repeat("A", 86) + "=="
	heapPerEntry(b, n, func() any {
		g := caddyauth.NewMemoryReplayGuard(n, nil)
		// The guard makes room per bucket of 8 values, so n distinct
		// values leave some buckets short of full while others have
		// overflowed: keep adding until it holds n, full as in the run
		// of a busy gateway.
		for i := 0; g.Len() < n; {
			if i >= 20*n {
				b.Fatalf("guard holds %d values after %d, want %d", g.Len(), i, n)
			}
			for range n / 10 {
				key := "amatino\x00" + strconv.FormatInt(1_000_000_000_000_000_000+int64(i), 10) + "\x00" + sig
				if first, err := g.SeenOnce(ctx, key, time.Minute); err != nil || !first {
					b.Fatal("replay guard:", first, err)
				}
				i++
			}
		}
		return g
	})
}
