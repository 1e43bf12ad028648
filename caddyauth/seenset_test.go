package caddyauth

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

var seenEpoch = time.Unix(1700000000, 0).UTC()

// SEC-23: the bound is fixed by the configured size, rounded up to whole
// buckets, defaulted, and capped so an absurd size cannot exhaust memory.
func TestSeenSetCapacity_SEC23(t *testing.T) {
	for _, tc := range []struct {
		size, want int
	}{
		{-5, DefaultReplayCacheSize},
		{0, DefaultReplayCacheSize},
		{1, seenWays},
		{seenWays, seenWays},
		{seenWays + 1, 2 * seenWays},
		{10, 16},
		{DefaultReplayCacheSize, DefaultReplayCacheSize},
		{MaxReplayCacheSize, MaxReplayCacheSize},
		{math.MaxInt, MaxReplayCacheSize},
	} {
		// The largest sizes are checked without allocating their table.
		if got := seenBuckets(tc.size) * seenWays; got != tc.want {
			t.Errorf("size %d: capacity %d, want %d", tc.size, got, tc.want)
		}
		if tc.want <= DefaultReplayCacheSize {
			if got := newSeenSet(tc.size).capacity(); got != tc.want {
				t.Errorf("newSeenSet(%d).capacity() = %d, want %d", tc.size, got, tc.want)
			}
		}
	}
}

// SEC-23: one value's life: first once, refused within its ttl (a repeat does
// not extend it), new again from its expiry on; a ttl too large saturates
// instead of wrapping into the past; a ttl <= 0 remembers nothing and so
// evicts nothing.
func TestSeenSetTTL_SEC23(t *testing.T) {
	type step struct {
		at    time.Duration // since seenEpoch
		ttl   time.Duration
		first bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"within and after ttl", []step{
			{0, time.Minute, true},
			{0, time.Minute, false},
			{time.Minute - time.Nanosecond, time.Minute, false},
			{time.Minute, time.Minute, true}, // the repeat above did not extend it
			{2*time.Minute - time.Nanosecond, time.Minute, false},
			{2 * time.Minute, time.Minute, true},
		}},
		{"zero ttl remembers nothing", []step{
			{0, 0, true},
			{0, 0, true},
			{0, time.Minute, true},
			{time.Second, 0, false}, // the mark from the minute ttl holds
		}},
		{"negative ttl remembers nothing", []step{
			{0, -time.Hour, true},
			{0, -time.Hour, true},
		}},
		{"huge ttl saturates", []step{
			{0, time.Duration(math.MaxInt64), true},
			{200 * 365 * 24 * time.Hour, time.Minute, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeenSet(seenWays)
			for i, st := range tc.steps {
				if got := s.seenOnce("amatino\x00id\x00sig", seenEpoch.Add(st.at), st.ttl); got != st.first {
					t.Fatalf("step %d (+%s, ttl %s): first = %v, want %v", i, st.at, st.ttl, got, st.first)
				}
			}
		})
	}
}

// SEC-23: a ttl <= 0 must not push a live value out of a full bucket.
func TestSeenSetZeroTTLEvictsNothing_SEC23(t *testing.T) {
	s := newSeenSet(seenWays) // one bucket: every key lands in it
	for i := range seenWays {
		s.seenOnce("live"+strconv.Itoa(i), seenEpoch, time.Hour)
	}
	for i := range 100 {
		s.seenOnce("zero"+strconv.Itoa(i), seenEpoch, 0)
	}
	for i := range seenWays {
		if s.seenOnce("live"+strconv.Itoa(i), seenEpoch, time.Hour) {
			t.Fatalf("live%d forgotten after values with ttl 0", i)
		}
	}
}

// SEC-23: against a reference model of the policy, over a long random run
// with expiries and overflows: each value is first exactly once within its
// ttl unless its bucket overflowed, and an overflowing bucket forgets its
// soonest-expiring value. The model uses the set's own bucket choice, so
// it checks everything but that choice's randomness.
func TestSeenSetMatchesModel_SEC23(t *testing.T) {
	const (
		size = 256 // 32 buckets
		keys = 3000
		ops  = 60_000
		// Times advance by 1001 ns per op and ttls are whole
		// milliseconds, so no two expiries are equal within 10^6 ops
		// and the model's choice of victim is never a tie.
		step = 1001 * time.Nanosecond
	)
	s := newSeenSet(size)
	model := make([]map[string]int64, len(s.buckets))
	for i := range model {
		model[i] = map[string]int64{}
	}
	rng := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- a fixed seed, so a failure reproduces
	var firsts, repeats, evictions int
	for op := range ops {
		now := seenEpoch.Add(time.Duration(op) * step)
		tn := now.UnixNano()
		key := "k" + strconv.Itoa(rng.IntN(keys))
		ttl := time.Duration(1+rng.IntN(50)) * time.Millisecond
		_, bi := s.locate(key)
		b := model[bi]
		for k, exp := range b {
			if exp <= tn {
				delete(b, k)
			}
		}
		_, seen := b[key]
		if !seen {
			if len(b) == seenWays {
				victim := ""
				for k, exp := range b {
					if victim == "" || exp < b[victim] {
						victim = k
					}
				}
				delete(b, victim)
				evictions++
			}
			b[key] = tn + int64(ttl)
		}
		if got := s.seenOnce(key, now, ttl); got != !seen {
			t.Fatalf("op %d: seenOnce(%q) = %v, model says %v", op, key, got, !seen)
		}
		if seen {
			repeats++
		} else {
			firsts++
		}
		if op%1000 == 0 {
			want := 0
			for _, b := range model {
				for _, exp := range b {
					if exp > tn {
						want++
					}
				}
			}
			if got := s.len(now); got != want {
				t.Fatalf("op %d: len = %d, model holds %d", op, got, want)
			}
		}
	}
	// The run must have exercised every branch to mean anything.
	if firsts == 0 || repeats == 0 || evictions == 0 {
		t.Fatalf("run too tame: %d firsts, %d repeats, %d evictions", firsts, repeats, evictions)
	}
}

// The bucket choice spreads keys over every bucket (a broken choice, e.g. a
// constant, would turn the set into one bucket of seenWays values).
func TestSeenSetSpreadsKeys(t *testing.T) {
	s := newSeenSet(1024) // 128 buckets
	hit := make([]int, len(s.buckets))
	for i := range 100 * len(s.buckets) {
		_, b := s.locate("k" + strconv.Itoa(i))
		hit[b]++
	}
	for b, n := range hit {
		// Binomial(12800, 1/128): mean 100, sd 10; 40 is 6 sd below.
		if n < 40 {
			t.Fatalf("bucket %d got %d of %d keys", b, n, 100*len(s.buckets))
		}
	}
	// Two sets place keys independently (secret per-set seed).
	other := newSeenSet(1024)
	same := 0
	for i := range 1000 {
		_, a := s.locate("k" + strconv.Itoa(i))
		_, b := other.locate("k" + strconv.Itoa(i))
		if a == b {
			same++
		}
	}
	if same > 100 { // expected about 1000/128 = 8
		t.Fatalf("%d of 1000 keys in the same bucket in two sets: bucket choice is not seeded", same)
	}
}
