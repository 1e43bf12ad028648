package rfc9421

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/dunglas/httpsfv"
)

// SignParams says what a signature covers and carries.
type SignParams struct {
	// Label is the signature's label. Default: DefaultLabel ("sig1").
	Label string
	// KeyID is the keyid parameter; required.
	KeyID string
	// Alg, when set, is sent as the alg parameter; it must equal the key's
	// algorithm. Empty: no alg parameter (the key determines it).
	Alg Algorithm
	// Components are the covered components, in order.
	Components []string
	// Created is the created parameter; zero omits it.
	Created time.Time
	// Expires is the expires parameter; zero omits it.
	Expires time.Time
	// Nonce is the nonce parameter; "" omits it. See NewNonce.
	Nonce string
	// Tag is the tag parameter; "" omits it.
	Tag string
}

// Sign signs req with key and returns the Signature-Input and Signature
// field values to send. Parameters are serialised in the order created,
// expires, keyid, alg, nonce, tag. The result is checked by parsing it back
// the way Verify does, so a signature Sign produces is never refused as
// malformed by this package.
func Sign(req Request, key Key, sp SignParams) (sigInput, signature string, err error) {
	if sp.KeyID == "" {
		return "", "", fmt.Errorf("rfc9421: sign: keyid is required")
	}
	if sp.Alg != "" && sp.Alg != key.Alg {
		return "", "", fmt.Errorf("rfc9421: sign: alg %q does not match the key's %q", sp.Alg, key.Alg)
	}
	label := sp.Label
	if label == "" {
		label = DefaultLabel
	}
	items := make([]httpsfv.Item, 0, len(sp.Components))
	for _, c := range sp.Components {
		items = append(items, httpsfv.NewItem(c))
	}
	params := httpsfv.NewParams()
	if !sp.Created.IsZero() {
		params.Add(ParamCreated, sp.Created.Unix())
	}
	if !sp.Expires.IsZero() {
		params.Add(ParamExpires, sp.Expires.Unix())
	}
	params.Add(ParamKeyID, sp.KeyID)
	if sp.Alg != "" {
		params.Add(ParamAlg, string(sp.Alg))
	}
	if sp.Nonce != "" {
		params.Add(ParamNonce, sp.Nonce)
	}
	if sp.Tag != "" {
		params.Add(ParamTag, sp.Tag)
	}
	in := httpsfv.NewDictionary()
	in.Add(label, httpsfv.InnerList{Items: items, Params: params})
	sigInput, err = httpsfv.Marshal(in)
	if err != nil {
		return "", "", fmt.Errorf("rfc9421: sign: serialise Signature-Input (label, keyid, nonce and tag must be printable ASCII): %w", err)
	}
	si, err := parseSignatureInput([]string{sigInput}, label)
	if err != nil {
		return "", "", fmt.Errorf("rfc9421: sign: %w", err)
	}
	base, err := signatureBase(&req, si)
	if err != nil {
		return "", "", fmt.Errorf("rfc9421: sign: %w", err)
	}
	raw, err := makeSig(key, base)
	if err != nil {
		return "", "", err
	}
	out := httpsfv.NewDictionary()
	out.Add(label, httpsfv.NewItem(raw))
	signature, err = httpsfv.Marshal(out)
	if err != nil {
		return "", "", fmt.Errorf("rfc9421: sign: serialise Signature: %w", err)
	}
	return sigInput, signature, nil
}

// NonceBytes is how many random bytes NewNonce draws: 128 bits, so that
// nonces never collide within a key's replay window.
const NonceBytes = 16

// NewNonce returns NonceBytes random bytes from r (crypto/rand when nil) as
// unpadded base64url: 22 characters, valid in a structured-field string.
func NewNonce(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, NonceBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("rfc9421: draw nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
