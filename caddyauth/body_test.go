package caddyauth_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// SEC-34: ReadBody returns the body byte for byte within the limit, refuses
// one over it (declared or not), and reports a body shorter than declared.
func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	tests := []struct {
		name     string
		declared int64
		r        io.Reader
		max      int64
		want     []byte
		wantErr  error
		anyErr   bool
	}{
		{"declared, within", 1000, bytes.NewReader(body), 1000, body, nil, false},
		{"declared, over", 1000, bytes.NewReader(body), 999, nil, caddyauth.ErrBodyTooLarge, false},
		{"undeclared, within", -1, bytes.NewReader(body), 1000, body, nil, false},
		{"undeclared, over", -1, bytes.NewReader(body), 999, nil, caddyauth.ErrBodyTooLarge, false},
		{"declared shorter than sent", 10, bytes.NewReader(body), 1000, nil, caddyauth.ErrBodyTooLarge, false},
		{"sent shorter than declared", 1000, strings.NewReader("abc"), 1000, nil, nil, true},
		{"empty", 0, http.NoBody, 10, nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "/", nil)
			r.Body = io.NopCloser(tc.r)
			r.ContentLength = tc.declared
			got, err := caddyauth.ReadBody(r, tc.max)
			switch {
			case tc.anyErr:
				if err == nil {
					t.Fatalf("no error, got %d bytes", len(got))
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(got, tc.want):
				t.Fatalf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}
