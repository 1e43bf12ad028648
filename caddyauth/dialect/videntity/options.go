package videntity

import (
	"fmt"
	"time"
)

// Defaults and limits.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultSessionLifetime = 24 * time.Hour
	DefaultMaxBody         = 10 << 20
	// MaxFormBody bounds an endpoint body (SEC-34).
	MaxFormBody = 64 << 10
	// MinTimeout is the shortest idle timeout or lifetime accepted.
	MinTimeout = time.Minute
)

// Options configure the dialect. The zero value of each field means its
// default.
type Options struct {
	// IdleTimeout ends a session this long after its login or its last
	// ping (or, with IdleResetOnUse, its last use). At least 1m. Default: 30m.
	IdleTimeout time.Duration
	// SessionLifetime ends a session this long after its login, whatever
	// happens: pings never extend it. It must not be below IdleTimeout
	// (SEC-12). Default: 24h.
	SessionLifetime time.Duration
	// IdleResetOnUse also resets the idle timer on every verified proxied
	// request (at most one store write per caddyauth.TouchInterval). The
	// videntity documentation says only ping does. Default: false.
	IdleResetOnUse bool
	// MaxBody bounds a proxied form body, read to find session_key; a
	// larger one is refused 413. Default: 10 MiB.
	MaxBody int64
}

func (o *Options) setDefaults() error {
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.IdleTimeout < MinTimeout {
		return fmt.Errorf("videntity idle timeout %s: must be at least %s", o.IdleTimeout, MinTimeout)
	}
	if o.SessionLifetime == 0 {
		o.SessionLifetime = DefaultSessionLifetime
	}
	if o.SessionLifetime < o.IdleTimeout {
		return fmt.Errorf("videntity session lifetime %s: must not be below the idle timeout %s", o.SessionLifetime, o.IdleTimeout)
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxBody < 0 {
		return fmt.Errorf("videntity max body %d: must be positive", o.MaxBody)
	}
	return nil
}
