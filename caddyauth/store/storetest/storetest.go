// Package storetest is the conformance suite for caddyauth.Store. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) caddyauth.Store {
//			st := memory.New()
//			t.Cleanup(func() { st.Close() })
//			return st
//		})
//	}
//
// The suite checks the contract written on the interface, not an
// implementation: atomicity, copies, the errors the engine maps to answers
// (ErrNotFound is a 401, ErrUnavailable a 503, REL-01), revoke-all (SEC-13),
// expiry, the token index and atomic refresh rotation (SEC-19), and users
// with their unique indexes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Dialects lists every dialect, so count checks cover the ones a test did not
// use (a store must not report phantom sessions for them).
var Dialects = []caddyauth.Dialect{
	caddyauth.DialectAmatino,
	caddyauth.DialectSXT,
	caddyauth.DialectVidentity,
	caddyauth.DialectNative,
}

// Run runs the conformance suite. newStore must return a fresh, empty store
// for each subtest and register its own cleanup (closing it); the suite
// closes some stores itself, so that cleanup must tolerate a second Close.
func Run(t *testing.T, newStore func(t *testing.T) caddyauth.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, st caddyauth.Store)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateDuplicate", testCreateDuplicate},
		{"GetUnknown", testGetUnknown},
		{"ReturnsCopies", testReturnsCopies},
		{"Touch", testTouch},
		{"TouchUnknown", testTouchUnknown},
		{"Delete", testDelete},
		{"DeleteConcurrentOneWins", testDeleteConcurrentOneWins},
		{"DeleteUserSessions", testDeleteUserSessions},
		{"ListUserSessions", testListUserSessions},
		{"PurgeExpired", testPurgeExpired},
		{"PurgeAfterTouch", testPurgeAfterTouch},
		{"CountSessions", testCountSessions},
		{"Ping", testPing},
		{"Closed", testClosed},
		{"Concurrent", testConcurrent},
		{"TokensRoundTrip", testTokensRoundTrip},
		{"TokensReturnCopies", testTokensReturnCopies},
		{"CreateTokenCollision", testCreateTokenCollision},
		{"UpdateSession", testUpdateSession},
		{"RotationRace", testRotationRace},
		{"TokenIndexDropped", testTokenIndexDropped},
		{"CreateUserIDs", testCreateUserIDs},
		{"UserRoundTrip", testUserRoundTrip},
		{"UserReturnsCopies", testUserReturnsCopies},
		{"UserDuplicates", testUserDuplicates},
		{"UserLookups", testUserLookups},
		{"UpdateUser", testUpdateUser},
		{"ListUsers", testListUsers},
		{"CreateUserConcurrent", testCreateUserConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// mustCreate stores a clone of s, so the caller's value stays the reference
// the store's answers are compared against.
func mustCreate(t *testing.T, st caddyauth.Store, s *caddyauth.Session) {
	t.Helper()
	if err := st.CreateSession(t.Context(), s.Clone()); err != nil {
		t.Fatalf("CreateSession(%q): %v", s.ID, err)
	}
}

func mustGet(t *testing.T, st caddyauth.Store, id string) *caddyauth.Session {
	t.Helper()
	got, err := st.GetSession(t.Context(), id)
	if err != nil {
		t.Fatalf("GetSession(%q): %v", id, err)
	}
	if got == nil {
		t.Fatalf("GetSession(%q) returned nil, nil", id)
	}
	return got
}

func checkEqual(t *testing.T, what string, want, got *caddyauth.Session) {
	t.Helper()
	if d := Diff(want, got); d != "" {
		t.Errorf("%s: %s", what, d)
	}
	if got != nil {
		if bad := NonUTC(got); len(bad) > 0 {
			t.Errorf("%s: fields not in UTC: %v", what, bad)
		}
	}
}

func checkNotFound(t *testing.T, st caddyauth.Store, id string) {
	t.Helper()
	got, err := st.GetSession(t.Context(), id)
	if !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("GetSession(%q) = %v, %v; want ErrNotFound", id, got != nil, err)
	}
}

// checkSet checks that got holds exactly the sessions of want (by ID, any
// order) and that each equals its reference.
func checkSet(t *testing.T, what string, want []*caddyauth.Session, got []*caddyauth.Session) {
	t.Helper()
	if w, g := IDs(want), IDs(got); !slices.Equal(w, g) {
		t.Errorf("%s: ids = %q, want %q", what, g, w)
		return
	}
	byID := make(map[string]*caddyauth.Session, len(want))
	for _, s := range want {
		byID[s.ID] = s
	}
	for _, s := range got {
		checkEqual(t, what+" "+s.ID, byID[s.ID], s)
	}
}

