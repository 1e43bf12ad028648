package rfc9421

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// SEC-38: fuzz targets for every parser of client input. Seeds are in
// testdata/fuzz/<target>; run one with
//
//	go test -run '^$' -fuzz '^FuzzSignatureInput$' -fuzztime 60s ./caddyauth/sign/rfc9421/

// mustBeRefusal fails unless err is nil or an *Error: a parser of client
// input has no other way to fail.
func mustBeRefusal(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a refusal", err, err)
	}
}

// FuzzSignatureInput: never panics; what it accepts re-serialises to a
// canonical form that parses back to the same components and parameters
// (the @signature-params round trip).
func FuzzSignatureInput(f *testing.F) {
	f.Add(`sig1=("@method" "@authority" "@path" "@query");created=1700000000;keyid="4200100";nonce="n-1"`)
	f.Add(`sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`)
	f.Add(`sig1=();keyid="k", sig2=("@path")`)
	f.Add(`sig1=("@method";req)`)
	f.Add(`sig1=("a" "a")`)
	f.Fuzz(func(t *testing.T, in string) {
		si, err := parseSignatureInput([]string{in}, "")
		mustBeRefusal(t, err)
		if err != nil {
			return
		}
		ps, err := si.paramsString()
		if err != nil {
			t.Fatalf("accepted %q but cannot serialise it: %v", in, err)
		}
		again, err := parseSignatureInput([]string{si.label + "=" + ps}, si.label)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", ps, in, err)
		}
		ps2, _ := again.paramsString()
		if ps2 != ps || !slices.Equal(again.components, si.components) || again.keyID != si.keyID ||
			again.nonce != si.nonce || again.created != si.created || again.expires != si.expires {
			t.Fatalf("round trip of %q changed it: %q → %q", in, ps, ps2)
		}
	})
}

// FuzzSignature: never panics; an accepted value is a byte sequence spelt
// canonically.
func FuzzSignature(f *testing.F) {
	f.Add(`sig1=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`)
	f.Add(`sig1=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE9=:`)
	f.Add(`sig1="x", sig1=:AAAA:`)
	f.Add(`sig1=:AAAA:;p=1`)
	f.Fuzz(func(t *testing.T, in string) {
		b, err := parseSignature([]string{in}, "sig1")
		mustBeRefusal(t, err)
		if err == nil && b == nil {
			t.Fatalf("accepted %q with no bytes", in)
		}
	})
}

// FuzzContentDigest: never panics; a digest accepted for a body is refused
// for that body with one more byte.
func FuzzContentDigest(f *testing.F) {
	f.Add(`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`, `{"hello": "world"}`)
	f.Add(`sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:`, `{"hello": "world"}`)
	f.Add(`md5=:AAAA:, sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:`, ``)
	f.Add(`sha-256=("x")`, `x`)
	f.Fuzz(func(t *testing.T, header, body string) {
		err := VerifyContentDigest([]string{header}, []byte(body))
		mustBeRefusal(t, err)
		if err == nil {
			if VerifyContentDigest([]string{header}, []byte(body+"x")) == nil {
				t.Fatalf("%q accepted for two different bodies", header)
			}
		}
	})
}

// fuzzKey is the only key FuzzVerify's resolver knows.
var fuzzKey = HMACKey([]byte("fuzz key"))

// FuzzVerify: never panics and never accepts a signature it did not make:
// arbitrary Signature-Input, Signature and request target against one
// key. Every failure is a refusal (the resolver cannot fail).
func FuzzVerify(f *testing.F) {
	f.Add(`sig1=("@method" "@authority" "@path" "@query");created=1700000000;keyid="1";nonce="n"`,
		`sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:`, "/entities?x=1")
	f.Add(`sig1=("@request-target" "@target-uri" "@scheme");created=1700000000;keyid="1";nonce="n";alg="hmac-sha256"`,
		`sig1=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`, "http://h/p?q")
	f.Add(`sig1=("x-h");keyid="1"`, `sig1=:AAAA:`, "*")
	resolver := KeyResolverFunc(func(_ context.Context, id string) (Key, error) {
		if id == "1" {
			return fuzzKey, nil
		}
		return Key{}, ErrUnknownKey
	})
	f.Fuzz(func(t *testing.T, sigInput, sig, target string) {
		req := Request{Method: "GET", Scheme: "http", Authority: "127.0.0.1:8080", Target: target,
			Header: http.Header{"X-H": {"v"}, HeaderSignatureInput: {sigInput}, HeaderSignature: {sig}}}
		res, err := Verify(context.Background(), req, resolver, Policy{}, time.Unix(1700000000, 0))
		mustBeRefusal(t, err)
		if err == nil {
			t.Fatalf("accepted a signature it did not make: %+v", res)
		}
		if res != nil {
			t.Fatal("result alongside an error")
		}
	})
}

// FuzzSignVerify: for any request Sign can sign, Verify accepts the result
// (the signature base is the same on both sides), and changing the method
// breaks it.
func FuzzSignVerify(f *testing.F) {
	f.Add("GET", "example.com", "/a%2Fb?x=1", "text/plain", "n-1")
	f.Add("POST", "Example.COM:443", "http://example.com/?", " v ", "x\"y")
	f.Add("DELETE", "[::1]:8080", "/", "", "\\")
	f.Fuzz(func(t *testing.T, method, authority, target, header, nonce string) {
		if nonce == "" {
			nonce = "n" // the default policy requires one; Sign omits an empty nonce
		}
		req := Request{Method: method, Scheme: "https", Authority: authority, Target: target,
			Header: http.Header{"X-H": {header}}}
		comps := []string{CompMethod, CompAuthority, CompPath, CompQuery, CompTargetURI, CompRequestTarget, "x-h"}
		now := time.Unix(1700000000, 0)
		in, sig, err := Sign(req, fuzzKey, SignParams{KeyID: "1", Components: comps, Created: now, Nonce: nonce})
		if err != nil {
			return
		}
		req.Header = req.Header.Clone()
		req.Header.Set(HeaderSignatureInput, in)
		req.Header.Set(HeaderSignature, sig)
		resolver := KeyResolverFunc(func(context.Context, string) (Key, error) { return fuzzKey, nil })
		res, err := Verify(context.Background(), req, resolver, Policy{}, now)
		if err != nil {
			t.Fatalf("Sign made %q / %q, Verify refused: %v", in, sig, err)
		}
		if res.Nonce != nonce {
			t.Fatalf("nonce %q came back as %q", nonce, res.Nonce)
		}
		req.Method += "X"
		if _, err := Verify(context.Background(), req, resolver, Policy{}, now); err == nil {
			t.Fatal("a changed method still verifies")
		}
	})
}
