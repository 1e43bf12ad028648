package plugin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/redis"
)

// The `redis` backend: how its configuration is checked and mapped onto
// redis.Options, how it is keyed in the pool, and how it is parsed from the
// Caddyfile. The backend itself is built in pool.go.

// checkRedis checks the store settings that concern redis: redis settings
// only with backend redis, a master key (every node must decrypt the api
// keys every other node stored), and the options themselves.
func (a *App) checkRedis() error {
	if a.Store == nil {
		return nil
	}
	if a.Store.Backend != "redis" {
		if a.Store.Redis != nil {
			return fmt.Errorf("sessiongate store %q: redis settings need backend redis", a.Store.Backend)
		}
		return nil
	}
	if a.MasterKey == "" {
		return errors.New("sessiongate store redis: master_key is required, and must be the same on every node " +
			"(it decrypts the session keys the nodes share through Redis)")
	}
	if a.Store.Path != "" {
		return errors.New("sessiongate store redis: path is a bolt setting")
	}
	rc := RedisConfig{}
	if a.Store.Redis != nil {
		rc = *a.Store.Redis
	}
	if err := rc.validate(time.Duration(a.PurgeInterval)); err != nil {
		return fmt.Errorf("sessiongate store redis: %w", err)
	}
	return nil
}

// validate checks what can be checked without Redis. purge is the janitor's
// interval (0: its default).
func (rc *RedisConfig) validate(purge time.Duration) error {
	for _, addr := range rc.Addresses {
		if addr == "" {
			return errors.New("empty address")
		}
		if strings.Contains(addr, "{") {
			continue // a placeholder, resolved at provisioning
		}
		if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
			return fmt.Errorf("address %q: want host:port", addr)
		}
	}
	if rc.MasterName != "" && rc.Cluster {
		return errors.New("master_name (sentinel) and cluster exclude each other")
	}
	if rc.DB < 0 {
		return fmt.Errorf("db %d: must not be negative", rc.DB)
	}
	if rc.DB != 0 && (rc.Cluster || len(rc.Addresses) > 1 && rc.MasterName == "") {
		return fmt.Errorf("db %d: a cluster has only db 0", rc.DB)
	}
	if rc.PoolSize < 0 {
		return fmt.Errorf("pool_size %d: must not be negative", rc.PoolSize)
	}
	if strings.ContainsAny(rc.KeyPrefix, "{}") {
		return fmt.Errorf("key_prefix %q: must not contain { or } (the store puts it in a hash tag itself)", rc.KeyPrefix)
	}
	if rc.KeyPrefix != "" && strings.Trim(rc.KeyPrefix, ":") == "" {
		return fmt.Errorf("key_prefix %q: needs a character other than ':'", rc.KeyPrefix)
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"dial_timeout", rc.DialTimeout}, {"read_timeout", rc.ReadTimeout},
		{"write_timeout", rc.WriteTimeout}, {"retention", rc.Retention}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v: must be positive", d.name, time.Duration(d.v))
		}
	}
	if purge == 0 {
		purge = defaultPurgeInterval
	}
	if ret := rc.retention(); ret <= purge {
		return fmt.Errorf("retention %v must exceed purge_interval %v, or ended sessions vanish before the janitor counts them",
			ret, purge)
	}
	return nil
}

func (rc *RedisConfig) retention() time.Duration {
	if rc.Retention > 0 {
		return time.Duration(rc.Retention)
	}
	return redis.DefaultRetention
}

// resolved returns a copy with the placeholders in the address, user name
// and password replaced (the password is meant to come from one).
func (rc *RedisConfig) resolved(repl *caddy.Replacer) *RedisConfig {
	out := RedisConfig{}
	if rc != nil {
		out = *rc
	}
	out.Addresses = make([]string, len(out.Addresses))
	for i, a := range rc.addresses() {
		out.Addresses[i] = repl.ReplaceKnown(a, "")
	}
	out.Username = repl.ReplaceKnown(out.Username, "")
	out.Password = repl.ReplaceKnown(out.Password, "")
	return &out
}

func (rc *RedisConfig) addresses() []string {
	if rc == nil {
		return nil
	}
	return rc.Addresses
}

