package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/bolt"
	"github.com/sessiongate/sessiongate/caddyauth/store/memory"
)

// pool holds one backend per store identity (absolute bolt path, "memory",
// or the redis addresses, db and key prefix), shared by every config that
// names it. A reload provisions the new config before cleaning up the old
// one, so the backend's use count never drops to zero in between and the
// store stays open.
var pool = caddy.NewUsagePool()

// backend is the long-lived state behind a store: the lazily opened store,
// the key cache, the replay cache, the sealer, the janitor and, for a shared
// store, the subscription to cache invalidations.
type backend struct {
	store *caddyauth.LazyStore
	// shared is the same store as store when it is shared between nodes
	// (redis): it is also the Ephemeral state, the replay guard and the
	// invalidation channel.
	shared *caddyauth.SharedLazyStore
	// redis is the resolved configuration a redis backend was opened
	// with; a reload of the same store cannot change it (App.Provision
	// warns when it tries).
	redis  *RedisConfig
	cache  *caddyauth.KeyCache
	replay caddyauth.ReplayGuard
	// localReplay counts observe-only repeats on this node, whatever the
	// store (see caddyauth.Manager.ObserveOnce).
	localReplay caddyauth.ReplayGuard
	// eph holds challenges and failure counters: node-local for bolt and
	// memory; a shared store provides its own.
	eph    caddyauth.Ephemeral
	sealer *caddyauth.Sealer

	janitorOnce sync.Once
	stop        context.CancelFunc
	done        chan struct{}

	subOnce sync.Once
	subStop context.CancelFunc
	subDone chan struct{}
}

// engineStore is the store the Manager gets: the shared one when there is
// one, so the Manager sees its Invalidator and publishes ended sessions.
func (b *backend) engineStore() caddyauth.Store {
	if b.shared != nil {
		return b.shared
	}
	return b.store
}

// Destruct implements caddy.Destructor: the last config using the store is
// gone, so stop the janitor and the subscription and close the store.
func (b *backend) Destruct() error {
	if b.stop != nil {
		b.stop()
		<-b.done
	}
	if b.subStop != nil {
		b.subStop()
		<-b.subDone
	}
	return b.store.Close()
}

func loadBackend(sc StoreConfig, cacheSize int, cacheTTL time.Duration, replaySize int, masterKey []byte) (*backend, string, error) {
	if cacheTTL == 0 {
		cacheTTL = caddyauth.DefaultCacheTTL
	}
	key := "memory"
	switch sc.Backend {
	case "redis":
		key = sc.Redis.poolKey()
	case "bolt":
		abs, err := filepath.Abs(sc.Path)
		if err != nil {
			return nil, "", fmt.Errorf("sessiongate store path %q: %w", sc.Path, err)
		}
		sc.Path = abs
		key = "bolt:" + abs
	}
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		mk := masterKey
		if mk == nil {
			switch sc.Backend {
			case "bolt":
				k, err := loadOrCreateKeyFile(sc.Path + ".key")
				if err != nil {
					return nil, err
				}
				mk = k
			case "redis":
				// A key of this node alone would refuse every session
				// another node stored.
				return nil, errors.New("redis needs master_key")
			default:
				mk = caddyauth.NewMasterKey()
			}
		}
		sealer, err := caddyauth.NewSealer(mk)
		if err != nil {
			return nil, err
		}
		// The replay table is allocated whole here (about 25 bytes per
		// value, no pointers for the GC) and never grows, so it lives
		// with the backend across reloads like the key cache.
		local := caddyauth.NewMemoryReplayGuard(replaySize, nil)
		b := &backend{cache: caddyauth.NewKeyCache(cacheSize, cacheTTL), sealer: sealer,
			replay: local, localReplay: local,
			eph: caddyauth.NewLocalEphemeral(caddyauth.DefaultEphemeralSize, nil)}
		switch sc.Backend {
		case "redis":
			// Challenges, replay marks and failure counters live in Redis
			// too, so every node sees them (SEC-24).
			b.shared, b.redis = newRedisStore(sc.Redis), sc.Redis
			b.store, b.eph, b.replay = b.shared.LazyStore, b.shared, b.shared
		case "bolt":
			timeout := time.Duration(sc.OpenTimeout)
			if timeout == 0 {
				timeout = time.Second
			}
			path := sc.Path
			b.store = caddyauth.NewLazyStore("bolt store "+path, func() (caddyauth.Store, error) {
				return bolt.Open(path, bolt.Options{Timeout: timeout})
			})
		default:
			b.store = caddyauth.NewLazyStore("memory store", func() (caddyauth.Store, error) { return memory.New(), nil })
		}
		return b, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("sessiongate store: %w", err)
	}
	b := val.(*backend)
	b.cache.Resize(cacheSize)
	return b, key, nil
}

