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
//
// The clock is read once here and that second is the request's "now" for
// the window, the replay mark's audit and the idle-reset decision. The
// engine calls Verify makes (Session, the replay guard, the signature lock)
// still read the manager's clock themselves: their API takes no time.
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
	now := d.m.Now()
	sec := now.Unix()
	window := int(d.o.Window / time.Second)
	// q is the search for this request: with X-Timestamp, exactly that
	// second; without, the server's second first, then the window.
	q := query{window: window}
	if len(tsVals) == 1 {
		ts, err := sign.ParseTimestamp(tsVals[0])
		if err != nil {
			return nil, invalid("X-Timestamp must be decimal unix seconds")
		}
		if ts < sec-int64(window) || ts > sec+int64(window) {
			return nil, unauthorized(caddyauth.CodeClockSkew, "X-Timestamp is outside the accepted window", caddyauth.ResultExpired)
		}
		// |ts-sec| <= window <= 1h, checked just above: fits an int.
		q.first, q.single = int(ts-sec), true
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

	mt := sign.NewMatcher(s.Secret, sig, path, sec)
	off, ok, lock, ref := d.match(r, mt, idStr, q)
	if d.workHook != nil {
		d.workHook(mt.Work())
	}
	if ref != nil {
		return nil, ref
	}
	if !ok {
		locked := lock.locked(d, idStr)
		d.m.Abuse().BadSignature(idStr)
		result := caddyauth.ResultBadSignature
		if locked {
			result = caddyauth.ResultLocked
		}
		return nil, unauthorized(caddyauth.CodeBadSignature, "signature does not match", result)
	}

	v := &Verified{Session: s, Offset: off}
	// A signature is valid for 2*window+1 seconds at most; remember it
	// that long. The key is the header's base64 text, not the decoded MAC:
	// the two are one-to-one (strict decoding, SEC-35), and keeping the
	// spelling every release has used means nodes of different versions
	// sharing one guard during a rolling upgrade still see each other's
	// marks (SEC-24). Building it is one allocation; the rest of the mark's
	// cost is the guard's hashing and bookkeeping.
	replayKey, ttl := "amatino\x00"+idStr+"\x00"+sigStr, time.Duration(2*window+1)*time.Second
	if d.o.Replay == ReplayReject {
		first, err := d.m.SeenOnce(r.Context(), replayKey, ttl)
		if err != nil {
			return nil, caddyauth.Unavailable()
		}
		if !first {
			d.m.Observer().Replay(caddyauth.DialectAmatino, "rejected")
			d.m.Audit(caddyauth.Event{Time: now.UTC(), Type: "replay", Dialect: caddyauth.DialectAmatino, Reason: "rejected",
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
	// Manager.Used writes a touch only once LastSeen is TouchInterval old;
	// deciding that here, with this request's now, spares the common case
	// (a session used within the interval) Used's own clock read.
	if d.o.IdleResetOnUse && now.Sub(s.LastSeen) >= caddyauth.TouchInterval(d.o.IdleTimeout) {
		d.m.Used(r.Context(), s, d.o.IdleTimeout)
	}
	return v, nil
}

// query says which seconds to try: first, then, unless single, the rest of
// the window around the server's second.
type query struct {
	first  int  // offset tried first: 0, or the X-Timestamp's
	single bool // X-Timestamp sent: first is the only second
	window int
}

// lockState remembers whether the signature lock was looked up, so a
// request asks the abuse state at most once and a synced request never.
type lockState struct {
	known, on bool
}

func (l *lockState) locked(d *Dialect, id string) bool {
	if !l.known {
		l.on, l.known = d.m.Abuse().SignatureLocked(id), true
	}
	return l.on
}

// match looks for the (second, variant) at which the signature was made,
// cheapest first, and returns its offset from the server's second. The set
// of accepted signatures is: the body-less variant (unless
// RequireBodySignature) and, with LegacyBodySignatures and a body, the raw
// body and its Python-compact JSON re-serialisation, each at any second of
// the window (or at the X-Timestamp's only), the window narrowed to ±1
// second while the session is under the signature lock. The order is:
//
//  1. the body-less variant at the first second (0 or X-Timestamp): a
//     current client with a synced clock costs one HMAC and its body is
//     never read, whatever its size;
//  2. the raw body at that second: an older, synced client costs two HMACs
//     instead of a failed window search before its body is hashed;
//  3. the rest of the window for the body-less variant, then for the raw
//     body (a second is never hashed twice for one variant);
//  4. the compact-JSON variant, over the whole window, unless it is the
//     body byte for byte (its MACs would repeat step 2 and 3's).
//
// Reading the body before step 3 must not change which requests pass: a
// body-less signature off by a few seconds passed without its body being
// read before, so the early read is done only when it cannot consume a
// body the request then needs: a declared length within MaxBody. A
// declared length over MaxBody is refused (413) only once the body-less
// variant has failed, and a body of unknown length (chunked) is read only
// then, as before. An early read that fails (a broken connection) refuses
// the request as an unreadable body: it could not be forwarded whole.
//
// The signature lock is only looked up once the first second has failed:
// it narrows the window, and a synced request is accepted either way.
// ref is a refusal to answer at once (the body could not be read).
func (d *Dialect) match(r *http.Request, mt *sign.Matcher, id string, q query) (off int, ok bool, lock lockState, ref *caddyauth.Refusal) {
	pathVariant := !d.o.RequireBodySignature
	bodyVariants := *d.o.LegacyBodySignatures && r.ContentLength != 0
	if pathVariant && mt.At(q.first, nil) {
		return q.first, true, lock, nil
	}
	var (
		body     []byte
		bodyRead bool
	)
	read := func() *caddyauth.Refusal {
		b, ref := readBody(r, d.o.MaxBody)
		if ref != nil {
			return ref
		}
		restoreBody(r, b)
		body, bodyRead = b, true
		return nil
	}
	early := !pathVariant || q.single || (r.ContentLength > 0 && r.ContentLength <= d.o.MaxBody)
	if bodyVariants && early {
		if ref := read(); ref != nil {
			return 0, false, lock, ref
		}
		if len(body) > 0 && mt.At(q.first, body) {
			return q.first, true, lock, nil
		}
	}
	radius := -1 // q.single: no second but the first
	if !q.single {
		// A session that collected too many bad signatures recently is
		// only checked at the current second (±1): a flood of forgeries
		// on a known id then costs three HMACs per variant instead of a
		// window search, while its owner's fresh signatures, body-signed
		// ones included, still pass.
		radius = q.window
		if lock.locked(d, id) {
			radius = min(q.window, 1)
		}
		if pathVariant {
			if off, ok := mt.Around(nil, radius); ok {
				return off, true, lock, nil
			}
		}
	}
	if !bodyVariants {
		return 0, false, lock, nil
	}
	if !bodyRead {
		if ref := read(); ref != nil {
			return 0, false, lock, ref
		}
		// Read late (length unknown or over MaxBody): offset 0 is still
		// to be tried for the raw body.
		if len(body) > 0 && mt.At(q.first, body) {
			return q.first, true, lock, nil
		}
	}
	if len(body) == 0 {
		return 0, false, lock, nil
	}
	if off, ok := mt.Around(body, radius); ok {
		return off, true, lock, nil
	}
	compact, valid := sign.PythonCompactJSON(body)
	if !valid || bytes.Equal(compact, body) { // SEC-21 exempt: two copies of the request body, no MAC
		return 0, false, lock, nil
	}
	if mt.At(q.first, compact) {
		return q.first, true, lock, nil
	}
	off, ok = mt.Around(compact, radius)
	return off, ok, lock, nil
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
