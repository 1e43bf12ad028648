package videntity_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
)

// formRequest is a proxied form POST.
func formRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/entities", strings.NewReader(body))
	r.Header.Set("Content-Type", formCT)
	return r
}

// forwarded reads what would be forwarded, checking the lengths agree.
func forwarded(t *testing.T, r *http.Request) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentLength != int64(len(b)) {
		t.Errorf("ContentLength %d, body has %d bytes", r.ContentLength, len(b))
	}
	if cl := r.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(b)) {
		t.Errorf("Content-Length header %q, body has %d bytes", cl, len(b))
	}
	return string(b)
}

// SEC-43: the key is accepted from the header or a form field, and removed
// before forwarding: exactly the session_key pairs, every other byte kept.
func TestVerifyFormSourceStripped_SEC43(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	cases := []struct{ name, body, want string }{
		{"middle", "a=1&session_key=" + key + "&b=%20x", "a=1&b=%20x"},
		{"first", "session_key=" + key + "&a=1", "a=1"},
		{"last", "a=1+2&session_key=" + key, "a=1+2"},
		{"only", "session_key=" + key, ""},
		{"empty pairs kept", "&a=1&&session_key=" + key + "&b=2&", "&a=1&&b=2&"},
		{"escaped name", "a=%C3%A9&session%5Fkey=" + key + "&z", "a=%C3%A9&z"},
		{"escaped value", "session_key=" + strings.ReplaceAll(key, key[:1], "%"+strconv.FormatInt(int64(key[0]), 16)) + "&a=1", "a=1"},
		{"look-alikes kept", "x=session_key%3D" + key + "&session_key=" + key + "&Session_Key=1&session_key2=2", "x=session_key%3D" + key + "&Session_Key=1&session_key2=2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := formRequest(c.body)
			if !videntity.Present(r) {
				t.Fatal("Present is false for a form")
			}
			v, ref := e.d.Verify(r)
			wantVerified(t, v, ref)
			if v.Session.UserID != 201 || v.Session.ID != storeID(key) {
				t.Errorf("session %+v", v.Session)
			}
			videntity.StripCredentials(r)
			if got := forwarded(t, r); got != c.want {
				t.Errorf("forwarded %q, want %q", got, c.want)
			}
			if r.Header.Get("Content-Length") != strconv.Itoa(len(c.want)) {
				t.Errorf("Content-Length %q, want %d", r.Header.Get("Content-Length"), len(c.want))
			}
		})
	}
}

// SEC-43: the header is removed (every spelling); a form body without the
// key, and a body Verify did not read, are forwarded byte for byte.
func TestVerifyHeaderSourceStripped_SEC43(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)

	r := httptest.NewRequest(http.MethodGet, "/entities?x=1", nil)
	r.Header.Set("X-Session-Key", key)
	r.Header.Set("X-Other", "keep")
	if !videntity.Present(r) {
		t.Fatal("Present is false with the header")
	}
	v, ref := e.d.Verify(r)
	wantVerified(t, v, ref)
	videntity.StripCredentials(r)
	if len(r.Header) != 1 || r.Header.Get("X-Other") != "keep" || r.Body != http.NoBody {
		t.Fatalf("after strip: headers %v, body %v", r.Header, r.Body)
	}

	// Header source, form body without a key, sent chunked: the same bytes
	// go on, with their length now known.
	const body = "a=1&b=%20x&session_keyx=2"
	r = formRequest(body)
	r.ContentLength = -1
	r.Header.Set("X-Session-Key", key)
	v, ref = e.d.Verify(r)
	wantVerified(t, v, ref)
	videntity.StripCredentials(r)
	if got := forwarded(t, r); got != body {
		t.Fatalf("forwarded %q, want %q", got, body)
	}
	if r.Header.Get("X-Session-Key") != "" {
		t.Fatal("header forwarded")
	}

	// Spellings some upstreams read as X-Session-Key are removed too.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header["X_Session_Key"] = []string{key}
	r.Header["x-session-key"] = []string{key}
	r.Header["X-Session-Keys"] = []string{"keep"}
	videntity.StripCredentials(r)
	if len(r.Header) != 1 || r.Header.Get("X-Session-Keys") != "keep" {
		t.Fatalf("after strip: %v", r.Header)
	}

	// A form body Verify never read (another dialect's request) is left
	// alone.
	r = formRequest("session_key=" + key + "&a=1")
	videntity.StripCredentials(r)
	if got := forwarded(t, r); got != "session_key="+key+"&a=1" {
		t.Fatalf("unread body changed to %q", got)
	}
}

