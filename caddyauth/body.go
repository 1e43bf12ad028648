package caddyauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrBodyTooLarge means a body was over the limit its reader was given.
var ErrBodyTooLarge = errors.New("request body too large")

// ReadBody reads the whole body of r if it is at most max bytes. A declared
// length over max is refused before anything is read, and an undeclared one
// is read no further than max+1 bytes (SEC-34). A missing body reads as nil.
func ReadBody(r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}
