package amatino_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/dialect/amatino"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/sign"
)

// readCounter is a request body that counts the bytes read from it.
type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestVerifyMACWork pins the order of the variant search by the MAC work
// each kind of request costs, counted (not timed) through the test hook:
// a synced current client pays one HMAC and its body is never read; a
// synced legacy client pays two (body-less, then its body at the same
// second) rather than a failed window search first; no second is hashed
// twice for one body variant; a compact-JSON variant equal to the body is
// not searched again; X-Timestamp tries one second per variant; the
// signature lock narrows every variant to ±1. (Cost only: the accepted set
// itself, SEC-20, is pinned by TestVerifyAcceptedSet_SEC20.)
func TestVerifyMACWork(t *testing.T) {
	const path = "/entities"
	small := []byte(wireLegacyIn) // its compact form differs
	compact, _ := sign.PythonCompactJSON(small)
	already := []byte(`{"a":1}`) // already compact
	big := bytes.Repeat([]byte("a"), 64<<10)
	legacyOff := false
	at := func(off int64, body []byte) string { return sigAt(wireKey, wireTS+off, path, body) }
	forged := sigAt("not the key", wireTS, path, nil)

	cases := []struct {
		name      string
		opts      amatino.Options
		locked    bool
		body      []byte // nil: GET without a body
		chunked   bool
		sig       string
		ts        int64 // X-Timestamp offset, when withTS
		withTS    bool
		wantOK    bool
		want      sign.Work
		wantRead  bool // the body was read
		wantReads int  // 0: not checked
	}{
		{name: "GET, synced", body: nil, sig: at(0, nil), wantOK: true,
			want: sign.Work{MACs: 1}},
		{name: "path-signed POST 64 KiB, synced", body: big, sig: at(0, nil), wantOK: true,
			want: sign.Work{MACs: 1}},
		{name: "legacy body 64 KiB, synced", body: big, sig: at(0, big), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 2, BodyMACs: 1, BodyBytes: 64 << 10}},
		{name: "legacy body at -2", body: small, sig: at(-2, small), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 1 + 1 + 60 + 3, BodyMACs: 1 + 3, BodyBytes: 4 * int64(len(small))}},
		{name: "legacy body at +30 (window edge)", body: small, sig: at(30, small), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 1 + 1 + 60 + 60, BodyMACs: 61, BodyBytes: 61 * int64(len(small))}},
		{name: "path-signed POST at +3: one body MAC at offset 0", body: small, sig: at(3, nil), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 1 + 1 + 6, BodyMACs: 1, BodyBytes: int64(len(small))}},
		{name: "compact variant, synced", body: small, sig: at(0, compact), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 61 + 61 + 1, BodyMACs: 61 + 1, BodyBytes: 61*int64(len(small)) + int64(len(compact))}},
		{name: "forged, with a body", body: small, sig: forged, wantRead: true,
			want: sign.Work{MACs: 3 * 61, BodyMACs: 2 * 61, BodyBytes: 61 * int64(len(small)+len(compact))}},
		{name: "forged, body already compact: no second compact search", body: already, sig: forged, wantRead: true,
			want: sign.Work{MACs: 2 * 61, BodyMACs: 61, BodyBytes: 61 * int64(len(already))}},
		{name: "legacy body, X-Timestamp +7", body: small, sig: at(7, small), ts: 7, withTS: true, wantOK: true, wantRead: true,
			want: sign.Work{MACs: 2, BodyMACs: 1, BodyBytes: int64(len(small))}},
		{name: "forged, X-Timestamp", body: small, sig: forged, withTS: true, wantRead: true,
			want: sign.Work{MACs: 3, BodyMACs: 2, BodyBytes: int64(len(small) + len(compact))}},
		{name: "chunked legacy body, synced: read only after the body-less window", body: small, chunked: true,
			sig: at(0, small), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 61 + 1, BodyMACs: 1, BodyBytes: int64(len(small))}},
		{name: "chunked path-signed POST at -4: body not read", body: small, chunked: true, sig: at(-4, nil), wantOK: true,
			want: sign.Work{MACs: 8}},
		{name: "require body, synced", opts: amatino.Options{RequireBodySignature: true}, body: small, sig: at(0, small),
			wantOK: true, wantRead: true, want: sign.Work{MACs: 1, BodyMACs: 1, BodyBytes: int64(len(small))}},
		{name: "legacy off, path-signed POST at +3: body not read", opts: amatino.Options{LegacyBodySignatures: &legacyOff},
			body: small, sig: at(3, nil), wantOK: true, want: sign.Work{MACs: 7}},
		{name: "declared body over max_body, path-signed at -1: body not read", opts: amatino.Options{MaxBody: 16},
			body: small, sig: at(-1, nil), wantOK: true, want: sign.Work{MACs: 2}},
		{name: "locked, forged with a body: ±1 for every variant", locked: true, body: small, sig: forged, wantRead: true,
			want: sign.Work{MACs: 3 * 3, BodyMACs: 2 * 3, BodyBytes: 3 * int64(len(small)+len(compact))}},
		{name: "locked, legacy body synced", locked: true, body: small, sig: at(0, small), wantOK: true, wantRead: true,
			want: sign.Work{MACs: 2, BodyMACs: 1, BodyBytes: int64(len(small))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			if tc.locked {
				e = lockedWireEnv(t, tc.opts, path)
			} else {
				e = newEnv(t, tc.opts)
				e.wireSession(t)
			}
			method := http.MethodGet
			var rc *readCounter
			if tc.body != nil {
				method = http.MethodPost
				rc = &readCounter{r: bytes.NewReader(tc.body)}
			}
			r := signed(method, path, wireSessionID, tc.sig, nil)
			if rc != nil {
				r.Body = io.NopCloser(rc)
				r.ContentLength = int64(len(tc.body))
				if tc.chunked {
					r.ContentLength = -1
				}
			}
			if tc.withTS {
				r.Header.Set("X-Timestamp", strconv.FormatInt(wireTS+tc.ts, 10))
			}
			var got []sign.Work
			amatino.SetWorkHook(e.d, func(w sign.Work) { got = append(got, w) })
			v, ref := e.verify(r)
			if tc.wantOK {
				wantOK(t, v, ref)
			} else {
				wantRefusal(t, ref, http.StatusUnauthorized, caddyauth.CodeBadSignature)
			}
			if len(got) != 1 {
				t.Fatalf("hook called %d times, want 1", len(got))
			}
			if got[0] != tc.want {
				t.Errorf("MAC work %+v, want %+v", got[0], tc.want)
			}
			if rc != nil && (rc.n > 0) != tc.wantRead {
				t.Errorf("%d body bytes read, want read=%v", rc.n, tc.wantRead)
			}
		})
	}
}

