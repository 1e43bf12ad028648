package e2e

// The native scheme's bad-input corpus (SEC-20, SEC-22, SEC-25, SEC-27,
// SEC-34, SEC-35, SEC-36): malformed and wrongly signed RFC 9421 requests,
// each with the exact answer it must get; none may reach the upstream or
// change the store. The signer here is written from WIRE.md's native
// section alone, not from the product's code.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Native answers.
var (
	nMalformed   = jsonAns(http.StatusBadRequest, "malformed_signature")
	nUnsupported = jsonAns(http.StatusBadRequest, "unsupported_algorithm")
	nCoverage    = jsonAns(http.StatusUnauthorized, "insufficient_coverage")
	nSkew        = jsonAns(http.StatusUnauthorized, "clock_skew")
	nExpired     = jsonAns(http.StatusUnauthorized, "expired")
	nUnknownKey  = jsonAns(http.StatusUnauthorized, "unknown_key")
	nBadSig      = jsonAns(http.StatusUnauthorized, "bad_signature")
)

// nativeReq describes one signed request and how to spoil it.
type nativeReq struct {
	method, target string
	body           []byte
	contentType    string
	// headers are further header lines, sent and available for coverage.
	headers []string
	// comps are the covered components; nil: the default policy's.
	comps []string
	// params is the parameter string after the inner list; {now} (also
	// {now-301}), {sid} and {nonce} are filled in. "": created, keyid and
	// nonce.
	params string
	// key signs instead of the session's api key.
	key string
	// digest is the Content-Digest sent instead of the body's sha-256;
	// "-" sends none.
	digest string
	// spoil changes the header lines after signing (Signature-Input and
	// Signature are the last two).
	spoil func(lines []string) []string
	// sendMethod, sendTarget and sendBody are sent instead of what was
	// signed.
	sendMethod string
	sendTarget string
	sendBody   []byte
	site       int
}

