package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// NewKey returns a public key derived from label (a 32-byte key and its
// PublicKeyID), registered at added.
func NewKey(label string, added time.Time) caddyauth.PublicKey {
	sum := sha256.Sum256([]byte("storetest key " + label))
	return caddyauth.PublicKey{ID: caddyauth.PublicKeyID(sum[:]), Key: sum[:], Added: added}
}

// NewUser returns a user with every field set, derived from name: email
// name@example.com, username name, one public key NewKey(name, now).
// id 0 asks the store to assign one.
func NewUser(id int64, name string, now time.Time) *caddyauth.User {
	return &caddyauth.User{
		ID:            id,
		Email:         name + "@example.com",
		Username:      name,
		AccountNumber: "acct-" + name,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$" + name,
		PublicKeys:    []caddyauth.PublicKey{NewKey(name, now)},
		Created:       now,
	}
}

// UserDiff returns "" when got equals want in every field, else a
// description of the differences. Times compare with Equal; nil and empty
// PublicKeys are the same. It never prints the password hash.
func UserDiff(want, got *caddyauth.User) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil:
		return "want nil user, got non-nil"
	case got == nil:
		return "want a user, got nil"
	}
	var d []string
	str := func(name, w, g string) {
		if w != g {
			d = append(d, fmt.Sprintf("%s: want %q, got %q", name, w, g))
		}
	}
	if want.ID != got.ID {
		d = append(d, fmt.Sprintf("ID: want %d, got %d", want.ID, got.ID))
	}
	str("Email", want.Email, got.Email)
	str("Username", want.Username, got.Username)
	str("AccountNumber", want.AccountNumber, got.AccountNumber)
	if want.PasswordHash != got.PasswordHash {
		d = append(d, fmt.Sprintf("PasswordHash: differs (want %d bytes, got %d bytes)", len(want.PasswordHash), len(got.PasswordHash)))
	}
	if want.Disabled != got.Disabled {
		d = append(d, fmt.Sprintf("Disabled: want %t, got %t", want.Disabled, got.Disabled))
	}
	if !want.Created.Equal(got.Created) {
		d = append(d, fmt.Sprintf("Created: want %s, got %s", want.Created.Format(time.RFC3339Nano), got.Created.Format(time.RFC3339Nano)))
	}
	if len(want.PublicKeys) != len(got.PublicKeys) {
		d = append(d, fmt.Sprintf("PublicKeys: want %d, got %d", len(want.PublicKeys), len(got.PublicKeys)))
	} else {
		for i, w := range want.PublicKeys {
			g := got.PublicKeys[i]
			str(fmt.Sprintf("PublicKeys[%d].ID", i), w.ID, g.ID)
			if !bytes.Equal(w.Key, g.Key) {
				d = append(d, fmt.Sprintf("PublicKeys[%d].Key: want %x, got %x", i, w.Key, g.Key))
			}
			if !w.Added.Equal(g.Added) {
				d = append(d, fmt.Sprintf("PublicKeys[%d].Added: want %s, got %s", i,
					w.Added.Format(time.RFC3339Nano), g.Added.Format(time.RFC3339Nano)))
			}
		}
	}
	return strings.Join(d, "; ")
}

// NonUTCUser returns the names of u's time fields whose location is not UTC.
func NonUTCUser(u *caddyauth.User) []string {
	var bad []string
	if u.Created.Location() != time.UTC {
		bad = append(bad, "Created")
	}
	for i, k := range u.PublicKeys {
		if k.Added.Location() != time.UTC {
			bad = append(bad, fmt.Sprintf("PublicKeys[%d].Added", i))
		}
	}
	return bad
}

func checkUserEqual(t *testing.T, what string, want, got *caddyauth.User) {
	t.Helper()
	if d := UserDiff(want, got); d != "" {
		t.Errorf("%s: %s", what, d)
	}
	if got != nil {
		if bad := NonUTCUser(got); len(bad) > 0 {
			t.Errorf("%s: fields not in UTC: %v", what, bad)
		}
	}
}

