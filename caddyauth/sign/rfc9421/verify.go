package rfc9421

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"
)

// Result describes a verified signature.
type Result struct {
	// Label is the verified signature's label.
	Label string
	// KeyID is the keyid parameter: a decimal session id (hmac-sha256) or
	// a registered key id (ed25519).
	KeyID string
	// Key is what the resolver returned for KeyID.
	Key Key
	// Components are the covered components, in the signed order.
	Components []string
	// Created is the created parameter (zero if absent and not required).
	Created time.Time
	// Expires is the expires parameter (zero if absent).
	Expires time.Time
	// Nonce is the nonce parameter ("" if absent and not required).
	Nonce string
	// Tag is the tag parameter ("" if absent).
	Tag string
	// Skew is created minus the server's time, whole seconds: positive when
	// the client's clock is ahead (the clock-skew histogram observes it).
	// Zero when created is absent.
	Skew time.Duration
	// CoversDigest reports that content-digest is covered. The caller must
	// then check the Content-Digest field against the body with
	// VerifyContentDigest before forwarding: the signature binds the field,
	// only that check binds the body.
	CoversDigest bool
}

// ReplayKey is the key under which (keyid, nonce) is remembered, with the
// "replay:" purpose prefix the engine's Ephemeral stores expect. keyid and
// nonce are length-prefixed before hashing, so no two pairs share a key, and
// the result has a fixed size whatever the client sent. "" when the
// signature has no nonce.
func (r *Result) ReplayKey() string {
	if r.Nonce == "" {
		return ""
	}
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(r.KeyID)))
	h.Write(n[:])
	h.Write([]byte(r.KeyID))
	h.Write([]byte(r.Nonce))
	return "replay:rfc9421:" + hex.EncodeToString(h.Sum(nil))
}

// Verify checks the signature on req. It reads Signature-Input and
// Signature from req.Header, selects the signature (p.Label, or the only
// one), and checks, in this order, each step refusing with an *Error:
//
//  1. both fields present (missing_signature if neither, malformed if one)
//     and syntactically valid, components known, unique and lower case;
//  2. coverage: every component and parameter the policy requires
//     (insufficient_coverage, listing all that are missing);
//  3. alg, when sent, is hmac-sha256 or ed25519 (unsupported_algorithm);
//  4. time: created within [now-PastWindow, now+FutureWindow] (clock_skew),
//     expires not reached (expired);
//  5. every covered component present in the request (malformed), which
//     gives the signature base;
//  6. the key: keys.ResolveKey(keyid) (unknown_key), alg matching it;
//  7. the signature over the signature base (bad_signature).
//
// Steps 1–5 need no lookup, so a malformed or stale request costs no store
// access. The policy's nonce is not checked for reuse here: after a
// successful Verify the caller calls CheckReplay (or its own seen-once
// operation with Result.ReplayKey and Policy.ReplayTTL), so that only
// verified signatures consume nonces. Errors that are not *Error come from
// the resolver (wrapped) or mean the resolver returned unusable key material:
// both are server faults, not refusals.
func Verify(ctx context.Context, req Request, keys KeyResolver, p Policy, now time.Time) (*Result, error) {
	p = p.withDefaults()
	inputs, sigs := req.Header[HeaderSignatureInput], req.Header[HeaderSignature]
	switch {
	case len(inputs) == 0 && len(sigs) == 0:
		return nil, &Error{Code: CodeMissingSignature, Detail: "Signature-Input and Signature are required"}
	case len(inputs) == 0:
		return nil, malformed("Signature sent without Signature-Input")
	case len(sigs) == 0:
		return nil, malformed("Signature-Input sent without Signature")
	}
	si, err := parseSignatureInput(inputs, p.Label)
	if err != nil {
		return nil, err
	}
	sig, err := parseSignature(sigs, si.label)
	if err != nil {
		return nil, err
	}
	if miss := p.missing(si, req.HasBody); len(miss) > 0 {
		return nil, &Error{Code: CodeInsufficientCoverage, Detail: "signature does not cover what the policy requires",
			Missing: miss}
	}
	if si.hasAlg && !knownAlg(si.alg) {
		return nil, &Error{Code: CodeUnsupportedAlgorithm, Detail: "alg must be hmac-sha256 or ed25519"}
	}
	res := &Result{Label: si.label, KeyID: si.keyID, Components: si.components, Nonce: si.nonce, Tag: si.tag,
		CoversDigest: si.covers(FieldContentDigest)}
	nowSec := now.Unix()
	server := time.Unix(nowSec, 0).UTC()
	if si.hasCreated {
		res.Created = time.Unix(si.created, 0).UTC()
		// Compare in whole seconds: created may be up to 15 digits, and
		// converting such a difference to a Duration first would overflow
		// and could wrap into the window.
		skew := si.created - nowSec
		res.Skew = seconds(skew)
		if skew > int64(p.FutureWindow/time.Second) {
			return nil, &Error{Code: CodeClockSkew, Detail: "created is ahead of the server's clock by more than the future window",
				Skew: res.Skew, ServerTime: server}
		}
		if -skew > int64(p.PastWindow/time.Second) {
			return nil, &Error{Code: CodeClockSkew, Detail: "created is older than the past window",
				Skew: res.Skew, ServerTime: server}
		}
	}
	if si.hasExpires {
		res.Expires = time.Unix(si.expires, 0).UTC()
		if !p.IgnoreExpires && nowSec >= si.expires {
			return nil, &Error{Code: CodeExpired, Detail: "the signature's expires time has passed",
				Skew: res.Skew, ServerTime: server}
		}
	}
	if !si.hasKeyID {
		// Only reachable with a policy that does not require keyid, which
		// Validate refuses; without a keyid there is no key to try.
		return nil, &Error{Code: CodeUnknownKey, Detail: "signature has no keyid"}
	}
	base, err := signatureBase(&req, si)
	if err != nil {
		return nil, err
	}
	key, err := keys.ResolveKey(ctx, si.keyID)
	if err != nil {
		if e, ok := AsError(err); ok {
			if e.Detail == "" && e.Code == CodeUnknownKey {
				return nil, &Error{Code: CodeUnknownKey, Detail: "no key with this keyid"}
			}
			// The resolver's own refusal (say, an expired session) keeps
			// its detail.
			return nil, e
		}
		return nil, fmt.Errorf("rfc9421: resolve key: %w", err)
	}
	if si.hasAlg && si.alg != string(key.Alg) {
		return nil, &Error{Code: CodeUnsupportedAlgorithm, Detail: "alg does not match the key's algorithm"}
	}
	res.Key = key
	if err := verifySig(key, base, sig); err != nil {
		return nil, err
	}
	return res, nil
}

