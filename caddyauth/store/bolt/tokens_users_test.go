package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/storetest"
)

// TestPersistenceTokensAndUsers checks that sessions with tokens, users and
// every index behind them survive a close and reopen of the file.
func TestPersistenceTokensAndUsers(t *testing.T) {
	st, path := openTemp(t)
	ctx := t.Context()
	e := storetest.Epoch

	rotated := storetest.NewTokenSession("p-rotated", 42, e)
	rotated.Tokens[1].RotatedAt = e.Add(time.Minute)
	rotated.Tokens[1].Successor = []byte("sealed successor")
	rotated.Tokens = append(rotated.Tokens, caddyauth.Token{
		Digest: storetest.Digest("p-rotated/refresh2"), Kind: caddyauth.TokenRefresh, Expires: e.Add(time.Hour),
	})
	plain := storetest.NewTokenSession("p-plain", 43, e)
	gone := storetest.NewTokenSession("p-gone", 42, e)
	for _, s := range []*caddyauth.Session{rotated, plain, gone} {
		if err := st.CreateSession(ctx, s.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.DeleteSession(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	// An update that drops a token: the drop must persist as well.
	dropped := plain.Tokens[0].Digest
	plain.Tokens = plain.Tokens[1:]
	if _, err := st.UpdateSession(ctx, plain.ID, func(s *caddyauth.Session) error {
		s.Tokens = s.Tokens[1:]
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	explicit := storetest.NewUser(500, "p-explicit", e)
	assigned := storetest.NewUser(0, "p-assigned", e)
	assigned.PublicKeys = append(assigned.PublicKeys, storetest.NewKey("p-assigned 2", e.Add(time.Second)))
	users := []*caddyauth.User{explicit, assigned}
	for i, u := range users {
		got, err := st.CreateUser(ctx, u.Clone())
		if err != nil {
			t.Fatal(err)
		}
		users[i].ID = got.ID
	}
	explicit.Disabled = true
	explicit.Email = "Renamed@Example.com"
	if _, err := st.UpdateUser(ctx, explicit.ID, func(u *caddyauth.User) error {
		u.Disabled, u.Email = true, "Renamed@Example.com"
		return nil
	}); err != nil {
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
	for _, s := range []*caddyauth.Session{rotated, plain} {
		got, err := re.GetSession(ctx, s.ID)
		if err != nil {
			t.Fatalf("GetSession(%q) after reopen: %v", s.ID, err)
		}
		if d := storetest.Diff(s, got); d != "" {
			t.Errorf("GetSession(%q) after reopen: %s", s.ID, d)
		}
		for _, tk := range s.Tokens {
			got, err := re.SessionByToken(ctx, tk.Digest)
			if err != nil || got.ID != s.ID {
				t.Errorf("SessionByToken(%s of %s) after reopen = %v, %v", tk.Kind, s.ID, got != nil, err)
			}
		}
	}
	for _, d := range append([]string{dropped}, storetest.Digest("p-gone/access"), storetest.Digest("p-gone/refresh")) {
		if _, err := re.SessionByToken(ctx, d); !errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("SessionByToken(removed %.12s) after reopen = %v, want ErrNotFound", d, err)
		}
	}
	for _, u := range users {
		for name, find := range map[string]func() (*caddyauth.User, error){
			"UserByID":       func() (*caddyauth.User, error) { return re.UserByID(ctx, u.ID) },
			"UserByEmail":    func() (*caddyauth.User, error) { return re.UserByEmail(ctx, strings.ToLower(u.Email)) },
			"UserByUsername": func() (*caddyauth.User, error) { return re.UserByUsername(ctx, u.Username) },
			"UserByKeyID":    func() (*caddyauth.User, error) { return re.UserByKeyID(ctx, u.PublicKeys[len(u.PublicKeys)-1].ID) },
		} {
			got, err := find()
			if err != nil {
				t.Errorf("%s(%d) after reopen: %v", name, u.ID, err)
				continue
			}
			if d := storetest.UserDiff(u, got); d != "" {
				t.Errorf("%s(%d) after reopen: %s", name, u.ID, d)
			}
		}
	}
	if _, err := re.UserByEmail(ctx, "p-explicit@example.com"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("old email after reopen = %v, want ErrNotFound", err)
	}
	list, err := re.ListUsers(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID >= list[1].ID {
		t.Errorf("ListUsers after reopen = %d users, want 2 in id order", len(list))
	}
	// The id sequence survived: the next assigned id is past both.
	next, err := re.CreateUser(ctx, storetest.NewUser(0, "p-next", e))
	if err != nil {
		t.Fatal(err)
	}
	if next.ID <= max(explicit.ID, assigned.ID) {
		t.Errorf("id assigned after reopen = %d, want > %d", next.ID, max(explicit.ID, assigned.ID))
	}
	if err := re.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := consistency(re.db); err != nil {
		t.Errorf("indexes: %v", err)
	}
}

// oldRecord is a session record as the version before tokens wrote it,
// spelled out byte by byte from that version's format so that a change to
// encodeSession cannot silently change what the test feeds the decoder.
func oldRecord() []byte {
	rec := []byte{
		1,                                    // version
		0x54,                                 // varint UserID 42 (zigzag: 84)
		7, 'a', 'm', 'a', 't', 'i', 'n', 'o', // Dialect
		8, 'h', 'm', 'a', 'c', '_', 'k', 'e', 'y', // Kind
		1, 3, 0xde, 0xad, 0xbe, // Secret present, 3 bytes
	}
	// Created, LastSeen, IdleDeadline, AbsoluteDeadline: zigzag varint
	// seconds, uvarint nanoseconds.
	for _, tm := range []struct{ sec, nsec int64 }{{1000, 1}, {1001, 2}, {0, 0}, {-5, 999999999}} {
		rec = binary.AppendVarint(rec, tm.sec)
		rec = binary.AppendUvarint(rec, uint64(tm.nsec))
	}
	return rec
}

func oldRecordSession(id string) *caddyauth.Session {
	return &caddyauth.Session{
		ID: id, UserID: 42, Dialect: caddyauth.DialectAmatino, Kind: caddyauth.KindHMACKey,
		Secret:           []byte{0xde, 0xad, 0xbe},
		Created:          time.Unix(1000, 1).UTC(),
		LastSeen:         time.Unix(1001, 2).UTC(),
		IdleDeadline:     time.Unix(0, 0).UTC(),
		AbsoluteDeadline: time.Unix(-5, 999999999).UTC(),
	}
}

func TestOldFormatRecord(t *testing.T) {
	want := oldRecordSession("old")
	got, err := decodeSession("old", oldRecord())
	if err != nil {
		t.Fatalf("decode old record: %v", err)
	}
	if d := storetest.Diff(want, got); d != "" {
		t.Errorf("old record: %s", d)
	}
	if got.Tokens != nil {
		t.Errorf("old record decoded with %d tokens", len(got.Tokens))
	}
	// A session without tokens is still written in the old format, so a
	// file that never saw a token stays byte-compatible.
	if enc := encodeSession(want); !bytes.Equal(enc, oldRecord()) {
		t.Errorf("session without tokens encodes as %x, want the old format %x", enc, oldRecord())
	}
}

// TestUpgradeSchema1File builds a file as the previous version left it
// (schema 1, no token or user buckets, an old record) and checks that Open
// upgrades it in place and everything works on it afterwards.
func TestUpgradeSchema1File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	const id = "old-session"
	old := oldRecordSession(id)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		put := func(bucket, k, v []byte) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return bk.Put(k, v)
		}
		return errors.Join(
			put(bucketSessions, []byte(id), oldRecord()),
			put(bucketByUser, userKey(42, id), []byte{}),
			put(bucketByDeadline, deadlineKey(old), []byte{}),
			put(bucketCounts, []byte(caddyauth.DialectAmatino), binary.BigEndian.AppendUint64(nil, 1)),
			put(bucketMeta, keySchema, []byte("1")),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema-1 file: %v", err)
	}
	ctx := t.Context()
	got, err := st.GetSession(ctx, id)
	if err != nil {
		t.Fatalf("GetSession of an old record: %v", err)
	}
	if d := storetest.Diff(old, got); d != "" {
		t.Errorf("old record after upgrade: %s", d)
	}
	err = st.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); string(v) != schemaVersion {
			t.Errorf("schema after upgrade = %q, want %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The old session takes tokens, and users can be added.
	digest := storetest.Digest("old-session/refresh")
	if _, err := st.UpdateSession(ctx, id, func(s *caddyauth.Session) error {
		s.Tokens = []caddyauth.Token{{Digest: digest, Kind: caddyauth.TokenRefresh, Expires: storetest.Epoch}}
		return nil
	}); err != nil {
		t.Fatalf("UpdateSession on an upgraded file: %v", err)
	}
	u, err := st.CreateUser(ctx, storetest.NewUser(0, "upgraded", storetest.Epoch))
	if err != nil {
		t.Fatalf("CreateUser on an upgraded file: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	re, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen of an upgraded file: %v", err)
	}
	defer re.Close()
	if got, err := re.SessionByToken(ctx, digest); err != nil || got.ID != id {
		t.Errorf("SessionByToken after upgrade and reopen = %v, %v", got != nil, err)
	}
	if got, err := re.UserByUsername(ctx, "upgraded"); err != nil || got.ID != u.ID {
		t.Errorf("UserByUsername after upgrade and reopen = %v, %v", got != nil, err)
	}
	counts, err := re.CountSessions(ctx)
	if err != nil || counts[caddyauth.DialectAmatino] != 1 {
		t.Errorf("CountSessions after upgrade = %v, %v", counts, err)
	}
	if err := re.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := consistency(re.db); err != nil {
		t.Errorf("indexes: %v", err)
	}
}

func TestCorruptTokenSection(t *testing.T) {
	base := encodeSession(storetest.NewSession("x", 42, caddyauth.DialectSXT, storetest.Epoch))
	valid := encodeSession(storetest.NewTokenSession("x", 42, storetest.Epoch))
	tests := []struct {
		name string
		rec  []byte
	}{
		{"bad tag", append(slices.Clone(base), 'X', 1)},
		{"tag without count", append(slices.Clone(base), tokensTag)},
		{"zero count", append(slices.Clone(base), tokensTag, 0)},
		{"count past the record", append(slices.Clone(base), tokensTag, 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"truncated token", valid[:len(valid)-2]},
		{"trailing bytes after tokens", append(slices.Clone(valid), 0)},
		{"bad successor flag", func() []byte {
			b := append(slices.Clone(base), tokensTag, 1, 0, 0, 0, 0, 0, 0)
			return append(b, 9)
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeSession("x", tc.rec); !errors.Is(err, errCorrupt) {
				t.Errorf("decode = %v, want errCorrupt", err)
			}
		})
	}
}

func TestCorruptUserRecord(t *testing.T) {
	u := storetest.NewUser(7, "corrupt", storetest.Epoch)
	valid := encodeUser(u)
	tests := []struct {
		name string
		rec  []byte
	}{
		{"empty", []byte{}},
		{"unknown version", append([]byte{9}, valid[1:]...)},
		{"truncated", valid[:len(valid)-3]},
		{"trailing bytes", append(slices.Clone(valid), 0)},
		{"bad disabled flag", []byte{userRecordVersion, 0, 0, 0, 0, 2, 0, 0, 0}},
		{"key count past the record", []byte{userRecordVersion, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03}},
		{"json", []byte(`{"id":7,"email":"corrupt@example.com"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeUser(7, tc.rec); !errors.Is(err, errCorruptUser) {
				t.Fatalf("decodeUser = %v, want errCorruptUser", err)
			}
			st, _ := openTemp(t)
			defer st.Close()
			ctx := t.Context()
			if _, err := st.CreateUser(ctx, u.Clone()); err != nil {
				t.Fatal(err)
			}
			if err := st.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucketUsers).Put(userIDKey(u.ID), tc.rec)
			}); err != nil {
				t.Fatal(err)
			}
			calls := map[string]func() error{
				"UserByID":       func() error { _, err := st.UserByID(ctx, u.ID); return err },
				"UserByEmail":    func() error { _, err := st.UserByEmail(ctx, u.Email); return err },
				"UserByUsername": func() error { _, err := st.UserByUsername(ctx, u.Username); return err },
				"UserByKeyID":    func() error { _, err := st.UserByKeyID(ctx, u.PublicKeys[0].ID); return err },
				"UpdateUser": func() error {
					_, err := st.UpdateUser(ctx, u.ID, func(*caddyauth.User) error { return nil })
					return err
				},
				"ListUsers": func() error { _, err := st.ListUsers(ctx, 0, 10); return err },
			}
			for name, call := range calls {
				err := call()
				// An unreadable user is not a missing one: "not found"
				// would let a login fall through to another account.
				if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrNotFound) {
					t.Errorf("%s on a corrupt record = %v, want ErrUnavailable", name, err)
				}
				if err != nil && strings.Contains(err.Error(), u.PasswordHash) {
					t.Errorf("%s error shows the password hash: %v", name, err)
				}
			}
		})
	}
}

func TestRefusesInvalidTokensAndUsers(t *testing.T) {
	st, _ := openTemp(t)
	defer st.Close()
	ctx := t.Context()
	e := storetest.Epoch

	sessions := map[string]func(*caddyauth.Session){
		"empty digest":        func(s *caddyauth.Session) { s.Tokens[0].Digest = "" },
		"huge digest":         func(s *caddyauth.Session) { s.Tokens[0].Digest = strings.Repeat("d", maxIDLen+1) },
		"digest listed twice": func(s *caddyauth.Session) { s.Tokens[1].Digest = s.Tokens[0].Digest },
	}
	for name, mutate := range sessions {
		s := storetest.NewTokenSession("bad-"+strings.ReplaceAll(name, " ", "-"), 1, e)
		mutate(s)
		if err := st.CreateSession(ctx, s); err == nil {
			t.Errorf("CreateSession with %s succeeded", name)
		}
	}
	ok := storetest.NewTokenSession("ok", 1, e)
	if err := st.CreateSession(ctx, ok.Clone()); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range sessions {
		if _, err := st.UpdateSession(ctx, ok.ID, func(s *caddyauth.Session) error { mutate(s); return nil }); err == nil {
			t.Errorf("UpdateSession to %s succeeded", name)
		}
	}
	if _, err := st.UpdateSession(ctx, ok.ID, nil); err == nil {
		t.Error("UpdateSession with a nil fn succeeded")
	}

	users := map[string]*caddyauth.User{
		"nil":          nil,
		"negative id":  storetest.NewUser(-1, "neg", e),
		"empty key id": func() *caddyauth.User { u := storetest.NewUser(0, "nokey", e); u.PublicKeys[0].ID = ""; return u }(),
		"huge email": func() *caddyauth.User {
			u := storetest.NewUser(0, "huge", e)
			u.Email = strings.Repeat("e", maxIDLen+1)
			return u
		}(),
	}
	for name, u := range users {
		if _, err := st.CreateUser(ctx, u); err == nil {
			t.Errorf("CreateUser(%s) succeeded", name)
		}
	}
	good, err := st.CreateUser(ctx, storetest.NewUser(0, "good", e))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateUser(ctx, good.ID, func(u *caddyauth.User) error { u.PublicKeys[0].ID = ""; return nil }); err == nil {
		t.Error("UpdateUser to an empty key id succeeded")
	}
	if _, err := st.UpdateUser(ctx, good.ID, nil); err == nil {
		t.Error("UpdateUser with a nil fn succeeded")
	}
	if got, err := st.SessionByToken(ctx, ok.Tokens[0].Digest); err != nil || storetest.Diff(ok, got) != "" {
		t.Errorf("the valid session after refused writes = %v, %v", got != nil, err)
	}
	if got, err := st.UserByID(ctx, good.ID); err != nil || storetest.UserDiff(storetest.NewUser(good.ID, "good", e), got) != "" {
		t.Errorf("the valid user after refused writes = %v, %v", got != nil, err)
	}
	if err := consistency(st.db); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeUser checks that no user record, however mangled, panics the
// decoder, that every error wraps errCorruptUser, and that valid records
// round-trip. Under plain `go test` it runs the seed corpus (including
// testdata/fuzz/FuzzDecodeUser).
func FuzzDecodeUser(f *testing.F) {
	e := storetest.Epoch
	full := storetest.NewUser(1, "fuzz", e)
	full.Disabled = true
	full.PublicKeys = append(full.PublicKeys, storetest.NewKey("fuzz 2", time.Time{}))
	for _, u := range []*caddyauth.User{
		full,
		{ID: 2},
		{ID: 3, Username: "only", Created: time.Date(2500, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		f.Add(encodeUser(u))
	}
	f.Add([]byte{})
	f.Add([]byte{userRecordVersion, 0xff})
	f.Fuzz(func(t *testing.T, rec []byte) {
		u, err := decodeUser(9, rec)
		if err != nil {
			if !errors.Is(err, errCorruptUser) {
				t.Fatalf("decode error %v does not wrap errCorruptUser", err)
			}
			return
		}
		again, err := decodeUser(9, encodeUser(u))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d := storetest.UserDiff(u, again); d != "" {
			t.Fatalf("round trip: %s", d)
		}
	})
}
