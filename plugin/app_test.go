package plugin

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/bolt"
)

func newCaddyContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// cheapHash keeps provisioning fast: the dummy hash is made with these.
var cheapHash = &HashConfig{Time: 1, MemoryKiB: 64, Threads: 1, InsecureAllowWeak: true}

func provisionApp(t *testing.T, a *App) {
	t.Helper()
	if a.Hash == nil {
		a.Hash = cheapHash
	}
	if err := a.Provision(newCaddyContext(t)); err != nil {
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { a.Cleanup() })
}

// TestProvisionTakesNoLock: provisioning (all that `caddy validate` does)
// must not open the bolt file, or a validate next to a running server would
// block on its lock (REL-08).
func TestProvisionTakesNoLockREL08(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	a := &App{Store: &StoreConfig{Backend: "bolt", Path: path}}
	provisionApp(t, a)
	st, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("bolt file locked by a provisioned, unstarted app: %v", err)
	}
	st.Close()
}

// TestBackendSharedAcrossReload: a reload provisions the new config before
// cleaning up the old; both must share one open store, which stays open until
// the last user is gone (REL-07).
func TestBackendSharedAcrossReloadREL07(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	oldCfg := &App{Store: &StoreConfig{Backend: "bolt", Path: path}, Hash: cheapHash}
	if err := oldCfg.Provision(newCaddyContext(t)); err != nil {
		t.Fatal(err)
	}
	if err := oldCfg.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	newCfg := &App{Store: &StoreConfig{Backend: "bolt", Path: path}, Hash: cheapHash}
	if err := newCfg.Provision(newCaddyContext(t)); err != nil {
		t.Fatal(err)
	}
	if newCfg.be != oldCfg.be {
		t.Fatal("reloaded config got a different backend for the same store")
	}
	if err := newCfg.Start(); err != nil {
		t.Fatalf("start of the new config while the old one runs: %v", err)
	}
	be := oldCfg.be
	if err := oldCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if be.store.Opened() == nil {
		t.Fatal("store closed while the new config still uses it")
	}
	if err := newCfg.Manager().Store().Ping(context.Background()); err != nil {
		t.Fatalf("store unusable after old config cleanup: %v", err)
	}
	if err := newCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if be.store.Opened() != nil {
		t.Fatal("store still open after the last config was cleaned up")
	}
	// The file lock is released: another handle can open it.
	st, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("bolt file still locked after cleanup: %v", err)
	}
	st.Close()
}

// TestStartFailsOnLockedStore: a store that cannot be opened fails the
// config load, with a message naming the store (REL-01).
func TestStartFailsOnLockedStoreREL01(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	holder, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	a := &App{Store: &StoreConfig{Backend: "bolt", Path: path, OpenTimeout: caddy.Duration(100 * time.Millisecond)}}
	provisionApp(t, a)
	err = a.Start()
	if err == nil {
		t.Fatal("start succeeded on a locked bolt file")
	}
	if !strings.Contains(err.Error(), path) || !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Fatalf("error %q does not name the store or is not ErrUnavailable", err)
	}
}

