package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/bolt"
)

// manySessions is the preloaded bolt file of sessions_1m: n live amatino
// sessions of the bench user, written through the store's public API and
// sealed under the master key Caddy is given (master_key placeholder), so
// Caddy reads them exactly as sessions it created itself.
//
// The generator must know every session's api key without keeping a million
// of them: session i has the id base+i (19 decimal digits, like the 63-bit
// random ids of real logins) and the key derived from a per-run seed and i,
// in the format of caddyauth.NewAmatinoKey.
type manySessions struct {
	n    int
	base int64
	seed []byte
	// order is a random permutation of the n sessions: the warm-up visits
	// order[0:fill] once each (so the key cache ends full, with distinct
	// entries), the measurement draws uniformly from order[0:active], the
	// configuration's working set.
	order []int32
	file  string // the preloaded file; copied for every Caddy
	dir   string // its directory, removed by close
	took  time.Duration
	size  int64
}

// manyBase makes every id 19 digits, below 2^63 like real session numbers.
const manyBase = int64(1_000_000_000_000_000_000)

// sessionLifetime of the preloaded sessions: amatino's default (24 h), far
// longer than any run.
const manyLifetime = 24 * time.Hour

// preloadSessions creates n sessions in a new bolt file. Each CreateSession
// is one fsynced transaction (the store's durability contract, REL-06, has no
// batch API), so the file is built on tmpfs (/dev/shm) when there is one,
// where fsync costs nothing, and copied next to each Caddy. Sequential ids
// append to the B+tree (same depth for lookups as random ids).
func preloadSessions(n int, masterKey []byte) (*manySessions, error) {
	if n < 1 || n > 100_000_000 {
		return nil, fmt.Errorf("sessions_1m: bad size: %d sessions", n)
	}
	parent := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "sessiongate-bench-1m-")
	if err != nil {
		return nil, err
	}
	m := &manySessions{n: n, base: manyBase, seed: caddyauth.NewMasterKey(),
		file: filepath.Join(dir, "sessions.db"), dir: dir}
	perm := rand.Perm(n)
	m.order = make([]int32, n)
	for i, v := range perm {
		m.order[i] = int32(v)
	}

	sealer, err := caddyauth.NewSealer(masterKey)
	if err != nil {
		m.close()
		return nil, err
	}
	st, err := bolt.Open(m.file, bolt.Options{})
	if err != nil {
		m.close()
		return nil, err
	}
	start := time.Now()
	now := start.UTC()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id := m.id(i)
		// What Manager.StartSession stores for an amatino login.
		s := &caddyauth.Session{ID: id, UserID: benchUserID, Dialect: caddyauth.DialectAmatino,
			Kind: caddyauth.KindHMACKey, Secret: sealer.Seal(id, m.key(i)), Created: now, LastSeen: now,
			AbsoluteDeadline: now.Add(manyLifetime)}
		if err := st.CreateSession(ctx, s); err != nil {
			st.Close()
			m.close()
			return nil, fmt.Errorf("sessions_1m: preload session %d: %w", i, err)
		}
		if (i+1)%200_000 == 0 {
			fmt.Fprintf(os.Stderr, "bench: sessions_1m: %d sessions preloaded (%s)\n", i+1, time.Since(start).Round(time.Second))
		}
	}
	if err := st.Close(); err != nil {
		m.close()
		return nil, err
	}
	m.took = time.Since(start)
	if fi, err := os.Stat(m.file); err == nil {
		m.size = fi.Size()
	}
	return m, nil
}

// id is session i's X-Session-ID.
func (m *manySessions) id(i int) string { return strconv.FormatInt(m.base+int64(i), 10) }

// key is session i's api key: HMAC-SHA256(seed, i) in the format of
// caddyauth.NewAmatinoKey (URL-safe base64 of 32 bytes, its '=' made 'A').
func (m *manySessions) key(i int) []byte {
	mac := hmac.New(sha256.New, m.seed)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	mac.Write(b[:])
	return []byte(strings.Replace(base64.URLEncoding.EncodeToString(mac.Sum(nil)), "=", "A", 1))
}

// copyTo copies the preloaded file to path and syncs it, so no write-back of
// hundreds of MiB runs during the measurement.
func (m *manySessions) copyTo(path string) error {
	src, err := os.Open(m.file)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy preloaded sessions: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return fmt.Errorf("copy preloaded sessions: %w", err)
	}
	return dst.Close()
}

func (m *manySessions) close() {
	if m != nil && m.dir != "" {
		os.RemoveAll(m.dir)
	}
}
