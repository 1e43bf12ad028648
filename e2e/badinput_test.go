package e2e

// The bad-input corpus (SEC-22, SEC-27, SEC-32…SEC-37): malformed requests
// across every endpoint and credential form, each with the exact answer it
// must get; none may change the store or reach the upstream.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// answerForm is how a refusal is written.
type answerForm int

const (
	// formJSON: the gateway's `{"error": code, "message": …}`.
	formJSON answerForm = iota
	// formXML: a videntity endpoint's ERROR document; code is error_name.
	formXML
	// formPlain: Go's HTTP server refusing a request it cannot parse,
	// before any handler runs (text/plain); code is how the body starts.
	formPlain
)

// answerSpec is the exact answer a bad request must get.
type answerSpec struct {
	status int
	form   answerForm
	code   string
}

func jsonAns(status int, code string) answerSpec { return answerSpec{status, formJSON, code} }
func xmlAns(status int, name string) answerSpec  { return answerSpec{status, formXML, name} }
func plainAns(status int) answerSpec {
	return answerSpec{status, formPlain, fmt.Sprintf("%d %s", status, http.StatusText(status))}
}

// Answers that recur.
var (
	badJSON       = jsonAns(http.StatusBadRequest, "invalid_request")
	badMedia      = jsonAns(http.StatusUnsupportedMediaType, "unsupported_media_type")
	tooLarge      = jsonAns(http.StatusRequestEntityTooLarge, "body_too_large")
	missingCreds  = jsonAns(http.StatusUnauthorized, "missing_credentials")
	malformedCred = jsonAns(http.StatusUnauthorized, "malformed_credentials")
	badSig        = jsonAns(http.StatusUnauthorized, "bad_signature")
	clockSkew     = jsonAns(http.StatusUnauthorized, "clock_skew")
	unknownSess   = jsonAns(http.StatusUnauthorized, "unknown_session")
	parseRefusal  = plainAns(http.StatusBadRequest)
	unsupportedTE = answerSpec{http.StatusNotImplemented, formPlain, "Unsupported transfer encoding"}
	vidMissing    = xmlAns(http.StatusBadRequest, "MISSING_MANDATORY_FIELD")
	vidMedia      = xmlAns(http.StatusUnsupportedMediaType, "MISSING_MANDATORY_FIELD")
	vidTooLarge   = xmlAns(http.StatusRequestEntityTooLarge, "MISSING_MANDATORY_FIELD")
	vidNoSession  = xmlAns(http.StatusNotFound, "SESSION_DOES_NOT_EXIST")
)

// videntityErrorNumbers are WIRE.md's error numbers by name.
var videntityErrorNumbers = map[string]int{"AUTHENTICATION_ERROR": 1, "SESSION_DOES_NOT_EXIST": 2,
	"SESSION_EXPIRED": 3, "MISSING_MANDATORY_FIELD": 4, "SERVER_ERROR": 11}

// corpusEnv is what the cases build their requests from: live sessions
// (so that a case can be wrong in exactly one respect) and the hosts.
type corpusEnv struct {
	host1, host2 string // main site; site with max_body 1KiB
	s, sb        amSession
	vkey         string
	v            *vidUser
}

func (e *corpusEnv) id() string { return strconv.FormatInt(e.s.SessionID, 10) }

// sigAt is alice's signature of path at ts, current variant.
func (e *corpusEnv) sigAt(ts int64, path string) string { return amSign(e.s.APIKey, ts, path, nil) }

// sig is alice's signature of path now.
func (e *corpusEnv) sig(path string) string { return e.sigAt(time.Now().Unix(), path) }

// signed are the credential header lines of alice for path, now.
func (e *corpusEnv) signed(path string) []string {
	return []string{"X-Session-ID: " + e.id(), "X-Signature: " + e.sig(path)}
}

// badCase is one malformed request and its exact answer.
type badCase struct {
	name string
	// site 2 is the site with max_body 1KiB for both dialects.
	site int
	raw  func(e *corpusEnv) []byte
	// halfClose ends the client's side of the stream after raw, for bodies
	// shorter than announced.
	halfClose bool
	want      answerSpec
	// then are the answers to further requests smuggled in raw, in order.
	then []answerSpec
	// keepAlive leaves the request as it is; otherwise the runner adds
	// `Connection: close`, so the server ends the exchange.
	keepAlive bool
	// lookup: the request is well-formed up to the session lookup. Every
	// other case must be refused before any cache or store lookup
	// (SEC-36); a bad_signature or unknown_session answer implies one.
	lookup bool
}

// looksUp reports whether the case's refusal comes after a session lookup.
func (c badCase) looksUp() bool {
	return c.lookup || c.want.code == "bad_signature" || c.want.code == "unknown_session"
}

// badInputSet is the corpus of one dialect (or of HTTP framing). A dialect
// added later (sxt, native RFC 9421) adds its set here and enables itself
// in corpusCaddyfile.
type badInputSet struct {
	name  string
	cases func() []badCase
}

var badInputSets = []badInputSet{
	{"amatino", amatinoBadInput},
	{"videntity", videntityBadInput},
	{"http framing", framingBadInput},
}

// badInputCorpus joins every set, prefixing each name with its set's.
func badInputCorpus() []badCase {
	var all []badCase
	for _, set := range badInputSets {
		for _, c := range set.cases() {
			c.name = set.name + ": " + c.name
			all = append(all, c)
		}
	}
	return all
}

// req is a case request on path with header lines and a body.
func req(method, target string, headers []string, body []byte) func(*corpusEnv) []byte {
	return func(e *corpusEnv) []byte { return rawRequest(e.host1, method, target, headers, body) }
}

// reqE is a case request whose header lines depend on the sessions.
func reqE(method, target string, headers func(e *corpusEnv) []string, body []byte) func(*corpusEnv) []byte {
	return func(e *corpusEnv) []byte { return rawRequest(e.host1, method, target, headers(e), body) }
}

func withLines(a []string, b ...string) []string { return append(append([]string(nil), a...), b...) }

// ---------------------------------------------------------------------------
// amatino

