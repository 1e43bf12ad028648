package sign

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
)

// SignatureLen is the length in bytes of an amatino signature, an
// HMAC-SHA512 tag.
const SignatureLen = 64

// signatureB64Len is the length of a padded standard-base64 encoding of a
// SignatureLen-byte MAC: 64 bytes = 21 full groups of 3 plus one left-over
// byte, so 22 groups of 4 characters ending in "==".
const signatureB64Len = 88

// maxTimestampDigits is the number of digits of math.MaxInt64; anything longer
// cannot be an int64 and is refused before any parsing work.
const maxTimestampDigits = 19

var (
	// ErrMalformedSignature means an X-Signature value is not exactly the
	// padded standard-base64 encoding of a 64-byte MAC. Callers answer 400 (or
	// 401 where the dialect demands it) without attempting any comparison.
	ErrMalformedSignature = errors.New("malformed signature")

	// ErrMalformedTimestamp means an X-Timestamp value is not a strict
	// base-10 non-negative integer that fits in an int64 (SEC-22).
	ErrMalformedTimestamp = errors.New("malformed timestamp")
)

// strictB64 refuses non-canonical trailing bits (SEC-35). It still skips
// '\r' and '\n' by design of encoding/base64, which is why DecodeSignature
// checks the alphabet itself before decoding.
var strictB64 = base64.StdEncoding.Strict()

// AmatinoMessage returns the bytes amatino clients sign: the decimal
// timestamp, immediately followed by path, immediately followed by body (nil
// for current clients, which do not sign the body). There is no separator
// anywhere: that is the frozen wire format, not an oversight (see the package
// documentation, SEC-26).
func AmatinoMessage(ts int64, path string, body []byte) []byte {
	msg := make([]byte, 0, maxTimestampDigits+1+len(path)+len(body))
	msg = strconv.AppendInt(msg, ts, 10)
	msg = append(msg, path...)
	return append(msg, body...)
}

// AmatinoMAC returns HMAC-SHA512(key, AmatinoMessage(ts, path, body)). key is
// the api key string's UTF-8 bytes, not its base64 decoding: clients treat
// the key as an opaque string.
func AmatinoMAC(key []byte, ts int64, path string, body []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write(AmatinoMessage(ts, path, body))
	return m.Sum(nil)
}

// AmatinoSign returns the X-Signature value a client would send: the padded
// standard-base64 encoding of AmatinoMAC. The gateway itself only verifies;
// this exists for tests, the CLI and the reference vectors.
func AmatinoSign(key []byte, ts int64, path string, body []byte) string {
	return base64.StdEncoding.EncodeToString(AmatinoMAC(key, ts, path, body))
}

// DecodeSignature decodes an X-Signature value strictly: exactly 88
// characters of the standard base64 alphabet ending in "==", with canonical
// (zero) trailing bits, decoding to exactly SignatureLen bytes. Whitespace
// anywhere, the URL-safe alphabet, missing padding and non-ASCII input are all
// refused, so that one MAC has exactly one accepted spelling (SEC-21,
// SEC-35). It never panics; errors wrap ErrMalformedSignature and do not echo
// the input.
func DecodeSignature(s string) ([]byte, error) {
	if len(s) != signatureB64Len {
		return nil, fmt.Errorf("decode signature: %w: %d characters, want %d",
			ErrMalformedSignature, len(s), signatureB64Len)
	}
	// Check the alphabet ourselves: encoding/base64 silently skips '\r' and
	// '\n' even in strict mode, and a value that tolerates them has more than
	// one spelling.
	for i := 0; i < signatureB64Len-2; i++ {
		if !isStdB64(s[i]) {
			return nil, fmt.Errorf("decode signature: %w: invalid character at offset %d",
				ErrMalformedSignature, i)
		}
	}
	if s[signatureB64Len-2] != '=' || s[signatureB64Len-1] != '=' {
		return nil, fmt.Errorf("decode signature: %w: want \"==\" padding", ErrMalformedSignature)
	}
	out := make([]byte, strictB64.DecodedLen(len(s)))
	n, err := strictB64.Decode(out, []byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode signature: %w: %v", ErrMalformedSignature, err)
	}
	if n != SignatureLen {
		// Unreachable given the checks above; kept so the length guarantee
		// does not depend on reasoning about base64 arithmetic.
		return nil, fmt.Errorf("decode signature: %w: %d bytes, want %d",
			ErrMalformedSignature, n, SignatureLen)
	}
	return out[:n], nil
}

