package rfc9421_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// TestWireExample pins the signature base of WIRE.md's native example.
func TestWireExample(t *testing.T) {
	in := `sig1=("@method" "@authority" "@path" "@query");created=1700000000;keyid="4200100";nonce="n-1"`
	base, err := rfc9421.SignatureBase(getReq(), []string{in}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := `"@method": GET
"@authority": 127.0.0.1:8080
"@path": /entities
"@query": ?x=1
"@signature-params": ("@method" "@authority" "@path" "@query");created=1700000000;keyid="4200100";nonce="n-1"`
	if string(base) != want {
		t.Fatalf("base:\n%s\nwant:\n%s", base, want)
	}
	// Sign produces exactly that Signature-Input.
	got, _, err := rfc9421.Sign(getReq(), rfc9421.HMACKey([]byte(apiKey)), hmacParams(defaultComponents))
	if err != nil {
		t.Fatal(err)
	}
	if got != in {
		t.Fatalf("Sign Signature-Input = %s, want %s", got, in)
	}
}

// TestRoundTrip: what Sign produces, Verify accepts under the default
// policy, for both algorithms, with and without a body.
func TestRoundTrip(t *testing.T) {
	edSigner := rfc9421.Ed25519Signer(edKey)
	tests := []struct {
		name       string
		req        rfc9421.Request
		key        rfc9421.Key
		keyID      string
		alg        rfc9421.Algorithm
		components []string
		digest     bool
	}{
		{"hmac GET", getReq(), rfc9421.HMACKey([]byte(apiKey)), sessionID, "", defaultComponents, false},
		{"hmac GET with alg", getReq(), rfc9421.HMACKey([]byte(apiKey)), sessionID, rfc9421.AlgHMACSHA256, defaultComponents, false},
		{"hmac POST", postReq(t, "/entities", `{"a":1}`), rfc9421.HMACKey([]byte(apiKey)), sessionID, "", bodyComponents, true},
		{"ed25519 GET", getReq(), edSigner, edKeyID, "", defaultComponents, false},
		{"ed25519 POST with alg", postReq(t, "/entities?page=2", "[]"), edSigner, edKeyID, rfc9421.AlgEd25519, bodyComponents, true},
		{"every derived component", getReq(), rfc9421.HMACKey([]byte(apiKey)), sessionID, "",
			[]string{"@request-target", "@target-uri", "@scheme", "@method", "@authority", "@path", "@query"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := rfc9421.SignParams{KeyID: tc.keyID, Alg: tc.alg, Components: tc.components,
				Created: now.Add(-2 * time.Second), Nonce: "abc", Tag: "app"}
			res, err := verify(signed(t, tc.req, tc.key, sp))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.KeyID != tc.keyID || res.Nonce != "abc" || res.Tag != "app" || res.Label != "sig1" ||
				!slices.Equal(res.Components, tc.components) || res.CoversDigest != tc.digest ||
				res.Skew != -2*time.Second || !res.Created.Equal(now.Add(-2*time.Second)) {
				t.Fatalf("result = %+v", res)
			}
			if res.Key.Alg != tc.key.Alg {
				t.Fatalf("resolved key alg = %s", res.Key.Alg)
			}
		})
	}
}

// sigWith puts raw header values on the GET request: Signature-Input in,
// and a well-formed 32-byte Signature under label sig1.
func sigWith(in ...string) rfc9421.Request {
	r := getReq()
	r.Header[rfc9421.HeaderSignatureInput] = in
	r.Header.Set(rfc9421.HeaderSignature, "sig1=:"+strings.Repeat("A", 43)+"=:")
	return r
}

const okParams = `;created=1700000000;keyid="4200100";nonce="n"`
const okList = `("@method" "@authority" "@path" "@query")`

// TestRefusals covers every refusal code with the input that triggers it.
func TestRefusals(t *testing.T) {
	key := rfc9421.HMACKey([]byte(apiKey))
	wrongKey := rfc9421.HMACKey([]byte(apiKey + "x"))
	withParams := func(mut func(*rfc9421.SignParams)) rfc9421.Request {
		sp := hmacParams(defaultComponents)
		mut(&sp)
		return signed(t, getReq(), key, sp)
	}
	tests := []struct {
		name    string
		req     rfc9421.Request
		policy  *rfc9421.Policy
		code    rfc9421.Code
		missing []string
	}{
		{"no headers", getReq(), nil, rfc9421.CodeMissingSignature, nil},
		{"only Signature-Input", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Del(rfc9421.HeaderSignature)
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"only Signature", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Del(rfc9421.HeaderSignatureInput)
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"unterminated inner list", sigWith(`sig1=("@method"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"trailing comma", sigWith(`sig1=` + okList + okParams + `,`), nil, rfc9421.CodeMalformedSignature, nil},
		{"member is an item", sigWith(`sig1="@method"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"component is a token", sigWith(`sig1=(@method)` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"component is an integer", sigWith(`sig1=(1)` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"component parameter", sigWith(`sig1=("@method";req "@authority" "@path" "@query")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"sf component parameter", sigWith(`sig1=("@method" "@authority" "@path" "@query" "accept";sf)` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"upper-case field", sigWith(`sig1=("@method" "@authority" "@path" "@query" "Accept")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"field name with space", sigWith(`sig1=("@method" "@authority" "@path" "@query" "x y")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"empty component", sigWith(`sig1=("@method" "@authority" "@path" "@query" "")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"unknown derived", sigWith(`sig1=("@method" "@authority" "@path" "@query" "@host")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"@status on a request", sigWith(`sig1=("@method" "@authority" "@path" "@query" "@status")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"@query-param", sigWith(`sig1=("@method" "@authority" "@path" "@query" "@query-param")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"@signature-params covered", sigWith(`sig1=("@method" "@authority" "@path" "@query" "@signature-params")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"duplicate component", sigWith(`sig1=("@method" "@authority" "@path" "@query" "@method")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"created is a string", sigWith(`sig1=` + okList + `;created="1700000000";keyid="4200100";nonce="n"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"created is a decimal", sigWith(`sig1=` + okList + `;created=1.5;keyid="4200100";nonce="n"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"created is negative", sigWith(`sig1=` + okList + `;created=-1;keyid="4200100";nonce="n"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"expires before created", sigWith(`sig1=` + okList + okParams + `;expires=1699999999`), nil, rfc9421.CodeMalformedSignature, nil},
		{"keyid is an integer", sigWith(`sig1=` + okList + `;created=1700000000;keyid=4200100;nonce="n"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"keyid empty", sigWith(`sig1=` + okList + `;created=1700000000;keyid="";nonce="n"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"nonce is a token", sigWith(`sig1=` + okList + `;created=1700000000;keyid="4200100";nonce=n`), nil, rfc9421.CodeMalformedSignature, nil},
		{"nonce too long", sigWith(`sig1=` + okList + `;created=1700000000;keyid="4200100";nonce="` + strings.Repeat("n", rfc9421.MaxParamLen+1) + `"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"two signatures, no label configured", sigWith(`sig1=`+okList+okParams, `sig2=`+okList+okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"configured label absent", sigWith(`sig1=` + okList + okParams), &rfc9421.Policy{Label: "gw"}, rfc9421.CodeMalformedSignature, nil},
		{"Signature lacks the label", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, "other=:"+strings.Repeat("A", 43)+"=:")
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"Signature is a string", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, `sig1="abc"`)
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"Signature is an inner list", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, `sig1=(:AAAA:)`)
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"Signature base64 without padding", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, "sig1=:"+strings.Repeat("A", 43)+":")
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"SEC-35 non-canonical base64 tail", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, nonCanonical(t, r.Header.Get(rfc9421.HeaderSignature)))
			return r
		}(), nil, rfc9421.CodeMalformedSignature, nil},
		{"covered field absent", sigWith(`sig1=("@method" "@authority" "@path" "@query" "x-custom")` + okParams), nil, rfc9421.CodeMalformedSignature, nil},
		{"oversize field", sigWith(`sig1=` + okList + okParams + `;tag="` + strings.Repeat("t", rfc9421.MaxFieldBytes) + `"`), nil, rfc9421.CodeMalformedSignature, nil},
		{"too many components", sigWith(`sig1=(` + manyComponents(rfc9421.MaxComponents+1) + `)` + okParams), nil, rfc9421.CodeMalformedSignature, nil},

		{"no @query", hmacSigned(t, getReq(), []string{"@method", "@authority", "@path"}), nil,
			rfc9421.CodeInsufficientCoverage, []string{"@query"}},
		{"nothing covered", hmacSigned(t, getReq(), nil), nil,
			rfc9421.CodeInsufficientCoverage, []string{"@method", "@authority", "@path", "@query"}},
		{"body without digest and type", hmacSigned(t, postReq(t, "/entities", "{}"), defaultComponents), nil,
			rfc9421.CodeInsufficientCoverage, []string{"content-digest", "content-type"}},
		{"no nonce", withParams(func(sp *rfc9421.SignParams) { sp.Nonce = "" }), nil,
			rfc9421.CodeInsufficientCoverage, []string{"nonce"}},
		{"no created", withParams(func(sp *rfc9421.SignParams) { sp.Created = time.Time{} }), nil,
			rfc9421.CodeInsufficientCoverage, []string{"created"}},
		{"no keyid", sigWith(`sig1=` + okList + `;created=1700000000;nonce="n"`), nil,
			rfc9421.CodeInsufficientCoverage, []string{"keyid"}},
		{"custom policy wants content-type", hmacSigned(t, getReq(), defaultComponents),
			&rfc9421.Policy{Components: []string{"@method", "accept"}}, rfc9421.CodeInsufficientCoverage, []string{"accept"}},

		{"unknown alg", sigWith(`sig1=` + okList + okParams + `;alg="rsa-pss-sha512"`), nil, rfc9421.CodeUnsupportedAlgorithm, nil},
		{"alg does not match the key", sigWith(`sig1=` + okList + okParams + `;alg="ed25519"`), nil, rfc9421.CodeUnsupportedAlgorithm, nil},

		{"created 6s ahead", withParams(func(sp *rfc9421.SignParams) { sp.Created = now.Add(6 * time.Second) }), nil, rfc9421.CodeClockSkew, nil},
		{"created 301s old", withParams(func(sp *rfc9421.SignParams) { sp.Created = now.Add(-301 * time.Second) }), nil, rfc9421.CodeClockSkew, nil},
		{"created in 1970", withParams(func(sp *rfc9421.SignParams) { sp.Created = time.Unix(1, 0) }), nil, rfc9421.CodeClockSkew, nil},
		{"created far ahead, would wrap a Duration", withParams(func(sp *rfc9421.SignParams) { sp.Created = time.Unix(20146744074, 0) }),
			nil, rfc9421.CodeClockSkew, nil},
		{"created at the sf-integer maximum", sigWith(`sig1=` + okList + `;keyid="4200100";nonce="n";created=999999999999999`),
			nil, rfc9421.CodeClockSkew, nil},
		{"custom future window", withParams(func(sp *rfc9421.SignParams) { sp.Created = now.Add(2 * time.Second) }),
			&rfc9421.Policy{FutureWindow: time.Second}, rfc9421.CodeClockSkew, nil},

		{"expires now", withParams(func(sp *rfc9421.SignParams) { sp.Expires = now }), nil, rfc9421.CodeExpired, nil},
		{"expired earlier", withParams(func(sp *rfc9421.SignParams) {
			sp.Created = now.Add(-10 * time.Second)
			sp.Expires = now.Add(-time.Second)
		}), nil, rfc9421.CodeExpired, nil},

		{"unknown keyid", withParams(func(sp *rfc9421.SignParams) { sp.KeyID = "999" }), nil, rfc9421.CodeUnknownKey, nil},

		{"wrong key", signed(t, getReq(), wrongKey, hmacParams(defaultComponents)), nil, rfc9421.CodeBadSignature, nil},
		{"SEC-21 hmac signature 31 bytes", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, "sig1=:"+b64Of(make([]byte, 31))+":")
			return r
		}(), nil, rfc9421.CodeBadSignature, nil},
		{"SEC-21 hmac signature 64 bytes", func() rfc9421.Request {
			r := hmacSigned(t, getReq(), defaultComponents)
			r.Header.Set(rfc9421.HeaderSignature, "sig1=:"+b64Of(make([]byte, 64))+":")
			return r
		}(), nil, rfc9421.CodeBadSignature, nil},
		{"SEC-21 ed25519 signature 63 bytes", func() rfc9421.Request {
			sp := hmacParams(defaultComponents)
			sp.KeyID = edKeyID
			r := signed(t, getReq(), rfc9421.Ed25519Signer(edKey), sp)
			r.Header.Set(rfc9421.HeaderSignature, "sig1=:"+b64Of(make([]byte, 63))+":")
			return r
		}(), nil, rfc9421.CodeBadSignature, nil},
		{"ed25519 signature by another key", func() rfc9421.Request {
			sp := hmacParams(defaultComponents)
			sp.KeyID = edKeyID
			other := rfc9421.Ed25519Signer(newEdKey(t))
			return signed(t, getReq(), other, sp)
		}(), nil, rfc9421.CodeBadSignature, nil},
		{"hmac keyid with an ed25519 signature", func() rfc9421.Request {
			r := signed(t, getReq(), rfc9421.Ed25519Signer(edKey), hmacParams(defaultComponents))
			return r
		}(), nil, rfc9421.CodeBadSignature, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := rfc9421.DefaultPolicy()
			if tc.policy != nil {
				p = *tc.policy
			}
			res, err := rfc9421.Verify(context.Background(), tc.req, resolver, p, now)
			if res != nil {
				t.Fatalf("got a result with error %v", err)
			}
			e := wantCode(t, err, tc.code)
			if tc.missing != nil && !slices.Equal(e.Missing, tc.missing) {
				t.Fatalf("missing = %q, want %q", e.Missing, tc.missing)
			}
			if !errors.Is(err, &rfc9421.Error{Code: tc.code}) {
				t.Fatalf("errors.Is does not match the code")
			}
			if strings.Contains(err.Error(), apiKey) {
				t.Fatal("error text holds the key")
			}
		})
	}
}

// nonCanonical respells a one-member Signature field "label=:…=:" of a
// 32-byte value by setting an unused low bit of its last base64 character:
// the same bytes under a lenient decoder.
func nonCanonical(t *testing.T, field string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(field) - 3 // before "=:"
	if field[i+1] != '=' {
		t.Fatalf("unexpected field shape %q", field)
	}
	v := strings.IndexByte(alphabet, field[i])
	return field[:i] + string(alphabet[v^1]) + field[i+1:]
}

func manyComponents(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`"x-h` + strings.Repeat("a", i) + `"`)
	}
	return b.String()
}

// TestClockSkew (SEC-22): the windows are inclusive at 300 s past and 5 s
// ahead, exclusive one second beyond; refusals carry the skew and the
// server's time so a client can correct itself.
func TestClockSkew(t *testing.T) {
	tests := []struct {
		offset time.Duration
		ok     bool
	}{
		{0, true}, {5 * time.Second, true}, {6 * time.Second, false},
		{-300 * time.Second, true}, {-301 * time.Second, false},
	}
	for _, tc := range tests {
		sp := hmacParams(defaultComponents)
		sp.Created = now.Add(tc.offset)
		r := signed(t, getReq(), rfc9421.HMACKey([]byte(apiKey)), sp)
		// Sub-second server time does not move the window: the check is
		// in whole seconds, like created.
		res, err := rfc9421.Verify(context.Background(), r, resolver, rfc9421.DefaultPolicy(), now.Add(900*time.Millisecond))
		if tc.ok {
			if err != nil {
				t.Fatalf("offset %v: %v", tc.offset, err)
			}
			if res.Skew != tc.offset {
				t.Fatalf("offset %v: skew %v", tc.offset, res.Skew)
			}
			continue
		}
		e := wantCode(t, err, rfc9421.CodeClockSkew)
		if e.Skew != tc.offset || !e.ServerTime.Equal(now) {
			t.Fatalf("offset %v: skew %v, server time %v", tc.offset, e.Skew, e.ServerTime)
		}
		if e.Status() != http.StatusUnauthorized {
			t.Fatalf("status %d", e.Status())
		}
	}
}

// TestExpires: expires is honoured unless the policy ignores it.
func TestExpires(t *testing.T) {
	sp := hmacParams(defaultComponents)
	sp.Expires = now.Add(time.Second)
	r := signed(t, getReq(), rfc9421.HMACKey([]byte(apiKey)), sp)
	if _, err := verify(r); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	_, err := rfc9421.Verify(context.Background(), r, resolver, rfc9421.DefaultPolicy(), now.Add(time.Second))
	wantCode(t, err, rfc9421.CodeExpired)
	if _, err := rfc9421.Verify(context.Background(), r, resolver, rfc9421.Policy{IgnoreExpires: true}, now.Add(time.Second)); err != nil {
		t.Fatalf("IgnoreExpires: %v", err)
	}
}

// TestResolverFaults: a store that cannot answer is not a refusal (REL-01:
// the caller answers 503), and key material of the wrong size is a server
// fault, never a panic (crypto/ed25519 panics on a wrong-length key,
// SEC-30).
func TestResolverFaults(t *testing.T) {
	for _, id := range []string{"down", "short-ed25519", "empty-hmac"} {
		sp := hmacParams(defaultComponents)
		sp.KeyID = id
		_, err := verify(signed(t, getReq(), rfc9421.HMACKey([]byte(apiKey)), sp))
		if err == nil {
			t.Fatalf("%s: verified", id)
		}
		if _, ok := rfc9421.AsError(err); ok {
			t.Fatalf("%s: %v is a refusal, want a server fault", id, err)
		}
		if id == "down" && !errors.Is(err, errStoreDown) {
			t.Fatalf("%s: %v does not wrap the store error", id, err)
		}
	}
	// A resolver may refuse with its own *Error; it is passed through.
	own := rfc9421.KeyResolverFunc(func(context.Context, string) (rfc9421.Key, error) {
		return rfc9421.Key{}, &rfc9421.Error{Code: rfc9421.CodeUnknownKey, Detail: "session expired"}
	})
	_, err := rfc9421.Verify(context.Background(), hmacSigned(t, getReq(), defaultComponents), own, rfc9421.DefaultPolicy(), now)
	if e := wantCode(t, err, rfc9421.CodeUnknownKey); e.Detail != "session expired" {
		t.Fatalf("detail %q", e.Detail)
	}
}

// TestNoLookupBeforeSyntax (SEC-36): refusals that need no key never
// reach the resolver, so malformed, uncovered or stale requests cost no
// store access.
func TestNoLookupBeforeSyntax(t *testing.T) {
	calls := 0
	counting := rfc9421.KeyResolverFunc(func(ctx context.Context, id string) (rfc9421.Key, error) {
		calls++
		return resolver(ctx, id)
	})
	reqs := []rfc9421.Request{
		sigWith(`sig1=("@method"`),
		hmacSigned(t, getReq(), []string{"@method"}),
		sigWith(`sig1=` + okList + okParams + `;alg="none"`),
		sigWith(`sig1=("@method" "@authority" "@path" "@query" "x-absent")` + okParams),
		func() rfc9421.Request {
			sp := hmacParams(defaultComponents)
			sp.Created = now.Add(time.Hour)
			return signed(t, getReq(), rfc9421.HMACKey([]byte(apiKey)), sp)
		}(),
	}
	for i, r := range reqs {
		if _, err := rfc9421.Verify(context.Background(), r, counting, rfc9421.DefaultPolicy(), now); err == nil {
			t.Fatalf("request %d verified", i)
		}
	}
	if calls != 0 {
		t.Fatalf("resolver called %d times", calls)
	}
}

// TestMutations (SEC-20, SEC-25, SEC-26, SEC-28): changing any covered part
// of a signed request after signing is refused.
func TestMutations(t *testing.T) {
	const body = `{"name":"Acme"}`
	base := hmacSigned(t, postReq(t, "/a%2Fb?x=1", body), bodyComponents)
	if _, err := verify(base); err != nil {
		t.Fatalf("unmutated: %v", err)
	}
	otherDigest, _ := rfc9421.ContentDigest(rfc9421.DigestSHA256, []byte(`{"name":"Evil"}`))
	tests := []struct {
		name string
		mut  func(r *rfc9421.Request)
	}{
		{"method POST→PUT", func(r *rfc9421.Request) { r.Method = "PUT" }},
		{"method POST→post", func(r *rfc9421.Request) { r.Method = "post" }},
		{"authority", func(r *rfc9421.Request) { r.Authority = "127.0.0.1:8081" }},
		{"SEC-28 decoded path", func(r *rfc9421.Request) { r.Target = "/a/b?x=1" }},
		{"SEC-28 lower-case escape", func(r *rfc9421.Request) { r.Target = "/a%2fb?x=1" }},
		{"SEC-28 dot segment", func(r *rfc9421.Request) { r.Target = "/./a%2Fb?x=1" }},
		{"SEC-28 double slash", func(r *rfc9421.Request) { r.Target = "//a%2Fb?x=1" }},
		{"SEC-28 case", func(r *rfc9421.Request) { r.Target = "/A%2Fb?x=1" }},
		{"SEC-25 query value", func(r *rfc9421.Request) { r.Target = "/a%2Fb?x=2" }},
		{"SEC-25 query added", func(r *rfc9421.Request) { r.Target = "/a%2Fb?x=1&role=admin" }},
		{"SEC-25 query dropped", func(r *rfc9421.Request) { r.Target = "/a%2Fb" }},
		{"SEC-26 byte moved from query to path", func(r *rfc9421.Request) { r.Target = "/a%2Fbx=1?" }},
		{"content-type", func(r *rfc9421.Request) { r.Header.Set("Content-Type", "text/plain") }},
		{"content-digest", func(r *rfc9421.Request) { r.Header.Set("Content-Digest", otherDigest) }},
		{"content-type added line", func(r *rfc9421.Request) { r.Header.Add("Content-Type", "text/plain") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Header = base.Header.Clone()
			tc.mut(&r)
			_, err := verify(r)
			wantCode(t, err, rfc9421.CodeBadSignature)
		})
	}
}

// TestSEC25MethodAndQuery: a signature for GET /api/x does not authorise
// DELETE /api/x or /api/x?role=admin.
func TestSEC25MethodAndQuery(t *testing.T) {
	req := getReq()
	req.Target = "/api/x"
	r := hmacSigned(t, req, defaultComponents)
	if _, err := verify(r); err != nil {
		t.Fatal(err)
	}
	del := r
	del.Method = "DELETE"
	_, err := verify(del)
	wantCode(t, err, rfc9421.CodeBadSignature)
	q := r
	q.Target = "/api/x?role=admin"
	_, err = verify(q)
	wantCode(t, err, rfc9421.CodeBadSignature)
}

// TestSEC26BodyBoundary: sign POST /a with body "bc"; POST /ab with body "c"
// and the same headers is refused, by the signature (path) and by the
// digest (body).
func TestSEC26BodyBoundary(t *testing.T) {
	r := hmacSigned(t, postReq(t, "/a", "bc"), bodyComponents)
	if _, err := verify(r); err != nil {
		t.Fatal(err)
	}
	moved := r
	moved.Target = "/ab"
	_, err := verify(moved)
	wantCode(t, err, rfc9421.CodeBadSignature)
	err = rfc9421.VerifyContentDigest(r.Header["Content-Digest"], []byte("c"))
	wantCode(t, err, rfc9421.CodeBadSignature)
}

// TestSEC20BitFlips flips every bit of the Signature-Input, Signature,
// method, authority and target of a valid request: nothing verifies.
func TestSEC20BitFlips(t *testing.T) {
	for _, alg := range []string{"hmac", "ed25519"} {
		var r rfc9421.Request
		if alg == "hmac" {
			r = hmacSigned(t, postReq(t, "/entities?x=1", `{"a":1}`), bodyComponents)
		} else {
			sp := hmacParams(bodyComponents)
			sp.KeyID = edKeyID
			r = signed(t, postReq(t, "/entities?x=1", `{"a":1}`), rfc9421.Ed25519Signer(edKey), sp)
		}
		if _, err := verify(r); err != nil {
			t.Fatal(err)
		}
		fields := []struct {
			name string
			get  func(rfc9421.Request) string
			set  func(*rfc9421.Request, string)
		}{
			{"Signature-Input", func(r rfc9421.Request) string { return r.Header.Get(rfc9421.HeaderSignatureInput) },
				func(r *rfc9421.Request, v string) { r.Header.Set(rfc9421.HeaderSignatureInput, v) }},
			{"Signature", func(r rfc9421.Request) string { return r.Header.Get(rfc9421.HeaderSignature) },
				func(r *rfc9421.Request, v string) { r.Header.Set(rfc9421.HeaderSignature, v) }},
			{"Content-Digest", func(r rfc9421.Request) string { return r.Header.Get("Content-Digest") },
				func(r *rfc9421.Request, v string) { r.Header.Set("Content-Digest", v) }},
			{"method", func(r rfc9421.Request) string { return r.Method }, func(r *rfc9421.Request, v string) { r.Method = v }},
			{"authority", func(r rfc9421.Request) string { return r.Authority }, func(r *rfc9421.Request, v string) { r.Authority = v }},
			{"target", func(r rfc9421.Request) string { return r.Target }, func(r *rfc9421.Request, v string) { r.Target = v }},
		}
		tried := 0
		for _, f := range fields {
			orig := f.get(r)
			for i := 0; i < len(orig); i++ {
				for bit := 0; bit < 8; bit++ {
					b := []byte(orig)
					b[i] ^= 1 << bit
					m := r
					m.Header = r.Header.Clone()
					f.set(&m, string(b))
					tried++
					if res, err := verify(m); err == nil {
						if f.name == "authority" && strings.EqualFold(string(b), orig) {
							continue // case of the host is normalised away, by design
						}
						t.Fatalf("%s: %s byte %d bit %d verified: %+v", alg, f.name, i, bit, res)
					}
				}
			}
		}
		if tried < 1500 {
			t.Fatalf("%s: only %d mutations tried", alg, tried)
		}
	}
}

// TestReplay (SEC-23): a verified signature's (keyid, nonce) is accepted
// once; the mark outlives every time the signature could still be accepted.
func TestReplay(t *testing.T) {
	p := rfc9421.DefaultPolicy()
	clock := newClock(now.Add(-p.FutureWindow)) // the earliest instant the signature is accepted
	guard := newGuard(clock)
	r := hmacSigned(t, getReq(), defaultComponents)

	res, err := rfc9421.Verify(context.Background(), r, resolver, p, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := rfc9421.CheckReplay(context.Background(), guard, res, p); err != nil {
		t.Fatalf("first use: %v", err)
	}
	// The last instant the signature is still within the past window.
	clock.Set(now.Add(p.PastWindow + 999*time.Millisecond))
	res, err = rfc9421.Verify(context.Background(), r, resolver, p, clock.Now())
	if err != nil {
		t.Fatalf("still inside the window: %v", err)
	}
	wantCode(t, rfc9421.CheckReplay(context.Background(), guard, res, p), rfc9421.CodeReplay)
	// A new nonce is a new request.
	sp := hmacParams(defaultComponents)
	sp.Nonce = "n-2"
	res2, err := rfc9421.Verify(context.Background(), signed(t, getReq(), rfc9421.HMACKey([]byte(apiKey)), sp), resolver, p, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := rfc9421.CheckReplay(context.Background(), guard, res2, p); err != nil {
		t.Fatalf("new nonce: %v", err)
	}
	// The same nonce under another key is another pair.
	sp.KeyID, sp.Nonce = edKeyID, testNonce
	res3, err := rfc9421.Verify(context.Background(), signed(t, getReq(), rfc9421.Ed25519Signer(edKey), sp), resolver, p, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := rfc9421.CheckReplay(context.Background(), guard, res3, p); err != nil {
		t.Fatalf("same nonce, other key: %v", err)
	}
	// One second later the signature is stale whatever the guard says.
	clock.Set(now.Add(p.PastWindow + time.Second))
	_, err = rfc9421.Verify(context.Background(), r, resolver, p, clock.Now())
	wantCode(t, err, rfc9421.CodeClockSkew)
	// A guard that fails is not a refusal.
	if err := rfc9421.CheckReplay(context.Background(), failingGuard{}, res, p); err == nil || errors.Is(err, rfc9421.ErrReplay) {
		t.Fatalf("failing guard: %v", err)
	}
}

// TestReplayKey: distinct (keyid, nonce) pairs get distinct keys even when
// their concatenations coincide, and no nonce means no key.
func TestReplayKey(t *testing.T) {
	a := (&rfc9421.Result{KeyID: "12", Nonce: "3"}).ReplayKey()
	b := (&rfc9421.Result{KeyID: "1", Nonce: "23"}).ReplayKey()
	if a == b || !strings.HasPrefix(a, "replay:") {
		t.Fatalf("keys %q %q", a, b)
	}
	if k := (&rfc9421.Result{KeyID: "1"}).ReplayKey(); k != "" {
		t.Fatalf("no nonce: %q", k)
	}
}

// TestSEC27DuplicateLabels pins RFC 8941's rule for a label sent twice
// (two field lines are one dictionary; the last member wins): the last one
// is what is verified, so a valid signature followed by junk is refused.
func TestSEC27DuplicateLabels(t *testing.T) {
	r := hmacSigned(t, getReq(), defaultComponents)
	valid := r.Header.Get(rfc9421.HeaderSignatureInput)
	junk := `sig1=("@method" "@authority" "@path" "@query");created=1700000000;keyid="4200100";nonce="other"`

	first := r
	first.Header = r.Header.Clone()
	first.Header[rfc9421.HeaderSignatureInput] = []string{valid, junk}
	_, err := verify(first)
	wantCode(t, err, rfc9421.CodeBadSignature)

	last := r
	last.Header = r.Header.Clone()
	last.Header[rfc9421.HeaderSignatureInput] = []string{junk, valid}
	if _, err := verify(last); err != nil {
		t.Fatalf("last member valid: %v", err)
	}
}

// TestAuthorityNormalisation: host case and the default port do not change
// the base; another port does.
func TestAuthorityNormalisation(t *testing.T) {
	req := getReq()
	req.Authority = "Example.COM"
	r := hmacSigned(t, req, defaultComponents)
	for _, a := range []string{"example.com", "EXAMPLE.com:80", "example.com:"} {
		m := r
		m.Authority = a
		if _, err := verify(m); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	for _, a := range []string{"example.com:8080", "example.org", "example.com:443"} {
		m := r
		m.Authority = a
		_, err := verify(m)
		wantCode(t, err, rfc9421.CodeBadSignature)
	}
	for _, a := range []string{"", "user@example.com", "exa mple.com", "example.com/x", "ex\u00e4mple.com"} {
		m := r
		m.Authority = a
		_, err := verify(m)
		wantCode(t, err, rfc9421.CodeMalformedSignature)
	}
}

// TestDerivedValues pins each derived component for origin-form and
// absolute-form targets.
func TestDerivedValues(t *testing.T) {
	tests := []struct {
		scheme, authority, target string
		want                      map[string]string
	}{
		{"https", "www.example.com:443", "/path?param=value", map[string]string{
			"@method": "GET", "@authority": "www.example.com", "@scheme": "https",
			"@target-uri": "https://www.example.com/path?param=value", "@request-target": "/path?param=value",
			"@path": "/path", "@query": "?param=value"}},
		{"http", "h:8080", "/p", map[string]string{"@path": "/p", "@query": "?", "@target-uri": "http://h:8080/p"}},
		{"http", "h", "/p?", map[string]string{"@query": "?", "@target-uri": "http://h/p?"}},
		{"http", "h", "/a%2Fb?q=%20x", map[string]string{"@path": "/a%2Fb", "@query": "?q=%20x"}},
		{"HTTP", "h", "http://h?x", map[string]string{"@path": "/", "@query": "?x", "@scheme": "http",
			"@request-target": "http://h?x", "@target-uri": "http://h/?x"}},
		{"http", "h", "http://h/z/y?a=b", map[string]string{"@path": "/z/y", "@query": "?a=b"}},
	}
	for _, tc := range tests {
		for comp, want := range tc.want {
			req := rfc9421.Request{Method: "GET", Scheme: tc.scheme, Authority: tc.authority, Target: tc.target, Header: http.Header{}}
			in := `sig1=("` + comp + `");keyid="k"`
			base, err := rfc9421.SignatureBase(req, []string{in}, "")
			if err != nil {
				t.Fatalf("%s %s: %v", tc.target, comp, err)
			}
			line, _, _ := strings.Cut(string(base), "\n")
			if line != `"`+comp+`": `+want {
				t.Fatalf("%s: got %q, want %q", tc.target, line, want)
			}
		}
	}
	for _, target := range []string{"", "*", "/a#frag", "/a b", "example.com/a"} {
		req := rfc9421.Request{Method: "GET", Scheme: "http", Authority: "h", Target: target, Header: http.Header{}}
		_, err := rfc9421.SignatureBase(req, []string{`sig1=("@path");keyid="k"`}, "")
		wantCode(t, err, rfc9421.CodeMalformedSignature)
	}
}

// TestHeaderValues: field lines are trimmed and joined with ", "; names are
// looked up case-insensitively through canonical keys.
func TestHeaderValues(t *testing.T) {
	req := getReq()
	req.Header["X-Multi"] = []string{" a ", "\tb", "c d"}
	req.Header.Set("Empty", "")
	base, err := rfc9421.SignatureBase(req, []string{`sig1=("x-multi" "empty");keyid="k"`}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "\"x-multi\": a, b, c d\n\"empty\": \n\"@signature-params\": (\"x-multi\" \"empty\");keyid=\"k\""
	if string(base) != want {
		t.Fatalf("got %q\nwant %q", base, want)
	}
	req.Header.Set("X-Bad", "a\nb")
	_, err = rfc9421.SignatureBase(req, []string{`sig1=("x-bad");keyid="k"`}, "")
	wantCode(t, err, rfc9421.CodeMalformedSignature)
	// A derived value cannot forge a line either.
	req.Method = "GET\n\"@authority\": evil"
	_, err = rfc9421.SignatureBase(req, []string{`sig1=("@method");keyid="k"`}, "")
	wantCode(t, err, rfc9421.CodeMalformedSignature)
}

// TestWhitespaceDoesNotChangeBase: optional whitespace in Signature-Input
// is re-serialised away (RFC 9421 §3.2), so the signature still verifies.
func TestWhitespaceDoesNotChangeBase(t *testing.T) {
	r := hmacSigned(t, getReq(), defaultComponents)
	in := r.Header.Get(rfc9421.HeaderSignatureInput)
	r.Header.Set(rfc9421.HeaderSignatureInput, "  "+strings.Replace(in, `"@method" "@authority"`, `"@method"   "@authority"`, 1)+" \t")
	if _, err := verify(r); err != nil {
		t.Fatal(err)
	}
}

// TestLabelSelection: with a configured label, the matching one of several
// signatures is verified.
func TestLabelSelection(t *testing.T) {
	sp := hmacParams(defaultComponents)
	sp.Label = "gw"
	r := signed(t, getReq(), rfc9421.HMACKey([]byte(apiKey)), sp)
	r.Header.Add(rfc9421.HeaderSignatureInput, `proxy=("@method");keyid="p"`)
	r.Header.Add(rfc9421.HeaderSignature, `proxy=:AAAA:`)
	res, err := rfc9421.Verify(context.Background(), r, resolver, rfc9421.Policy{Label: "gw"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Label != "gw" {
		t.Fatalf("label %q", res.Label)
	}
	_, err = verify(r)
	wantCode(t, err, rfc9421.CodeMalformedSignature)
}

// TestSignErrors: Sign refuses what it cannot serialise or what Verify
// would refuse.
func TestSignErrors(t *testing.T) {
	key := rfc9421.HMACKey([]byte(apiKey))
	tests := []struct {
		name string
		key  rfc9421.Key
		mut  func(*rfc9421.SignParams)
	}{
		{"no keyid", key, func(sp *rfc9421.SignParams) { sp.KeyID = "" }},
		{"alg mismatch", key, func(sp *rfc9421.SignParams) { sp.Alg = rfc9421.AlgEd25519 }},
		{"non-ASCII nonce", key, func(sp *rfc9421.SignParams) { sp.Nonce = "ñ" }},
		{"bad label", key, func(sp *rfc9421.SignParams) { sp.Label = "Sig" }},
		{"unknown derived", key, func(sp *rfc9421.SignParams) { sp.Components = []string{"@nope"} }},
		{"absent field", key, func(sp *rfc9421.SignParams) { sp.Components = []string{"x-absent"} }},
		{"duplicate", key, func(sp *rfc9421.SignParams) { sp.Components = []string{"@path", "@path"} }},
		{"empty hmac key", rfc9421.HMACKey(nil), func(*rfc9421.SignParams) {}},
		{"short ed25519 key", rfc9421.Ed25519Signer(edKey[:40]), func(*rfc9421.SignParams) {}},
		{"no algorithm", rfc9421.Key{Secret: []byte("k")}, func(*rfc9421.SignParams) {}},
	}
	for _, tc := range tests {
		sp := hmacParams(defaultComponents)
		tc.mut(&sp)
		if _, _, err := rfc9421.Sign(getReq(), tc.key, sp); err == nil {
			t.Fatalf("%s: signed", tc.name)
		}
	}
}

func TestStatus(t *testing.T) {
	tests := map[rfc9421.Code]int{
		rfc9421.CodeMissingSignature: 401, rfc9421.CodeMalformedSignature: 400, rfc9421.CodeUnknownKey: 401,
		rfc9421.CodeUnsupportedAlgorithm: 400, rfc9421.CodeInsufficientCoverage: 401, rfc9421.CodeClockSkew: 401,
		rfc9421.CodeExpired: 401, rfc9421.CodeBadSignature: 401, rfc9421.CodeReplay: 401,
	}
	for code, want := range tests {
		if got := (&rfc9421.Error{Code: code}).Status(); got != want {
			t.Errorf("%s: %d, want %d", code, got, want)
		}
	}
	e := &rfc9421.Error{Code: rfc9421.CodeInsufficientCoverage, Detail: "d", Missing: []string{"@query", "nonce"}}
	if e.Error() != "insufficient_coverage: d (missing: @query, nonce)" {
		t.Fatalf("Error() = %q", e.Error())
	}
}

// TestFromHTTP: the Request of a server-side request.
func TestFromHTTP(t *testing.T) {
	r, err := http.NewRequest("POST", "http://Example.com:8080/a%2Fb?x=1", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	r.RequestURI = "/a%2Fb?x=1"
	req := rfc9421.FromHTTP(r)
	if req.Method != "POST" || req.Scheme != "http" || req.Authority != "Example.com:8080" ||
		req.Target != "/a%2Fb?x=1" || !req.HasBody {
		t.Fatalf("%+v", req)
	}
	r.ContentLength = 0
	r.RequestURI = ""
	if req := rfc9421.FromHTTP(r); req.HasBody || req.Target != "/a%2Fb?x=1" {
		t.Fatalf("%+v", req)
	}
}
