// Package native verifies the gateway's own request signatures: HTTP
// Message Signatures (RFC 9421) with a server-enforced coverage policy,
// single-use nonces and Content-Digest (RFC 9530) over the raw body, as the
// project's WIRE.md "native" section describes. The cryptography and the
// header parsing are package caddyauth/sign/rfc9421's; this package finds
// the keys, applies the policy, guards against replay and turns every
// outcome into the gateway's answers.
//
// Two kinds of key, told apart by the keyid:
//
//   - hmac-sha256: keyid is the decimal id of a live session with an HMAC
//     key (an amatino login), the key is that session's api key string's
//     bytes. The keyid's syntax is checked before any lookup (SEC-36). The
//     session's idle and absolute deadlines apply as for amatino; with
//     IdleResetOnUse a verified request resets the idle timer.
//   - ed25519: keyid is the id the gateway assigned to a user's registered
//     public key ("ed25519-" and 16 base64url characters,
//     caddyauth.PublicKeyID); the key is looked up in the user directory,
//     and a disabled user's keys are refused. There is no session, so
//     there are no idle or absolute deadlines: the signature's own
//     freshness (created within the windows, expires) and the nonce bound
//     each request, and removing the key or disabling the user ends access
//     at once.
//
// Verification order: the rfc9421 checks that need no key (syntax,
// coverage, algorithm, time windows), the key lookup, the signature; then,
// when the signature covers content-digest, the body is read (at most
// MaxBody bytes, else 413), checked against the digest and put back byte for
// byte; only then is (keyid, nonce) recorded, so that a request refused for
// its body does not burn its nonce. A second use of a nonce within the
// windows is refused with replay and counted.
//
// The package is Caddy-free: the plugin passes the request target as the
// client sent it through caddyauth.WithRequestURI, and turns Refusals into
// answers and metrics.
package native
