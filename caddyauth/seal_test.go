package caddyauth_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := caddyauth.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d bytes) succeeded", n)
		}
	}
	if _, err := caddyauth.NewSealer(make([]byte, caddyauth.MasterKeySize)); err != nil {
		t.Fatal(err)
	}
	a, b := caddyauth.NewMasterKey(), caddyauth.NewMasterKey()
	if len(a) != caddyauth.MasterKeySize || bytes.Equal(a, b) {
		t.Fatalf("NewMasterKey: %x, %x", a, b)
	}
}

// SEC-16: secrets at rest are AES-256-GCM sealed, bound to the session id.
func TestSealerRoundTripAndTamper_SEC16(t *testing.T) {
	key := caddyauth.NewMasterKey()
	s, err := caddyauth.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("q3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvMA")
	sealed := s.Seal("4200100", secret)
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the secret")
	}
	if again := s.Seal("4200100", secret); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one secret are identical (nonce reuse?)")
	}
	got, err := s.Open("4200100", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// The same master key in a new Sealer (a restart) opens it.
	s2, _ := caddyauth.NewSealer(key)
	if got, err := s2.Open("4200100", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open after restart = %q, %v", got, err)
	}

	// Wrong id (AAD).
	for _, id := range []string{"4200101", "420010", "", "4200100 "} {
		if got, err := s.Open(id, sealed); !errors.Is(err, caddyauth.ErrSealOpen) || got != nil {
			t.Errorf("Open with id %q = (%q, %v), want ErrSealOpen", id, got, err)
		}
	}
	// Any single flipped bit anywhere.
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(sealed)
			bad[i] ^= bit
			if got, err := s.Open("4200100", bad); !errors.Is(err, caddyauth.ErrSealOpen) || got != nil {
				t.Fatalf("byte %d ^ %#x: Open = (%q, %v), want ErrSealOpen", i, bit, got, err)
			}
		}
	}
	// Truncated or extended.
	for _, bad := range [][]byte{nil, {}, sealed[:1], sealed[:13], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		if _, err := s.Open("4200100", bad); !errors.Is(err, caddyauth.ErrSealOpen) {
			t.Errorf("Open(%d bytes) = %v, want ErrSealOpen", len(bad), err)
		}
	}
	// Wrong master key.
	other := enginetest.NewSealer(t)
	if got, err := other.Open("4200100", sealed); !errors.Is(err, caddyauth.ErrSealOpen) || got != nil {
		t.Fatalf("Open with another key = (%q, %v)", got, err)
	}
	// Empty secrets round-trip too.
	if got, err := s.Open("x", s.Seal("x", nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty secret: %q, %v", got, err)
	}
}

// SEC-44 (via Sealer.LogHash): stable, keyed, never the id itself.
func TestSealerLogHash(t *testing.T) {
	key := caddyauth.NewMasterKey()
	s, _ := caddyauth.NewSealer(key)
	s2, _ := caddyauth.NewSealer(key)
	other := enginetest.NewSealer(t)
	hexRe := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, id := range []string{"4200100", "1", "9223372036854775807", "deadbeef", ""} {
		h := s.LogHash(id)
		if !hexRe.MatchString(h) {
			t.Errorf("LogHash(%q) = %q, want 16 lower-case hex digits", id, h)
		}
		if len(id) >= 4 && strings.Contains(h, id) { // a 1-digit id is in a random hex string by chance
			t.Errorf("LogHash(%q) = %q contains the id", id, h)
		}
		if s.LogHash(id) != h || s2.LogHash(id) != h {
			t.Errorf("LogHash(%q) not stable across calls or restarts", id)
		}
		if other.LogHash(id) == h {
			t.Errorf("LogHash(%q) does not depend on the master key", id)
		}
	}
	if s.LogHash("1") == s.LogHash("2") {
		t.Error("distinct ids hash alike")
	}
}