func amatinoBadInput() []badCase {
	var cs []badCase
	login := func(name, body string, want answerSpec) {
		cs = append(cs, badCase{name: "login " + name,
			raw: req("POST", "/session", []string{"Content-Type: application/json"}, []byte(body)), want: want})
	}
	const ok = `"secret":"s3cret-value","account_email":"alice@example.test"`

	// SEC-33: JSON that encoding/json would accept, repair or misread.
	for _, c := range []struct{ name, body string }{
		{"SEC-33 empty body", ``},
		{"SEC-33 whitespace only", "  \n "},
		{"SEC-33 truncated object", `{` + ok},
		{"SEC-33 truncated string", `{"secret":"s3cr`},
		{"SEC-33 truncated after colon", `{"secret":`},
		{"SEC-33 trailing data", `{` + ok + `,"user_id":null} x`},
		{"SEC-33 two objects", `{` + ok + `}{` + ok + `}`},
		{"SEC-33 top-level array", `[{` + ok + `}]`},
		{"SEC-33 top-level string", `"s3cret-value"`},
		{"SEC-33 top-level null", `null`},
		{"SEC-33 top-level number", `42`},
		{"SEC-33 10000 open brackets", strings.Repeat("[", 10000)},
		{"SEC-33 nesting deeper than 8", `{"secret":"x","account_email":null,"user_id":[[[[[[[[[1]]]]]]]]]}`},
		{"SEC-33 duplicate secret", `{` + ok + `,"secret":"other"}`},
		{"SEC-33 duplicate account_email", `{` + ok + `,"account_email":"bob@example.test"}`},
		{"SEC-33 duplicate user_id", `{"secret":"x","user_id":42,"user_id":43}`},
		{"SEC-33 case-folded SECRET", `{"SECRET":"x","account_email":"alice@example.test"}`},
		{"SEC-33 case-folded Account_Email", `{"secret":"x","Account_Email":"alice@example.test"}`},
		{"SEC-33 case-folded USER_ID beside user_id", `{"secret":"x","user_id":42,"USER_ID":43}`},
		{"SEC-33 unknown field role", `{` + ok + `,"role":"admin"}`},
		{"SEC-33 unknown field session_id", `{` + ok + `,"session_id":1}`},
		{"SEC-33 invalid UTF-8 in a value", `{"secret":"s3cret-` + "\xff" + `","account_email":"alice@example.test"}`},
		{"SEC-33 invalid UTF-8 in a key", `{"secret":"x","account_email":"alice@example.test","` + "\xfe" + `":1}`},
		{"SEC-33 overlong UTF-8", `{"secret":"` + "\xc0\xaf" + `","account_email":"alice@example.test"}`},
		{"SEC-33 lone surrogate escape", `{"secret":"\ud800","account_email":"alice@example.test"}`},
		{"SEC-33 byte order mark", "\xef\xbb\xbf{" + ok + "}"},
		{"SEC-33 single quotes", `{'secret':'x','account_email':'alice@example.test'}`},
		{"SEC-33 trailing comma", `{` + ok + `,}`},
		{"SEC-33 comment", `{` + ok + ` /* admin */}`},
		{"SEC-33 raw control character in a string", `{"secret":"a` + "\x01" + `b","account_email":"alice@example.test"}`},
		{"SEC-33 raw newline in a string", `{"secret":"a` + "\n" + `b","account_email":"alice@example.test"}`},
		{"SEC-33 invalid escape", `{"secret":"\x41","account_email":"alice@example.test"}`},
		{"SEC-33 NaN", `{"secret":"x","user_id":NaN}`},
		// SEC-32: types and values.
		{"SEC-32 user_id as a string", `{"secret":"x","account_email":null,"user_id":"12"}`},
		{"SEC-32 user_id 1e3", `{"secret":"x","account_email":null,"user_id":1e3}`},
		{"SEC-32 user_id 1E3", `{"secret":"x","account_email":null,"user_id":1E3}`},
		{"SEC-32 user_id 1.0", `{"secret":"x","account_email":null,"user_id":1.0}`},
		{"SEC-32 user_id 42.5", `{"secret":"x","account_email":null,"user_id":42.5}`},
		{"SEC-32 user_id -5", `{"secret":"x","account_email":null,"user_id":-5}`},
		{"SEC-32 user_id 0", `{"secret":"x","account_email":null,"user_id":0}`},
		{"SEC-32 user_id -0", `{"secret":"x","account_email":null,"user_id":-0}`},
		{"SEC-32 user_id 2^63", `{"secret":"x","account_email":null,"user_id":9223372036854775808}`},
		{"SEC-32 user_id 007", `{"secret":"x","account_email":null,"user_id":007}`},
		{"SEC-32 user_id 0x2A", `{"secret":"x","account_email":null,"user_id":0x2A}`},
		{"SEC-32 user_id true", `{"secret":"x","account_email":null,"user_id":true}`},
		{"SEC-32 user_id array", `{"secret":"x","account_email":null,"user_id":[42]}`},
		{"SEC-32 user_id object", `{"secret":"x","account_email":null,"user_id":{"id":42}}`},
		{"SEC-32 email and user_id both given", `{` + ok + `,"user_id":42}`},
		{"SEC-32 email and user_id both null", `{"secret":"x","account_email":null,"user_id":null}`},
		{"SEC-32 email and user_id both absent", `{"secret":"x"}`},
		{"SEC-32 secret absent", `{"account_email":"alice@example.test","user_id":null}`},
		{"SEC-32 secret null", `{"secret":null,"account_email":"alice@example.test"}`},
		{"SEC-32 secret a number", `{"secret":12345678,"account_email":"alice@example.test"}`},
		{"SEC-32 secret an array", `{"secret":["x"],"account_email":"alice@example.test"}`},
		{"SEC-32 secret an object", `{"secret":{"x":1},"account_email":"alice@example.test"}`},
		{"SEC-32 secret true", `{"secret":true,"account_email":"alice@example.test"}`},
		{"SEC-32 account_email a number", `{"secret":"x","account_email":42}`},
		{"SEC-32 account_email empty", `{"secret":"x","account_email":""}`},
		{"SEC-32 account_email of 255 bytes", `{"secret":"x","account_email":"` + strings.Repeat("a", 242) + `@example.test"}`},
		{"SEC-32 account_email an array", `{"secret":"x","account_email":["alice@example.test"]}`},
		{"SEC-32 account_email an object", `{"secret":"x","account_email":{"a":"alice@example.test"}}`},
		// SEC-02: bounded before the KDF.
		{"SEC-02 secret of 1025 bytes", `{"secret":"` + strings.Repeat("p", 1025) + `","account_email":"alice@example.test"}`},
	} {
		login(c.name, c.body, badJSON)
	}

	// SEC-32: content types.
	body := []byte(`{` + ok + `,"user_id":null}`)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/xml", "application/jsonx", "json", "application/json; charset", "application/json;;"} {
		cs = append(cs, badCase{name: "SEC-32 login Content-Type " + ct,
			raw: req("POST", "/session", []string{"Content-Type: " + ct}, body), want: badMedia})
	}

	// SEC-34: size, and bodies shorter than announced.
	big := loginOfSize(64<<10 + 4096)
	cs = append(cs,
		badCase{name: "SEC-34 login of 64 KiB + 1", want: tooLarge, raw: req("POST", "/session",
			[]string{"Content-Type: application/json"}, loginOfSize(64<<10+1))},
		badCase{name: "SEC-34 login of 68 KiB", want: tooLarge, raw: req("POST", "/session",
			[]string{"Content-Type: application/json"}, big)},
		badCase{name: "SEC-34 login announcing 10 MiB (refused before the read)", want: tooLarge, raw: req("POST", "/session",
			[]string{"Content-Type: application/json", "Content-Length: 10485760"}, []byte(`{"secret":`))},
		badCase{name: "SEC-34 chunked login over 64 KiB", want: tooLarge, raw: req("POST", "/session",
			[]string{"Content-Type: application/json", "Transfer-Encoding: chunked"}, chunked(big, 8192))},
		badCase{name: "SEC-33 login truncated (Content-Length 200, 20 sent)", halfClose: true, want: badJSON,
			raw: req("POST", "/session", []string{"Content-Type: application/json", "Content-Length: 200"}, []byte(`{"secret":"s3cret-va`))},
		badCase{name: "SEC-33 chunked login without its last chunk", halfClose: true, want: badJSON,
			raw: req("POST", "/session", []string{"Content-Type: application/json", "Transfer-Encoding: chunked"},
				[]byte("a\r\n{\"secret\":\r\n"))},
		badCase{name: "SEC-33 chunked login with a bad chunk size", want: badJSON,
			raw: req("POST", "/session", []string{"Content-Type: application/json", "Transfer-Encoding: chunked"},
				[]byte("zz\r\n{}\r\n0\r\n\r\n"))},
	)

	// Not the login endpoint: any other method or spelling of the path is
	// an ordinary proxied request, and has no credentials.
	for _, c := range []struct{ method, target string }{
		{"GET", "/session"}, {"PUT", "/session"}, {"PATCH", "/session"}, {"POST", "/session/"},
		{"POST", "/Session"}, {"POST", "//session"}, {"POST", "/session%2F"}, {"POST", "/./session"},
	} {
		cs = append(cs, badCase{name: fmt.Sprintf("SEC-28 %s %s is not the login endpoint", c.method, c.target),
			raw: req(c.method, c.target, []string{"Content-Type: application/json"}, body), want: missingCreds})
	}

	// Logout: DELETE /session is verified like any signed request.
	logout := func(name string, headers func(e *corpusEnv) []string, want answerSpec) {
		cs = append(cs, badCase{name: "logout " + name, raw: reqE("DELETE", "/session", headers, nil), want: want})
	}
	logout("without credentials", func(*corpusEnv) []string { return nil }, missingCreds)
	logout("SEC-27 without X-Signature", func(e *corpusEnv) []string { return []string{"X-Session-ID: " + e.id()} }, missingCreds)
	logout("signed for another path", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: " + e.sig("/sessions")}
	}, badSig)
	logout("signed with another session's key", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: " + amSign(e.sb.APIKey, time.Now().Unix(), "/session", nil)}
	}, badSig)
	logout("SEC-27 two X-Signature", func(e *corpusEnv) []string {
		return withLines(e.signed("/session"), "X-Signature: "+e.sig("/session"))
	}, badJSON)
	logout("SEC-27 two X-Session-ID", func(e *corpusEnv) []string {
		return withLines(e.signed("/session"), "X-Session-ID: "+e.id())
	}, badJSON)
	logout("unknown session", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: 1234567890123", "X-Signature: " + e.sig("/session")}
	}, unknownSess)
	logout("SEC-36 session id not decimal", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: abc", "X-Signature: " + e.sig("/session")}
	}, malformedCred)
	logout("SEC-35 signature in base64url", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: " + toURLAlphabet(e.sig("/session"))}
	}, malformedCred)
	logout("SEC-22 X-Timestamp 1.7e9", func(e *corpusEnv) []string {
		return withLines(e.signed("/session"), "X-Timestamp: 1.7e9")
	}, badJSON)
	logout("SEC-22 X-Timestamp now-301", func(e *corpusEnv) []string {
		ts := time.Now().Unix() - 301
		return []string{"X-Session-ID: " + e.id(), "X-Timestamp: " + strconv.FormatInt(ts, 10), "X-Signature: " + e.sigAt(ts, "/session")}
	}, clockSkew)

	// Signed proxied requests, wrong in exactly one respect.
	const p = "/entities/x"
	signedCase := func(name string, headers func(e *corpusEnv) []string, want answerSpec) {
		cs = append(cs, badCase{name: name, raw: reqE("GET", p, headers, nil), want: want})
	}
	// SEC-27: exactly one of each credential header.
	signedCase("SEC-27 two identical X-Session-ID", func(e *corpusEnv) []string {
		return withLines(e.signed(p), "X-Session-ID: "+e.id())
	}, badJSON)
	signedCase("SEC-27 two different X-Session-ID", func(e *corpusEnv) []string {
		return withLines(e.signed(p), "X-Session-ID: "+strconv.FormatInt(e.sb.SessionID, 10))
	}, badJSON)
	signedCase("SEC-27 two X-Signature, the first valid", func(e *corpusEnv) []string {
		return withLines(e.signed(p), "X-Signature: "+strings.Repeat("A", 86)+"==")
	}, badJSON)
	signedCase("SEC-27 two identical X-Signature", func(e *corpusEnv) []string {
		return withLines(e.signed(p), "X-Signature: "+e.sig(p))
	}, badJSON)
	signedCase("SEC-27 X-Signature: sig, sig", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: " + e.sig(p) + ", " + e.sig(p)}
	}, badJSON)
	signedCase("SEC-27 X-Session-ID: id, id", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id() + ", " + e.id(), "X-Signature: " + e.sig(p)}
	}, badJSON)
	signedCase("SEC-27 two X-Timestamp", func(e *corpusEnv) []string {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		return withLines(e.signed(p), "X-Timestamp: "+ts, "X-Timestamp: "+ts)
	}, badJSON)
	signedCase("SEC-27 empty X-Session-ID", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: ", "X-Signature: " + e.sig(p)}
	}, missingCreds)
	signedCase("SEC-27 empty X-Signature", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: "}
	}, missingCreds)
	signedCase("SEC-27 no X-Signature", func(e *corpusEnv) []string { return []string{"X-Session-ID: " + e.id()} }, missingCreds)
	signedCase("SEC-27 no X-Session-ID", func(e *corpusEnv) []string { return []string{"X-Signature: " + e.sig(p)} }, missingCreds)
	signedCase("SEC-27 X-Timestamp alone", func(*corpusEnv) []string {
		return []string{"X-Timestamp: " + strconv.FormatInt(time.Now().Unix(), 10)}
	}, missingCreds)
	signedCase("SEC-27 X_Session_ID spelled with underscores", func(e *corpusEnv) []string {
		return []string{"X_Session_ID: " + e.id(), "X-Signature: " + e.sig(p)}
	}, missingCreds)
	signedCase("SEC-27 X_Signature spelled with underscores", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X_Signature: " + e.sig(p)}
	}, missingCreds)

	// SEC-36: session id syntax, checked before any lookup.
	for _, c := range []struct{ name, id string }{
		{"letters", "abc"}, {"10 KB", strings.Repeat("7", 10<<10)}, {"path traversal", "../../etc/passwd"},
		{"leading zero", "0{id}"}, {"negative", "-{id}"}, {"plus sign", "+{id}"}, {"zero", "0"},
		{"Arabic-Indic digits", "١٢٣"}, {"20 digits", "99999999999999999999"}, {"hex", "0x1F"},
		{"exponent", "1e5"}, {"fraction", "{id}.0"}, {"percent-encoded", "%31%32"}, {"tab inside", "12\t34"},
		{"non-UTF-8 byte", "12\xff34"}, {"semicolon", "{id};"}, {"space inside", "12 34"},
	} {
		id := c.id
		signedCase("SEC-36 session id "+c.name, func(e *corpusEnv) []string {
			return []string{"X-Session-ID: " + strings.ReplaceAll(id, "{id}", e.id()), "X-Signature: " + e.sig(p)}
		}, malformedCred)
	}

	// SEC-21, SEC-35: signature syntax, decoded strictly to 64 bytes.
	for _, c := range []struct {
		name string
		sig  func(valid string) string
	}{
		{"87 characters", func(v string) string { return v[:87] }},
		{"89 characters", func(v string) string { return v + "=" }},
		{"base64url alphabet", func(string) string { return strings.Repeat("-_", 43) + "==" }},
		{"no padding", func(v string) string { return v[:86] }},
		{"non-canonical last character", func(v string) string { return v[:85] + nonCanonical(v[85]) + "==" }},
		{"space inside", func(v string) string { return v[:40] + " " + v[41:] }},
		{"hex of the MAC", func(v string) string { return hex.EncodeToString(mustB64(v)) }},
		{"32 bytes", func(v string) string { return base64.StdEncoding.EncodeToString(mustB64(v)[:32]) }},
		{"padding only", func(string) string { return strings.Repeat("=", 88) }},
		{"non-ASCII bytes", func(string) string { return strings.Repeat("\xff", 88) }},
		{"tab inside", func(v string) string { return v[:40] + "\t" + v[41:] }},
		{"65 bytes", func(v string) string { return base64.StdEncoding.EncodeToString(append(mustB64(v), 0)) }},
		{"raw (unpadded) standard base64 of 64 bytes + 2 letters", func(v string) string { return v[:86] + "AA" }},
	} {
		mk := c.sig
		signedCase("SEC-35 signature "+c.name, func(e *corpusEnv) []string {
			return []string{"X-Session-ID: " + e.id(), "X-Signature: " + mk(e.sig(p))}
		}, malformedCred)
	}
	signedCase("SEC-21 signature of 64 zero bytes", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: " + base64.StdEncoding.EncodeToString(make([]byte, 64))}
	}, badSig)
	signedCase("signature with another session's key", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: " + e.id(), "X-Signature: " + amSign(e.sb.APIKey, time.Now().Unix(), p, nil)}
	}, badSig)
	signedCase("SEC-36 unknown well-formed session id", func(e *corpusEnv) []string {
		return []string{"X-Session-ID: 999999999999999", "X-Signature: " + e.sig(p)}
	}, unknownSess)

	// SEC-22: the X-Timestamp header, when sent.
	for _, c := range []struct {
		name string
		ts   func(now int64) string
		want answerSpec
	}{
		{"1.7e9", func(int64) string { return "1.7e9" }, badJSON},
		{"plus sign", func(n int64) string { return "+" + strconv.FormatInt(n, 10) }, badJSON},
		{"hex", func(n int64) string { return "0x" + strconv.FormatInt(n, 16) }, badJSON},
		{"empty", func(int64) string { return "" }, badJSON},
		{"negative", func(int64) string { return "-1" }, badJSON},
		{"leading zero", func(n int64) string { return "0" + strconv.FormatInt(n, 10) }, badJSON},
		{"20 digits", func(int64) string { return "17000000000000000000" }, badJSON},
		{"full-width digits", func(int64) string { return "１７００００００００" }, badJSON},
		{"fraction", func(n int64) string { return strconv.FormatInt(n, 10) + ".5" }, badJSON},
		{"milliseconds", func(n int64) string { return strconv.FormatInt(n*1000, 10) }, clockSkew},
		{"trailing letters", func(n int64) string { return strconv.FormatInt(n, 10) + "s" }, badJSON},
		{"now-301", func(n int64) string { return strconv.FormatInt(n-301, 10) }, clockSkew},
		{"now+301", func(n int64) string { return strconv.FormatInt(n+301, 10) }, clockSkew},
		{"now-31 (outside the 30s window)", func(n int64) string { return strconv.FormatInt(n-31, 10) }, clockSkew},
		{"zero", func(int64) string { return "0" }, clockSkew},
	} {
		mk, want := c.ts, c.want
		signedCase("SEC-22 X-Timestamp "+c.name, func(e *corpusEnv) []string {
			now := time.Now().Unix()
			return withLines(e.signed(p), "X-Timestamp: "+mk(now))
		}, want)
	}
	signedCase("SEC-22 X-Timestamp now, signature of now-5", func(e *corpusEnv) []string {
		now := time.Now().Unix()
		return []string{"X-Session-ID: " + e.id(), "X-Timestamp: " + strconv.FormatInt(now, 10), "X-Signature: " + e.sigAt(now-5, p)}
	}, badSig)

	// SEC-28: the signature covers the request target as sent; no
	// cleaning or decoding makes another spelling match.
	for _, c := range []struct{ signed, sent string }{
		{"/a/b", "/a/./b"}, {"/a/b", "//a/b"}, {"/a/b", "/A/b"}, {"/a/b", "/a%2Fb"}, {"/a/b", "/a/b/"},
		{"/a/b", "/a/b%00"}, {"/a/b", "/a/../a/b"}, {"/a/b", "/a/b;x=1"}, {"/a/b", "/a/%62"},
		{"/a/b", "/a/b%20"}, {"/a/b", "/a//b"}, {"/a/b", "/a/b\xff"}, {"/a/b", "/a/b%ff"},
		{"/a%2Fb", "/a/b"}, {"/a/%62", "/a/b"}, {"/a/b/", "/a/b"},
	} {
		sgn, sent := c.signed, c.sent
		cs = append(cs, badCase{name: fmt.Sprintf("SEC-28 signed %s, sent %q", sgn, sent), want: badSig,
			raw: reqE("GET", sent, func(e *corpusEnv) []string {
				return []string{"X-Session-ID: " + e.id(), "X-Signature: " + e.sig(sgn)}
			}, nil)})
	}

	// SEC-34: a body read to check a body-covering signature is bounded.
	wrongSig := func(e *corpusEnv) []string {
		return []string{"Content-Type: application/json", "X-Session-ID: " + e.id(), "X-Signature: " + e.sig("/elsewhere")}
	}
	cs = append(cs,
		badCase{name: "SEC-34 body over max_body with a signature that needs it", site: 2, want: tooLarge, lookup: true,
			raw: func(e *corpusEnv) []byte {
				return rawRequest(e.host2, "POST", "/entities", wrongSig(e), jsonBodyN(2048))
			}},
		badCase{name: "SEC-34 chunked body over max_body", site: 2, want: tooLarge, lookup: true,
			raw: func(e *corpusEnv) []byte {
				return rawRequest(e.host2, "POST", "/entities", withLines(wrongSig(e), "Transfer-Encoding: chunked"), chunked(jsonBodyN(2048), 500))
			}},
		badCase{name: "SEC-34 declared 10 MiB + 1 (refused before the read)", want: tooLarge, lookup: true,
			raw: reqE("POST", "/entities", func(e *corpusEnv) []string {
				return withLines(wrongSig(e), "Content-Length: 10485761")
			}, []byte("{"))},
		badCase{name: "SEC-33 signed body truncated", halfClose: true, want: badJSON, lookup: true,
			raw: reqE("POST", "/entities", func(e *corpusEnv) []string {
				return withLines(wrongSig(e), "Content-Length: 500")
			}, []byte(`{"name":"Ac`))},
		badCase{name: "non-UTF-8 body under a signature that does not match", want: badSig,
			raw: reqE("POST", "/entities", wrongSig, []byte("\xff\xfe{\"a\":1}"))},
		badCase{name: "amatino and videntity credentials together", want: badJSON,
			raw: reqE("GET", p, func(e *corpusEnv) []string { return withLines(e.signed(p), "X-Session-Key: "+e.vkey) }, nil)},
	)
	return cs
}

