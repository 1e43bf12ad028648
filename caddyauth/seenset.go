package caddyauth

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

// seenWays is the number of slots in one bucket of a seenSet: 8 slots of 24
// bytes and the bucket's mutex make 200 bytes, and a lookup scans them all.
const seenWays = 8

// seenSet is the in-memory "seen once" memory behind MemoryReplayGuard and
// LocalEphemeral.SeenOnce: a fixed-capacity set of (digest, expiry) entries
// that never allocates after construction and holds no pointers.
//
// Why this shape: every request of a busy gateway adds a replay mark, so the
// set is full most of the time. An LRU of heap entries cost about 175 bytes
// per mark and, worse, gave the garbage collector several pointers per mark
// to trace on every cycle (list element, map slot, time.Time's location).
// Here the whole set is one flat slice of pointer-free buckets: about 25
// bytes per mark, allocated once, and never scanned by the GC.
//
// Layout: N buckets of seenWays slots (a set-associative table). A key lives
// in exactly one bucket; lookup and insert scan that bucket's slots under
// that bucket's mutex, so distinct keys rarely contend and a key's check and
// mark are one atomic step (of concurrent SeenOnce calls for one key,
// exactly one is first).
//
// Keys are attacker-influenced (signatures, nonces), so:
//   - a slot keeps the first 16 bytes of the key's SHA-256: fixed size
//     whatever the key, and nobody can make two keys collide, which would
//     get an honest request refused as a replay;
//   - the bucket is picked by a keyed hash of that digest (maphash, with a
//     random seed per set: what Go's own maps use against hash flooding).
//     With a public bucket function an attacker could compute which bucket
//     a captured signature's mark is in and evict it with seenWays marks of
//     their own, then replay it; with a secret one they must overflow the
//     whole set, as with the LRU.
//
// Eviction: insert takes an empty or expired slot of the bucket, else
// forgets the entry of the bucket with the earliest expiry. This differs
// from an LRU's "least recently seen": the soonest-expiring entry is the
// cheapest to forget, its value is about to leave its replay window anyway
// (and a replay outside the window is refused by the timestamp check). With
// one ttl for all, it is the oldest mark of the bucket. Because a bucket can
// overflow while others have room, eviction of live entries starts somewhat
// before the set as a whole is full.
type seenSet struct {
	buckets []seenBucket
	seed    maphash.Seed
}

// seenBucket is one bucket: no pointers, so a slice of them is a single
// allocation the GC never scans.
type seenBucket struct {
	mu    sync.Mutex
	slots [seenWays]seenSlot
}

// seenSlot is one remembered value. A slot whose expiry is not after now
// (the zero slot included) is free.
type seenSlot struct {
	digest seenDigest
	// exp is in unix nanoseconds: wall-clock time, as are the
	// timestamps the signatures' windows are checked against (a
	// time.Time would also carry a pointer).
	exp int64
}

// seenDigest is the first 16 bytes of a key's SHA-256.
type seenDigest struct{ lo, hi uint64 }

// newSeenSet returns a set of size values rounded up to a whole number of
// buckets; size <= 0 means DefaultReplayCacheSize, and size is capped at
// MaxReplayCacheSize.
func newSeenSet(size int) *seenSet {
	return &seenSet{buckets: make([]seenBucket, seenBuckets(size)), seed: maphash.MakeSeed()}
}

// seenBuckets is the number of buckets of a set of size values.
func seenBuckets(size int) int {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	// The table is allocated whole at construction, so an absurd size
	// must not take the process down.
	size = min(size, MaxReplayCacheSize)
	return (size + seenWays - 1) / seenWays
}

// capacity is the number of values the set can hold.
func (s *seenSet) capacity() int { return len(s.buckets) * seenWays }

// seenOnce records key until now+ttl and reports whether it was new: false
// while an earlier record of it is unexpired. A repeat does not extend the
// first record. A ttl <= 0 records nothing (the record would be expired at
// once) and reports true.
func (s *seenSet) seenOnce(key string, now time.Time, ttl time.Duration) bool {
	d, bi := s.locate(key)
	b := &s.buckets[bi]
	t := now.UnixNano()
	exp := expiryNanos(t, ttl)
	b.mu.Lock()
	defer b.mu.Unlock()
	victim := 0
	for i := range b.slots {
		sl := &b.slots[i]
		if sl.exp > t && sl.digest == d {
			return false
		}
		// A free slot has exp <= t, below any live one: the minimum is
		// a free slot when there is one, else the soonest to expire.
		if sl.exp < b.slots[victim].exp {
			victim = i
		}
	}
	if exp > t {
		b.slots[victim] = seenSlot{digest: d, exp: exp}
	}
	return true
}

// len is the number of values still remembered at now.
func (s *seenSet) len(now time.Time) int {
	t, n := now.UnixNano(), 0
	for i := range s.buckets {
		b := &s.buckets[i]
		b.mu.Lock()
		for j := range b.slots {
			if b.slots[j].exp > t {
				n++
			}
		}
		b.mu.Unlock()
	}
	return n
}

// locate returns key's digest and the index of its bucket.
func (s *seenSet) locate(key string) (seenDigest, uint64) {
	h := sha256.New()
	// []byte(key) would allocate for any key over 32 bytes (every real
	// one); feeding it through a stack buffer keeps SeenOnce allocation
	// free.
	var buf [128]byte
	for rest := key; len(rest) > 0; {
		n := copy(buf[:], rest)
		h.Write(buf[:n])
		rest = rest[n:]
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	d := seenDigest{lo: binary.LittleEndian.Uint64(sum[0:8]), hi: binary.LittleEndian.Uint64(sum[8:16])}
	// Multiply-shift maps the keyed hash onto any bucket count without
	// the bias of a modulo.
	i, _ := bits.Mul64(maphash.Bytes(s.seed, sum[:16]), uint64(len(s.buckets)))
	return d, i
}

// expiryNanos is t+ttl in unix nanoseconds, saturating instead of wrapping
// for a ttl too large to represent; a ttl <= 0 gives t (expired at once).
func expiryNanos(t int64, ttl time.Duration) int64 {
	switch {
	case ttl <= 0:
		return t
	case t > math.MaxInt64-int64(ttl):
		return math.MaxInt64
	}
	return t + int64(ttl)
}
