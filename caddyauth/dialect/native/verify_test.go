package native_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/native"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// TestVerifyAccepts: well-signed requests of both key kinds pass, name the
// right user and session, and a body that had to be read is forwarded byte
// for byte (SEC-28, SEC-34).
func TestVerifyAccepts(t *testing.T) {
	body := []byte(`{"name":"Acme","note":"  spaces \u00e9 kept  "}`)
	tests := []struct {
		name     string
		q        req
		s        func(e *env) signing
		user     int64
		session  bool
		wantBody []byte // nil: no body
	}{
		{name: "hmac GET", q: req{target: "/entities?x=1"}, s: func(*env) signing { return hmacSigning() },
			user: aliceID, session: true},
		{name: "hmac GET without query", q: req{target: "/entities"}, s: func(*env) signing { return hmacSigning() },
			user: aliceID, session: true},
		{name: "hmac POST", q: req{method: "POST", target: "/entities?x=1", body: body, contentType: "application/json"},
			s: func(*env) signing { return hmacSigning() }, user: aliceID, session: true, wantBody: body},
		{name: "hmac POST sha-512 digest", q: req{method: "POST", target: "/e", body: body, contentType: "application/json"},
			s:    func(*env) signing { s := hmacSigning(); s.digest = rfc9421.DigestSHA512; return s },
			user: aliceID, session: true, wantBody: body},
		{name: "hmac chunked POST", q: req{method: "POST", target: "/e", body: body, contentType: "application/json", chunked: true},
			s: func(*env) signing { return hmacSigning() }, user: aliceID, session: true, wantBody: body},
		{name: "hmac with alg", q: req{target: "/e"}, s: func(*env) signing { s := hmacSigning(); s.alg = rfc9421.AlgHMACSHA256; return s },
			user: aliceID, session: true},
		{name: "hmac with expires ahead", q: req{target: "/e"}, s: func(*env) signing { s := hmacSigning(); s.expires = t0 + 1; return s },
			user: aliceID, session: true},
		{name: "ed25519 B.2.6 key GET", q: req{target: "/entities?x=1"}, s: func(e *env) signing { return edSigning(e.carolKey) },
			user: carolID},
		{name: "ed25519 B.2.6 key PUT", q: req{method: "PUT", target: "/e/1", body: body, contentType: "application/json"},
			s: func(e *env) signing { s := edSigning(e.carolKey); s.alg = rfc9421.AlgEd25519; return s }, user: carolID, wantBody: body},
		{name: "ed25519 key of a second-layer user", q: req{target: "/e"}, s: func(e *env) signing { return edSigning(e.erinKey) },
			user: erinID},
		{name: "upper-case host, default port", q: req{target: "/e", host: "Example.COM:80"}, s: func(*env) signing { return hmacSigning() },
			user: aliceID, session: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, native.Options{})
			s := tt.s(e)
			r := e.signed(t, tt.q, s)
			v := e.verifyOK(t, r)
			if v.UserID != tt.user {
				t.Errorf("user %d, want %d", v.UserID, tt.user)
			}
			if (v.Session != nil) != tt.session {
				t.Errorf("session %v, want one: %v", v.Session, tt.session)
			}
			if v.KeyID != s.keyID || v.Alg != s.key.Alg {
				t.Errorf("key %q %s, want %q %s", v.KeyID, v.Alg, s.keyID, s.key.Alg)
			}
			got, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.wantBody) && !(len(got) == 0 && tt.wantBody == nil) {
				t.Errorf("forwarded body %q, want %q", got, tt.wantBody)
			}
			if tt.wantBody != nil {
				if r.ContentLength != int64(len(tt.wantBody)) || r.Header.Get("Content-Length") != strconv.Itoa(len(tt.wantBody)) ||
					len(r.TransferEncoding) != 0 {
					t.Errorf("forwarded framing: length %d, header %q, TE %v", r.ContentLength, r.Header.Get("Content-Length"), r.TransferEncoding)
				}
			} else if r.Header.Get("Content-Length") != "" {
				t.Errorf("a body-less request got Content-Length %q", r.Header.Get("Content-Length"))
			}
		})
	}
}

