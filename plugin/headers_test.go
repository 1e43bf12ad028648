package plugin

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// oldHasPrefix is the identity-header test sanitize used before
// hasHeaderPrefix: the reference every answer must equal.
func oldHasPrefix(name, prefix string) bool {
	return strings.HasPrefix(normHeader(name), prefix)
}

// TestHasHeaderPrefixMatchesNormHeaderSEC40SEC41: the allocation-free prefix
// test answers exactly as lower-casing and `_`→`-` folding did, for every
// spelling a client could use to spoof an identity header (SEC-40, SEC-41),
// non-ASCII names included.
func TestHasHeaderPrefixMatchesNormHeaderSEC40SEC41(t *testing.T) {
	prefixes := []string{"x-auth-", "x-kong-", "x-ident-", "a", "-", ""}
	tests := []struct {
		name   string
		header string
		want   bool // for x-auth-
	}{
		{"canonical", "X-Auth-User-Id", true},
		{"lower", "x-auth-user-id", true},
		{"upper", "X-AUTH-USER-ID", true},
		{"underscores", "X_auth_user_id", true},
		{"mixed separators", "x_AUTH-Username", true},
		{"prefix only", "X-Auth-", true},
		{"prefix without its dash", "X-Auth", false},
		{"shorter", "X-A", false},
		{"empty", "", false},
		{"other header", "X-Request-Id", false},
		{"near miss", "X-Auths-User-Id", false},
		{"dash for underscore is not folded back", "X-Auth_User", true},
		{"leading space", " X-Auth-User-Id", false},
		{"kelvin sign (lower-cases to k)", "X-\u212Aong-User-Id", false},
		{"dotted capital I (lower-cases to i + U+0307)", "X-\u0130dent-User", false},
		{"long s (folds to s, does not lower-case to it)", "X-Auth-\u017Fession", true},
		{"non-ASCII inside the prefix", "X-Au\u00c9h-User", false},
		{"invalid UTF-8 inside the prefix", "X-Au\xffh-User", false},
		{"invalid UTF-8 after the prefix", "X-Auth-\xff", true},
		{"short non-ASCII", "\u0130", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasHeaderPrefix(tt.header, "x-auth-"); got != tt.want {
				t.Errorf("hasHeaderPrefix(%q, x-auth-) = %v, want %v", tt.header, got, tt.want)
			}
			for _, p := range prefixes {
				if got, want := hasHeaderPrefix(tt.header, p), oldHasPrefix(tt.header, p); got != want {
					t.Errorf("hasHeaderPrefix(%q, %q) = %v, normHeader says %v", tt.header, p, got, want)
				}
			}
		})
	}
	// The Kelvin sign does fold into a k-prefix, as it always did.
	if !hasHeaderPrefix("X-\u212Aong-User-Id", "x-kong-") {
		t.Error("the Kelvin-sign spelling of X-Kong-User-Id no longer matches x-kong-")
	}
}

// FuzzHasHeaderPrefix: for any name and any folded prefix, hasHeaderPrefix
// answers as strings.HasPrefix(normHeader(name), prefix) (SEC-40, SEC-41).
func FuzzHasHeaderPrefix(f *testing.F) {
	for _, s := range []string{"X-Auth-User-Id", "X_auth_user_id", "X-\u212Aong-Id", "\u0130", "X-Au\xffh"} {
		f.Add(s, "X-Auth-")
		f.Add(s, "X-Kong-")
	}
	f.Fuzz(func(t *testing.T, name, prefix string) {
		p := normHeader(prefix)
		if got, want := hasHeaderPrefix(name, p), oldHasPrefix(name, p); got != want {
			t.Fatalf("hasHeaderPrefix(%q, %q) = %v, normHeader says %v", name, p, got, want)
		}
	})
}

// oldSanitize is sanitize as it was before it stopped allocating: the
// reference for TestSanitizeMatchesReferenceSEC40SEC41SEC42.
func oldSanitize(hdr, trailer http.Header, prefix string) (deleted []string, refused bool) {
	for name := range hdr {
		if oldHasPrefix(name, prefix) {
			deleted = append(deleted, name)
		}
	}
	for _, name := range []string{"Connection", "Trailer"} {
		for _, v := range hdr.Values(name) {
			for _, tok := range strings.Split(v, ",") {
				if oldHasPrefix(strings.TrimSpace(tok), prefix) {
					return deleted, true
				}
			}
		}
	}
	for name := range trailer {
		if oldHasPrefix(name, prefix) {
			return deleted, true
		}
	}
	return deleted, false
}

