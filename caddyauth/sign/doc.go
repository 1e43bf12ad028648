// Package sign implements the amatino request signature: HMAC-SHA512 over
// the decimal Unix-seconds timestamp immediately followed by the request
// path (and, for older clients, the body), keyed with the session's api key
// string and sent as padded standard base64 in X-Signature.
//
// The wire format is frozen by clients we do not control (see WIRE.md,
// "amatino"), so this package reproduces it byte for byte, including its
// weaknesses. What the signature does NOT cover, by construction:
//
//   - the method: a GET and a DELETE of the same path in the same second
//     carry the same signature (SEC-25);
//   - the query string: clients sign the path without it (SEC-25);
//   - the body, for current clients (body nil in this package's API);
//   - field boundaries: timestamp, path and body are concatenated without
//     delimiters, so bytes can move between path and body without changing
//     the MAC (SEC-26; pinned by TestSEC26AmatinoNoDelimiterPinned);
//   - uniqueness: two different requests in one second can legitimately
//     carry identical signatures, so a repeat is not proof of a replay
//     (SEC-23).
//
// Those residual risks are why the gateway also offers a native scheme; this
// package only makes the amatino check strict where the format allows it:
// signatures are decoded strictly to exactly 64 bytes and compared in
// constant time (SEC-21, SEC-35), timestamps are strict base-10 integers
// (SEC-22), and the window search is bounded by the caller's window.
//
// Clients do not send the timestamp, so the server recomputes the MAC for
// each second around its own clock: Search tries the current second first
// (one HMAC in the common, clock-synced case), then ±1, ±2, … out to the
// window. When a client does send X-Timestamp, VerifyAt checks exactly that
// second.
//
// Old Python clients signed a compact re-serialisation of their JSON body
// rather than the bytes they sent; PythonCompactJSON reproduces CPython's
// json.dumps(json.loads(body), separators=(",", ":")) so that variant can be
// checked too.
//
// The package is plain Go with no Caddy dependency and no global state; all
// functions are safe for concurrent use.
package sign
