package videntity

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Verified is a request that passed verification.
type Verified struct {
	// Session is the live session (shared with the cache: read only). Its
	// UserID is the user the request acts for.
	Session *caddyauth.Session
}

// Verify checks the session key of a proxied request. The key comes from
// exactly one of the X-Session-Key header and a session_key field of a form
// body, with one value (else 400 invalid_request); never from the query
// string (SEC-14). A form body is read (at most MaxBody, else 413) and put
// back byte for byte, so StripCredentials can drop the key from it. The
// key's syntax is checked before any lookup (SEC-36). Refusals: 401
// missing_credentials, malformed_credentials, unknown_session,
// session_expired; 503 when the store cannot answer. With IdleResetOnUse, a
// verified request resets the idle timer (coalesced by Manager.Used).
func (d *Dialect) Verify(r *http.Request) (*Verified, *caddyauth.Refusal) {
	var hdrVals []string
	for k, vs := range r.Header {
		if !isKeyHeader(k) {
			continue
		}
		if strings.IndexByte(k, '_') >= 0 {
			return nil, invalid("X-Session-Key must be spelled with hyphens")
		}
		hdrVals = append(hdrVals, vs...)
	}
	for _, v := range hdrVals {
		if strings.IndexByte(v, ',') >= 0 {
			return nil, invalid("X-Session-Key must hold a single value")
		}
	}

	var formVals []string
	if isForm(r.Header) {
		if len(r.Header.Values("Content-Type")) > 1 {
			return nil, invalid("Content-Type must appear once")
		}
		if encoded(r.Header) {
			return nil, &caddyauth.Refusal{Status: http.StatusUnsupportedMediaType, Code: caddyauth.CodeUnsupportedMedia,
				Message: "a form body must not have a Content-Encoding", Result: caddyauth.ResultMalformed}
		}
		hadBody := r.Body != nil && r.Body != http.NoBody
		body, err := caddyauth.ReadBody(r, d.o.MaxBody)
		switch {
		case errors.Is(err, caddyauth.ErrBodyTooLarge):
			return nil, &caddyauth.Refusal{Status: http.StatusRequestEntityTooLarge, Code: caddyauth.CodeBodyTooLarge,
				Message: "request body too large", Result: caddyauth.ResultMalformed}
		case err != nil:
			return nil, invalid("cannot read request body")
		}
		if hadBody {
			setBody(r, body)
		}
		formVals = formKeys(body)
	}

	var key string
	switch {
	case len(hdrVals) > 1 || len(formVals) > 1:
		return nil, invalid("the session key must be given once")
	case len(hdrVals) == 1 && len(formVals) == 1:
		return nil, invalid("the session key must be given in X-Session-Key or in the form body, not both")
	case len(hdrVals) == 1:
		key = hdrVals[0]
	case len(formVals) == 1:
		key = formVals[0]
	default:
		// A key in the query string is not looked at (SEC-14).
		return nil, unauthorized(caddyauth.CodeMissingCredentials, "session key required", caddyauth.ResultMissing)
	}
	if r.URL != nil && queryHasKey(r.URL.RawQuery) {
		return nil, invalid("the session key must not be sent in the query string")
	}
	if !validKey(key) {
		return nil, unauthorized(caddyauth.CodeMalformedCredentials,
			"session key must be 32 to 128 letters and digits", caddyauth.ResultMalformed)
	}

	s, err := d.m.Session(r.Context(), sessionID(key))
	switch {
	case err == nil && s.Dialect == caddyauth.DialectVidentity && s.Kind == caddyauth.KindSessionKey:
	case err == nil, errors.Is(err, caddyauth.ErrUnknownSession):
		return nil, unauthorized(caddyauth.CodeUnknownSession, "unknown session", caddyauth.ResultUnknownSession)
	case errors.Is(err, caddyauth.ErrSessionExpired):
		return nil, unauthorized(caddyauth.CodeSessionExpired, "session expired", caddyauth.ResultExpired)
	default:
		return nil, caddyauth.Unavailable()
	}
	if d.o.IdleResetOnUse {
		d.m.Used(r.Context(), s, d.o.IdleTimeout)
	}
	return &Verified{Session: s}, nil
}

// formKeys returns the session_key values of a form body (names compared
// after percent-decoding, as the upstream will decode them). A value that
// does not decode is returned raw, and then fails the syntax check.
func formKeys(body []byte) []string {
	var vals []string
	for pair := range bytes.SplitSeq(body, []byte("&")) {
		rawKey, rawVal, _ := bytes.Cut(pair, []byte("="))
		if !isKeyName(rawKey) {
			continue
		}
		v, err := url.QueryUnescape(string(rawVal))
		if err != nil {
			v = string(rawVal)
		}
		vals = append(vals, v)
	}
	return vals
}

// queryHasKey reports a session_key parameter in a raw query.
func queryHasKey(raw string) bool {
	for pair := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if isKeyName([]byte(k)) {
			return true
		}
	}
	return false
}

// isKeyName reports whether a raw form name decodes to session_key.
func isKeyName(raw []byte) bool {
	if len(raw) < len(FieldSessionKey) || len(raw) > 3*len(FieldSessionKey) {
		return false
	}
	k, err := url.QueryUnescape(string(raw))
	return err == nil && k == FieldSessionKey
}

// dropKeyPairs removes every pair whose name decodes to session_key from a
// form body, joining the others with '&' as they were: every other byte is
// kept, in order. changed is false when there was nothing to remove.
func dropKeyPairs(body []byte) (out []byte, changed bool) {
	out = make([]byte, 0, len(body))
	kept := 0
	for pair := range bytes.SplitSeq(body, []byte("&")) {
		name, _, _ := bytes.Cut(pair, []byte("="))
		if isKeyName(name) {
			changed = true
			continue
		}
		if kept > 0 {
			out = append(out, '&')
		}
		out = append(out, pair...)
		kept++
	}
	if !changed {
		return body, false
	}
	return out, true
}

// formBody is a form body Verify read and put back; StripCredentials
// recognises it and rewrites it without the key.
type formBody struct {
	*bytes.Reader
	raw []byte
}

func (*formBody) Close() error { return nil }

// setBody makes b the request body, with its exact length. An empty body
// becomes http.NoBody, which every client transport reads as length 0.
func setBody(r *http.Request, b []byte) {
	r.TransferEncoding = nil
	r.GetBody = nil
	r.ContentLength = int64(len(b))
	if len(b) == 0 {
		r.Body = http.NoBody
		if _, ok := r.Header["Content-Length"]; ok {
			r.Header.Set("Content-Length", "0")
		}
		return
	}
	r.Body = &formBody{Reader: bytes.NewReader(b), raw: b}
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
}

func invalid(msg string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusBadRequest, Code: caddyauth.CodeInvalidRequest, Message: msg,
		Result: caddyauth.ResultMalformed}
}

func unauthorized(code, msg, result string) *caddyauth.Refusal {
	return &caddyauth.Refusal{Status: http.StatusUnauthorized, Code: code, Message: msg, Result: result,
		Challenges: []string{Challenge}}
}
