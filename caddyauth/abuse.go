package caddyauth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Abuse-control errors. ErrThrottled is answered 429 with Retry-After. A
// locked account is never told apart from a wrong password (SEC-03): the
// Manager answers ErrBadCredentials and only metrics and the audit log say
// "locked".
var (
	// ErrThrottled: the client IP, or the gateway as a whole, sent logins
	// faster than the configured rate (SEC-07). Carries a retry delay; see
	// RetryAfter.
	ErrThrottled = errors.New("too many login attempts")
	// ErrSignatureLocked: a session collected too many bad signatures in a
	// short time; further signatures for it are refused without the
	// window search until the lock passes.
	ErrSignatureLocked = errors.New("too many bad signatures for this session")
)

// ThrottleError is ErrThrottled with the time to wait.
type ThrottleError struct {
	// Wait is how long until an attempt would be allowed.
	Wait time.Duration
}

func (e *ThrottleError) Error() string { return ErrThrottled.Error() }

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }

// RetryAfter returns the whole seconds a refused client should wait (at
// least 1) if err is a throttle, else 0.
func RetryAfter(err error) int {
	var te *ThrottleError
	if !errors.As(err, &te) {
		return 0
	}
	return max(1, int(math.Ceil(te.Wait.Seconds())))
}

// AbuseConfig sets the abuse controls. Zero fields take the defaults; a
// negative MaxFailures, IPRate, GlobalRate or MaxSignatureFailures turns that
// control off.
type AbuseConfig struct {
	// MaxFailures is how many failed logins of one account (any dialect,
	// any source IP) within FailureWindow lock it for LockoutDuration
	// (SEC-06). Default 10.
	MaxFailures int
	// FailureWindow is the fixed window failures are counted in. Default
	// 15m.
	FailureWindow time.Duration
	// LockoutDuration is how long a locked account refuses every login,
	// right or wrong. Default 15m.
	LockoutDuration time.Duration

	// IPRate is the sustained logins per second allowed from one client IP
	// (token bucket), IPBurst the bucket size. Defaults 1/s, burst 30.
	IPRate  float64
	IPBurst int
	// GlobalRate and GlobalBurst bound logins of the whole node. Defaults
	// 100/s, burst 200.
	GlobalRate  float64
	GlobalBurst int

	// MaxSignatureFailures bad signatures on one session within
	// SignatureWindow put that session under a signature lock for the rest
	// of the window: its signatures are checked only at the current second
	// (±1), so a flood of forgeries on a known session id stops costing
	// window searches, while the owner's fresh signatures still pass.
	// Default 20 in 1m.
	MaxSignatureFailures int
	SignatureWindow      time.Duration
}

// Defaults returns c with every zero field set to its default.
func (c AbuseConfig) Defaults() AbuseConfig { return c.withDefaults() }

func (c AbuseConfig) withDefaults() AbuseConfig {
	if c.MaxFailures == 0 {
		c.MaxFailures = 10
	}
	if c.FailureWindow <= 0 {
		c.FailureWindow = 15 * time.Minute
	}
	if c.LockoutDuration <= 0 {
		c.LockoutDuration = 15 * time.Minute
	}
	if c.IPRate == 0 {
		c.IPRate = 1
	}
	if c.IPBurst <= 0 {
		c.IPBurst = 30
	}
	if c.GlobalRate == 0 {
		c.GlobalRate = 100
	}
	if c.GlobalBurst <= 0 {
		c.GlobalBurst = 200
	}
	if c.MaxSignatureFailures == 0 {
		c.MaxSignatureFailures = 20
	}
	if c.SignatureWindow <= 0 {
		c.SignatureWindow = time.Minute
	}
	return c
}

// Abuse holds the abuse controls of one node. Account failure counts and
// locks live in Ephemeral state, so with a shared store a lockout holds on
// every node; when that state cannot answer, counting falls back to a
// node-local Ephemeral (REL-02: never unlimited). Throttles and signature
// failure counts are node-local: they protect this node's CPU.
type Abuse struct {
	cfg    AbuseConfig
	shared Ephemeral
	local  *LocalEphemeral
	clock  Clock

	mu      sync.Mutex
	perIP   *lru.Cache[string, *bucket]
	global  bucket
	sigFail *LocalEphemeral
	// fallbacks counts how often shared state failed and local state
	// answered instead.
	fallbacks uint64
	// obs counts each fallback as a store error (op failure_counter), so
	// an outage of the shared counters shows in metrics (REL-02). Set by
	// the Manager.
	obs Observer
}

// bucket is a token bucket: tokens refill at rate per second up to burst.
type bucket struct {
	tokens float64
	last   time.Time
}

// take removes one token if there is one; otherwise it returns how long
// until there will be.
func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+el*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// abuseIPEntries bounds the per-IP buckets held in memory.
const abuseIPEntries = 100_000

