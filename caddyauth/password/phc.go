package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters plus the salt and key sizes.
type Params struct {
	Time      uint32 // iterations (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // parallelism (p)
	SaltLen   uint32 // bytes of random salt
	KeyLen    uint32 // bytes of derived key
}

// DefaultParams are the parameters the gateway hashes new passphrases with:
// the OWASP Password Storage Cheat Sheet / ASVS 5.0 Appendix C minimum
// (argon2id, t=2, m=19 MiB, p=1), a 128-bit salt and a 256-bit key. On the
// reference 2-vCPU box one hash takes roughly 40–70 ms (SECURITY.md,
// "Password-hash cost"), which is what the login capacity is planned around.
var DefaultParams = Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

// ErrInvalidHash is wrapped by every error that Parse returns, and by the
// error Hasher.Verify returns when the stored hash cannot be parsed.
var ErrInvalidHash = errors.New("invalid argon2id PHC hash")

// The floor for parameters the gateway creates hashes with (SEC-01): OWASP
// and ASVS 5.0 Appendix C accept either t=2 with 19 MiB or t=1 with 46 MiB,
// and a salt of at least 128 bits.
const (
	floorTimeA   = 2
	floorMemKiBA = 19 * 1024
	floorTimeB   = 1
	floorMemKiBB = 46 * 1024
	floorSaltLen = 16
	floorKeyLen  = 16
)

// Bounds on what Parse accepts. They are wide enough for any sensible hash
// (including old, weak ones that must still log in) but stop a hostile PHC
// string from making one verification allocate more than 4 GiB, run more
// than 64 passes, or carry megabytes of salt.
const (
	minMemKiB  = 8       // argon2's own minimum (8 KiB per lane, checked below)
	maxMemKiB  = 4 << 20 // 4 GiB
	minTime    = 1
	maxTime    = 64
	minThreads = 1
	maxThreads = 255 // argon2.IDKey takes a uint8
	minSaltLen = 8   // the PHC/argon2 reference minimum
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128

	// maxEncodedLen is comfortably above the longest string the bounds allow
	// (about 300 bytes). Checking it first means a multi-megabyte "hash" is
	// refused before any splitting or decoding.
	maxEncodedLen = 512
)

// b64 is the PHC string encoding: standard alphabet, no padding, and strict
// so that non-zero trailing bits (a second spelling of the same bytes) are
// refused.
var b64 = base64.RawStdEncoding.Strict()

// Validate reports whether p may be used to create new hashes: it must meet
// the OWASP/ASVS floor, (t>=2 and m>=19 MiB) or (t>=1 and m>=46 MiB), with
// p>=1, a salt of at least 16 bytes and a key of at least 16 bytes, and it
// must stay within the bounds Parse accepts so the hashes it makes can be
// read back. Stored hashes are not held to the floor (see Parse).
func (p Params) Validate() error {
	if p.Threads < 1 {
		return fmt.Errorf("password: invalid params: p=%d, parallelism must be at least 1", p.Threads)
	}
	if !((p.Time >= floorTimeA && p.MemoryKiB >= floorMemKiBA) || (p.Time >= floorTimeB && p.MemoryKiB >= floorMemKiBB)) {
		return fmt.Errorf("password: invalid params: t=%d, m=%d KiB is below the argon2id floor "+
			"(t>=%d and m>=%d KiB) or (t>=%d and m>=%d KiB)",
			p.Time, p.MemoryKiB, floorTimeA, floorMemKiBA, floorTimeB, floorMemKiBB)
	}
	if p.SaltLen < floorSaltLen {
		return fmt.Errorf("password: invalid params: salt of %d bytes is below the floor of %d bytes", p.SaltLen, floorSaltLen)
	}
	if p.KeyLen < floorKeyLen {
		return fmt.Errorf("password: invalid params: key of %d bytes is below the floor of %d bytes", p.KeyLen, floorKeyLen)
	}
	if err := p.checkBounds(); err != nil {
		return fmt.Errorf("password: invalid params: %w", err)
	}
	return nil
}

