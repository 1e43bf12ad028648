package password

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
)

// ErrBusy means every KDF slot is taken and the wait queue is full. The
// caller answers 503 with Retry-After at once (SEC-05) rather than queueing
// without bound, which is what turns a login burst into an outage.
var ErrBusy = errors.New("password hashing at capacity")

// errNoHasher is returned by a Hasher that was not made by NewHasher; without
// it a zero Hasher would block forever on its nil semaphore.
var errNoHasher = errors.New("password: Hasher not created by NewHasher")

// Config configures a Hasher. The zero Config gives GOMAXPROCS slots, a
// queue of four times that, and DefaultParams.
type Config struct {
	// Slots is how many KDF runs may execute at once; 0 means
	// runtime.GOMAXPROCS(0). argon2id is CPU- and memory-bound, so more slots
	// than cores only adds memory (Slots × Params.MemoryKiB) and latency.
	Slots int
	// Queue is how many further callers may wait for a slot; 0 means
	// 4*Slots, -1 means none (callers beyond Slots get ErrBusy at once).
	Queue int
	// Params are used for new hashes and for the dummy hash that unknown
	// users are checked against; the zero Params means DefaultParams.
	Params Params
	// AllowWeakParams skips Params.Validate (the floor) for tests and
	// benchmarks. Params must still be within the bounds Parse accepts.
	AllowWeakParams bool
}

// Hasher verifies and creates password hashes with bounded concurrency
// (SEC-05) and exactly one KDF evaluation per admitted call (SEC-04). It is
// safe for concurrent use. Create it with NewHasher.
type Hasher struct {
	params Params
	// sem holds one token per running KDF; its capacity is Slots.
	sem chan struct{}
	// limit is Slots+Queue: the most callers admitted (running or waiting)
	// at once.
	limit int64
	// admitted counts callers that hold or are waiting for a slot. It is
	// raised before waiting and checked against limit, so refusal needs no
	// lock and no goroutine.
	admitted atomic.Int64
	// calls counts KDF evaluations done by Verify and Hash.
	calls atomic.Uint64
	// dummy is checked instead of a real hash when there is none, so the
	// unknown-user path costs the same KDF as the known-user path.
	dummy *PHC
	// derive is the KDF; tests replace it to block or observe calls.
	derive deriveFunc
}

// NewHasher applies defaults to cfg, checks it, and computes one dummy hash
// of a random passphrase with cfg.Params (one KDF run, not counted by Calls).
func NewHasher(cfg Config) (*Hasher, error) {
	p := cfg.Params
	if p == (Params{}) {
		p = DefaultParams
	}
	if cfg.AllowWeakParams {
		if err := p.checkBounds(); err != nil {
			return nil, fmt.Errorf("password: new hasher: invalid params: %w", err)
		}
	} else if err := p.Validate(); err != nil {
		return nil, err
	}

	slots := cfg.Slots
	switch {
	case slots < 0:
		return nil, fmt.Errorf("password: new hasher: slots %d is negative", slots)
	case slots == 0:
		slots = runtime.GOMAXPROCS(0)
	}
	queue := cfg.Queue
	switch {
	case queue < -1:
		return nil, fmt.Errorf("password: new hasher: queue %d is invalid (use -1 for no queue)", queue)
	case queue == -1:
		queue = 0
	case queue == 0:
		queue = 4 * slots
	}

	// The dummy's passphrase is random and thrown away, so no input can
	// match it even if a caller forgot to ignore the dummy's result.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("password: new hasher: read random dummy passphrase: %w", err)
	}
	dummy, err := newPHC(idKey, base64.RawStdEncoding.EncodeToString(secret), p)
	if err != nil {
		return nil, fmt.Errorf("password: new hasher: dummy hash: %w", err)
	}

	return &Hasher{
		params: p,
		sem:    make(chan struct{}, slots),
		limit:  int64(slots) + int64(queue),
		dummy:  dummy,
		derive: idKey,
	}, nil
}

// Verify reports whether password matches the PHC string phc. Every admitted
// call runs the KDF exactly once whatever the input (SEC-04):
//
//   - phc == "" (unknown user): password is checked against the dummy hash
//     and Verify returns (false, nil).
//   - phc cannot be parsed: checked against the dummy hash, and Verify
//     returns false with an error wrapping ErrInvalidHash.
//   - otherwise: checked against phc with phc's own parameters.
//
// Verify returns ErrBusy at once, with no KDF run, when Slots+Queue callers
// are already admitted, and ctx.Err() if ctx ends before a slot frees up.
// The caller should check the passphrase's length (SEC-02) before calling.
func (h *Hasher) Verify(ctx context.Context, phc, password string) (ok bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()

	if phc == "" {
		h.dummy.verify(h.kdf, password)
		return false, nil
	}
	stored, err := parse(phc)
	if err != nil {
		h.dummy.verify(h.kdf, password)
		return false, fmt.Errorf("password: verify: %w", err)
	}
	return stored.verify(h.kdf, password), nil
}

// Hash creates a PHC string for password with the Hasher's params, under the
// same admission control as Verify (ErrBusy, ctx.Err()).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()

	phc, err := newPHC(h.kdf, password, h.params)
	if err != nil {
		return "", err
	}
	return phc.String(), nil
}

// NeedsRehash reports whether phc should be replaced by a fresh hash with the
// Hasher's params, because its params are not AtLeast them (SEC-01). It runs
// no KDF. An unparsable phc also needs rehashing, though the engine only asks
// after a successful Verify, which implies it parsed.
func (h *Hasher) NeedsRehash(phc string) bool {
	stored, err := parse(phc)
	if err != nil {
		return true
	}
	return !stored.Params.AtLeast(h.params)
}

// Params returns the params used for new hashes and the dummy hash.
func (h *Hasher) Params() Params { return h.params }

// Calls returns the number of KDF evaluations Verify and Hash have run so far
// (the dummy hash made by NewHasher is not counted). Tests use it to prove
// that every login attempt costs exactly one KDF (SEC-04).
func (h *Hasher) Calls() uint64 { return h.calls.Load() }

// InFlight returns how many callers are running the KDF and how many are
// waiting for a slot. The two are read without a lock, so under load they
// are a snapshot, not an exact pair.
func (h *Hasher) InFlight() (running, waiting int) {
	running = len(h.sem)
	waiting = int(h.admitted.Load()) - running
	if waiting < 0 {
		// A caller has released its slot but not yet left the count (or the
		// reverse); never report a negative queue.
		waiting = 0
	}
	return running, waiting
}

// kdf is the Hasher's counting KDF.
func (h *Hasher) kdf(password, salt []byte, p Params) []byte {
	h.calls.Add(1)
	return h.derive(password, salt, p)
}

// acquire admits the caller and waits for a KDF slot. The admission counter
// is raised first, so at most limit callers ever wait and everyone beyond
// that is refused without blocking.
func (h *Hasher) acquire(ctx context.Context) error {
	if h == nil || h.sem == nil {
		return errNoHasher
	}
	// A request that is already gone should cost nothing; select alone would
	// pick at random between a free slot and a done context.
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.admitted.Add(1) > h.limit {
		h.admitted.Add(-1)
		return ErrBusy
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		h.admitted.Add(-1)
		return ctx.Err()
	}
}

// release frees the caller's slot, then its admission, so admitted never
// undercounts the callers holding a slot.
func (h *Hasher) release() {
	<-h.sem
	h.admitted.Add(-1)
}