// TestVerifyRefusals: every refusal code of the native scheme, with its
// status, requests_total result and challenge (SEC-20, SEC-22, SEC-25,
// SEC-27).
func TestVerifyRefusals(t *testing.T) {
	body := []byte(`{"name":"Acme"}`)
	post := req{method: "POST", target: "/entities?x=1", body: body, contentType: "application/json"}
	const (
		s400, s401 = http.StatusBadRequest, http.StatusUnauthorized
	)
	tests := []struct {
		name         string
		build        func(t *testing.T, e *env) *http.Request
		status       int
		code, result string
	}{
		{"missing_signature", func(t *testing.T, e *env) *http.Request { return req{target: "/e"}.build() },
			s401, "missing_signature", "missing"},
		{"signature without input", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e"}, hmacSigning())
			r.Header.Del(rfc9421.HeaderSignatureInput)
			return r
		}, s400, "malformed_signature", "malformed"},
		{"input without signature", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e"}, hmacSigning())
			r.Header.Del(rfc9421.HeaderSignature)
			return r
		}, s400, "malformed_signature", "malformed"},
		{"garbage input", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e"}, hmacSigning())
			r.Header.Set(rfc9421.HeaderSignatureInput, "sig1=(((")
			return r
		}, s400, "malformed_signature", "malformed"},
		{"SEC-27 two signatures without a label policy", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e"}, hmacSigning())
			in, sig := r.Header.Get(rfc9421.HeaderSignatureInput), r.Header.Get(rfc9421.HeaderSignature)
			r.Header.Set(rfc9421.HeaderSignatureInput, in+", "+strings.Replace(in, "sig1=", "sig2=", 1))
			r.Header.Set(rfc9421.HeaderSignature, sig+", "+strings.Replace(sig, "sig1=", "sig2=", 1))
			return r
		}, s400, "malformed_signature", "malformed"},
		{"unknown alg", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.alg = "rsa-pss-sha512"
			return e.signed(t, req{target: "/e"}, s)
		}, s400, "unsupported_algorithm", "malformed"},
		{"alg not the key's", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.alg = rfc9421.AlgEd25519
			return e.signed(t, req{target: "/e"}, s)
		}, s400, "unsupported_algorithm", "malformed"},
		{"digest of another algorithm only", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, post, hmacSigning())
			r.Header.Set(rfc9421.HeaderContentDigest, "md5=:"+base64.StdEncoding.EncodeToString(make([]byte, 16))+":")
			// Re-sign over the new field value, so only the algorithm is wrong.
			return resign(t, e, r, hmacSigning(), body)
		}, s400, "unsupported_algorithm", "malformed"},
		{"SEC-25 query not covered", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.components = []string{"@method", "@authority", "@path"}
			return e.signed(t, req{target: "/e?role=admin"}, s)
		}, s401, "insufficient_coverage", "malformed"},
		{"SEC-25 method not covered", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.components = []string{"@authority", "@path", "@query"}
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "insufficient_coverage", "malformed"},
		{"body without digest coverage", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.components = rfc9421.DefaultPolicy().Required(false)
			return e.signed(t, post, s)
		}, s401, "insufficient_coverage", "malformed"},
		{"no nonce", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.noNonce = true
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "insufficient_coverage", "malformed"},
		{"no created", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.noCreated = true
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "insufficient_coverage", "malformed"},
		{"SEC-22 created 301s old", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.created = t0 - 301
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "clock_skew", "expired"},
		{"SEC-22 created 6s ahead", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.created = t0 + 6
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "clock_skew", "expired"},
		{"expires reached", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.created, s.expires = t0-10, t0
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "expired", "expired"},
		{"unknown session", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.keyID = "4200101"
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "unknown_key", "unknown_session"},
		{"SEC-36 keyid not decimal", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.keyID = "04200100"
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "unknown_key", "unknown_session"},
		{"session without an hmac key", func(t *testing.T, e *env) *http.Request {
			e.start(t, caddyauth.NewSession{Dialect: caddyauth.DialectVidentity, Kind: caddyauth.KindSessionKey,
				ID: "777", Secret: []byte(apiKey), Lifetime: time.Hour})
			s := hmacSigning()
			s.keyID = "777"
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "unknown_key", "unknown_session"},
		{"unregistered ed25519 key", func(t *testing.T, e *env) *http.Request {
			return e.signed(t, req{target: "/e"}, edSigning(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))))
		}, s401, "unknown_key", "unknown_session"},
		{"disabled user's key", func(t *testing.T, e *env) *http.Request {
			return e.signed(t, req{target: "/e"}, edSigning(e.daveKey))
		}, s401, "unknown_key", "unknown_session"},
		{"ed25519 key id of the wrong shape", func(t *testing.T, e *env) *http.Request {
			s := edSigning(e.carolKey)
			s.keyID += "A"
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "unknown_key", "unknown_session"},
		{"hmac key under an ed25519 key id", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.keyID = edSigning(e.carolKey).keyID
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "bad_signature", "bad_signature"},
		{"wrong hmac key", func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.key = rfc9421.HMACKey([]byte(apiKey + "x"))
			return e.signed(t, req{target: "/e"}, s)
		}, s401, "bad_signature", "bad_signature"},
		{"SEC-25 method changed after signing", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e"}, hmacSigning())
			r.Method = http.MethodDelete
			return r
		}, s401, "bad_signature", "bad_signature"},
		{"SEC-25 query changed after signing", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e?x=1"}, hmacSigning())
			r.RequestURI = "/e?x=1&role=admin"
			return r
		}, s401, "bad_signature", "bad_signature"},
		{"SEC-28 encoded path changed after signing", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/a%2Fb"}, hmacSigning())
			r.RequestURI = "/a/b"
			return r
		}, s401, "bad_signature", "bad_signature"},
		{"body changed after signing", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, post, hmacSigning())
			other := []byte(`{"name":"Evil"}`)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(other)), int64(len(other))
			return r
		}, s401, "bad_signature", "bad_signature"},
		{"body of another length", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, post, hmacSigning())
			other := append(bytes.Clone(body), ' ')
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(other)), int64(len(other))
			return r
		}, s401, "bad_signature", "bad_signature"},
		{"digest header removed", func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, post, hmacSigning())
			r.Header.Del(rfc9421.HeaderContentDigest)
			return r
		}, s400, "malformed_signature", "malformed"},
		{"session expired", func(t *testing.T, e *env) *http.Request {
			e.clock.Advance(24 * time.Hour)
			// Signed at the new time, so only the session is stale.
			return e.signed(t, req{target: "/e"}, hmacSigning())
		}, s401, "session_expired", "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, native.Options{})
			v, ref := e.d.Verify(tt.build(t, e))
			if v != nil {
				t.Fatalf("verified %+v, want %s", v, tt.code)
			}
			wantRefusal(t, ref, tt.status, tt.code, tt.result)
			if ref.Status == http.StatusUnauthorized && ref.Challenges[0] != native.AuthChallenge {
				t.Errorf("challenge %q", ref.Challenges)
			}
			if ref.Status == http.StatusBadRequest && len(ref.Challenges) != 0 {
				t.Errorf("a 400 carries WWW-Authenticate %q", ref.Challenges)
			}
			if n := e.obs.Replays(caddyauth.DialectNative, "rejected"); n != 0 {
				t.Errorf("%d replays counted for a refused request", n)
			}
		})
	}
}

