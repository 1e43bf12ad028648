// Package client is a Go client for sessiongate: an http.RoundTripper that
// logs in and signs every request, so any http.Client becomes a gateway
// client.
//
// Three modes:
//
//   - ModeRFC9421HMAC, for new clients with a password: log in with the
//     amatino POST /session, then sign every request with RFC 9421
//     hmac-sha256 (keyid = the session id, key = the api key string's
//     bytes), covering what the gateway's default policy requires: @method,
//     @authority, @path, @query, and for a body Content-Digest (sha-256 of
//     the exact bytes sent) and Content-Type; with created = now and a
//     fresh 128-bit nonce, so no signature can be replayed.
//   - ModeRFC9421Ed25519, for clients holding a registered Ed25519 key: no
//     session at all, each request is signed with ed25519 under the key id
//     the gateway assigned (by default computed from the public key the
//     same way the gateway does). Config.SXT optionally runs the sxt key
//     flow first, which registers a new key when the gateway allows it.
//   - ModeAmatino, the legacy amatino signature (X-Session-ID, X-Signature
//     over the time and the path only), for compatibility tests against the
//     amatino dialect; AmatinoBody and AmatinoTimestamp reproduce the older
//     variants.
//
// Usage:
//
//	tr, err := client.New(client.Config{
//		Mode:    client.ModeRFC9421HMAC,
//		BaseURL: "https://gateway.example",
//		Login:   &client.PasswordLogin{AccountEmail: "demo@example.com", Secret: secret},
//	})
//	if err != nil { … }
//	resp, err := tr.Client().Post("https://gateway.example/entities", "application/json", body)
//
// The Transport buffers a request body (at most MaxBody bytes, 10 MiB by
// default) to digest it, and sends the clone it signed; the caller's
// request is never modified. A request with a body must have a
// Content-Type in the native modes. When the gateway refuses a request with
// clock_skew, the Transport sets its clock by the server_time the refusal
// carries and retries once; when it says the session is gone, it logs in
// again and retries once (the gateway refused before the backend saw
// anything, so this is safe for any method; a backend that itself answers
// 401 with those gateway error codes would see the request twice). NoRetry
// turns both off.
//
// Transport.Sign returns the signed request without sending it, for tools
// that print headers. Transport.Logout ends the session.
package client