// loginOfSize is a well-formed login body of exactly n bytes.
func loginOfSize(n int) []byte {
	head, tail := `{"secret":"`, `","account_email":"alice@example.test","user_id":null}`
	return []byte(head + strings.Repeat("s", n-len(head)-len(tail)) + tail)
}

// chunked frames b in chunks of size n, with the last chunk.
func chunked(b []byte, n int) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		k := min(n, len(b))
		fmt.Fprintf(&out, "%x\r\n", k)
		out.Write(b[:k])
		out.WriteString("\r\n")
		b = b[k:]
	}
	out.WriteString("0\r\n\r\n")
	return out.Bytes()
}

// toURLAlphabet respells a standard base64 string in the URL-safe alphabet,
// forcing at least one URL-only character in.
func toURLAlphabet(s string) string {
	r := strings.NewReplacer("+", "-", "/", "_").Replace(s)
	if r == s {
		r = "-" + r[1:]
	}
	return r
}

// nonCanonical returns a base64 character whose low 4 bits are set: in the
// 86th place of a 64-byte value they must be zero.
func nonCanonical(c byte) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alpha, c)
	return string(alpha[(i&^15)|1])
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ---------------------------------------------------------------------------
// videntity

const formCT = "Content-Type: application/x-www-form-urlencoded"