// mustCreateUser stores a clone of u and returns what the store answered,
// after checking it is u with the id the store kept or assigned.
func mustCreateUser(t *testing.T, st caddyauth.Store, u *caddyauth.User) *caddyauth.User {
	t.Helper()
	got, err := st.CreateUser(t.Context(), u.Clone())
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Username, err)
	}
	if got == nil {
		t.Fatalf("CreateUser(%q) returned nil, nil", u.Username)
	}
	want := u.Clone()
	if want.ID == 0 {
		want.ID = got.ID
	}
	checkUserEqual(t, "CreateUser result", want, got)
	return got
}

// checkUserFound checks that u is found by id and by each of its email,
// username and every key id.
func checkUserFound(t *testing.T, st caddyauth.Store, what string, u *caddyauth.User) {
	t.Helper()
	ctx := t.Context()
	got, err := st.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("%s: UserByID(%d): %v", what, u.ID, err)
	}
	checkUserEqual(t, fmt.Sprintf("%s: UserByID(%d)", what, u.ID), u, got)
	type lookup struct {
		name, key string
		find      func(context.Context, string) (*caddyauth.User, error)
	}
	var lookups []lookup
	if u.Email != "" {
		lookups = append(lookups, lookup{"UserByEmail", u.Email, st.UserByEmail})
	}
	if u.Username != "" {
		lookups = append(lookups, lookup{"UserByUsername", u.Username, st.UserByUsername})
	}
	for _, pk := range u.PublicKeys {
		lookups = append(lookups, lookup{"UserByKeyID", pk.ID, st.UserByKeyID})
	}
	for _, l := range lookups {
		got, err := l.find(ctx, l.key)
		if err != nil {
			t.Errorf("%s: %s(%q): %v", what, l.name, l.key, err)
			continue
		}
		checkUserEqual(t, fmt.Sprintf("%s: %s(%q)", what, l.name, l.key), u, got)
	}
}

// checkUserNotFound checks that find answers ErrNotFound for key.
func checkUserNotFound(t *testing.T, what string, find func() (*caddyauth.User, error)) {
	t.Helper()
	got, err := find()
	if !errors.Is(err, caddyauth.ErrNotFound) {
		id := int64(-1)
		if got != nil {
			id = got.ID
		}
		t.Errorf("%s = user %d, %v; want ErrNotFound", what, id, err)
	}
}

// checkUserCount checks that ListUsers sees exactly n users.
func checkUserCount(t *testing.T, st caddyauth.Store, n int) {
	t.Helper()
	all, err := st.ListUsers(t.Context(), 0, n+10)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(all) != n {
		t.Errorf("ListUsers holds %d users, want %d", len(all), n)
	}
}

func testCreateUserIDs(t *testing.T, st caddyauth.Store) {
	steps := []struct {
		name string
		id   int64 // 0: assigned
	}{
		{"first assigned", 0},
		{"explicit", 10},
		{"assigned after explicit", 0},
		{"explicit below the others", 5},
		{"assigned again", 0},
		{"explicit far ahead", 1000},
		{"assigned after far ahead", 0},
		{"assigned once more", 0},
	}
	var maxSeen int64
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			u := NewUser(step.id, fmt.Sprintf("ids-%d", i), Epoch)
			got := mustCreateUser(t, st, u)
			switch {
			case step.id != 0 && got.ID != step.id:
				t.Errorf("explicit id %d stored as %d", step.id, got.ID)
			case step.id == 0 && got.ID <= maxSeen:
				t.Errorf("assigned id %d, want one greater than every id so far (%d)", got.ID, maxSeen)
			}
			if got.ID <= 0 {
				t.Errorf("id %d is not positive", got.ID)
			}
			maxSeen = max(maxSeen, got.ID)
			u.ID = got.ID
			checkUserFound(t, st, "after create", u)
		})
	}
	checkUserCount(t, st, len(steps))
}

