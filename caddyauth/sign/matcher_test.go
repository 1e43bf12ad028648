package sign

import (
	"bytes"
	"math"
	"slices"
	"testing"
)

// TestMatcherAgreesWithVerifyAt (SEC-20, SEC-21): one Matcher answers any
// interleaving of seconds and body variants exactly as VerifyAt does for
// each, though it keys the HMAC once and resets it between tries; a match
// found after misses with other bodies is still found, and a try after a
// match still sees the fresh state.
func TestMatcherAgreesWithVerifyAt(t *testing.T) {
	key := []byte(wireKey)
	const now = int64(1_700_000_000)
	body := []byte(wireLegacyIn)
	other := []byte(`[{"name":"Acme","description":null}]`)
	big := bytes.Repeat([]byte("b"), 70_000)
	for _, sc := range []struct {
		name     string
		signedAt int64
		covered  []byte
	}{
		{"path only, offset 0", now, nil},
		{"body, offset 0", now, body},
		{"body, offset -3", now - 3, body},
		{"other body, offset +2", now + 2, other},
		{"big body, offset -1", now - 1, big},
	} {
		t.Run(sc.name, func(t *testing.T) {
			sig := AmatinoMAC(key, sc.signedAt, "/entities", sc.covered)
			m := NewMatcher(key, sig, "/entities", now)
			tries := []struct {
				off  int
				body []byte
			}{
				{0, nil}, {0, body}, {0, other}, {0, big}, {-1, nil}, {1, body}, {-1, big}, {2, other},
				{-3, body}, {-3, nil}, {0, nil}, {-3, body}, {2, other}, {-1, big}, {0, body}, {5, nil},
			}
			matched := 0
			for i, tr := range tries {
				want := VerifyAt(key, sig, now+int64(tr.off), "/entities", tr.body)
				if got := m.At(tr.off, tr.body); got != want {
					t.Fatalf("try %d (offset %d, %d-byte body): At = %v, VerifyAt = %v", i, tr.off, len(tr.body), got, want)
				}
				if want {
					matched++
				}
			}
			if matched == 0 {
				t.Fatal("test bug: the signed (second, body) is never tried")
			}
			if w := m.Work(); w.MACs != len(tries) {
				t.Errorf("Work().MACs = %d after %d tries", w.MACs, len(tries))
			}
		})
	}
}

// TestMatcherAroundOrder: Around is Search's order without offset 0, stops
// at the first match, and At(0) then Around tries exactly what Search
// tries.
func TestMatcherAroundOrder(t *testing.T) {
	key := []byte(wireKey)
	const now = int64(1_700_000_000)
	junk := bytes.Repeat([]byte{0xA5}, SignatureLen)
	var tried []int64
	m := NewMatcher(key, junk, "/p", now)
	m.onTry = func(ts int64) { tried = append(tried, ts) }
	if _, ok := m.Around(nil, 3); ok {
		t.Fatal("junk matched")
	}
	want := []int64{now - 1, now + 1, now - 2, now + 2, now - 3, now + 3}
	if !slices.Equal(tried, want) {
		t.Fatalf("Around tried %v, want %v", tried, want)
	}
	for _, w := range []int{0, -1, math.MinInt} {
		tried = tried[:0]
		if _, ok := m.Around(nil, w); ok || len(tried) != 0 {
			t.Errorf("window %d: Around = %v after %d tries, want nothing tried", w, ok, len(tried))
		}
	}

	for _, tc := range []struct {
		offset int
		tries  int // Around's own tries
	}{
		{-1, 1}, {1, 2}, {-2, 3}, {2, 4}, {-30, 59}, {30, 60},
	} {
		sig := AmatinoMAC(key, now+int64(tc.offset), "/p", nil)
		tried = tried[:0]
		m := NewMatcher(key, sig, "/p", now)
		m.onTry = func(ts int64) { tried = append(tried, ts) }
		if m.At(0, nil) {
			t.Fatalf("offset %d matched at 0", tc.offset)
		}
		off, ok := m.Around(nil, 30)
		if !ok || off != tc.offset || len(tried) != 1+tc.tries {
			t.Errorf("offset %d: Around = (%d, %v) after %d tries, want (%d, true) after %d", tc.offset, off, ok,
				len(tried)-1, tc.offset, tc.tries)
		}
		var searched []int64
		if off2, ok2 := search(key, sig, "/p", nil, now, 30, func(ts int64) { searched = append(searched, ts) }); off2 != off ||
			ok2 != ok || !slices.Equal(searched, tried) {
			t.Errorf("offset %d: search = (%d, %v) trying %v; At(0)+Around tried %v", tc.offset, off2, ok2, searched, tried)
		}
	}
}