func videntityBadInput() []badCase {
	var cs []badCase
	form := func(name, path string, headers []string, body func(e *corpusEnv) string, want answerSpec) {
		cs = append(cs, badCase{name: name, want: want, raw: func(e *corpusEnv) []byte {
			return rawRequest(e.host1, "POST", path, headers, []byte(body(e)))
		}})
	}
	lit := func(s string) func(*corpusEnv) string { return func(*corpusEnv) string { return s } }
	creds := func(e *corpusEnv) string {
		return "username=" + e.v.Name + "&password=" + e.v.Secret + "&account_number=" + e.v.Account
	}

	// Login: a form, strictly parsed (SEC-32, SEC-33), bounded (SEC-34).
	for _, c := range []struct {
		name string
		hdrs []string
	}{
		{"SEC-32 text/plain", []string{"Content-Type: text/plain"}},
		{"SEC-32 JSON", []string{"Content-Type: application/json"}},
		{"SEC-32 no Content-Type", nil},
		{"SEC-32 multipart", []string{"Content-Type: multipart/form-data; boundary=x"}},
		{"SEC-27 two Content-Type", []string{formCT, formCT}},
		{"SEC-34 Content-Encoding gzip", []string{formCT, "Content-Encoding: gzip"}},
	} {
		form("login "+c.name, "/session/login", c.hdrs, creds, vidMedia)
	}
	for _, c := range []struct{ name, body string }{
		{"SEC-32 empty body", ""},
		{"SEC-32 username missing", "password=x&account_number=100000000000078"},
		{"SEC-32 password missing", "username=dana&account_number=100000000000078"},
		{"SEC-32 account_number missing", "username=dana&password=x"},
		{"SEC-32 username empty", "username=&password=x&account_number=100000000000078"},
		{"SEC-32 password empty", "username=dana&password=&account_number=100000000000078"},
		{"SEC-33 case-folded Username", "Username=dana&password=x&account_number=100000000000078"},
		{"SEC-33 semicolon separators", "username=dana;password=x;account_number=100000000000078"},
		{"SEC-33 username twice", "username=dana&username=alice&password=x&account_number=100000000000078"},
		{"SEC-33 password twice", "username=dana&password=x&password=y&account_number=100000000000078"},
		{"SEC-33 username twice, once percent-encoded", "username=dana&user%6Eame=alice&password=x&account_number=100000000000078"},
		{"SEC-33 password twice, once percent-encoded", "username=dana&pass%77ord=y&password=x&account_number=100000000000078"},
		{"SEC-33 broken escape", "username=da%zzna&password=x&account_number=100000000000078"},
		{"SEC-33 truncated escape", "username=dana&password=x&account_number=100000000000078%4"},
		{"SEC-33 non-UTF-8 escape", "username=dana%ff&password=x&account_number=100000000000078"},
		{"SEC-33 raw non-UTF-8 byte", "username=dana\xfe&password=x&account_number=100000000000078"},
		{"SEC-33 non-UTF-8 field name", "username=dana&password=x&account_number=100000000000078&%ff=1"},
		{"SEC-02 password of 1025 bytes", "username=dana&password=" + strings.Repeat("p", 1025) + "&account_number=100000000000078"},
	} {
		form("login "+c.name, "/session/login", []string{formCT}, lit(c.body), vidMissing)
	}
	form("login alias /sessions/login, password missing", "/sessions/login", []string{formCT},
		lit("username=dana&account_number=100000000000078"), vidMissing)
	form("login SEC-34 over 64 KiB", "/session/login", []string{formCT},
		lit("username=dana&password=x&account_number=1&pad="+strings.Repeat("x", 64<<10)), vidTooLarge)
	cs = append(cs,
		badCase{name: "login SEC-34 announcing 1 MiB (refused before the read)", want: vidTooLarge,
			raw: req("POST", "/session/login", []string{formCT, "Content-Length: 1048576"}, []byte("username="))},
		badCase{name: "login SEC-33 truncated body", halfClose: true, want: vidMissing,
			raw: req("POST", "/session/login", []string{formCT, "Content-Length: 300"}, []byte("username=dana&pass"))},
		badCase{name: "login by GET is not the endpoint", want: missingCreds, raw: req("GET", "/session/login", nil, nil)},
	)

	// Ping and logout: one session_key field.
	for _, path := range []string{"/session/ping", "/session/logout"} {
		for _, c := range []struct {
			name string
			body func(e *corpusEnv) string
			want answerSpec
		}{
			{"SEC-32 session_key missing", lit("a=1"), vidMissing},
			{"SEC-32 session_key empty", lit("session_key="), vidMissing},
			{"SEC-33 session_key twice", func(e *corpusEnv) string { return "session_key=" + e.vkey + "&session_key=" + e.vkey }, vidMissing},
			{"SEC-33 session_key twice, once percent-encoded", func(e *corpusEnv) string {
				return "session_key=" + e.vkey + "&session%5Fkey=" + e.vkey
			}, vidMissing},
			{"SEC-33 broken escape", func(e *corpusEnv) string { return "session_key=" + e.vkey[:10] + "%zz" }, vidMissing},
			{"SEC-36 key of 31 characters", func(e *corpusEnv) string { return "session_key=" + e.vkey[:31] }, vidNoSession},
			{"SEC-36 key of 129 characters", lit("session_key=" + strings.Repeat("k", 129)), vidNoSession},
			{"SEC-36 key with a hyphen", func(e *corpusEnv) string { return "session_key=" + e.vkey[:20] + "-" + e.vkey[21:] }, vidNoSession},
			{"SEC-36 key with NUL", func(e *corpusEnv) string { return "session_key=" + e.vkey[:20] + "%00" + e.vkey[21:] }, vidNoSession},
			{"SEC-36 non-ASCII key", lit("session_key=" + strings.Repeat("%C3%A9", 40)), vidNoSession},
			{"SEC-36 path traversal key", lit("session_key=..%2F..%2F..%2Fetc%2Fpasswd%2F" + strings.Repeat("a", 30)), vidNoSession},
			{"unknown well-formed key", lit("session_key=" + strings.Repeat("Zz9", 14) + "Q"), vidNoSession},
		} {
			form(path+" "+c.name, path, []string{formCT}, c.body, c.want)
			if strings.HasPrefix(c.name, "unknown") {
				cs[len(cs)-1].lookup = true
			}
		}
		cs = append(cs,
			badCase{name: path + " SEC-14 key only in the query", want: vidMissing,
				raw: func(e *corpusEnv) []byte {
					return rawRequest(e.host1, "POST", path+"?session_key="+e.vkey, []string{formCT}, []byte(""))
				}},
			badCase{name: path + " SEC-32 text/plain", want: vidMedia,
				raw: func(e *corpusEnv) []byte {
					return rawRequest(e.host1, "POST", path, []string{"Content-Type: text/plain"}, []byte("session_key="+e.vkey))
				}},
			badCase{name: path + " SEC-34 Content-Encoding gzip", want: vidMedia,
				raw: func(e *corpusEnv) []byte {
					return rawRequest(e.host1, "POST", path, []string{formCT, "Content-Encoding: gzip"}, []byte("session_key="+e.vkey))
				}},
			badCase{name: path + " SEC-34 over 64 KiB", want: vidTooLarge,
				raw: func(e *corpusEnv) []byte {
					return rawRequest(e.host1, "POST", path, []string{formCT}, []byte("session_key="+e.vkey+"&pad="+strings.Repeat("x", 64<<10)))
				}},
		)
	}

	// Proxied requests: the key in X-Session-Key or a session_key form
	// field, exactly once, of the right syntax (SEC-14, SEC-27, SEC-36).
	hdr := func(name string, lines func(e *corpusEnv) []string, want answerSpec) {
		cs = append(cs, badCase{name: name, want: want, raw: reqE("GET", "/reports", lines, nil)})
	}
	key := func(f func(e *corpusEnv) string) func(e *corpusEnv) []string {
		return func(e *corpusEnv) []string { return []string{"X-Session-Key: " + f(e)} }
	}
	hdr("proxied SEC-27 empty X-Session-Key", key(func(*corpusEnv) string { return "" }), malformedCred)
	hdr("proxied SEC-27 two X-Session-Key", func(e *corpusEnv) []string {
		return []string{"X-Session-Key: " + e.vkey, "X-Session-Key: " + e.vkey}
	}, badJSON)
	hdr("proxied SEC-27 X-Session-Key: key, key", key(func(e *corpusEnv) string { return e.vkey + ", " + e.vkey }), badJSON)
	// Caddy drops every header whose name has an underscore before any
	// handler runs (GHSA-f59h-q822-g45g), so this spelling carries nothing.
	hdr("proxied SEC-27 X_Session_Key spelled with underscores", func(e *corpusEnv) []string {
		return []string{"X_Session_Key: " + e.vkey}
	}, missingCreds)
	for _, c := range []struct {
		name string
		k    func(e *corpusEnv) string
	}{
		{"31 characters", func(e *corpusEnv) string { return e.vkey[:31] }},
		{"129 characters", func(*corpusEnv) string { return strings.Repeat("k", 129) }},
		{"10 KB", func(*corpusEnv) string { return strings.Repeat("k", 10<<10) }},
		{"a hyphen inside", func(e *corpusEnv) string { return e.vkey[:20] + "-" + e.vkey[21:] }},
		{"non-ASCII UTF-8", func(*corpusEnv) string { return strings.Repeat("é", 20) }},
		{"non-UTF-8 bytes", func(e *corpusEnv) string { return e.vkey[:20] + "\xff\xfe" + e.vkey[22:] }},
		{"path traversal", func(*corpusEnv) string { return "../../../../etc/passwd/" + strings.Repeat("a", 20) }},
		{"percent-encoded", func(e *corpusEnv) string { return "%41" + e.vkey[3:] }},
		{"tab inside", func(e *corpusEnv) string { return e.vkey[:20] + "\t" + e.vkey[21:] }},
		{"Bearer prefix", func(e *corpusEnv) string { return "Bearer " + e.vkey }},
	} {
		hdr("proxied SEC-36 key of "+c.name, key(c.k), malformedCred)
	}
	hdr("proxied unknown well-formed key", key(func(*corpusEnv) string { return strings.Repeat("Zz9", 14) + "Q" }), unknownSess)
	cs = append(cs,
		badCase{name: "proxied SEC-14 key only in the query", want: missingCreds,
			raw: func(e *corpusEnv) []byte { return rawRequest(e.host1, "GET", "/reports?session_key="+e.vkey, nil, nil) }},
		badCase{name: "proxied SEC-14 key in the header and the query", want: badJSON,
			raw: func(e *corpusEnv) []byte {
				return rawRequest(e.host1, "GET", "/reports?session_key="+e.vkey, []string{"X-Session-Key: " + e.vkey}, nil)
			}},
		badCase{name: "proxied SEC-14 form key and a query key", want: badJSON,
			raw: func(e *corpusEnv) []byte {
				return rawRequest(e.host1, "POST", "/orders?session_key="+e.vkey, []string{formCT}, []byte("session_key="+e.vkey))
			}},
	)
	pform := func(name string, site int, headers []string, body func(e *corpusEnv) string, want answerSpec) {
		cs = append(cs, badCase{name: "proxied form " + name, site: site, want: want, raw: func(e *corpusEnv) []byte {
			host := e.host1
			if site == 2 {
				host = e.host2
			}
			return rawRequest(host, "POST", "/orders", headers, []byte(body(e)))
		}})
	}
	cs = append(cs, badCase{name: "proxied form SEC-27 key in the header and the form", want: badJSON,
		raw: func(e *corpusEnv) []byte {
			return rawRequest(e.host1, "POST", "/orders", []string{formCT, "X-Session-Key: " + e.vkey}, []byte("session_key="+e.vkey))
		}})
	pform("SEC-33 session_key twice", 1, []string{formCT}, func(e *corpusEnv) string {
		return "a=1&session_key=" + e.vkey + "&session_key=" + e.vkey
	}, badJSON)
	pform("SEC-33 session_key twice, once percent-encoded", 1, []string{formCT}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey + "&session%5fkey=" + e.vkey
	}, badJSON)
	pform("without a session_key", 1, []string{formCT}, lit("a=1&b=2"), missingCreds)
	pform("SEC-36 empty session_key", 1, []string{formCT}, lit("a=1&session_key="), malformedCred)
	pform("SEC-33 broken escape in the key", 1, []string{formCT}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey[:30] + "%zz" + e.vkey[30:]
	}, malformedCred)
	pform("SEC-33 non-UTF-8 key", 1, []string{formCT}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey[:30] + "%ff" + e.vkey[30:]
	}, malformedCred)
	pform("SEC-36 key with a plus (a space)", 1, []string{formCT}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey[:30] + "+" + e.vkey[31:]
	}, malformedCred)
	pform("SEC-34 over max_body", 2, []string{formCT}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey + "&pad=" + strings.Repeat("x", 2048)
	}, tooLarge)
	pform("SEC-34 Content-Encoding gzip", 1, []string{formCT, "Content-Encoding: gzip"}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey
	}, badMedia)
	pform("SEC-27 two Content-Type", 1, []string{formCT, formCT}, func(e *corpusEnv) string {
		return "session_key=" + e.vkey
	}, badJSON)
	cs = append(cs, badCase{name: "proxied form SEC-34 chunked over max_body", site: 2, want: tooLarge,
		raw: func(e *corpusEnv) []byte {
			return rawRequest(e.host2, "POST", "/orders", []string{formCT, "Transfer-Encoding: chunked"},
				chunked([]byte("session_key="+e.vkey+"&pad="+strings.Repeat("x", 2048)), 256))
		}},
		badCase{name: "proxied form SEC-33 truncated body", halfClose: true, want: badJSON,
			raw: func(e *corpusEnv) []byte {
				return rawRequest(e.host1, "POST", "/orders", []string{formCT, "Content-Length: 400"}, []byte("session_key="+e.vkey))
			}},
	)
	return cs
}

