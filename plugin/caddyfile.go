package plugin

import (
	"math"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/native"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("sessiongate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("sessiongate", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("sessiongate", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption parses the global `sessiongate` option into the app.
//
// Syntax:
//
//	sessiongate {
//		store bolt [<path>]
//		store memory
//		store redis {
//			address <host:port>...
//			master_name <name>
//			cluster
//			db <n>
//			username <name>
//			password <secret, as a placeholder: {env.X} or {file./path}>
//			tls
//			key_prefix <prefix>
//			dial_timeout <duration>
//			read_timeout <duration>
//			write_timeout <duration>
//			pool_size <n>
//			channel <name>
//			retention <duration>
//		}
//		open_timeout <duration>
//		master_key <base64 key, as a placeholder: {env.X} or {file./path}>
//		cache_size <n>
//		cache_ttl <duration>
//		replay_cache_size <n>
//		purge_interval <duration>
//		max_sessions_per_user <n>
//		login_limits {
//			max_failures <n>|off
//			failure_window <duration>
//			lockout <duration>
//			ip_rate <logins per second>|off
//			ip_burst <n>
//			global_rate <logins per second>|off
//			global_burst <n>
//			signature_failures <n>|off
//			signature_window <duration>
//		}
//		hash {
//			time <n>
//			memory <size>
//			threads <n>
//			slots <n>
//			queue <n>
//			insecure_allow_weak
//		}
//		user <username> {
//			id <n>
//			email <address>
//			account_number <number>
//			password_hash <argon2id PHC string>
//			public_key <Ed25519 public key, padded standard base64>
//		}
//	}
//
// A user needs an id and a password_hash, or at least one public_key
// (repeatable) to log in with a key only.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		return nil, d.Err("sessiongate global option given twice")
	}
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "store":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if app.Store == nil {
				app.Store = new(StoreConfig)
			}
			app.Store.Backend = d.Val()
			switch d.Val() {
			case "bolt":
				if d.NextArg() {
					app.Store.Path = d.Val()
				}
			case "memory":
			case "redis":
				if d.NextArg() {
					return nil, d.ArgErr()
				}
				rc, err := parseRedisStore(d)
				if err != nil {
					return nil, err
				}
				app.Store.Redis = rc
			default:
				return nil, d.Errf("unknown store %q (want bolt, memory or redis)", d.Val())
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "open_timeout":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			if app.Store == nil {
				app.Store = new(StoreConfig)
			}
			app.Store.OpenTimeout = dur
		case "max_sessions_per_user":
			n, err := parseInt(d, 1)
			if err != nil {
				return nil, err
			}
			app.MaxSessionsPerUser = n
		case "login_limits":
			l, err := parseLoginLimits(d)
			if err != nil {
				return nil, err
			}
			app.LoginLimits = l
		case "master_key":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			app.MasterKey = v
		case "cache_size":
			n, err := parseInt(d, -1)
			if err != nil {
				return nil, err
			}
			app.CacheSize = n
		case "cache_ttl":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			app.CacheTTL = dur
		case "replay_cache_size":
			n, err := parseInt(d, 1)
			if err != nil {
				return nil, err
			}
			app.ReplayCacheSize = n
		case "purge_interval":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			app.PurgeInterval = dur
		case "hash":
			hc, err := parseHash(d)
			if err != nil {
				return nil, err
			}
			app.Hash = hc
		case "user":
			u, err := parseUser(d)
			if err != nil {
				return nil, err
			}
			app.Users = append(app.Users, u)
		default:
			return nil, d.Errf("unrecognized sessiongate option %q", d.Val())
		}
	}
	return httpcaddyfile.App{Name: "sessiongate", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseHash(d *caddyfile.Dispenser) (*HashConfig, error) {
	hc := new(HashConfig)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "time":
			n, err := parseInt(d, 1)
			if err != nil {
				return nil, err
			}
			if n > math.MaxUint32 {
				// Provision checks the real bound; this one keeps the
				// number from wrapping around into it.
				return nil, d.Errf("hash time %d: too large", n)
			}
			hc.Time = uint32(n) // #nosec G115 -- parseInt gave n ≥ 1; bounded above just before
		case "memory":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			size, err := humanize.ParseBytes(v)
			if err != nil || size < 1024 || size > 4<<30 {
				return nil, d.Errf("hash memory %q: want a size between 1KiB and 4GiB", v)
			}
			hc.MemoryKiB = uint32(size / 1024)
		case "threads":
			n, err := parseInt(d, 1)
			if err != nil {
				return nil, err
			}
			if n > 255 {
				return nil, d.Errf("hash threads %d: at most 255", n)
			}
			hc.Threads = uint8(n) // #nosec G115 -- parseInt gave n ≥ 1; bounded above just before
		case "slots":
			n, err := parseInt(d, 1)
			if err != nil {
				return nil, err
			}
			hc.Slots = n
		case "queue":
			n, err := parseInt(d, 0)
			if err != nil {
				return nil, err
			}
			hc.Queue = n
			if n == 0 {
				hc.Queue = -1 // explicit "no queue"
			}
		case "insecure_allow_weak":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			hc.InsecureAllowWeak = true
		default:
			return nil, d.Errf("unrecognized sessiongate hash option %q", d.Val())
		}
	}
	return hc, nil
}

