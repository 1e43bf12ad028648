package rfc9421

import (
	"fmt"
	"net/http"
	"strings"
)

// Request is what the signature base is built from: the request as the
// client sent it. The gateway fills Authority and Target from the original
// request (before any Caddy rewrite), so that what is verified is what the
// client signed (SEC-28). The body is not part of Request: Content-Digest is
// checked separately over the body bytes (VerifyContentDigest), so this
// package never reads a body.
type Request struct {
	// Method is the request method, case preserved (@method).
	Method string
	// Scheme is "http" or "https" as the gateway received the request
	// (@scheme, @target-uri). Behind a TLS-terminating load balancer this
	// differs from what the client used, which is why the default policy
	// does not require @scheme.
	Scheme string
	// Authority is the Host header as sent, or for an absolute-form target
	// the target's authority, as net/http puts it in Request.Host
	// (@authority, @target-uri). It is normalised (lower case, default
	// port removed) before use.
	Authority string
	// Target is the request-target exactly as it appeared in the request
	// line: origin-form "/p?q" or absolute-form "http://h/p?q"
	// (@request-target, @path, @query, @target-uri).
	Target string
	// Header holds the header fields. Lookups use canonical keys, as
	// net/http stores them.
	Header http.Header
	// HasBody reports whether the request has content, in which case the
	// policy's body components (content-digest, content-type) are required.
	HasBody bool
}

// FromHTTP returns the Request for a server-side r as net/http parsed it:
// r.Host, r.RequestURI, and the scheme from r.TLS. A gateway behind rewrites
// must override Authority and Target with the values from the original
// request. HasBody is true when a length was declared non-zero or the body
// is chunked (ContentLength -1).
func FromHTTP(r *http.Request) Request {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	target := r.RequestURI
	if target == "" && r.URL != nil {
		target = r.URL.RequestURI()
	}
	return Request{Method: r.Method, Scheme: scheme, Authority: r.Host, Target: target,
		Header: r.Header, HasBody: r.ContentLength != 0}
}

// The derived components this package computes (RFC 9421 §2.2). @status
// (responses only) and @query-param (needs component parameters) are not
// supported and are refused like any unknown name.
const (
	CompMethod        = "@method"
	CompAuthority     = "@authority"
	CompPath          = "@path"
	CompQuery         = "@query"
	CompTargetURI     = "@target-uri"
	CompScheme        = "@scheme"
	CompRequestTarget = "@request-target"

	compSignatureParams = "@signature-params"
)

// Header field components the default policy requires on a body.
const (
	FieldContentDigest = "content-digest"
	FieldContentType   = "content-type"
)

// componentValue returns the canonical value of one covered component, or
// an error naming it when it is unknown or absent from the request.
func (r *Request) componentValue(name string) (string, error) {
	if strings.HasPrefix(name, "@") {
		return r.derived(name)
	}
	vals := r.Header[http.CanonicalHeaderKey(name)]
	if len(vals) == 0 {
		return "", malformed("covered field " + quoteName(name) + " is absent from the request")
	}
	// RFC 9421 §2.1: each field line trimmed, joined with ", ".
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strings.Trim(v, " \t"))
	}
	return b.String(), nil
}

func (r *Request) derived(name string) (string, error) {
	switch name {
	case CompMethod:
		if r.Method == "" {
			return "", malformed("request has no method")
		}
		return r.Method, nil
	case CompAuthority:
		return normalizeAuthority(r.Authority, r.Scheme)
	case CompScheme:
		if r.Scheme == "" {
			return "", malformed("request scheme unknown")
		}
		return strings.ToLower(r.Scheme), nil
	case CompRequestTarget:
		if r.Target == "" {
			return "", malformed("request has no target")
		}
		return r.Target, nil
	case CompPath:
		path, _, _, err := splitTarget(r.Target)
		return path, err
	case CompQuery:
		_, query, _, err := splitTarget(r.Target)
		return "?" + query, err
	case CompTargetURI:
		path, query, hasQuery, err := splitTarget(r.Target)
		if err != nil {
			return "", err
		}
		auth, err := normalizeAuthority(r.Authority, r.Scheme)
		if err != nil {
			return "", err
		}
		if r.Scheme == "" {
			return "", malformed("request scheme unknown")
		}
		u := strings.ToLower(r.Scheme) + "://" + auth + path
		if hasQuery {
			u += "?" + query
		}
		return u, nil
	}
	return "", malformed("unknown derived component " + quoteName(name))
}

// splitTarget returns the raw path (never empty: "/" for an empty path) and
// raw query of a request target, without any decoding or cleaning: the
// signed path is the bytes that are forwarded (SEC-28).
func splitTarget(t string) (path, query string, hasQuery bool, err error) {
	if t == "" {
		return "", "", false, malformed("request has no target")
	}
	if strings.IndexByte(t, '#') >= 0 || strings.ContainsAny(t, " \t\r\n\x00") {
		return "", "", false, malformed("request target holds a fragment or whitespace")
	}
	rest := t
	if !strings.HasPrefix(t, "/") {
		// absolute-form: scheme "://" authority path-abempty [ "?" query ]
		i := strings.Index(t, "://")
		if i <= 0 {
			return "", "", false, malformed("request target is neither origin-form nor absolute-form")
		}
		rest = t[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			rest = ""
		} else {
			rest = rest[j:]
		}
	}
	path, query, hasQuery = rest, "", false
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		path, query, hasQuery = rest[:i], rest[i+1:], true
	}
	if path == "" {
		path = "/"
	}
	return path, query, hasQuery, nil
}

// normalizeAuthority lower-cases the authority and drops the scheme's
// default port (RFC 9421 §2.2.3, HTTP §4.2.3), so that "Example.COM:443" and
// "example.com" sign alike over https.
func normalizeAuthority(a, scheme string) (string, error) {
	if a == "" {
		return "", malformed("request has no authority")
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`/?#@\"`, c) >= 0 {
			return "", malformed(fmt.Sprintf("authority holds an invalid character at offset %d", i))
		}
	}
	a = strings.ToLower(a)
	switch strings.ToLower(scheme) {
	case "http":
		a = strings.TrimSuffix(a, ":80")
	case "https":
		a = strings.TrimSuffix(a, ":443")
	}
	// An empty port ("host:") means the default one.
	a = strings.TrimSuffix(a, ":")
	if a == "" {
		return "", malformed("request has no authority")
	}
	return a, nil
}