// options maps the settings onto the store's options, one to one.
func (rc *RedisConfig) options() redis.Options {
	o := redis.Options{Addrs: rc.Addresses, MasterName: rc.MasterName, Cluster: rc.Cluster, DB: rc.DB,
		Username: rc.Username, Password: rc.Password, KeyPrefix: rc.KeyPrefix,
		DialTimeout: time.Duration(rc.DialTimeout), ReadTimeout: time.Duration(rc.ReadTimeout),
		WriteTimeout: time.Duration(rc.WriteTimeout), PoolSize: rc.PoolSize, Channel: rc.Channel,
		Retention: time.Duration(rc.Retention)}
	if rc.TLS {
		// go-redis takes the server name from the address it dials.
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o
}

// callTimeout bounds one store call: a connection attempt plus one reply.
// go-redis bounds each command by itself, but a call may wait for a pooled
// connection, dial and read in turn; one deadline over the whole call keeps
// a stalled Redis from holding a request longer than this (REL-10).
func (rc *RedisConfig) callTimeout() time.Duration {
	dial, read := time.Duration(rc.DialTimeout), time.Duration(rc.ReadTimeout)
	if dial <= 0 {
		dial = redis.DefaultTimeout
	}
	if read <= 0 {
		read = redis.DefaultTimeout
	}
	return dial + read
}

// poolKey identifies the store: the same Redis database and key prefix are
// the same sessions, whatever the other settings.
func (rc *RedisConfig) poolKey() string {
	addrs := rc.Addresses
	if len(addrs) == 0 {
		addrs = []string{redis.DefaultAddr}
	}
	prefix := rc.KeyPrefix
	if prefix == "" {
		prefix = redis.DefaultKeyPrefix
	}
	key := "redis:" + strings.Join(addrs, ",") + "/" + fmt.Sprint(rc.DB) + "/" + prefix
	if rc.MasterName != "" {
		key += "/master=" + rc.MasterName
	}
	return key
}

// name names the store in errors: addresses, never the password.
func (rc *RedisConfig) name() string {
	addrs := rc.Addresses
	if len(addrs) == 0 {
		addrs = []string{redis.DefaultAddr}
	}
	return "redis " + strings.Join(addrs, ",")
}

// newRedisStore is the lazily opened redis store. Opening probes Redis (a
// write and a delete), bounded by two call timeouts.
func newRedisStore(rc *RedisConfig) *caddyauth.SharedLazyStore {
	routeRedisLogs()
	o, timeout := rc.options(), rc.callTimeout()
	return caddyauth.NewSharedLazyStore(rc.name(), timeout, func() (caddyauth.SharedStore, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
		defer cancel()
		return redis.Open(ctx, o)
	})
}

var redisLogOnce sync.Once

// routeRedisLogs sends go-redis's own log lines (dial failures while Redis
// is down, …) to Caddy's logger at debug level instead of its default of
// stderr. They are the library's, global to the process; the gateway's view
// of an outage is in its 503s, its store_errors metric and its warnings.
func routeRedisLogs() {
	redisLogOnce.Do(func() { goredis.SetLogger(redisLogger{}) })
}

type redisLogger struct{}

// Printf implements go-redis's Logging.
func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("sessiongate.redis").Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// parseRedisStore parses the block of `store redis { … }`; nil without
// one, so the defaults leave no trace in the JSON.
func parseRedisStore(d *caddyfile.Dispenser) (*RedisConfig, error) {
	var rc *RedisConfig
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if rc == nil {
			rc = new(RedisConfig)
		}
		opt := d.Val()
		var err error
		switch opt {
		case "address":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			rc.Addresses = append(rc.Addresses, args...)
		case "master_name":
			rc.MasterName, err = oneArg(d)
		case "cluster":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			rc.Cluster = true
		case "db":
			rc.DB, err = parseInt(d, 0)
		case "username":
			rc.Username, err = oneArg(d)
		case "password":
			rc.Password, err = oneArg(d)
		case "tls":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			rc.TLS = true
		case "key_prefix":
			rc.KeyPrefix, err = oneArg(d)
			if err == nil && (strings.ContainsAny(rc.KeyPrefix, "{}") || strings.Trim(rc.KeyPrefix, ":") == "") {
				return nil, d.Errf("redis key_prefix %q: no { or }, and at least one character other than ':'", rc.KeyPrefix)
			}
		case "dial_timeout":
			rc.DialTimeout, err = parseDuration(d)
		case "read_timeout":
			rc.ReadTimeout, err = parseDuration(d)
		case "write_timeout":
			rc.WriteTimeout, err = parseDuration(d)
		case "pool_size":
			rc.PoolSize, err = parseInt(d, 1)
		case "channel":
			rc.Channel, err = oneArg(d)
		case "retention":
			rc.Retention, err = parseDuration(d)
		default:
			return nil, d.Errf("unrecognized sessiongate redis option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return rc, nil
}

// defaultPurgeInterval is how often the janitor runs when purge_interval is
// not set.
const defaultPurgeInterval = time.Minute
