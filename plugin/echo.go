package plugin

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Echo{})
	httpcaddyfile.RegisterHandlerDirective("sessiongate_echo", parseEcho)
	httpcaddyfile.RegisterDirectiveOrder("sessiongate_echo", httpcaddyfile.Before, "respond")
}

// Echo is a demo backend for trying the gateway: it answers every request
// with a JSON echo of what it received, `{"method", "path", "query",
// "headers", "body"}`, so one can see which identity headers the gateway
// set and which credentials it removed. Not for production.
type Echo struct {
	// MaxBody bounds how much of the body is echoed. Default: 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Echo) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.sessiongate_echo",
		New: func() caddy.Module { return new(Echo) },
	}
}

type echoAnswer struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// ServeHTTP answers with the echo; it never calls next.
func (e Echo) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	max := e.MaxBody
	if max <= 0 {
		max = 1 << 20
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, max))
	b, err := json.Marshal(echoAnswer{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Headers: r.Header, Body: string(body)})
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(append(b, '\n'))
	return err
}

// UnmarshalCaddyfile parses the `sessiongate_echo` directive, which takes no
// arguments.
//
// Syntax:
//
//	sessiongate_echo
func (e *Echo) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("sessiongate_echo takes no arguments")
	}
	return nil
}

func parseEcho(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	e := new(Echo)
	err := e.UnmarshalCaddyfile(h.Dispenser)
	return e, err
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Echo)(nil)
	_ caddyfile.Unmarshaler       = (*Echo)(nil)
)
