// Package password stores and checks passphrases as argon2id PHC strings and
// bounds how many key-derivation (KDF) runs the gateway does at once.
//
// It covers these rows of SECURITY.md:
//
//   - SEC-01: passphrases are kept only as argon2id with a per-credential
//     random salt, in the self-describing PHC string format
//     ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), with parameters at or
//     above the OWASP/ASVS floor (Params.Validate). Verification compares
//     derived keys in constant time. Hasher.NeedsRehash tells the engine when a
//     stored hash is weaker than the current parameters so it can re-hash it
//     after a successful login.
//   - SEC-02: the whole passphrase goes into the KDF; nothing is truncated
//     (unlike bcrypt's 72 bytes). The hard upper bound on passphrase length
//     (about 1 KiB) is checked by the caller before it calls this package, so
//     an oversized request costs no KDF at all.
//   - SEC-04: Hasher.Verify runs the KDF exactly once for every admitted call,
//     whether the user exists, the stored hash is garbage or the passphrase is
//     right, so response time does not reveal which accounts exist.
//   - SEC-05: Hasher admits at most Slots concurrent KDF runs plus a short
//     queue; anything beyond that gets ErrBusy at once, which the caller turns
//     into 503 + Retry-After. Memory use is therefore bounded by
//     Slots × MemoryKiB.
//
// Parse is deliberately strict (one canonical spelling per hash, bounded
// parameters) because PHC strings come from configuration and stores that an
// attacker may be able to influence: a hostile string must neither panic the
// parser nor make one verification allocate gigabytes or run for minutes.
//
// The package depends only on the standard library and
// golang.org/x/crypto/argon2, so the engine can use it without Caddy.
package password