// checkCounts compares CountSessions with want, a missing dialect meaning 0
// on both sides: whether a store reports zero counts is its own business.
func checkCounts(t *testing.T, st caddyauth.Store, want map[caddyauth.Dialect]int) {
	t.Helper()
	got, err := st.CountSessions(t.Context())
	if err != nil {
		t.Fatalf("CountSessions: %v", err)
	}
	keys := slices.Collect(maps.Keys(got))
	keys = append(keys, slices.Collect(maps.Keys(want))...)
	keys = append(keys, Dialects...)
	for _, d := range keys {
		if got[d] != want[d] {
			t.Errorf("CountSessions()[%q] = %d, want %d (all: %v)", d, got[d], want[d], got)
		}
	}
}

func testCreateGetRoundTrip(t *testing.T, st caddyauth.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	now := time.Now() // carries a monotonic reading and the Local zone
	tests := []struct {
		name string
		s    func() *caddyauth.Session
	}{
		{"amatino with secret", func() *caddyauth.Session {
			return NewSession("1001", 42, caddyauth.DialectAmatino, Epoch)
		}},
		{"bearer nil secret", func() *caddyauth.Session {
			return NewSession("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 42, caddyauth.DialectVidentity, Epoch)
		}},
		{"session key nil secret", func() *caddyauth.Session {
			return NewSession("sxt-1", 7, caddyauth.DialectSXT, Epoch)
		}},
		{"empty non-nil secret", func() *caddyauth.Session {
			s := NewSession("empty-secret", 42, caddyauth.DialectNative, Epoch)
			s.Secret = []byte{}
			return s
		}},
		{"large secret", func() *caddyauth.Session {
			s := NewSession("large-secret", 42, caddyauth.DialectAmatino, Epoch)
			s.Secret = make([]byte, 4096)
			for i := range s.Secret {
				s.Secret[i] = byte(i * 7)
			}
			return s
		}},
		{"zero idle deadline", func() *caddyauth.Session {
			s := NewSession("no-idle", 42, caddyauth.DialectNative, Epoch)
			s.IdleDeadline = time.Time{}
			return s
		}},
		{"zero created and last seen", func() *caddyauth.Session {
			s := NewSession("zero-times", 42, caddyauth.DialectNative, Epoch)
			s.Created, s.LastSeen = time.Time{}, time.Time{}
			return s
		}},
		{"non-UTC zones and monotonic clock", func() *caddyauth.Session {
			s := NewSession("zones", 42, caddyauth.DialectAmatino, now)
			s.LastSeen = now.In(zone)
			s.IdleDeadline = now.Add(time.Minute).In(zone)
			s.AbsoluteDeadline = now.Add(time.Hour).Local()
			return s
		}},
		{"pre-1970 and beyond int64 nanoseconds", func() *caddyauth.Session {
			s := NewSession("extreme-times", 42, caddyauth.DialectNative, Epoch)
			s.Created = time.Date(1969, time.July, 20, 20, 17, 40, 999999999, time.UTC)
			s.LastSeen = time.Date(1901, time.January, 1, 0, 0, 0, 1, time.UTC)
			s.IdleDeadline = time.Date(2400, time.January, 1, 0, 0, 0, 7, time.UTC)
			s.AbsoluteDeadline = time.Date(2500, time.December, 31, 23, 59, 59, 999999999, time.UTC)
			return s
		}},
		{"max user id", func() *caddyauth.Session {
			return NewSession("max-user", 1<<63-1, caddyauth.DialectSXT, Epoch)
		}},
		{"id with NUL and high bytes", func() *caddyauth.Session {
			return NewSession("a\x00b\xff/../c", 42, caddyauth.DialectAmatino, Epoch)
		}},
		{"long id", func() *caddyauth.Session {
			return NewSession(strings.Repeat("x", 1000), 42, caddyauth.DialectVidentity, Epoch)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.s()
			mustCreate(t, st, want)
			checkEqual(t, "GetSession", want, mustGet(t, st, want.ID))
		})
	}
	t.Run("nil secret stays nil", func(t *testing.T) {
		if got := mustGet(t, st, "sxt-1"); got.Secret != nil {
			t.Errorf("nil Secret came back non-nil (%d bytes)", len(got.Secret))
		}
	})
}

func testCreateDuplicate(t *testing.T, st caddyauth.Store) {
	first := NewSession("dup", 42, caddyauth.DialectAmatino, Epoch)
	mustCreate(t, st, first)

	second := NewSession("dup", 43, caddyauth.DialectVidentity, Epoch.Add(time.Hour))
	err := st.CreateSession(t.Context(), second)
	if !errors.Is(err, caddyauth.ErrExists) {
		t.Fatalf("second CreateSession = %v, want ErrExists", err)
	}
	// The failed create must leave no trace in any index.
	checkEqual(t, "GetSession after duplicate", first, mustGet(t, st, "dup"))
	if got, err := st.ListUserSessions(t.Context(), 43); err != nil || len(got) != 0 {
		t.Errorf("ListUserSessions(43) = %q, %v; want empty", IDs(got), err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{caddyauth.DialectAmatino: 1})
	if got, err := st.PurgeExpired(t.Context(), Epoch.Add(IdleTimeout)); err != nil || len(got) != 1 {
		t.Errorf("PurgeExpired at the first session's deadline = %q, %v; want [dup]", IDs(got), err)
	}
}

func testGetUnknown(t *testing.T, st caddyauth.Store) {
	checkNotFound(t, st, "nope")
	mustCreate(t, st, NewSession("abc", 42, caddyauth.DialectNative, Epoch))
	// Neighbours of a stored key must not match it.
	for _, id := range []string{"ab", "abcd", "ABC", "abc\x00"} {
		checkNotFound(t, st, id)
	}
}

func testReturnsCopies(t *testing.T, st caddyauth.Store) {
	ref := NewSession("copy", 42, caddyauth.DialectAmatino, Epoch)

	in := ref.Clone()
	if err := st.CreateSession(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	// Mutating what was passed to Create must not reach the store.
	in.Secret[0] ^= 0xff
	in.UserID = 99
	in.LastSeen = in.LastSeen.Add(time.Hour)
	in.AbsoluteDeadline = in.AbsoluteDeadline.Add(time.Hour)
	checkEqual(t, "after mutating Create's argument", ref, mustGet(t, st, ref.ID))

	// Nor must mutating what Get returned.
	got := mustGet(t, st, ref.ID)
	got.Secret[0] ^= 0xff
	got.Secret = append(got.Secret, 1)
	got.Dialect = caddyauth.DialectNative
	got.IdleDeadline = time.Time{}
	checkEqual(t, "after mutating Get's result", ref, mustGet(t, st, ref.ID))

	// Two reads must not share Secret memory.
	a, b := mustGet(t, st, ref.ID), mustGet(t, st, ref.ID)
	a.Secret[1] ^= 0xff
	if b.Secret[1] != ref.Secret[1] {
		t.Error("two GetSession results share Secret memory")
	}

	list, err := st.ListUserSessions(t.Context(), 42)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUserSessions = %d sessions, %v", len(list), err)
	}
	list[0].Secret[0] ^= 0xff
	list[0].UserID = 7
	checkEqual(t, "after mutating List's result", ref, mustGet(t, st, ref.ID))
}

func testTouch(t *testing.T, st caddyauth.Store) {
	zone := time.FixedZone("UTC-8", -8*3600)
	ref := NewSession("touch", 42, caddyauth.DialectAmatino, Epoch)
	other := NewSession("untouched", 42, caddyauth.DialectAmatino, Epoch)
	mustCreate(t, st, ref)
	mustCreate(t, st, other)

	steps := []struct {
		name           string
		lastSeen, idle time.Time
	}{
		{"forward", Epoch.Add(10 * time.Minute), Epoch.Add(40 * time.Minute)},
		{"non-UTC input", Epoch.Add(20*time.Minute + 1).In(zone), Epoch.Add(50*time.Minute + 3).In(zone)},
		// The store does not clamp: capping the idle deadline is the engine's
		// job, and AbsoluteDeadline must stay what it was regardless.
		{"idle past absolute", Epoch.Add(time.Hour), Epoch.Add(48 * time.Hour)},
		{"idle cleared", Epoch.Add(2 * time.Hour), time.Time{}},
		{"idle restored", Epoch.Add(3 * time.Hour), Epoch.Add(3*time.Hour + IdleTimeout)},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if err := st.TouchSession(t.Context(), ref.ID, step.lastSeen, step.idle); err != nil {
				t.Fatalf("TouchSession: %v", err)
			}
			want := ref.Clone()
			want.LastSeen, want.IdleDeadline = step.lastSeen, step.idle
			checkEqual(t, "GetSession after touch", want, mustGet(t, st, ref.ID))
			list, err := st.ListUserSessions(t.Context(), 42)
			if err != nil {
				t.Fatal(err)
			}
			checkSet(t, "ListUserSessions after touch", []*caddyauth.Session{want, other}, list)
		})
	}
	checkEqual(t, "the other session", other, mustGet(t, st, other.ID))
}

