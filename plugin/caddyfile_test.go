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
		{name: "sxt bare", input: "sessiongate {\n sxt\n}", want: Handler{Sxt: &SxtConfig{}}},
		{name: "sxt all options", input: `sessiongate {
			sxt {
				prefix /api
				registration join_code {env.JOIN}
				code_lifetime 1m
				access_lifetime 10m
				refresh_lifetime 20m
				session_lifetime 8h
				refresh_grace 5s
				refresh_accepts_access_token
				realm sql
			}
		}`, want: Handler{Sxt: &SxtConfig{Prefix: "/api", Registration: "join_code", JoinCode: "{env.JOIN}",
			CodeLifetime: 60e9, AccessLifetime: 600e9, RefreshLifetime: 1200e9, SessionLifetime: 8 * 3600e9,
			RefreshGrace: 5e9, RefreshAcceptsAccessToken: true, Realm: "sql"}}},
		{name: "sxt grace 0s", input: "sessiongate {\n sxt {\n registration open\n refresh_grace 0s\n }\n}",
			want: Handler{Sxt: &SxtConfig{Registration: "open"}}},
		{name: "three dialects", input: "sessiongate {\n amatino\n sxt\n videntity\n}",
			want: Handler{Amatino: &AmatinoConfig{}, Videntity: &VidentityConfig{}, Sxt: &SxtConfig{}}},
		{name: "sxt twice", input: "sessiongate {\n sxt\n sxt\n}", wantErr: "sxt given twice"},
		{name: "sxt unknown option", input: "sessiongate {\n sxt {\n token_lifetime 1m\n }\n}", wantErr: `unrecognized sxt option "token_lifetime"`},
		{name: "sxt access above session", input: "sessiongate {\n sxt {\n access_lifetime 2h\n refresh_lifetime 2h\n session_lifetime 1h\n }\n}", wantErr: "access_lifetime"},
		{name: "sxt refresh above session", input: "sessiongate {\n sxt {\n refresh_lifetime 2h\n session_lifetime 1h\n }\n}", wantErr: "refresh_lifetime"},
		{name: "sxt access above refresh", input: "sessiongate {\n sxt {\n access_lifetime 1h\n }\n}", wantErr: "access_lifetime"},
		{name: "sxt code above 5m", input: "sessiongate {\n sxt {\n code_lifetime 10m\n }\n}", wantErr: "code_lifetime"},
		{name: "sxt grace above 60s", input: "sessiongate {\n sxt {\n refresh_grace 2m\n }\n}", wantErr: "refresh_grace"},
		{name: "sxt negative grace", input: "sessiongate {\n sxt {\n refresh_grace -1s\n }\n}", wantErr: "refresh_grace"},
		{name: "sxt bad registration", input: "sessiongate {\n sxt {\n registration maybe\n }\n}", wantErr: "want open, closed or join_code"},
		{name: "sxt join_code without code", input: "sessiongate {\n sxt {\n registration join_code\n }\n}", wantErr: "needs the code"},
		{name: "sxt bad prefix", input: "sessiongate {\n sxt {\n prefix v1/\n }\n}", wantErr: "sxt prefix"},
		{name: "sxt bad realm", input: "sessiongate {\n sxt {\n realm a\"b\n }\n}", wantErr: "sxt realm"},
		{name: "sxt flag with argument", input: "sessiongate {\n sxt {\n refresh_accepts_access_token yes\n }\n}", wantErr: "wrong argument count"},
		{name: "native bare", input: "sessiongate {\n native\n}", want: Handler{Native: &NativeConfig{}}},
		{name: "native all options", input: `sessiongate {
			native {
				require_components @method @authority @path @query @scheme
				require_body_components content-digest content-type content-length
				require_params created keyid nonce expires
				past_window 120s
				future_window 2s
				ignore_expires
				label gw
				max_body 1MiB
				idle_reset_on_use
			}
		}`, want: Handler{Native: &NativeConfig{RequireComponents: []string{"@method", "@authority", "@path", "@query", "@scheme"},
			RequireBodyComponents: []string{"content-digest", "content-type", "content-length"},
			RequireParams:         []string{"created", "keyid", "nonce", "expires"}, PastWindow: 120e9, FutureWindow: 2e9,
			IgnoreExpires: true, Label: "gw", MaxBody: 1 << 20, IdleResetOnUse: true}}},
		{name: "native with amatino", input: "sessiongate {\n amatino\n native\n}", want: Handler{Amatino: &AmatinoConfig{}, Native: &NativeConfig{}}},
		{name: "native twice", input: "sessiongate {\n native\n native\n}", wantErr: "native given twice"},
		{name: "native unknown option", input: "sessiongate {\n native {\n window 5s\n }\n}", wantErr: `unrecognized native option "window"`},
		{name: "native argument", input: "sessiongate {\n native on\n}", wantErr: "wrong argument count"},
		{name: "native unknown component", input: "sessiongate {\n native {\n require_components @method @status\n }\n}", wantErr: "@status"},
		{name: "native component twice", input: "sessiongate {\n native {\n require_components @path @path\n }\n}", wantErr: "twice"},
		{name: "native no components", input: "sessiongate {\n native {\n require_components\n }\n}", wantErr: "wrong argument count"},
		{name: "native unknown param", input: "sessiongate {\n native {\n require_params keyid salt\n }\n}", wantErr: `"salt"`},
		{name: "native params without keyid", input: "sessiongate {\n native {\n require_params created nonce\n }\n}", wantErr: "keyid"},
		{name: "native nonce without created", input: "sessiongate {\n native {\n require_params keyid nonce\n }\n}", wantErr: "created"},
		{name: "native fractional window", input: "sessiongate {\n native {\n past_window 1500ms\n }\n}", wantErr: "whole seconds"},
		{name: "native window above 1h", input: "sessiongate {\n native {\n future_window 2h\n }\n}", wantErr: "future_window"},
		{name: "native negative window", input: "sessiongate {\n native {\n past_window -5s\n }\n}", wantErr: "positive duration"},
		{name: "native bad label", input: "sessiongate {\n native {\n label Sig1\n }\n}", wantErr: "label"},
		{name: "native zero body", input: "sessiongate {\n native {\n max_body 0\n }\n}", wantErr: "native max_body"},
		{name: "native flag with argument", input: "sessiongate {\n native {\n ignore_expires yes\n }\n}", wantErr: "wrong argument count"},
		{name: "native only", input: "sessiongate {\n native {\n max_body 1KiB\n }\n}", want: Handler{Native: &NativeConfig{MaxBody: 1024}}},
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
		{name: "redis store bare", input: "sessiongate {\n store redis\n master_key {env.K}\n}",
			want: `{"store":{"backend":"redis"},"master_key":"{env.K}"}`},
		{name: "redis store all options", input: `sessiongate {
			store redis {
				address 10.0.0.5:26379 10.0.0.6:26379
				address 10.0.0.7:26379
				master_name mymaster
				db 3
				username gateway
				password {env.REDIS_PASSWORD}
				tls
				key_prefix gw1:
				dial_timeout 1s
				read_timeout 250ms
				write_timeout 300ms
				pool_size 20
				channel gw1:inval
				retention 15m
			}
			master_key {env.K}
		}`, want: `{"store":{"backend":"redis","redis":{"addresses":["10.0.0.5:26379","10.0.0.6:26379","10.0.0.7:26379"],` +
			`"master_name":"mymaster","db":3,"username":"gateway","password":"{env.REDIS_PASSWORD}","tls":true,` +
			`"key_prefix":"gw1:","dial_timeout":1000000000,"read_timeout":250000000,"write_timeout":300000000,` +
			`"pool_size":20,"channel":"gw1:inval","retention":900000000000}},"master_key":"{env.K}"}`},
		{name: "redis cluster", input: "sessiongate {\n store redis {\n address cfg.example:6379\n cluster\n }\n}",
			want: `{"store":{"backend":"redis","redis":{"addresses":["cfg.example:6379"],"cluster":true}}}`},
		{name: "redis unknown option", input: "sessiongate {\n store redis {\n host 10.0.0.5\n }\n}",
			wantErr: `unrecognized sessiongate redis option "host"`},
		{name: "redis address without value", input: "sessiongate {\n store redis {\n address\n }\n}", wantErr: "wrong argument count"},
		{name: "redis zero timeout", input: "sessiongate {\n store redis {\n read_timeout 0s\n }\n}", wantErr: "positive duration"},
		{name: "redis bad db", input: "sessiongate {\n store redis {\n db -1\n }\n}", wantErr: "at least 0"},
		{name: "redis zero pool", input: "sessiongate {\n store redis {\n pool_size 0\n }\n}", wantErr: "at least 1"},
		{name: "redis hash tag prefix", input: "sessiongate {\n store redis {\n key_prefix {sg}:\n }\n}", wantErr: "key_prefix"},
		{name: "redis flag with argument", input: "sessiongate {\n store redis {\n tls on\n }\n}", wantErr: "wrong argument count"},
		{name: "redis positional address", input: "sessiongate {\n store redis 10.0.0.5:6379\n}", wantErr: "wrong argument count"},
		{name: "redis two passwords", input: "sessiongate {\n store redis {\n password a b\n }\n}", wantErr: "wrong argument count"},
		{name: "unknown option", input: "sessiongate {\n nope\n}", wantErr: `unrecognized sessiongate option "nope"`},
		{name: "user without hash", input: "sessiongate {\n user demo {\n id 1\n }\n}", wantErr: "a password_hash or public_key are required"},
		{name: "user with keys only", input: "sessiongate {\n user k {\n id 7\n public_key ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=\n public_key 5/FioQvsVZr+oZXk3OhLaVaNXSywlj60RsBoXisX8vA=\n }\n}",
			want: `{"users":[{"id":7,"username":"k","public_keys":["ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=","5/FioQvsVZr+oZXk3OhLaVaNXSywlj60RsBoXisX8vA="]}]}`},
		{name: "user key of 31 bytes", input: "sessiongate {\n user k {\n id 7\n public_key ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60Elg==\n }\n}", wantErr: "public_key"},
		{name: "user all-zero key", input: "sessiongate {\n user k {\n id 7\n public_key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n }\n}", wantErr: "all-zero"},
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
