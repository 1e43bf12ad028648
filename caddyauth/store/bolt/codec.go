package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Session record format, version 1. Hand-rolled rather than JSON because it
// is about a third of the size, keeps an empty Secret apart from a nil one
// and every time to the nanosecond whatever its year, and cannot be confused
// with a future format (the version byte):
//
//	byte     version (1)
//	varint   UserID
//	uvarint  len, bytes  Dialect
//	uvarint  len, bytes  Kind
//	byte     0 = Secret nil, 1 = present
//	uvarint  len, bytes  Secret (only when present)
//	4 ×      varint Unix seconds, uvarint nanoseconds (0–999 999 999)
//	         Created, LastSeen, IdleDeadline, AbsoluteDeadline
//
// followed, only when the session has tokens, by a tokens section:
//
//	byte     tokensTag (0x54, "T")
//	uvarint  number of tokens (at least 1)
//	per token:
//	  uvarint len, bytes  Digest
//	  uvarint len, bytes  Kind
//	  2 ×     time (as above): Expires, RotatedAt
//	  byte    0 = Successor nil, 1 = present
//	  uvarint len, bytes  Successor (only when present)
//
// The section is optional and trailing, rather than a new version, so that
// records written before sessions had tokens decode unchanged (they end
// after AbsoluteDeadline) and a session without tokens is written exactly
// as before. The ID is not repeated: it is the record's key.
const recordVersion = 1

// tokensTag opens the optional tokens section of a session record.
const tokensTag = 'T'

// errCorrupt marks a record that cannot be decoded. It never names the key
// or shows the bytes, which may be credential material.
var errCorrupt = errors.New("corrupt session record")

// encodeSession returns the record for s.
func encodeSession(s *caddyauth.Session) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+3*2+len(s.Dialect)+len(s.Kind)+len(s.Secret)+4*(binary.MaxVarintLen64+5))
	b = append(b, recordVersion)
	b = binary.AppendVarint(b, s.UserID)
	b = appendBytes(b, []byte(s.Dialect))
	b = appendBytes(b, []byte(s.Kind))
	b = appendOptional(b, s.Secret)
	for _, t := range []time.Time{s.Created, s.LastSeen, s.IdleDeadline, s.AbsoluteDeadline} {
		b = appendTime(b, t)
	}
	if len(s.Tokens) > 0 {
		b = append(b, tokensTag)
		b = binary.AppendUvarint(b, uint64(len(s.Tokens)))
		for _, tk := range s.Tokens {
			b = appendBytes(b, []byte(tk.Digest))
			b = appendBytes(b, []byte(tk.Kind))
			b = appendTime(b, tk.Expires)
			b = appendTime(b, tk.RotatedAt)
			b = appendOptional(b, tk.Successor)
		}
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond())) // #nosec G115 -- Nanosecond is in [0, 1e9)
}

// appendOptional writes a presence flag, then v when present, so nil and
// empty stay apart.
func appendOptional(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return appendBytes(append(b, 1), v)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeSession parses a record stored under id. The result shares no memory
// with rec, which bolt only keeps valid until its transaction ends. Times
// come back in UTC.
func decodeSession(id string, rec []byte) (*caddyauth.Session, error) {
	d := decoder{b: rec}
	if v := d.byte(); d.err == nil && v != recordVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errCorrupt, v)
	}
	s := &caddyauth.Session{ID: id}
	s.UserID = d.varint()
	s.Dialect = caddyauth.Dialect(d.bytes())
	s.Kind = caddyauth.CredentialKind(d.bytes())
	s.Secret = d.optional("secret")
	s.Created = d.time()
	s.LastSeen = d.time()
	s.IdleDeadline = d.time()
	s.AbsoluteDeadline = d.time()
	if d.err == nil && len(d.b) != 0 {
		// The tokens section; absent from records of older versions.
		if d.byte() != tokensTag {
			d.fail("bad section tag")
		}
		s.Tokens = d.tokens()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// decoder reads a record, remembering the first error so decodeSession can
// read every field and check once.
type decoder struct {
	b   []byte
	err error
	// corrupt is the sentinel errors wrap; errCorrupt when nil.
	corrupt error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		sentinel := d.corrupt
		if sentinel == nil {
			sentinel = errCorrupt
		}
		d.err = fmt.Errorf("%w: %s", sentinel, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed field, copied out of the record.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("field longer than record")
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// optional reads a field written by appendOptional. An empty present field
// comes back non-nil.
func (d *decoder) optional(what string) []byte {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		return append([]byte{}, d.bytes()...)
	default:
		d.fail("bad " + what + " flag")
		return nil
	}
}

// count reads a number of elements that each take at least minSize bytes,
// and refuses one the rest of the record cannot hold, so a corrupt count
// cannot make the decoder allocate gigabytes.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n == 0 || n > uint64(len(d.b)/minSize) { // #nosec G115 -- a length over a positive constant is ≥ 0
		d.fail("bad element count")
		return 0
	}
	return int(n) // #nosec G115 -- n ≤ len(d.b)/minSize, which is an int
}

// tokens reads the body of a tokens section.
func (d *decoder) tokens() []caddyauth.Token {
	// A token takes at least 1+1+2+2+1 bytes: two empty fields, two times
	// and a flag.
	n := d.count(7)
	if d.err != nil {
		return nil
	}
	ts := make([]caddyauth.Token, n)
	for i := range ts {
		ts[i].Digest = string(d.bytes())
		ts[i].Kind = caddyauth.TokenKind(d.bytes())
		ts[i].Expires = d.time()
		ts[i].RotatedAt = d.time()
		ts[i].Successor = d.optional("successor")
	}
	if d.err != nil {
		return nil
	}
	return ts
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail("nanoseconds out of range")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// int64Bits and bitsInt64 are the only places that reinterpret an int64 as
// its two's-complement bits and back, for the fixed-width big-endian keys and
// counters. The round trip is exact for every value, so no bound applies.
func int64Bits(n int64) uint64 { return uint64(n) } // #nosec G115 -- bit reinterpretation, undone by bitsInt64

func bitsInt64(u uint64) int64 { return int64(u) } // #nosec G115 -- bit reinterpretation, undone by int64Bits

// Index keys. Both are fixed-width prefixes followed by the session ID, so a
// prefix scan can never run into a neighbouring user or instant.

// userKey is the by_user key: 8-byte big-endian user ID, then the ID.
func userKey(userID int64, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, int64Bits(userID))
	return append(k, id...)
}

// userPrefix is the by_user prefix of every session of userID.
func userPrefix(userID int64) []byte {
	return binary.BigEndian.AppendUint64(nil, int64Bits(userID))
}

// deadlineKey is the by_deadline key: deadlinePrefix(s.Deadline()), 0x00,
// then the ID.
func deadlineKey(s *caddyauth.Session) []byte {
	k := make([]byte, 0, 9+len(s.ID))
	k = append(k, deadlinePrefix(s.Deadline())...)
	k = append(k, 0)
	return append(k, s.ID...)
}

// Instants representable as int64 Unix nanoseconds (years 1677–2262).
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// deadlinePrefix is t as 8 bytes that sort like t: UnixNano with the sign
// bit flipped (so deadlines before 1970 sort before later ones), big-endian.
// Instants outside int64 nanoseconds are clamped, which keeps them in order
// but lets two of them share a prefix; PurgeExpired therefore re-checks the
// decoded deadline.
func deadlinePrefix(t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minNano):
		n = math.MinInt64
	case t.After(maxNano):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(nil, int64Bits(n)^(1<<63))
}