// A form POST with neither header nor field: attributed to videntity
// (Present), refused 401 missing_credentials, body intact.
func TestVerifyMissing(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	const body = "a=1&b=2"
	r := formRequest(body)
	if !videntity.Present(r) {
		t.Fatal("Present is false for a form")
	}
	_, ref := e.d.Verify(r)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMissingCredentials)
	if len(ref.Challenges) != 1 || ref.Challenges[0] != videntity.Challenge {
		t.Errorf("challenges %q", ref.Challenges)
	}
	if got := forwarded(t, r); got != body {
		t.Errorf("body after Verify %q", got)
	}
	_, ref = e.d.Verify(httptest.NewRequest(http.MethodGet, "/", nil))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMissingCredentials)
	if e.store.Gets() != 0 {
		t.Error("a request without a key reached the store")
	}
}

// SEC-14: a key in the query string is never accepted.
func TestVerifyQueryNotAccepted_SEC14(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	gets := e.store.Gets()
	r := httptest.NewRequest(http.MethodGet, "/entities?session_key="+key, nil)
	if videntity.Present(r) {
		t.Error("Present is true for a query-string key")
	}
	_, ref := e.d.Verify(r)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMissingCredentials)
	if strings.Contains(ref.Message, key) {
		t.Error("the refusal repeats the key")
	}
	r = httptest.NewRequest(http.MethodPost, "/entities?session%5Fkey="+key, strings.NewReader("a=1"))
	r.Header.Set("Content-Type", formCT)
	_, ref = e.d.Verify(r)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMissingCredentials)
	// With a key elsewhere too: ambiguous, 400.
	r = httptest.NewRequest(http.MethodGet, "/entities?a=1&session_key="+key, nil)
	r.Header.Set("X-Session-Key", key)
	_, ref = e.d.Verify(r)
	wantRefusal(t, ref, http.StatusBadRequest, caddyauth.CodeInvalidRequest)
	if e.store.Gets() != gets {
		t.Error("a query-string key reached the store")
	}
}

// Exactly one source and one value (SEC-33 for proxied keys).
func TestVerifyCardinality(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	build := func(body string, hdr map[string][]string) *http.Request {
		var r *http.Request
		if body == "" {
			r = httptest.NewRequest(http.MethodGet, "/entities", nil)
		} else {
			r = formRequest(body)
		}
		for k, v := range hdr {
			r.Header[k] = v
		}
		return r
	}
	cases := []struct {
		name string
		r    *http.Request
	}{
		{"header and form", build("session_key="+key, map[string][]string{"X-Session-Key": {key}})},
		{"header and form, different", build("session_key="+key, map[string][]string{"X-Session-Key": {strings.Repeat("a", 43)}})},
		{"two header lines", build("", map[string][]string{"X-Session-Key": {key, key}})},
		{"header list", build("", map[string][]string{"X-Session-Key": {key + ", " + key}})},
		{"header list, one empty", build("", map[string][]string{"X-Session-Key": {key + ","}})},
		{"two spellings", build("", map[string][]string{"X-Session-Key": {key}, "x-session-key": {key}})},
		{"underscore spelling", build("", map[string][]string{"X_Session_Key": {key}})},
		{"two form values", build("session_key="+key+"&session_key="+key, nil)},
		{"two form values, escaped name", build("session_key="+key+"&session%5fkey="+key, nil)},
		{"two content types", build("session_key="+key, map[string][]string{"Content-Type": {formCT, "text/plain"}})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gets := e.store.Gets()
			_, ref := e.d.Verify(c.r)
			wantRefusal(t, ref, http.StatusBadRequest, caddyauth.CodeInvalidRequest)
			if e.store.Gets() != gets {
				t.Error("an ambiguous request reached the store")
			}
		})
	}
}