// ---------------------------------------------------------------------------
// HTTP framing (SEC-37), header syntax and the identity headers

func framingBadInput() []badCase {
	var cs []badCase
	add := func(name string, raw func(e *corpusEnv) []byte, want answerSpec, then ...answerSpec) {
		cs = append(cs, badCase{name: name, raw: raw, want: want, then: then, keepAlive: len(then) > 0})
	}
	lines := func(method, target string, hdrs ...string) func(*corpusEnv) []byte {
		return req(method, target, hdrs, nil)
	}
	signedWith := func(extra ...string) func(e *corpusEnv) []byte {
		return func(e *corpusEnv) []byte {
			return rawRequest(e.host1, "GET", "/entities", withLines(e.signed("/entities"), extra...), nil)
		}
	}

	// CR, LF and NUL in header fields.
	add("SEC-37 bare CR in a header value", lines("GET", "/entities", "X-Note: a\rX-Auth-User-Id: 1"), parseRefusal)
	add("SEC-37 bare CR in a signed request's header value", signedWith("X-Note: a\rX-Auth-User-Id: 1"), parseRefusal)
	add("SEC-37 NUL in a header value", lines("GET", "/entities", "X-Note: a\x00b"), parseRefusal)
	add("SEC-37 NUL in X-Session-ID", func(e *corpusEnv) []byte {
		return rawRequest(e.host1, "GET", "/entities", []string{"X-Session-ID: " + e.id() + "\x00", "X-Signature: " + e.sig("/entities")}, nil)
	}, parseRefusal)
	add("SEC-37 bare LF ends a header line (the identity header is then stripped)",
		lines("GET", "/entities", "X-Note: a\nX-Auth-User-Id: 1"), missingCreds)
	add("SEC-37 obsolete line folding joins the lines (no header is added)",
		lines("GET", "/entities", "X-Note: a", " X-Auth-User-Id: 1"), missingCreds)
	add("SEC-37 space before the colon", lines("GET", "/entities", "X-Session-ID : 1"), parseRefusal)
	add("SEC-37 header name with a parenthesis", lines("GET", "/entities", "X-Sig(nature): 1"), parseRefusal)
	add("SEC-37 header line without a colon", lines("GET", "/entities", "X-Session-ID 1"), parseRefusal)
	add("SEC-37 DEL in a header value", lines("GET", "/entities", "X-Note: a\x7fb"), parseRefusal)

	// Request line and Host.
	add("SEC-37 two Host headers", lines("GET", "/entities", "Host: evil.test"), parseRefusal)
	add("SEC-37 no Host", func(*corpusEnv) []byte { return []byte("GET /entities HTTP/1.1\r\n\r\n") }, parseRefusal)
	add("SEC-37 control character in the path", lines("GET", "/enti\x01ties"), parseRefusal)
	add("SEC-37 space in the path", lines("GET", "/enti ties"), parseRefusal)
	add("SEC-37 relative request target", lines("GET", "entities"), parseRefusal)
	add("SEC-37 header section over 1 MiB", lines("GET", "/entities", "X-Signature: "+strings.Repeat("A", 1<<20+10)),
		plainAns(http.StatusRequestHeaderFieldsTooLarge))

	// Body framing.
	smuggled := func(e *corpusEnv) string {
		return "GET /smuggled HTTP/1.1\r\nHost: " + e.host1 + "\r\nX-Auth-User-Id: 1\r\nConnection: close\r\n\r\n"
	}
	add("SEC-37 Transfer-Encoding and Content-Length, a request hidden after the chunks", func(e *corpusEnv) []byte {
		chunks := "2\r\n{}\r\n0\r\n\r\n"
		inner := smuggled(e)
		return rawRequest(e.host1, "POST", "/entities", []string{"Content-Type: application/json",
			"Content-Length: " + strconv.Itoa(len(chunks)+len(inner)), "Transfer-Encoding: chunked"}, []byte(chunks+inner))
	}, missingCreds, missingCreds)
	add("SEC-37 Content-Length then Transfer-Encoding, bad signature", func(e *corpusEnv) []byte {
		chunks := "2\r\n{}\r\n0\r\n\r\n"
		return rawRequest(e.host1, "POST", "/entities", []string{"Content-Type: application/json",
			"X-Session-ID: " + e.id(), "X-Signature: " + e.sig("/other"), "Content-Length: 3",
			"Transfer-Encoding: chunked"}, []byte(chunks))
	}, badSig)
	add("SEC-37 two Transfer-Encoding headers", func(e *corpusEnv) []byte {
		return rawRequest(e.host1, "POST", "/entities", []string{"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"},
			[]byte("2\r\n{}\r\n0\r\n\r\n"))
	}, unsupportedTE)
	add("SEC-37 Transfer-Encoding gzip, chunked", func(e *corpusEnv) []byte {
		return rawRequest(e.host1, "POST", "/entities", []string{"Transfer-Encoding: gzip, chunked"}, []byte("2\r\n{}\r\n0\r\n\r\n"))
	}, unsupportedTE)
	add("SEC-37 Transfer-Encoding chunked, identity", func(e *corpusEnv) []byte {
		return rawRequest(e.host1, "POST", "/entities", []string{"Transfer-Encoding: chunked, identity"}, []byte("2\r\n{}\r\n0\r\n\r\n"))
	}, unsupportedTE)
	add("SEC-37 Transfer-Encoding xchunked", func(e *corpusEnv) []byte {
		return rawRequest(e.host1, "POST", "/entities", []string{"Transfer-Encoding: xchunked", "Content-Length: 2"}, []byte("{}"))
	}, unsupportedTE)
	for _, cl := range [][]string{{"Content-Length: 2", "Content-Length: 3"}, {"Content-Length: +2"}, {"Content-Length: -1"},
		{"Content-Length: 2, 3"}, {"Content-Length: 0x2"}, {"Content-Length: 2 2"}, {"Content-Length: 99999999999999999999"}} {
		add("SEC-37 "+strings.Join(cl, ", "), func(e *corpusEnv) []byte {
			return rawRequest(e.host1, "POST", "/entities", withLines(e.signed("/entities"), cl...), []byte("{}"))
		}, parseRefusal)
	}

	// The identity headers cannot be removed through Connection or
	// trailers (SEC-42).
	add("SEC-42 Connection names X-Auth-User-Id", signedWith("Connection: keep-alive, X-Auth-User-Id"), badJSON)
	add("SEC-42 Connection names x_auth_user_email", signedWith("Connection: x_auth_user_email"), badJSON)
	add("SEC-42 Trailer names X-Auth-User-Id", func(e *corpusEnv) []byte {
		return rawRequest(e.host1, "POST", "/entities", withLines(e.signed("/entities"), "Content-Type: application/json",
			"Transfer-Encoding: chunked", "Trailer: X-Auth-User-Id"), []byte("2\r\n{}\r\n0\r\nX-Auth-User-Id: 1\r\n\r\n"))
	}, badJSON)
	add("SEC-40 identity headers without credentials", lines("GET", "/entities", "X-Auth-User-Id: 42",
		"X-Auth-User-Email: alice@example.test", "X_Auth_Username: alice"), missingCreds)
	return cs
}