func parseUser(d *caddyfile.Dispenser) (UserConfig, error) {
	var u UserConfig
	name, err := oneArg(d)
	if err != nil {
		return u, err
	}
	u.Username = name
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "id":
			v, err := oneArg(d)
			if err != nil {
				return u, err
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return u, d.Errf("user %s: id %q must be a positive integer", name, v)
			}
			u.ID = n
		case "email":
			if u.Email, err = oneArg(d); err != nil {
				return u, err
			}
		case "account_number":
			if u.AccountNumber, err = oneArg(d); err != nil {
				return u, err
			}
		case "password_hash":
			if u.PasswordHash, err = oneArg(d); err != nil {
				return u, err
			}
		case "public_key":
			k, err := oneArg(d)
			if err != nil {
				return u, err
			}
			if _, err := caddyauth.ParsePublicKeyBase64(k); err != nil {
				return u, d.Errf("user %s: %v (SEC-30)", name, err)
			}
			u.PublicKeys = append(u.PublicKeys, k)
		default:
			return u, d.Errf("unrecognized sessiongate user option %q", d.Val())
		}
	}
	if u.ID == 0 || u.PasswordHash == "" && len(u.PublicKeys) == 0 {
		return u, d.Errf("user %s: an id and a password_hash or public_key are required", name)
	}
	return u, nil
}

// parseHandler parses the `sessiongate` directive.
//
// Syntax:
//
//	sessiongate {
//		amatino {
//			window <duration>
//			legacy_body_signatures on|off
//			require_body_signature
//			replay observe|reject
//			max_body <size>
//			session_lifetime <duration>
//			idle_timeout <duration>
//			idle_reset_on_use
//		}
//		videntity {
//			idle_timeout <duration>
//			session_lifetime <duration>
//			idle_reset_on_use
//			max_body <size>
//		}
//		sxt {
//			prefix <path>
//			registration open|closed|join_code <code>
//			code_lifetime <duration>
//			access_lifetime <duration>
//			refresh_lifetime <duration>
//			session_lifetime <duration>
//			refresh_grace <duration>
//			refresh_accepts_access_token
//			realm <name>
//		}
//		native {
//			require_components <component>...
//			require_body_components <component>...
//			require_params <parameter>...
//			past_window <duration>
//			future_window <duration>
//			ignore_expires
//			label <label>
//			max_body <size>
//			idle_reset_on_use
//		}
//		identity_prefix <prefix>
//		keep_credentials
//	}
//
// `amatino`, `videntity`, `sxt` or `native` alone, without a block, enables
// the dialect with defaults.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	sg := new(Handler)
	err := sg.UnmarshalCaddyfile(h.Dispenser)
	return sg, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see
// parseHandler for the syntax.
func (sg *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "amatino":
			if sg.Amatino != nil {
				return d.Err("amatino given twice")
			}
			ac, err := parseAmatino(d)
			if err != nil {
				return err
			}
			sg.Amatino = ac
		case "videntity":
			if sg.Videntity != nil {
				return d.Err("videntity given twice")
			}
			vc, err := parseVidentity(d)
			if err != nil {
				return err
			}
			sg.Videntity = vc
		case "sxt":
			if sg.Sxt != nil {
				return d.Err("sxt given twice")
			}
			sc, err := parseSxt(d)
			if err != nil {
				return err
			}
			sg.Sxt = sc
		case "native":
			if sg.Native != nil {
				return d.Err("native given twice")
			}
			nc, err := parseNative(d)
			if err != nil {
				return err
			}
			sg.Native = nc
		case "identity_prefix":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if !validHeaderPrefix(v) {
				return d.Errf("identity_prefix %q is not a valid header name prefix", v)
			}
			sg.IdentityPrefix = v
		case "keep_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			sg.KeepCredentials = true
		default:
			return d.Errf("unrecognized sessiongate option %q", d.Val())
		}
	}
	if sg.Amatino == nil && sg.Videntity == nil && sg.Sxt == nil && sg.Native == nil {
		return d.Err("sessiongate: enable at least one dialect (amatino, native, sxt, videntity)")
	}
	return nil
}