// countingClock counts the reads of a fake clock.
type countingClock struct {
	*caddyauth.FakeClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.FakeClock.Now()
}

// TestVerifyClockReads counts the clock reads of one Verify with the
// default abuse controls (signature lock on) and idle_reset_on_use:
// Verify itself reads the clock once; what remains are the engine calls
// that read it themselves (Session, the replay guard), with the signature
// lock consulted only when the current second fails and Manager.Used only
// once a touch is due. It was five for a synced GET before. Idle reset
// still touches the session once the touch interval has passed (SEC-11).
func TestVerifyClockReads(t *testing.T) {
	for _, mode := range []amatino.ReplayMode{amatino.ReplayObserve, amatino.ReplayReject} {
		t.Run(string(mode), func(t *testing.T) {
			clk := &countingClock{FakeClock: caddyauth.NewFakeClock(time.Unix(wireTS, 0))}
			users, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 101, Email: "alice@example.com",
				PasswordHash: enginetest.Hash(t, alicePW)}})
			if err != nil {
				t.Fatal(err)
			}
			store := enginetest.NewStore()
			m, err := caddyauth.NewManager(caddyauth.Config{Store: store, Users: users, Hasher: enginetest.CheapHasher(t),
				Sealer: enginetest.NewSealer(t), Clock: clk, Abuse: caddyauth.NewAbuse(caddyauth.AbuseConfig{}, nil, clk)})
			if err != nil {
				t.Fatal(err)
			}
			idle := 10 * time.Minute
			d, err := amatino.New(m, amatino.Options{Replay: mode, IdleTimeout: idle, IdleResetOnUse: true})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := users.UserByID(context.Background(), 101)
			if _, err := m.StartSession(context.Background(), caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
				Kind: caddyauth.KindHMACKey, ID: wireSessionID, Secret: []byte(wireKey), Lifetime: time.Hour, IdleTimeout: idle}); err != nil {
				t.Fatal(err)
			}
			verify := func(p string, off int64) (int64, *caddyauth.Refusal) {
				sec := clk.FakeClock.Now().Unix()
				r := signed(http.MethodGet, p, wireSessionID, sigAt(wireKey, sec+off, p, nil), nil)
				before := clk.reads.Load()
				_, ref := d.Verify(r, amatino.SignedPath(r))
				return clk.reads.Load() - before, ref
			}
			if _, ref := verify("/warm", 0); ref != nil { // fills the key cache
				t.Fatal(ref.Code)
			}
			for _, tc := range []struct {
				name string
				path string
				off  int64
				max  int64
			}{
				{"synced", "/a", 0, 3},
				{"one second off: the lock is looked up", "/b", -1, 4},
			} {
				n, ref := verify(tc.path, tc.off)
				if ref != nil {
					t.Fatalf("%s: refused %s", tc.name, ref.Code)
				}
				if n > tc.max {
					t.Errorf("%s: %d clock reads, want at most %d", tc.name, n, tc.max)
				}
				t.Logf("%s: %d clock reads", tc.name, n)
			}
			touches := store.Touches.Load()
			clk.Advance(caddyauth.TouchInterval(idle))
			if _, ref := verify("/c", 0); ref != nil {
				t.Fatal(ref.Code)
			}
			if store.Touches.Load() != touches+1 {
				t.Errorf("idle reset on use: %d touches once the interval passed, want 1", store.Touches.Load()-touches)
			}
		})
	}
}