// resign signs r again (with a fresh nonce) over its current headers.
func resign(t *testing.T, e *env, r *http.Request, s signing, body []byte) *http.Request {
	t.Helper()
	s.nonce = "re-" + strconv.FormatInt(nonceSeq.Add(1), 10)
	in, sig, err := rfc9421.Sign(rfc9421.FromHTTP(r), s.key, rfc9421.SignParams{KeyID: s.keyID,
		Components: rfc9421.DefaultPolicy().Required(true), Created: e.clock.Now(), Nonce: s.nonce})
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(rfc9421.HeaderSignatureInput, in)
	r.Header.Set(rfc9421.HeaderSignature, sig)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return r
}

// TestRefusalBodies: the JSON answers carry what lets a client correct
// itself — "missing" for insufficient coverage, "server_time" and "skew" for
// clock errors, Accept-Signature for a missing or insufficient signature —
// and nothing else.
func TestRefusalBodies(t *testing.T) {
	e := newEnv(t, native.Options{})
	// The clock is mid-second: server_time is whole seconds.
	e.clock.Advance(400 * time.Millisecond)

	s := hmacSigning()
	s.components = []string{"@method", "@authority", "@path"}
	s.noNonce = true
	_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, s))
	w, m := answer(t, ref)
	if got := m["missing"]; !reflect.DeepEqual(got, []any{"@query", "nonce"}) {
		t.Errorf("missing %v, want [@query nonce]", got)
	}
	if got, want := w.Header().Get(rfc9421.HeaderAcceptSignature), e.d.Challenge(false); got != want || want == "" {
		t.Errorf("Accept-Signature %q, want %q", got, want)
	}
	if _, ok := m["server_time"]; ok {
		t.Errorf("insufficient_coverage carries server_time: %v", m)
	}

	for _, c := range []struct {
		name     string
		created  int64
		expires  int64
		code     string
		wantSkew float64
	}{
		{"past", t0 - 301, 0, "clock_skew", -301},
		{"future", t0 + 6, 0, "clock_skew", 6},
		{"expired", t0 - 3, t0 - 1, "expired", -3},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := hmacSigning()
			s.created, s.expires = c.created, c.expires
			_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, s))
			w, m := answer(t, ref)
			if m["error"] != c.code || m["server_time"] != float64(t0) || m["skew"] != c.wantSkew {
				t.Errorf("answer %v, want %s with server_time %d and skew %v", m, c.code, t0, c.wantSkew)
			}
			if len(m) != 4 {
				t.Errorf("answer has members %v, want error, message, server_time, skew", m)
			}
			if w.Header().Get(rfc9421.HeaderAcceptSignature) != "" {
				t.Error("a clock refusal carries Accept-Signature")
			}
		})
	}

	// A request with a body is told to cover the body components too.
	_, ref = e.d.Verify(req{method: "POST", target: "/e", body: []byte("x"), contentType: "text/plain"}.build())
	w, m = answer(t, ref)
	if m["error"] != "missing_signature" || len(m) != 2 {
		t.Errorf("answer %v, want exactly error and message", m)
	}
	if got := w.Header().Get(rfc9421.HeaderAcceptSignature); got != e.d.Challenge(true) ||
		!strings.Contains(got, `"content-digest"`) {
		t.Errorf("Accept-Signature %q for a body", got)
	}
}

