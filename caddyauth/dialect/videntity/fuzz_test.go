package videntity_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/videntity"
)

// loginStatuses are the only answers a login may give (SEC-38).
var loginStatuses = map[int]bool{200: true, 400: true, 401: true, 413: true, 415: true, 429: true, 503: true}

// fuzzUser is a static user of newEnv with the form that logs it in.
type fuzzUser struct {
	id                    int64
	username, pw, account string
	disabled              bool
}

var fuzzUsers = []fuzzUser{
	{201, "alice", alicePW, aliceAccount, false},
	{202, "dave", davePW, daveAccount, true},
	{203, "bob", bobPW, bobAccount, false},
	{204, hostileName, hostilePW, hostileAcct, false},
}

// FuzzLoginForm (SEC-38, SEC-33, SEC-03, SEC-44) posts any body under any
// Content-Type to the login endpoint (either path). The status is always
// one of loginStatuses; the XML answer never holds a password hash, nor a
// password the form or the users carry beyond the fixed answer texts; and
// SUCCESS comes only for an enabled user's exact username, password and
// account number, each given exactly once as a form field decodes it.
func FuzzLoginForm(f *testing.F) {
	f.Add([]byte(loginForm("alice", alicePW, aliceAccount)), formCT, false)
	e := newEnv(f, videntity.Options{})
	var hashes []string
	for _, u := range fuzzUsers {
		usr, err := e.m.Users().UserByID(context.Background(), u.id)
		if err != nil {
			f.Fatal(err)
		}
		hashes = append(hashes, usr.PasswordHash)
	}
	login := func(body []byte, ct string, alias bool) *httptest.ResponseRecorder {
		path := videntity.LoginPath
		if alias {
			path = videntity.LoginAliasPath
		}
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		if ct != "" {
			r.Header["Content-Type"] = []string{ct}
		}
		w := httptest.NewRecorder()
		e.d.Login(w, r)
		return w
	}
	// The fixed texts of every kind of answer.
	var vocab strings.Builder
	for _, p := range []struct{ body, ct string }{
		{"", formCT}, {"", "text/plain"}, {"username=a", formCT}, {"username=a&password=b", formCT},
		{loginForm("a", "b", "c"), formCT}, {loginForm("alice", alicePW, aliceAccount), formCT},
		{"username=%zz", formCT}, {"username=\xff", formCT}, {"username=a&username=b", formCT},
		{loginForm("a", strings.Repeat("p", 8<<10), "c"), formCT}, {strings.Repeat("a", videntity.MaxFormBody+1), formCT},
	} {
		for _, alias := range []bool{false, true} {
			w := login([]byte(p.body), p.ct, alias)
			vocab.WriteString(answerText(w))
			vocab.WriteByte(0)
		}
	}
	fixed := vocab.String()

	f.Fuzz(func(t *testing.T, body []byte, ct string, alias bool) {
		w := login(body, ct, alias)
		text := answerText(w)
		if !loginStatuses[w.Code] {
			t.Fatalf("status %d for body %q, Content-Type %q: %s", w.Code, body, ct, text)
		}
		for _, h := range hashes {
			if strings.Contains(text, h) {
				t.Fatalf("the answer holds a password hash: %s", text)
			}
		}
		fields := refForm(body)
		secrets := []string{alicePW, davePW, bobPW, hostilePW}
		secrets = append(secrets, fields["password"]...)
		for _, s := range secrets {
			if len(s) >= 4 && strings.Contains(text, s) && !strings.Contains(fixed, s) {
				t.Fatalf("the answer repeats the password %q: %s", s, text)
			}
		}
		a := parseAnswer(t, w)
		if w.Code != http.StatusOK {
			if a.Status != "ERROR" {
				t.Fatalf("status %d with answer status %q", w.Code, a.Status)
			}
			return
		}
		one := func(name string) string {
			if len(fields[name]) != 1 {
				t.Fatalf("SUCCESS with field %s given %d times: %q", name, len(fields[name]), body)
			}
			return fields[name][0]
		}
		user, pw, acct := one("username"), one("password"), one("account_number")
		for _, u := range fuzzUsers {
			if u.username == user && u.pw == pw && u.account == acct && !u.disabled {
				if a.Status != "SUCCESS" || a.NV == nil || a.NV.SessionKey == nil || len(*a.NV.SessionKey) != videntity.KeyLength {
					t.Fatalf("200 without a session key: %s", w.Body.Bytes())
				}
				return
			}
		}
		t.Fatalf("SUCCESS for username %q, password %q, account %q", user, pw, acct)
	})
}

// liveKey is the session key FuzzProxiedKey's session was started with.
const liveKey = "Zq8Wm3Rt6Yp1Lk4Hn7Bv2Cx5Dz9Fg0Js3Ka6Qe8Tu1"