func testTouchUnknown(t *testing.T, st caddyauth.Store) {
	err := st.TouchSession(t.Context(), "ghost", Epoch, Epoch.Add(time.Hour))
	if !errors.Is(err, caddyauth.ErrNotFound) {
		t.Fatalf("TouchSession(unknown) = %v, want ErrNotFound", err)
	}
	// A touch must never create a session.
	checkNotFound(t, st, "ghost")
	checkCounts(t, st, nil)

	mustCreate(t, st, NewSession("real", 42, caddyauth.DialectSXT, Epoch))
	if _, err := st.DeleteSession(t.Context(), "real"); err != nil {
		t.Fatal(err)
	}
	err = st.TouchSession(t.Context(), "real", Epoch, Epoch.Add(time.Hour))
	if !errors.Is(err, caddyauth.ErrNotFound) {
		t.Fatalf("TouchSession(deleted) = %v, want ErrNotFound", err)
	}
	checkNotFound(t, st, "real")
}

func testDelete(t *testing.T, st caddyauth.Store) {
	a := NewSession("del-a", 42, caddyauth.DialectAmatino, Epoch)
	b := NewSession("del-b", 42, caddyauth.DialectAmatino, Epoch)
	mustCreate(t, st, a)
	mustCreate(t, st, b)

	// Delete returns what is stored now, not what was created.
	lastSeen, idle := Epoch.Add(5*time.Minute), Epoch.Add(35*time.Minute)
	if err := st.TouchSession(t.Context(), a.ID, lastSeen, idle); err != nil {
		t.Fatal(err)
	}
	a.LastSeen, a.IdleDeadline = lastSeen, idle

	got, err := st.DeleteSession(t.Context(), a.ID)
	if err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	checkEqual(t, "DeleteSession result", a, got)
	checkNotFound(t, st, a.ID)
	if got, err := st.DeleteSession(t.Context(), a.ID); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("second DeleteSession = %v, %v; want ErrNotFound", got != nil, err)
	}
	if _, err := st.DeleteSession(t.Context(), "never-existed"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("DeleteSession(unknown) = %v, want ErrNotFound", err)
	}

	checkEqual(t, "surviving session", b, mustGet(t, st, b.ID))
	list, err := st.ListUserSessions(t.Context(), 42)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "ListUserSessions after delete", []*caddyauth.Session{b}, list)
	checkCounts(t, st, map[caddyauth.Dialect]int{caddyauth.DialectAmatino: 1})

	// The deleted session's expiry entry must be gone too: purging past
	// every deadline returns only the survivor.
	purged, err := st.PurgeExpired(t.Context(), Epoch.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "PurgeExpired after delete", []*caddyauth.Session{b}, purged)

	// The id can be reused once deleted.
	mustCreate(t, st, a)
	checkEqual(t, "recreated session", a, mustGet(t, st, a.ID))
}