// TestMatcherRefuses (SEC-21): an empty key or a signature that is not 64
// bytes never matches, costs no HMAC and never panics.
func TestMatcherRefuses(t *testing.T) {
	key := []byte(wireKey)
	const now = int64(1_700_000_000)
	good := AmatinoMAC(key, now, "/p", nil)
	for _, tc := range []struct {
		name string
		key  []byte
		sig  []byte
	}{
		{"nil key", nil, good},
		{"empty key", []byte{}, AmatinoMAC([]byte{}, now, "/p", nil)},
		{"nil sig", key, nil},
		{"63-byte sig", key, good[:63]},
		{"65-byte sig", key, append(bytes.Clone(good), 0)},
	} {
		m := NewMatcher(tc.key, tc.sig, "/p", now)
		if m.At(0, nil) || m.At(0, []byte("b")) {
			t.Errorf("%s: At matched", tc.name)
		}
		if _, ok := m.Around(nil, 30); ok {
			t.Errorf("%s: Around matched", tc.name)
		}
		if w := m.Work(); w != (Work{}) {
			t.Errorf("%s: Work = %+v, want none", tc.name, w)
		}
	}
}

// TestMatcherClockExtremes: a second that would overflow int64 is false
// and costs no HMAC; it never wraps around.
func TestMatcherClockExtremes(t *testing.T) {
	key := []byte("k")
	for _, tc := range []struct {
		name string
		now  int64
		off  int
	}{
		{"past max", math.MaxInt64, 1},
		{"before min", math.MinInt64, -1},
		{"far past max", math.MaxInt64 - 1, math.MaxInt},
	} {
		wrapped := AmatinoMAC(key, tc.now+int64(tc.off), "/p", nil) // what a wrap-around would match
		m := NewMatcher(key, wrapped, "/p", tc.now)
		if m.At(tc.off, nil) {
			t.Errorf("%s: At matched a wrapped second", tc.name)
		}
		if w := m.Work(); w.MACs != 0 {
			t.Errorf("%s: %d MACs for an out-of-range second", tc.name, w.MACs)
		}
	}
}

// TestMatcherWork: the counts are what was hashed, body variants apart.
func TestMatcherWork(t *testing.T) {
	key := []byte(wireKey)
	const now = int64(1_700_000_000)
	body := bytes.Repeat([]byte("x"), 1000)
	m := NewMatcher(key, bytes.Repeat([]byte{1}, SignatureLen), "/p", now)
	m.At(0, nil)
	m.At(0, body)
	m.At(0, []byte{}) // an empty body is the body-less variant
	m.Around(body, 2)
	want := Work{MACs: 3 + 4, BodyMACs: 1 + 4, BodyBytes: 5 * 1000}
	if got := m.Work(); got != want {
		t.Errorf("Work = %+v, want %+v", got, want)
	}
}

// FuzzMatcher (SEC-38): for any key, path, bodies and a sequence of tries,
// a Matcher answers every (second, variant) as VerifyAt does, and counts
// one MAC per in-range try with a usable key and signature.
//
// plan: each byte is one try; bits 0-5 the offset (-32…31), bit 6 whether
// the try covers body, bit 7 whether it covers alt instead.
func FuzzMatcher(f *testing.F) {
	f.Add([]byte(wireKey), wirePath, []byte(wireLegacyIn), []byte(nil), wireTS, int8(0), uint8(1), []byte{32, 32 | 64, 31, 31 | 64})
	f.Add([]byte(wireKey), wirePath, []byte(wireLegacyIn), []byte("x"), int64(math.MaxInt64), int8(-1), uint8(2), []byte{31, 33, 95, 159})
	f.Fuzz(func(t *testing.T, key []byte, path string, body, alt []byte, now int64, signOff int8, which uint8, plan []byte) {
		if len(plan) > 64 {
			plan = plan[:64]
		}
		var covered []byte
		switch which % 3 {
		case 1:
			covered = body
		case 2:
			covered = alt
		}
		signedAt, inRange := addOffset(now, int(signOff))
		if !inRange {
			return
		}
		sig := refMAC(key, signedAt, path, covered)
		m := NewMatcher(key, sig, path, now)
		macs := 0
		for i, p := range plan {
			off := int(p&63) - 32
			var b []byte
			switch {
			case p&128 != 0:
				b = alt
			case p&64 != 0:
				b = body
			}
			ts, ok := refAdd(now, off)
			want := ok && len(key) > 0 && VerifyAt(key, sig, ts, path, b)
			if got := m.At(off, b); got != want {
				t.Fatalf("try %d (offset %d): At = %v, VerifyAt = %v", i, off, got, want)
			}
			if ok && len(key) > 0 {
				macs++
			}
		}
		if got := m.Work().MACs; got != macs {
			t.Fatalf("Work().MACs = %d, want %d", got, macs)
		}
	})
}
