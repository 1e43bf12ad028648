package password

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestHasher returns a Hasher with cheap params unless cfg sets others.
func newTestHasher(t *testing.T, cfg Config) *Hasher {
	t.Helper()
	if cfg.Params == (Params{}) {
		cfg.Params = cheapParams
		cfg.AllowWeakParams = true
	}
	h, err := NewHasher(cfg)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", cfg, err)
	}
	return h
}

// mustHash hashes pw with h or fails the test.
func mustHash(t *testing.T, h *Hasher, pw string) string {
	t.Helper()
	s, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return s
}

// waitInFlight polls until h reports the given running/waiting counts.
func waitInFlight(t *testing.T, h *Hasher, running, waiting int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, w := h.InFlight()
		if r == running && w == waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("InFlight() = (%d, %d), want (%d, %d)", r, w, running, waiting)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingDerive makes h's KDF announce itself on entered and then wait for
// release before computing. It must be installed before h is shared.
func blockingDerive(h *Hasher) (entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, 16), make(chan struct{})
	h.derive = func(password, salt []byte, p Params) []byte {
		entered <- struct{}{}
		<-release
		return idKey(password, salt, p)
	}
	return entered, release
}

// SEC-01, SEC-05: the zero Config means DefaultParams, GOMAXPROCS slots and a
// queue of 4×slots.
func TestNewHasherDefaults_SEC01_SEC05(t *testing.T) {
	h, err := NewHasher(Config{})
	if err != nil {
		t.Fatalf("NewHasher(Config{}): %v", err)
	}
	if h.Params() != DefaultParams {
		t.Errorf("Params() = %+v, want DefaultParams", h.Params())
	}
	slots := runtime.GOMAXPROCS(0)
	if cap(h.sem) != slots {
		t.Errorf("slots = %d, want GOMAXPROCS = %d", cap(h.sem), slots)
	}
	if h.limit != int64(5*slots) {
		t.Errorf("slots+queue = %d, want %d", h.limit, 5*slots)
	}
	if h.dummy.Params != DefaultParams {
		t.Errorf("dummy params = %+v, want DefaultParams", h.dummy.Params)
	}
	if h.Calls() != 0 {
		t.Errorf("Calls() = %d after construction, want 0", h.Calls())
	}
	if r, w := h.InFlight(); r != 0 || w != 0 {
		t.Errorf("InFlight() = (%d, %d), want (0, 0)", r, w)
	}
}

func TestNewHasherConfig(t *testing.T) {
	weak := Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}
	tests := []struct {
		name      string
		cfg       Config
		wantErr   string
		wantLimit int64
	}{
		{"explicit", Config{Slots: 3, Queue: 2, Params: weak, AllowWeakParams: true}, "", 5},
		{"no_queue", Config{Slots: 2, Queue: -1, Params: weak, AllowWeakParams: true}, "", 2},
		{"default_queue", Config{Slots: 2, Params: weak, AllowWeakParams: true}, "", 10},
		{"weak_refused", Config{Slots: 1, Params: weak}, "floor", 0},
		{"weak_allowed_but_out_of_bounds", Config{Slots: 1, Params: Params{Time: 0, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}, AllowWeakParams: true}, "t=0", 0},
		{"weak_allowed_salt_too_short", Config{Slots: 1, Params: Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 4, KeyLen: 32}, AllowWeakParams: true}, "salt", 0},
		{"negative_slots", Config{Slots: -1, Params: weak, AllowWeakParams: true}, "slots", 0},
		{"queue_minus_2", Config{Slots: 1, Queue: -2, Params: weak, AllowWeakParams: true}, "queue", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.cfg)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("NewHasher = nil error, want one containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "password: ") {
					t.Fatalf("NewHasher error %q, want prefix \"password: \" and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewHasher: %v", err)
			}
			if h.limit != tt.wantLimit {
				t.Fatalf("slots+queue = %d, want %d", h.limit, tt.wantLimit)
			}
		})
	}
}

