package plugin

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
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
//		open_timeout <duration>
//		master_key <base64 key, as a placeholder: {env.X} or {file./path}>
//		cache_size <n>
//		cache_ttl <duration>
//		replay_cache_size <n>
//		purge_interval <duration>
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
//		}
//	}
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
			default:
				return nil, d.Errf("unknown store %q (want bolt or memory)", d.Val())
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
			hc.Time = uint32(n)
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
			hc.Threads = uint8(n)
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
		default:
			return u, d.Errf("unrecognized sessiongate user option %q", d.Val())
		}
	}
	if u.ID == 0 || u.PasswordHash == "" {
		return u, d.Errf("user %s: id and password_hash are required", name)
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
//		identity_prefix <prefix>
//		keep_credentials
//	}
//
// `amatino` or `videntity` alone, without a block, enables the dialect with
// defaults.
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
	if sg.Amatino == nil && sg.Videntity == nil {
		return d.Err("sessiongate: enable at least one dialect (amatino, videntity)")
	}
	return nil
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
