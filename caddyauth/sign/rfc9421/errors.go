package rfc9421

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// Code is the stable, machine-readable reason of a refusal. Codes appear in
// JSON error bodies and logs, so the set is closed and values never change.
type Code string

// Refusal codes.
const (
	// CodeMissingSignature: neither Signature-Input nor Signature was sent.
	// The gateway answers 401 with Accept-Signature so a client can learn the
	// policy.
	CodeMissingSignature Code = "missing_signature"
	// CodeMalformedSignature: a header is not valid structured-field syntax,
	// a parameter has the wrong type, a component is unknown, duplicated or
	// absent from the request, or the label cannot be selected.
	CodeMalformedSignature Code = "malformed_signature"
	// CodeUnknownKey: no key has the signature's keyid.
	CodeUnknownKey Code = "unknown_key"
	// CodeUnsupportedAlgorithm: alg names an algorithm other than
	// hmac-sha256 and ed25519, alg does not match the key's algorithm, or a
	// Content-Digest carries no algorithm the gateway checks.
	CodeUnsupportedAlgorithm Code = "unsupported_algorithm"
	// CodeInsufficientCoverage: the signature does not cover every component
	// or parameter the policy requires; Error.Missing lists them.
	CodeInsufficientCoverage Code = "insufficient_coverage"
	// CodeClockSkew: created is outside the policy's past or future window;
	// Error.Skew and Error.ServerTime say by how much and against what.
	CodeClockSkew Code = "clock_skew"
	// CodeExpired: the signature's own expires time has passed.
	CodeExpired Code = "expired"
	// CodeBadSignature: the signature (or the Content-Digest) does not match
	// the request.
	CodeBadSignature Code = "bad_signature"
	// CodeReplay: the (keyid, nonce) pair was already used inside the
	// window. Verify never returns it; CheckReplay does.
	CodeReplay Code = "replay"
)

// Error is a refusal. It never holds key material, signature bytes or a
// nonce: Detail names what was wrong, not the values involved, apart from
// component names and parameter names the client itself sent.
type Error struct {
	// Code is the stable reason.
	Code Code
	// Detail is a short human explanation, safe to send to the client.
	Detail string
	// Missing lists, for CodeInsufficientCoverage, the component
	// identifiers (e.g. "@query", "content-digest") and signature parameters
	// (e.g. "nonce") the policy requires and the signature lacks.
	Missing []string
	// Skew is, for CodeClockSkew, created minus the server's time: positive
	// when the client's clock is ahead. It is also set for CodeExpired.
	Skew time.Duration
	// ServerTime is, for CodeClockSkew and CodeExpired, the server's time
	// the decision was made against (whole seconds), so a client can correct
	// its clock.
	ServerTime time.Time
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if len(e.Missing) > 0 {
		b.WriteString(" (missing: ")
		b.WriteString(strings.Join(e.Missing, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrBadSignature) and the like match any Error
// with the same code, whatever its detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Detail == "" && t.Missing == nil
}

// Status is the HTTP status the gateway should answer with: 400 for a
// request that cannot be a valid signature whatever the key (malformed
// syntax, unsupported algorithm), 401 for everything that is a failed
// authentication, so clients retry with new credentials rather than fix
// their syntax.
func (e *Error) Status() int {
	switch e.Code {
	case CodeMalformedSignature, CodeUnsupportedAlgorithm:
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// Sentinels for errors.Is; compare codes, not details.
var (
	ErrMissingSignature     = &Error{Code: CodeMissingSignature}
	ErrMalformedSignature   = &Error{Code: CodeMalformedSignature}
	ErrUnknownKey           = &Error{Code: CodeUnknownKey}
	ErrUnsupportedAlgorithm = &Error{Code: CodeUnsupportedAlgorithm}
	ErrInsufficientCoverage = &Error{Code: CodeInsufficientCoverage}
	ErrClockSkew            = &Error{Code: CodeClockSkew}
	ErrExpired              = &Error{Code: CodeExpired}
	ErrBadSignature         = &Error{Code: CodeBadSignature}
	ErrReplay               = &Error{Code: CodeReplay}
)

// AsError returns err's *Error, if it is or wraps one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func malformed(detail string) *Error {
	return &Error{Code: CodeMalformedSignature, Detail: detail}
}

// quoteName quotes a client-supplied name for an error detail, cut short so
// a hostile client cannot make log lines or answers arbitrarily long.
func quoteName(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s) + `"`
}