// SEC-36: the key's syntax is checked before any lookup; malformed keys
// are 401 malformed_credentials and never reach the store.
func TestVerifyMalformed_SEC36(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	bad := []string{
		"",
		"short",
		strings.Repeat("a", videntity.MinKeyLength-1),
		strings.Repeat("a", videntity.MaxKeyLength+1),
		strings.Repeat("A", 10<<10),
		key[:20] + "\x00" + key[21:],
		key[:20] + "é" + key[22:],
		"../../" + key,
		key[:40] + "-_=",
		key + "/",
	}
	for _, k := range bad {
		gets := e.store.Gets()
		_, ref := e.proxied(k)
		wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMalformedCredentials)
		_, ref = e.d.Verify(formRequest("session_key=" + strings.ReplaceAll(k, "\x00", "%00")))
		wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMalformedCredentials)
		if e.store.Gets() != gets {
			t.Errorf("key %q reached the store", k)
		}
	}
	for _, body := range []string{"session_key", "session_key=", "session_key=%ZZ" + key, "session_key=" + key + "%3B", "session_key=" + key + "+", "session_key=" + key + ";a=1"} {
		gets := e.store.Gets()
		_, ref := e.d.Verify(formRequest(body))
		wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeMalformedCredentials)
		if e.store.Gets() != gets {
			t.Errorf("body %q reached the store", body)
		}
	}
}

// Session states and store failures (REL-01).
func TestVerifySessionStates(t *testing.T) {
	e := newEnv(t, videntity.Options{})
	key := e.loginKey(t)
	v, ref := e.proxied(key)
	wantVerified(t, v, ref)

	_, ref = e.proxied(strings.Repeat("Q", 43))
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeUnknownSession)
	if len(ref.Challenges) != 1 || ref.Challenges[0] != videntity.Challenge {
		t.Errorf("challenges %q", ref.Challenges)
	}
	e.store.FailGets.Store(true)
	_, ref = e.proxied(strings.Repeat("R", 43))
	wantRefusal(t, ref, http.StatusServiceUnavailable, caddyauth.CodeStoreUnavailable)
	if ref.RetryAfter <= 0 {
		t.Error("503 without Retry-After")
	}
	e.store.FailGets.Store(false)
	e.clock.Advance(videntity.DefaultIdleTimeout)
	_, ref = e.proxied(key)
	wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeSessionExpired)
}

// errReader fails the test's expectations if it is read.
type errReader struct{ read *bool }

func (r errReader) Read([]byte) (int, error) {
	*r.read = true
	return 0, errors.New("must not be read")
}

// SEC-34: a proxied form body is read up to MaxBody; over it, 413, before
// the body is read when the length is declared.
func TestVerifyMaxBody_SEC34(t *testing.T) {
	const max = 1024
	e := newEnv(t, videntity.Options{MaxBody: max})
	key := e.loginKey(t)
	prefix := "session_key=" + key + "&pad="
	exact := prefix + strings.Repeat("x", max-len(prefix))

	v, ref := e.d.Verify(formRequest(exact))
	wantVerified(t, v, ref)
	_, ref = e.d.Verify(formRequest(exact + "x"))
	wantRefusal(t, ref, http.StatusRequestEntityTooLarge, caddyauth.CodeBodyTooLarge)
	r := formRequest(exact + "x")
	r.ContentLength = -1 // chunked
	_, ref = e.d.Verify(r)
	wantRefusal(t, ref, http.StatusRequestEntityTooLarge, caddyauth.CodeBodyTooLarge)

	read := false
	r = formRequest("")
	r.Body = io.NopCloser(errReader{&read})
	r.ContentLength = max + 1
	_, ref = e.d.Verify(r)
	wantRefusal(t, ref, http.StatusRequestEntityTooLarge, caddyauth.CodeBodyTooLarge)
	if read {
		t.Error("an over-long declared body was read")
	}
	// Not a form: the body is neither read nor limited.
	r = httptest.NewRequest(http.MethodPost, "/entities", nil)
	r.Body = io.NopCloser(errReader{&read})
	r.ContentLength = 10 * max
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Session-Key", key)
	v, ref = e.d.Verify(r)
	wantVerified(t, v, ref)
	if read {
		t.Error("a JSON body was read")
	}
	// An encoded form cannot be searched for the key: refused.
	r = formRequest("session_key=" + key)
	r.Header.Set("Content-Encoding", "gzip")
	_, ref = e.d.Verify(r)
	wantRefusal(t, ref, http.StatusUnsupportedMediaType, caddyauth.CodeUnsupportedMedia)
}