// TestRefusalWriteUnchanged: a refusal without the native extras is written
// exactly as before they existed, so the other dialects' answers did not
// change.
func TestRefusalWriteUnchanged(t *testing.T) {
	w := httptest.NewRecorder()
	(&caddyauth.Refusal{Status: http.StatusUnauthorized, Code: "unknown_session", Message: "unknown session",
		Challenges: []string{"X"}}).Write(w)
	if got, want := w.Body.String(), `{"error":"unknown_session","message":"unknown session"}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if len(w.Header()) != 5 {
		t.Errorf("headers %v, want exactly the five of a JSON refusal with a challenge", w.Header())
	}
}

// TestSkewBoundaries (SEC-22): created may be up to 300 s old and 5 s ahead
// by default, and the configured windows move both edges.
func TestSkewBoundaries(t *testing.T) {
	tests := []struct {
		opts   native.Options
		offset int64
		ok     bool
	}{
		{native.Options{}, -300, true},
		{native.Options{}, -301, false},
		{native.Options{}, -299, true},
		{native.Options{}, 5, true},
		{native.Options{}, 6, false},
		{native.Options{}, 4, true},
		{native.Options{}, 0, true},
		{native.Options{PastWindow: 30 * time.Second, FutureWindow: time.Second}, -30, true},
		{native.Options{PastWindow: 30 * time.Second, FutureWindow: time.Second}, -31, false},
		{native.Options{PastWindow: 30 * time.Second, FutureWindow: time.Second}, 1, true},
		{native.Options{PastWindow: 30 * time.Second, FutureWindow: time.Second}, 2, false},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatInt(tt.offset, 10)+"s/"+tt.opts.PastWindow.String(), func(t *testing.T) {
			e := newEnv(t, tt.opts)
			// Mid-second: created is compared in whole seconds.
			e.clock.Advance(999 * time.Millisecond)
			s := hmacSigning()
			s.created = t0 + tt.offset
			v, ref := e.d.Verify(e.signed(t, req{target: "/e"}, s))
			if !tt.ok {
				wantRefusal(t, ref, http.StatusUnauthorized, "clock_skew", "expired")
				return
			}
			v = wantOK(t, v, ref)
			if v.Skew != time.Duration(tt.offset)*time.Second {
				t.Errorf("skew %s, want %ds", v.Skew, tt.offset)
			}
		})
	}
}

// TestReplay (SEC-23): a signature is accepted once; the second use is
// refused, counted and audited without the raw session id; a nonce is per
// keyid; and a request refused for its body does not spend its nonce.
func TestReplay(t *testing.T) {
	e := newEnv(t, native.Options{})
	s := hmacSigning()
	s.nonce = "n-1"
	first := e.signed(t, req{target: "/e?x=1"}, s)
	again := first.Clone(context.Background())
	e.verifyOK(t, first)
	_, ref := e.d.Verify(again)
	wantRefusal(t, ref, http.StatusUnauthorized, "replay", "replay")
	if n := e.obs.Replays(caddyauth.DialectNative, "rejected"); n != 1 {
		t.Errorf("replays counted %d, want 1", n)
	}
	evs := e.obs.EventsOf("replay")
	if len(evs) != 1 || evs[0].Dialect != caddyauth.DialectNative || evs[0].UserID != aliceID ||
		evs[0].SessionHash != e.m.LogHash(sessionID) || evs[0].KeyID != "" {
		t.Errorf("replay events %+v", evs)
	}
	for _, ev := range e.obs.Events() {
		if strings.Contains(ev.SessionHash+ev.KeyID+ev.Reason, sessionID) {
			t.Errorf("an audit event holds the raw session id: %+v", ev)
		}
	}

	// The same nonce under another key is another pair.
	ed := edSigning(e.carolKey)
	ed.nonce = "n-1"
	e.verifyOK(t, e.signed(t, req{target: "/e?x=1"}, ed))
	_, ref = e.d.Verify(e.signed(t, req{target: "/e?x=1"}, ed))
	wantRefusal(t, ref, http.StatusUnauthorized, "replay", "replay")
	if evs := e.obs.EventsOf("replay"); len(evs) != 2 || evs[1].KeyID != ed.keyID || evs[1].UserID != carolID {
		t.Errorf("ed25519 replay event %+v", evs)
	}

	// The nonce is remembered for the whole acceptance window: 5 minutes
	// later the signature is still fresh enough and still refused.
	e.clock.Advance(300 * time.Second)
	_, ref = e.d.Verify(first.Clone(context.Background()))
	wantRefusal(t, ref, http.StatusUnauthorized, "replay", "replay")

	// A wrong body does not burn the nonce of the right one.
	body := []byte(`{"a":1}`)
	post := e.signed(t, req{method: "POST", target: "/e", body: body, contentType: "application/json"}, hmacSigning())
	tampered := post.Clone(context.Background())
	tampered.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
	_, ref = e.d.Verify(tampered)
	wantRefusal(t, ref, http.StatusUnauthorized, "bad_signature", "bad_signature")
	post.Body = io.NopCloser(bytes.NewReader(body))
	e.verifyOK(t, post)
}

// TestStoreFailures (REL-01): a session store, user directory or replay
// store that cannot answer gives 503 with Retry-After, never a 401.
func TestStoreFailures(t *testing.T) {
	t.Run("session store", func(t *testing.T) {
		e := newEnv(t, native.Options{})
		e.store.FailGets.Store(true)
		_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, hmacSigning()))
		wantRefusal(t, ref, http.StatusServiceUnavailable, "store_unavailable", "store_unavailable")
	})
	t.Run("user directory", func(t *testing.T) {
		e := newEnv(t, native.Options{})
		e.users.fail.Store(true)
		_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, edSigning(e.carolKey)))
		wantRefusal(t, ref, http.StatusServiceUnavailable, "store_unavailable", "store_unavailable")
		if n := e.obs.StoreErrors("get_user"); n != 1 {
			t.Errorf("store errors get_user %d, want 1", n)
		}
	})
	t.Run("replay store", func(t *testing.T) {
		e := newEnv(t, native.Options{}, envOpt{guard: failingGuard{}})
		_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, hmacSigning()))
		wantRefusal(t, ref, http.StatusServiceUnavailable, "store_unavailable", "store_unavailable")
		if ref.RetryAfter <= 0 {
			t.Error("503 without Retry-After")
		}
	})
}

// TestSyntaxBeforeLookup (SEC-36): keyids that cannot be a session id or a
// key id, and requests refused for syntax, coverage or time, cost no cache,
// store or directory lookup.
func TestSyntaxBeforeLookup(t *testing.T) {
	keyIDs := []string{"0", "-1", "+42", "4200100 ", "1e3", "0x10", "abc", "../4200100",
		strings.Repeat("9", 20), strings.Repeat("1", 256), "ed25519-", "ed25519-short",
		"ed25519-AAAAAAAAAAAAAAA=", "ed25519-AAAAAAAAAAAAAAA/", "ed25519-AAAAAAAAAAAAAAAAA", "ED25519-AAAAAAAAAAAAAAAA"}
	for _, id := range keyIDs {
		t.Run("keyid "+strconv.Quote(id), func(t *testing.T) {
			e := newEnv(t, native.Options{})
			s := hmacSigning()
			s.keyID = id
			_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, s))
			if ref == nil || (ref.Code != "unknown_key" && ref.Code != "malformed_signature") {
				t.Fatalf("refusal %+v, want unknown_key or malformed_signature", ref)
			}
			e.wantNoLookups(t)
		})
	}
	refusedEarly := map[string]func(t *testing.T, e *env) *http.Request{
		"stale": func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.created = t0 - 1000
			return e.signed(t, req{target: "/e"}, s)
		},
		"coverage": func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.components = []string{"@method"}
			return e.signed(t, req{target: "/e"}, s)
		},
		"expired": func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.created, s.expires = t0-2, t0-1
			return e.signed(t, req{target: "/e"}, s)
		},
		"unsupported alg": func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.alg = "hmac-sha512"
			return e.signed(t, req{target: "/e"}, s)
		},
		"covered header absent": func(t *testing.T, e *env) *http.Request {
			s := hmacSigning()
			s.components = append(rfc9421.DefaultPolicy().Required(false), "x-extra")
			r := e.signed(t, req{target: "/e", header: map[string]string{"X-Extra": "1"}}, s)
			r.Header.Del("X-Extra")
			return r
		},
		"malformed input": func(t *testing.T, e *env) *http.Request {
			r := e.signed(t, req{target: "/e"}, hmacSigning())
			r.Header.Set(rfc9421.HeaderSignatureInput, `sig1=("@method");keyid=4200100`)
			return r
		},
	}
	for name, build := range refusedEarly {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, native.Options{})
			if _, ref := e.d.Verify(build(t, e)); ref == nil {
				t.Fatal("verified")
			}
			e.wantNoLookups(t)
		})
	}
}

func (e *env) wantNoLookups(t *testing.T) {
	t.Helper()
	hits, misses := e.obs.CacheLookups()
	if hits+misses != 0 || e.store.gets.Load() != 0 || e.users.keyLookups.Load() != 0 {
		t.Errorf("SEC-36: %d cache lookups, %d store reads, %d key lookups, want none", hits+misses,
			e.store.gets.Load(), e.users.keyLookups.Load())
	}
}

// TestBodyLimit (SEC-34): a body over max_body is refused with 413 before
// it is read whole, whether its length is declared or not; a body of exactly
// max_body passes.
func TestBodyLimit(t *testing.T) {
	const max = 64
	for _, tt := range []struct {
		name    string
		size    int
		chunked bool
		ok      bool
	}{
		{"exactly max", max, false, true},
		{"max+1 declared", max + 1, false, false},
		{"max+1 chunked", max + 1, true, false},
		{"exactly max chunked", max, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, native.Options{MaxBody: max})
			body := bytes.Repeat([]byte("b"), tt.size)
			r := e.signed(t, req{method: "POST", target: "/e", body: body, contentType: "application/octet-stream", chunked: tt.chunked}, hmacSigning())
			counting := &countingReader{r: r.Body}
			r.Body = counting
			v, ref := e.d.Verify(r)
			if tt.ok {
				wantOK(t, v, ref)
				return
			}
			wantRefusal(t, ref, http.StatusRequestEntityTooLarge, "body_too_large", "malformed")
			if counting.n > max+1 {
				t.Errorf("read %d bytes of an over-large body, want at most %d", counting.n, max+1)
			}
		})
	}
}

type countingReader struct {
	r io.ReadCloser
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// TestVectorsRefusedByPolicy: the RFC 9421 B.2.5 and B.2.6 requests, valid
// signatures under RFC 9421 alone, are refused by the gateway's policy
// before any key is looked up: they cover neither the method, the path and
// the query (B.2.5) nor the query (B.2.6), nor the body's digest, and carry
// no nonce.
func TestVectorsRefusedByPolicy(t *testing.T) {
	v := loadVectors(t)
	want := map[string][]string{
		"B.2.5 hmac-sha256": {"@method", "@path", "@query", "content-digest", "nonce"},
		"B.2.6 ed25519":     {"@query", "content-digest", "nonce"},
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			e := newEnv(t, native.Options{})
			e.clock.Set(time.Unix(1618884473, 0))
			r := httptest.NewRequest(v.Request.Method, v.Request.Target, strings.NewReader(v.Request.Body))
			r.Host = v.Request.Authority
			for k, val := range v.Request.Headers {
				r.Header.Set(k, val)
			}
			r.Header.Set(rfc9421.HeaderSignatureInput, c.SignatureInput)
			r.Header.Set(rfc9421.HeaderSignature, c.Signature)
			_, ref := e.d.Verify(r)
			wantRefusal(t, ref, http.StatusUnauthorized, "insufficient_coverage", "malformed")
			if !slices.Equal(ref.Missing, want[c.Name]) {
				t.Errorf("missing %v, want %v", ref.Missing, want[c.Name])
			}
			e.wantNoLookups(t)
		})
	}
}

// TestVectorHMACKey: a session whose key is the B.2.5 shared secret signs
// and verifies like any other.
func TestVectorHMACKey(t *testing.T) {
	v := loadVectors(t)
	secret, err := base64.StdEncoding.DecodeString(v.Cases[0].KeyB64)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, native.Options{})
	e.session(t, "9", string(secret), 0)
	s := signing{key: rfc9421.HMACKey(secret), keyID: "9"}
	body := []byte(v.Request.Body)
	got := e.verifyOK(t, e.signed(t, req{method: "POST", target: v.Request.Target, body: body,
		contentType: "application/json", host: v.Request.Authority}, s))
	if got.UserID != aliceID {
		t.Errorf("user %d", got.UserID)
	}
	s.key = rfc9421.HMACKey(secret[:len(secret)-1])
	_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, s))
	wantRefusal(t, ref, http.StatusUnauthorized, "bad_signature", "bad_signature")
}

// TestSignedTarget (SEC-28): the signature covers the request target and
// the Host the client sent, recorded before any rewrite, not what a rewrite
// made of them.
func TestSignedTarget(t *testing.T) {
	e := newEnv(t, native.Options{})
	r := e.signed(t, req{target: "/a%2Fb?x=1", host: "api.example"}, hmacSigning())
	ctx := caddyauth.WithRequestURI(r.Context(), r.RequestURI)
	ctx = native.WithAuthority(ctx, r.Host)
	rewritten := r.WithContext(ctx)
	rewritten.RequestURI, rewritten.Host = "/internal/a/b?x=1", "backend.internal"
	e.verifyOK(t, rewritten)

	r = e.signed(t, req{target: "/a%2Fb?x=1", host: "api.example"}, hmacSigning())
	r.RequestURI, r.Host = "/internal/a/b?x=1", "backend.internal"
	_, ref := e.d.Verify(r)
	wantRefusal(t, ref, http.StatusUnauthorized, "bad_signature", "bad_signature")
}

// TestIdleResetOnUse: with idle_reset_on_use, a verified hmac request
// touches its session once the touch interval has passed; without it, or
// within the interval, it does not.
func TestIdleResetOnUse(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opt     bool
		advance time.Duration
		touches int64
	}{
		{"on, after the interval", true, 2 * time.Minute, 1},
		{"on, within the interval", true, 10 * time.Second, 0},
		{"off", false, 2 * time.Minute, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, native.Options{IdleResetOnUse: tt.opt})
			e.session(t, "55", apiKey, 10*time.Minute)
			e.clock.Advance(tt.advance)
			s := hmacSigning()
			s.keyID = "55"
			before := e.store.Touches.Load()
			e.verifyOK(t, e.signed(t, req{target: "/e"}, s))
			if got := e.store.Touches.Load() - before; got != tt.touches {
				t.Errorf("touches %d, want %d", got, tt.touches)
			}
		})
	}
	// ed25519 requests have no session to touch.
	e := newEnv(t, native.Options{IdleResetOnUse: true})
	e.clock.Advance(time.Hour)
	e.verifyOK(t, e.signed(t, req{target: "/e"}, edSigning(e.carolKey)))
	if n := e.store.Touches.Load(); n != 0 {
		t.Errorf("ed25519 request touched %d sessions", n)
	}
}

// TestPresentAndStrip: the credential headers are recognised in any case
// and removed; Content-Digest stays with the body it describes.
func TestPresentAndStrip(t *testing.T) {
	for _, tt := range []struct {
		headers map[string]string
		present bool
	}{
		{map[string]string{"signature-input": "x"}, true},
		{map[string]string{"SIGNATURE": "x"}, true},
		{map[string]string{"Content-Digest": "sha-256=:x:"}, false},
		{map[string]string{"X-Signature": "x", "Authorization": "Signature x"}, false},
		{nil, false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		if got := native.Present(r); got != tt.present {
			t.Errorf("Present(%v) = %v, want %v", tt.headers, got, tt.present)
		}
	}
	h := http.Header{"Signature-Input": {"a"}, "Signature": {"b", "c"}, "Content-Digest": {"d"}, "X-Other": {"e"}}
	native.StripCredentials(h)
	if want := (http.Header{"Content-Digest": {"d"}, "X-Other": {"e"}}); !reflect.DeepEqual(h, want) {
		t.Errorf("after strip %v, want %v", h, want)
	}
}

// TestLabelPolicy: with a label configured, that signature is checked among
// several, and a request without it is refused.
func TestLabelPolicy(t *testing.T) {
	e := newEnv(t, native.Options{Label: "gw"})
	r := e.signed(t, req{target: "/e"}, hmacSigning())
	in, sig := r.Header.Get(rfc9421.HeaderSignatureInput), r.Header.Get(rfc9421.HeaderSignature)
	r.Header.Set(rfc9421.HeaderSignatureInput, `other=("@method");created=1;keyid="x", `+strings.Replace(in, "sig1=", "gw=", 1))
	r.Header.Set(rfc9421.HeaderSignature, `other=:AAAA:, `+strings.Replace(sig, "sig1=", "gw=", 1))
	e.verifyOK(t, r)
	if got := e.d.Challenge(false); !strings.HasPrefix(got, "gw=") {
		t.Errorf("Accept-Signature %q does not propose the label", got)
	}
	_, ref := e.d.Verify(e.signed(t, req{target: "/e"}, hmacSigning()))
	wantRefusal(t, ref, http.StatusBadRequest, "malformed_signature", "malformed")
}