// ---------------------------------------------------------------------------
// The test

const corpusSite2 = `
http://127.0.0.1:{{.Port2}} {
	bind 127.0.0.1
	sessiongate {
		amatino {
			max_body 1KiB
		}
		videntity {
			max_body 1KiB
		}
	}
	reverse_proxy {{.Upstream}}
}
`

// TestBadInputCorpusSize: the corpus holds at least 150 cases (README
// states the count).
func TestBadInputCorpusSize(t *testing.T) {
	t.Parallel()
	all := badInputCorpus()
	names := map[string]bool{}
	for _, c := range all {
		if names[c.name] {
			t.Errorf("case name %q twice", c.name)
		}
		names[c.name] = true
	}
	for _, set := range badInputSets {
		t.Logf("%s: %d cases", set.name, len(set.cases()))
	}
	t.Logf("bad-input corpus: %d cases", len(all))
	if len(all) < 150 {
		t.Errorf("bad-input corpus has %d cases, want ≥ 150", len(all))
	}
}

// TestBadInputCorpus (SEC-22, SEC-27, SEC-32…SEC-37): every case gets its
// exact status and error code, never carries a secret, never reaches the
// upstream and never creates or ends a session (metrics after each case);
// one refused on syntax makes no session lookup (SEC-36); at the end the
// bolt file holds exactly what it held before, field for field.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	dana := newVidUser(t, "dana", 78)
	g := newGateway(t, up, gwOpts{Videntity: true, Global: dana.block(), Limits: limitsOff, ExtraSites: corpusSite2})
	c := newClient(t, g.URL(""))
	e := &corpusEnv{host1: g.Addr(), host2: fmt.Sprintf("127.0.0.1:%d", g.port2),
		s: c.login(t, alice), sb: c.login(t, bob), v: dana}
	e.vkey = vidLogin(t, g, dana)
	secrets := []string{alice.Secret, bob.Secret, dana.Secret, e.s.APIKey, e.sb.APIKey, e.vkey}

	dbPath := g.dir + "/sessions.db"
	users := []int64{alice.ID, bob.ID, dana.ID}
	g.Stop()
	before := readStore(t, dbPath, users...)
	if len(before.Sessions) != 3 {
		t.Fatalf("store holds %d sessions of the test users before the corpus, want 3", len(before.Sessions))
	}
	g.Start()

	var series []string
	for _, d := range []string{"amatino", "videntity"} {
		series = append(series,
			`caddy_sessiongate_sessions_created_total{dialect="`+d+`"}`,
			`caddy_sessiongate_sessions_ended_total{dialect="`+d+`",reason="logout"}`,
			`caddy_sessiongate_sessions_ended_total{dialect="`+d+`",reason="revoked"}`,
			`caddy_sessiongate_logins_total{dialect="`+d+`",result="ok"}`)
	}
	w := newCorpusWatch(t, g, up, series, secrets)

	all := badInputCorpus()
	for _, bc := range all {
		t.Run(bc.name, func(t *testing.T) {
			host := e.host1
			if bc.site == 2 {
				host = e.host2
			}
			raw := bc.raw(e)
			if !bc.keepAlive {
				raw = withConnectionClose(raw)
			}
			answers, err := rawExchange(host, raw, bc.halfClose)
			if err != nil {
				t.Fatalf("exchange: %v (answers so far %d)", err, len(answers))
			}
			w.after(t, answers, append([]answerSpec{bc.want}, bc.then...), bc.looksUp())
		})
	}
	t.Logf("%d bad inputs sent", len(all))
	if n := up.Hits(); n != 0 {
		t.Errorf("the upstream was called %d times by bad inputs, want 0", n)
	}

	g.Stop()
	after := readStore(t, dbPath, users...)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the store changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// withConnectionClose adds `Connection: close` after the request line.
