// Package amatino serves the amatino session protocol: `POST /session`
// (login), `DELETE /session` (logout), and verification of requests signed
// with X-Session-ID and X-Signature (HMAC-SHA512), byte for byte as the
// project's WIRE.md describes.
//
// Residual risks of the frozen wire format, which clients cannot change:
// current clients sign only the timestamp (which they do not send) and the
// path, so the method, the query string and the body are not covered, and a
// signature stays valid for the whole time window. A POST and a GET to one
// path in one second carry the same signature, so a repeated signature is
// counted, not refused, unless the operator sets ReplayReject. The native
// RFC 9421 scheme closes these holes.
package amatino