func testUserRoundTrip(t *testing.T, st caddyauth.Store) {
	zone := time.FixedZone("UTC+5:45", 5*3600+45*60)
	now := time.Now()
	tests := []struct {
		name string
		u    func() *caddyauth.User
	}{
		{"every field", func() *caddyauth.User {
			u := NewUser(0, "rt-full", Epoch)
			u.Disabled = true
			u.PublicKeys = append(u.PublicKeys, NewKey("rt-full second", Epoch.Add(time.Hour+1)))
			return u
		}},
		{"non-UTC and monotonic times", func() *caddyauth.User {
			u := NewUser(0, "rt-zones", now.In(zone))
			u.PublicKeys[0].Added = now.Add(time.Minute).Local()
			return u
		}},
		{"no keys, zero created", func() *caddyauth.User {
			u := NewUser(0, "rt-bare", Epoch)
			u.PublicKeys, u.Created = nil, time.Time{}
			return u
		}},
		{"username only", func() *caddyauth.User {
			return &caddyauth.User{Username: "rt-username-only"}
		}},
		{"email only, mixed case kept", func() *caddyauth.User {
			return &caddyauth.User{Email: "Rt.Mixed@Example.COM", Created: Epoch}
		}},
		{"extreme times and unicode", func() *caddyauth.User {
			u := NewUser(1<<62, "rt-ünïcødé", time.Date(2500, time.January, 1, 0, 0, 0, 9, time.UTC))
			u.PublicKeys[0].Added = time.Date(1960, time.June, 1, 0, 0, 0, 11, time.UTC)
			return u
		}},
		{"many keys", func() *caddyauth.User {
			u := NewUser(0, "rt-many", Epoch)
			for i := range 20 {
				u.PublicKeys = append(u.PublicKeys, NewKey(fmt.Sprintf("rt-many %d", i), Epoch.Add(time.Duration(i))))
			}
			return u
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.u()
			got := mustCreateUser(t, st, u)
			u.ID = got.ID
			checkUserFound(t, st, "round trip", u)
		})
	}
}