func testDeleteConcurrentOneWins(t *testing.T, st caddyauth.Store) {
	const n = 50
	ref := NewSession("contested", 42, caddyauth.DialectAmatino, Epoch)
	mustCreate(t, st, ref)

	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]*caddyauth.Session, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = st.DeleteSession(context.Background(), ref.ID)
		})
	}
	close(start)
	wg.Wait()

	wins := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			wins++
			checkEqual(t, "winning DeleteSession", ref, results[i])
		case errors.Is(errs[i], caddyauth.ErrNotFound):
		default:
			t.Errorf("DeleteSession #%d: unexpected error %v", i, errs[i])
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent deletes succeeded, want exactly 1", wins, n)
	}
	checkNotFound(t, st, ref.ID)
	checkCounts(t, st, nil)
}

func testDeleteUserSessions(t *testing.T, st caddyauth.Store) {
	// SEC-13: revoke-all for user 42 leaves user 43 alone.
	mine := []*caddyauth.Session{
		NewSession("u42-a", 42, caddyauth.DialectAmatino, Epoch),
		NewSession("u42-b", 42, caddyauth.DialectVidentity, Epoch),
		NewSession("u42-c", 42, caddyauth.DialectSXT, Epoch),
	}
	theirs := NewSession("u43-a", 43, caddyauth.DialectAmatino, Epoch)
	for _, s := range mine {
		mustCreate(t, st, s)
	}
	mustCreate(t, st, theirs)

	got, err := st.DeleteUserSessions(t.Context(), 42)
	if err != nil {
		t.Fatalf("DeleteUserSessions(42): %v", err)
	}
	checkSet(t, "DeleteUserSessions(42)", mine, got)
	for _, s := range mine {
		checkNotFound(t, st, s.ID)
	}
	if list, err := st.ListUserSessions(t.Context(), 42); err != nil || len(list) != 0 {
		t.Errorf("ListUserSessions(42) after revoke-all = %q, %v; want empty", IDs(list), err)
	}
	checkEqual(t, "user 43's session", theirs, mustGet(t, st, theirs.ID))
	list, err := st.ListUserSessions(t.Context(), 43)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "ListUserSessions(43)", []*caddyauth.Session{theirs}, list)
	checkCounts(t, st, map[caddyauth.Dialect]int{caddyauth.DialectAmatino: 1})

	// Revoking again, or revoking a user without sessions, is not an error.
	for _, uid := range []int64{42, 44} {
		if got, err := st.DeleteUserSessions(t.Context(), uid); err != nil || len(got) != 0 {
			t.Errorf("DeleteUserSessions(%d) = %q, %v; want empty, nil", uid, IDs(got), err)
		}
	}

	// Expiry entries of the revoked sessions must be gone.
	purged, err := st.PurgeExpired(t.Context(), Epoch.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "PurgeExpired after revoke-all", []*caddyauth.Session{theirs}, purged)
}

