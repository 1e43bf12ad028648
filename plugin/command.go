package plugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sessiongate/sessiongate/caddyauth/password"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sessiongate",
		Usage: "<command> [flags]",
		Short: "Manages the sessiongate authenticating gateway",
		Long: `
Tools for the sessiongate plugin.

  hash-password   hash a password as an argon2id PHC string for a static user
`,
		CobraFunc: func(cmd *cobra.Command) {
			hp := &cobra.Command{
				Use:   "hash-password [--time <n>] [--memory-kib <n>] [--threads <n>]",
				Short: "Hashes a password as an argon2id PHC string",
				Long: `
Reads a password from standard input (without echo on a terminal, asking
twice) and prints its argon2id PHC string, for the password_hash of a static
user in the sessiongate global option. Defaults: t=2, m=19456 KiB, p=1 (the
OWASP minimum); lower values are refused.
`,
				Args: cobra.NoArgs,
				RunE: func(c *cobra.Command, _ []string) error {
					p := password.DefaultParams
					var err error
					if p.Time, err = c.Flags().GetUint32("time"); err != nil {
						return err
					}
					if p.MemoryKiB, err = c.Flags().GetUint32("memory-kib"); err != nil {
						return err
					}
					if p.Threads, err = c.Flags().GetUint8("threads"); err != nil {
						return err
					}
					return hashPassword(c.Context(), os.Stdin, os.Stdout, p)
				},
			}
			hp.Flags().Uint32("time", password.DefaultParams.Time, "argon2id iterations")
			hp.Flags().Uint32("memory-kib", password.DefaultParams.MemoryKiB, "argon2id memory in KiB")
			hp.Flags().Uint8("threads", password.DefaultParams.Threads, "argon2id parallelism")
			cmd.AddCommand(hp)
		},
	})
}

func hashPassword(_ context.Context, in *os.File, out io.Writer, p password.Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	pw, err := readPassword(in)
	if err != nil {
		return err
	}
	if len(pw) == 0 {
		return errors.New("empty password")
	}
	h, err := password.Hash(string(pw), p)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = fmt.Fprintln(out, h)
	return err
}

// readPassword reads a password without echo from a terminal (asking twice),
// or one line from a pipe, like `caddy hash-password`.
func readPassword(in *os.File) ([]byte, error) {
	fd := int(in.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, "Enter password: ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(os.Stderr, "Confirm password: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("passwords do not match")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(in).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if t, ok := bytes.CutSuffix(line, []byte("\n")); ok {
		line = bytes.TrimSuffix(t, []byte("\r"))
	}
	return line, nil
}
