package native_test

import (
	"net/http"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth/dialect/native"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// FuzzVerify (SEC-38): whatever Signature-Input, Signature, Content-Digest
// and target a client sends, Verify never panics, never answers with a
// status other than 400, 401 or 413, and never accepts a signature the
// fuzzer made up (it cannot know the key).
func FuzzVerify(f *testing.F) {
	e := newEnv(f, native.Options{MaxBody: 1 << 10})
	seed := func(q req, s signing) {
		r := e.signed(f, q, s)
		f.Add(r.Header.Get(rfc9421.HeaderSignatureInput), r.Header.Get(rfc9421.HeaderSignature),
			r.Header.Get(rfc9421.HeaderContentDigest), q.target, string(q.body))
	}
	seed(req{target: "/e?x=1"}, hmacSigning())
	seed(req{method: "POST", target: "/e", body: []byte(`{"a":1}`), contentType: "application/json"}, hmacSigning())
	seed(req{target: "/"}, edSigning(e.carolKey))
	f.Add(`sig1=("@method");created=1;keyid="1";nonce="n"`, "sig1=:AAAA:", "", "/", "")
	f.Add("", "", "sha-256=:AAAA:", "/a?b", "body")
	f.Fuzz(func(t *testing.T, input, sig, digest, target, body string) {
		if len(target) == 0 || target[0] != '/' {
			target = "/" + target
		}
		q := req{method: "POST", target: "/", contentType: "text/plain"}
		if body != "" {
			q.body = []byte(body)
		}
		r := q.build()
		r.RequestURI = target
		for name, v := range map[string]string{rfc9421.HeaderSignatureInput: input, rfc9421.HeaderSignature: sig,
			rfc9421.HeaderContentDigest: digest} {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		v, ref := e.d.Verify(r)
		if ref == nil {
			t.Fatalf("a made-up signature was accepted: %+v", v)
		}
		switch ref.Status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d (%s) for client input", ref.Status, ref.Code)
		}
	})
}