// FuzzProxiedKey (SEC-38, SEC-14, SEC-33, SEC-36, SEC-43) verifies a
// proxied POST carrying any X-Session-Key value, form body and query
// string. It is accepted exactly when the reference below says so (one key,
// from exactly one of the header and the form, equal to the live key, and
// no key in the query); refusals are 400, 401, 413, 415 or 503. Whatever the
// outcome (413 aside, where the body is refused half read), the body after
// StripCredentials is either the body as sent or, for a form Verify read,
// the body with exactly the session_key pairs removed and every other byte
// kept in order, with Content-Length matching.
//
// flags bits 0–1: no header, X-Session-Key, X-Session-Key twice,
// X_session_key; bits 2–3: form, form with a charset, JSON, no
// Content-Type; bit 4: a second Content-Type; bit 5: Content-Encoding
// gzip; bit 6: chunked (unknown length).
func FuzzProxiedKey(f *testing.F) {
	f.Add(liveKey, []byte("a=1"), "", uint8(1))
	const maxBody = 1 << 10
	e := newEnv(f, videntity.Options{MaxBody: maxBody})
	u, err := e.m.Users().UserByID(context.Background(), 201)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := e.m.StartSession(context.Background(), caddyauth.NewSession{User: u, Dialect: caddyauth.DialectVidentity,
		Kind: caddyauth.KindSessionKey, ID: storeID(liveKey), Lifetime: time.Hour, IdleTimeout: 30 * time.Minute}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte, query string, flags uint8) {
		r := httptest.NewRequest(http.MethodPost, "/entities", bytes.NewReader(body))
		r.URL.RawQuery = query
		var hdrVals []string
		underscore := false
		switch flags & 3 {
		case 1:
			hdrVals = []string{header}
		case 2:
			hdrVals = []string{header, header}
		case 3:
			underscore = true
		}
		if len(hdrVals) > 0 {
			r.Header[videntity.HeaderSessionKey] = hdrVals
		}
		if underscore {
			r.Header["X_session_key"] = []string{header}
		}
		ct := []string{formCT, formCT + "; charset=utf-8", "application/json", ""}[flags>>2&3]
		if ct != "" {
			r.Header["Content-Type"] = []string{ct}
			if flags&16 != 0 {
				r.Header["Content-Type"] = append(r.Header["Content-Type"], ct)
			}
		}
		encoded := flags&32 != 0
		if encoded {
			r.Header.Set("Content-Encoding", "gzip")
		}
		if flags&64 != 0 {
			r.ContentLength = -1
		}
		isForm := strings.HasPrefix(ct, formCT)

		// The reference verdict. Header syntax is checked first; then a
		// form is read, unless its framing is refused; then exactly one key
		// must be given, and none in the query.
		comma := strings.Contains(header, ",") && len(hdrVals) > 0
		readable := isForm && !underscore && !comma && flags&16 == 0 && !encoded
		keys := append([]string(nil), hdrVals...)
		if readable {
			keys = append(keys, refForm(body)[videntity.FieldSessionKey]...)
		}
		_, queryKey := refForm([]byte(query))[videntity.FieldSessionKey]
		want := !underscore && !comma && readable == isForm && (!isForm || len(body) <= maxBody) &&
			len(keys) == 1 && keys[0] == liveKey && !queryKey

		v, ref := e.d.Verify(r)
		switch {
		case ref == nil && !want:
			t.Fatalf("verified header %q (flags %b), body %q, query %q, which the reference refuses", header, flags, body, query)
		case ref == nil && v.Session.UserID != 201:
			t.Fatalf("verified as user %d", v.Session.UserID)
		case ref != nil && want:
			t.Fatalf("refused a valid key (flags %b, body %q, query %q): %d %s %s", flags, body, query, ref.Status, ref.Code, ref.Message)
		case ref != nil:
			switch ref.Status {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge,
				http.StatusUnsupportedMediaType, http.StatusServiceUnavailable:
			default:
				t.Fatalf("status %d (%s) for client input", ref.Status, ref.Code)
			}
			if strings.Contains(ref.Message, liveKey) {
				t.Fatalf("refusal holds the key: %s", ref.Message)
			}
			if ref.Status == http.StatusRequestEntityTooLarge {
				return
			}
		}

		videntity.StripCredentials(r)
		for name := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), videntity.HeaderSessionKey) {
				t.Fatalf("header %s survived StripCredentials", name)
			}
		}
		out, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		wantBody := body
		if readable {
			wantBody = refDrop(body)
		}
		if !bytes.Equal(out, wantBody) {
			t.Fatalf("forwarded body %q, want %q (from %q, flags %b)", out, wantBody, body, flags)
		}
		if readable {
			if r.ContentLength != int64(len(out)) {
				t.Fatalf("ContentLength %d for a %d-byte body", r.ContentLength, len(out))
			}
			if cl := r.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(out)) {
				t.Fatalf("Content-Length %s for a %d-byte body", cl, len(out))
			}
		}
	})
}

// refForm splits a form (or query) on '&' and '=' and percent-decodes each
// name and value, keeping a value that does not decode as it is: the
// reading the upstream and Verify share. Every value of a name is kept, in
// order.
func refForm(b []byte) map[string][]string {
	out := map[string][]string{}
	for _, pair := range strings.Split(string(b), "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		out[name] = append(out[name], v)
	}
	return out
}

// refDrop is the body with every pair whose name decodes to session_key
// removed, the others joined by '&' as they were.
func refDrop(b []byte) []byte {
	var kept []string
	removed := false
	for _, pair := range strings.Split(string(b), "&") {
		k, _, _ := strings.Cut(pair, "=")
		if name, err := url.QueryUnescape(k); err == nil && name == videntity.FieldSessionKey {
			removed = true
			continue
		}
		kept = append(kept, pair)
	}
	if !removed {
		return b
	}
	return []byte(strings.Join(kept, "&"))
}

// answerText is a recorded answer's header fields and body with the parts
// that differ between answers (transaction number, time, issued key)
// masked, as one text to search.
func answerText(w *httptest.ResponseRecorder) string {
	var b strings.Builder
	_ = w.Result().Header.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(mask(w.Body.Bytes()))
	return b.String()
}