// seconds converts n seconds to a Duration, saturating instead of
// overflowing (a Duration spans about ±292 years).
func seconds(n int64) time.Duration {
	const limit = int64(math.MaxInt64 / int64(time.Second))
	switch {
	case n > limit:
		return math.MaxInt64
	case n < -limit:
		return math.MinInt64
	}
	return time.Duration(n) * time.Second
}

// SeenOnce is the engine's replay operation (caddyauth.Manager.SeenOnce,
// caddyauth.ReplayGuard, caddyauth.Ephemeral all have it): record key for
// ttl and report whether it was new.
type SeenOnce interface {
	SeenOnce(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
}

// CheckReplay records res's (keyid, nonce) for the policy's ReplayTTL and
// returns an *Error with CodeReplay when it was already recorded. A
// signature without a nonce (only possible when the policy does not require
// one) is let through. Errors from the guard are returned wrapped, for the
// caller to answer 503.
func CheckReplay(ctx context.Context, guard SeenOnce, res *Result, p Policy) error {
	key := res.ReplayKey()
	if key == "" {
		return nil
	}
	first, err := guard.SeenOnce(ctx, key, p.ReplayTTL())
	if err != nil {
		return fmt.Errorf("rfc9421: replay check: %w", err)
	}
	if !first {
		return &Error{Code: CodeReplay, Detail: "this keyid and nonce were already used"}
	}
	return nil
}

// SignatureBase returns the signature base (RFC 9421 §2.5) of the signature
// labelled label ("" for the only one) in the Signature-Input field lines
// sigInput, over req. It is what Verify and Sign compute internally,
// exported for debugging tools and test vectors.
func SignatureBase(req Request, sigInput []string, label string) ([]byte, error) {
	si, err := parseSignatureInput(sigInput, label)
	if err != nil {
		return nil, err
	}
	return signatureBase(&req, si)
}

// signatureBase builds the base: one `"name": value` line per covered
// component, then the @signature-params line, joined by LF without a
// trailing LF. A value holding CR, LF or NUL is refused, so no line can be
// forged by a value.
func signatureBase(req *Request, si *signatureInput) ([]byte, error) {
	params, err := si.paramsString()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, c := range si.components {
		v, err := req.componentValue(c)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			// net/http never produces these; a value holding a newline
			// could forge a line of the signature base.
			return nil, malformed("component " + quoteName(c) + " holds a control character")
		}
		b.WriteByte('"')
		b.WriteString(c)
		b.WriteString(`": `)
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(params)
	return []byte(b.String()), nil
}