func testListUserSessions(t *testing.T, st caddyauth.Store) {
	// User ids chosen to catch index keys that are not fixed-width or not
	// separated from the session id (1 vs 256, ids that prefix each other).
	byUser := map[int64][]*caddyauth.Session{
		1: {
			NewSession("a", 1, caddyauth.DialectAmatino, Epoch),
			NewSession("ab", 1, caddyauth.DialectVidentity, Epoch),
		},
		256: {
			NewSession("b", 256, caddyauth.DialectSXT, Epoch),
		},
		1 << 40: {
			NewSession("abc", 1<<40, caddyauth.DialectNative, Epoch),
			NewSession("\x00\x00\x00\x00\x00\x00\x01\x00", 1<<40, caddyauth.DialectNative, Epoch),
		},
		42: {
			NewSession("c1", 42, caddyauth.DialectAmatino, Epoch),
			NewSession("c2", 42, caddyauth.DialectAmatino, Epoch.Add(time.Second)),
			NewSession("c3", 42, caddyauth.DialectVidentity, Epoch.Add(2*time.Second)),
		},
	}
	for _, ss := range byUser {
		for _, s := range ss {
			mustCreate(t, st, s)
		}
	}
	for uid, want := range byUser {
		got, err := st.ListUserSessions(t.Context(), uid)
		if err != nil {
			t.Fatalf("ListUserSessions(%d): %v", uid, err)
		}
		checkSet(t, fmt.Sprintf("ListUserSessions(%d)", uid), want, got)
	}
	for _, uid := range []int64{0, 2, 255, 257, 43, 1<<40 + 1} {
		got, err := st.ListUserSessions(t.Context(), uid)
		if err != nil || len(got) != 0 {
			t.Errorf("ListUserSessions(%d) = %q, %v; want empty, nil", uid, IDs(got), err)
		}
	}
}

func testPurgeExpired(t *testing.T, st caddyauth.Store) {
	now := Epoch.Add(2 * time.Hour)
	mk := func(id string, idle, abs time.Time) *caddyauth.Session {
		s := NewSession(id, 42, caddyauth.DialectAmatino, Epoch)
		s.IdleDeadline, s.AbsoluteDeadline = idle, abs
		return s
	}
	var zero time.Time
	tests := []struct {
		s      *caddyauth.Session
		expire bool
	}{
		{mk("abs-before", zero, now.Add(-time.Nanosecond)), true},
		{mk("abs-at", zero, now), true},
		{mk("abs-after", zero, now.Add(time.Nanosecond)), false},
		{mk("idle-before", now.Add(-time.Minute), now.Add(22*time.Hour)), true},
		{mk("idle-at", now, now.Add(22*time.Hour)), true},
		{mk("idle-after", now.Add(time.Nanosecond), now.Add(22*time.Hour)), false},
		{mk("abs-before-idle", now.Add(time.Hour), now.Add(-time.Second)), true},
		{mk("pre-1970", zero, time.Date(1960, time.January, 1, 0, 0, 0, 0, time.UTC)), true},
		{mk("zero-absolute", zero, zero), true},
		{mk("far-future", zero, time.Date(2500, time.January, 1, 0, 0, 0, 0, time.UTC)), false},
		{mk("far-future-idle", now.Add(time.Minute), time.Date(2500, time.January, 1, 0, 0, 0, 0, time.UTC)), false},
	}
	var expired, kept []*caddyauth.Session
	for _, tc := range tests {
		mustCreate(t, st, tc.s)
		if tc.expire {
			expired = append(expired, tc.s)
		} else {
			kept = append(kept, tc.s)
		}
	}

	got, err := st.PurgeExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("PurgeExpired: %v", err)
	}
	checkSet(t, "PurgeExpired(now)", expired, got)
	for _, s := range expired {
		checkNotFound(t, st, s.ID)
	}
	for _, s := range kept {
		checkEqual(t, "kept session", s, mustGet(t, st, s.ID))
	}
	list, err := st.ListUserSessions(t.Context(), 42)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "ListUserSessions after purge", kept, list)
	checkCounts(t, st, map[caddyauth.Dialect]int{caddyauth.DialectAmatino: len(kept)})

	if got, err := st.PurgeExpired(t.Context(), now); err != nil || len(got) != 0 {
		t.Errorf("second PurgeExpired(now) = %q, %v; want empty", IDs(got), err)
	}

	// Past every deadline, including those beyond int64 nanoseconds.
	got, err = st.PurgeExpired(t.Context(), time.Date(2600, time.January, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "PurgeExpired(2600)", kept, got)
	checkCounts(t, st, nil)
}