// parseNative parses the `native { }` block. Each option is checked where it
// stands, so an error names its line; the combination is checked after the
// block.
func parseNative(d *caddyfile.Dispenser) (*NativeConfig, error) {
	nc := new(NativeConfig)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	check := func(o native.Options) error {
		if err := o.Validate(); err != nil {
			return d.Err(err.Error())
		}
		return nil
	}
	list := func() ([]string, error) {
		args := d.RemainingArgs()
		if len(args) == 0 {
			return nil, d.ArgErr()
		}
		return args, nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "require_components":
			if nc.RequireComponents, err = list(); err == nil {
				err = check(native.Options{Components: nc.RequireComponents})
			}
		case "require_body_components":
			if nc.RequireBodyComponents, err = list(); err == nil {
				err = check(native.Options{BodyComponents: nc.RequireBodyComponents})
			}
		case "require_params":
			if nc.RequireParams, err = list(); err == nil {
				err = check(native.Options{Params: nc.RequireParams})
			}
		case "past_window", "future_window":
			var dur caddy.Duration
			if dur, err = parseDuration(d); err != nil {
				break
			}
			if opt == "past_window" {
				nc.PastWindow, err = dur, check(native.Options{PastWindow: time.Duration(dur)})
			} else {
				nc.FutureWindow, err = dur, check(native.Options{FutureWindow: time.Duration(dur)})
			}
		case "ignore_expires", "idle_reset_on_use":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			if opt == "ignore_expires" {
				nc.IgnoreExpires = true
			} else {
				nc.IdleResetOnUse = true
			}
		case "label":
			if nc.Label, err = oneArg(d); err == nil {
				err = check(native.Options{Label: nc.Label})
			}
		case "max_body":
			nc.MaxBody, err = parseBodySize(d, "native")
		default:
			return nil, d.Errf("unrecognized native option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := check(nc.options()); err != nil {
		return nil, err
	}
	return nc, nil
}

func parseSxt(d *caddyfile.Dispenser) (*SxtConfig, error) {
	sc := new(SxtConfig)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	// Each option is checked where it stands, so an error names its line;
	// the combinations are checked after the block.
	check := func(o sxt.Options) error {
		if err := o.Validate(); err != nil {
			return d.Err(err.Error())
		}
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "prefix":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if err := check(sxt.Options{Prefix: v}); err != nil {
				return nil, err
			}
			sc.Prefix = v
		case "registration":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			switch mode := d.Val(); mode {
			case string(sxt.RegistrationOpen), string(sxt.RegistrationClosed):
				sc.Registration = mode
			case string(sxt.RegistrationJoinCode):
				if !d.NextArg() {
					return nil, d.Errf("sxt registration join_code needs the code (a placeholder such as {env.SXT_JOIN_CODE})")
				}
				sc.Registration, sc.JoinCode = mode, d.Val()
			default:
				return nil, d.Errf("sxt registration %q: want open, closed or join_code <code>", mode)
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "code_lifetime", "access_lifetime", "refresh_lifetime", "session_lifetime":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			switch opt {
			case "code_lifetime":
				if err := check(sxt.Options{CodeLifetime: time.Duration(dur)}); err != nil {
					return nil, err
				}
				sc.CodeLifetime = dur
			case "access_lifetime":
				sc.AccessLifetime = dur
			case "refresh_lifetime":
				sc.RefreshLifetime = dur
			default:
				sc.SessionLifetime = dur
			}
		case "refresh_grace":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < 0 {
				return nil, d.Errf("sxt refresh_grace %q: want a duration between 0s and 60s", v)
			}
			if err := check(sxt.Options{RefreshGrace: dur}); err != nil {
				return nil, err
			}
			sc.RefreshGrace = caddy.Duration(dur)
		case "refresh_accepts_access_token":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			sc.RefreshAcceptsAccessToken = true
		case "realm":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if !sxt.ValidRealm(v) {
				return nil, d.Errf("sxt realm %q: want printable ASCII without quotes or backslashes", v)
			}
			sc.Realm = v
		default:
			return nil, d.Errf("unrecognized sxt option %q", opt)
		}
	}
	if err := check(sxt.Options{Prefix: sc.Prefix, Registration: sxt.Registration(sc.Registration), JoinCode: sc.JoinCode,
		CodeLifetime: time.Duration(sc.CodeLifetime), AccessLifetime: time.Duration(sc.AccessLifetime),
		RefreshLifetime: time.Duration(sc.RefreshLifetime), SessionLifetime: time.Duration(sc.SessionLifetime),
		RefreshGrace: time.Duration(sc.RefreshGrace), Realm: sc.Realm}); err != nil {
		return nil, err
	}
	return sc, nil
}

func parseVidentity(d *caddyfile.Dispenser) (*VidentityConfig, error) {
	vc := new(VidentityConfig)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "idle_timeout":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			vc.IdleTimeout = dur
		case "session_lifetime":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			vc.SessionLifetime = dur
		case "idle_reset_on_use":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			vc.IdleResetOnUse = true
		case "max_body":
			size, err := parseBodySize(d, "videntity")
			if err != nil {
				return nil, err
			}
			vc.MaxBody = size
		default:
			return nil, d.Errf("unrecognized videntity option %q", d.Val())
		}
	}
	idle, life := vc.IdleTimeout, vc.SessionLifetime
	if idle == 0 {
		idle = caddy.Duration(30 * time.Minute)
	}
	if life == 0 {
		life = caddy.Duration(24 * time.Hour)
	}
	if life < idle {
		return nil, d.Errf("videntity: session_lifetime %s must not be below idle_timeout %s (SEC-12)",
			time.Duration(life), time.Duration(idle))
	}
	return vc, nil
}

