// Package rfc9421 implements the gateway's native request signatures: HTTP
// Message Signatures (RFC 9421) with hmac-sha256 and ed25519, a
// server-enforced coverage policy, replay-proof nonces, and Content-Digest
// (RFC 9530) over the raw body. It closes what the amatino format leaves
// open: the method, the query and the body are covered, and every signature
// carries its creation time and a nonce that can be used once.
//
// # Verifying
//
// The gateway builds a Request from what the client sent (Host and request
// target before any rewrite: FromHTTP, then override), and calls Verify
// with a KeyResolver and a Policy:
//
//	res, err := rfc9421.Verify(ctx, req, resolver, policy, now)
//	// err: *rfc9421.Error with a stable Code, or a resolver/store fault
//	err = rfc9421.CheckReplay(ctx, manager, res, policy) // (keyid, nonce) once
//	if res.CoversDigest {
//		err = rfc9421.VerifyContentDigest(r.Header["Content-Digest"], body)
//	}
//
// Verify never reads the body. Everything that needs no key (syntax,
// coverage, algorithm name, time windows, presence of the covered
// components) is checked before the resolver is called, so a malformed or
// stale request costs no store access. HMAC tags are compared with
// hmac.Equal after a length check; ed25519 keys and signatures are
// length-checked before crypto/ed25519 sees them, so no input panics.
//
// # Policy
//
// DefaultPolicy requires @method, @authority, @path and @query; on a request
// with a body also content-digest and content-type; and the parameters
// created, keyid and nonce. created must lie within 300 s in the past and 5
// s in the future of the server's clock; expires, when present, is honoured.
// A signature covering less is refused with insufficient_coverage and the
// list of what is missing. Policy.AcceptSignature gives the Accept-Signature
// value (RFC 9421 §5.1) a 401 carries so a generic client can learn all
// this.
//
// # Components
//
// Derived components: @method, @authority (lower-cased, default port
// dropped), @path and @query (raw, undecoded, from the request target; an
// absent query is "?"), @target-uri, @scheme, @request-target. Header fields
// by lower-case name, each line trimmed, lines joined with ", ". Component
// parameters (sf, key, bs, req, tr, name) and @status, @query-param are not
// supported and are refused, as are duplicates, @signature-params, and
// components absent from the request. @signature-params is the canonical
// re-serialisation of the parsed Signature-Input member (RFC 9421 §3.2), so
// optional whitespace on the wire cannot change what is signed.
//
// # Structured fields
//
// Signature-Input, Signature, Accept-Signature and Content-Digest are parsed
// and serialised with github.com/dunglas/httpsfv (v1.1.1, already pinned by
// Caddy's module graph, and what Caddy's own reverse proxy parses
// Proxy-Status with): a maintained Go implementation of RFC 8941 and its
// successor RFC 9651, whose tests run the httpwg structured-field-tests
// conformance suite. It refuses invalid syntax, and a key repeated
// in a dictionary or parameter list keeps its last value, as RFC 8941
// prescribes; this package's tests pin both, and fuzz targets cover the
// parsers. Field values are bounded (MaxFieldBytes) before parsing.
//
// # Replay
//
// The nonce is what makes a signature single-use: CheckReplay records
// (keyid, nonce) for Policy.ReplayTTL (past window + future window + 1 s,
// the whole time a signature can be accepted) through the engine's seen-once
// operation, which the redis store shares across nodes. The signature bytes
// are deliberately not the replay key: base64 allows more than one spelling
// of them, a nonce inside the signed parameters does not.
//
// The package is Caddy-free and has no global state; everything is safe
// for concurrent use.
package rfc9421