func withConnectionClose(raw []byte) []byte {
	i := bytes.Index(raw, []byte("\r\n"))
	if i < 0 {
		panic("test bug: request without a line end")
	}
	return slices.Concat(raw[:i+2], []byte("Connection: close\r\n"), raw[i+2:])
}

// corpusWatch follows, from one bad input to the next, what a refused
// request must not change: the upstream's hit count, the named metric series
// ("name{labels}") and the key cache's lookups (every session lookup counts
// one), and that no answer carries one of the secrets.
type corpusWatch struct {
	g       *gateway
	up      *upstream
	series  []string
	secrets []string
	hits    int
	last    map[string]float64
	lookups float64
}

func newCorpusWatch(t *testing.T, g *gateway, up *upstream, series, secrets []string) *corpusWatch {
	t.Helper()
	w := &corpusWatch{g: g, up: up, series: series, secrets: secrets, hits: up.Hits()}
	w.last, w.lookups = w.read(t)
	return w
}

func (w *corpusWatch) read(t *testing.T) (map[string]float64, float64) {
	t.Helper()
	m := w.g.Metrics(t)
	var lookups float64
	for _, r := range []string{"hit", "miss"} {
		v, ok := metricValue(m, "caddy_sessiongate_key_cache_requests_total", `result="`+r+`"`)
		if !ok {
			t.Fatalf("metric caddy_sessiongate_key_cache_requests_total{result=%q} missing", r)
		}
		lookups += v
	}
	out := map[string]float64{}
	for _, s := range w.series {
		name, labels, _ := strings.Cut(strings.TrimSuffix(s, "}"), "{")
		v, ok := metricValue(m, name, labels)
		if !ok {
			t.Fatalf("metric %s missing", s)
		}
		out[s] = v
	}
	return out, lookups
}