func testUserReturnsCopies(t *testing.T, st caddyauth.Store) {
	ref := NewUser(0, "copy", Epoch)
	in := ref.Clone()
	got, err := st.CreateUser(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	ref.ID = got.ID
	// Neither Create's argument nor its result is the stored value.
	in.Email = "mutated@example.com"
	in.PublicKeys[0].Key[0] ^= 0xff
	got.Username = "mutated"
	got.PublicKeys[0].Key[1] ^= 0xff
	got.PublicKeys = append(got.PublicKeys, NewKey("appended", Epoch))
	checkUserFound(t, st, "after mutating Create's argument and result", ref)

	reads := []struct {
		name string
		get  func() (*caddyauth.User, error)
	}{
		{"UserByID", func() (*caddyauth.User, error) { return st.UserByID(t.Context(), ref.ID) }},
		{"UserByEmail", func() (*caddyauth.User, error) { return st.UserByEmail(t.Context(), ref.Email) }},
		{"UserByUsername", func() (*caddyauth.User, error) { return st.UserByUsername(t.Context(), ref.Username) }},
		{"UserByKeyID", func() (*caddyauth.User, error) { return st.UserByKeyID(t.Context(), ref.PublicKeys[0].ID) }},
		{"ListUsers", func() (*caddyauth.User, error) {
			all, err := st.ListUsers(t.Context(), 0, 10)
			if err != nil || len(all) != 1 {
				return nil, fmt.Errorf("ListUsers = %d users, %w", len(all), err)
			}
			return all[0], nil
		}},
	}
	for _, r := range reads {
		got, err := r.get()
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		got.PasswordHash = "mutated"
		got.Disabled = true
		got.PublicKeys[0].Key[0] ^= 0xff
		got.PublicKeys[0].ID = "mutated"
		checkUserFound(t, st, "after mutating the result of "+r.name, ref)
	}
	checkUserNotFound(t, "UserByKeyID(mutated)", func() (*caddyauth.User, error) { return st.UserByKeyID(t.Context(), "mutated") })
	checkUserNotFound(t, "UserByUsername(mutated)", func() (*caddyauth.User, error) { return st.UserByUsername(t.Context(), "mutated") })
}

func testUserDuplicates(t *testing.T, st caddyauth.Store) {
	first := mustCreateUser(t, st, NewUser(0, "taken", Epoch))
	second := NewUser(0, "second", Epoch)
	second.PublicKeys = append(second.PublicKeys, NewKey("second extra", Epoch))
	second = mustCreateUser(t, st, second)

	tests := []struct {
		name string
		u    func() *caddyauth.User
	}{
		{"id", func() *caddyauth.User { return NewUser(first.ID, "dup-id", Epoch) }},
		{"email", func() *caddyauth.User {
			u := NewUser(0, "dup-email", Epoch)
			u.Email = first.Email
			return u
		}},
		{"email in another case", func() *caddyauth.User {
			u := NewUser(0, "dup-email-case", Epoch)
			u.Email = strings.ToUpper(first.Email)
			return u
		}},
		{"username", func() *caddyauth.User {
			u := NewUser(0, "dup-username", Epoch)
			u.Username = first.Username
			return u
		}},
		{"public key of another user", func() *caddyauth.User {
			u := NewUser(0, "dup-key", Epoch)
			u.PublicKeys = append(u.PublicKeys, second.PublicKeys[1])
			return u
		}},
		{"one key twice", func() *caddyauth.User {
			u := NewUser(0, "dup-key-twice", Epoch)
			u.PublicKeys = append(u.PublicKeys, u.PublicKeys[0])
			return u
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.u()
			got, err := st.CreateUser(t.Context(), u.Clone())
			if !errors.Is(err, caddyauth.ErrExists) {
				t.Fatalf("CreateUser = %v, %v; want ErrExists", got != nil, err)
			}
			// Nothing of the refused user was written, and the users it
			// collided with are intact.
			if u.Username != first.Username {
				checkUserNotFound(t, "UserByUsername(refused)", func() (*caddyauth.User, error) { return st.UserByUsername(t.Context(), u.Username) })
			}
			if !strings.EqualFold(u.Email, first.Email) {
				checkUserNotFound(t, "UserByEmail(refused)", func() (*caddyauth.User, error) { return st.UserByEmail(t.Context(), u.Email) })
			}
			checkUserNotFound(t, "UserByKeyID(refused)", func() (*caddyauth.User, error) { return st.UserByKeyID(t.Context(), u.PublicKeys[0].ID) })
			checkUserFound(t, st, "first", first)
			checkUserFound(t, st, "second", second)
			checkUserCount(t, st, 2)
		})
	}
}

func testUserLookups(t *testing.T, st caddyauth.Store) {
	ctx := t.Context()
	alice := NewUser(0, "alice", Epoch)
	alice.Email = "Alice.Liddell@Example.com"
	alice = mustCreateUser(t, st, alice)
	// A user without email or username: empty keys must not find it.
	anon := mustCreateUser(t, st, &caddyauth.User{AccountNumber: "anon", PublicKeys: []caddyauth.PublicKey{NewKey("anon", Epoch)}})

	found := []struct {
		name string
		find func() (*caddyauth.User, error)
		want *caddyauth.User
	}{
		{"email as stored", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "Alice.Liddell@Example.com") }, alice},
		{"email in lower case", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "alice.liddell@example.com") }, alice},
		{"email in upper case", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "ALICE.LIDDELL@EXAMPLE.COM") }, alice},
		{"username", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, "alice") }, alice},
		{"key id", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, alice.PublicKeys[0].ID) }, alice},
		{"key id of a user without email", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, anon.PublicKeys[0].ID) }, anon},
		{"id", func() (*caddyauth.User, error) { return st.UserByID(ctx, anon.ID) }, anon},
	}
	for _, tc := range found {
		got, err := tc.find()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		checkUserEqual(t, tc.name, tc.want, got)
	}

	notFound := []struct {
		name string
		find func() (*caddyauth.User, error)
	}{
		{"empty email", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "") }},
		{"empty username", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, "") }},
		{"empty key id", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, "") }},
		{"unknown email", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "bob@example.com") }},
		{"email prefix", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "alice.liddell@example.co") }},
		{"username in another case", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, "Alice") }},
		{"username prefix", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, "alic") }},
		{"email as username", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, alice.Email) }},
		{"username as email", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "alice") }},
		{"unknown key id", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, NewKey("nobody", Epoch).ID) }},
		{"key id in another case", func() (*caddyauth.User, error) {
			return st.UserByKeyID(ctx, strings.ToUpper(alice.PublicKeys[0].ID))
		}},
		{"id 0", func() (*caddyauth.User, error) { return st.UserByID(ctx, 0) }},
		{"negative id", func() (*caddyauth.User, error) { return st.UserByID(ctx, -alice.ID) }},
		{"unknown id", func() (*caddyauth.User, error) { return st.UserByID(ctx, max(alice.ID, anon.ID)+1) }},
	}
	for _, tc := range notFound {
		checkUserNotFound(t, tc.name, tc.find)
	}
}

