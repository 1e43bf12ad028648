package sign

import (
	"bytes"
	"testing"
)

// The hot path is Search at offset 0 for current clients (body not signed).
// The worst case is a miss over the whole default window: 61 HMACs, which
// bounds what one forged request can cost the gateway. VerifyAt over a body
// is the cost of a body-covering legacy variant.

const benchNow = int64(1_700_000_000)

func BenchmarkSearchOffset0(b *testing.B) {
	key := []byte(wireKey)
	sig := AmatinoMAC(key, benchNow, "/entities", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Search(key, sig, "/entities", nil, benchNow, 30); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkSearchWorstCase(b *testing.B) {
	key := []byte(wireKey)
	sig := bytes.Repeat([]byte{0x5A}, SignatureLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Search(key, sig, "/entities", nil, benchNow, 30); ok {
			b.Fatal("junk matched")
		}
	}
}

func benchmarkVerifyAt(b *testing.B, n int) {
	key := []byte(wireKey)
	body := bytes.Repeat([]byte("a"), n)
	sig := AmatinoMAC(key, benchNow, "/entities", body)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyAt(key, sig, benchNow, "/entities", body) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkVerifyAt1KiB(b *testing.B)  { benchmarkVerifyAt(b, 1<<10) }
func BenchmarkVerifyAt64KiB(b *testing.B) { benchmarkVerifyAt(b, 64<<10) }

func BenchmarkDecodeSignature(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignature(wireSig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPythonCompactJSON1KiB is the extra cost of trying the legacy
// compact-JSON variant on a typical small body.
func BenchmarkPythonCompactJSON1KiB(b *testing.B) {
	var body bytes.Buffer
	body.WriteString("[")
	for i := 0; body.Len() < 1000; i++ {
		if i > 0 {
			body.WriteString(", ")
		}
		body.WriteString(`{"name": "Acme \u00e9", "amount": 12.5, "id": 123456, "tags": ["a", "b"], "note": null}`)
	}
	body.WriteString("]")
	in := body.Bytes()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := PythonCompactJSON(in); !ok {
			b.Fatal("refused")
		}
	}
}
