package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// User record format, version 1. Binary like the session record rather than
// JSON: encoding/json cannot write times outside years 0–9999 and would
// keep the writer's zone offset, and sharing the session codec's primitives
// means one set of fuzzed decoding rules instead of two:
//
//	byte     version (1)
//	uvarint  len, bytes  Email, Username, AccountNumber, PasswordHash
//	byte     Disabled (0 or 1)
//	time     Created (varint Unix seconds, uvarint nanoseconds)
//	uvarint  number of public keys
//	per key:
//	  uvarint len, bytes  ID
//	  uvarint len, bytes  Key
//	  time     Added
//
// The user ID is not repeated: it is the record's key.
const userRecordVersion = 1

// errCorruptUser marks a user record that cannot be decoded. Like
// errCorrupt it never shows the bytes (they hold a password hash).
var errCorruptUser = errors.New("corrupt user record")

// encodeUser returns the record for u.
func encodeUser(u *caddyauth.User) []byte {
	b := []byte{userRecordVersion}
	for _, f := range []string{u.Email, u.Username, u.AccountNumber, u.PasswordHash} {
		b = appendBytes(b, []byte(f))
	}
	if u.Disabled {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendTime(b, u.Created)
	b = binary.AppendUvarint(b, uint64(len(u.PublicKeys)))
	for _, k := range u.PublicKeys {
		b = appendBytes(b, []byte(k.ID))
		b = appendBytes(b, k.Key)
		b = appendTime(b, k.Added)
	}
	return b
}

// decodeUser parses a record stored under id. The result shares no memory
// with rec. Times come back in UTC; no keys comes back as nil PublicKeys.
func decodeUser(id int64, rec []byte) (*caddyauth.User, error) {
	d := decoder{b: rec, corrupt: errCorruptUser}
	if v := d.byte(); d.err == nil && v != userRecordVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errCorruptUser, v)
	}
	u := &caddyauth.User{ID: id}
	u.Email = string(d.bytes())
	u.Username = string(d.bytes())
	u.AccountNumber = string(d.bytes())
	u.PasswordHash = string(d.bytes())
	switch d.byte() {
	case 0:
	case 1:
		u.Disabled = true
	default:
		d.fail("bad disabled flag")
	}
	u.Created = d.time()
	// A key takes at least 1+1+2 bytes: two empty fields and a time.
	if n := d.uvarint(); d.err == nil && n > 0 {
		if n > uint64(len(d.b)/4) {
			d.fail("bad key count")
		} else {
			u.PublicKeys = make([]caddyauth.PublicKey, n)
			for i := range u.PublicKeys {
				u.PublicKeys[i].ID = string(d.bytes())
				u.PublicKeys[i].Key = d.bytes()
				u.PublicKeys[i].Added = d.time()
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return u, nil
}

// userIDKey is the users key of id: 8 bytes big-endian, so keys sort like
// the (positive) ids and ListUsers can page with a cursor.
func userIDKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(nil, int64Bits(id))
}
