package amatino_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
)

// loginStatuses are the only answers a login may give (SEC-38): success,
// the refusals, and 503 when the store or the hashing pool is saturated.
var loginStatuses = map[int]bool{200: true, 400: true, 401: true, 413: true, 415: true, 429: true, 503: true}

// fuzzUser is a static user of newEnv, with the secret that logs it in.
type fuzzUser struct {
	id       int64
	email    string
	secret   string
	disabled bool
}

var fuzzUsers = []fuzzUser{
	{101, "alice@example.com", alicePW, false},
	{102, "disabled@example.com", disabledPW, true},
	{103, "bob@example.com", "bob's secret", false},
}

// FuzzLogin (SEC-38, SEC-03, SEC-44) drives Login over HTTP with any body
// and Content-Type. The status is always one of loginStatuses, never 500;
// no answer carries a user's secret or hash, or the body's own secret,
// beyond what the fixed answer texts or the body's own member names
// contain (an unknown member is named in the refusal); and a 200 comes
// only for a known, enabled user's exact secret, by that user's email or
// id.
func FuzzLogin(f *testing.F) {
	f.Add([]byte(`{"secret":"correct horse battery staple","account_email":"alice@example.com","user_id":null}`), "application/json")
	e := newEnv(f, amatino.Options{})
	var hashes []string
	for _, u := range fuzzUsers {
		usr, err := e.m.Users().UserByID(context.Background(), u.id)
		if err != nil {
			f.Fatal(err)
		}
		hashes = append(hashes, usr.PasswordHash)
	}
	login := func(body []byte, ct string) (int, string, []byte) {
		r := httptest.NewRequest(http.MethodPost, amatino.LoginPath, bytes.NewReader(body))
		if ct != "" {
			r.Header["Content-Type"] = []string{ct}
		}
		w := httptest.NewRecorder()
		e.d.Login(w, r)
		return w.Code, answerText(w), w.Body.Bytes()
	}
	// The fixed texts: every kind of refusal, with nothing of a secret.
	var vocab strings.Builder
	for _, p := range []struct{ body, ct string }{
		{"", ""}, {"{", ""}, {`{"x":1}`, ""}, {`{"secret":1}`, ""}, {`{"secret":"a"}`, ""},
		{`{"secret":"a","user_id":1,"account_email":"x"}`, ""}, {`{"secret":"a","account_email":""}`, ""},
		{`{"secret":"a","user_id":0}`, ""}, {`{"secret":"a","user_id":101}`, ""}, {`{"secret":"a","secret":"b"}`, ""},
		{`{"secret":"` + strings.Repeat("a", 8<<10) + `","user_id":101}`, ""}, {"\xff", ""},
		{strings.Repeat("[", 20) + strings.Repeat("]", 20), ""}, {`[]`, ""},
		{`{}`, "text/plain"}, {strings.Repeat(" ", amatino.MaxLoginBody+1), ""},
	} {
		_, text, _ := login([]byte(p.body), p.ct)
		vocab.WriteString(text)
		vocab.WriteByte(0)
	}
	fixed := vocab.String()

	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		status, text, answer := login(body, ct)
		if !loginStatuses[status] {
			t.Fatalf("status %d for body %q, Content-Type %q: %s", status, body, ct, text)
		}
		for _, h := range hashes {
			if strings.Contains(text, h) {
				t.Fatalf("the answer holds a password hash: %s", text)
			}
		}
		lenient, keys := lenientObject(body)
		secrets := []string{alicePW, disabledPW, "bob's secret"}
		if s, ok := jsonStringMember(lenient, "secret"); ok {
			secrets = append(secrets, s)
		}
		for _, s := range secrets {
			if echoed(text, s, fixed, keys) {
				t.Fatalf("the answer repeats the secret %q: %s", s, text)
			}
		}
		if status != http.StatusOK {
			return
		}
		var res struct {
			APIKey    string `json:"api_key"`
			SessionID int64  `json:"session_id"`
			UserID    int64  `json:"user_id"`
		}
		if err := json.Unmarshal(answer, &res); err != nil {
			t.Fatalf("200 answer %q: %v", text, err)
		}
		var in struct {
			Secret string          `json:"secret"`
			Email  *string         `json:"account_email"`
			UserID json.RawMessage `json:"user_id"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("200 for a body encoding/json cannot read (%v): %q", err, body)
		}
		var who *fuzzUser
		for i := range fuzzUsers {
			if fuzzUsers[i].id == res.UserID {
				who = &fuzzUsers[i]
			}
		}
		switch {
		case who == nil || who.disabled:
			t.Fatalf("200 for user %d, who may not log in; body %q", res.UserID, body)
		case in.Secret != who.secret:
			t.Fatalf("200 for user %d with secret %q", who.id, in.Secret)
		case in.Email != nil && strings.ToLower(*in.Email) != who.email:
			t.Fatalf("200 for user %d by email %q", who.id, *in.Email)
		case in.Email == nil && string(in.UserID) != strconv.FormatInt(who.id, 10):
			t.Fatalf("200 for user %d by user_id %s", who.id, in.UserID)
		case res.APIKey == "" || res.SessionID <= 0:
			t.Fatalf("incomplete 200 answer %s", text)
		}
	})
}

// FuzzVerifyHeaders (SEC-38, SEC-21, SEC-22, SEC-27) puts any X-Session-ID,
// X-Signature and X-Timestamp values (each possibly repeated, the
// timestamp possibly absent) on a GET and verifies it. It passes exactly
// when the reference below says so: one value each, a live session's id,
// and the canonical signature of that session's key over a second within
// the window (the one X-Timestamp names, if sent, in its one canonical
// spelling). Refusals are 400 or 401, or 503; never another status, and
// never an answer holding a session key.
//
// flags bit 0: no X-Timestamp; bit 1: X-Signature twice; bit 2:
// X-Session-ID twice; bit 3: X-Timestamp twice.
func FuzzVerifyHeaders(f *testing.F) {
	f.Add(wireSessionID, wireSig, "", uint8(1))
	e := newEnv(f, amatino.Options{})
	const otherID, otherKey = "4200101", "Zm9vYmFyYmF6cXV1eGZvb2JhcmJhenF1dXhmb29iYXI="
	e.wireSession(f)
	e.session(f, otherID, otherKey, 24*time.Hour)
	now := e.clock.Now().Unix()
	window := int64(amatino.DefaultWindow / time.Second)
	// For each session, the one accepted signature of each second.
	valid := map[string]map[string]int64{}
	for id, key := range map[string]string{wireSessionID: wireKey, otherID: otherKey} {
		valid[id] = map[string]int64{}
		for ts := now - window; ts <= now+window; ts++ {
			valid[id][sigAt(key, ts, wirePath, nil)] = ts
		}
	}
	f.Fuzz(func(t *testing.T, id, sig, ts string, flags uint8) {
		r := httptest.NewRequest(http.MethodGet, wirePath, nil)
		put := func(name, v string, twice bool) {
			r.Header[name] = []string{v}
			if twice {
				r.Header[name] = append(r.Header[name], v)
			}
		}
		put("X-Session-Id", id, flags&4 != 0)
		put("X-Signature", sig, flags&2 != 0)
		hasTS := flags&1 == 0
		if hasTS {
			put("X-Timestamp", ts, flags&8 != 0)
		}

		want, wantTS := false, int64(0)
		if flags&(2|4) == 0 && (!hasTS || flags&8 == 0) {
			if at, ok := valid[id][sig]; ok {
				switch {
				case !hasTS:
					want, wantTS = true, at
				case ts == strconv.FormatInt(at, 10):
					want, wantTS = true, at
				}
			}
		}

		v, ref := e.verify(r)
		if ref == nil {
			if !want {
				t.Fatalf("verified id %q sig %q ts %q (flags %b), which the reference refuses", id, sig, ts, flags)
			}
			if v.Session.ID != id || int64(v.Offset) != wantTS-now {
				t.Fatalf("verified as session %s offset %d, want %s offset %d", v.Session.ID, v.Offset, id, wantTS-now)
			}
			return
		}
		if want {
			t.Fatalf("refused valid credentials (flags %b): %d %s %s", flags, ref.Status, ref.Code, ref.Message)
		}
		switch ref.Status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d (%s) for id %q sig %q ts %q", ref.Status, ref.Code, id, sig, ts)
		}
		w := httptest.NewRecorder()
		ref.Write(w)
		if text := answerText(w); strings.Contains(text, wireKey) || strings.Contains(text, otherKey) {
			t.Fatalf("refusal holds a session key: %s", text)
		}
	})
}

// answerText is a recorded answer's header fields and body, as one text to
// search.
func answerText(w *httptest.ResponseRecorder) string {
	var b strings.Builder
	_ = w.Result().Header.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.Body.Bytes())
	return b.String()
}

// lenientObject decodes body as encoding/json would, ignoring what the
// strict decoder refuses, and lists its member names.
func lenientObject(body []byte) (map[string]json.RawMessage, []string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return m, keys
}

func jsonStringMember(m map[string]json.RawMessage, name string) (string, bool) {
	var s string
	if raw, ok := m[name]; !ok || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// echoed reports whether the answer text repeats s where it can only have
// come from the request: s is not part of the fixed answer texts, and not
// part of a member name, which a refusal may name. Strings shorter than 4
// bytes are too likely to occur by chance to say anything.
func echoed(text, s, fixed string, keys []string) bool {
	if len(s) < 4 || !strings.Contains(text, s) || strings.Contains(fixed, s) {
		return false
	}
	for _, k := range keys {
		if strings.Contains(k, s) {
			return false
		}
	}
	return true
}
