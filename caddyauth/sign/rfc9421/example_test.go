package rfc9421_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// A client signs GET /entities?x=1 with its session's api key; the gateway
// verifies it under the default policy and then records the nonce.
func ExampleVerify() {
	created := time.Unix(1700000000, 0)
	req := rfc9421.Request{Method: "GET", Scheme: "http", Authority: "127.0.0.1:8080",
		Target: "/entities?x=1", Header: http.Header{}}
	key := rfc9421.HMACKey([]byte("the api key string"))

	in, sig, err := rfc9421.Sign(req, key, rfc9421.SignParams{KeyID: "4200100", Created: created, Nonce: "n-1",
		Components: []string{"@method", "@authority", "@path", "@query"}})
	if err != nil {
		panic(err)
	}
	req.Header.Set("Signature-Input", in)
	req.Header.Set("Signature", sig)
	fmt.Println(in)

	keys := rfc9421.KeyResolverFunc(func(_ context.Context, keyID string) (rfc9421.Key, error) {
		if keyID != "4200100" {
			return rfc9421.Key{}, rfc9421.ErrUnknownKey
		}
		return key, nil
	})
	res, err := rfc9421.Verify(context.Background(), req, keys, rfc9421.DefaultPolicy(), created.Add(2*time.Second))
	if err != nil {
		panic(err)
	}
	fmt.Println(res.KeyID, res.Skew)

	// The same request with a query the client did not sign.
	req.Target = "/entities?x=1&role=admin"
	_, err = rfc9421.Verify(context.Background(), req, keys, rfc9421.DefaultPolicy(), created)
	fmt.Println(err)
	// Output:
	// sig1=("@method" "@authority" "@path" "@query");created=1700000000;keyid="4200100";nonce="n-1"
	// 4200100 -2s
	// bad_signature: signature does not match
}

// Accept-Signature tells a client what a signature must cover.
func ExamplePolicy_AcceptSignature() {
	fmt.Println(rfc9421.DefaultPolicy().AcceptSignature(true))
	// Output:
	// sig1=("@method" "@authority" "@path" "@query" "content-digest" "content-type");created;nonce
}