func testPurgeAfterTouch(t *testing.T, st caddyauth.Store) {
	s := NewSession("touched", 42, caddyauth.DialectVidentity, Epoch)
	oldIdle := s.IdleDeadline
	mustCreate(t, st, s)

	newIdle := oldIdle.Add(time.Hour)
	if err := st.TouchSession(t.Context(), s.ID, Epoch.Add(time.Hour), newIdle); err != nil {
		t.Fatal(err)
	}
	s.LastSeen, s.IdleDeadline = Epoch.Add(time.Hour), newIdle

	// The expiry index must follow the touch: purging at the old idle
	// deadline would log out an active user.
	if got, err := st.PurgeExpired(t.Context(), oldIdle); err != nil || len(got) != 0 {
		t.Fatalf("PurgeExpired(old idle deadline) = %q, %v; want nothing", IDs(got), err)
	}
	checkEqual(t, "session after purge at old deadline", s, mustGet(t, st, s.ID))
	if got, err := st.PurgeExpired(t.Context(), newIdle.Add(-time.Nanosecond)); err != nil || len(got) != 0 {
		t.Fatalf("PurgeExpired(just before new deadline) = %q, %v; want nothing", IDs(got), err)
	}
	got, err := st.PurgeExpired(t.Context(), newIdle)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "PurgeExpired(new idle deadline)", []*caddyauth.Session{s}, got)

	// A touch that moves the idle deadline earlier is honoured as well.
	e := NewSession("shortened", 42, caddyauth.DialectVidentity, Epoch)
	mustCreate(t, st, e)
	early := Epoch.Add(time.Minute)
	if err := st.TouchSession(t.Context(), e.ID, Epoch, early); err != nil {
		t.Fatal(err)
	}
	e.IdleDeadline = early
	got, err = st.PurgeExpired(t.Context(), early)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, "PurgeExpired(shortened idle deadline)", []*caddyauth.Session{e}, got)
	checkCounts(t, st, nil)
}

func testCountSessions(t *testing.T, st caddyauth.Store) {
	checkCounts(t, st, nil)

	sessions := []*caddyauth.Session{
		NewSession("am-1", 1, caddyauth.DialectAmatino, Epoch),
		NewSession("am-2", 2, caddyauth.DialectAmatino, Epoch),
		NewSession("sxt-1", 1, caddyauth.DialectSXT, Epoch),
		NewSession("sxt-2", 2, caddyauth.DialectSXT, Epoch),
		NewSession("sxt-3", 3, caddyauth.DialectSXT, Epoch.Add(-AbsoluteTimeout)), // already expired
		NewSession("vid-1", 1, caddyauth.DialectVidentity, Epoch),
	}
	for _, s := range sessions {
		mustCreate(t, st, s)
	}
	// Expired but unpurged sessions still count.
	checkCounts(t, st, map[caddyauth.Dialect]int{
		caddyauth.DialectAmatino: 2, caddyauth.DialectSXT: 3, caddyauth.DialectVidentity: 1,
	})

	// A failed create must not count.
	if err := st.CreateSession(t.Context(), NewSession("am-1", 9, caddyauth.DialectNative, Epoch)); !errors.Is(err, caddyauth.ErrExists) {
		t.Fatalf("duplicate CreateSession = %v, want ErrExists", err)
	}
	// A touch must not count.
	if err := st.TouchSession(t.Context(), "am-1", Epoch.Add(time.Minute), Epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{
		caddyauth.DialectAmatino: 2, caddyauth.DialectSXT: 3, caddyauth.DialectVidentity: 1,
	})

	if _, err := st.DeleteSession(t.Context(), "sxt-1"); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{
		caddyauth.DialectAmatino: 2, caddyauth.DialectSXT: 2, caddyauth.DialectVidentity: 1,
	})

	if _, err := st.PurgeExpired(t.Context(), Epoch); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{
		caddyauth.DialectAmatino: 2, caddyauth.DialectSXT: 1, caddyauth.DialectVidentity: 1,
	})

	if _, err := st.DeleteUserSessions(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{
		caddyauth.DialectAmatino: 1, caddyauth.DialectSXT: 1,
	})

	if _, err := st.DeleteUserSessions(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, nil)
}

