package videntity

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Error numbers and names: only the vendor's documented ones, so clients
// written from the documentation understand every answer. A request that is
// malformed rather than incomplete (duplicated field, bad encoding, too large,
// not a form) gets 4 MISSING_MANDATORY_FIELD with a detail saying what is
// wrong, and the honest HTTP status (400, 413, 415).
const (
	errNumAuthentication = 1
	errNumNoSession      = 2
	errNumExpired        = 3
	errNumMissingField   = 4
	errNumServer         = 11
)

// timestampLayout is the answers' timestamp, in UTC.
const timestampLayout = "2006-01-02 15:04:05"

// txCounter numbers answers. One per process, so several Dialects (sites,
// reloads) never reuse a number; seeded with the wall clock in microseconds
// so a restart continues above the previous run.
var txCounter atomic.Int64

func init() { txCounter.Store(time.Now().UnixMicro()) }

func nextTx() int64 { return txCounter.Add(1) }

// apiError is an error answer of an endpoint, with what it counts as.
type apiError struct {
	status     int
	number     int
	name       string
	detail     string
	retryAfter int
	// code is the audit reason (a caddyauth.Code* value).
	code string
	// result is the login metric result, for the errors a login can get.
	result string
}

func errAuthentication() *apiError {
	return &apiError{status: http.StatusUnauthorized, number: errNumAuthentication, name: "AUTHENTICATION_ERROR",
		detail: "username, password or account_number is incorrect", code: caddyauth.CodeBadCredentials, result: "bad_credentials"}
}

func errNoSession() *apiError {
	return &apiError{status: http.StatusNotFound, number: errNumNoSession, name: "SESSION_DOES_NOT_EXIST",
		detail: "Session does not exist", code: caddyauth.CodeUnknownSession}
}

func errExpired() *apiError {
	return &apiError{status: http.StatusUnauthorized, number: errNumExpired, name: "SESSION_EXPIRED",
		detail: "Session has expired", code: caddyauth.CodeSessionExpired}
}

// errMissing names a field; field is always one of the package's constants,
// never client input.
func errMissing(field string) *apiError {
	return &apiError{status: http.StatusBadRequest, number: errNumMissingField, name: "MISSING_MANDATORY_FIELD",
		detail: "Mandatory field " + field + " is missing", code: caddyauth.CodeInvalidRequest, result: "malformed"}
}

func errUnavailable() *apiError {
	return &apiError{status: http.StatusServiceUnavailable, number: errNumServer, name: "SERVER_ERROR",
		detail: "Service temporarily unavailable, retry shortly", retryAfter: 1, code: caddyauth.CodeStoreUnavailable, result: "unavailable"}
}

func errBusy() *apiError {
	return &apiError{status: http.StatusServiceUnavailable, number: errNumServer, name: "SERVER_ERROR",
		detail: "Too many logins in progress, retry shortly", retryAfter: 1, code: caddyauth.CodeBusy, result: "throttled"}
}

// errThrottled: too many logins from this client or this node (SEC-07).
func errThrottled(retryAfter int) *apiError {
	return &apiError{status: http.StatusTooManyRequests, number: errNumServer, name: "SERVER_ERROR",
		detail: "Too many login attempts, retry later", retryAfter: retryAfter, code: caddyauth.CodeThrottled, result: "throttled"}
}

// errInvalid: detail is always a fixed text of the package.
func errInvalid(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, number: errNumMissingField, name: "MISSING_MANDATORY_FIELD",
		detail: detail, code: caddyauth.CodeInvalidRequest, result: "malformed"}
}

func errTooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, number: errNumMissingField, name: "MISSING_MANDATORY_FIELD",
		detail: "Request body too large", code: caddyauth.CodeBodyTooLarge, result: "malformed"}
}

func errMediaType(detail string) *apiError {
	return &apiError{status: http.StatusUnsupportedMediaType, number: errNumMissingField, name: "MISSING_MANDATORY_FIELD",
		detail: detail, code: caddyauth.CodeUnsupportedMedia, result: "malformed"}
}

