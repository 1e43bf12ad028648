package videntity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// Key syntax.
const (
	// KeyLength is the length of the keys the gateway issues: 43 symbols of
	// 62 carry 256 bits (SEC-08).
	KeyLength = 43
	// MinKeyLength and MaxKeyLength bound a presented key (SEC-36).
	MinKeyLength = 32
	MaxKeyLength = 128
)

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// keyByteLimit is the largest multiple of 62 not above 256: random bytes at
// or above it are thrown away, so every symbol is equally likely.
const keyByteLimit = 256 / len(keyAlphabet) * len(keyAlphabet)

// newSessionKey returns a fresh key from crypto/rand.
func newSessionKey() string { return keyFrom(rand.Reader) }

// keyFrom draws a key from src by rejection sampling. crypto/rand's reader
// never fails (Go ≥ 1.24); a failing test reader makes it panic.
func keyFrom(src io.Reader) string {
	out := make([]byte, 0, KeyLength)
	var buf [64]byte
	for len(out) < KeyLength {
		if _, err := io.ReadFull(src, buf[:]); err != nil {
			panic("videntity: read random: " + err.Error())
		}
		for _, b := range buf {
			if int(b) >= keyByteLimit {
				continue
			}
			out = append(out, keyAlphabet[int(b)%len(keyAlphabet)])
			if len(out) == KeyLength {
				break
			}
		}
	}
	return string(out)
}

// validKey checks a presented key's syntax before any lookup (SEC-36).
func validKey(k string) bool {
	if len(k) < MinKeyLength || len(k) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// sessionID is the store id of a key: its SHA-256 in lower-case hex, 64
// characters, which no decimal amatino id can equal. Only the digest is
// stored (SEC-16).
func sessionID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
