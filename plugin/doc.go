// Package plugin holds sessiongate's Caddy modules: the `sessiongate` app
// (global option), the `http.handlers.sessiongate` handler (directive
// `sessiongate`, ordered after `basic_auth`), and the
// `http.handlers.sessiongate_echo` demo backend. They are thin adapters over
// the Caddy-free engine in package caddyauth.
package plugin
