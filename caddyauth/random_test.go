package caddyauth_test

import (
	"encoding/base64"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// SEC-08: the api key is 32 random bytes in the documented amatino form.
func TestNewAmatinoKey_SEC08(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 20000; i++ {
		k := caddyauth.NewAmatinoKey()
		if len(k) != 44 || k[43] != 'A' {
			t.Fatalf("key %q: want 44 characters ending in the replaced 'A'", k)
		}
		raw, err := base64.URLEncoding.Strict().DecodeString(k[:43] + "=")
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q: decodes to %d bytes, %v", k, len(raw), err)
		}
		if seen[k] {
			t.Fatalf("duplicate key after %d", i)
		}
		seen[k] = true
	}
}

func TestNewSessionNumber(t *testing.T) {
	seen := make(map[int64]bool)
	for i := 0; i < 20000; i++ {
		n := caddyauth.NewSessionNumber()
		if n <= 0 || seen[n] {
			t.Fatalf("session number %d (dup=%v)", n, seen[n])
		}
		seen[n] = true
	}
}
