package amatino

import (
	"fmt"
	"time"
)

// ReplayMode says what to do with a signature seen before within its window.
type ReplayMode string

const (
	// ReplayObserve counts a repeated signature and lets it through: current
	// clients legitimately repeat signatures (same path, same second).
	ReplayObserve ReplayMode = "observe"
	// ReplayReject refuses a repeated signature with 401 "replay".
	ReplayReject ReplayMode = "reject"
)

// Defaults.
const (
	DefaultWindow          = 30 * time.Second
	DefaultMaxBody         = 10 << 20
	DefaultSessionLifetime = 24 * time.Hour
	// MaxLoginBody bounds a login body (SEC-34).
	MaxLoginBody = 64 << 10
	// MaxEmailBytes is the longest valid address (RFC 5321 path limit).
	MaxEmailBytes = 254
)

// Options configure the dialect. The zero value of each field means its
// default.
type Options struct {
	// Window is how far the signed second may be from the server's clock,
	// either way.
	Window time.Duration
	// LegacyBodySignatures also accepts the body-signing variants of older
	// clients (raw body appended, or a compact re-serialisation of a JSON
	// body). Nil means true.
	LegacyBodySignatures *bool
	// RequireBodySignature accepts only the body-covering variants.
	RequireBodySignature bool
	// Replay says what to do with a repeated signature.
	Replay ReplayMode
	// MaxBody bounds a body that must be read to check a body-covering
	// signature.
	MaxBody int64
	// SessionLifetime is the absolute lifetime of a session.
	SessionLifetime time.Duration
	// IdleTimeout ends a session after this long without a touch; 0
	// disables it (amatino clients never ping, so only use can reset it).
	IdleTimeout time.Duration
	// IdleResetOnUse resets the idle timer on verified requests, coalesced
	// to one store write per caddyauth.TouchInterval.
	IdleResetOnUse bool
}

func (o *Options) setDefaults() error {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Window < time.Second || o.Window > time.Hour || o.Window%time.Second != 0 {
		return fmt.Errorf("amatino window %s: must be whole seconds between 1s and 1h", o.Window)
	}
	if o.LegacyBodySignatures == nil {
		t := true
		o.LegacyBodySignatures = &t
	}
	if o.RequireBodySignature && !*o.LegacyBodySignatures {
		return fmt.Errorf("amatino: require_body_signature needs legacy_body_signatures on")
	}
	switch o.Replay {
	case "":
		o.Replay = ReplayObserve
	case ReplayObserve, ReplayReject:
	default:
		return fmt.Errorf("amatino replay mode %q: want observe or reject", o.Replay)
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxBody < 0 {
		return fmt.Errorf("amatino max body %d: must be positive", o.MaxBody)
	}
	if o.SessionLifetime == 0 {
		o.SessionLifetime = DefaultSessionLifetime
	}
	if o.SessionLifetime < time.Minute {
		return fmt.Errorf("amatino session lifetime %s: must be at least 1m", o.SessionLifetime)
	}
	if o.IdleTimeout < 0 || (o.IdleTimeout > 0 && o.IdleTimeout > o.SessionLifetime) {
		return fmt.Errorf("amatino idle timeout %s: must be positive and not above the session lifetime %s", o.IdleTimeout, o.SessionLifetime)
	}
	if o.IdleResetOnUse && o.IdleTimeout == 0 {
		return fmt.Errorf("amatino: idle_reset_on_use needs an idle_timeout")
	}
	return nil
}
