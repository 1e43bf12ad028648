package plugin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// maxSignBody bounds the body the sign command reads: the gateway's default
// limit for bodies that take part in a signature.
const maxSignBody = 10 << 20

// The signature schemes of the sign command.
const (
	schemeAmatino = "amatino"
	schemeRFC9421 = "rfc9421"
)

// signInput is a request to sign, as the flags describe it.
type signInput struct {
	sid         string
	method      string
	target      string // path with an optional query, as on the request line
	base        string // --url as given
	host        string // --host as given
	contentType string
	body        []byte
	hasBody     bool   // --body or --body-file was given, even empty
	bodyFile    string // --body-file, sent by curl as @file
	ts          int64
	key         []byte
}

func signCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "sign --session-id <n> [--scheme amatino|rfc9421] [--method <m>] [--path <path>] [--body <text> | --body-file <file>] [--content-type <type>] [--sign-body] [--key-file <file>] [--time <unix>] [--url <base>] [--host <authority>]",
		Short: "Prints the headers of a signed request (amatino or RFC 9421)",
		Long: `
Prints the headers of a request signed with a session's api_key, and a curl
command line that sends it, for testing and debugging by hand.

--scheme amatino (the default) prints X-Session-ID and X-Signature: an
HMAC-SHA512, keyed with the api_key of the login answer, over the decimal
unix time followed by the path without the query string (WIRE.md). The
method, query and body are not signed, as current clients do; --sign-body
signs the raw body too, as older clients did. The gateway accepts the
signature within its clock window (default 30 seconds either way) of --time.

--scheme rfc9421 prints Signature-Input and Signature for the gateway's
native scheme (RFC 9421 HTTP Message Signatures, enabled by 'native' in the
sessiongate handler), signed as the Go client does: hmac-sha256 keyed with
the api_key, keyid the session id, a fresh nonce, created = --time, over the
default policy's components: @method, @authority, @path and @query, plus
content-digest and content-type when there is a body, whose Content-Digest
(sha-256) and Content-Type are printed too. The authority is the host of
--url (which must then be an origin such as http://127.0.0.1:8080), or
--host when the gateway is reached under another name. The gateway accepts
the signature from 5 seconds before --time to 5 minutes after it (its
future_window and past_window), and only once: print a new one for every
request.

--time defaults to now. The api_key is a secret: it is read from --key-file,
or from standard input (without echo from a terminal), never from a flag.
`,
		Args: cobra.NoArgs,
		RunE: runSign,
	}
	fl := c.Flags()
	fl.String("session-id", "", "The session_id of the login answer")
	fl.String("scheme", schemeAmatino, "Signature scheme: amatino or rfc9421")
	fl.String("method", "GET", "HTTP method of the request (signed by rfc9421 only)")
	fl.String("path", "/", "Request path, with an optional query string (the query is signed by rfc9421 only)")
	fl.String("body", "", "Request body")
	fl.String("body-file", "", "File holding the request body")
	fl.String("content-type", "application/json", "Content-Type of a request with a body (signed by rfc9421 only)")
	fl.Bool("sign-body", false, "amatino: sign the raw body too (older clients)")
	fl.String("key-file", "", "File holding the api_key (default: standard input)")
	fl.Int64("time", 0, "Unix time to sign for (default: now)")
	fl.String("url", "http://localhost", "Base URL of the gateway, for the curl line; with rfc9421 its host is signed")
	fl.String("host", "", "rfc9421: the Host to sign and send (default: the host of --url)")
	return c
}

