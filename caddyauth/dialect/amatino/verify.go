package amatino

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

// Canonical header keys (Go canonicalises incoming names to these).
const (
	hdrSessionID = "X-Session-Id"
	hdrSignature = "X-Signature"
	hdrTimestamp = "X-Timestamp"
)

// Verified is a request that passed verification.
type Verified struct {
	// Session is the live session (shared with the cache: read only).
	Session *caddyauth.Session
	// Offset is the matched second minus the server's second.
	Offset int
	// Replayed is true when the signature had been seen before within its
	// window and the replay mode let it through.
	Replayed bool
}

// SignedPath returns the path the client signed: the request target as the
// client sent it, up to the query string, before any rewrite (SEC-28).
func SignedPath(r *http.Request) string {
	uri := caddyauth.RequestURI(r.Context())
	if uri == "" {
		uri = r.RequestURI
	}
	if !strings.HasPrefix(uri, "/") {
		// Absolute-form or empty target: use the escaped path Go parsed.
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// Verify checks the amatino credentials of r, whose client-signed path is
// path. Syntax is checked before any lookup (SEC-36); exactly one of each
// header (SEC-27); the MAC compared in constant time after a strict decode to
// 64 bytes (SEC-21). The body is read only if a body-covering variant must
// be tried, and is then put back unchanged.
func (d *Dialect) Verify(r *http.Request, path string) (*Verified, *caddyauth.Refusal) {
	h := r.Header
	idVals, sigVals, tsVals := h[hdrSessionID], h[hdrSignature], h[hdrTimestamp]
	if len(idVals) > 1 || len(sigVals) > 1 || len(tsVals) > 1 {
		return nil, invalid("credential headers must appear once each")
	}
	idStr, sigStr := first(idVals), first(sigVals)
	if idStr == "" || sigStr == "" {
		return nil, unauthorized(caddyauth.CodeMissingCredentials, "X-Session-ID and X-Signature are required", caddyauth.ResultMissing)
	}
	if strings.IndexByte(sigStr, ',') >= 0 || strings.IndexByte(idStr, ',') >= 0 {
		return nil, invalid("credential headers must hold a single value")
	}
	if _, ok := caddyauth.ParsePositiveDecimal(idStr); !ok {
		return nil, unauthorized(caddyauth.CodeMalformedCredentials, "X-Session-ID must be a positive decimal integer", caddyauth.ResultMalformed)
	}
	sig, err := sign.DecodeSignature(sigStr)
	if err != nil {
		return nil, unauthorized(caddyauth.CodeMalformedCredentials, "X-Signature must be standard base64 of 64 bytes", caddyauth.ResultMalformed)
	}
	now := d.m.Now().Unix()
	window := int(d.o.Window / time.Second)
	ts, hasTS := int64(0), len(tsVals) == 1
	if hasTS {
		if ts, err = sign.ParseTimestamp(tsVals[0]); err != nil {
			return nil, invalid("X-Timestamp must be decimal unix seconds")
		}
		if ts < now-int64(window) || ts > now+int64(window) {
			return nil, unauthorized(caddyauth.CodeClockSkew, "X-Timestamp is outside the accepted window", caddyauth.ResultExpired)
		}
	}

	s, err := d.m.Session(r.Context(), idStr)
	switch {
	case err == nil && s.Dialect == caddyauth.DialectAmatino && s.Kind == caddyauth.KindHMACKey:
	case err == nil, errors.Is(err, caddyauth.ErrUnknownSession):
		return nil, unknownSession()
	case errors.Is(err, caddyauth.ErrSessionExpired):
		return nil, unauthorized(caddyauth.CodeSessionExpired, "session expired", caddyauth.ResultExpired)
	default:
		return nil, caddyauth.Unavailable()
	}

	// A session that collected too many bad signatures recently is only
	// checked at the current second (±1): a flood of forgeries on a known
	// id then costs three HMACs per variant instead of a window search,
	// while its owner's fresh signatures, body-signed ones included, still
	// pass.
	locked := d.m.Abuse().SignatureLocked(idStr)
	search := window
	if locked {
		search = min(window, 1)
	}
	match := func(body []byte) (int, bool) {
		if hasTS {
			return int(ts - now), sign.VerifyAt(s.Secret, sig, ts, path, body)
		}
		return sign.Search(s.Secret, sig, path, body, now, search)
	}
	off, ok := 0, false
	if !d.o.RequireBodySignature {
		off, ok = match(nil)
	}
	if !ok && *d.o.LegacyBodySignatures && r.ContentLength != 0 {
		body, ref := readBody(r, d.o.MaxBody)
		if ref != nil {
			return nil, ref
		}
		restoreBody(r, body)
		if len(body) > 0 {
			if off, ok = match(body); !ok {
				if compact, valid := sign.PythonCompactJSON(body); valid {
					off, ok = match(compact)
				}
			}
		}
	}
	if !ok {
		d.m.Abuse().BadSignature(idStr)
		result := caddyauth.ResultBadSignature
		if locked {
			result = caddyauth.ResultLocked
		}
		return nil, unauthorized(caddyauth.CodeBadSignature, "signature does not match", result)
	}

	v := &Verified{Session: s, Offset: off}
	// A signature is valid for 2*window+1 seconds at most; remember it
	// that long.
	replayKey, ttl := "amatino\x00"+idStr+"\x00"+sigStr, time.Duration(2*window+1)*time.Second
	if d.o.Replay == ReplayReject {
		first, err := d.m.SeenOnce(r.Context(), replayKey, ttl)
		if err != nil {
			return nil, caddyauth.Unavailable()
		}
		if !first {
			d.m.Observer().Replay(caddyauth.DialectAmatino, "rejected")
			d.m.Audit(caddyauth.Event{Type: "replay", Dialect: caddyauth.DialectAmatino, Reason: "rejected",
				UserID: s.UserID, SessionHash: d.m.LogHash(s.ID), ClientIP: caddyauth.ClientIP(r.Context())})
			return nil, unauthorized(caddyauth.CodeReplay, "signature already used", caddyauth.ResultReplay)
		}
	} else {
		// Observe mode only counts repeats: with a shared guard the
		// count happens in the background (Manager.ObserveOnce), so it
		// costs the request no round trip and cannot fail it. Replayed
		// is then only known for a node-local guard.
		v.Replayed = !d.m.ObserveOnce(r.Context(), replayKey, ttl, func() {
			d.m.Observer().Replay(caddyauth.DialectAmatino, "observed")
		})
	}
	if d.o.IdleResetOnUse {
		d.m.Used(r.Context(), s, d.o.IdleTimeout)
	}
	return v, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// restoreBody puts a fully read body back so it is forwarded unchanged.
func restoreBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.TransferEncoding = nil
	r.GetBody = nil
}
