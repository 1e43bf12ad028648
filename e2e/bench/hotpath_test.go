package main

// Microbenchmarks of the gateway's per-request hot path. They start no Caddy
// and run only with -bench:
//
//	go test ./e2e/bench/ -run '^$' -bench . -benchmem

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
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

// hotHeaders is what a realistic amatino client request carries, plus two
// spoofed identity headers the gateway must delete.
var hotHeaders = http.Header{
	"User-Agent":      {"python-requests/2.31.0"},
	"Accept":          {"application/json"},
	"Accept-Encoding": {"gzip, deflate"},
	"Content-Type":    {"application/json"},
	"X-Session-Id":    {"123456"},
	"X-Signature":     {"XQOHuBQDB6RQIY1Uin+ADZNPI6LHu9Twj9PDHj8cfRseTuWnHY41+RpkBkyy4DMo5+cHN2dVKTXsIcsPLkpvwQ=="},
	"X-Request-Id":    {"7f9c2ba4e88f827d616045507605853e"},
	"X-Auth-User-Id":  {"1"},
	"X_auth_user_id":  {"1"},
	"Traceparent":     {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
}

// copyHeaders gives each iteration a fresh map (the rewrite mutates it).
func copyHeaders(dst http.Header) {
	clear(dst)
	for k, v := range hotHeaders {
		dst[k] = v
	}
}

// The map copy alone, to subtract from BenchmarkIdentityHeaderRewrite.
func BenchmarkIdentityHeaderCopyOnly(b *testing.B) {
	h := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		copyHeaders(h)
	}
}

// The header work of plugin/handler.go after a successful verification,
// written inline because the handler's methods are unexported: sanitize
// (delete every header whose folded name starts with the identity prefix,
// check Connection/Trailer), set the three identity headers, strip the
// amatino credentials. Includes copyHeaders (see the CopyOnly benchmark).
func BenchmarkIdentityHeaderRewrite(b *testing.B) {
	const prefix = "x-auth-"
	h := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		copyHeaders(h)
		for name := range h {
			if strings.HasPrefix(normHeader(name), prefix) {
				delete(h, name)
			}
		}
		for _, name := range []string{"Connection", "Trailer"} {
			for _, v := range h.Values(name) {
				for _, tok := range strings.Split(v, ",") {
					if strings.HasPrefix(normHeader(strings.TrimSpace(tok)), prefix) {
						b.Fatal("refused")
					}
				}
			}
		}
		h.Set("X-Auth-User-Id", "1001")
		h.Set("X-Auth-User-Email", "bench@example.test")
		h.Set("X-Auth-Username", "bench")
		amatino.StripCredentials(h)
	}
	if len(h) != 9 || h.Get("X-Auth-User-Id") != "1001" || h.Get("X-Signature") != "" {
		b.Fatalf("unexpected result: %v", h)
	}
}

// normHeader mirrors plugin/handler.go: lower case, `_` as `-`.
func normHeader(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}
