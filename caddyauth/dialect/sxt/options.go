package sxt

import (
	"fmt"
	"strings"
	"time"
)

// Registration says whether a first auth/token call for an unknown userId
// creates that user (SEC-31).
type Registration string

const (
	// RegistrationClosed never creates users: only users that exist (in the
	// configuration or the store) can log in.
	RegistrationClosed Registration = "closed"
	// RegistrationOpen lets anyone register a new userId with a key.
	RegistrationOpen Registration = "open"
	// RegistrationJoinCode registers a new userId only when its auth/code
	// request carried the configured joinCode.
	RegistrationJoinCode Registration = "join_code"
)

// Defaults and limits.
const (
	DefaultPrefix          = "/v1"
	DefaultCodeLifetime    = 30 * time.Second
	DefaultAccessLifetime  = 25 * time.Minute
	DefaultRefreshLifetime = 30 * time.Minute
	DefaultSessionLifetime = 24 * time.Hour
	DefaultRealm           = "sessiongate"
	// MaxCodeLifetime bounds an auth code's life (SEC-29: at most 5 min).
	MaxCodeLifetime = 5 * time.Minute
	// MaxRefreshGrace bounds the retry grace of a rotated refresh token.
	MaxRefreshGrace = 60 * time.Second
	// MaxAuthBody bounds an endpoint's body (SEC-34).
	MaxAuthBody = 64 << 10
)

// Options configure the dialect. The zero value of each field means its
// default.
type Options struct {
	// Prefix is the path under which the auth endpoints live
	// (`<prefix>/auth/...`). "/" puts them at the root. Default: /v1.
	Prefix string
	// Registration: closed, open or join_code. Default: closed.
	Registration Registration
	// JoinCode is the code a new user must send with auth/code when
	// Registration is join_code (resolved, never a placeholder here).
	JoinCode string
	// CodeLifetime is how long an auth code can be answered; at most 5m.
	// Default: 30s.
	CodeLifetime time.Duration
	// AccessLifetime is the lifetime of an access token. Default: 25m.
	AccessLifetime time.Duration
	// RefreshLifetime is the lifetime of a refresh token; a session nobody
	// refreshes within it ends. Default: 30m.
	RefreshLifetime time.Duration
	// SessionLifetime is the absolute lifetime of a session from login;
	// refreshing never extends it (SEC-12). Default: 24h.
	SessionLifetime time.Duration
	// RefreshGrace is how long a rotated refresh token presented again
	// returns the same new pair instead of ending the session; at most 60s.
	// Default: 0 (every second presentation is reuse).
	RefreshGrace time.Duration
	// RefreshAcceptsAccessToken accepts the access token on auth/refresh,
	// for the one client that sends it. Default: false.
	RefreshAcceptsAccessToken bool
	// Realm is the realm of the WWW-Authenticate challenges. Default:
	// sessiongate.
	Realm string
}

// Validate reports whether o, with its defaults filled in, is usable; the
// error names the option at fault. o itself is not changed.
func (o Options) Validate() error { return o.setDefaults() }

func (o *Options) setDefaults() error {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if err := checkPrefix(o.Prefix); err != nil {
		return err
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	switch o.Registration {
	case "":
		o.Registration = RegistrationClosed
	case RegistrationClosed, RegistrationOpen:
		if o.JoinCode != "" {
			return fmt.Errorf("sxt: a join code needs registration join_code")
		}
	case RegistrationJoinCode:
		if o.JoinCode == "" {
			return fmt.Errorf("sxt: registration join_code needs a non-empty code")
		}
	default:
		return fmt.Errorf("sxt registration %q: want closed, open or join_code", o.Registration)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.CodeLifetime, DefaultCodeLifetime)
	def(&o.AccessLifetime, DefaultAccessLifetime)
	def(&o.RefreshLifetime, DefaultRefreshLifetime)
	def(&o.SessionLifetime, DefaultSessionLifetime)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"code_lifetime", o.CodeLifetime}, {"access_lifetime", o.AccessLifetime},
		{"refresh_lifetime", o.RefreshLifetime}, {"session_lifetime", o.SessionLifetime}} {
		if d.v < time.Second {
			return fmt.Errorf("sxt %s %s: must be at least 1s", d.name, d.v)
		}
	}
	if o.CodeLifetime > MaxCodeLifetime {
		return fmt.Errorf("sxt code_lifetime %s: must not exceed %s (SEC-29)", o.CodeLifetime, MaxCodeLifetime)
	}
	if o.AccessLifetime > o.SessionLifetime {
		return fmt.Errorf("sxt access_lifetime %s: must not exceed session_lifetime %s (SEC-12)", o.AccessLifetime, o.SessionLifetime)
	}
	if o.RefreshLifetime > o.SessionLifetime {
		return fmt.Errorf("sxt refresh_lifetime %s: must not exceed session_lifetime %s (SEC-12)", o.RefreshLifetime, o.SessionLifetime)
	}
	// The refresh lifetime is the session's idle timeout: an access token
	// outliving it would keep a session usable that nobody can refresh.
	if o.AccessLifetime > o.RefreshLifetime {
		return fmt.Errorf("sxt access_lifetime %s: must not exceed refresh_lifetime %s (SEC-12)", o.AccessLifetime, o.RefreshLifetime)
	}
	if o.RefreshGrace < 0 || o.RefreshGrace > MaxRefreshGrace {
		return fmt.Errorf("sxt refresh_grace %s: must be between 0s and %s", o.RefreshGrace, MaxRefreshGrace)
	}
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	if !ValidRealm(o.Realm) {
		return fmt.Errorf("sxt realm %q: want printable ASCII without quotes or backslashes", o.Realm)
	}
	return nil
}

// checkPrefix accepts "/" or a path of non-empty segments without a
// trailing slash, query, fragment, percent sign or space.
func checkPrefix(p string) error {
	bad := fmt.Errorf("sxt prefix %q: want a path such as /v1 (or / for the root)", p)
	if p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return bad
	}
	for _, c := range p {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`?#%"\`, c) {
			return bad
		}
	}
	return nil
}

// ValidRealm reports whether s can be sent as a quoted realm without
// escaping: printable ASCII without `"` or `\`.
func ValidRealm(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
