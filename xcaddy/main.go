// Command caddy is a custom Caddy build: Caddy's standard modules plus the
// sessiongate plugin. It is the same file the xcaddy tool generates.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessiongate/sessiongate/plugin"
)

func main() {
	caddycmd.Main()
}