// TestMasterKeyFile: without a configured key, one is generated beside the
// bolt file with mode 0600 and reused by the next start (SEC-16).
func TestMasterKeyFileSEC16(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sessions.db")
	k1, err := loadOrCreateKeyFile(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := loadOrCreateKeyFile(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) || len(k1) != caddyauth.MasterKeySize {
		t.Fatal("master key not reused or of the wrong size")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := os.WriteFile(path+".bad", []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKeyFile(path + ".bad"); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}

func TestDecodeMasterKey(t *testing.T) {
	good := base64StdEncode(make([]byte, 32))
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.TrimRight(good, "="), true},
		{"", false},
		{"not base64!", false},
		{base64StdEncode(make([]byte, 16)), false},
	} {
		if _, err := decodeMasterKey(tt.in); (err == nil) != tt.ok {
			t.Errorf("decodeMasterKey(%q) error %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	a := &App{Store: &StoreConfig{Backend: "memory"}, MasterKey: "{env.SG_TEST_NO_SUCH_VAR}", Hash: cheapHash}
	if err := a.Provision(newCaddyContext(t)); err == nil || !strings.Contains(err.Error(), "master_key") {
		t.Fatalf("empty master key placeholder accepted: %v", err)
	}
	a.Cleanup()
}

// TestBadUserHash: a static user with a broken hash fails provisioning with
// a message naming the user.
func TestBadUserHash(t *testing.T) {
	a := &App{Store: &StoreConfig{Backend: "memory"}, Hash: cheapHash,
		Users: []UserConfig{{ID: 7, Email: "x@example.com", PasswordHash: "$2a$10$bcrypt"}}}
	err := a.Provision(newCaddyContext(t))
	a.Cleanup()
	if err == nil || !strings.Contains(err.Error(), "id 7") {
		t.Fatalf("got %v, want an error naming user id 7", err)
	}
}

// TestRegisterMetricsTwice: a second handler in one config, or a reload,
// registers the same collectors again without error (SEC-47).
func TestRegisterMetricsTwiceSEC47(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for i := 0; i < 3; i++ {
		if err := registerMetrics(reg); err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	if err := registerMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatalf("fresh registry: %v", err)
	}
	if err := registerMetrics(nil); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"caddy_sessiongate_requests_total", "caddy_sessiongate_logins_total",
		"caddy_sessiongate_replays_total", "caddy_sessiongate_sessions_created_total",
		"caddy_sessiongate_sessions_ended_total", "caddy_sessiongate_key_cache_requests_total"} {
		if !names[want] {
			t.Errorf("metric %s not gathered", want)
		}
	}
}

// TestSanitize: every incoming identity header variant is deleted (SEC-40,
// SEC-41) and a Connection or Trailer header naming one is refused (SEC-42).
func TestSanitizeSEC40SEC41SEC42(t *testing.T) {
	h := &Handler{prefix: normHeader("X-Auth-")}
	tests := []struct {
		name    string
		header  http.Header
		refused bool
	}{
		{"canonical", http.Header{"X-Auth-User-Id": {"1"}}, false},
		{"duplicates", http.Header{"X-Auth-User-Id": {"1", "2"}}, false},
		{"lower case key", http.Header{"x-auth-user-id": {"1"}}, false},
		{"underscore", http.Header{"X_auth_user_id": {"1"}}, false},
		{"other suffix", http.Header{"X-Auth-Role": {"admin"}}, false},
		{"connection names it", http.Header{"Connection": {"keep-alive, X-Auth-User-Id"}}, true},
		{"connection underscore", http.Header{"Connection": {"x_auth_user_id"}}, true},
		{"trailer names it", http.Header{"Trailer": {"X-Auth-User-Id"}}, true},
		{"harmless connection", http.Header{"Connection": {"keep-alive"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			r.Header = tt.header.Clone()
			r.Header.Set("X-Other", "kept")
			ref := h.sanitize(r)
			if (ref != nil) != tt.refused {
				t.Fatalf("refused=%v, want %v", ref != nil, tt.refused)
			}
			if ref != nil {
				if ref.Status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400", ref.Status)
				}
				return
			}
			for name := range r.Header {
				if strings.HasPrefix(normHeader(name), "x-auth-") {
					t.Fatalf("identity header %q survived", name)
				}
			}
			if r.Header.Get("X-Other") != "kept" {
				t.Fatal("an unrelated header was removed")
			}
		})
	}
}

// TestValidateReplayCacheSizeSEC23 (SEC-23): the replay table is allocated
// whole at start, so its size is bounded when the config loads instead of
// being capped silently.
func TestValidateReplayCacheSizeSEC23(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{0, true},
		{1, true},
		{caddyauth.MaxReplayCacheSize, true},
		{caddyauth.MaxReplayCacheSize + 1, false},
		{-1, false},
	} {
		err := (&App{ReplayCacheSize: tc.size}).Validate()
		if (err == nil) != tc.ok {
			t.Errorf("replay_cache_size %d: Validate = %v, want ok=%v", tc.size, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "replay_cache_size") {
			t.Errorf("replay_cache_size %d: error does not name the setting: %v", tc.size, err)
		}
	}
}
