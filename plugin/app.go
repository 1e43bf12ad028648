package plugin

import (
	"context"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/password"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `sessiongate` app: the session store, the static users, the
// master key and the engine settings shared by every sessiongate handler of
// the config. It is optional: with no global `sessiongate` block, defaults
// apply (a bolt file in Caddy's data directory, a master key generated once
// beside it with mode 0600, no static users).
//
// The store, key cache and replay cache are shared across config reloads (a
// reload opens nothing anew), and the store is opened lazily and probed when
// the app starts, so `caddy validate` never takes the bolt file lock and a
// broken store fails the config load.
type App struct {
	// Store selects where sessions live. Default: bolt in Caddy's data
	// directory (`<data>/sessiongate/sessions.db`).
	Store *StoreConfig `json:"store,omitempty"`

	// Users are static users, fixed by the configuration.
	Users []UserConfig `json:"users,omitempty"`

	// MasterKey encrypts session keys at rest (AES-256-GCM): 32 bytes in
	// standard or URL-safe base64. Use a placeholder such as
	// `{env.SESSIONGATE_MASTER_KEY}` or `{file./run/secrets/sg}`, never a
	// literal. Default: a random key generated once and kept beside the bolt
	// file as `<file>.key` (mode 0600); for the memory store, a random key
	// per process.
	MasterKey string `json:"master_key,omitempty"`

	// Hash sets the argon2id parameters for new hashes and the dummy hash,
	// and the bounded hashing pool. Default: t=2, m=19 MiB, p=1; one slot per
	// CPU and a queue of four per slot.
	Hash *HashConfig `json:"hash,omitempty"`

	// CacheSize is the number of sessions kept in the in-memory key cache.
	// 0 means the default; -1 disables the cache. Default: 100000.
	CacheSize int `json:"cache_size,omitempty"`

	// CacheTTL is how long a cached session is trusted without asking the
	// store again. It bounds how late a revocation made on another node is
	// seen. Default: 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// ReplayCacheSize is how many recently seen signatures each node
	// remembers (about 25 bytes each, allocated at start; at most 16777216).
	// When it is full the marks closest to expiry are forgotten first.
	// Default: 100000.
	ReplayCacheSize int `json:"replay_cache_size,omitempty"`

	// MaxSessionsPerUser caps the live sessions of one user, every dialect
	// together: a login that makes one too many ends that user's oldest
	// session (SEC-13). Default: 0, no cap.
	MaxSessionsPerUser int `json:"max_sessions_per_user,omitempty"`

	// LoginLimits sets account lockout, login throttles and the
	// per-session signature lock. Default: all on with their defaults
	// (10 failures in 15m lock an account for 15m; 1 login/s per client
	// IP with a burst of 30; 100/s per node).
	LoginLimits *LoginLimits `json:"login_limits,omitempty"`

	// PurgeInterval is how often expired sessions are purged from the
	// store. Default: 1m.
	PurgeInterval caddy.Duration `json:"purge_interval,omitempty"`

	mgr     *caddyauth.Manager
	be      *backend
	poolKey string
	obs     *observer
	logger  *zap.Logger
	// ctx and events emit account changes as Caddy events (events.go).
	ctx    caddy.Context
	events *atomic.Pointer[caddyevents.App]
}

// StoreConfig selects the session store.
type StoreConfig struct {
	// Backend is `bolt` (embedded, durable; the default), `memory`
	// (nothing survives a restart; for tests and throwaway setups) or
	// `redis` (shared by several gateway nodes; needs `master_key`).
	Backend string `json:"backend,omitempty"`
	// Path is the bolt file. Default: `<caddy data dir>/sessiongate/sessions.db`.
	Path string `json:"path,omitempty"`
	// OpenTimeout bounds the wait for the bolt file lock held by another
	// process. Default: 1s.
	OpenTimeout caddy.Duration `json:"open_timeout,omitempty"`
	// Redis configures the `redis` backend. Only with backend `redis`;
	// omitted, every Redis setting has its default.
	Redis *RedisConfig `json:"redis,omitempty"`
}

// RedisConfig is how the gateway reaches Redis. Every node sharing the store
// must use the same Redis, `key_prefix`, `channel` and `master_key`.
type RedisConfig struct {
	// Addresses are host:port pairs: one for a single server; the
	// sentinels with MasterName; two or more for a cluster (seed nodes).
	// Default: `127.0.0.1:6379`.
	Addresses []string `json:"addresses,omitempty"`
	// MasterName is the sentinel master name; setting it selects sentinel
	// mode.
	MasterName string `json:"master_name,omitempty"`
	// Cluster selects cluster mode with a single address (a managed
	// cluster's configuration endpoint). Two or more addresses select it
	// anyway. Default: false.
	Cluster bool `json:"cluster,omitempty"`
	// DB is the database number (single server and sentinel). Default: 0.
	DB int `json:"db,omitempty"`
	// Username is the ACL user (Redis 6+). Default: the default user.
	Username string `json:"username,omitempty"`
	// Password authenticates to Redis. Use a placeholder such as
	// `{env.REDIS_PASSWORD}` or `{file./run/secrets/redis}`, never a
	// literal; it is never logged or shown in an error.
	Password string `json:"password,omitempty"`
	// TLS connects with TLS 1.2 or later, verified against the system
	// roots. Default: false.
	TLS bool `json:"tls,omitempty"`
	// KeyPrefix starts every key, so several gateways or applications can
	// share one Redis. No `{` or `}`. Default: `sessiongate:`.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// DialTimeout bounds each connection attempt. Default: 500ms.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// ReadTimeout bounds the wait for each reply. A store call as a whole
	// never takes longer than dial_timeout + read_timeout: a stalled Redis
	// is answered 503 within that. Default: 500ms.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`
	// WriteTimeout bounds sending each request. Default: 500ms.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// PoolSize is the number of connections per Redis node. Default: 10
	// per CPU.
	PoolSize int `json:"pool_size,omitempty"`
	// Channel is the pub/sub channel on which nodes tell each other which
	// cached sessions to drop. Default: `<key_prefix>invalidate`.
	Channel string `json:"channel,omitempty"`
	// Retention is how long an ended session's record is kept after its
	// deadline, so it answers "expired" rather than "unknown" and the
	// janitor counts it. Must exceed purge_interval. Default: 10m.
	Retention caddy.Duration `json:"retention,omitempty"`
}

// UserConfig is a static user.
type UserConfig struct {
	// ID is the numeric user id (amatino `user_id`), a positive integer.
	ID int64 `json:"id"`
	// Email is the login email (amatino `account_email`).
	Email string `json:"email,omitempty"`
	// Username is the login name (videntity `username`, sxt `userId`).
	Username string `json:"username,omitempty"`
	// AccountNumber is the videntity account number.
	AccountNumber string `json:"account_number,omitempty"`
	// PasswordHash is an argon2id PHC string, as printed by
	// `caddy sessiongate hash-password`. Any valid argon2id string is
	// accepted. Optional for a user with PublicKeys, who then logs in with
	// a key only.
	PasswordHash string `json:"password_hash,omitempty"`
	// PublicKeys are the user's Ed25519 public keys (sxt login), each 32
	// bytes in padded standard base64 (44 characters). The all-zero key and
	// small-order points are refused.
	PublicKeys []string `json:"public_keys,omitempty"`
}

// HashConfig tunes password hashing.
type HashConfig struct {
	// Time is argon2id's iteration count. Default: 2.
	Time uint32 `json:"time,omitempty"`
	// MemoryKiB is argon2id's memory in KiB. Default: 19456 (19 MiB).
	MemoryKiB uint32 `json:"memory_kib,omitempty"`
	// Threads is argon2id's parallelism. Default: 1.
	Threads uint8 `json:"threads,omitempty"`
	// Slots is how many hashes run at once. Default: the number of CPUs.
	Slots int `json:"slots,omitempty"`
	// Queue is how many logins may wait for a slot; more are answered 503
	// with Retry-After at once. Default: 4 per slot.
	Queue int `json:"queue,omitempty"`
	// InsecureAllowWeak accepts parameters below the OWASP floor. Only for
	// tests and benchmarks. Default: false.
	InsecureAllowWeak bool `json:"insecure_allow_weak,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "sessiongate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision builds the engine. It opens nothing exclusive: the store is
// opened on first use or by Start.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	a.events = new(atomic.Pointer[caddyevents.App])
	a.obs = &observer{audit: a.logger.Named("audit")}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("register sessiongate metrics: %w", err)
	}
	repl := caddy.NewReplacer()

	sc := StoreConfig{}
	if a.Store != nil {
		sc = *a.Store
	}
	if sc.Backend == "" {
		sc.Backend = "bolt"
	}
	sc.Path = repl.ReplaceKnown(sc.Path, "")
	if sc.Backend == "bolt" && sc.Path == "" {
		sc.Path = defaultBoltPath()
	}
	warnLiteralSecret(a.logger, "master_key", a.MasterKey)
	if sc.Backend == "redis" {
		// Provision runs before Validate: refuse here, before the pool
		// builds a backend that could never work.
		if err := a.checkRedis(); err != nil {
			return err
		}
		if sc.Redis != nil {
			warnLiteralSecret(a.logger, "store redis password", sc.Redis.Password)
		}
		sc.Redis = sc.Redis.resolved(repl)
	}
	var masterKey []byte
	if a.MasterKey != "" {
		k, err := decodeMasterKey(repl.ReplaceKnown(a.MasterKey, ""))
		if err != nil {
			return fmt.Errorf("sessiongate master_key: %w", err)
		}
		masterKey = k
	}

	var err error
	a.be, a.poolKey, err = loadBackend(sc, a.cacheSize(), time.Duration(a.CacheTTL), a.ReplayCacheSize, masterKey)
	if err != nil {
		return err
	}
	if sc.Backend == "redis" && !reflect.DeepEqual(a.be.redis, sc.Redis) {
		// The store is shared with the running config and stays open
		// across the reload, with the connection settings it was opened
		// with.
		a.logger.Warn("changed redis settings take effect after a restart", zap.String("store", sc.Redis.name()))
	}

	hc := HashConfig{}
	if a.Hash != nil {
		hc = *a.Hash
	}
	params := password.DefaultParams
	if hc.Time != 0 {
		params.Time = hc.Time
	}
	if hc.MemoryKiB != 0 {
		params.MemoryKiB = hc.MemoryKiB
	}
	if hc.Threads != 0 {
		params.Threads = hc.Threads
	}
	hasher, err := password.NewHasher(password.Config{Slots: hc.Slots, Queue: hc.Queue, Params: params,
		AllowWeakParams: hc.InsecureAllowWeak})
	if err != nil {
		return fmt.Errorf("sessiongate hash: %w", err)
	}

	users := make([]caddyauth.User, 0, len(a.Users))
	for i, u := range a.Users {
		if u.PasswordHash == "" && len(u.PublicKeys) == 0 {
			return fmt.Errorf("sessiongate user %d (id %d): needs a password_hash or a public_key", i, u.ID)
		}
		if u.PasswordHash != "" {
			if _, err := password.Parse(u.PasswordHash); err != nil {
				return fmt.Errorf("sessiongate user %d (id %d): password_hash: %w", i, u.ID, err)
			}
		}
		cu := caddyauth.User{ID: u.ID, Email: u.Email, Username: u.Username,
			AccountNumber: u.AccountNumber, PasswordHash: u.PasswordHash}
		for j, k := range u.PublicKeys {
			key, err := caddyauth.ParsePublicKeyBase64(k)
			if err != nil {
				return fmt.Errorf("sessiongate user %d (id %d): public key %d: %w", i, u.ID, j, err)
			}
			cu.PublicKeys = append(cu.PublicKeys, caddyauth.PublicKey{ID: caddyauth.PublicKeyID(key), Key: key})
		}
		users = append(users, cu)
	}
	dir, err := caddyauth.NewStaticUsers(users)
	if err != nil {
		return fmt.Errorf("sessiongate users: %w", err)
	}

	// Static users win over users in the store (see caddyauth.Layered).
	a.mgr, err = caddyauth.NewManager(caddyauth.Config{Store: a.be.engineStore(),
		Users: caddyauth.Layered{Static: dir, Store: a.be.engineStore()}, Hasher: hasher,
		Sealer: a.be.sealer, Cache: a.be.cache, Replay: a.be.replay, LocalReplay: a.be.localReplay, Ephemeral: a.be.eph,
		MaxSessionsPerUser: a.MaxSessionsPerUser,
		Abuse:              caddyauth.NewAbuse(a.LoginLimits.abuseConfig(), a.be.eph, nil),
		Observer:           eventObserver{Observer: a.obs, emit: a.emit}})
	if err != nil {
		return fmt.Errorf("sessiongate: %w", err)
	}
	return nil
}

func (a *App) cacheSize() int {
	switch {
	case a.CacheSize == 0:
		return caddyauth.DefaultCacheSize
	case a.CacheSize < 0:
		return 0
	}
	return a.CacheSize
}

// Validate checks the settings Provision did not.
func (a *App) Validate() error {
	if a.CacheTTL < 0 || a.PurgeInterval < 0 {
		return fmt.Errorf("sessiongate: cache_ttl and purge_interval must not be negative")
	}
	if a.MaxSessionsPerUser < 0 {
		return fmt.Errorf("sessiongate: max_sessions_per_user must not be negative")
	}
	if a.ReplayCacheSize < 0 || a.ReplayCacheSize > caddyauth.MaxReplayCacheSize {
		return fmt.Errorf("sessiongate: replay_cache_size %d: want 1 to %d (0 for the default)",
			a.ReplayCacheSize, caddyauth.MaxReplayCacheSize)
	}
	if err := a.LoginLimits.validate(); err != nil {
		return err
	}
	if a.Store != nil {
		switch a.Store.Backend {
		case "", "bolt", "memory", "redis":
		default:
			return fmt.Errorf("sessiongate store %q: want bolt, memory or redis", a.Store.Backend)
		}
	}
	return a.checkRedis()
}

// Start opens and probes the store (a write and a delete), so a store that
// cannot work (a wrong redis address or password, a locked bolt file) fails
// the config load (REL-01), and starts the janitor that purges expired
// sessions and, for a shared store, the subscription to invalidations.
func (a *App) Start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.be.store.Ping(ctx); err != nil {
		return fmt.Errorf("sessiongate: %w", err)
	}
	every := time.Duration(a.PurgeInterval)
	if every == 0 {
		every = defaultPurgeInterval
	}
	a.be.startJanitor(every, a.obs, a.logger)
	a.be.startInvalidations(a.logger)
	a.findEventsApp()
	running.add(a) // the admin API serves the newest running app
	return nil
}

// Stop leaves the store open: it outlives a reload and is closed when the
// last config using it is cleaned up.
func (a *App) Stop() error {
	running.remove(a)
	return nil
}

// Cleanup releases this config's hold on the shared store.
func (a *App) Cleanup() error {
	if a.poolKey != "" {
		if _, err := pool.Delete(a.poolKey); err != nil {
			return fmt.Errorf("sessiongate: release store: %w", err)
		}
		a.poolKey = ""
	}
	return nil
}

// Manager returns the engine (nil before Provision).
func (a *App) Manager() *caddyauth.Manager { return a.mgr }

func decodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.Strict().DecodeString(s); err == nil {
			if len(k) != caddyauth.MasterKeySize {
				return nil, fmt.Errorf("decodes to %d bytes, need %d", len(k), caddyauth.MasterKeySize)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("not base64 (need 32 random bytes, e.g. `openssl rand -base64 32`)")
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

func base64StdEncode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
