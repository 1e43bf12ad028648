// Package videntity serves the videntity session protocol of WIRE.md: form
// posts answered with XML.
//
//	POST /session/login  (alias /sessions/login)  username, password, account_number → session_key
//	POST /session/ping                             session_key → the idle timer is reset
//	POST /session/logout                           session_key → the key is dead
//
// Proxied requests carry the key as a `session_key` field of an
// application/x-www-form-urlencoded body, or in `X-Session-Key`; the gateway
// verifies it and removes it before forwarding.
//
// # Endpoint answers
//
// Endpoints take only POST with a form body (charset parameter allowed) of
// at most 64 KiB, and answer XML with the honest HTTP status:
//
//	200  SUCCESS
//	401  1 AUTHENTICATION_ERROR   (every kind of wrong login: same bytes, SEC-03)
//	404  2 SESSION_DOES_NOT_EXIST (unknown, logged out, purged, or not a session key at all)
//	401  3 SESSION_EXPIRED        (past its deadline, not yet purged)
//	400  4 MISSING_MANDATORY_FIELD
//	503 11 SERVER_ERROR           (store or directory down, hashing pool full; Retry-After: 1)
//
// The vendor documents no number for a request that is malformed rather than
// incomplete, so the gateway answers these with 4 MISSING_MANDATORY_FIELD, a
// detail saying what is wrong, and the honest HTTP status: 400 (a duplicated
// field, a value that is not UTF-8, a broken percent-escape, an over-long
// password), 413 (over 64 KiB) or 415 (not a form, or a Content-Encoding). Unknown fields are ignored; a known field given twice,
// under any percent-encoded spelling, is refused (SEC-33).
//
// Ping and logout of an expired key answer SESSION_EXPIRED and leave the
// record to the janitor; a key of another dialect's session (its digest
// matching) is SESSION_DOES_NOT_EXIST and is never touched or ended.
//
// A successful ping or logout carries an empty `<response_name_value>`
// element, so every success has the same elements and only login's holds a
// value. `api_tx_number` comes from one counter per process, seeded with the
// wall clock in microseconds, so it keeps increasing across restarts unless
// the gateway averaged more than a million answers a second; it is not
// ordered across gateway nodes.
//
// # Session keys
//
// A key is 43 characters of [A-Za-z0-9] drawn from crypto/rand by rejection
// sampling (no modulo bias): 256 bits (SEC-08). The store sees only its
// SHA-256 digest, in lower-case hex, as the session id; there is no secret
// (SEC-16). A presented key must be 32 to 128 characters of [A-Za-z0-9]
// before any lookup (SEC-36). Sessions end after IdleTimeout without a ping
// (optionally: without any use) and after SessionLifetime whatever happens;
// pings never move the absolute deadline (SEC-11, SEC-12).
//
// # Proxied requests
//
// Present is true when the request has an X-Session-Key header or a form
// content type; it never reads the body. Verify reads a form body (up to
// MaxBody), looks for session_key in it, and puts the same bytes back. So a
// form POST with neither a session_key field nor the header is attributed to
// this dialect and refused 401 missing_credentials: callers should ask
// header-only dialects first. StripCredentials then removes the header and
// drops exactly the session_key pairs from the body Verify read. A form body
// that Verify did not read is left alone: on a request another dialect
// authenticated, a field of that name is the application's data. A key in
// the query string is never accepted (SEC-14).
package videntity