// SEC-04: every login attempt that reaches the hasher costs exactly one KDF,
// whether the user is unknown, the passphrase is wrong or right, or the
// stored hash is garbage.
func TestVerifyOneKDFPerAttempt_SEC04(t *testing.T) {
	h := newTestHasher(t, Config{Slots: 2})
	const pw = "correct horse battery staple"
	stored := mustHash(t, h, pw)
	// A stored hash with stronger params than the hasher's is still one KDF.
	other := mustNewPHC(t, pw, Params{Time: 2, MemoryKiB: 128, Threads: 2, SaltLen: 16, KeyLen: 32}).String()

	tests := []struct {
		name        string
		phc, pw     string
		wantOK      bool
		wantInvalid bool
	}{
		{"unknown_user", "", pw, false, false},
		{"unknown_user_empty_password", "", "", false, false},
		{"known_wrong", stored, pw + "!", false, false},
		{"known_right", stored, pw, true, false},
		{"known_right_other_params", other, pw, true, false},
		{"garbage_phc", "not a hash", pw, false, true},
		{"argon2i_phc", "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", "password", false, true},
		{"hash_field_cut_off", stored[:strings.LastIndexByte(stored, '$')], pw, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Calls()
			ok, err := h.Verify(context.Background(), tt.phc, tt.pw)
			if n := h.Calls() - before; n != 1 {
				t.Errorf("KDF calls = %d, want exactly 1", n)
			}
			if ok != tt.wantOK {
				t.Errorf("ok = %v, want %v", ok, tt.wantOK)
			}
			switch {
			case tt.wantInvalid && !errors.Is(err, ErrInvalidHash):
				t.Errorf("err = %v, want ErrInvalidHash", err)
			case tt.wantInvalid && !strings.HasPrefix(err.Error(), "password: verify: "):
				t.Errorf("err %q lacks context", err)
			case !tt.wantInvalid && err != nil:
				t.Errorf("err = %v, want nil", err)
			}
		})
	}
	if r, w := h.InFlight(); r != 0 || w != 0 {
		t.Errorf("InFlight() = (%d, %d) after all calls, want (0, 0)", r, w)
	}
}

// SEC-04: Hash is one KDF too, and its output verifies.
func TestHasherHashOneKDF_SEC04(t *testing.T) {
	h := newTestHasher(t, Config{Slots: 1})
	before := h.Calls()
	s := mustHash(t, h, "pw")
	if n := h.Calls() - before; n != 1 {
		t.Fatalf("Hash KDF calls = %d, want 1", n)
	}
	p := mustParse(t, s)
	if p.Params != cheapParams {
		t.Fatalf("hash params %+v, want %+v", p.Params, cheapParams)
	}
	if ok, err := h.Verify(context.Background(), s, "pw"); !ok || err != nil {
		t.Fatalf("Verify(own hash) = %v, %v", ok, err)
	}
}

// SEC-01: a stored hash weaker than the configured params (the m=8 MiB seed)
// needs re-hashing; one made with the configured params does not.
func TestNeedsRehash_SEC01(t *testing.T) {
	h, err := NewHasher(Config{Slots: 1})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	weak := &PHC{
		Params:  Params{Time: 2, MemoryKiB: 8 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32},
		Version: 19, Salt: bytesOf(16), Key: bytesOf(32),
	}
	shortSalt := &PHC{Params: DefaultParams, Version: 19, Salt: bytesOf(8), Key: bytesOf(32)}
	stronger := &PHC{
		Params:  Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 4, SaltLen: 16, KeyLen: 32},
		Version: 19, Salt: bytesOf(16), Key: bytesOf(32),
	}
	tests := []struct {
		name, phc string
		want      bool
	}{
		{"m8MiB", weak.String(), true},
		{"t1_m19MiB", (&PHC{Params: Params{Time: 1, MemoryKiB: 19456, Threads: 1}, Version: 19, Salt: bytesOf(16), Key: bytesOf(32)}).String(), true},
		{"salt_64_bits", shortSalt.String(), true},
		{"default", mustHash(t, h, "pw"), false},
		{"stronger", stronger.String(), false},
		{"garbage", "garbage", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Calls()
			if got := h.NeedsRehash(tt.phc); got != tt.want {
				t.Errorf("NeedsRehash(%s) = %v, want %v", tt.phc, got, tt.want)
			}
			if h.Calls() != before {
				t.Errorf("NeedsRehash ran the KDF")
			}
		})
	}
}

