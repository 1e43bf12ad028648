package caddyauth_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// The most recent value is still remembered. (Which older ones are is
	// no longer "the last capacity of them", as with the LRU this guard
	// used to be: the set forgets per bucket of 8, the soonest-expiring
	// first; TestMemoryReplayGuardEvictsSoonestExpiring_SEC23.)
	if first, _ := g.SeenOnce(ctx, "k"+strconv.Itoa(3*capacity-1), time.Hour); first {
		t.Fatal("most recent key forgotten")
	}
	// Huge keys cost a fixed-size digest, and still do not grow it.
	big := make([]byte, 1<<20)
	big[0] = 'x'
	if _, err := g.SeenOnce(ctx, string(big), time.Hour); err != nil {
		t.Fatal(err)
	}
	if g.Len() > capacity {
		t.Fatalf("Len = %d", g.Len())
	}
}

// SEC-23: when a full guard must forget a value to remember a new one, it
// forgets the one whose ttl ends first, even if it was seen (repeated) last.
// The LRU this guard used to be forgot the least recently seen value
// instead, and these cases expected that. The expiry order is the better
// one for replay marks: a mark about to expire is the cheapest to lose, as
// its signature is about to leave its time window anyway, after which the
// timestamp check refuses it whatever the guard remembers; a repeat of a
// mark is an attack to refuse, not a sign of use worth keeping it for.
// A guard of size 8 is one bucket, so every key competes for the same room.
func TestMemoryReplayGuardEvictsSoonestExpiring_SEC23(t *testing.T) {
	const ways = 8
	for _, tc := range []struct {
		name string
		ttls [ways]time.Duration // ttl of k0..k7, remembered in that order
		// advance is how far the clock moves after each of k0..k7.
		advance time.Duration
		// repeat is seen again (refused) just before the flood value.
		repeat int
		// forgotten is the value the flood value displaces (or, when
		// expired, replaces).
		forgotten int
	}{
		{name: "one ttl: the oldest goes", advance: time.Second, repeat: 0, forgotten: 0,
			ttls: [ways]time.Duration{time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour}},
		{name: "shortest ttl goes, though seen last", advance: time.Second, repeat: 5, forgotten: 5,
			ttls: [ways]time.Duration{time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Minute, time.Hour, time.Hour}},
		{name: "soonest expiry goes, not shortest ttl", advance: time.Minute, repeat: 3, forgotten: 0,
			ttls: [ways]time.Duration{10 * time.Minute, time.Hour, time.Hour, 9 * time.Minute, time.Hour, time.Hour, time.Hour, time.Hour}},
		// k1 expired at +2m; k0, the soonest-expiring live value, stays.
		{name: "an expired value makes room first", advance: time.Minute, repeat: 7, forgotten: 1,
			ttls: [ways]time.Duration{time.Hour, time.Minute, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := caddyauth.NewFakeClock(epoch)
			g := caddyauth.NewMemoryReplayGuard(ways, clock)
			ctx := context.Background()
			key := func(i int) string { return "k" + strconv.Itoa(i) }
			for i, ttl := range tc.ttls {
				if first, _ := g.SeenOnce(ctx, key(i), ttl); !first {
					t.Fatalf("%s new, reported as seen", key(i))
				}
				clock.Advance(tc.advance)
			}
			if first, _ := g.SeenOnce(ctx, key(tc.repeat), tc.ttls[tc.repeat]); first {
				t.Fatalf("%s forgotten before the guard was full", key(tc.repeat))
			}
			if first, _ := g.SeenOnce(ctx, "flood", time.Hour); !first {
				t.Fatal("flood value new, reported as seen")
			}
			// Check the survivors first: asking about the forgotten
			// value remembers it again, displacing another.
			for i := range ways {
				if i == tc.forgotten {
					continue
				}
				if first, _ := g.SeenOnce(ctx, key(i), time.Hour); first {
					t.Fatalf("%s forgotten, want %s forgotten instead", key(i), key(tc.forgotten))
				}
			}
			if first, _ := g.SeenOnce(ctx, key(tc.forgotten), time.Hour); !first {
				t.Fatalf("%s still remembered, want it forgotten for the flood value", key(tc.forgotten))
			}
		})
	}
}