func testUpdateUser(t *testing.T, st caddyauth.Store) {
	ctx := t.Context()
	ref := mustCreateUser(t, st, NewUser(0, "upd-user", Epoch))
	other := NewUser(0, "upd-other", Epoch)
	other.PublicKeys = append(other.PublicKeys, NewKey("upd-other second", Epoch))
	other = mustCreateUser(t, st, other)

	checkUnchanged := func(t *testing.T, what string) {
		t.Helper()
		checkUserFound(t, st, what, ref)
		checkUserFound(t, st, what+" (other)", other)
		checkUserCount(t, st, 2)
	}

	refused := []struct {
		name  string
		fn    func(*caddyauth.User) error
		check func(t *testing.T, err error)
	}{
		{"fn error is returned unwrapped", func(u *caddyauth.User) error {
			u.Email = "fn-error@example.com"
			u.Username = "fn-error"
			u.PublicKeys[0].Key[0] ^= 0xff
			u.PublicKeys = append(u.PublicKeys, NewKey("fn-error", Epoch))
			return errSentinel
		}, func(t *testing.T, err error) {
			if err != errSentinel { //nolint:errorlint // the contract is "unwrapped"
				t.Errorf("UpdateUser = %v, want the sentinel itself", err)
			}
		}},
		{"ID change", func(u *caddyauth.User) error { u.ID = other.ID + 100; return nil }, nil},
		{"email of another user", func(u *caddyauth.User) error {
			u.Username = "fn-error"
			u.Email = strings.ToUpper(other.Email)
			return nil
		}, wantExists},
		{"username of another user", func(u *caddyauth.User) error {
			u.Email = "fn-error@example.com"
			u.Username = other.Username
			return nil
		}, wantExists},
		{"key of another user", func(u *caddyauth.User) error {
			u.Email = "fn-error@example.com"
			u.PublicKeys = append(u.PublicKeys, NewKey("fn-error", Epoch), other.PublicKeys[1])
			return nil
		}, wantExists},
		{"one key twice", func(u *caddyauth.User) error {
			u.PublicKeys = append(u.PublicKeys, u.PublicKeys[0])
			return nil
		}, wantExists},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.UpdateUser(ctx, ref.ID, tc.fn)
			if err == nil {
				t.Fatalf("UpdateUser succeeded (%s), want a refusal", UserDiff(ref, got))
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			checkUnchanged(t, "after a refused update")
			checkUserNotFound(t, "UserByEmail(fn-error)", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "fn-error@example.com") })
			checkUserNotFound(t, "UserByUsername(fn-error)", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, "fn-error") })
			checkUserNotFound(t, "UserByKeyID(fn-error)", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, NewKey("fn-error", Epoch).ID) })
			checkUserNotFound(t, "UserByID(renamed)", func() (*caddyauth.User, error) { return st.UserByID(ctx, other.ID+100) })
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		called := false
		got, err := st.UpdateUser(ctx, other.ID+200, func(*caddyauth.User) error { called = true; return nil })
		if !errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("UpdateUser(unknown) = %v, %v; want ErrNotFound", got != nil, err)
		}
		if called {
			t.Error("fn was called for an unknown user")
		}
		checkUnchanged(t, "after updating an unknown user")
	})

	t.Run("indexes follow", func(t *testing.T) {
		zone := time.FixedZone("UTC-7", -7*3600)
		old := ref.Clone()
		want := ref.Clone()
		want.Email = "New.Address@example.com"
		want.Username = "upd-user-renamed"
		want.AccountNumber = "acct-new"
		want.PasswordHash = "$argon2id$new"
		want.Disabled = true
		want.PublicKeys = []caddyauth.PublicKey{NewKey("upd-user new", Epoch.Add(time.Hour))}
		var seen *caddyauth.User
		got, err := st.UpdateUser(ctx, ref.ID, func(u *caddyauth.User) error {
			checkUserEqual(t, "fn's argument", ref, u)
			seen = u
			*u = *want.Clone()
			u.PublicKeys[0].Added = u.PublicKeys[0].Added.In(zone)
			u.Created = u.Created.In(zone)
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		checkUserEqual(t, "UpdateUser result", want, got)
		checkUserFound(t, st, "after update", want)
		checkUserFound(t, st, "other", other)
		checkUserNotFound(t, "UserByEmail(old)", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, old.Email) })
		checkUserNotFound(t, "UserByUsername(old)", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, old.Username) })
		checkUserNotFound(t, "UserByKeyID(old)", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, old.PublicKeys[0].ID) })

		// Neither fn's argument nor the result is the stored value.
		seen.PublicKeys[0].Key[0] ^= 0xff
		seen.Email = "seen@example.com"
		got.PublicKeys[0].Key[1] ^= 0xff
		got.Username = "got"
		checkUserFound(t, st, "after mutating fn's argument and the result", want)
		ref = want

		// The freed email, username and key can go to another user.
		freed, err := st.UpdateUser(ctx, other.ID, func(u *caddyauth.User) error {
			u.Email, u.Username = strings.ToUpper(old.Email), old.Username
			u.PublicKeys = append(u.PublicKeys, old.PublicKeys[0])
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateUser taking freed keys: %v", err)
		}
		other.Email, other.Username = strings.ToUpper(old.Email), old.Username
		other.PublicKeys = append(other.PublicKeys, old.PublicKeys[0])
		checkUserEqual(t, "UpdateUser result", other, freed)
		checkUserFound(t, st, "other after taking freed keys", other)
		checkUserNotFound(t, "UserByEmail(other's old)", func() (*caddyauth.User, error) { return st.UserByEmail(ctx, "upd-other@example.com") })
	})

	t.Run("email case change and cleared fields", func(t *testing.T) {
		// A user's own email in another case is not a collision; cleared
		// fields leave the indexes.
		oldName := ref.Username
		got, err := st.UpdateUser(ctx, ref.ID, func(u *caddyauth.User) error {
			u.Email = strings.ToUpper(u.Email)
			u.Username = ""
			u.PublicKeys = nil
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		want := ref.Clone()
		want.Email, want.Username, want.PublicKeys = strings.ToUpper(ref.Email), "", nil
		checkUserEqual(t, "UpdateUser result", want, got)
		checkUserFound(t, st, "after update", want)
		checkUserNotFound(t, "UserByUsername(cleared)", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, oldName) })
		checkUserNotFound(t, "UserByUsername(empty)", func() (*caddyauth.User, error) { return st.UserByUsername(ctx, "") })
		checkUserNotFound(t, "UserByKeyID(removed)", func() (*caddyauth.User, error) { return st.UserByKeyID(ctx, ref.PublicKeys[0].ID) })
		ref = want
		checkUnchanged(t, "at the end")
	})
}

