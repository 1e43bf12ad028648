package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// The `caddy sessiongate user …` and `session …` commands: thin clients of
// the admin API (admin.go), which does every check; they only shape requests
// and print answers.

func addAdminFlags(c *cobra.Command) {
	f := c.PersistentFlags()
	f.String("address", "", "The address of the admin API endpoint, if not the default")
	f.StringP("config", "c", "", "Configuration file to read the admin address from, if --address is not used")
	f.StringP("adapter", "a", "", "Name of config adapter to apply (when --config is used)")
}

// adminRequest calls the admin API of the running instance and decodes the
// JSON answer into out (if not nil). Refusals come back as Caddy's error
// "caddy responded with error: HTTP <status>: {"error": …}".
func adminRequest(c *cobra.Command, method, uri string, body any, out any) error {
	fl := c.Flags()
	address, _ := fl.GetString("address")
	config, _ := fl.GetString("config")
	adapter, _ := fl.GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return fmt.Errorf("couldn't determine admin API address: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, uri, err)
	}
	return nil
}

// userIDArg parses a user id argument before anything is sent.
func userIDArg(s string) (int64, error) {
	id, ok := caddyauth.ParsePositiveDecimal(s)
	if !ok {
		return 0, fmt.Errorf("user id %q: must be a positive integer", s)
	}
	return id, nil
}

