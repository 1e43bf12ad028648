package client_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth/client"
)

// show prints the status and the backend's view of the user.
func show(resp *http.Response, err error) {
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	var e echo
	_ = json.NewDecoder(resp.Body).Decode(&e)
	fmt.Println(resp.StatusCode, e.Method, e.Target, "user", e.UserID)
}

// The native scheme with a session key: the Transport logs in with
// POST /session on first use, then signs every request with RFC 9421
// hmac-sha256 (method, authority, path, query; for a body also
// Content-Digest and Content-Type; created, keyid, nonce).
func ExampleNew_rfc9421HMAC() {
	gw := mustGateway() // a test gateway; use your gateway's URL
	defer gw.close()

	tr, err := client.New(client.Config{
		Mode:    client.ModeRFC9421HMAC,
		BaseURL: gw.srv.URL,
		Login:   &client.PasswordLogin{AccountEmail: "alice@example.com", Secret: "correct horse battery staple"},
	})
	if err != nil {
		panic(err)
	}
	hc := tr.Client()
	show(hc.Get(gw.srv.URL + "/entities?page=2"))
	show(hc.Post(gw.srv.URL+"/entities", "application/json", strings.NewReader(`{"name":"Acme"}`)))
	// Output:
	// 200 GET /entities?page=2 user 1001
	// 200 POST /entities user 1001
}

// The native scheme with a registered Ed25519 key: no session, no login;
// the keyid defaults to the id the gateway assigns to the public key.
func ExampleNew_rfc9421Ed25519() {
	gw := mustGateway()
	defer gw.close()

	var key ed25519.PrivateKey = userKey // the user's registered key
	tr, err := client.New(client.Config{Mode: client.ModeRFC9421Ed25519, PrivateKey: key})
	if err != nil {
		panic(err)
	}
	show(tr.Client().Get(gw.srv.URL + "/reports?year=2024"))
	// Output:
	// 200 GET /reports?year=2024 user 1001
}

// The legacy amatino signature, for compatibility tests against the
// amatino dialect: X-Session-ID and X-Signature, covering only the time and
// the path.
func ExampleNew_amatino() {
	gw := mustGateway()
	defer gw.close()

	tr, err := client.New(client.Config{
		Mode:    client.ModeAmatino,
		BaseURL: gw.srv.URL,
		Login:   &client.PasswordLogin{UserID: 1001, Secret: "correct horse battery staple"},
	})
	if err != nil {
		panic(err)
	}
	show(tr.Client().Get(gw.srv.URL + "/entities"))
	fmt.Println(tr.Logout(context.Background()))
	// Output:
	// 200 GET /entities user 1001
	// <nil>
}

// Sign returns the signed request without sending it, e.g. to print the
// headers for curl.
func ExampleTransport_Sign() {
	tr, err := client.New(client.Config{Mode: client.ModeRFC9421HMAC,
		Session: &client.Session{SessionID: 4200100, APIKey: "the api key"}})
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8080/entities?x=1", nil)
	signed, err := tr.Sign(context.Background(), req, nil)
	if err != nil {
		panic(err)
	}
	in := signed.Header.Get("Signature-Input")
	fmt.Println(in[:strings.Index(in, ";created=")])
	fmt.Println(strings.Contains(in, `;keyid="4200100";nonce="`))
	// Output:
	// sig1=("@method" "@authority" "@path" "@query")
	// true
}