// checkBounds reports whether p is within the bounds Parse accepts. It is
// the minimum any Params must satisfy before reaching argon2.IDKey, which
// panics on t=0 or p=0.
func (p Params) checkBounds() error {
	switch {
	case p.Time < minTime || p.Time > maxTime:
		return fmt.Errorf("t=%d outside [%d, %d]", p.Time, minTime, maxTime)
	case p.MemoryKiB < minMemKiB || p.MemoryKiB > maxMemKiB:
		return fmt.Errorf("m=%d KiB outside [%d, %d]", p.MemoryKiB, minMemKiB, maxMemKiB)
	case p.Threads < minThreads: // uint8 cannot exceed maxThreads
		return fmt.Errorf("p=%d below %d", p.Threads, minThreads)
	case uint64(p.MemoryKiB) < 8*uint64(p.Threads):
		// argon2 needs at least 8 KiB per lane; the Go implementation would
		// silently round m up, so the string would lie about the cost.
		return fmt.Errorf("m=%d KiB below 8 KiB per lane for p=%d", p.MemoryKiB, p.Threads)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt of %d bytes outside [%d, %d]", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key of %d bytes outside [%d, %d]", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// AtLeast reports whether p costs at least as much as q on every axis an
// attacker pays for: iterations (t) and memory (m), and also salt and key
// length, so a hash with a salt shorter than the configured one (SEC-01 asks
// for at least 128 bits) is upgraded too. Parallelism is not compared: it
// changes wall-clock time, not the attacker's total work.
//
// The engine re-hashes a stored hash after a successful login when its params
// are not AtLeast the configured ones. A hash that is stronger on one axis and
// weaker on another (t=1/m=46 MiB against t=2/m=19 MiB) is re-hashed once,
// after which it matches and is left alone.
func (p Params) AtLeast(q Params) bool {
	return p.Time >= q.Time && p.MemoryKiB >= q.MemoryKiB &&
		p.SaltLen >= q.SaltLen && p.KeyLen >= q.KeyLen
}

// PHC is a parsed argon2id PHC string. Params.SaltLen and Params.KeyLen equal
// len(Salt) and len(Key) for a PHC returned by Parse.
type PHC struct {
	Params
	Version int    // argon2 version; always 19 (0x13) from Parse
	Salt    []byte // raw salt
	Key     []byte // raw derived key
}

// deriveFunc computes an argon2id key. Hasher substitutes a counting (or, in
// tests, blocking) wrapper for idKey.
type deriveFunc func(password, salt []byte, p Params) []byte

// idKey is argon2id itself.
func idKey(password, salt []byte, p Params) []byte {
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
}

// Hash derives an argon2id key for password with a fresh random salt and
// returns it as a PHC string, e.g. "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>",
// base64 without padding as the PHC spec and the reference argon2 CLI write
// it. p must pass Validate: this is the function that creates stored hashes,
// so it refuses to create weak ones.
func Hash(password string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	h, err := newPHC(idKey, password, p)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// newPHC hashes password under p with a fresh salt. p must already be within
// checkBounds.
func newPHC(derive deriveFunc, password string, p Params) (*PHC, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("password: hash: read random salt: %w", err)
	}
	key := derive([]byte(password), salt, p)
	return &PHC{Params: p, Version: argon2.Version, Salt: salt, Key: key}, nil
}

// Parse reads an argon2id PHC string. It is strict so that every hash has
// exactly one accepted spelling and a hostile string cannot exhaust memory or
// CPU: only "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" with the parameters in
// that order, plain decimal numbers (no sign, no leading zeros), and salt and
// hash in unpadded standard base64 with no whitespace and zero trailing bits.
// Bounds: 8 <= m <= 4194304 KiB with m >= 8*p, 1 <= t <= 64, 1 <= p <= 255,
// salt of 8..64 bytes, hash of 16..128 bytes.
//
// Parse does not hold hashes to the Validate floor: an operator's old, weaker
// hash must still verify so that it can be upgraded (Hasher.NeedsRehash).
// Every error wraps ErrInvalidHash, and no error repeats the input, so it is
// safe to log. Parse never panics.
func Parse(s string) (*PHC, error) {
	h, err := parse(s)
	if err != nil {
		return nil, fmt.Errorf("password: parse: %w", err)
	}
	return h, nil
}

// parse is Parse without the "password: parse:" context, for callers that
// add their own.
func parse(s string) (*PHC, error) {
	if len(s) > maxEncodedLen {
		return nil, fmt.Errorf("%w: %d bytes long, more than %d", ErrInvalidHash, len(s), maxEncodedLen)
	}
	fields := strings.Split(s, "$")
	// "" before the first '$', then id, version, params, salt, hash.
	if len(fields) != 6 || fields[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", ErrInvalidHash)
	}
	switch fields[1] {
	case "argon2id":
	case "argon2i", "argon2d":
		return nil, fmt.Errorf("%w: variant %s not supported, only argon2id", ErrInvalidHash, fields[1])
	default:
		return nil, fmt.Errorf("%w: algorithm is not argon2id", ErrInvalidHash)
	}
	if fields[2] != "v=19" {
		return nil, fmt.Errorf("%w: version must be v=19", ErrInvalidHash)
	}

	kv := strings.Split(fields[3], ",")
	if len(kv) != 3 {
		return nil, fmt.Errorf("%w: want exactly the parameters m,t,p", ErrInvalidHash)
	}
	m, err := parseParam(kv[0], "m", minMemKiB, maxMemKiB)
	if err != nil {
		return nil, err
	}
	t, err := parseParam(kv[1], "t", minTime, maxTime)
	if err != nil {
		return nil, err
	}
	p, err := parseParam(kv[2], "p", minThreads, maxThreads)
	if err != nil {
		return nil, err
	}
	if m < 8*p {
		return nil, fmt.Errorf("%w: m=%d below 8 KiB per lane for p=%d", ErrInvalidHash, m, p)
	}

	salt, err := decodeB64(fields[4], "salt", minSaltLen, maxSaltLen)
	if err != nil {
		return nil, err
	}
	key, err := decodeB64(fields[5], "hash", minKeyLen, maxKeyLen)
	if err != nil {
		return nil, err
	}
	// #nosec G115 -- parseParam bounded m, t and p above (maxMemKiB, maxTime,
	// maxThreads all fit their types), and decodeB64 bounded both lengths.
	return &PHC{
		Params: Params{
			Time:      uint32(t),
			MemoryKiB: uint32(m),
			Threads:   uint8(p),
			SaltLen:   uint32(len(salt)),
			KeyLen:    uint32(len(key)),
		},
		Version: argon2.Version,
		Salt:    salt,
		Key:     key,
	}, nil
}

// parseParam reads "name=value" where value is a canonical decimal in
// [lo, hi]. It checks digits itself rather than using strconv so that "+1",
// "-0", "01" and "1_000" are refused, and it stops as soon as the value
// exceeds hi so no input can overflow.
func parseParam(field, name string, lo, hi uint64) (uint64, error) {
	val, ok := strings.CutPrefix(field, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want parameter %s= in order m,t,p", ErrInvalidHash, name)
	}
	if val == "" {
		return 0, fmt.Errorf("%w: parameter %s is empty", ErrInvalidHash, name)
	}
	if len(val) > 1 && val[0] == '0' {
		return 0, fmt.Errorf("%w: parameter %s has a leading zero", ErrInvalidHash, name)
	}
	var n uint64
	for i := 0; i < len(val); i++ {
		c := val[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: parameter %s is not a plain decimal number", ErrInvalidHash, name)
		}
		n = n*10 + uint64(c-'0')
		if n > hi {
			return 0, fmt.Errorf("%w: parameter %s above %d", ErrInvalidHash, name, hi)
		}
	}
	if n < lo {
		return 0, fmt.Errorf("%w: parameter %s=%d below %d", ErrInvalidHash, name, n, lo)
	}
	return n, nil
}

// decodeB64 decodes a PHC salt or hash field: unpadded standard base64 only.
// encoding/base64 silently skips '\r' and '\n', so the alphabet is checked
// here first; otherwise "c29t\nZXNhbHQ" would be a second spelling of a salt.
func decodeB64(s, name string, minLen, maxLen int) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrInvalidHash, name)
	}
	if len(s) > b64.EncodedLen(maxLen) {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidHash, name, maxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, fmt.Errorf("%w: %s has a character outside unpadded standard base64", ErrInvalidHash, name)
		}
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		// The error only names an offset, never the data.
		return nil, fmt.Errorf("%w: %s is not canonical base64: %v", ErrInvalidHash, name, err)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, fmt.Errorf("%w: %s of %d bytes outside [%d, %d]", ErrInvalidHash, name, len(b), minLen, maxLen)
	}
	// Strict decoding already refuses non-zero trailing bits; re-encoding is
	// a cheap second guarantee that the spelling is the canonical one.
	if b64.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: %s is not canonical base64", ErrInvalidHash, name)
	}
	return b, nil
}