func runSign(c *cobra.Command, _ []string) error {
	fl := c.Flags()
	scheme, _ := fl.GetString("scheme")
	bodyText, _ := fl.GetString("body")
	signBody, _ := fl.GetBool("sign-body")
	keyFile, _ := fl.GetString("key-file")
	in := signInput{}
	in.sid, _ = fl.GetString("session-id")
	in.method, _ = fl.GetString("method")
	in.target, _ = fl.GetString("path")
	in.bodyFile, _ = fl.GetString("body-file")
	in.contentType, _ = fl.GetString("content-type")
	in.ts, _ = fl.GetInt64("time")
	in.base, _ = fl.GetString("url")
	in.host, _ = fl.GetString("host")

	if scheme != schemeAmatino && scheme != schemeRFC9421 {
		return fmt.Errorf("--scheme: must be %s or %s, not %q", schemeAmatino, schemeRFC9421, scheme)
	}
	if _, ok := caddyauth.ParsePositiveDecimal(in.sid); !ok {
		return errors.New("--session-id: must be the session_id of the login answer (a positive integer)")
	}
	if in.method == "" || strings.Trim(in.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return errors.New("--method: must be an upper-case HTTP method such as GET or POST")
	}
	if !strings.HasPrefix(in.target, "/") || strings.ContainsAny(in.target, " \t\r\n#") {
		return errors.New("--path: must start with / and hold no spaces or fragment (a query is allowed)")
	}
	if fl.Changed("body") && in.bodyFile != "" {
		return errors.New("--body and --body-file exclude each other")
	}
	if !validFieldValue(in.contentType) {
		return errors.New("--content-type: must be a media type such as application/json, without control characters")
	}
	switch scheme {
	case schemeAmatino:
		if fl.Changed("host") {
			return errors.New("--host: only with --scheme rfc9421 (amatino does not sign the host)")
		}
	case schemeRFC9421:
		if signBody {
			return errors.New("--sign-body: only with --scheme amatino (rfc9421 always covers the body, through Content-Digest)")
		}
		if err := checkRFC9421Target(&in); err != nil {
			return err
		}
	}
	in.hasBody = fl.Changed("body") || in.bodyFile != ""
	switch {
	case in.bodyFile != "":
		b, err := readFileMax(in.bodyFile, maxSignBody)
		if err != nil {
			return fmt.Errorf("--body-file: %w", err)
		}
		in.body = b
	case fl.Changed("body"):
		in.body = []byte(bodyText)
	}
	if in.ts == 0 {
		in.ts = time.Now().Unix()
	}
	if in.ts < 0 {
		return errors.New("--time: must be unix seconds")
	}
	key, err := readKey(c, keyFile)
	if err != nil {
		return err
	}
	in.key = key

	if scheme == schemeRFC9421 {
		return printRFC9421(c.OutOrStdout(), &in)
	}
	path, _, _ := strings.Cut(in.target, "?")
	var covered []byte
	if signBody {
		covered = in.body
	}
	sig := sign.AmatinoSign(in.key, in.ts, path, covered)

	out := c.OutOrStdout()
	fmt.Fprintf(out, "X-Session-ID: %s\n", in.sid)
	fmt.Fprintf(out, "X-Signature: %s\n", sig)
	args := []string{"curl", "-X", in.method, "-H", shellQuote("X-Session-ID: " + in.sid), "-H", shellQuote("X-Signature: " + sig)}
	args = append(args, curlBody(&in)...)
	args = append(args, shellQuote(strings.TrimSuffix(in.base, "/")+in.target))
	fmt.Fprintln(out, strings.Join(args, " "))
	return nil
}

// checkRFC9421Target checks what rfc9421 signs beyond amatino: the request
// target byte for byte (@path, @query), and the authority (@authority),
// which comes from --host or else from --url, so --url must then be a bare
// origin for the curl line to send what was signed.
func checkRFC9421Target(in *signInput) error {
	for i := 0; i < len(in.target); i++ {
		if c := in.target[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("--path: byte %d is not printable ASCII; percent-encode it, as it is signed as sent", i)
		}
	}
	u, err := url.Parse(in.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return errors.New("--url: with --scheme rfc9421 must be the gateway's origin, such as http://127.0.0.1:8080 (the path goes in --path)")
	}
	if in.host == "" {
		in.host = u.Host
	}
	for i := 0; i < len(in.host); i++ {
		if c := in.host[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/?#@\"`, c) >= 0 {
			return errors.New("--host: must be a host with an optional port, such as api.example.com:8443")
		}
	}
	if in.host == "" {
		return errors.New("--host: must not be empty")
	}
	return nil
}

