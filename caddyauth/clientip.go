package caddyauth

import "context"

type clientIPKey struct{}

// WithClientIP returns ctx carrying the client IP the server derived (Caddy
// derives it through trusted_proxies), for audit events.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client IP stored by WithClientIP, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

type requestURIKey struct{}

// WithRequestURI records the request target as the client sent it, before
// any server-side rewrite: signatures cover what the client sent (SEC-28).
func WithRequestURI(ctx context.Context, uri string) context.Context {
	return context.WithValue(ctx, requestURIKey{}, uri)
}

// RequestURI returns the request target stored by WithRequestURI, or "".
func RequestURI(ctx context.Context) string {
	u, _ := ctx.Value(requestURIKey{}).(string)
	return u
}