func wantExists(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, caddyauth.ErrExists) {
		t.Errorf("got %v, want ErrExists", err)
	}
}

func testListUsers(t *testing.T, st caddyauth.Store) {
	ctx := t.Context()
	// Ids chosen so that byte order and number order would differ in
	// decimal (9 < 10 < 256 < 1<<40) and with gaps between them.
	ids := []int64{256, 3, 1 << 40, 9, 10, 1, 70000}
	for _, id := range ids {
		mustCreateUser(t, st, NewUser(id, fmt.Sprintf("list-%d", id), Epoch))
	}
	sorted := slices.Sorted(slices.Values(ids))
	idsOf := func(us []*caddyauth.User) []int64 {
		out := make([]int64, len(us))
		for i, u := range us {
			out[i] = u.ID
		}
		return out
	}
	tests := []struct {
		name    string
		afterID int64
		limit   int
		want    []int64
	}{
		{"all", 0, 100, sorted},
		{"negative after", -5, 100, sorted},
		{"first page", 0, 3, sorted[:3]},
		{"second page", sorted[2], 3, sorted[3:6]},
		{"last page", sorted[5], 3, sorted[6:]},
		{"after a gap", 4, 2, []int64{9, 10}},
		{"after the last", 1 << 40, 10, nil},
		{"far after", 1<<63 - 1, 10, nil},
		{"limit 0", 0, 0, nil},
		{"limit 1", 9, 1, []int64{10}},
		{"exact limit", 0, len(ids), sorted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ListUsers(ctx, tc.afterID, tc.limit)
			if err != nil {
				t.Fatalf("ListUsers(%d, %d): %v", tc.afterID, tc.limit, err)
			}
			if g := idsOf(got); !slices.Equal(g, tc.want) {
				t.Errorf("ListUsers(%d, %d) = %v, want %v", tc.afterID, tc.limit, g, tc.want)
			}
			for _, u := range got {
				checkUserEqual(t, fmt.Sprintf("ListUsers user %d", u.ID), NewUser(u.ID, fmt.Sprintf("list-%d", u.ID), Epoch), u)
			}
		})
	}

	t.Run("paging visits every user once", func(t *testing.T) {
		var seen []int64
		after := int64(0)
		for range len(ids) + 1 {
			page, err := st.ListUsers(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			seen = append(seen, idsOf(page)...)
			after = page[len(page)-1].ID
		}
		if !slices.Equal(seen, sorted) {
			t.Errorf("paging saw %v, want %v", seen, sorted)
		}
	})

	t.Run("sessions are not users", func(t *testing.T) {
		// Users are not sessions: a store holding sessions only lists none.
		mustCreate(t, st, NewSession("list-session", 1, caddyauth.DialectNative, Epoch))
		got, err := st.ListUsers(ctx, 1<<40, 10)
		if err != nil || len(got) != 0 {
			t.Errorf("ListUsers past the last user = %v, %v; want empty", idsOf(got), err)
		}
	})
}

