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

  user add|list|show|disable|enable|passwd    manage users kept in the store
  user key add|remove                         manage a user's Ed25519 keys
  session list|revoke|revoke-all              manage a user's sessions
  hash-password                               print an argon2id PHC string
  sign                                        print signed-request headers (amatino, rfc9421)

The user and session commands talk to the admin API of the running Caddy
instance (module admin.api.sessiongate), because the store is held by the
server. Use --address (or --config) if the admin endpoint is not the default
localhost:2019. Users defined in the Caddyfile (static users) are read-only
here. Passwords are read from standard input, never from a flag.
`,
		CobraFunc: addSessiongateCommands,
	})
}

// addSessiongateCommands builds the `caddy sessiongate` command tree.
func addSessiongateCommands(cmd *cobra.Command) {
	hp := &cobra.Command{
		Use:   "hash-password [--time <n>] [--memory-kib <n>] [--threads <n>]",
		Short: "Hashes a password as an argon2id PHC string",
		Long: `
Reads a password from standard input (without echo on a terminal, asking
twice) and prints its argon2id PHC string, for the password_hash of a static
user in the sessiongate global option or of a user added through the admin
API. Defaults: t=2, m=19456 KiB, p=1 (the OWASP minimum); lower values are
refused.
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
			return hashPassword(c.Context(), c.InOrStdin(), c.ErrOrStderr(), c.OutOrStdout(), p)
		},
	}
	hp.Flags().Uint32("time", password.DefaultParams.Time, "argon2id iterations")
	hp.Flags().Uint32("memory-kib", password.DefaultParams.MemoryKiB, "argon2id memory in KiB")
	hp.Flags().Uint8("threads", password.DefaultParams.Threads, "argon2id parallelism")
	cmd.AddCommand(hp, userCommand(), sessionCommand(), signCommand())
}

func hashPassword(_ context.Context, in io.Reader, prompts, out io.Writer, p password.Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	pw, err := readSecret(in, prompts, "password", true)
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

// readSecret reads a secret the way `caddy hash-password` does: without
// echo from a terminal (asking twice when confirm is set), or one line from
// a pipe or file. The trailing newline (and a CR before it) is not part of
// the secret.
func readSecret(in io.Reader, prompts io.Writer, what string, confirm bool) ([]byte, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		fmt.Fprintf(prompts, "Enter %s: ", what)
		s, err := term.ReadPassword(fd)
		fmt.Fprintln(prompts)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		if !confirm {
			return s, nil
		}
		fmt.Fprintf(prompts, "Confirm %s: ", what)
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(prompts)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		if !bytes.Equal(s, again) {
			return nil, fmt.Errorf("the two %ss do not match", what)
		}
		return s, nil
	}
	line, err := bufio.NewReader(in).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if t, ok := bytes.CutSuffix(line, []byte("\n")); ok {
		line = bytes.TrimSuffix(t, []byte("\r"))
	}
	return line, nil
}
