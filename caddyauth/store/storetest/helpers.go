package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Epoch is the fixed instant the suite builds its sessions around. It has a
// non-zero nanosecond part on purpose: a store that rounds to micro- or
// milliseconds fails the round-trip tests instead of passing by luck.
var Epoch = time.Date(2026, time.March, 14, 15, 9, 26, 535897932, time.UTC)

// Lifetimes used by NewSession. They are long enough that no session built
// by the suite expires unless a test moves time on purpose.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 24 * time.Hour
)

// NewSession returns a valid session for tests: created and last seen at now,
// idle deadline now+IdleTimeout, absolute deadline now+AbsoluteTimeout. The
// credential kind follows the dialect: amatino sessions carry a 32-byte
// Secret derived from id (so two sessions never share one), token dialects a
// nil Secret, as the Manager would hand them to a store.
func NewSession(id string, userID int64, d caddyauth.Dialect, now time.Time) *caddyauth.Session {
	s := &caddyauth.Session{
		ID:               id,
		UserID:           userID,
		Dialect:          d,
		Kind:             caddyauth.KindBearer,
		Created:          now,
		LastSeen:         now,
		IdleDeadline:     now.Add(IdleTimeout),
		AbsoluteDeadline: now.Add(AbsoluteTimeout),
	}
	switch d {
	case caddyauth.DialectAmatino:
		sum := sha256.Sum256([]byte("storetest secret " + id))
		s.Kind = caddyauth.KindHMACKey
		s.Secret = sum[:]
	case caddyauth.DialectSXT:
		s.Kind = caddyauth.KindSessionKey
	}
	return s
}

// Digest returns the lower-case hex SHA-256 of label: a token digest of the
// shape the engine stores (64 characters), distinct for distinct labels.
func Digest(label string) string {
	sum := sha256.Sum256([]byte(label))
	return hex.EncodeToString(sum[:])
}

// Diff returns "" when got equals want in every field, else a description of
// the differences. Times are compared with Equal (the instant, not the
// location or monotonic reading). A nil Secret must come back nil (no
// credential is not an empty credential); an empty non-nil Secret may come
// back nil or empty, since Session.Clone and encoding/json with the struct's
// omitempty tag both fold it to nil and no caller depends on the difference.
// Tokens compare in order; nil and empty Tokens are the same, and a token's
// Successor follows the Secret rule. It never prints Secret or Successor
// contents, only lengths, so a failing test cannot leak key material into
// CI logs.
func Diff(want, got *caddyauth.Session) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil:
		return "want nil session, got non-nil"
	case got == nil:
		return "want a session, got nil"
	}
	var d []string
	if want.ID != got.ID {
		d = append(d, fmt.Sprintf("ID: want %q, got %q", want.ID, got.ID))
	}
	if want.UserID != got.UserID {
		d = append(d, fmt.Sprintf("UserID: want %d, got %d", want.UserID, got.UserID))
	}
	if want.Dialect != got.Dialect {
		d = append(d, fmt.Sprintf("Dialect: want %q, got %q", want.Dialect, got.Dialect))
	}
	if want.Kind != got.Kind {
		d = append(d, fmt.Sprintf("Kind: want %q, got %q", want.Kind, got.Kind))
	}
	if want.Secret == nil && got.Secret != nil {
		d = append(d, fmt.Sprintf("Secret: want nil, got %d bytes", len(got.Secret)))
	} else if !bytes.Equal(want.Secret, got.Secret) {
		d = append(d, fmt.Sprintf("Secret: contents differ (want %d bytes, got %d bytes)", len(want.Secret), len(got.Secret)))
	}
	times := []struct {
		name      string
		want, got time.Time
	}{
		{"Created", want.Created, got.Created},
		{"LastSeen", want.LastSeen, got.LastSeen},
		{"IdleDeadline", want.IdleDeadline, got.IdleDeadline},
		{"AbsoluteDeadline", want.AbsoluteDeadline, got.AbsoluteDeadline},
	}
	for _, tm := range times {
		if !tm.want.Equal(tm.got) {
			d = append(d, fmt.Sprintf("%s: want %s, got %s", tm.name,
				tm.want.Format(time.RFC3339Nano), tm.got.Format(time.RFC3339Nano)))
		}
	}
	d = append(d, diffTokens(want.Tokens, got.Tokens)...)
	return strings.Join(d, "; ")
}

// diffTokens describes how got differs from want, token by token.
func diffTokens(want, got []caddyauth.Token) []string {
	if len(want) != len(got) {
		return []string{fmt.Sprintf("Tokens: want %d, got %d", len(want), len(got))}
	}
	var d []string
	for i := range want {
		w, g := want[i], got[i]
		name := fmt.Sprintf("Tokens[%d]", i)
		if w.Digest != g.Digest {
			d = append(d, fmt.Sprintf("%s.Digest: want %q, got %q", name, w.Digest, g.Digest))
		}
		if w.Kind != g.Kind {
			d = append(d, fmt.Sprintf("%s.Kind: want %q, got %q", name, w.Kind, g.Kind))
		}
		if !w.Expires.Equal(g.Expires) {
			d = append(d, fmt.Sprintf("%s.Expires: want %s, got %s", name,
				w.Expires.Format(time.RFC3339Nano), g.Expires.Format(time.RFC3339Nano)))
		}
		if !w.RotatedAt.Equal(g.RotatedAt) {
			d = append(d, fmt.Sprintf("%s.RotatedAt: want %s, got %s", name,
				w.RotatedAt.Format(time.RFC3339Nano), g.RotatedAt.Format(time.RFC3339Nano)))
		}
		if w.Successor == nil && g.Successor != nil {
			d = append(d, fmt.Sprintf("%s.Successor: want nil, got %d bytes", name, len(g.Successor)))
		} else if !bytes.Equal(w.Successor, g.Successor) {
			d = append(d, fmt.Sprintf("%s.Successor: contents differ (want %d bytes, got %d bytes)", name, len(w.Successor), len(g.Successor)))
		}
	}
	return d
}

// NonUTC returns the names of s's time fields whose location is not UTC.
// Stores return UTC so that what the engine logs and compares does not
// depend on the zone of whoever wrote the session.
func NonUTC(s *caddyauth.Session) []string {
	var bad []string
	for _, f := range []struct {
		name string
		t    time.Time
	}{
		{"Created", s.Created},
		{"LastSeen", s.LastSeen},
		{"IdleDeadline", s.IdleDeadline},
		{"AbsoluteDeadline", s.AbsoluteDeadline},
	} {
		if f.t.Location() != time.UTC {
			bad = append(bad, f.name)
		}
	}
	for i, tk := range s.Tokens {
		if tk.Expires.Location() != time.UTC {
			bad = append(bad, fmt.Sprintf("Tokens[%d].Expires", i))
		}
		if tk.RotatedAt.Location() != time.UTC {
			bad = append(bad, fmt.Sprintf("Tokens[%d].RotatedAt", i))
		}
	}
	return bad
}

// IDs returns the sorted IDs of ss, for order-independent comparisons.
func IDs(ss []*caddyauth.Session) []string {
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}