// printRFC9421 signs in as the Go client does in its rfc9421-hmac mode
// (caddyauth/client), so that what the gateway accepts from one it accepts
// from the other, and prints the fields and the curl line.
func printRFC9421(out io.Writer, in *signInput) error {
	policy := rfc9421.DefaultPolicy()
	// A declared empty body (curl sends Content-Length: 0) is no body to the
	// gateway, which then requires no body components.
	withBody := len(in.body) > 0
	h := http.Header{}
	if withBody {
		d, err := rfc9421.ContentDigest(rfc9421.DigestSHA256, in.body)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		h.Set(rfc9421.HeaderContentDigest, d)
		h.Set("Content-Type", in.contentType)
	}
	nonce, err := rfc9421.NewNonce(nil)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	u, _ := url.Parse(in.base) // checked by checkRFC9421Target
	req := rfc9421.Request{Method: in.method, Scheme: u.Scheme, Authority: in.host, Target: in.target, Header: h, HasBody: withBody}
	sp := rfc9421.SignParams{KeyID: in.sid, Components: policy.Required(withBody), Created: time.Unix(in.ts, 0), Nonce: nonce}
	sigInput, sig, err := rfc9421.Sign(req, rfc9421.HMACKey(in.key), sp)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}

	fields := [][2]string{{rfc9421.HeaderSignatureInput, sigInput}, {rfc9421.HeaderSignature, sig}}
	if in.host != u.Host {
		fields = append(fields, [2]string{"Host", in.host})
	}
	if withBody {
		fields = append(fields, [2]string{rfc9421.HeaderContentDigest, h.Get(rfc9421.HeaderContentDigest)})
	}
	args := []string{"curl", "-X", in.method}
	for _, f := range fields {
		fmt.Fprintf(out, "%s: %s\n", f[0], f[1])
		args = append(args, "-H", shellQuote(f[0]+": "+f[1]))
	}
	if withBody {
		fmt.Fprintf(out, "Content-Type: %s\n", in.contentType)
	}
	args = append(args, curlBody(in)...)
	if hasDotSegment(in.target) {
		// curl would otherwise remove them, and the signed @path with them.
		args = append(args, "--path-as-is")
	}
	args = append(args, shellQuote(u.Scheme+"://"+u.Host+in.target))
	fmt.Fprintln(out, strings.Join(args, " "))
	return nil
}

// curlBody returns the curl arguments that send the body, if one was given.
func curlBody(in *signInput) []string {
	if !in.hasBody {
		return nil
	}
	args := []string{"-H", shellQuote("Content-Type: " + in.contentType)}
	if in.bodyFile != "" {
		return append(args, "--data-binary", shellQuote("@"+in.bodyFile))
	}
	return append(args, "--data-binary", shellQuote(string(in.body)))
}

// hasDotSegment reports a "." or ".." segment in the path of target.
func hasDotSegment(target string) bool {
	path, _, _ := strings.Cut(target, "?")
	for _, s := range strings.Split(path, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// validFieldValue reports a non-empty header field value without control
// characters, which would end the field or be refused by the gateway.
func validFieldValue(v string) bool {
	if strings.TrimSpace(v) == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// readKey reads the api key from a file or standard input; the key is the
// first line, without its line break, used as the string's bytes.
func readKey(c *cobra.Command, file string) ([]byte, error) {
	if file == "" {
		k, err := readSecret(c.InOrStdin(), c.ErrOrStderr(), "api_key", false)
		if err != nil {
			return nil, err
		}
		if len(k) == 0 {
			return nil, errors.New("empty api_key on standard input")
		}
		return k, nil
	}
	b, err := readFileMax(file, 4096)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	k, _, _ := strings.Cut(string(b), "\n")
	k = strings.TrimSuffix(k, "\r")
	if k == "" {
		return nil, errors.New("--key-file: empty api_key")
	}
	return []byte(k), nil
}

func readFileMax(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name) // #nosec G304 -- the file the operator named on the command line
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %s bytes", strconv.FormatInt(limit, 10))
	}
	return b, nil
}

// shellQuote quotes s for a POSIX shell: in single quotes, where a single
// quote inside is written as quote, backslash-quote, quote (close, escaped
// quote, reopen).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
