package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

// fuzzCaddyfile wraps the two fuzzed blocks in a Caddyfile with a global
// `sessiongate` option and a site using the `sessiongate` directive.
func fuzzCaddyfile(global, handler string) string {
	return "{\n\tadmin off\n\tsessiongate {\n" + global + "\n\t}\n}\n\n:8080 {\n\tsessiongate {\n" +
		handler + "\n\t}\n\trespond 200\n}\n"
}

// FuzzCaddyfile (SEC-38, SEC-39) adapts a Caddyfile holding a fuzzed
// global `sessiongate` block and a fuzzed `sessiongate` handler block, the
// way `caddy adapt` and `caddy run` do, and also feeds each block to its
// parser directly (the adapter must not be what keeps a panic from
// surfacing). Nothing panics. A handler block the parser accepts is valid
// (Validate returns nil) and survives a JSON round trip unchanged. When
// the whole file adapts, its JSON decodes, with no field left unknown,
// into the App and into every sessiongate Handler, and their Validate runs
// without panicking. Following Caddy's own lexer fuzzing
// (caddyconfig/caddyfile/lexer_fuzz.go), the lexer is part of the target.
//
// Inputs that name `import`, or a device or kernel file, are skipped: the
// adapter would read files (a FIFO or /dev/zero never ends), which is
// Caddy's behaviour, not the plugin's.
func FuzzCaddyfile(f *testing.F) {
	f.Add("store memory", "amatino")
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		f.Fatal("no caddyfile adapter registered")
	}
	f.Fuzz(func(t *testing.T, global, handler string) {
		for _, s := range []string{global, handler} {
			for _, bad := range []string{"import", "/dev", "/proc", "/sys"} {
				if strings.Contains(s, bad) {
					return
				}
			}
		}

		var h Handler
		if d, ok := dispenser("sessiongate {\n" + handler + "\n}"); ok && h.UnmarshalCaddyfile(d) == nil {
			first, err := json.Marshal(&h)
			if err != nil {
				t.Fatalf("marshal parsed handler: %v", err)
			}
			var back Handler
			if err := strictUnmarshal(first, &back); err != nil {
				t.Fatalf("handler JSON %s does not decode: %v", first, err)
			}
			if second, _ := json.Marshal(&back); !bytes.Equal(first, second) {
				t.Fatalf("handler JSON round trip: %s became %s", first, second)
			}
			if err := validateProvisioned(&h); err != nil {
				t.Fatalf("parsed handler block %q fails Validate: %v", handler, err)
			}
		}
		if d, ok := dispenser("sessiongate {\n" + global + "\n}"); ok {
			_, _ = parseGlobalOption(d, nil)
		}

		out, _, err := adapter.Adapt([]byte(fuzzCaddyfile(global, handler)), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			return
		}
		var cfg struct {
			Apps map[string]json.RawMessage `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatalf("adapted config is not JSON: %v", err)
		}
		if raw, ok := cfg.Apps["sessiongate"]; ok {
			var app App
			if err := strictUnmarshal(raw, &app); err != nil {
				t.Fatalf("sessiongate app JSON %s: %v", raw, err)
			}
			_ = app.Validate()
		}
		handlers := 0
		for _, raw := range sessiongateHandlers(cfg.Apps["http"]) {
			handlers++
			var hh Handler
			if err := strictUnmarshal(raw, &hh); err != nil {
				t.Fatalf("handler JSON %s: %v", raw, err)
			}
			if err := validateProvisioned(&hh); err != nil {
				t.Fatalf("adapted handler %s fails Validate: %v", raw, err)
			}
		}
		if handlers == 0 {
			t.Fatalf("the Caddyfile adapted without its sessiongate handler: %s", out)
		}
	})
}

// dispenser tokenizes input as the adapter does; false on a lexing error
// (an unterminated quote), which the adapter reports. Not
// caddyfile.NewTestDispenser: it calls log.Fatal on such input, ending the
// fuzzing process.
func dispenser(input string) (*caddyfile.Dispenser, bool) {
	tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
	return caddyfile.NewDispenser(tokens), err == nil
}

// validateProvisioned runs Validate as Caddy does, after Provision has
// filled in the default identity prefix (Provision itself needs a running
// app).
func validateProvisioned(h *Handler) error {
	if h.IdentityPrefix == "" {
		h.IdentityPrefix = "X-Auth-"
	}
	return h.Validate()
}

// strictUnmarshal decodes raw into v, refusing members v does not have:
// the adapter must only emit fields the module knows.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// sessiongateHandlers walks the http app's JSON and returns every handler
// object whose "handler" is "sessiongate", with that member removed (it
// names the module; it is not a field of Handler).
func sessiongateHandlers(raw json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "sessiongate" {
				delete(x, "handler")
				b, _ := json.Marshal(x)
				out = append(out, b)
				return
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	var v any
	if json.Unmarshal(raw, &v) == nil {
		walk(v)
	}
	return out
}

// adminStatuses are the answers a user-create may give for client input:
// never a 5xx (the store is healthy, the hashing pool idle).
var adminStatuses = map[int]bool{201: true, 400: true, 409: true, 413: true, 415: true}

// FuzzAdminCreateUser (SEC-38, SEC-44, SEC-46) posts any body under any
// Content-Type to POST /sessiongate/users, served as Caddy's admin
// endpoint serves it. Every error is a caddy.APIError with one of
// adminStatuses (no 5xx, no panic); no answer holds a password, a hash or
// a public key from the body (beyond the fixed answer texts, the body's
// member names, which a refusal may name, and the body's own email,
// username and account number, which a created user shows); and a created
// user exists afterwards, with has_password as the body said.
func FuzzAdminCreateUser(f *testing.F) {
	f.Add([]byte(`{"email":"new@example.com","password":"a new password"}`), "application/json")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	f.Cleanup(cancel)
	staticHash := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs"
	app := &App{Store: &StoreConfig{Backend: "memory"}, Hash: cheapHash,
		Users: []UserConfig{{ID: 1, Email: "static@example.com", Username: "static", PasswordHash: staticHash}}}
	if err := app.Provision(ctx); err != nil {
		f.Fatalf("provision: %v", err)
	}
	f.Cleanup(func() { app.Cleanup() })
	// One audit line per created user would bury the fuzzer's own output.
	app.obs.audit = zap.NewNop()
	api := &adminAPI{find: func() *App { return app }}
	var create caddy.AdminHandler
	for _, rt := range api.Routes() {
		if rt.Pattern == "POST /sessiongate/users" {
			create = rt.Handler
		}
	}
	// post serves the route as Caddy's admin endpoint does (see
	// caddyAdminLike): a returned error must be a caddy.APIError, written as
	// {"error": message}.
	post := func(tb testing.TB, body []byte, ct string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/sessiongate/users", bytes.NewReader(body))
		if ct != "" {
			r.Header["Content-Type"] = []string{ct}
		}
		w := httptest.NewRecorder()
		err := create.ServeHTTP(w, r)
		if err == nil {
			return w
		}
		ae, ok := err.(caddy.APIError)
		if !ok {
			tb.Fatalf("the handler returned %T, not caddy.APIError (Caddy answers 500): %v", err, err)
		}
		if ae.Message == "" && ae.Err != nil {
			ae.Message = ae.Err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ae.HTTPStatus)
		_ = json.NewEncoder(w).Encode(ae)
		return w
	}
	var vocab strings.Builder
	for _, p := range []struct{ body, ct string }{
		{"", ""}, {"{", "application/json"}, {`{"x":1}`, "application/json"}, {`{"id":-1}`, "application/json"},
		{`{"email":1}`, "application/json"}, {`{"public_keys":[1]}`, "application/json"}, {`{}`, "application/json"},
		{`{"public_keys":["AAAA"]}`, "application/json"}, {`{"email":"static@example.com","password":"p"}`, "application/json"},
		{`{"id":1,"password":"p"}`, "application/json"}, {`{"password":"p","password_hash":"h"}`, "application/json"},
		{`{"password_hash":"h"}`, "application/json"}, {`{"email":"not an email"}`, "application/json"},
		{`{"username":"u\u0000"}`, "application/json"}, {`{"email":"a","email":"b"}`, "application/json"},
		{strings.Repeat(" ", maxAdminBody+1), "application/json"},
	} {
		w := post(f, []byte(p.body), p.ct)
		vocab.WriteString(adminAnswerText(w))
		vocab.WriteByte(0)
	}
	fixed := vocab.String()

	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		w := post(t, body, ct)
		text := adminAnswerText(w)
		if !adminStatuses[w.Code] {
			t.Fatalf("status %d for body %q, Content-Type %q: %s", w.Code, body, ct, text)
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(body, &m)
		str := func(name string) string {
			var s string
			_ = json.Unmarshal(m[name], &s)
			return s
		}
		shown := []string{str("email"), str("username"), str("account_number")}
		for k := range m {
			shown = append(shown, k)
		}
		secrets := []string{staticHash, "$argon2id$", str("password"), str("password_hash")}
		var keys []string
		_ = json.Unmarshal(m["public_keys"], &keys)
		secrets = append(secrets, keys...)
	secret:
		for _, s := range secrets {
			if len(s) < 8 || !strings.Contains(text, s) || strings.Contains(fixed, s) {
				continue
			}
			for _, v := range shown {
				if strings.Contains(v, s) {
					continue secret
				}
			}
			t.Fatalf("the answer repeats the secret %q: %s", s, text)
		}
		if w.Code != http.StatusCreated {
			return
		}
		var v userView
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("201 answer %q: %v", w.Body.Bytes(), err)
		}
		if loc := w.Header().Get("Location"); loc != "/sessiongate/users/"+strconv.FormatInt(v.ID, 10) {
			t.Fatalf("Location %q for user %d", loc, v.ID)
		}
		acct, err := app.Manager().Account(context.Background(), v.ID)
		if err != nil {
			t.Fatalf("created user %d cannot be read back: %v", v.ID, err)
		}
		if hasPW := str("password") != "" || str("password_hash") != ""; v.HasPassword != hasPW || (acct.User.PasswordHash != "") != hasPW {
			t.Fatalf("has_password %v, stored hash %v, for body %q", v.HasPassword, acct.User.PasswordHash != "", body)
		}
	})
}

// adminAnswerText is an admin answer's header fields and body as one text.
func adminAnswerText(w *httptest.ResponseRecorder) string {
	var b strings.Builder
	_ = w.Result().Header.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.Body.Bytes())
	return b.String()
}