// field is one element of an answer.
type field struct{ name, value string }

// render writes the answer document with encoding/xml, so every text and
// the attribute are escaped:
//
//	<?xml version="1.0" encoding="utf-8"?>
//	<response api_method="…">
//	<status>…</status>            head fields, one per line
//	<response_name_value>         only if withNV; empty when nv is
//	<session_key>…</session_key>
//	</response_name_value>
//	<timestamp>…</timestamp>      tail fields
//	</response>
func render(method string, head []field, withNV bool, nv []field, tail []field) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	var err error
	tok := func(t xml.Token) {
		if err == nil {
			err = enc.EncodeToken(t)
		}
	}
	nl := xml.CharData("\n")
	elems := func(fs []field) {
		for _, f := range fs {
			start := xml.StartElement{Name: xml.Name{Local: f.name}}
			tok(start)
			tok(xml.CharData(f.value))
			tok(start.End())
			tok(nl)
		}
	}
	tok(xml.ProcInst{Target: "xml", Inst: []byte(`version="1.0" encoding="utf-8"`)})
	tok(nl)
	root := xml.StartElement{Name: xml.Name{Local: "response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "api_method"}, Value: method}}}
	tok(root)
	tok(nl)
	elems(head)
	if withNV {
		nvs := xml.StartElement{Name: xml.Name{Local: "response_name_value"}}
		tok(nvs)
		if len(nv) > 0 {
			tok(nl)
			elems(nv)
		}
		tok(nvs.End())
		tok(nl)
	}
	elems(tail)
	tok(root.End())
	tok(nl)
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renderSuccess renders a SUCCESS answer; nv holds login's session_key,
// and is empty for ping and logout.
func renderSuccess(method string, tx int64, detail string, nv []field, ts string) ([]byte, error) {
	return render(method,
		[]field{{"status", "SUCCESS"}, {"api_tx_number", strconv.FormatInt(tx, 10)}, {"detail", detail}},
		true, nv, []field{{"timestamp", ts}})
}

// renderError renders an ERROR answer.
func renderError(method string, tx int64, e *apiError, ts string) ([]byte, error) {
	return render(method,
		[]field{{"status", "ERROR"}, {"api_tx_number", strconv.FormatInt(tx, 10)},
			{"error_number", strconv.Itoa(e.number)}, {"error_name", e.name}, {"error_detail", e.detail}},
		false, nil, []field{{"timestamp", ts}})
}

// internalError is sent if rendering ever fails (it cannot with the fixed
// element names used here, but an answer must still be XML).
const internalError = `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
	"<response>\n<status>ERROR</status>\n<error_number>11</error_number>\n<error_name>SERVER_ERROR</error_name>\n" +
	"<error_detail>Internal error</error_detail>\n</response>\n"

func (d *Dialect) timestamp() string { return d.m.Now().UTC().Format(timestampLayout) }

// writeSuccess sends a 200 SUCCESS answer.
func (d *Dialect) writeSuccess(w http.ResponseWriter, method, detail string, nv []field) {
	b, err := renderSuccess(method, nextTx(), detail, nv, d.timestamp())
	if err != nil {
		writeXML(w, http.StatusInternalServerError, []byte(internalError))
		return
	}
	writeXML(w, http.StatusOK, b)
}

// writeError sends an ERROR answer with its status and headers.
func (d *Dialect) writeError(w http.ResponseWriter, method string, e *apiError) {
	b, err := renderError(method, nextTx(), e, d.timestamp())
	if err != nil {
		writeXML(w, http.StatusInternalServerError, []byte(internalError))
		return
	}
	h := w.Header()
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", Challenge)
	}
	if e.status == http.StatusUnsupportedMediaType {
		h.Set("Accept-Post", formType)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeXML(w, e.status, b)
}

// writeXML sends an answer. Answers carry keys or per-request verdicts, so
// they are never cached.
func writeXML(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/xml; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away cannot be told
}