func userPath(id int64, rest ...string) string {
	p := "/sessiongate/users/" + strconv.FormatInt(id, 10)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// printJSON prints an answer as indented JSON (--json).
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func printUser(w io.Writer, u userView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	pw := "not set"
	if u.HasPassword {
		pw = "set"
	}
	fmt.Fprintf(tw, "id:\t%d\n", u.ID)
	fmt.Fprintf(tw, "source:\t%s\n", u.Source)
	fmt.Fprintf(tw, "email:\t%s\n", orDash(u.Email))
	fmt.Fprintf(tw, "username:\t%s\n", orDash(u.Username))
	fmt.Fprintf(tw, "account number:\t%s\n", orDash(u.AccountNumber))
	fmt.Fprintf(tw, "disabled:\t%s\n", yesNo(u.Disabled))
	fmt.Fprintf(tw, "password:\t%s\n", pw)
	fmt.Fprintf(tw, "created:\t%s\n", fmtTime(u.Created))
	if len(u.PublicKeys) == 0 {
		fmt.Fprintf(tw, "public keys:\t-\n")
	}
	for i, k := range u.PublicKeys {
		label := ""
		if i == 0 {
			label = "public keys:"
		}
		fmt.Fprintf(tw, "%s\t%s (added %s)\n", label, k.ID, fmtTime(k.Added))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func userCommand() *cobra.Command {
	user := &cobra.Command{
		Use:   "user <command> [--address <interface>]",
		Short: "Manages users kept in the store of the running instance",
		Long: `
Adds, lists, shows, disables and enables users kept in the sessiongate store,
changes their passwords and manages their Ed25519 public keys, through the
admin API of the running Caddy instance.

Users defined in the Caddyfile (static users) are listed and shown, but
cannot be changed here: change the configuration instead.
`,
	}
	addAdminFlags(user)

	add := &cobra.Command{
		Use:   "add [--id <n>] [--email <e>] [--username <u>] [--account-number <n>] [--key <base64>]... [--no-password | --hashed] [--json]",
		Short: "Adds a user to the store",
		Long: `
Adds a user to the sessiongate store. Login names are optional: an email
(amatino), a username (videntity, sxt), or neither for a user who logs in by
numeric id (amatino user_id).

The password is read from standard input: without echo from a terminal
(asked twice), or the first line of a pipe or file. With --hashed, standard
input holds an argon2id PHC string instead (as printed by
'caddy sessiongate hash-password'). With --no-password nothing is read and
the user can log in only with a public key.

--id 0 (the default) lets the store assign the next free id. Ed25519 public
keys are 44 characters of padded standard base64; --key may be repeated.
`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fl := c.Flags()
			id, _ := fl.GetInt64("id")
			email, _ := fl.GetString("email")
			username, _ := fl.GetString("username")
			account, _ := fl.GetString("account-number")
			keys, _ := fl.GetStringArray("key")
			noPassword, _ := fl.GetBool("no-password")
			hashed, _ := fl.GetBool("hashed")
			if id < 0 {
				return errors.New("--id: must be 0 (assign one) or a positive integer")
			}
			if noPassword && hashed {
				return errors.New("--no-password and --hashed exclude each other")
			}
			req := map[string]any{"id": id}
			for k, v := range map[string]string{"email": email, "username": username, "account_number": account} {
				if v != "" {
					req[k] = v
				}
			}
			if len(keys) > 0 {
				req["public_keys"] = keys
			}
			switch {
			case hashed:
				h, err := readSecret(c.InOrStdin(), c.ErrOrStderr(), "password hash", false)
				if err != nil {
					return err
				}
				req["password_hash"] = strings.TrimSpace(string(h))
			case !noPassword:
				pw, err := readSecret(c.InOrStdin(), c.ErrOrStderr(), "password", true)
				if err != nil {
					return err
				}
				if len(pw) == 0 {
					return errors.New("empty password (use --no-password for a user without one)")
				}
				req["password"] = string(pw)
			}
			var u userView
			if err := adminRequest(c, http.MethodPost, "/sessiongate/users", req, &u); err != nil {
				return err
			}
			if asJSON, _ := fl.GetBool("json"); asJSON {
				return printJSON(c.OutOrStdout(), u)
			}
			fmt.Fprintf(c.OutOrStdout(), "Added user %d.\n", u.ID)
			return printUser(c.OutOrStdout(), u)
		},
	}
	add.Flags().Int64("id", 0, "Numeric user id; 0 assigns the next free one")
	add.Flags().String("email", "", "Login email (amatino)")
	add.Flags().String("username", "", "Login name (videntity, sxt)")
	add.Flags().String("account-number", "", "Account number (videntity), digits only")
	add.Flags().StringArray("key", nil, "Ed25519 public key, padded standard base64 (repeatable)")
	add.Flags().Bool("no-password", false, "Add the user without a password (key login only)")
	add.Flags().Bool("hashed", false, "Standard input holds an argon2id PHC string, not a password")
	add.Flags().Bool("json", false, "Print the answer as JSON")

	list := &cobra.Command{
		Use:   "list [--after <id>] [--limit <n>] [--all] [--json]",
		Short: "Lists users, static and stored, in id order",
		Long: `
Lists the users with an id above --after (default 0), at most --limit of them
(default 100, at most 1000), static users from the configuration and users
kept in the store alike. When more remain, the id to pass as --after for the
next page is printed on standard error. --all follows the pages to the end.
`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fl := c.Flags()
			after, _ := fl.GetInt64("after")
			limit, _ := fl.GetInt("limit")
			all, _ := fl.GetBool("all")
			asJSON, _ := fl.GetBool("json")
			if after < 0 {
				return errors.New("--after: must not be negative")
			}
			if limit < 1 || limit > caddyauth.MaxListLimit {
				return fmt.Errorf("--limit: must be from 1 to %d", caddyauth.MaxListLimit)
			}
			var users []userView
			next := after
			for {
				var page struct {
					Users     []userView `json:"users"`
					NextAfter int64      `json:"next_after"`
				}
				uri := fmt.Sprintf("/sessiongate/users?after=%d&limit=%d", next, limit)
				if err := adminRequest(c, http.MethodGet, uri, nil, &page); err != nil {
					return err
				}
				users = append(users, page.Users...)
				next = page.NextAfter
				if !all || next == 0 {
					break
				}
			}
			if asJSON {
				if err := printJSON(c.OutOrStdout(), map[string]any{"users": users}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSOURCE\tEMAIL\tUSERNAME\tDISABLED\tPASSWORD\tKEYS")
				for _, u := range users {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", u.ID, u.Source, orDash(u.Email), orDash(u.Username),
						yesNo(u.Disabled), yesNo(u.HasPassword), len(u.PublicKeys))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if next != 0 {
				fmt.Fprintf(c.ErrOrStderr(), "More users: --after %d\n", next)
			}
			return nil
		},
	}
	list.Flags().Int64("after", 0, "List users with an id above this one")
	list.Flags().Int("limit", caddyauth.DefaultListLimit, "Users per page")
	list.Flags().Bool("all", false, "Follow the pages to the last user")
	list.Flags().Bool("json", false, "Print the answer as JSON")

	show := &cobra.Command{
		Use:   "show <user-id> [--json]",
		Short: "Shows one user",
		Long: `
Shows a user: login names, whether it is disabled, whether it has a password,
and the ids of its public keys. Neither the password hash nor key material
is ever shown.
`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			var u userView
			if err := adminRequest(c, http.MethodGet, userPath(id), nil, &u); err != nil {
				return err
			}
			if asJSON, _ := c.Flags().GetBool("json"); asJSON {
				return printJSON(c.OutOrStdout(), u)
			}
			return printUser(c.OutOrStdout(), u)
		},
	}
	show.Flags().Bool("json", false, "Print the answer as JSON")

	disable := &cobra.Command{
		Use:   "disable <user-id>",
		Short: "Disables a user and ends all its sessions",
		Long: `
Disables a stored user: its logins are refused and every one of its sessions
ends at once, on every gateway node sharing the store.
`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			var out struct {
				Revoked int `json:"sessions_revoked"`
			}
			if err := adminRequest(c, http.MethodPost, userPath(id, "disable"), nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "User %d disabled; %d sessions revoked.\n", id, out.Revoked)
			return nil
		},
	}

	enable := &cobra.Command{
		Use:   "enable <user-id>",
		Short: "Enables a disabled user",
		Long: `
Lets a disabled stored user log in again. Sessions ended by the disable stay
ended.
`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			if err := adminRequest(c, http.MethodPost, userPath(id, "enable"), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "User %d enabled.\n", id)
			return nil
		},
	}

	passwd := &cobra.Command{
		Use:   "passwd <user-id> [--hashed]",
		Short: "Changes a user's password and ends all its sessions",
		Long: `
Sets a new password for a stored user and ends every one of its sessions. The
password is read from standard input: without echo from a terminal (asked
twice), or the first line of a pipe or file. With --hashed, standard input
holds an argon2id PHC string instead.
`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			req := map[string]string{}
			if hashed, _ := c.Flags().GetBool("hashed"); hashed {
				h, err := readSecret(c.InOrStdin(), c.ErrOrStderr(), "password hash", false)
				if err != nil {
					return err
				}
				req["password_hash"] = strings.TrimSpace(string(h))
			} else {
				pw, err := readSecret(c.InOrStdin(), c.ErrOrStderr(), "password", true)
				if err != nil {
					return err
				}
				if len(pw) == 0 {
					return errors.New("empty password")
				}
				req["password"] = string(pw)
			}
			var out struct {
				Revoked int `json:"sessions_revoked"`
			}
			if err := adminRequest(c, http.MethodPut, userPath(id, "password"), req, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Password of user %d changed; %d sessions revoked.\n", id, out.Revoked)
			return nil
		},
	}
	passwd.Flags().Bool("hashed", false, "Standard input holds an argon2id PHC string, not a password")

	key := &cobra.Command{
		Use:   "key add|remove",
		Short: "Manages a user's Ed25519 public keys",
		Long: `
Adds an Ed25519 public key to a stored user, or removes one by its key id.
Adding a key through the admin API is the administrative path of key
registration; it is logged and emitted as an event like a registration by
the user.
`,
	}
	keyAdd := &cobra.Command{
		Use:   "add <user-id> <public-key>",
		Short: "Adds an Ed25519 public key to a user",
		Long: `
Registers an Ed25519 public key (44 characters of padded standard base64) to
a stored user and prints the key id the gateway assigned to it.
`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			var out keyView
			if err := adminRequest(c, http.MethodPost, userPath(id, "keys"), map[string]string{"public_key": args[1]}, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Key %s added to user %d.\n", out.ID, id)
			return nil
		},
	}
	keyRemove := &cobra.Command{
		Use:   "remove <user-id> <key-id>",
		Short: "Removes a public key from a user",
		Long: `
Removes the public key with the given key id (as shown by 'user show') from a
stored user.
`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			if err := adminRequest(c, http.MethodDelete, userPath(id, "keys", args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Key %s removed from user %d.\n", args[1], id)
			return nil
		},
	}
	key.AddCommand(keyAdd, keyRemove)
	user.AddCommand(add, list, show, disable, enable, passwd, key)
	return user
}

func sessionCommand() *cobra.Command {
	session := &cobra.Command{
		Use:   "session list|revoke|revoke-all [--address <interface>]",
		Short: "Manages the sessions of a user on the running instance",
		Long: `
Lists the sessions of a user and ends one or all of them, through the admin
API of the running Caddy instance. Sessions are shown by a keyed hash of
their id, never the id itself; revoke takes that hash. Revocations take
effect on every gateway node sharing the store.
`,
	}
	addAdminFlags(session)

	list := &cobra.Command{
		Use:   "list <user-id> [--json]",
		Short: "Lists a user's sessions",
		Long: `
Lists the sessions of a user, oldest first: the session hash (for revoke),
the dialect, when it was created and last seen, and its deadlines.
`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			var out struct {
				Sessions []sessionView `json:"sessions"`
			}
			if err := adminRequest(c, http.MethodGet, userPath(id, "sessions"), nil, &out); err != nil {
				return err
			}
			if asJSON, _ := c.Flags().GetBool("json"); asJSON {
				return printJSON(c.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tDIALECT\tCREATED\tLAST SEEN\tIDLE DEADLINE\tABSOLUTE DEADLINE\tEXPIRED")
			for _, s := range out.Sessions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Session, s.Dialect, fmtTime(s.Created), fmtTime(s.LastSeen),
					fmtTime(s.IdleDeadline), fmtTime(s.AbsoluteDeadline), yesNo(s.Expired))
			}
			return tw.Flush()
		},
	}
	list.Flags().Bool("json", false, "Print the answer as JSON")

	revoke := &cobra.Command{
		Use:   "revoke <user-id> <session>",
		Short: "Ends one session of a user",
		Long: `
Ends the session of the user whose hash (as printed by 'session list') is
given.
`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			if err := adminRequest(c, http.MethodDelete, userPath(id, "sessions", args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Session %s of user %d revoked.\n", args[1], id)
			return nil
		},
	}

	revokeAll := &cobra.Command{
		Use:   "revoke-all <user-id>",
		Short: "Ends every session of a user",
		Long: `
Ends every session of a user (static or stored), on every gateway node
sharing the store. The user can log in again; to stop that, use
'user disable'.
`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := userIDArg(args[0])
			if err != nil {
				return err
			}
			var out struct {
				Revoked int `json:"sessions_revoked"`
			}
			if err := adminRequest(c, http.MethodDelete, userPath(id, "sessions"), nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%d sessions of user %d revoked.\n", out.Revoked, id)
			return nil
		},
	}
	session.AddCommand(list, revoke, revokeAll)
	return session
}