// after checks one case: its answers against want, then that nothing moved.
// looksUp says whether the case gets far enough to cost a session lookup
// (SEC-36: one refused on syntax must not).
func (w *corpusWatch) after(t *testing.T, answers []rawAnswer, want []answerSpec, looksUp bool) {
	t.Helper()
	if len(answers) != len(want) {
		var got []string
		for _, a := range answers {
			got = append(got, fmt.Sprintf("%d %s", a.Status, tail(string(a.Body), 120)))
		}
		t.Fatalf("%d answers %q, want %d", len(answers), got, len(want))
	}
	for i, a := range answers {
		checkAnswer(t, fmt.Sprintf("answer %d", i+1), a, want[i])
		for _, s := range w.secrets {
			if bytes.Contains(a.Body, []byte(s)) || strings.Contains(fmt.Sprint(a.Header), s) {
				t.Errorf("answer %d carries a secret", i+1)
			}
		}
	}
	if n := w.up.Hits(); n != w.hits {
		t.Errorf("upstream called: %s %s", w.up.Last(t).Method, w.up.Last(t).RequestURI)
		w.hits = n
	}
	now, lookups := w.read(t)
	if !reflect.DeepEqual(now, w.last) {
		t.Errorf("counters changed: %v → %v", w.last, now)
	}
	if !looksUp && lookups != w.lookups {
		t.Errorf("SEC-36: %v session lookups for a request refused before any lookup, want 0", lookups-w.lookups)
	}
	w.last, w.lookups = now, lookups
}

// checkAnswer asserts one answer's status and code in its form.
func checkAnswer(t *testing.T, what string, a rawAnswer, want answerSpec) {
	t.Helper()
	switch want.form {
	case formJSON:
		expectRefusal(t, what, &http.Response{StatusCode: a.Status, Header: a.Header}, a.Body, want.status, want.code)
	case formXML:
		var x videntityAnswer
		if a.Status != want.status {
			t.Errorf("%s: status %d, want %d (body %s)", what, a.Status, want.status, tail(string(a.Body), 300))
			return
		}
		if err := xml.Unmarshal(a.Body, &x); err != nil {
			t.Errorf("%s: not the XML of WIRE.md: %v: %s", what, err, tail(string(a.Body), 300))
			return
		}
		if x.Status != "ERROR" || x.ErrorName != want.code || x.ErrorNumber != videntityErrorNumbers[want.code] {
			t.Errorf("%s: %s %d %s, want ERROR %d %s", what, x.Status, x.ErrorNumber, x.ErrorName,
				videntityErrorNumbers[want.code], want.code)
		}
	case formPlain:
		if a.Status != want.status || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/plain") ||
			!strings.HasPrefix(string(a.Body), want.code) {
			t.Errorf("%s: %d %s %q, want the HTTP server's own %d %q", what, a.Status, a.Header.Get("Content-Type"),
				tail(string(a.Body), 200), want.status, want.code)
		}
	}
}

// TestBadInputSEC37SmugglingSigned (SEC-37): a validly signed request framed
// with both Transfer-Encoding and Content-Length, the Content-Length
// covering an unsigned request hidden after the last chunk. The gateway
// reads the chunks (Transfer-Encoding wins) and forwards exactly one
// request, re-framed, with the chunked body; the hidden request is a request
// of its own, refused for want of credentials, and never reaches the
// upstream.
func TestBadInputSEC37SmugglingSigned(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{})
	c := newClient(t, g.URL(""))
	e := &corpusEnv{host1: g.Addr(), s: c.login(t, alice)}

	chunks := "2\r\n{}\r\n0\r\n\r\n"
	hidden := "DELETE /smuggled HTTP/1.1\r\nHost: " + e.host1 + "\r\nX-Auth-User-Id: 1\r\nConnection: close\r\n\r\n"
	raw := rawRequest(e.host1, "POST", "/entities", withLines(e.signed("/entities"), "Content-Type: application/json",
		"Content-Length: "+strconv.Itoa(len(chunks)+len(hidden)), "Transfer-Encoding: chunked"), []byte(chunks+hidden))
	answers, err := rawExchange(e.host1, raw, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 2 {
		t.Fatalf("%d answers, want 2 (the signed request, then the hidden one)", len(answers))
	}
	if answers[0].Status != http.StatusOK {
		t.Fatalf("signed request: %d %s", answers[0].Status, answers[0].Body)
	}
	checkAnswer(t, "hidden request", answers[1], missingCreds)
	if n := up.Hits(); n != 1 {
		t.Fatalf("upstream received %d requests, want exactly 1", n)
	}
	rec := up.Last(t)
	if rec.Method != http.MethodPost || rec.RequestURI != "/entities" || string(rec.Body) != "{}" {
		t.Errorf("upstream received %s %s with body %q, want POST /entities with {}", rec.Method, rec.RequestURI, rec.Body)
	}
	if te, cl := rec.Header.Get("Transfer-Encoding"), rec.Header.Get("Content-Length"); te != "" && cl != "" {
		t.Errorf("upstream request framed with both Transfer-Encoding %q and Content-Length %q", te, cl)
	}
	checkForwarded(t, rec, alice)
}
