package plugin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

// maxSignBody bounds the body the sign command reads: the gateway's default
// limit for bodies that take part in a signature.
const maxSignBody = 10 << 20

func signCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "sign --session-id <n> [--method <m>] [--path <path>] [--body <text> | --body-file <file>] [--sign-body] [--key-file <file>] [--time <unix>] [--url <base>]",
		Short: "Prints the headers of an amatino signed request",
		Long: `
Prints the X-Session-ID and X-Signature headers of an amatino signed request,
and a curl command line that sends it, for testing and debugging by hand.

The signature is HMAC-SHA512, keyed with the api_key of the login answer,
over the decimal unix time followed by the path without the query string
(WIRE.md). The body is not signed, as current clients do; --sign-body signs
the raw body too, as older clients did. The gateway accepts the signature
within its clock window (default 30 seconds either way) of --time, which
defaults to now.

The api_key is a secret: it is read from --key-file, or from standard input
(without echo from a terminal), never from a flag.
`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fl := c.Flags()
			sid, _ := fl.GetString("session-id")
			method, _ := fl.GetString("method")
			target, _ := fl.GetString("path")
			bodyText, _ := fl.GetString("body")
			bodyFile, _ := fl.GetString("body-file")
			signBody, _ := fl.GetBool("sign-body")
			keyFile, _ := fl.GetString("key-file")
			ts, _ := fl.GetInt64("time")
			base, _ := fl.GetString("url")

			if _, ok := caddyauth.ParsePositiveDecimal(sid); !ok {
				return errors.New("--session-id: must be the session_id of the login answer (a positive integer)")
			}
			if method == "" || strings.Trim(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
				return errors.New("--method: must be an upper-case HTTP method such as GET or POST")
			}
			if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r\n#") {
				return errors.New("--path: must start with / and hold no spaces or fragment (a query is allowed)")
			}
			if fl.Changed("body") && bodyFile != "" {
				return errors.New("--body and --body-file exclude each other")
			}
			var body []byte
			hasBody := fl.Changed("body") || bodyFile != ""
			switch {
			case bodyFile != "":
				b, err := readFileMax(bodyFile, maxSignBody)
				if err != nil {
					return fmt.Errorf("--body-file: %w", err)
				}
				body = b
			case fl.Changed("body"):
				body = []byte(bodyText)
			}
			if ts == 0 {
				ts = time.Now().Unix()
			}
			if ts < 0 {
				return errors.New("--time: must be unix seconds")
			}
			key, err := readKey(c, keyFile)
			if err != nil {
				return err
			}

			path, _, _ := strings.Cut(target, "?")
			var covered []byte
			if signBody {
				covered = body
			}
			sig := sign.AmatinoSign(key, ts, path, covered)

			out := c.OutOrStdout()
			fmt.Fprintf(out, "X-Session-ID: %s\n", sid)
			fmt.Fprintf(out, "X-Signature: %s\n", sig)
			args := []string{"curl", "-X", method, "-H", shellQuote("X-Session-ID: " + sid), "-H", shellQuote("X-Signature: " + sig)}
			if hasBody {
				args = append(args, "-H", shellQuote("Content-Type: application/json"))
				if bodyFile != "" {
					args = append(args, "--data-binary", shellQuote("@"+bodyFile))
				} else {
					args = append(args, "--data-binary", shellQuote(string(body)))
				}
			}
			args = append(args, shellQuote(strings.TrimSuffix(base, "/")+target))
			fmt.Fprintln(out, strings.Join(args, " "))
			return nil
		},
	}
	fl := c.Flags()
	fl.String("session-id", "", "The session_id of the login answer")
	fl.String("method", "GET", "HTTP method of the request (not signed by amatino; used in the curl line)")
	fl.String("path", "/", "Request path, with an optional query string (the query is not signed)")
	fl.String("body", "", "Request body")
	fl.String("body-file", "", "File holding the request body")
	fl.Bool("sign-body", false, "Sign the raw body too (older clients)")
	fl.String("key-file", "", "File holding the api_key (default: standard input)")
	fl.Int64("time", 0, "Unix time to sign for (default: now)")
	fl.String("url", "http://localhost", "Base URL of the gateway, for the curl line")
	return c
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
	f, err := os.Open(name)
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
