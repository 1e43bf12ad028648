// Package sxt serves the sxt auth protocol, byte for byte as the project's
// WIRE.md describes it, so that clients written for the sxt auth API work
// against the gateway given only its base URL:
//
//	GET  <prefix>/auth/idexists/{userId}  → true | false
//	POST <prefix>/auth/code               {"userId"} → {"authCode"}
//	POST <prefix>/auth/token              {"userId","authCode","signature","key","scheme"}
//	                                      → {"accessToken","refreshToken","accessTokenExpires","refreshTokenExpires"}
//	POST <prefix>/auth/refresh            Bearer <refresh> → a new pair
//	GET  <prefix>/auth/validtoken         Bearer <access>  → {"userId"} | 401 with an empty body
//	POST <prefix>/auth/logout             Bearer <access>  → 200 {}
//
// and verifies every other request's `Authorization: Bearer <access>` per
// RFC 6750 (Verify).
//
// Login is an Ed25519 challenge: the client asks for a random auth code
// (128 bits, single use, bound to the userId, 30 s by default) and signs its
// bytes alone — no prefix, no hashing — with a key registered to the user. A
// first login of an unknown userId registers it with that key only when the
// operator opened registration. Access and refresh tokens are 256-bit
// random strings, stored as SHA-256 digests only; refreshing rotates both
// and a rotated refresh token presented again ends the session (reuse
// detection). The token logic itself is the engine's
// (caddyauth.Manager.StartTokenSession, AccessSession, RotateRefresh); this
// package is the wire format around it.
//
// Residual risk of the frozen wire format: clients sign the bare code, so
// the signature proves possession of the key for that code only; the code
// must therefore be random, short-lived, single use and bound to the user,
// which it is.
package sxt
