package caddyauth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error codes of refusals. They appear in JSON bodies and logs, so they are
// a stable, closed set.
//
// #nosec G101 -- error codes such as "bad_credentials", not credentials.
const (
	CodeMissingCredentials   = "missing_credentials"
	CodeMalformedCredentials = "malformed_credentials"
	CodeInvalidRequest       = "invalid_request"
	CodeUnknownSession       = "unknown_session"
	CodeSessionExpired       = "session_expired"
	CodeBadSignature         = "bad_signature"
	CodeClockSkew            = "clock_skew"
	CodeReplay               = "replay"
	CodeBadCredentials       = "bad_credentials"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMedia     = "unsupported_media_type"
	CodeStoreUnavailable     = "store_unavailable"
	CodeBusy                 = "busy"
	CodeThrottled            = "throttled"
	CodeMethodNotAllowed     = "method_not_allowed"
)

// Request results: the closed label set of
// caddy_sessiongate_requests_total{result}.
const (
	ResultOK               = "ok"
	ResultMissing          = "missing"
	ResultMalformed        = "malformed"
	ResultUnknownSession   = "unknown_session"
	ResultExpired          = "expired"
	ResultBadSignature     = "bad_signature"
	ResultBadToken         = "bad_token"
	ResultReplay           = "replay"
	ResultLocked           = "locked"
	ResultStoreUnavailable = "store_unavailable"
)

// Refusal is an answer that stops a request: the status, the JSON error body
// and the metric result it counts as.
type Refusal struct {
	Status  int
	Code    string
	Message string
	// Result is the requests_total result label.
	Result string
	// RetryAfter, in seconds, is sent as Retry-After when > 0.
	RetryAfter int
	// Challenges are WWW-Authenticate values, for 401s.
	Challenges []string
	// Missing, when not empty, is sent as the body's "missing" list: what
	// a signature must also cover (insufficient_coverage).
	Missing []string
	// ServerTime, when not zero, is sent as the body's "server_time" (Unix
	// seconds) with "skew" (Skew in whole seconds, positive when the
	// client's clock is ahead), so a client can correct its clock.
	ServerTime time.Time
	// Skew is sent with ServerTime; see there.
	Skew time.Duration
	// Header holds further response header fields, such as
	// Accept-Signature.
	Header http.Header
}

// Error makes a Refusal an error value for logs; it holds no secrets.
func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	// The optional members are omitted when unset, so answers without them
	// keep their exact two-member form.
	Missing    []string `json:"missing,omitempty"`
	ServerTime *int64   `json:"server_time,omitempty"`
	Skew       *int64   `json:"skew,omitempty"`
}

// Write sends the refusal as `{"error": code, "message": text}`, plus
// "missing", "server_time" and "skew" when set.
func (r *Refusal) Write(w http.ResponseWriter) {
	h := w.Header()
	for _, c := range r.Challenges {
		h.Add("WWW-Authenticate", c)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
	body := errorBody{Error: r.Code, Message: r.Message, Missing: r.Missing}
	if !r.ServerTime.IsZero() {
		now, skew := r.ServerTime.Unix(), int64(r.Skew/time.Second)
		body.ServerTime, body.Skew = &now, &skew
	}
	WriteJSON(w, r.Status, body)
}

// WriteJSON writes v as a JSON answer with the given status. Answers are
// never cached: they carry credentials or per-request verdicts.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away cannot be told; the status is logged
}

// Unavailable is the refusal for a store or directory that cannot answer:
// 503 with Retry-After, never 401 (REL-01).
func Unavailable() *Refusal {
	return &Refusal{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable,
		Message: "session store temporarily unavailable, retry shortly", Result: ResultStoreUnavailable, RetryAfter: 1}
}
