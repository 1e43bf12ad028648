package caddyauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

var abuseEpoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// SEC-06: 10 failures in 15 min lock the account for 15 min; success
// resets the count; the lock holds whatever the password.
func TestAbuseLockoutSEC06(t *testing.T) {
	ctx := context.Background()
	clk := caddyauth.NewFakeClock(abuseEpoch)
	a := caddyauth.NewAbuse(caddyauth.AbuseConfig{}, nil, clk)
	acct := caddyauth.AccountKey(caddyauth.PasswordLogin{Email: "Alice@Example.com"})
	if acct != caddyauth.AccountKey(caddyauth.PasswordLogin{Email: "alice@example.com"}) {
		t.Fatal("account key depends on the email's case")
	}

	for i := 1; i <= 9; i++ {
		if a.Failed(ctx, acct) {
			t.Fatalf("failure %d locked the account", i)
		}
	}
	a.Succeeded(ctx, acct) // success resets
	for i := 1; i <= 9; i++ {
		if a.Failed(ctx, acct) {
			t.Fatalf("after reset, failure %d locked the account", i)
		}
	}
	if a.Locked(ctx, acct) {
		t.Fatal("locked after 9 failures")
	}
	if !a.Failed(ctx, acct) {
		t.Fatal("10th failure did not lock")
	}
	if !a.Locked(ctx, acct) {
		t.Fatal("not locked after the 10th failure")
	}
	other := caddyauth.AccountKey(caddyauth.PasswordLogin{UserID: 43})
	if a.Locked(ctx, other) {
		t.Fatal("another account is locked")
	}
	clk.Advance(15*time.Minute - time.Second)
	if !a.Locked(ctx, acct) {
		t.Fatal("lock ended before 15 min")
	}
	clk.Advance(time.Second)
	if a.Locked(ctx, acct) {
		t.Fatal("lock still on at 15 min")
	}
	// The failures that caused the lock do not re-arm it.
	if a.Failed(ctx, acct) {
		t.Fatal("one failure after the lock re-locked")
	}
}

// SEC-06: failures older than the window do not add up.
func TestAbuseFailureWindow(t *testing.T) {
	ctx := context.Background()
	clk := caddyauth.NewFakeClock(abuseEpoch)
	a := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: 3, FailureWindow: time.Minute}, nil, clk)
	a.Failed(ctx, "k")
	a.Failed(ctx, "k")
	clk.Advance(time.Minute)
	if a.Failed(ctx, "k") || a.Locked(ctx, "k") {
		t.Fatal("failures from an ended window counted")
	}
}

// SEC-07: per-IP token bucket, then global; 429 carries a wait.
func TestAbuseThrottleSEC07(t *testing.T) {
	clk := caddyauth.NewFakeClock(abuseEpoch)
	a := caddyauth.NewAbuse(caddyauth.AbuseConfig{IPRate: 1, IPBurst: 3, GlobalRate: 10, GlobalBurst: 5}, nil, clk)
	for i := 0; i < 3; i++ {
		if err := a.AllowLogin("192.0.2.1"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	err := a.AllowLogin("192.0.2.1")
	if !errors.Is(err, caddyauth.ErrThrottled) || caddyauth.RetryAfter(err) != 1 {
		t.Fatalf("4th attempt: err %v, retry after %d; want throttled, 1 s", err, caddyauth.RetryAfter(err))
	}
	// Another IP has its own bucket, until the global one runs dry.
	if err := a.AllowLogin("192.0.2.2"); err != nil {
		t.Fatalf("other IP: %v", err)
	}
	if err := a.AllowLogin("192.0.2.3"); err != nil {
		t.Fatalf("third IP: %v", err)
	}
	if err := a.AllowLogin("192.0.2.4"); !errors.Is(err, caddyauth.ErrThrottled) {
		t.Fatalf("global bucket: want throttled, got %v", err)
	}
	clk.Advance(time.Second)
	if err := a.AllowLogin("192.0.2.1"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	if caddyauth.RetryAfter(errors.New("x")) != 0 {
		t.Fatal("RetryAfter of a non-throttle error")
	}
}

func TestAbuseOff(t *testing.T) {
	ctx := context.Background()
	a := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: -1, IPRate: -1, GlobalRate: -1, MaxSignatureFailures: -1}, nil, nil)
	for i := 0; i < 100; i++ {
		if err := a.AllowLogin("ip"); err != nil {
			t.Fatal(err)
		}
		if a.Failed(ctx, "k") {
			t.Fatal("locked with lockout off")
		}
		a.BadSignature("s")
	}
	if a.Locked(ctx, "k") || a.SignatureLocked("s") {
		t.Fatal("locked with controls off")
	}
}

func TestAbuseSignatureLock(t *testing.T) {
	clk := caddyauth.NewFakeClock(abuseEpoch)
	a := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxSignatureFailures: 3, SignatureWindow: time.Minute}, nil, clk)
	for i := 0; i < 3; i++ {
		if a.SignatureLocked("1001") {
			t.Fatalf("locked after %d", i)
		}
		a.BadSignature("1001")
	}
	if !a.SignatureLocked("1001") || a.SignatureLocked("1002") {
		t.Fatal("lock not per session")
	}
	clk.Advance(time.Minute)
	if a.SignatureLocked("1001") {
		t.Fatal("lock outlived the window")
	}
}

// brokenEphemeral fails every call, like a shared store that is down.
type brokenEphemeral struct{ caddyauth.Ephemeral }

func (brokenEphemeral) AddFailure(context.Context, string, time.Duration) (int64, time.Duration, error) {
	return 0, 0, caddyauth.ErrUnavailable
}
func (brokenEphemeral) Failures(context.Context, string) (int64, time.Duration, error) {
	return 0, 0, caddyauth.ErrUnavailable
}
func (brokenEphemeral) ResetFailures(context.Context, string) error { return caddyauth.ErrUnavailable }

// REL-02: with shared state down, lockout falls back to node-local counts,
// never unlimited.
func TestAbuseFallbackREL02(t *testing.T) {
	ctx := context.Background()
	a := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: 5}, brokenEphemeral{}, caddyauth.NewFakeClock(abuseEpoch))
	locked := false
	for i := 0; i < 200 && !locked; i++ {
		a.Failed(ctx, "acct")
		locked = a.Locked(ctx, "acct")
	}
	if !locked {
		t.Fatal("200 failures with the shared state down never locked")
	}
	if a.Fallbacks() == 0 {
		t.Fatal("fallbacks not counted")
	}
}

// REL-02: a Manager counts each fallback as a store error
// (store_errors_total{op="failure_counter"}).
func TestAbuseFallbackCountedREL02(t *testing.T) {
	obs := enginetest.NewObserver()
	abuse := caddyauth.NewAbuse(caddyauth.AbuseConfig{MaxFailures: 5, IPRate: -1, GlobalRate: -1}, brokenEphemeral{}, nil)
	static, _ := caddyauth.NewStaticUsers(nil)
	m, err := caddyauth.NewManager(caddyauth.Config{Store: enginetest.NewStore(), Users: static,
		Hasher: enginetest.CheapHasher(t), Sealer: enginetest.NewSealer(t), Abuse: abuse, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.CheckPassword(context.Background(), caddyauth.PasswordLogin{Email: "x@example.com", Password: "pw"})
	if !errors.Is(err, caddyauth.ErrBadCredentials) {
		t.Fatalf("login: %v", err)
	}
	if obs.StoreErrors("failure_counter") == 0 {
		t.Fatalf("fallback not counted: %s", obs.Counts())
	}
}
