// Package caddyauth is sessiongate's engine: users, sessions, credential
// verification, the key cache and the store contract. It is plain Go with
// no dependency on Caddy, so it can be tested in milliseconds and embedded
// elsewhere; the Caddy modules in package plugin are a thin adapter over it.
//
// Sub-packages:
//   - password: argon2id PHC strings and a bounded hashing pool
//   - sign: the amatino HMAC-SHA512 signature and its window search
//   - store/memory, store/bolt: Store implementations
//   - store/storetest: the conformance suite every Store must pass
//   - dialect/amatino: the amatino endpoints and credential parsing
package caddyauth