// startJanitor starts, once per backend, the goroutine that purges expired
// sessions and refreshes the gauges. It is tied to the backend, not to a
// config, so reloads neither stop nor duplicate it.
func (b *backend) startJanitor(every time.Duration, obs caddyauth.Observer, log *zap.Logger) {
	b.janitorOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		b.stop, b.done = cancel, make(chan struct{})
		go func() {
			defer close(b.done)
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				b.janitorRun(ctx, obs, log)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	})
}

// startInvalidations starts, once per backend with a shared store, the
// goroutine that applies other nodes' invalidations to the key cache: drop
// the named entries, and flush the whole cache on every (re)subscription,
// because pub/sub forgets what was published while this node was not
// listening (REL-04). Like the janitor, it lives as long as the backend.
func (b *backend) startInvalidations(log *zap.Logger) {
	if b.shared == nil {
		return
	}
	b.subOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		b.subStop, b.subDone = cancel, make(chan struct{})
		go func() {
			defer close(b.subDone)
			subscriptions := 0
			b.shared.SubscribeInvalidations(ctx, func(keys []string) {
				for _, k := range keys {
					b.cache.Remove(k)
				}
			}, func() {
				b.cache.Purge()
				cacheFlushes.Inc()
				if subscriptions++; subscriptions > 1 {
					log.Info("resubscribed to session invalidations; key cache flushed",
						zap.String("store", b.redis.name()))
				}
			})
		}()
	})
}

func (b *backend) janitorRun(ctx context.Context, obs caddyauth.Observer, log *zap.Logger) {
	if b.store.Opened() == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := caddyauth.PurgeExpired(rctx, b.store, b.cache, obs, time.Now())
	if err != nil {
		log.Warn("purging expired sessions", zap.Error(err))
	} else if n > 0 {
		log.Info("purged expired sessions", zap.Int("count", n))
	}
	if counts, err := b.store.CountSessions(rctx); err == nil {
		for _, d := range dialectLabels {
			sessionsActive.WithLabelValues(d).Set(float64(counts[caddyauth.Dialect(d)]))
		}
	}
	cacheEntries.Set(float64(b.cache.Len()))
}

func defaultBoltPath() string {
	return filepath.Join(caddy.AppDataDir(), "sessiongate", "sessions.db")
}

// loadOrCreateKeyFile reads the master key kept beside the store, or creates
// it (mode 0600) if there is none.
func loadOrCreateKeyFile(path string) ([]byte, error) {
	// #nosec G304 -- the operator's own key file, beside the store they configured.
	if b, err := os.ReadFile(path); err == nil {
		k, err := decodeMasterKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("master key file %s: %w", path, err)
		}
		return k, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for master key file: %w", err)
	}
	// Write a temporary file, then link it into place: the link fails if
	// another process got there first, and nobody ever reads a half-written
	// key.
	k := caddyauth.NewMasterKey()
	f, err := os.CreateTemp(filepath.Dir(path), ".sessiongate-key-*")
	if err != nil {
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close() // the error above is the one to report
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(base64StdEncode(k) + "\n"); err != nil {
		_ = f.Close() // the error above is the one to report
		return nil, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close() // the error above is the one to report
		return nil, fmt.Errorf("sync master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close master key file: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateKeyFile(path)
		}
		return nil, fmt.Errorf("install master key file: %w", err)
	}
	return k, nil
}