// isStdB64 reports whether c is in the standard base64 alphabet (RFC 4648
// table 1), padding excluded.
func isStdB64(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '+', c == '/':
		return true
	}
	return false
}

// ParseTimestamp parses an X-Timestamp value strictly (SEC-22): one or more
// ASCII digits, no sign, no leading zero unless the value is exactly "0", no
// spaces, at most 19 digits, and within int64. "1.7e9", " 1700000000",
// "+1700000000", "0x…" and "" are all refused, because every tolerated
// variant is another spelling a cache or log would treat as distinct. Errors
// wrap ErrMalformedTimestamp and do not echo the input.
func ParseTimestamp(s string) (int64, error) {
	switch {
	case s == "":
		return 0, fmt.Errorf("parse timestamp: %w: empty", ErrMalformedTimestamp)
	case len(s) > maxTimestampDigits:
		return 0, fmt.Errorf("parse timestamp: %w: %d characters, at most %d",
			ErrMalformedTimestamp, len(s), maxTimestampDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("parse timestamp: %w: non-digit at offset %d", ErrMalformedTimestamp, i)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("parse timestamp: %w: leading zero", ErrMalformedTimestamp)
	}
	// Only digits remain, so the one error ParseInt can still return is a
	// range error (19 digits above math.MaxInt64).
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse timestamp: %w: out of int64 range", ErrMalformedTimestamp)
	}
	return ts, nil
}

// Search looks for the second at which sig was made: it tries ts = now+0,
// now-1, now+1, now-2, now+2, … out to now±window, in that order, and returns
// the matching timestamp's offset from now. The synced-clock case costs one
// HMAC; a miss costs 2*window+1. Offset 0 goes first so the common case is
// cheap, and -k before +k because a request is more often signed slightly
// before the server sees it than after.
//
// key is the api key string's bytes, sig the decoded X-Signature (see
// DecodeSignature), body nil for current clients (body not covered) or the
// body variant being tried. Search returns false, never panics, when sig is
// not SignatureLen bytes, key is empty (an empty key would make every
// signature forgeable), or window is negative. Timestamps that would
// overflow int64 are skipped. The caller bounds window (configuration
// validation): the search cost is linear in it.
//
// A caller that tries several body variants should use a Matcher instead,
// to choose the order of (second, variant) pairs and key the HMAC once.
func Search(key, sig []byte, path string, body []byte, now int64, window int) (offset int, ok bool) {
	return search(key, sig, path, body, now, window, nil)
}

// search is Search with a hook called before each HMAC try, so tests can
// observe the order and the number of tries without global state.
func search(key, sig []byte, path string, body []byte, now int64, window int, onTry func(ts int64)) (int, bool) {
	if window < 0 {
		return 0, false
	}
	m := NewMatcher(key, sig, path, now)
	m.onTry = onTry
	if m.At(0, body) {
		return 0, true
	}
	return m.Around(body, window)
}

// VerifyAt reports whether sig is the MAC for exactly timestamp ts. It is used
// when the client sends X-Timestamp: the caller has already parsed it with
// ParseTimestamp and checked it lies inside the window. Like Search it returns
// false, never panics, for a sig that is not SignatureLen bytes or an empty
// key.
func VerifyAt(key, sig []byte, ts int64, path string, body []byte) bool {
	return NewMatcher(key, sig, path, ts).At(0, body)
}

// Matcher checks one signature, made with one key over one path, at the
// seconds and body variants its caller chooses, in the caller's order. It
// keys the HMAC once for all of them (one hmac.New, and from the second try
// on a reset to the keyed state), so a verifier that tries the body-less
// variant and then a body variant does not build a second HMAC. The
// accepted set is the caller's business; the Matcher only guarantees that
// each try is exactly VerifyAt at that second and body.
//
// A Matcher is not safe for concurrent use; it is meant to live for one
// request. It never panics: with an empty key or a sig that is not
// SignatureLen bytes every try is false and costs no HMAC.
type Matcher struct {
	v      verifier
	sig    []byte
	now    int64
	usable bool
	work   Work
	onTry  func(ts int64) // tests of this package: see search
}

// Work is the MAC work a Matcher has done: the cost of a verification in
// units that do not depend on the machine, for tests and tracing.
type Work struct {
	// MACs is the number of HMAC-SHA512 computed.
	MACs int
	// BodyMACs is how many of them covered a (non-empty) body.
	BodyMACs int
	// BodyBytes is the body bytes those hashed in all, the bulk of the
	// cost when bodies are large.
	BodyBytes int64
}