func TestPresent(t *testing.T) {
	for _, c := range []struct {
		name string
		ct   string
		hdr  string
		want bool
	}{
		{"bare", "", "", false},
		{"json", "application/json", "", false},
		{"multipart", "multipart/form-data; boundary=x", "", false},
		{"form", formCT, "", true},
		{"form with charset", formCT + "; charset=UTF-8", "", true},
		{"form with a broken parameter", formCT + "; x", "", true},
		{"header", "", "X-Session-Key", true},
		{"header lower case", "", "x-session-key", true},
		{"header underscore", "", "X_Session_Key", true},
		{"other header", "", "X-Session-Id", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/entities?session_key=x", strings.NewReader("session_key=x"))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		if c.hdr != "" {
			r.Header[c.hdr] = []string{"x"}
		}
		if got := videntity.Present(r); got != c.want {
			t.Errorf("%s: Present = %v, want %v", c.name, got, c.want)
		}
		if b, _ := io.ReadAll(r.Body); string(b) != "session_key=x" {
			t.Errorf("%s: Present consumed the body", c.name)
		}
	}
}

// SEC-11 / IdleResetOnUse: use resets the idle timer with at most one store
// write per TouchInterval; without the option, use never writes.
func TestIdleResetOnUse_SEC11(t *testing.T) {
	iv := caddyauth.TouchInterval(videntity.DefaultIdleTimeout)
	if iv != time.Minute {
		t.Fatalf("test assumes a 1m touch interval, got %s", iv)
	}
	t.Run("on", func(t *testing.T) {
		e := newEnv(t, videntity.Options{IdleResetOnUse: true})
		key := e.loginKey(t)
		use := func() {
			t.Helper()
			v, ref := e.proxied(key)
			wantVerified(t, v, ref)
		}
		for _, at := range []time.Duration{10 * time.Second, 30 * time.Second, iv - time.Second} {
			e.clock.Set(t0.Add(at))
			use()
			use()
		}
		if n := e.store.Touches.Load(); n != 0 {
			t.Fatalf("%d store writes within the touch interval, want 0", n)
		}
		e.clock.Set(t0.Add(iv + time.Second))
		use()
		if n := e.store.Touches.Load(); n != 1 {
			t.Fatalf("%d store writes after the interval, want 1", n)
		}
		use()
		e.clock.Advance(10 * time.Second)
		use()
		if n := e.store.Touches.Load(); n != 1 {
			t.Fatalf("%d store writes, want still 1", n)
		}
		// Past the original idle deadline (t0+30m): alive.
		e.clock.Set(t0.Add(videntity.DefaultIdleTimeout + 30*time.Second))
		use()
		if n := e.store.Touches.Load(); n != 2 {
			t.Fatalf("%d store writes, want 2", n)
		}
		// A failing touch does not fail the verified request.
		e.store.FailTouches.Store(true)
		e.clock.Advance(2 * iv)
		use()
	})
	t.Run("off", func(t *testing.T) {
		e := newEnv(t, videntity.Options{})
		key := e.loginKey(t)
		for at := time.Duration(0); at < videntity.DefaultIdleTimeout; at += 5 * time.Minute {
			e.clock.Set(t0.Add(at))
			v, ref := e.proxied(key)
			wantVerified(t, v, ref)
		}
		if n := e.store.Touches.Load(); n != 0 {
			t.Fatalf("%d store writes without IdleResetOnUse", n)
		}
		e.clock.Set(t0.Add(videntity.DefaultIdleTimeout))
		_, ref := e.proxied(key)
		wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeSessionExpired)
	})
}
