package sign

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"math"
	"slices"
	"strconv"
	"testing"
)

// maxFuzzWindow bounds the window FuzzSearch tries: the search cost is
// linear in it, and the configuration caps it far lower in seconds than
// what matters here, which is the order and the edges.
const maxFuzzWindow = 64

// FuzzSearch (SEC-38): for any key, path, body, server second and window,
// Search finds exactly what a plain loop over VerifyAt finds, trying the
// offsets 0, -1, +1, -2, +2, … in that order and stopping at the first
// match; a signature made inside the window is always found; an empty key,
// a wrong-length signature or a negative window never match; and every
// match is an HMAC-SHA512 over the decimal second, the path and the body,
// computed here without the package's code.
//
// mode bit 0: use forged as the signature instead of signing at now+signOff;
// bit 1: nil body (current clients) instead of body; bit 2: negative window.
func FuzzSearch(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzSearch; this one pins the WIRE.md
	// vector so the target is meaningful even without them.
	f.Add([]byte(wireKey), wirePath, []byte(nil), wireTS, uint8(30), int16(0), []byte(nil), uint8(2))
	f.Fuzz(func(t *testing.T, key []byte, path string, body []byte, now int64, window uint8, signOff int16,
		forged []byte, mode uint8) {
		w := int(window) % (maxFuzzWindow + 1)
		if mode&4 != 0 {
			w = -1 - w
		}
		var covered []byte
		if mode&2 == 0 {
			covered = body
		}
		signedAt, signedInRange := addOffset(now, int(signOff))
		sig := forged
		if mode&1 == 0 {
			if !signedInRange {
				return // no such second to sign at
			}
			sig = refMAC(key, signedAt, path, covered)
		}

		var tries []int64
		off, ok := search(key, sig, path, covered, now, w, func(ts int64) { tries = append(tries, ts) })
		if got, gotOK := Search(key, sig, path, covered, now, w); got != off || gotOK != ok {
			t.Fatalf("Search = %d, %v; the hooked search = %d, %v", got, gotOK, off, ok)
		}

		// The reference: every offset in order, through VerifyAt alone.
		wantOff, wantOK := 0, false
		var wantTries []int64
		if len(sig) == SignatureLen && len(key) > 0 && w >= 0 {
			for _, k := range searchOrder(w) {
				ts, inRange := refAdd(now, k)
				if !inRange {
					continue
				}
				wantTries = append(wantTries, ts)
				if VerifyAt(key, sig, ts, path, covered) {
					wantOff, wantOK = k, true
					break
				}
			}
		}
		if ok != wantOK || off != wantOff {
			t.Fatalf("Search(now=%d, window=%d) = %d, %v; the VerifyAt loop finds %d, %v", now, w, off, ok, wantOff, wantOK)
		}
		if !slices.Equal(tries, wantTries) {
			t.Fatalf("Search tried seconds %v, want %v (order 0, -1, +1, …, stop at the first match)", tries, wantTries)
		}
		if len(tries) > 2*max(w, 0)+1 {
			t.Fatalf("%d tries for window %d", len(tries), w)
		}

		if ok {
			ts, _ := refAdd(now, off)
			if !hmac.Equal(sig, refMAC(key, ts, path, covered)) {
				t.Fatalf("match at offset %d is not the HMAC of that second", off)
			}
		}
		// Completeness: a signature made inside the window is found.
		if mode&1 == 0 && len(key) > 0 && w >= 0 && int(signOff) >= -w && int(signOff) <= w && !ok {
			t.Fatalf("a signature made at offset %d was not found in window %d", signOff, w)
		}
		// VerifyAt agrees with the independent HMAC wherever it is asked.
		if len(key) > 0 && signedInRange {
			want := len(sig) == SignatureLen && hmac.Equal(sig, refMAC(key, signedAt, path, covered))
			if got := VerifyAt(key, sig, signedAt, path, covered); got != want {
				t.Fatalf("VerifyAt(ts=%d) = %v, the HMAC says %v", signedAt, got, want)
			}
		}
		if len(key) == 0 && (ok || VerifyAt(key, sig, now, path, covered)) {
			t.Fatal("an empty key matched")
		}
	})
}

// refMAC is HMAC-SHA512(key, decimal ts ++ path ++ body), written from
// WIRE.md without AmatinoMAC or the verifier.
func refMAC(key []byte, ts int64, path string, body []byte) []byte {
	var msg bytes.Buffer
	msg.WriteString(strconv.FormatInt(ts, 10))
	msg.WriteString(path)
	msg.Write(body)
	m := hmac.New(sha512.New, key)
	m.Write(msg.Bytes())
	return m.Sum(nil)
}

// searchOrder lists the offsets of a window in the documented order.
func searchOrder(w int) []int {
	out := []int{0}
	for k := 1; k <= w; k++ {
		out = append(out, -k, k)
	}
	return out
}

// refAdd is now+off, false on int64 overflow, written apart from addOffset.
func refAdd(now int64, off int) (int64, bool) {
	switch {
	case off > 0 && now > math.MaxInt64-int64(off):
		return 0, false
	case off < 0 && now < math.MinInt64-int64(off):
		return 0, false
	}
	return now + int64(off), true
}