// SEC-05: with one slot and a queue of one, a third concurrent caller is
// refused at once with ErrBusy and no KDF; a waiting caller whose context
// ends gets ctx.Err() and no KDF; the running caller completes normally.
func TestHasherBusyAndCancel_SEC05(t *testing.T) {
	h := newTestHasher(t, Config{Slots: 1, Queue: 1})
	stored := mustHash(t, h, "pw")
	entered, release := blockingDerive(h)

	// Caller 1 takes the only slot and blocks inside the KDF.
	type result struct {
		ok  bool
		err error
	}
	first := make(chan result, 1)
	go func() {
		ok, err := h.Verify(context.Background(), stored, "pw")
		first <- result{ok, err}
	}()
	<-entered
	waitInFlight(t, h, 1, 0)
	callsAfterFirst := h.Calls()

	// Caller 2 waits for the slot.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	second := make(chan result, 1)
	go func() {
		ok, err := h.Verify(ctx2, stored, "pw")
		second <- result{ok, err}
	}()
	waitInFlight(t, h, 1, 1)

	// Caller 3 (and Hash, which shares admission) is refused at once.
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"Verify", func() error { _, err := h.Verify(context.Background(), stored, "pw"); return err }},
		{"Verify_unknown_user", func() error { _, err := h.Verify(context.Background(), "", "pw"); return err }},
		{"Hash", func() error { _, err := h.Hash(context.Background(), "pw"); return err }},
	} {
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- call.do() }()
		select {
		case err := <-done:
			if elapsed := time.Since(start); elapsed > 100*time.Millisecond {
				t.Errorf("%s: ErrBusy took %v, want < 100ms", call.name, elapsed)
			}
			if !errors.Is(err, ErrBusy) {
				t.Errorf("%s: err = %v, want ErrBusy", call.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: third caller blocked instead of getting ErrBusy", call.name)
		}
	}
	if h.Calls() != callsAfterFirst {
		t.Errorf("refused callers ran the KDF: calls %d -> %d", callsAfterFirst, h.Calls())
	}
	waitInFlight(t, h, 1, 1)

	// Caller 2 gives up while waiting: ctx.Err(), no KDF, queue freed.
	cancel2()
	select {
	case r := <-second:
		if !errors.Is(r.err, context.Canceled) || r.ok {
			t.Errorf("cancelled waiter = (%v, %v), want (false, context.Canceled)", r.ok, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled waiter did not return")
	}
	if h.Calls() != callsAfterFirst {
		t.Errorf("cancelled waiter ran the KDF")
	}
	waitInFlight(t, h, 1, 0)

	// Caller 1 finishes normally.
	close(release)
	if r := <-first; !r.ok || r.err != nil {
		t.Errorf("running caller = (%v, %v), want (true, nil)", r.ok, r.err)
	}
	waitInFlight(t, h, 0, 0)
}

// SEC-05: a context that has already ended costs nothing, even with a free
// slot; a deadline while queued returns context.DeadlineExceeded.
func TestHasherContext_SEC05(t *testing.T) {
	h := newTestHasher(t, Config{Slots: 1, Queue: 4})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Verify(ctx, "", "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify(cancelled ctx) err = %v, want context.Canceled", err)
	}
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash(cancelled ctx) err = %v, want context.Canceled", err)
	}
	if h.Calls() != 0 {
		t.Fatalf("cancelled calls ran the KDF %d times", h.Calls())
	}

	entered, release := blockingDerive(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = h.Verify(context.Background(), "", "pw")
	}()
	<-entered
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if _, err := h.Verify(dctx, "", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued Verify err = %v, want context.DeadlineExceeded", err)
	}
	close(release)
	<-done
	if h.Calls() != 1 {
		t.Fatalf("Calls() = %d, want 1", h.Calls())
	}
	waitInFlight(t, h, 0, 0)
}

// SEC-05: under a burst, no more than Slots KDFs run at once, every caller is
// either served (one KDF) or refused with ErrBusy (none), and nothing is left
// in flight afterwards.
func TestHasherConcurrencyBound_SEC05(t *testing.T) {
	const slots, queue, callers = 2, 3, 40
	h := newTestHasher(t, Config{Slots: slots, Queue: queue})
	var running, peak atomic.Int64
	h.derive = func(password, salt []byte, p Params) []byte {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // hold the slot so callers pile up
		defer running.Add(-1)
		return idKey(password, salt, p)
	}

	var served, busy, other atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := h.Verify(context.Background(), "", "pw")
			switch {
			case err == nil:
				served.Add(1)
			case errors.Is(err, ErrBusy):
				busy.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()

	if p := peak.Load(); p > slots {
		t.Errorf("peak concurrent KDF runs = %d, want <= %d", p, slots)
	}
	if other.Load() != 0 {
		t.Errorf("%d callers got an error other than ErrBusy", other.Load())
	}
	if served.Load()+busy.Load() != callers {
		t.Errorf("served %d + busy %d != %d callers", served.Load(), busy.Load(), callers)
	}
	if got := h.Calls(); got != uint64(served.Load()) {
		t.Errorf("Calls() = %d, want one per served caller = %d", got, served.Load())
	}
	if served.Load() < slots+queue {
		t.Errorf("only %d callers served, want at least slots+queue = %d", served.Load(), slots+queue)
	}
	waitInFlight(t, h, 0, 0)
}

// A Hasher not made by NewHasher fails cleanly instead of blocking forever.
func TestZeroHasher(t *testing.T) {
	var h Hasher
	done := make(chan error, 1)
	go func() {
		_, err := h.Verify(context.Background(), "", "pw")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("zero Hasher Verify returned nil error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("zero Hasher Verify blocked")
	}
	if _, err := (*Hasher)(nil).Hash(context.Background(), "pw"); err == nil {
		t.Fatal("nil Hasher Hash returned nil error")
	}
}
