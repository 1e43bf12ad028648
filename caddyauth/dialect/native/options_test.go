package native_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/dialect/native"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// TestOptions: defaults are the rfc9421 default policy and 10 MiB; options
// that cannot work are refused with an error naming them.
func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    native.Options
		wantErr string
	}{
		{name: "defaults"},
		{name: "custom policy", opts: native.Options{Components: []string{"@method", "@target-uri"},
			BodyComponents: []string{"content-digest"}, Params: []string{"created", "keyid", "nonce", "expires"},
			PastWindow: time.Minute, FutureWindow: time.Second, MaxBody: 1}},
		{name: "fractional past window", opts: native.Options{PastWindow: 1500 * time.Millisecond}, wantErr: "past_window"},
		{name: "past window too long", opts: native.Options{PastWindow: 2 * time.Hour}, wantErr: "past_window"},
		{name: "negative future window", opts: native.Options{FutureWindow: -time.Second}, wantErr: "future_window"},
		{name: "sub-second future window", opts: native.Options{FutureWindow: time.Millisecond}, wantErr: "future_window"},
		{name: "negative max body", opts: native.Options{MaxBody: -1}, wantErr: "max_body"},
		{name: "unknown component", opts: native.Options{Components: []string{"@status"}}, wantErr: "@status"},
		{name: "duplicate component", opts: native.Options{Components: []string{"@method", "@method"}}, wantErr: "twice"},
		{name: "unknown param", opts: native.Options{Params: []string{"keyid", "salt"}}, wantErr: "salt"},
		{name: "nonce without created", opts: native.Options{Params: []string{"keyid", "nonce"}}, wantErr: "created"},
		{name: "no keyid", opts: native.Options{Params: []string{"created"}}, wantErr: "keyid"},
		{name: "bad label", opts: native.Options{Label: "Sig"}, wantErr: "label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, native.Options{})
			d, err := native.New(e.m, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "native") {
					t.Fatalf("error %v, want one naming native %s", err, tt.wantErr)
				}
				if verr := tt.opts.Validate(); verr == nil || verr.Error() != err.Error() {
					t.Errorf("Validate %v, want the error of New %v", verr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, def := d.Options(), rfc9421.DefaultPolicy()
			want := tt.opts
			if want.Components == nil {
				want.Components = def.Components
			}
			if want.BodyComponents == nil {
				want.BodyComponents = def.BodyComponents
			}
			if want.Params == nil {
				want.Params = def.Params
			}
			if want.PastWindow == 0 {
				want.PastWindow = 300 * time.Second
			}
			if want.FutureWindow == 0 {
				want.FutureWindow = 5 * time.Second
			}
			if want.MaxBody == 0 {
				want.MaxBody = 10 << 20
			}
			if !slices.Equal(got.Components, want.Components) || !slices.Equal(got.BodyComponents, want.BodyComponents) ||
				!slices.Equal(got.Params, want.Params) || got.PastWindow != want.PastWindow ||
				got.FutureWindow != want.FutureWindow || got.MaxBody != want.MaxBody {
				t.Errorf("effective options %+v, want %+v", got, want)
			}
		})
	}
}

// TestChallenge: Accept-Signature proposes the policy's components, the
// body ones only for a body, and the parameters to generate.
func TestChallenge(t *testing.T) {
	e := newEnv(t, native.Options{})
	for _, tt := range []struct {
		hasBody bool
		want    string
	}{
		{false, `sig1=("@method" "@authority" "@path" "@query");created;nonce`},
		{true, `sig1=("@method" "@authority" "@path" "@query" "content-digest" "content-type");created;nonce`},
	} {
		if got := e.d.Challenge(tt.hasBody); got != tt.want {
			t.Errorf("Challenge(%v) = %q, want %q", tt.hasBody, got, tt.want)
		}
	}
	d, err := native.New(e.m, native.Options{Components: []string{"@method", "@target-uri"}, Params: []string{"keyid"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Challenge(false), `sig1=("@method" "@target-uri")`; got != want {
		t.Errorf("custom Challenge = %q, want %q", got, want)
	}
}