// SEC-23: a flood of distinct values costs no memory beyond the table built
// with the guard: after warm-up, a million SeenOnce calls of values it cannot
// all hold allocate nothing at all (an LRU allocated an entry per value), and
// the guard never holds more than its size.
func TestSeenOnceFloodAllocatesNothing_SEC23(t *testing.T) {
	const size = 1000
	runs := 1_000_000
	if testing.Short() {
		runs = 50_000
	}
	keys := replayBenchKeys(1 << 16) // more than size: every call is new
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		g    interface {
			caddyauth.ReplayGuard
			Len() int
		}
	}{
		{"MemoryReplayGuard", caddyauth.NewMemoryReplayGuard(size, nil)},
		{"LocalEphemeral", caddyauth.NewLocalEphemeral(size, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, firsts := 0, 0
			allocs := testing.AllocsPerRun(runs, func() {
				if first, _ := tc.g.SeenOnce(ctx, keys[i%len(keys)], time.Hour); first {
					firsts++
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("%v allocations per SeenOnce under a flood, want 0", allocs)
			}
			if n := tc.g.Len(); n > size || n < size/2 {
				t.Errorf("Len = %d after the flood, want <= %d (and most of it used)", n, size)
			}
			if firsts < runs*99/100 {
				t.Errorf("%d of %d flood values reported new", firsts, runs)
			}
		})
	}
}

// SEC-23, REL-09: of concurrent SeenOnce calls for one value, exactly one is
// first; distinct values racing each other are each first exactly once.
func TestSeenOnceConcurrent_SEC23(t *testing.T) {
	const goroutines = 64
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		g    caddyauth.ReplayGuard
	}{
		{"MemoryReplayGuard", caddyauth.NewMemoryReplayGuard(0, nil)},
		{"LocalEphemeral", caddyauth.NewLocalEphemeral(0, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var same, distinct atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for n := range goroutines {
				wg.Go(func() {
					<-start
					if first, err := tc.g.SeenOnce(ctx, "contested", time.Minute); err == nil && first {
						same.Add(1)
					}
					for j := range 100 {
						key := "own\x00" + strconv.Itoa(n) + "\x00" + strconv.Itoa(j)
						if first, err := tc.g.SeenOnce(ctx, key, time.Minute); err == nil && first {
							distinct.Add(1)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if same.Load() != 1 {
				t.Errorf("%d of %d concurrent calls saw one value first, want 1", same.Load(), goroutines)
			}
			if distinct.Load() != goroutines*100 {
				t.Errorf("%d distinct values first, want %d", distinct.Load(), goroutines*100)
			}
		})
	}
}

// Replay marks live apart from challenges and failure counts: a flood of
// them cannot push a pending challenge out of LocalEphemeral's LRU (they
// shared it before).
func TestLocalEphemeralReplayMarksApart(t *testing.T) {
	ctx := context.Background()
	e := caddyauth.NewLocalEphemeral(10, nil)
	if err := e.PutOnce(ctx, "code:x", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		_, _ = e.SeenOnce(ctx, "replay:"+strconv.Itoa(i), time.Minute)
	}
	if v, err := e.TakeOnce(ctx, "code:x"); err != nil || string(v) != "v" {
		t.Fatalf("challenge after a flood of replay marks: %q, %v", v, err)
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

// replayBenchKeys are amatino-shaped replay keys ("amatino", 19-digit session
// id, 88-character signature), built once so the benchmarks time SeenOnce only.
func replayBenchKeys(n int) []string {
	sig := strings.Repeat("A", 86) + "=="
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "amatino\x00" + strconv.FormatInt(1_000_000_000_000_000_000+int64(i), 10) + "\x00" + sig
	}
	return keys
}

// BenchmarkSeenOnce times the in-memory "seen once" operations at their
// default capacity: hit is a value already remembered (a replay), miss a new
// one (every honest request), each serial and from all Ps at once.
func BenchmarkSeenOnce(b *testing.B) {
	const hot = 1 << 10 // remembered values the hit benchmarks cycle through
	keys := replayBenchKeys(1 << 20)
	ctx := context.Background()
	for _, g := range []struct {
		name string
		new  func() caddyauth.ReplayGuard
	}{
		{"memory", func() caddyauth.ReplayGuard { return caddyauth.NewMemoryReplayGuard(0, nil) }},
		{"ephemeral", func() caddyauth.ReplayGuard { return caddyauth.NewLocalEphemeral(0, nil) }},
	} {
		b.Run(g.name+"/hit", func(b *testing.B) {
			r := g.new()
			for _, k := range keys[:hot] {
				_, _ = r.SeenOnce(ctx, k, time.Hour)
			}
			i := 0
			for b.Loop() {
				if first, _ := r.SeenOnce(ctx, keys[i%hot], time.Hour); first {
					b.Fatal("remembered value reported as new")
				}
				i++
			}
		})
		b.Run(g.name+"/miss", func(b *testing.B) {
			r := g.new()
			i := 0
			for b.Loop() {
				_, _ = r.SeenOnce(ctx, keys[i%len(keys)], time.Hour)
				i++
			}
		})
		b.Run(g.name+"/hit-parallel", func(b *testing.B) {
			r := g.new()
			for _, k := range keys[:hot] {
				_, _ = r.SeenOnce(ctx, k, time.Hour)
			}
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)) * 97
				for pb.Next() {
					_, _ = r.SeenOnce(ctx, keys[i%hot], time.Hour)
					i++
				}
			})
		})
		b.Run(g.name+"/miss-parallel", func(b *testing.B) {
			r := g.new()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = r.SeenOnce(ctx, keys[int(next.Add(1))%len(keys)], time.Hour)
				}
			})
		})
	}
}
