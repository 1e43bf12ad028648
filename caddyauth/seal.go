package caddyauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MasterKeySize is the size of the master key in bytes (AES-256).
const MasterKeySize = 32

// sealVersion prefixes every sealed value so the format can change later
// without guessing.
const sealVersion = 1

// ErrSealOpen means a sealed secret could not be decrypted: a wrong master
// key, or tampering. The session is then refused, never trusted (SEC-16).
var ErrSealOpen = errors.New("cannot open sealed secret")

// Sealer encrypts session secrets at rest with AES-256-GCM under the master
// key. The session id is bound in as additional data, so a sealed key cannot
// be moved to another session's record.
type Sealer struct {
	aead    cipher.AEAD
	logKey  []byte
	version byte
}

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("master key: need %d bytes, got %d", MasterKeySize, len(masterKey))
	}
	// Derive separate keys for encryption and for log hashing, so a log
	// hash can never help an attacker against the encryption key.
	encKey := deriveKey(masterKey, "sessiongate seal v1")
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Sealer{aead: aead, logKey: deriveKey(masterKey, "sessiongate log v1"), version: sealVersion}, nil
}

func deriveKey(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Seal encrypts secret for the session id.
func (s *Sealer) Seal(id string, secret []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce) // crypto/rand.Read never returns an error (Go ≥ 1.24)
	out := make([]byte, 0, 1+len(nonce)+len(secret)+s.aead.Overhead())
	out = append(out, s.version)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, secret, []byte(id))
}

// Open decrypts what Seal produced for the same id.
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != s.version {
		return nil, ErrSealOpen
	}
	out, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(id))
	if err != nil {
		return nil, ErrSealOpen
	}
	return out, nil
}

// LogHash returns a keyed hash of a session id for logs: stable, so events of
// one session can be correlated, but useless to anyone without the master key
// (SEC-44: never a raw session id in a log).
func (s *Sealer) LogHash(id string) string {
	m := hmac.New(sha256.New, s.logKey)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// NewMasterKey returns a fresh random master key.
func NewMasterKey() []byte {
	k := make([]byte, MasterKeySize)
	rand.Read(k)
	return k
}