// Verify reports whether password matches h, recomputing argon2id with h's
// own parameters and salt and comparing keys in constant time. It returns
// false, without running the KDF, if h is nil or its fields are outside the
// bounds Parse enforces (so a hand-built PHC cannot panic argon2).
func (h *PHC) Verify(password string) bool {
	return h.verify(idKey, password)
}

// verify is Verify with a chosen key-derivation function.
func (h *PHC) verify(derive deriveFunc, password string) bool {
	if h == nil || h.Version != argon2.Version {
		return false
	}
	// Bound the lengths before narrowing them, so a huge slice cannot wrap
	// around into the accepted range.
	if len(h.Salt) > maxSaltLen || len(h.Key) > maxKeyLen {
		return false
	}
	p := h.Params
	p.SaltLen, p.KeyLen = uint32(len(h.Salt)), uint32(len(h.Key)) // #nosec G115 -- bounded just above
	if p.checkBounds() != nil {
		return false
	}
	got := derive([]byte(password), h.Salt, p)
	return subtle.ConstantTimeCompare(got, h.Key) == 1
}

// String encodes h as a canonical PHC string; for any h returned by Parse,
// Parse(h.String()) gives back an equal PHC and h.String() is the string
// that was parsed. A nil h encodes as "".
func (h *PHC) String() string {
	if h == nil {
		return ""
	}
	var b strings.Builder
	b.Grow(64 + b64.EncodedLen(len(h.Salt)) + b64.EncodedLen(len(h.Key)))
	b.WriteString("$argon2id$v=")
	b.WriteString(strconv.Itoa(h.Version))
	b.WriteString("$m=")
	b.WriteString(strconv.FormatUint(uint64(h.MemoryKiB), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(h.Time), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(h.Threads), 10))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(h.Salt))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(h.Key))
	return b.String()
}