// wireHMAC is std base64 of HMAC-SHA256(key, base).
func wireHMAC(key, base string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// raw renders q signed per WIRE.md: one `"name": value` line per
// component, then `"@signature-params": <list><params>`, LF-joined.
func (q nativeReq) raw(e *corpusEnv) []byte {
	host := e.host1
	if q.site == 2 {
		host = e.host2
	}
	lines := append([]string(nil), q.headers...)
	if q.contentType != "" {
		lines = append(lines, "Content-Type: "+q.contentType)
	}
	if q.body != nil && q.digest != "-" {
		d := q.digest
		if d == "" {
			sum := sha256.Sum256(q.body)
			d = "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
		}
		lines = append(lines, "Content-Digest: "+d)
	}
	comps := q.comps
	if comps == nil {
		comps = []string{"@method", "@authority", "@path", "@query"}
		if q.body != nil {
			comps = append(comps, "content-digest", "content-type")
		}
	}
	path, query, _ := strings.Cut(q.target, "?")
	value := func(c string) string {
		switch c {
		case "@method":
			return q.method
		case "@authority":
			return strings.ToLower(host)
		case "@path":
			return path
		case "@query":
			return "?" + query
		}
		for _, l := range lines {
			if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, c) {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	params := q.params
	if params == "" {
		params = `;created={now};keyid="{sid}";nonce="{nonce}"`
	}
	now := time.Now().Unix()
	params = strings.NewReplacer("{now-301}", strconv.FormatInt(now-301, 10), "{now}", strconv.FormatInt(now, 10),
		"{sid}", e.id(), "{nonce}", randHex(16)).Replace(params)
	quoted := make([]string, len(comps))
	var base strings.Builder
	for i, c := range comps {
		quoted[i] = strconv.Quote(c)
		fmt.Fprintf(&base, "%q: %s\n", c, value(c))
	}
	sigParams := "(" + strings.Join(quoted, " ") + ")" + params
	base.WriteString(`"@signature-params": ` + sigParams)
	key := q.key
	if key == "" {
		key = e.s.APIKey
	}
	lines = append(lines, "Signature-Input: sig1="+sigParams, "Signature: sig1=:"+wireHMAC(key, base.String())+":")
	if q.spoil != nil {
		lines = q.spoil(lines)
	}
	method, target, body := q.method, q.target, q.body
	if q.sendMethod != "" {
		method = q.sendMethod
	}
	if q.sendTarget != "" {
		target = q.sendTarget
	}
	if q.sendBody != nil {
		body = q.sendBody
	}
	return rawRequest(host, method, target, lines, body)
}

// setInput and setSig replace the signature lines' values.
func setInput(v string) func([]string) []string {
	return func(l []string) []string { l[len(l)-2] = "Signature-Input: " + v; return l }
}

func setSig(v string) func([]string) []string {
	return func(l []string) []string { l[len(l)-1] = "Signature: " + v; return l }
}

// drop removes the header line starting with prefix.
func drop(prefix string) func([]string) []string {
	return func(l []string) []string {
		out := l[:0]
		for _, x := range l {
			if !strings.HasPrefix(x, prefix) {
				out = append(out, x)
			}
		}
		return out
	}
}

func nativeBadInput() []badCase {
	var cs []badCase
	add := func(name string, q nativeReq, want answerSpec, lookup bool) {
		if q.method == "" {
			q.method = "GET"
		}
		if q.target == "" {
			q.target = "/entities?x=1"
		}
		cs = append(cs, badCase{name: name, site: q.site, raw: q.raw, want: want, lookup: lookup})
	}
	post := func(q nativeReq) nativeReq {
		q.method, q.body, q.contentType = "POST", []byte(`{"name":"Acme"}`), "application/json"
		return q
	}

	// Syntax: refused before any lookup (SEC-36).
	add("signature-input without signature", nativeReq{spoil: drop("Signature: ")}, nMalformed, false)
	add("signature without signature-input", nativeReq{spoil: drop("Signature-Input: ")}, nMalformed, false)
	add("signature-input garbage", nativeReq{spoil: setInput("sig1=(((")}, nMalformed, false)
	add("signature-input not a dictionary", nativeReq{spoil: setInput(`("@method")`)}, nMalformed, false)
	add("signature-input member is a token", nativeReq{spoil: setInput("sig1=abc")}, nMalformed, false)
	add("signature-input empty", nativeReq{spoil: setInput("")}, nMalformed, false)
	add("signature not a byte sequence", nativeReq{spoil: setSig(`sig1="abc"`)}, nMalformed, false)
	add("signature not base64", nativeReq{spoil: setSig("sig1=:not base64!:")}, nMalformed, false)
	add("SEC-35 signature base64url", nativeReq{spoil: setSig("sig1=:" +
		base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)) + ":")}, nMalformed, false)
	add("SEC-35 signature non-canonical tail", nativeReq{spoil: setSig("sig1=:AB==:")}, nMalformed, false)
	add("SEC-35 signature with a line break", nativeReq{spoil: setSig("sig1=:AAAA\tAAAA:")}, nMalformed, false)
	add("label mismatch", nativeReq{spoil: func(l []string) []string {
		l[len(l)-1] = strings.Replace(l[len(l)-1], "sig1=", "sig2=", 1)
		return l
	}}, nMalformed, false)
	add("SEC-27 two signatures", nativeReq{spoil: func(l []string) []string {
		in, sig := l[len(l)-2], l[len(l)-1]
		return append(l, strings.Replace(in, "sig1=", "sig2=", 1), strings.Replace(sig, "sig1=", "sig2=", 1))
	}}, nMalformed, false)
	add("SEC-27 two signatures on one line", nativeReq{spoil: func(l []string) []string {
		in, sig := l[len(l)-2], l[len(l)-1]
		l[len(l)-2] = in + ", " + strings.Replace(strings.TrimPrefix(in, "Signature-Input: "), "sig1=", "sig2=", 1)
		l[len(l)-1] = sig + ", " + strings.Replace(strings.TrimPrefix(sig, "Signature: "), "sig1=", "sig2=", 1)
		return l
	}}, nMalformed, false)
	add("component twice", nativeReq{comps: []string{"@method", "@authority", "@path", "@query", "@path"}}, nMalformed, false)
	add("unknown derived component", nativeReq{comps: []string{"@method", "@authority", "@path", "@query", "@body"}}, nMalformed, false)
	add("@signature-params covered", nativeReq{comps: []string{"@method", "@authority", "@path", "@query", "@signature-params"}}, nMalformed, false)
	add("@status covered", nativeReq{comps: []string{"@method", "@authority", "@path", "@query", "@status"}}, nMalformed, false)
	add("component parameter", nativeReq{spoil: func(l []string) []string {
		l[len(l)-2] = strings.Replace(l[len(l)-2], `"@query"`, `"@query";req`, 1)
		return l
	}}, nMalformed, false)
	add("upper-case field component", nativeReq{headers: []string{"X-Extra: 1"},
		comps: []string{"@method", "@authority", "@path", "@query", "X-Extra"}}, nMalformed, false)
	add("component not a string", nativeReq{spoil: func(l []string) []string {
		l[len(l)-2] = strings.Replace(l[len(l)-2], `"@query"`, `query`, 1)
		return l
	}}, nMalformed, false)
	add("33 components", nativeReq{headers: func() []string {
		var h []string
		for i := 0; i < 29; i++ {
			h = append(h, fmt.Sprintf("X-H%d: %d", i, i))
		}
		return h
	}(), comps: func() []string {
		c := []string{"@method", "@authority", "@path", "@query"}
		for i := 0; i < 29; i++ {
			c = append(c, fmt.Sprintf("x-h%d", i))
		}
		return c
	}()}, nMalformed, false)
	add("covered header absent", nativeReq{headers: []string{"X-Extra: 1"},
		comps: []string{"@method", "@authority", "@path", "@query", "x-extra"}, spoil: drop("X-Extra:")}, nMalformed, false)
	add("created a string", nativeReq{params: `;created="{now}";keyid="{sid}";nonce="{nonce}"`}, nMalformed, false)
	add("created a decimal", nativeReq{params: `;created={now}.5;keyid="{sid}";nonce="{nonce}"`}, nMalformed, false)
	add("created negative", nativeReq{params: `;created=-1;keyid="{sid}";nonce="{nonce}"`}, nMalformed, false)
	add("created 16 digits", nativeReq{params: `;created=1000000000000000;keyid="{sid}";nonce="{nonce}"`}, nMalformed, false)
	add("keyid a token", nativeReq{params: `;created={now};keyid=abc;nonce="{nonce}"`}, nMalformed, false)
	add("keyid an integer", nativeReq{params: `;created={now};keyid={sid};nonce="{nonce}"`}, nMalformed, false)
	add("keyid empty", nativeReq{params: `;created={now};keyid="";nonce="{nonce}"`}, nMalformed, false)
	add("nonce of 257 characters", nativeReq{params: `;created={now};keyid="{sid}";nonce="` + strings.Repeat("n", 257) + `"`}, nMalformed, false)
	add("expires before created", nativeReq{params: `;created={now};expires=1;keyid="{sid}";nonce="{nonce}"`}, nMalformed, false)
	add("tag an integer", nativeReq{params: `;created={now};keyid="{sid}";nonce="{nonce}";tag=1`}, nMalformed, false)
	add("signature-input over 8KiB", nativeReq{params: `;created={now};keyid="{sid}";nonce="{nonce}";x="` + strings.Repeat("p", 8<<10) + `"`}, nMalformed, false)

	// Policy: coverage, algorithm and time, before any lookup.
	add("SEC-25 @query not covered", nativeReq{target: "/entities?role=admin", comps: []string{"@method", "@authority", "@path"}}, nCoverage, false)
	add("SEC-25 @method not covered", nativeReq{comps: []string{"@authority", "@path", "@query"}}, nCoverage, false)
	add("@authority not covered", nativeReq{comps: []string{"@method", "@path", "@query"}}, nCoverage, false)
	add("nothing covered", nativeReq{comps: []string{}}, nCoverage, false)
	add("no nonce", nativeReq{params: `;created={now};keyid="{sid}"`}, nCoverage, false)
	add("no created", nativeReq{params: `;keyid="{sid}";nonce="{nonce}"`}, nCoverage, false)
	add("no keyid", nativeReq{params: `;created={now};nonce="{nonce}"`}, nCoverage, false)
	add("body without content-digest covered", post(nativeReq{comps: []string{"@method", "@authority", "@path", "@query", "content-type"}}), nCoverage, false)
	add("body without content-type covered", post(nativeReq{comps: []string{"@method", "@authority", "@path", "@query", "content-digest"}}), nCoverage, false)
	add("unknown alg", nativeReq{params: `;created={now};keyid="{sid}";alg="rsa-v1_5-sha256";nonce="{nonce}"`}, nUnsupported, false)
	add("alg an integer", nativeReq{params: `;created={now};keyid="{sid}";alg=1;nonce="{nonce}"`}, nMalformed, false)
	add("SEC-22 created now-301", nativeReq{params: `;created={now-301};keyid="{sid}";nonce="{nonce}"`}, nSkew, false)
	add("created zero", nativeReq{params: `;created=0;keyid="{sid}";nonce="{nonce}"`}, nSkew, false)
	add("created far future", nativeReq{params: `;created=99999999999999;keyid="{sid}";nonce="{nonce}"`}, nSkew, false)
	add("created and expires long past", nativeReq{params: `;created=1;expires=2;keyid="{sid}";nonce="{nonce}"`}, nSkew, false)
	add("expires now", nativeReq{params: `;created={now};expires={now};keyid="{sid}";nonce="{nonce}"`}, nExpired, false)

	// Keys: syntax checked before lookup (SEC-36).
	for _, id := range []string{"0", "-1", "+1", "01", "1e3", "0x1", "../1", "1 ", " 1", "99999999999999999999",
		strings.Repeat("1", 256), "ed25519-", "ed25519-!!!!!!!!!!!!!!!!", "ed25519-AAAAAAAAAAAAAAA=", "ED25519-AAAAAAAAAAAAAAAA"} {
		add("keyid "+strconv.Quote(id), nativeReq{params: `;created={now};keyid="` + id + `";nonce="{nonce}"`}, nUnknownKey, false)
	}
	add("keyid unknown session", nativeReq{params: `;created={now};keyid="987654321987";nonce="{nonce}"`}, nUnknownKey, true)
	add("keyid unregistered key", nativeReq{params: `;created={now};keyid="ed25519-AAAAAAAAAAAAAAAA";nonce="{nonce}"`}, nUnknownKey, false)
	add("alg not the key's", nativeReq{params: `;created={now};keyid="{sid}";alg="ed25519";nonce="{nonce}"`}, nUnsupported, true)

	// Signatures that do not match (SEC-20, SEC-25, SEC-26, SEC-28).
	add("wrong key", nativeReq{key: "not-the-api-key"}, nBadSig, true)
	add("signature 31 bytes", nativeReq{spoil: setSig("sig1=:" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + ":")}, nBadSig, true)
	add("signature all zero", nativeReq{spoil: setSig("sig1=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":")}, nBadSig, true)
	add("SEC-25 query changed", nativeReq{sendTarget: "/entities?x=2"}, nBadSig, true)
	add("SEC-25 query added", nativeReq{target: "/entities", sendTarget: "/entities?role=admin"}, nBadSig, true)
	add("SEC-28 encoded path decoded", nativeReq{target: "/a%2Fb?x=1", sendTarget: "/a/b?x=1"}, nBadSig, true)
	add("SEC-28 dot segment", nativeReq{target: "/a/b?x=1", sendTarget: "/a/./b?x=1"}, nBadSig, true)
	add("SEC-28 case of path", nativeReq{target: "/a/b?x=1", sendTarget: "/A/b?x=1"}, nBadSig, true)
	add("SEC-25 method changed", nativeReq{sendMethod: "DELETE"}, nBadSig, true)
	add("SEC-26 byte moved from body to path", post(nativeReq{target: "/a", sendTarget: "/ab", sendBody: []byte(`{"name":"Acm"}`)}), nBadSig, true)
	add("body changed", post(nativeReq{sendBody: []byte(`{"name":"Evil"}`)}), nBadSig, true)
	add("body digest of other bytes", post(nativeReq{digest: "sha-256=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":"}), nBadSig, true)
	add("body sha-512 mismatch", post(nativeReq{digest: func() string {
		s := sha512.Sum512([]byte("other"))
		return "sha-512=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
	}()}), nBadSig, true)
	add("body digest md5 only", post(nativeReq{digest: "md5=:" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + ":"}), nUnsupported, true)
	add("body digest sha-256 of 31 bytes", post(nativeReq{digest: "sha-256=:" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + ":"}), nMalformed, true)
	add("body digest not a byte sequence", post(nativeReq{digest: `sha-256="abc"`}), nMalformed, true)
	add("body digest header removed", post(nativeReq{spoil: drop("Content-Digest:")}), nMalformed, false)
	add("SEC-34 body over max_body", nativeReq{site: 2, method: "POST", body: []byte(strings.Repeat("x", 1025)),
		contentType: "text/plain"}, tooLarge, true)
	add("two schemes: native and amatino", nativeReq{headers: []string{"X-Session-ID: 1", "X-Signature: AAAA"}},
		badJSON, false)
	return cs
}

// nativeCorpusSite2 has max_body 1KiB.
const nativeCorpusSite2 = `
http://127.0.0.1:{{.Port2}} {
	bind 127.0.0.1
	sessiongate {
		amatino
		native {
			max_body 1KiB
		}
	}
	reverse_proxy {{.Upstream}}
}
`

// TestBadInputNative (SEC-20, SEC-22, SEC-25…SEC-28, SEC-34…SEC-36): every
// native case gets its exact status and error code, never carries a secret,
// never reaches the upstream and never creates or ends a session; one
// refused on syntax, coverage or time makes no session lookup (SEC-36); at
// the end the bolt file holds exactly what it held before.
func TestBadInputNative(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Native: nativeDefaults, ExtraSites: nativeCorpusSite2})
	c := newClient(t, g.URL(""))
	e := &corpusEnv{host1: g.Addr(), host2: fmt.Sprintf("127.0.0.1:%d", g.port2), s: c.login(t, alice)}
	secrets := []string{alice.Secret, e.s.APIKey}

	// A well-signed request passes, so the refusals below are the cases'.
	ok := nativeReq{method: "GET", target: "/entities?x=1"}
	if answers, err := rawExchange(e.host1, withConnectionClose(ok.raw(e)), false); err != nil ||
		len(answers) != 1 || answers[0].Status != http.StatusOK {
		t.Fatalf("well-signed request: %v %+v", err, answers)
	}

	dbPath := g.dir + "/sessions.db"
	g.Stop()
	before := readStore(t, dbPath, alice.ID)
	g.Start()

	w := newCorpusWatch(t, g, up, []string{
		`caddy_sessiongate_sessions_created_total{dialect="amatino"}`,
		`caddy_sessiongate_sessions_ended_total{dialect="amatino",reason="logout"}`,
		`caddy_sessiongate_requests_total{dialect="native",result="ok"}`,
	}, secrets)

	all := nativeBadInput()
	for _, bc := range all {
		t.Run(bc.name, func(t *testing.T) {
			host := e.host1
			if bc.site == 2 {
				host = e.host2
			}
			answers, err := rawExchange(host, withConnectionClose(bc.raw(e)), false)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			w.after(t, answers, []answerSpec{bc.want}, bc.looksUp())
		})
	}
	t.Logf("%d native bad inputs sent", len(all))

	g.Stop()
	if after := readStore(t, dbPath, alice.ID); !reflect.DeepEqual(before, after) {
		t.Errorf("the store changed:\nbefore %+v\nafter  %+v", before, after)
	}
}
