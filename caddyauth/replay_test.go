package caddyauth_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// SEC-23: a value is refused as seen while its TTL runs, and new again after.
func TestMemoryReplayGuardTTL_SEC23(t *testing.T) {
	clock := caddyauth.NewFakeClock(epoch)
	g := caddyauth.NewMemoryReplayGuard(10, clock)
	ctx := context.Background()
	const ttl = 61 * time.Second
	if first, err := g.SeenOnce(ctx, "amatino\x00id\x00sig", ttl); err != nil || !first {
		t.Fatalf("first SeenOnce = %v, %v", first, err)
	}
	for _, at := range []time.Duration{0, time.Second, ttl - time.Nanosecond} {
		clock.Set(epoch.Add(at))
		if first, _ := g.SeenOnce(ctx, "amatino\x00id\x00sig", ttl); first {
			t.Fatalf("SeenOnce at +%s = true, want false (within TTL)", at)
		}
	}
	// Repeats within the TTL do not extend it past the first sighting.
	clock.Set(epoch.Add(ttl))
	if first, _ := g.SeenOnce(ctx, "amatino\x00id\x00sig", ttl); !first {
		t.Fatal("SeenOnce at the TTL = false, want true (expired)")
	}
	// ...and a new sighting starts a new TTL.
	clock.Set(epoch.Add(2*ttl - time.Nanosecond))
	if first, _ := g.SeenOnce(ctx, "amatino\x00id\x00sig", ttl); first {
		t.Fatal("value seen again at its new TTL's end - 1ns reported as new")
	}
	// Other keys are independent; keys differing in one byte differ.
	if first, _ := g.SeenOnce(ctx, "amatino\x00id\x00siG", ttl); !first {
		t.Fatal("distinct key reported as seen")
	}
}

// SEC-23: memory stays bounded under a flood of distinct values.
func TestMemoryReplayGuardBounded_SEC23(t *testing.T) {
	const capacity = 1000
	clock := caddyauth.NewFakeClock(epoch)
	g := caddyauth.NewMemoryReplayGuard(capacity, clock)
	ctx := context.Background()
	for i := 0; i < 3*capacity; i++ {
		if first, err := g.SeenOnce(ctx, "k"+strconv.Itoa(i), time.Hour); err != nil || !first {
			t.Fatalf("key %d: %v, %v", i, first, err)
		}
		if g.Len() > capacity {
			t.Fatalf("Len = %d after %d keys, want <= %d", g.Len(), i+1, capacity)
		}
	}
	// The most recent values are still remembered.
	if first, _ := g.SeenOnce(ctx, "k"+strconv.Itoa(3*capacity-1), time.Hour); first {
		t.Fatal("most recent key forgotten")
	}
	// Huge keys cost a fixed-size digest, and still do not grow it.
	big := make([]byte, 1<<20)
	big[0] = 'x'
	g.SeenOnce(ctx, string(big), time.Hour)
	if g.Len() > capacity {
		t.Fatalf("Len = %d", g.Len())
	}
}

func TestMemoryReplayGuardDefaults(t *testing.T) {
	g := caddyauth.NewMemoryReplayGuard(0, nil)
	if first, err := g.SeenOnce(context.Background(), "a", time.Minute); err != nil || !first {
		t.Fatalf("SeenOnce = %v, %v", first, err)
	}
	if first, _ := g.SeenOnce(context.Background(), "a", time.Minute); first {
		t.Fatal("default guard forgot at once")
	}
	var _ caddyauth.ReplayGuard = g
}