// TestSanitizeMatchesReferenceSEC40SEC41SEC42: sanitize deletes the same
// headers and refuses the same requests as before, for the default and a
// custom identity prefix (SEC-40, SEC-41, SEC-42).
func TestSanitizeMatchesReferenceSEC40SEC41SEC42(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		trailer http.Header
		refused bool // with the default prefix
	}{
		{"spoofed in every spelling", http.Header{"X-Auth-User-Id": {"1"}, "x-auth-username": {"a"},
			"X_AUTH_USER_EMAIL": {"e"}, "X-Auth_Role": {"r"}, "Accept": {"*/*"}}, nil, false},
		{"connection list names it", http.Header{"Connection": {"keep-alive,  X_Auth_User_Id ,close"}}, nil, true},
		{"connection list, trailing comma", http.Header{"Connection": {"keep-alive,"}}, nil, false},
		{"connection empty", http.Header{"Connection": {""}}, nil, false},
		{"connection second value names it", http.Header{"Connection": {"keep-alive", "x-auth-user-id"}}, nil, true},
		{"trailer header names it", http.Header{"Trailer": {"Expires, X-AUTH-USERNAME"}}, nil, true},
		{"announced trailer", http.Header{}, http.Header{"X-Auth-User-Id": nil}, true},
		{"harmless trailer", http.Header{"Trailer": {"Expires"}}, http.Header{"Expires": nil}, false},
		{"lookalike kept", http.Header{"X-Authority": {"x"}, "X-Auth": {"y"}}, nil, false},
	}
	for _, prefix := range []string{"X-Auth-", "x_gw_"} {
		h := &Handler{prefix: normHeader(prefix)}
		for _, tt := range tests {
			t.Run(prefix+" "+tt.name, func(t *testing.T) {
				r, _ := http.NewRequest(http.MethodGet, "http://gw.example/", nil)
				r.Header, r.Trailer = tt.header.Clone(), tt.trailer.Clone()
				wantDeleted, wantRefused := oldSanitize(tt.header, tt.trailer, h.prefix)
				if prefix == "X-Auth-" && wantRefused != tt.refused {
					t.Fatalf("reference refused=%v, the table says %v", wantRefused, tt.refused)
				}
				ref := h.sanitize(r)
				if (ref != nil) != wantRefused {
					t.Fatalf("refused=%v, want %v", ref != nil, wantRefused)
				}
				if ref != nil {
					if ref.Status != http.StatusBadRequest {
						t.Fatalf("status %d, want 400", ref.Status)
					}
					return
				}
				for name := range tt.header {
					_, kept := r.Header[name]
					if deleted := slices.Contains(wantDeleted, name); kept == deleted {
						t.Errorf("header %q kept=%v, want %v", name, kept, !deleted)
					}
				}
			})
		}
	}
}

// TestSetIdentityHeaderKeysSEC40: the identity headers are set under the
// keys Header.Set would use, for any identity prefix spelling, so an
// upstream sees the same names as before (SEC-40).
func TestSetIdentityHeaderKeysSEC40(t *testing.T) {
	f := newHotFixture(t)
	for _, prefix := range []string{"X-Auth-", "x-gw-", "X_Auth_", "Auth"} {
		t.Run(prefix, func(t *testing.T) {
			h := &Handler{Amatino: &AmatinoConfig{}, IdentityPrefix: prefix}
			if err := h.provision(f.h.app); err != nil {
				t.Fatal(err)
			}
			r, _ := f.request(make(http.Header))
			if ref := h.setIdentity(r, hotUserID, "amatino"); ref != nil {
				t.Fatal(ref.Message)
			}
			want := http.Header{}
			want.Set(prefix+"User-Id", "1001")
			want.Set(prefix+"User-Email", "bench@example.test")
			want.Set(prefix+"Username", "bench")
			for k, v := range want {
				if got := r.Header[k]; !slices.Equal(got, v) {
					t.Errorf("header %q = %q, want %q (canonical key %q)", k, got, v, textproto.CanonicalMIMEHeaderKey(k))
				}
			}
			// A later handler appending to one identity header must not
			// change the next (they share one backing array).
			keys := []string{h.hdrID, h.hdrMail, h.hdrName}
			for i, k := range keys[:2] {
				next := slices.Clone(r.Header[keys[i+1]])
				r.Header.Add(k, "extra")
				if got := r.Header[keys[i+1]]; !slices.Equal(got, next) {
					t.Errorf("appending to %s changed %s from %q to %q", k, keys[i+1], next, got)
				}
			}
		})
	}
}
