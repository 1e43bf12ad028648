package rfc9421_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

func TestDefaultPolicy(t *testing.T) {
	p := rfc9421.DefaultPolicy()
	if !slices.Equal(p.Components, []string{"@method", "@authority", "@path", "@query"}) ||
		!slices.Equal(p.BodyComponents, []string{"content-digest", "content-type"}) ||
		!slices.Equal(p.Params, []string{"created", "keyid", "nonce"}) ||
		p.PastWindow != 300*time.Second || p.FutureWindow != 5*time.Second || p.IgnoreExpires {
		t.Fatalf("%+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (rfc9421.Policy{}).Validate(); err != nil {
		t.Fatalf("zero policy: %v", err)
	}
	if got := p.ReplayTTL(); got != 306*time.Second {
		t.Fatalf("ReplayTTL = %v", got)
	}
	if got := p.Required(true); !slices.Equal(got, bodyComponents) {
		t.Fatalf("Required(true) = %q", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    rfc9421.Policy
		ok   bool
	}{
		{"custom components", rfc9421.Policy{Components: []string{"@method", "@target-uri", "accept"}}, true},
		{"no body components", rfc9421.Policy{BodyComponents: []string{}}, true},
		{"keyid only", rfc9421.Policy{Params: []string{"keyid"}}, true},
		{"created and nonce and expires", rfc9421.Policy{Params: []string{"created", "keyid", "nonce", "expires"}}, true},
		{"unknown derived", rfc9421.Policy{Components: []string{"@host"}}, false},
		{"upper-case field", rfc9421.Policy{BodyComponents: []string{"Content-Type"}}, false},
		{"duplicate", rfc9421.Policy{Components: []string{"@path", "@path"}}, false},
		{"unknown param", rfc9421.Policy{Params: []string{"keyid", "created", "nonce", "ttl"}}, false},
		{"nonce without created", rfc9421.Policy{Params: []string{"keyid", "nonce"}}, false},
		{"no keyid", rfc9421.Policy{Params: []string{"created", "nonce"}}, false},
		{"negative window", rfc9421.Policy{PastWindow: -time.Second}, false},
		{"bad label", rfc9421.Policy{Label: "Sig 1"}, false},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "signature policy: ") {
			t.Errorf("%s: error without context: %v", tc.name, err)
		}
	}
}

// TestAcceptSignature: the negotiation value names the label, the required
// components in order, and asks for created and nonce (RFC 9421 §5.1); it
// parses back as a structured dictionary.
func TestAcceptSignature(t *testing.T) {
	tests := []struct {
		p       rfc9421.Policy
		hasBody bool
		want    string
	}{
		{rfc9421.DefaultPolicy(), false, `sig1=("@method" "@authority" "@path" "@query");created;nonce`},
		{rfc9421.DefaultPolicy(), true, `sig1=("@method" "@authority" "@path" "@query" "content-digest" "content-type");created;nonce`},
		{rfc9421.Policy{Label: "gw", Params: []string{"keyid", "created", "expires"}}, false,
			`gw=("@method" "@authority" "@path" "@query");created;expires`},
	}
	for _, tc := range tests {
		got := tc.p.AcceptSignature(tc.hasBody)
		if got != tc.want {
			t.Fatalf("got  %s\nwant %s", got, tc.want)
		}
		if _, err := httpsfv.UnmarshalDictionary([]string{got}); err != nil {
			t.Fatalf("%s does not parse: %v", got, err)
		}
	}
}