// NewAbuse returns the abuse controls over shared state (nil: node-local
// only).
func NewAbuse(cfg AbuseConfig, shared Ephemeral, clock Clock) *Abuse {
	if clock == nil {
		clock = SystemClock{}
	}
	a := &Abuse{cfg: cfg.withDefaults(), shared: shared, clock: clock,
		local: NewLocalEphemeral(DefaultEphemeralSize, clock), sigFail: NewLocalEphemeral(DefaultEphemeralSize, clock)}
	a.perIP, _ = lru.New[string, *bucket](abuseIPEntries)
	if a.shared == nil {
		a.shared = a.local
	}
	return a
}

// Fallbacks is how many times shared state failed and node-local state
// answered instead.
func (a *Abuse) Fallbacks() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fallbacks
}

// AllowLogin spends one login token of the client IP and one of the node.
// It returns a *ThrottleError when either is empty (SEC-07). ip "" (unknown)
// is throttled as one client.
func (a *Abuse) AllowLogin(ip string) error {
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.IPRate > 0 {
		b, ok := a.perIP.Get(ip)
		if !ok {
			b = &bucket{}
			a.perIP.Add(ip, b)
		}
		if ok, wait := b.take(now, a.cfg.IPRate, a.cfg.IPBurst); !ok {
			return &ThrottleError{Wait: wait}
		}
	}
	if a.cfg.GlobalRate > 0 {
		if ok, wait := a.global.take(now, a.cfg.GlobalRate, a.cfg.GlobalBurst); !ok {
			return &ThrottleError{Wait: wait}
		}
	}
	return nil
}

// AccountKey names an account for failure counting, whatever identifier the
// dialect used: email (lower-cased), numeric id or username. Unknown
// accounts are counted too, so counting does not reveal which exist.
func AccountKey(l PasswordLogin) string {
	switch {
	case l.Email != "":
		return "email:" + strings.ToLower(l.Email)
	case l.UserID > 0:
		return fmt.Sprintf("id:%d", l.UserID)
	default:
		return "user:" + l.Username
	}
}

// state runs f on the shared state, falling back to local state when the
// shared one cannot answer.
func (a *Abuse) state(f func(Ephemeral) error) {
	if err := f(a.shared); err != nil && a.shared != Ephemeral(a.local) {
		a.mu.Lock()
		a.fallbacks++
		obs := a.obs
		a.mu.Unlock()
		if obs != nil {
			obs.StoreError("failure_counter")
		}
		_ = f(a.local) // local state never fails
	}
}

// Locked reports whether account is locked out.
func (a *Abuse) Locked(ctx context.Context, account string) bool {
	if a.cfg.MaxFailures < 0 {
		return false
	}
	var n int64
	a.state(func(e Ephemeral) error {
		c, _, err := e.Failures(ctx, "lock:"+account)
		n = c
		return err
	})
	return n > 0
}

// Failed counts a failed login of account and reports whether this failure
// locked it (exactly once per lockout: the caller audits it).
func (a *Abuse) Failed(ctx context.Context, account string) (lockedNow bool) {
	if a.cfg.MaxFailures < 0 {
		return false
	}
	a.state(func(e Ephemeral) error {
		n, _, err := e.AddFailure(ctx, "fail:"+account, a.cfg.FailureWindow)
		if err != nil {
			return err
		}
		if n == int64(a.cfg.MaxFailures) {
			lockedNow = true
			if _, _, err := e.AddFailure(ctx, "lock:"+account, a.cfg.LockoutDuration); err != nil {
				return err
			}
			// A fresh window after the lock, so the lock is not
			// re-armed by the failures that caused it.
			return e.ResetFailures(ctx, "fail:"+account)
		}
		return nil
	})
	return lockedNow
}

// Succeeded forgets the account's failures (SEC-06: success resets).
func (a *Abuse) Succeeded(ctx context.Context, account string) {
	if a.cfg.MaxFailures < 0 {
		return
	}
	a.state(func(e Ephemeral) error { return e.ResetFailures(ctx, "fail:"+account) })
}

// SignatureLocked reports whether session id has collected too many bad
// signatures recently.
func (a *Abuse) SignatureLocked(id string) bool {
	if a.cfg.MaxSignatureFailures < 0 {
		return false
	}
	n, _, _ := a.sigFail.Failures(context.Background(), id)
	return n >= int64(a.cfg.MaxSignatureFailures)
}

// BadSignature counts a bad signature on session id.
func (a *Abuse) BadSignature(id string) {
	if a.cfg.MaxSignatureFailures < 0 {
		return
	}
	_, _, _ = a.sigFail.AddFailure(context.Background(), id, a.cfg.SignatureWindow)
}
