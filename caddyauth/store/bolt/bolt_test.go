package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessions.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) caddyauth.Store {
		st, path := openTemp(t)
		t.Cleanup(func() {
			// Whatever the subtest did (including closing the store), the
			// file must reopen, pass bbolt's own check and have indexes
			// and counts that agree with the records.
			st.Close()
			re, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("reopen after subtest: %v", err)
			}
			defer re.Close()
			if err := re.Check(); err != nil {
				t.Errorf("Check after subtest: %v", err)
			}
			if err := consistency(re.db); err != nil {
				t.Errorf("indexes after subtest: %v", err)
			}
		})
		return st
	})
}

// consistency recomputes every index and count from the session and user
// records and compares them with what is stored, values included (the
// tokens and user_* buckets map to an owner).
func consistency(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx, needAll)
		if err != nil {
			return err
		}
		wantUser, wantDeadline := map[string]string{}, map[string]string{}
		wantTokens := map[string]string{}
		wantCounts := map[caddyauth.Dialect]uint64{}
		var errs []error
		err = b.sessions.ForEach(func(k, v []byte) error {
			sess, err := decodeSession(string(k), v)
			if err != nil {
				return err
			}
			wantUser[string(userKey(sess.UserID, sess.ID))] = ""
			wantDeadline[string(deadlineKey(sess))] = ""
			wantCounts[sess.Dialect]++
			for _, tk := range sess.Tokens {
				if owner, dup := wantTokens[tk.Digest]; dup {
					errs = append(errs, fmt.Errorf("token %.12s held by %q and %q", tk.Digest, owner, sess.ID))
				}
				wantTokens[tk.Digest] = sess.ID
			}
			return nil
		})
		if err != nil {
			return err
		}
		wantEmail, wantName, wantKey := map[string]string{}, map[string]string{}, map[string]string{}
		var maxID uint64
		err = b.users.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("users: key %x is not 8 bytes", k)
			}
			id := binary.BigEndian.Uint64(k)
			maxID = max(maxID, id)
			u, err := decodeUser(int64(id), v)
			if err != nil {
				return err
			}
			owner := string(k)
			add := func(name string, m map[string]string, key string) {
				if key == "" {
					return
				}
				if prev, dup := m[key]; dup {
					errs = append(errs, fmt.Errorf("%s %q held by users %x and %x", name, key, prev, owner))
				}
				m[key] = owner
			}
			add("email", wantEmail, strings.ToLower(u.Email))
			add("username", wantName, u.Username)
			for _, pk := range u.PublicKeys {
				add("key", wantKey, pk.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if seq := b.users.Sequence(); seq < maxID {
			errs = append(errs, fmt.Errorf("users: sequence %d below the largest id %d", seq, maxID))
		}
		compare := func(name string, bk *bbolt.Bucket, want map[string]string) {
			got := map[string]string{}
			bk.ForEach(func(k, v []byte) error { got[string(k)] = string(v); return nil })
			for k, wv := range want {
				if gv, ok := got[k]; !ok {
					errs = append(errs, fmt.Errorf("%s: missing entry %x", name, k))
				} else if gv != wv {
					errs = append(errs, fmt.Errorf("%s: entry %x points at %x, want %x", name, k, gv, wv))
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					errs = append(errs, fmt.Errorf("%s: extra entry %x", name, k))
				}
			}
		}
		compare("by_user", b.byUser, wantUser)
		compare("by_deadline", b.byDeadline, wantDeadline)
		compare("tokens", b.tokens, wantTokens)
		compare("user_email", b.userEmail, wantEmail)
		compare("user_name", b.userName, wantName)
		compare("user_key", b.userKey, wantKey)
		gotCounts := map[caddyauth.Dialect]uint64{}
		b.counts.ForEach(func(k, v []byte) error {
			gotCounts[caddyauth.Dialect(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
		if fmt.Sprint(gotCounts) != fmt.Sprint(wantCounts) {
			errs = append(errs, fmt.Errorf("counts = %v, records say %v", gotCounts, wantCounts))
		}
		return errors.Join(errs...)
	})
}

func TestPersistence(t *testing.T) {
	st, path := openTemp(t)
	ctx := t.Context()
	e := storetest.Epoch
	kept := []*caddyauth.Session{
		storetest.NewSession("p-amatino", 42, caddyauth.DialectAmatino, e),
		storetest.NewSession("p-sxt", 42, caddyauth.DialectSXT, e),
		storetest.NewSession("p-vid", 43, caddyauth.DialectVidentity, e),
	}
	gone := storetest.NewSession("p-gone", 42, caddyauth.DialectAmatino, e)
	for _, s := range append(slices.Clone(kept), gone) {
		if err := st.CreateSession(ctx, s.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	kept[0].LastSeen, kept[0].IdleDeadline = e.Add(time.Minute), e.Add(time.Hour)
	if err := st.TouchSession(ctx, kept[0].ID, kept[0].LastSeen, kept[0].IdleDeadline); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteSession(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	re, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer re.Close()
	for _, s := range kept {
		got, err := re.GetSession(ctx, s.ID)
		if err != nil {
			t.Fatalf("GetSession(%q) after reopen: %v", s.ID, err)
		}
		if d := storetest.Diff(s, got); d != "" {
			t.Errorf("GetSession(%q) after reopen: %s", s.ID, d)
		}
	}
	if _, err := re.GetSession(ctx, gone.ID); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("deleted session after reopen: %v, want ErrNotFound", err)
	}
	counts, err := re.CountSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[caddyauth.Dialect]int{caddyauth.DialectAmatino: 1, caddyauth.DialectSXT: 1, caddyauth.DialectVidentity: 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("CountSessions after reopen = %v, want %v", counts, want)
	}
	list, err := re.ListUserSessions(ctx, 42)
	if err != nil {
		t.Fatal(err)
	}
	if got := storetest.IDs(list); !slices.Equal(got, []string{"p-amatino", "p-sxt"}) {
		t.Errorf("ListUserSessions(42) after reopen = %q", got)
	}
	// The expiry index survived too: the touched session's new deadline.
	purged, err := re.PurgeExpired(ctx, e.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := storetest.IDs(purged); !slices.Equal(got, []string{"p-amatino", "p-sxt", "p-vid"}) {
		t.Errorf("PurgeExpired after reopen = %q", got)
	}
	if err := re.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestCheckAfterChurn(t *testing.T) {
	st, _ := openTemp(t)
	defer st.Close()
	ctx := t.Context()
	e := storetest.Epoch
	// Enough sessions (~20 KiB of records) to split pages, then free half
	// of them again, so Check walks branch pages and a populated freelist.
	// Kept small: every create is an fsync.
	const n, users = 200, 10
	for i := range n {
		s := storetest.NewSession(fmt.Sprintf("churn-%04d", i), int64(i%users), storetest.Dialects[i%4], e.Add(time.Duration(i)*time.Second))
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.DeleteUserSessions(ctx, 7); err != nil {
		t.Fatal(err)
	}
	// Session i's deadline is e+i s+IdleTimeout: this purges i < n/2.
	if _, err := st.PurgeExpired(ctx, e.Add(storetest.IdleTimeout+(n/2-1)*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := consistency(st.db); err != nil {
		t.Fatalf("indexes: %v", err)
	}
	counts, err := st.CountSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total, want := 0, 0
	for _, c := range counts {
		total += c
	}
	for i := n / 2; i < n; i++ {
		if i%users != 7 {
			want++
		}
	}
	if total != want {
		t.Errorf("%d sessions left, want %d", total, want)
	}
}

func TestOpenLockedFile(t *testing.T) {
	st, path := openTemp(t)
	defer st.Close()

	start := time.Now()
	second, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("second Open = %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "another running instance") {
		t.Errorf("error %q should name the path and say another instance holds it", msg)
	}
	if elapsed > 5*time.Second {
		t.Errorf("second Open took %s with a 200ms timeout", elapsed)
	}

	// Once the holder closes, the file opens again.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	third.Close()
}

func TestFileAndDirectoryModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "sessions.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Path() != path {
		t.Errorf("Path() = %q, want %q", st.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("directory %s mode = %o, want 700", d, perm)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open(\"\") succeeded")
	}

	// A parent that is a file cannot become a directory.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "sessions.db"), Options{}); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("Open under a file = %v, want ErrUnavailable", err)
	}

	// A file written by a future schema is refused, not misread.
	st, path := openTemp(t)
	if err := st.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("3"))
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if re, err := Open(path, Options{}); err == nil {
		re.Close()
		t.Error("Open of a schema-3 file succeeded")
	} else if !strings.Contains(err.Error(), "schema") {
		t.Errorf("Open of a schema-3 file: %v; want a schema error", err)
	}
	// And the failed Open released the lock.
	if re, err := Open(path, Options{Timeout: 200 * time.Millisecond}); err != nil && errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("lock held after a failed Open: %v", err)
	} else if err == nil {
		re.Close()
	}
}

func TestCorruptRecord(t *testing.T) {
	const id = "corrupt-session-id"
	valid := encodeSession(storetest.NewSession(id, 42, caddyauth.DialectAmatino, storetest.Epoch))
	stored := storetest.NewSession(id, 42, caddyauth.DialectAmatino, storetest.Epoch)
	// A token, so that SessionByToken reaches the record through the index.
	digest := storetest.Digest(id)
	stored.Tokens = []caddyauth.Token{{Digest: digest, Kind: caddyauth.TokenAccess, Expires: storetest.Epoch}}
	tests := []struct {
		name string
		rec  []byte
	}{
		{"one byte", []byte{recordVersion}},
		{"unknown version", append([]byte{9}, valid[1:]...)},
		{"truncated", valid[:len(valid)-3]},
		{"trailing bytes", append(slices.Clone(valid), 0)},
		{"length past end", []byte{recordVersion, 84, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad secret flag", []byte{recordVersion, 84, 0, 0, 7}},
		{"nanoseconds out of range", func() []byte {
			b := []byte{recordVersion, 84, 0, 0, 0}
			return binary.AppendUvarint(binary.AppendVarint(b, 0), uint64(time.Second))
		}()},
		{"json", []byte(`{"id":"corrupt-session-id","user_id":42}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := openTemp(t)
			defer st.Close()
			ctx := t.Context()
			if err := st.CreateSession(ctx, stored.Clone()); err != nil {
				t.Fatal(err)
			}
			if err := st.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucketSessions).Put([]byte(id), tc.rec)
			}); err != nil {
				t.Fatal(err)
			}
			calls := map[string]func() error{
				"GetSession":         func() error { _, err := st.GetSession(ctx, id); return err },
				"TouchSession":       func() error { return st.TouchSession(ctx, id, storetest.Epoch, storetest.Epoch) },
				"DeleteSession":      func() error { _, err := st.DeleteSession(ctx, id); return err },
				"ListUserSessions":   func() error { _, err := st.ListUserSessions(ctx, 42); return err },
				"DeleteUserSessions": func() error { _, err := st.DeleteUserSessions(ctx, 42); return err },
				"SessionByToken":     func() error { _, err := st.SessionByToken(ctx, digest); return err },
				"UpdateSession": func() error {
					_, err := st.UpdateSession(ctx, id, func(*caddyauth.Session) error { return nil })
					return err
				},
			}
			for name, call := range calls {
				err := call()
				// A record we cannot read must not look like a missing
				// session: that would turn into 401 and a lost login.
				if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrNotFound) {
					t.Errorf("%s on a corrupt record = %v, want ErrUnavailable", name, err)
				}
				if err != nil && strings.Contains(err.Error(), id) {
					t.Errorf("%s error names the session id: %v", name, err)
				}
			}
		})
	}
}

func TestDeadlinePrefixOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, -1<<63).Add(-time.Nanosecond),
		time.Unix(0, -1<<63),
		time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999999999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		storetest.Epoch,
		storetest.Epoch.Add(time.Nanosecond),
		time.Unix(0, 1<<63-1),
		time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := deadlinePrefix(times[i-1]), deadlinePrefix(times[i])
		if bytes.Compare(a, b) > 0 {
			t.Errorf("deadlinePrefix(%s) > deadlinePrefix(%s)", times[i-1], times[i])
		}
		// Within int64 nanoseconds the order is strict.
		if !times[i-1].Before(time.Unix(0, -1<<63)) && !times[i].After(time.Unix(0, 1<<63-1)) && bytes.Equal(a, b) {
			t.Errorf("deadlinePrefix(%s) == deadlinePrefix(%s)", times[i-1], times[i])
		}
	}
}

// FuzzDecodeSession checks that no record, however mangled, panics the
// decoder, and that valid records round-trip. Under plain `go test` it runs
// the seed corpus (including testdata/fuzz/FuzzDecodeSession: records with
// and without a tokens section).
func FuzzDecodeSession(f *testing.F) {
	rotated := storetest.NewTokenSession("c", 2, storetest.Epoch)
	rotated.Tokens[1].RotatedAt = storetest.Epoch.Add(time.Second)
	rotated.Tokens[1].Successor = []byte{}
	rotated.Tokens[0].Successor = []byte("sealed")
	for _, s := range []*caddyauth.Session{
		storetest.NewSession("a", 1, caddyauth.DialectAmatino, storetest.Epoch),
		storetest.NewSession("b", -1, caddyauth.DialectVidentity, time.Time{}),
		storetest.NewTokenSession("t", 3, storetest.Epoch),
		rotated,
	} {
		f.Add(encodeSession(s))
	}
	f.Add([]byte{})
	f.Add([]byte{recordVersion, 0xff})
	f.Add(append(encodeSession(storetest.NewSession("d", 4, caddyauth.DialectSXT, storetest.Epoch)), tokensTag, 0xff, 0x01))
	f.Fuzz(func(t *testing.T, rec []byte) {
		sess, err := decodeSession("id", rec)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decode error %v does not wrap errCorrupt", err)
			}
			return
		}
		again, err := decodeSession("id", encodeSession(sess))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d := storetest.Diff(sess, again); d != "" {
			t.Fatalf("round trip: %s", d)
		}
	})
}

func TestCanceledContext(t *testing.T) {
	st, _ := openTemp(t)
	defer st.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A caller that gave up gets "unavailable", never "not found": the
	// engine must not conclude the session is gone.
	_, err := st.GetSession(ctx, "x")
	if !errors.Is(err, caddyauth.ErrUnavailable) || !errors.Is(err, context.Canceled) || errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("GetSession with a canceled context = %v", err)
	}
	if err := st.CreateSession(ctx, storetest.NewSession("x", 1, caddyauth.DialectNative, storetest.Epoch)); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("CreateSession with a canceled context = %v", err)
	}
	if n, err := st.CountSessions(t.Context()); err != nil || len(n) != 0 {
		t.Errorf("a canceled create wrote something: %v, %v", n, err)
	}
}

func TestGets(t *testing.T) {
	st, _ := openTemp(t)
	defer st.Close()
	ctx := t.Context()
	if err := st.CreateSession(ctx, storetest.NewSession("g", 1, caddyauth.DialectNative, storetest.Epoch)); err != nil {
		t.Fatal(err)
	}
	st.GetSession(ctx, "g")
	st.GetSession(ctx, "missing")
	st.ListUserSessions(ctx, 1)
	if n := st.Gets(); n != 2 {
		t.Errorf("Gets() = %d, want 2", n)
	}
}

func TestRefusesInvalidSessions(t *testing.T) {
	st, _ := openTemp(t)
	defer st.Close()
	ctx := t.Context()
	for name, s := range map[string]*caddyauth.Session{
		"nil":        nil,
		"empty id":   storetest.NewSession("", 1, caddyauth.DialectNative, storetest.Epoch),
		"no dialect": storetest.NewSession("x", 1, "", storetest.Epoch),
		"huge id":    storetest.NewSession(strings.Repeat("x", maxIDLen+1), 1, caddyauth.DialectNative, storetest.Epoch),
	} {
		if err := st.CreateSession(ctx, s); err == nil {
			t.Errorf("CreateSession(%s) succeeded", name)
		}
	}
	if err := consistency(st.db); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkGetSession(b *testing.B) {
	st, _ := openTemp(b)
	defer st.Close()
	ctx := b.Context()
	const n = 1000
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%064x", i)
		if err := st.CreateSession(ctx, storetest.NewSession(ids[i], int64(i), caddyauth.DialectAmatino, storetest.Epoch)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := st.GetSession(ctx, ids[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCreateSession measures a durable create: each one is a commit
// with fsync, so it mostly measures the disk.
func BenchmarkCreateSession(b *testing.B) {
	st, _ := openTemp(b)
	defer st.Close()
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := storetest.NewSession(fmt.Sprintf("%064x", i), int64(i%1000), caddyauth.DialectAmatino, storetest.Epoch)
		if err := st.CreateSession(ctx, s); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestDamagedCountRecord: a count too large for any store (a file damaged by
// hand) is reported as unavailable rather than wrapped into a number.
func TestDamagedCountRecord(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
		ok    bool
	}{
		{"sane", binary.BigEndian.AppendUint64(nil, 7), true},
		{"huge", binary.BigEndian.AppendUint64(nil, 1<<40), false},
		{"negative bits", binary.BigEndian.AppendUint64(nil, ^uint64(0)), false},
		{"short", []byte{0, 7}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := openTemp(t)
			if err := st.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucketCounts).Put([]byte(caddyauth.DialectAmatino), tc.value)
			}); err != nil {
				t.Fatal(err)
			}
			counts, err := st.CountSessions(t.Context())
			switch {
			case tc.ok && (err != nil || counts[caddyauth.DialectAmatino] != 7):
				t.Errorf("CountSessions = %v, %v; want 7", counts, err)
			case !tc.ok && !errors.Is(err, caddyauth.ErrUnavailable):
				t.Errorf("CountSessions = %v, %v; want ErrUnavailable", counts, err)
			}
		})
	}
}

// TestBucketsOfOpensOnlyWhatIsNeeded (REL-01): a read opens only the buckets
// it names, and a missing one among them is "unavailable", never "not
// found"; one it does not name may be missing.
func TestBucketsOfOpensOnlyWhatIsNeeded(t *testing.T) {
	st, _ := openTemp(t)
	if err := st.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketTokens) }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		need bucketSet
		ok   bool
	}{
		{"sessions only", needSessions, true},
		{"sessions and tokens", needSessions | needTokens, false},
		{"all", needAll, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := st.db.View(func(tx *bbolt.Tx) error {
				b, err := bucketsOf(tx, tc.need)
				if err == nil && (b.sessions == nil) != (tc.need&needSessions == 0) {
					t.Errorf("sessions bucket opened = %v", b.sessions != nil)
				}
				if err == nil && b.users != nil && tc.need&needUsers == 0 {
					t.Error("users bucket opened though not needed")
				}
				return err
			})
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, caddyauth.ErrUnavailable)) {
				t.Errorf("bucketsOf = %v, want ok=%v or ErrUnavailable", err, tc.ok)
			}
		})
	}
	if _, err := st.GetSession(t.Context(), "1"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("GetSession without the tokens bucket = %v, want ErrNotFound", err)
	}
	if _, err := st.SessionByToken(t.Context(), "digest"); !errors.Is(err, caddyauth.ErrUnavailable) {
		t.Errorf("SessionByToken without the tokens bucket = %v, want ErrUnavailable", err)
	}
}
