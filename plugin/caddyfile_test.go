package plugin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// TestUnmarshalHandler covers the directive parser (SEC-39): valid blocks
// give the expected handler, invalid ones an error.
func TestUnmarshalHandler(t *testing.T) {
	off := false
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{name: "bare amatino", input: "sessiongate {\n amatino\n}", want: Handler{Amatino: &AmatinoConfig{}}},
		{name: "all options", input: `sessiongate {
			amatino {
				window 10s
				legacy_body_signatures off
				replay reject
				max_body 1MiB
				session_lifetime 2h
			}
			identity_prefix X-User-
			keep_credentials
		}`, want: Handler{Amatino: &AmatinoConfig{Window: 10e9, LegacyBodySignatures: &off, Replay: "reject",
			MaxBody: 1 << 20, SessionLifetime: 2 * 3600e9}, IdentityPrefix: "X-User-", KeepCredentials: true}},
		{name: "no dialect", input: "sessiongate", wantErr: "enable at least one dialect"},
		{name: "positional arg", input: "sessiongate foo {\n amatino\n}", wantErr: "wrong argument count"},
		{name: "unknown option", input: "sessiongate {\n amatino\n bogus\n}", wantErr: `unrecognized sessiongate option "bogus"`},
		{name: "unknown amatino option", input: "sessiongate {\n amatino {\n bogus 1\n }\n}", wantErr: `unrecognized amatino option "bogus"`},
		{name: "amatino twice", input: "sessiongate {\n amatino\n amatino\n}", wantErr: "amatino given twice"},
		{name: "bad window", input: "sessiongate {\n amatino {\n window soon\n }\n}", wantErr: "want a positive duration"},
		{name: "fractional window", input: "sessiongate {\n amatino {\n window 1500ms\n }\n}", wantErr: "whole seconds"},
		{name: "negative window", input: "sessiongate {\n amatino {\n window -5s\n }\n}", wantErr: "positive duration"},
		{name: "bad replay", input: "sessiongate {\n amatino {\n replay sometimes\n }\n}", wantErr: "want observe or reject"},
		{name: "bad size", input: "sessiongate {\n amatino {\n max_body lots\n }\n}", wantErr: "max_body"},
		{name: "zero size", input: "sessiongate {\n amatino {\n max_body 0\n }\n}", wantErr: "max_body"},
		{name: "bad on/off", input: "sessiongate {\n amatino {\n legacy_body_signatures maybe\n }\n}", wantErr: "want on or off"},
		{name: "require without legacy", input: "sessiongate {\n amatino {\n legacy_body_signatures off\n require_body_signature\n }\n}", wantErr: "needs legacy_body_signatures"},
		{name: "missing arg", input: "sessiongate {\n amatino {\n window\n }\n}", wantErr: "wrong argument count"},
		{name: "extra arg", input: "sessiongate {\n amatino {\n window 1s 2s\n }\n}", wantErr: "wrong argument count"},
		{name: "idle", input: "sessiongate {\n amatino {\n idle_timeout 30m\n idle_reset_on_use\n }\n}",
			want: Handler{Amatino: &AmatinoConfig{IdleTimeout: 1800e9, IdleResetOnUse: true}}},
		{name: "idle reset without timeout", input: "sessiongate {\n amatino {\n idle_reset_on_use\n }\n}", wantErr: "needs an idle_timeout"},
		{name: "absolute below idle", input: "sessiongate {\n amatino {\n session_lifetime 10m\n idle_timeout 30m\n }\n}", wantErr: "must not exceed session_lifetime"},
		{name: "videntity bare", input: "sessiongate {\n videntity\n}", want: Handler{Videntity: &VidentityConfig{}}},
		{name: "videntity options", input: "sessiongate {\n videntity {\n idle_timeout 10m\n session_lifetime 8h\n idle_reset_on_use\n max_body 2MiB\n }\n}",
			want: Handler{Videntity: &VidentityConfig{IdleTimeout: 600e9, SessionLifetime: 8 * 3600e9, IdleResetOnUse: true, MaxBody: 2 << 20}}},
		{name: "both dialects", input: "sessiongate {\n amatino\n videntity\n}", want: Handler{Amatino: &AmatinoConfig{}, Videntity: &VidentityConfig{}}},
		{name: "videntity absolute below idle", input: "sessiongate {\n videntity {\n session_lifetime 10m\n }\n}", wantErr: "must not be below idle_timeout"},
		{name: "videntity unknown", input: "sessiongate {\n videntity {\n ping_every 1m\n }\n}", wantErr: `unrecognized videntity option "ping_every"`},
		{name: "videntity twice", input: "sessiongate {\n videntity\n videntity\n}", wantErr: "videntity given twice"},
		{name: "bad prefix", input: "sessiongate {\n amatino\n identity_prefix X:Auth\n}", wantErr: "not a valid header name prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			got, _ := json.Marshal(h)
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %s\nwant %s", got, want)
			}
		})
	}
}

