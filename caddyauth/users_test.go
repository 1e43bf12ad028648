package caddyauth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
)

func TestStaticUsersRefusesDuplicatesAndInvalid(t *testing.T) {
	cases := []struct {
		name  string
		users []caddyauth.User
	}{
		{"duplicate id", []caddyauth.User{{ID: 1, Email: "a@x"}, {ID: 1, Email: "b@x"}}},
		{"duplicate email", []caddyauth.User{{ID: 1, Email: "a@x"}, {ID: 2, Email: "a@x"}}},
		{"duplicate email other case", []caddyauth.User{{ID: 1, Email: "a@x.com"}, {ID: 2, Email: "A@X.COM"}}},
		{"duplicate username", []caddyauth.User{{ID: 1, Username: "bob"}, {ID: 2, Username: "bob"}}},
		{"zero id", []caddyauth.User{{ID: 0, Email: "a@x"}}},
		{"negative id", []caddyauth.User{{ID: -1, Email: "a@x"}}},
	}
	for _, tc := range cases {
		if d, err := caddyauth.NewStaticUsers(tc.users); err == nil {
			t.Errorf("%s: accepted (%d users)", tc.name, d.Len())
		}
	}
}

func TestStaticUsersLookups(t *testing.T) {
	d, err := caddyauth.NewStaticUsers([]caddyauth.User{
		{ID: 1, Email: "Alice@Example.com", Username: "Alice"},
		{ID: 2, Username: "bob"}, // no email
		{ID: 3},                  // neither: empty values are not duplicates
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 {
		t.Fatalf("Len = %d", d.Len())
	}
	ctx := context.Background()
	for _, e := range []string{"Alice@Example.com", "alice@example.com", "ALICE@EXAMPLE.COM", "aLiCe@eXaMpLe.CoM"} {
		if u, err := d.UserByEmail(ctx, e); err != nil || u.ID != 1 {
			t.Errorf("UserByEmail(%q) = %+v, %v", e, u, err)
		}
	}
	for _, e := range []string{"", "alice@example.co", " alice@example.com", "alice@example.com "} {
		if u, err := d.UserByEmail(ctx, e); !errors.Is(err, caddyauth.ErrNotFound) || u != nil {
			t.Errorf("UserByEmail(%q) = %+v, %v; want ErrNotFound", e, u, err)
		}
	}
	if u, err := d.UserByID(ctx, 2); err != nil || u.Username != "bob" {
		t.Errorf("UserByID(2) = %+v, %v", u, err)
	}
	for _, id := range []int64{0, -1, 4} {
		if _, err := d.UserByID(ctx, id); !errors.Is(err, caddyauth.ErrNotFound) {
			t.Errorf("UserByID(%d) = %v", id, err)
		}
	}
	if u, err := d.UserByUsername(ctx, "Alice"); err != nil || u.ID != 1 {
		t.Errorf("UserByUsername(Alice) = %+v, %v", u, err)
	}
	// Usernames are exact.
	if _, err := d.UserByUsername(ctx, "alice"); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("UserByUsername(alice) = %v, want ErrNotFound", err)
	}
	if _, err := d.UserByUsername(ctx, ""); !errors.Is(err, caddyauth.ErrNotFound) {
		t.Errorf("UserByUsername(\"\") = %v, want ErrNotFound", err)
	}
	// Each lookup returns the same user record, distinct per user.
	a, _ := d.UserByEmail(ctx, "alice@example.com")
	b, _ := d.UserByID(ctx, 1)
	if a != b {
		t.Error("email and id lookups return different records for one user")
	}
}

// TestLayeredPartsMayBeLeftOut: a Layered without its static or its store
// part finds nobody there instead of panicking.
func TestLayeredPartsMayBeLeftOut(t *testing.T) {
	ctx := context.Background()
	for name, l := range map[string]caddyauth.Layered{
		"zero":       {},
		"no store":   {Static: &caddyauth.StaticUsers{}},
		"nil static": {Static: nil},
	} {
		lookups := map[string]func() (*caddyauth.User, error){
			"email":    func() (*caddyauth.User, error) { return l.UserByEmail(ctx, "a@example.com") },
			"id":       func() (*caddyauth.User, error) { return l.UserByID(ctx, 7) },
			"username": func() (*caddyauth.User, error) { return l.UserByUsername(ctx, "a") },
			"key":      func() (*caddyauth.User, error) { return l.UserByKeyID(ctx, "ed25519-x") },
		}
		for what, f := range lookups {
			if u, err := f(); u != nil || !errors.Is(err, caddyauth.ErrNotFound) {
				t.Errorf("%s: by %s = %v, %v; want ErrNotFound", name, what, u, err)
			}
		}
	}
}
