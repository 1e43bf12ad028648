package amatino_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

// TestVerifyAcceptedSet_SEC20 pins which signatures Verify accepts, as a
// model written apart from the code, over every combination that the
// order of the variant search could disturb: the signed variant (path only,
// raw body, compact JSON body, forged), the second it was made at (0, ±k,
// the window's edges, just outside), with and without X-Timestamp, how the
// body travels (none, declared length, chunked), and the options (legacy
// body signatures on or off, require_body_signature, a max_body below the
// body, a session under the signature lock). SEC-20: nothing outside the
// model verifies; SEC-22: X-Timestamp names the only second tried, and one
// outside the window is clock_skew; SEC-34: a body over max_body is 413
// only when a body variant had to be checked; SEC-28: an accepted body is
// forwarded byte for byte.
func TestVerifyAcceptedSet_SEC20(t *testing.T) {
	const (
		w    = 5 // window, seconds
		path = "/entities"
	)
	body := []byte(wireLegacyIn)
	compact, ok := sign.PythonCompactJSON(body)
	if !ok || bytes.Equal(compact, body) {
		t.Fatal("test bug: the body must have a compact form that differs from it")
	}
	off := false
	window := time.Duration(w) * time.Second

	type variant int
	const (
		pathOnly variant = iota
		rawBody
		compactBody
		forged
	)
	variantNames := []string{"path", "raw body", "compact", "forged"}
	type transport int
	const (
		noBody transport = iota
		declared
		chunked
	)
	transportNames := []string{"no body", "declared", "chunked"}

	configs := []struct {
		name    string
		opts    amatino.Options
		locked  bool
		legacy  bool
		require bool
		maxBody int
	}{
		{"default", amatino.Options{Window: window}, false, true, false, amatino.DefaultMaxBody},
		{"default, locked", amatino.Options{Window: window}, true, true, false, amatino.DefaultMaxBody},
		{"legacy off", amatino.Options{Window: window, LegacyBodySignatures: &off}, false, false, false, amatino.DefaultMaxBody},
		{"legacy off, locked", amatino.Options{Window: window, LegacyBodySignatures: &off}, true, false, false, amatino.DefaultMaxBody},
		{"require body", amatino.Options{Window: window, RequireBodySignature: true}, false, true, true, amatino.DefaultMaxBody},
		{"require body, locked", amatino.Options{Window: window, RequireBodySignature: true}, true, true, true, amatino.DefaultMaxBody},
		{"max_body below the body", amatino.Options{Window: window, MaxBody: 16}, false, true, false, 16},
	}
	offsets := []int{0, -1, 1, -2, 3, -w, w, -w - 1, w + 1}

	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			var e *env
			if cfg.locked {
				e = lockedWireEnv(t, cfg.opts, path)
			} else {
				e = newEnv(t, cfg.opts)
				e.wireSession(t)
			}
			var accepted, refused int
			for vr := pathOnly; vr <= forged; vr++ {
				for tr := noBody; tr <= chunked; tr++ {
					for _, k := range offsets {
						for _, withTS := range []bool{false, true} {
							name := fmt.Sprintf("%s, %s, offset %+d, X-Timestamp %v", variantNames[vr], transportNames[tr], k, withTS)
							ts := wireTS + int64(k)
							var sig string
							switch vr {
							case pathOnly:
								sig = sigAt(wireKey, ts, path, nil)
							case rawBody:
								sig = sigAt(wireKey, ts, path, body)
							case compactBody:
								sig = sigAt(wireKey, ts, path, compact)
							case forged:
								sig = sigAt("not the key", ts, path, nil)
							}
							method, sent := http.MethodPost, body
							if tr == noBody {
								method, sent = http.MethodGet, nil
							}
							r := signed(method, path, wireSessionID, sig, sent)
							if tr == chunked {
								r.ContentLength = -1
								r.TransferEncoding = []string{"chunked"}
							}
							if withTS {
								r.Header.Set("X-Timestamp", strconv.FormatInt(ts, 10))
							}

							// The model.
							hasBody := tr != noBody
							overMax := hasBody && len(body) > cfg.maxBody
							radius := w
							if cfg.locked && !withTS {
								radius = 1
							}
							inWindow := -radius <= k && k <= radius
							var canMatch bool
							switch vr {
							case pathOnly:
								canMatch = !cfg.require
							case rawBody, compactBody:
								canMatch = cfg.legacy && hasBody && !overMax
							}
							wantStatus, wantCode := http.StatusOK, ""
							switch {
							case withTS && (k < -w || k > w):
								wantStatus, wantCode = http.StatusUnauthorized, caddyauth.CodeClockSkew
							case canMatch && inWindow:
							case cfg.legacy && hasBody && overMax:
								wantStatus, wantCode = http.StatusRequestEntityTooLarge, caddyauth.CodeBodyTooLarge
							default:
								wantStatus, wantCode = http.StatusUnauthorized, caddyauth.CodeBadSignature
							}

							v, ref := e.verify(r)
							if wantStatus != http.StatusOK {
								refused++
								if ref == nil {
									t.Errorf("%s: verified (offset %d), want %d %s", name, v.Offset, wantStatus, wantCode)
									continue
								}
								if ref.Status != wantStatus || ref.Code != wantCode {
									t.Errorf("%s: refused %d %s, want %d %s", name, ref.Status, ref.Code, wantStatus, wantCode)
								}
								if wantCode == caddyauth.CodeBadSignature {
									wantResult := caddyauth.ResultBadSignature
									if cfg.locked {
										wantResult = caddyauth.ResultLocked
									}
									if ref.Result != wantResult {
										t.Errorf("%s: result %q, want %q", name, ref.Result, wantResult)
									}
								}
								continue
							}
							accepted++
							if ref != nil {
								t.Errorf("%s: refused %d %s (%s), want verified", name, ref.Status, ref.Code, ref.Message)
								continue
							}
							if v.Offset != k {
								t.Errorf("%s: Offset %d, want %d", name, v.Offset, k)
							}
							if hasBody {
								got, err := io.ReadAll(r.Body)
								if err != nil || !bytes.Equal(got, body) {
									t.Errorf("%s: forwarded body %q, %v; want %q", name, got, err, body)
								}
							}
						}
					}
				}
			}
			// Both outcomes occur in every configuration, so neither half
			// of the model goes untested.
			if accepted == 0 || refused == 0 {
				t.Fatalf("%d accepted, %d refused", accepted, refused)
			}
		})
	}
}