// NewMatcher returns a Matcher for sig over path under key, with offsets
// counted from the server second now. key is the api key string's bytes
// and sig the decoded X-Signature (DecodeSignature); the Matcher keeps
// references to both, so they must not change while it is in use.
func NewMatcher(key, sig []byte, path string, now int64) *Matcher {
	// Kept small enough to inline, so a Matcher that does not outlive its
	// caller stays on the caller's stack.
	m := new(Matcher)
	m.init(key, sig, path, now)
	return m
}

func (m *Matcher) init(key, sig []byte, path string, now int64) {
	m.sig, m.now = sig, now
	if len(sig) == SignatureLen && len(key) > 0 {
		m.v.init(key, path)
		m.usable = true
	}
}

// At reports whether sig is the MAC of the second now+off over path ++
// body (body nil or empty: the body-less variant). A second that would
// overflow int64 is false without an HMAC.
func (m *Matcher) At(off int, body []byte) bool {
	if !m.usable {
		return false
	}
	ts, inRange := addOffset(m.now, off)
	if !inRange {
		return false
	}
	if m.onTry != nil {
		m.onTry(ts)
	}
	m.work.MACs++
	if len(body) > 0 {
		m.work.BodyMACs++
		m.work.BodyBytes += int64(len(body))
	}
	return m.v.check(m.sig, ts, body)
}

// Around is Search without offset 0: it tries now-1, now+1, now-2, now+2,
// … out to now±window, in that order, and returns the first matching
// offset. Together with At(0, body) before it, it tries exactly what
// Search tries, in the same order; a caller that tries several variants at
// offset 0 first calls it afterwards for each, so no second is computed
// twice for one variant. A negative window tries nothing.
func (m *Matcher) Around(body []byte, window int) (int, bool) {
	if !m.usable {
		return 0, false
	}
	// Loop on the magnitude rather than on 2*window tries so that a huge
	// window cannot overflow the loop bound.
	for k := 1; k <= window && k > 0; k++ {
		if m.At(-k, body) {
			return -k, true
		}
		if m.At(k, body) {
			return k, true
		}
	}
	return 0, false
}

// Work returns the MAC work done so far.
func (m *Matcher) Work() Work { return m.work }

// addOffset returns now+off, or false if that overflows int64.
func addOffset(now int64, off int) (int64, bool) {
	o := int64(off)
	if (o > 0 && now > math.MaxInt64-o) || (o < 0 && now < math.MinInt64-o) {
		return 0, false
	}
	return now + o, true
}

// verifier holds one keyed HMAC and the buffers for repeated tries of the same
// path at different timestamps and with different bodies. Setting it up costs
// a few allocations (hmac.New precomputes the padded key); each check after
// that allocates nothing: the message prefix is rebuilt in msg, whose capacity
// already fits the longest timestamp, and the tag is summed into sum.
type verifier struct {
	mac  hash.Hash
	path string
	msg  []byte // timestamp digits ++ path; capacity fixed at construction
	sum  []byte // capacity SignatureLen
	used bool   // mac has absorbed a message and needs a Reset
}

func (v *verifier) init(key []byte, path string) {
	v.mac = hmac.New(sha512.New, key)
	v.path = path
	// Timestamp and path share one buffer so each try is one Write for the
	// short part; the body, possibly large, is written from the caller's
	// slice and never copied.
	v.msg = make([]byte, 0, maxTimestampDigits+1+len(path))
	v.sum = make([]byte, 0, SignatureLen)
}

// check reports whether sig is the MAC of ts ++ path ++ body. hmac.Equal
// compares in constant time; its early return on a length mismatch leaks only
// the length, which callers have already fixed at SignatureLen (SEC-21).
func (v *verifier) check(sig []byte, ts int64, body []byte) bool {
	// A fresh HMAC is already reset, and its first Reset is not free
	// (crypto/hmac snapshots the padded-key state then, about 1 µs and two
	// allocations): skipping it keeps the synced-clock case to setup plus
	// one MAC.
	if v.used {
		v.mac.Reset()
	}
	v.used = true
	v.msg = strconv.AppendInt(v.msg[:0], ts, 10)
	v.msg = append(v.msg, v.path...)
	v.mac.Write(v.msg)
	if len(body) > 0 {
		v.mac.Write(body)
	}
	v.sum = v.mac.Sum(v.sum[:0])
	return hmac.Equal(v.sum, sig)
}