func parseAmatino(d *caddyfile.Dispenser) (*AmatinoConfig, error) {
	ac := new(AmatinoConfig)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "window":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			if dur < caddy.Duration(1e9) || dur%caddy.Duration(1e9) != 0 {
				return nil, d.Errf("amatino window must be whole seconds, at least 1s")
			}
			ac.Window = dur
		case "legacy_body_signatures":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			on, err := parseOnOff(d, v)
			if err != nil {
				return nil, err
			}
			ac.LegacyBodySignatures = &on
		case "require_body_signature":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			ac.RequireBodySignature = true
		case "replay":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if v != "observe" && v != "reject" {
				return nil, d.Errf("amatino replay %q: want observe or reject", v)
			}
			ac.Replay = v
		case "max_body":
			size, err := parseBodySize(d, "amatino")
			if err != nil {
				return nil, err
			}
			ac.MaxBody = size
		case "session_lifetime":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			ac.SessionLifetime = dur
		case "idle_timeout":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			ac.IdleTimeout = dur
		case "idle_reset_on_use":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			ac.IdleResetOnUse = true
		default:
			return nil, d.Errf("unrecognized amatino option %q", d.Val())
		}
	}
	if ac.RequireBodySignature && ac.LegacyBodySignatures != nil && !*ac.LegacyBodySignatures {
		return nil, d.Err("amatino: require_body_signature needs legacy_body_signatures on")
	}
	if ac.IdleResetOnUse && ac.IdleTimeout == 0 {
		return nil, d.Err("amatino: idle_reset_on_use needs an idle_timeout")
	}
	if ac.IdleTimeout > 0 && ac.SessionLifetime > 0 && ac.IdleTimeout > ac.SessionLifetime {
		return nil, d.Err("amatino: idle_timeout must not exceed session_lifetime (SEC-12)")
	}
	return ac, nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// parseBodySize reads a max_body argument: a size between 1 B and 1 GiB.
func parseBodySize(d *caddyfile.Dispenser, dialect string) (int64, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	size, err := humanize.ParseBytes(v)
	if err != nil || size == 0 || size > 1<<30 {
		return 0, d.Errf("%s max_body %q: want a size between 1B and 1GiB", dialect, v)
	}
	return int64(size), nil
}

func parseDuration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("duration %q: want a positive duration such as 30s or 24h", v)
	}
	return caddy.Duration(dur), nil
}

func parseInt(d *caddyfile.Dispenser, min int) (int, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, d.Errf("%q: want an integer of at least %d", v, min)
	}
	return n, nil
}

func parseOnOff(d *caddyfile.Dispenser, v string) (bool, error) {
	switch v {
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	}
	return false, d.Errf("%q: want on or off", v)
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