// testCreateUserConcurrent races user creation: of 20 goroutines creating
// users with one email (in varying case), exactly one succeeds; 20 creating
// distinct users all succeed with distinct ids. Run it with -race.
func testCreateUserConcurrent(t *testing.T, st caddyauth.Store) {
	const n = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		same  = make([]error, n)
		made  = make([]*caddyauth.User, n)
		errs  = make([]error, n)
	)
	for g := range n {
		wg.Go(func() {
			<-start
			u := NewUser(0, fmt.Sprintf("race-same-%d", g), Epoch)
			u.Email = "Race@Example.com"
			if g%2 == 1 {
				u.Email = strings.ToLower(u.Email)
			}
			_, same[g] = st.CreateUser(context.Background(), u)
		})
		wg.Go(func() {
			<-start
			made[g], errs[g] = st.CreateUser(context.Background(), NewUser(0, fmt.Sprintf("race-distinct-%d", g), Epoch))
		})
	}
	close(start)
	wg.Wait()

	wins := 0
	for g, err := range same {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, caddyauth.ErrExists):
			t.Errorf("CreateUser #%d with the shared email = %v, want nil or ErrExists", g, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d creates with one email succeeded, want exactly 1", wins, n)
	}
	ids := map[int64]bool{}
	for g := range n {
		if errs[g] != nil {
			t.Errorf("CreateUser race-distinct-%d: %v", g, errs[g])
			continue
		}
		if ids[made[g].ID] {
			t.Errorf("id %d assigned twice", made[g].ID)
		}
		ids[made[g].ID] = true
		want := NewUser(made[g].ID, fmt.Sprintf("race-distinct-%d", g), Epoch)
		checkUserFound(t, st, "after the race", want)
	}
	winner, err := st.UserByEmail(t.Context(), "race@example.com")
	if err != nil {
		t.Fatalf("UserByEmail after the race: %v", err)
	}
	if ids[winner.ID] {
		t.Errorf("the shared-email winner got id %d, also given to another user", winner.ID)
	}
	checkUserCount(t, st, n+1)
}
