package plugin

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// LoginLimits configures the abuse controls: account lockout, login
// throttles and the per-session signature lock (SEC-06, SEC-07). Omitted
// fields take their defaults; `off` (Caddyfile) or a negative value (JSON)
// turns a control off.
//
// The client IP the throttles key on is the one Caddy derives: the peer
// address, or the X-Forwarded-For entry chosen through the server's
// `trusted_proxies`, so a spoofed header from an untrusted peer changes
// nothing.
type LoginLimits struct {
	// MaxFailures is how many failed logins of one account (any dialect,
	// any source IP) within FailureWindow lock it for Lockout. A locked
	// account gets the same answer as a wrong password. Default: 10; -1:
	// off.
	MaxFailures int `json:"max_failures,omitempty"`
	// FailureWindow is the fixed window failures are counted in. Default:
	// 15m.
	FailureWindow caddy.Duration `json:"failure_window,omitempty"`
	// Lockout is how long a locked account refuses every login. Default:
	// 15m.
	Lockout caddy.Duration `json:"lockout,omitempty"`
	// IPRate is the sustained logins per second allowed from one client
	// IP; over it, logins are answered 429 with Retry-After before any
	// password hash. Default: 1; -1: off.
	IPRate float64 `json:"ip_rate,omitempty"`
	// IPBurst is how many logins one client IP may make at once. Default:
	// 30.
	IPBurst int `json:"ip_burst,omitempty"`
	// GlobalRate is the sustained logins per second of the whole node.
	// Default: 100; -1: off.
	GlobalRate float64 `json:"global_rate,omitempty"`
	// GlobalBurst is the node's login burst. Default: 200.
	GlobalBurst int `json:"global_burst,omitempty"`
	// SignatureFailures bad signatures on one session within
	// SignatureWindow put it under a signature lock: its signatures are
	// then checked only at the current second (±1), so forgery floods stop
	// costing window searches; a client whose clock is off by more than a
	// second is refused until the lock passes. Default: 20; -1: off.
	SignatureFailures int `json:"signature_failures,omitempty"`
	// SignatureWindow is the signature lock's window. Default: 1m.
	SignatureWindow caddy.Duration `json:"signature_window,omitempty"`
}

// abuseConfig converts the settings for the engine.
func (l *LoginLimits) abuseConfig() caddyauth.AbuseConfig {
	if l == nil {
		return caddyauth.AbuseConfig{}
	}
	return caddyauth.AbuseConfig{MaxFailures: l.MaxFailures, FailureWindow: time.Duration(l.FailureWindow),
		LockoutDuration: time.Duration(l.Lockout), IPRate: l.IPRate, IPBurst: l.IPBurst,
		GlobalRate: l.GlobalRate, GlobalBurst: l.GlobalBurst, MaxSignatureFailures: l.SignatureFailures,
		SignatureWindow: time.Duration(l.SignatureWindow)}
}

// validate refuses values that cannot mean anything.
func (l *LoginLimits) validate() error {
	if l == nil {
		return nil
	}
	if l.FailureWindow < 0 || l.Lockout < 0 || l.SignatureWindow < 0 {
		return fmt.Errorf("sessiongate login_limits: windows and lockout must not be negative")
	}
	if l.IPBurst < 0 || l.GlobalBurst < 0 {
		return fmt.Errorf("sessiongate login_limits: bursts must not be negative")
	}
	return nil
}

// parseLoginLimits parses
//
//	login_limits {
//		max_failures <n>|off
//		failure_window <duration>
//		lockout <duration>
//		ip_rate <per second>|off
//		ip_burst <n>
//		global_rate <per second>|off
//		global_burst <n>
//		signature_failures <n>|off
//		signature_window <duration>
//	}
func parseLoginLimits(d *caddyfile.Dispenser) (*LoginLimits, error) {
	l := new(LoginLimits)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	intOrOff := func() (int, error) {
		v, err := oneArg(d)
		if err != nil {
			return 0, err
		}
		if v == "off" {
			return -1, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, d.Errf("%s: want a positive integer or off, not %q", d.Val(), v)
		}
		return n, nil
	}
	rateOrOff := func() (float64, error) {
		v, err := oneArg(d)
		if err != nil {
			return 0, err
		}
		if v == "off" {
			return -1, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || f > 1e6 {
			return 0, d.Errf("%s: want logins per second (> 0) or off, not %q", d.Val(), v)
		}
		return f, nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch opt := d.Val(); opt {
		case "max_failures":
			l.MaxFailures, err = intOrOff()
		case "failure_window":
			l.FailureWindow, err = parseDuration(d)
		case "lockout":
			l.Lockout, err = parseDuration(d)
		case "ip_rate":
			l.IPRate, err = rateOrOff()
		case "ip_burst":
			l.IPBurst, err = parseInt(d, 1)
		case "global_rate":
			l.GlobalRate, err = rateOrOff()
		case "global_burst":
			l.GlobalBurst, err = parseInt(d, 1)
		case "signature_failures":
			l.SignatureFailures, err = intOrOff()
		case "signature_window":
			l.SignatureWindow, err = parseDuration(d)
		default:
			return nil, d.Errf("unknown login_limits option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}
