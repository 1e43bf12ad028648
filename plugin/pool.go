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

// pool holds one backend per store identity (absolute bolt path, or
// "memory"), shared by every config that names it. A reload provisions the
// new config before cleaning up the old one, so the backend's use count
// never drops to zero in between and the store stays open.
var pool = caddy.NewUsagePool()

// backend is the long-lived state behind a store: the lazily opened store,
// the key cache, the replay cache, the sealer and the janitor.
type backend struct {
	store  *caddyauth.LazyStore
	cache  *caddyauth.KeyCache
	replay *caddyauth.MemoryReplayGuard
	sealer *caddyauth.Sealer

	janitorOnce sync.Once
	stop        context.CancelFunc
	done        chan struct{}
}

// Destruct implements caddy.Destructor: the last config using the store is
// gone, so stop the janitor and close the store.
func (b *backend) Destruct() error {
	if b.stop != nil {
		b.stop()
		<-b.done
	}
	return b.store.Close()
}

func loadBackend(sc StoreConfig, cacheSize int, cacheTTL time.Duration, replaySize int, masterKey []byte) (*backend, string, error) {
	if cacheTTL == 0 {
		cacheTTL = caddyauth.DefaultCacheTTL
	}
	key := "memory"
	if sc.Backend == "bolt" {
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
			if sc.Backend == "bolt" {
				k, err := loadOrCreateKeyFile(sc.Path + ".key")
				if err != nil {
					return nil, err
				}
				mk = k
			} else {
				mk = caddyauth.NewMasterKey()
			}
		}
		sealer, err := caddyauth.NewSealer(mk)
		if err != nil {
			return nil, err
		}
		b := &backend{cache: caddyauth.NewKeyCache(cacheSize, cacheTTL), sealer: sealer,
			replay: caddyauth.NewMemoryReplayGuard(replaySize, nil)}
		if sc.Backend == "bolt" {
			timeout := time.Duration(sc.OpenTimeout)
			if timeout == 0 {
				timeout = time.Second
			}
			path := sc.Path
			b.store = caddyauth.NewLazyStore("bolt store "+path, func() (caddyauth.Store, error) {
				return bolt.Open(path, bolt.Options{Timeout: timeout})
			})
		} else {
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
		f.Close()
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(base64StdEncode(k) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
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
