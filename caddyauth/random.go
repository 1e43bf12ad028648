package caddyauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// NewAmatinoKey returns a fresh api key in the documented amatino form: 32
// bytes from crypto/rand, URL-safe base64 (44 characters), the single '='
// replaced by 'A' (SEC-08).
func NewAmatinoKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return strings.Replace(base64.URLEncoding.EncodeToString(b), "=", "A", 1)
}

// NewSessionNumber returns a random positive int64 (63 random bits), the
// amatino session_id. It identifies the session; the api key is what proves
// possession, so the id need not be secret.
func NewSessionNumber() int64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		n := int64(binary.BigEndian.Uint64(b[:]) >> 1)
		if n > 0 {
			return n
		}
	}
}

func subtleEq(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