func testPing(t *testing.T, st caddyauth.Store) {
	for i := range 3 {
		if err := st.Ping(t.Context()); err != nil {
			t.Fatalf("Ping #%d on a healthy store: %v", i, err)
		}
	}
	// The probe must leave nothing a caller can see.
	checkCounts(t, st, nil)
	if got, err := st.PurgeExpired(t.Context(), time.Date(2600, time.January, 1, 0, 0, 0, 0, time.UTC)); err != nil || len(got) != 0 {
		t.Errorf("PurgeExpired after Ping = %q, %v; want empty", IDs(got), err)
	}

	mustCreate(t, st, NewSession("after-ping", 42, caddyauth.DialectNative, Epoch))
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with data: %v", err)
	}
	checkCounts(t, st, map[caddyauth.Dialect]int{caddyauth.DialectNative: 1})
}

func testClosed(t *testing.T, st caddyauth.Store) {
	s := NewTokenSession("before-close", 42, Epoch)
	mustCreate(t, st, s)
	u := mustCreateUser(t, st, NewUser(0, "before-close", Epoch))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateSession", func() error {
			return st.CreateSession(ctx, NewSession("after-close", 42, caddyauth.DialectAmatino, Epoch))
		}},
		{"GetSession", func() error { _, err := st.GetSession(ctx, s.ID); return err }},
		{"GetSession unknown", func() error { _, err := st.GetSession(ctx, "nope"); return err }},
		{"TouchSession", func() error { return st.TouchSession(ctx, s.ID, Epoch, Epoch.Add(time.Hour)) }},
		{"DeleteSession", func() error { _, err := st.DeleteSession(ctx, s.ID); return err }},
		{"DeleteUserSessions", func() error { _, err := st.DeleteUserSessions(ctx, 42); return err }},
		{"ListUserSessions", func() error { _, err := st.ListUserSessions(ctx, 42); return err }},
		{"PurgeExpired", func() error { _, err := st.PurgeExpired(ctx, Epoch.Add(48*time.Hour)); return err }},
		{"CountSessions", func() error { _, err := st.CountSessions(ctx); return err }},
		{"Ping", func() error { return st.Ping(ctx) }},
		{"SessionByToken", func() error { _, err := st.SessionByToken(ctx, s.Tokens[0].Digest); return err }},
		{"SessionByToken unknown", func() error { _, err := st.SessionByToken(ctx, Digest("nope")); return err }},
		{"UpdateSession", func() error {
			_, err := st.UpdateSession(ctx, s.ID, func(*caddyauth.Session) error { return nil })
			return err
		}},
		{"CreateUser", func() error { _, err := st.CreateUser(ctx, NewUser(0, "after-close", Epoch)); return err }},
		{"UserByID", func() error { _, err := st.UserByID(ctx, u.ID); return err }},
		{"UserByEmail", func() error { _, err := st.UserByEmail(ctx, u.Email); return err }},
		{"UserByUsername", func() error { _, err := st.UserByUsername(ctx, u.Username); return err }},
		{"UserByKeyID", func() error { _, err := st.UserByKeyID(ctx, u.PublicKeys[0].ID); return err }},
		{"UpdateUser", func() error {
			_, err := st.UpdateUser(ctx, u.ID, func(*caddyauth.User) error { return nil })
			return err
		}},
		{"ListUsers", func() error { _, err := st.ListUsers(ctx, 0, 10); return err }},
	}
	for _, c := range calls {
		// ErrNotFound after Close would make the engine answer 401 and
		// forget a live session (REL-01); it must be ErrClosed.
		if err := c.call(); !errors.Is(err, caddyauth.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, err)
		}
	}
	if err := st.Close(); err != nil && !errors.Is(err, caddyauth.ErrClosed) {
		t.Errorf("second Close = %v, want nil or ErrClosed", err)
	}
}