// TestParseGlobalOption covers the global option parser (SEC-39).
func TestParseGlobalOption(t *testing.T) {
	const hash = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs"
	tests := []struct {
		name    string
		input   string
		want    string // JSON of the app
		wantErr string
	}{
		{name: "empty block", input: "sessiongate", want: `{}`},
		{name: "memory store", input: "sessiongate {\n store memory\n}", want: `{"store":{"backend":"memory"}}`},
		{name: "bolt path and timeout", input: "sessiongate {\n store bolt /tmp/x.db\n open_timeout 3s\n}",
			want: `{"store":{"backend":"bolt","path":"/tmp/x.db","open_timeout":3000000000}}`},
		{name: "engine settings", input: "sessiongate {\n master_key {env.K}\n cache_size 10\n cache_ttl 5s\n replay_cache_size 7\n purge_interval 1m\n}",
			want: `{"master_key":"{env.K}","cache_size":10,"cache_ttl":5000000000,"replay_cache_size":7,"purge_interval":60000000000}`},
		{name: "cache off", input: "sessiongate {\n cache_size -1\n}", want: `{"cache_size":-1}`},
		{name: "hash block", input: "sessiongate {\n hash {\n time 3\n memory 64MiB\n threads 2\n slots 4\n queue 0\n insecure_allow_weak\n }\n}",
			want: `{"hash":{"time":3,"memory_kib":65536,"threads":2,"slots":4,"queue":-1,"insecure_allow_weak":true}}`},
		{name: "user", input: "sessiongate {\n user demo {\n id 1001\n email demo@example.com\n account_number 1\n password_hash \"" + hash + "\"\n }\n}",
			want: `{"users":[{"id":1001,"email":"demo@example.com","username":"demo","account_number":"1","password_hash":"` + hash + `"}]}`},
		{name: "unknown store", input: "sessiongate {\n store postgres\n}", wantErr: `unknown store "postgres"`},
		{name: "unknown option", input: "sessiongate {\n nope\n}", wantErr: `unrecognized sessiongate option "nope"`},
		{name: "user without hash", input: "sessiongate {\n user demo {\n id 1\n }\n}", wantErr: "id and password_hash are required"},
		{name: "user bad id", input: "sessiongate {\n user demo {\n id -1\n }\n}", wantErr: "positive integer"},
		{name: "user unknown field", input: "sessiongate {\n user demo {\n role admin\n }\n}", wantErr: `unrecognized sessiongate user option "role"`},
		{name: "bad cache size", input: "sessiongate {\n cache_size many\n}", wantErr: "want an integer"},
		{name: "bad memory", input: "sessiongate {\n hash {\n memory 8TB\n }\n}", wantErr: "hash memory"},
		{name: "argument", input: "sessiongate on", wantErr: "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseGlobalOption(caddyfile.NewTestDispenser(tt.input), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			got := string(v.(httpcaddyfile.App).Value)
			if got != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestAdaptGolden adapts every testdata/adapt/*.caddyfiletest: the part
// before the `----------` line is a Caddyfile, the part after is either the
// JSON it must adapt to or `error: <substring>` that the adapt error must
// contain, including the line number (SEC-39).
func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- separator", f)
			}
			out, _, err := adapter.Adapt([]byte(in), map[string]any{"filename": "Caddyfile"})
			want = strings.TrimSpace(want)
			if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("got error %v, want one containing %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			got, err := canonicalJSON(out)
			if err != nil {
				t.Fatal(err)
			}
			exp, err := canonicalJSON([]byte(want))
			if err != nil {
				t.Fatalf("golden JSON: %v", err)
			}
			if got != exp {
				t.Fatalf("adapted JSON differs\ngot:\n%s\nwant:\n%s", got, exp)
			}
		})
	}
}

// canonicalJSON re-encodes JSON with sorted keys and indentation, so golden
// files compare by meaning, not by key order.
func canonicalJSON(b []byte) (string, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(v, "", "\t")
	return string(out), err
}