// testConcurrent has 16 goroutines each make 200 calls, alternating between
// a private session life cycle (create, get, touch, then delete or keep:
// every step must succeed) and a handful of shared ids (create, get, touch,
// delete racing with the others: only ErrExists or ErrNotFound may come
// back), while a reader counts and lists. Run it with -race.
func testConcurrent(t *testing.T, st caddyauth.Store) {
	const (
		workers    = 16
		calls      = 200
		shared     = 8
		sharedUser = 1
	)
	dialectOf := func(i int) caddyauth.Dialect { return Dialects[i%len(Dialects)] }
	sharedID := func(i int) string { return fmt.Sprintf("shared-%d", i) }
	ok := func(err error, allowed error) bool { return err == nil || errors.Is(err, allowed) }

	// remaining[g] is the set of goroutine g's own sessions still stored.
	remaining := make([]map[string]*caddyauth.Session, workers)
	var wg sync.WaitGroup
	for g := range workers {
		remaining[g] = make(map[string]*caddyauth.Session)
		wg.Go(func() {
			ctx := context.Background()
			uid := int64(1000 + g)
			var own *caddyauth.Session
			for i := range calls {
				if i%2 == 0 {
					// Own id: a four-step life cycle, every step must succeed.
					n, step := i/8, (i/2)%4
					switch step {
					case 0:
						own = NewSession(fmt.Sprintf("g%02d-%03d", g, n), uid, dialectOf(g+n), Epoch)
						if err := st.CreateSession(ctx, own.Clone()); err != nil {
							t.Errorf("create own %s: %v", own.ID, err)
							return
						}
						remaining[g][own.ID] = own
					case 1:
						got, err := st.GetSession(ctx, own.ID)
						if err != nil {
							t.Errorf("get own %s: %v", own.ID, err)
							return
						}
						if d := Diff(own, got); d != "" {
							t.Errorf("get own %s: %s", own.ID, d)
						}
					case 2:
						own.LastSeen, own.IdleDeadline = Epoch.Add(time.Duration(i)*time.Second), Epoch.Add(time.Hour)
						if err := st.TouchSession(ctx, own.ID, own.LastSeen, own.IdleDeadline); err != nil {
							t.Errorf("touch own %s: %v", own.ID, err)
							return
						}
					case 3:
						if n%3 != 0 {
							break
						}
						got, err := st.DeleteSession(ctx, own.ID)
						if err != nil {
							t.Errorf("delete own %s: %v", own.ID, err)
							return
						}
						if d := Diff(own, got); d != "" {
							t.Errorf("delete own %s: %s", own.ID, d)
						}
						delete(remaining[g], own.ID)
					}
					continue
				}

				// Shared id: racing with the other goroutines.
				k := (g + i/2) % shared
				id := sharedID(k)
				switch (g + i/2) % 4 {
				case 0:
					s := NewSession(id, sharedUser, dialectOf(k), Epoch)
					if err := st.CreateSession(ctx, s); !ok(err, caddyauth.ErrExists) {
						t.Errorf("create %s: %v", id, err)
					}
				case 1:
					s, err := st.GetSession(ctx, id)
					if !ok(err, caddyauth.ErrNotFound) {
						t.Errorf("get %s: %v", id, err)
					}
					if err == nil && (s.ID != id || s.Dialect != dialectOf(k) || s.UserID != sharedUser) {
						t.Errorf("get %s: torn or wrong session %q/%d/%s", id, s.ID, s.UserID, s.Dialect)
					}
				case 2:
					if err := st.TouchSession(ctx, id, Epoch.Add(time.Minute), Epoch.Add(time.Hour)); !ok(err, caddyauth.ErrNotFound) {
						t.Errorf("touch %s: %v", id, err)
					}
				case 3:
					if _, err := st.DeleteSession(ctx, id); !ok(err, caddyauth.ErrNotFound) {
						t.Errorf("delete %s: %v", id, err)
					}
				}
			}
		})
	}
	// A reader that counts and lists while the writers run: it must never
	// see an error, whatever the interleaving.
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := st.CountSessions(ctx); err != nil {
				t.Errorf("concurrent CountSessions: %v", err)
				return
			}
			if _, err := st.ListUserSessions(ctx, sharedUser); err != nil {
				t.Errorf("concurrent ListUserSessions: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	if t.Failed() {
		return
	}

	want := make(map[caddyauth.Dialect]int)
	for g := range workers {
		var own []*caddyauth.Session
		for _, s := range remaining[g] {
			own = append(own, s)
			want[s.Dialect]++
			checkEqual(t, "remaining own session", s, mustGet(t, st, s.ID))
		}
		list, err := st.ListUserSessions(t.Context(), int64(1000+g))
		if err != nil {
			t.Fatal(err)
		}
		checkSet(t, fmt.Sprintf("ListUserSessions(%d)", 1000+g), own, list)
	}
	var present []string
	for k := range shared {
		s, err := st.GetSession(t.Context(), sharedID(k))
		switch {
		case err == nil:
			present = append(present, s.ID)
			want[s.Dialect]++
		case !errors.Is(err, caddyauth.ErrNotFound):
			t.Fatalf("get %s: %v", sharedID(k), err)
		}
	}
	list, err := st.ListUserSessions(t.Context(), sharedUser)
	if err != nil {
		t.Fatal(err)
	}
	if got := IDs(list); !slices.Equal(got, present) {
		t.Errorf("ListUserSessions(shared user) = %q, want %q", got, present)
	}
	checkCounts(t, st, want)

	// Everything left expires by AbsoluteTimeout: a purge must find all of
	// it, so no index lost or kept an entry under the race.
	total := 0
	for _, n := range want {
		total += n
	}
	purged, err := st.PurgeExpired(t.Context(), Epoch.Add(AbsoluteTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if len(purged) != total {
		t.Errorf("PurgeExpired after the race removed %d sessions, want %d", len(purged), total)
	}
	checkCounts(t, st, nil)
}
