package caddyauth_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// FuzzParsePublicKeyBase64 (SEC-38): ParsePublicKeyBase64 accepts exactly
// what refPublicKey, a strict reference written here from RFC 4648 and
// RFC 8032, accepts, with the same bytes; it never panics; its error is a
// FieldError that does not echo the input; and every real key's padded
// standard base64 round-trips. mode 0 parses s as given; mode 1 encodes
// the public key of seed (a real key pair); mode 2 encodes the 32 bytes of
// seed as they are (any point, or none).
func FuzzParsePublicKeyBase64(f *testing.F) {
	f.Add("ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=", []byte(nil), uint8(0))
	f.Fuzz(func(t *testing.T, s string, seed []byte, mode uint8) {
		switch mode % 3 {
		case 1:
			pub := ed25519.NewKeyFromSeed(fit32(seed)).Public().(ed25519.PublicKey)
			s = base64.StdEncoding.EncodeToString(pub)
			k, err := caddyauth.ParsePublicKeyBase64(s)
			if err != nil || !bytes.Equal(k, pub) {
				t.Fatalf("a real public key %s did not round-trip: %x, %v", s, k, err)
			}
		case 2:
			s = base64.StdEncoding.EncodeToString(fit32(seed))
		}
		got, err := caddyauth.ParsePublicKeyBase64(s)
		want, why := refPublicKey(s)
		switch {
		case err == nil && want == nil:
			t.Fatalf("accepted %q, which the reference refuses: %s", s, why)
		case err != nil && want != nil:
			t.Fatalf("refused %q (%v), which the reference accepts", s, err)
		case err == nil && !bytes.Equal(got, want):
			t.Fatalf("%q decoded to %x, the reference to %x", s, got, want)
		case err == nil && base64.StdEncoding.EncodeToString(got) != s:
			t.Fatalf("accepted %q, not the one spelling of its bytes", s)
		}
		if err != nil {
			var fe *caddyauth.FieldError
			if got != nil || !errors.As(err, &fe) {
				t.Fatalf("refusal of %q: %x, %T %v", s, got, err, err)
			}
			// Only inputs of the right length get past the first check;
			// shorter ones could match the fixed message by chance.
			if len(s) == 44 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q echoes the input", err)
			}
		}
	})
}

// fit32 makes 32 bytes of b: cut, or padded with zeros.
func fit32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out, b)
	return out
}

// The curve: -x² + y² = 1 + d·x²·y² over GF(p), p = 2^255 - 19.
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edD = func() *big.Int { // d = -121665/121666
		d := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, edP)
	}()
	edSqrtM1 = new(big.Int).Exp(big.NewInt(2), new(big.Int).Rsh(new(big.Int).Sub(edP, big.NewInt(1)), 2), edP)
)

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// refPublicKey is the strict reference: 44 characters, 43 of the standard
// alphabet then one '=', the last symbol's two spare bits zero (RFC 4648
// §3.5 canonical encoding), giving 32 bytes; not all zero; y < p (RFC 8032
// §5.1.3 canonical); and, when the bytes decode to a curve point, not a
// point of small order ([8]P = identity), counting x = 0 with the sign bit
// set as non-canonical. Bytes that are not a point at all are accepted, as
// the gateway's contract is syntax and weak keys only: ed25519.Verify
// refuses every signature under them.
func refPublicKey(s string) ([]byte, string) {
	if len(s) != 44 || s[43] != '=' {
		return nil, "not 44 characters ending in one ="
	}
	var acc big.Int
	for i := 0; i < 43; i++ {
		v := strings.IndexByte(b64Alphabet, s[i])
		if v < 0 {
			return nil, "character outside the standard alphabet"
		}
		acc.Lsh(&acc, 6).Or(&acc, big.NewInt(int64(v)))
	}
	// 43 symbols carry 258 bits: 256 of key and 2 that must be zero.
	if acc.Bit(0) != 0 || acc.Bit(1) != 0 {
		return nil, "non-canonical trailing bits"
	}
	acc.Rsh(&acc, 2)
	k := acc.FillBytes(make([]byte, 32)) // big-endian: k[0] is the first byte sent
	if bytes.Equal(k, make([]byte, 32)) {
		return nil, "all zero"
	}
	// The point encoding is little-endian; big.Int wants big-endian. Bit
	// 255, the top bit of the last byte, is x's sign.
	be := make([]byte, 32)
	for i := range k {
		be[i] = k[31-i]
	}
	sign := be[0]&0x80 != 0
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be)
	if y.Cmp(edP) >= 0 {
		return nil, "y is not below p"
	}
	x, onCurve := recoverX(y, sign)
	if !onCurve {
		return k, ""
	}
	if x.Sign() == 0 && sign {
		return nil, "x = 0 with the sign bit set"
	}
	px, py := x, y
	for range 3 {
		px, py = edAdd(px, py, px, py)
	}
	if px.Sign() == 0 && py.Cmp(big.NewInt(1)) == 0 {
		return nil, "small order"
	}
	return k, ""
}

// recoverX solves x² = (y² - 1) / (d·y² + 1) (RFC 8032 §5.1.3 steps 2–4).
func recoverX(y *big.Int, sign bool) (*big.Int, bool) {
	y2 := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := new(big.Int).Mul(edD, y2)
	v.Add(v, big.NewInt(1)).Mod(v, edP)
	x2 := new(big.Int).Mul(u, new(big.Int).ModInverse(v, edP))
	x2.Mod(x2, edP)
	// p ≡ 5 (mod 8): x = x2^((p+3)/8), times sqrt(-1) if that squares to -x2.
	x := new(big.Int).Exp(x2, new(big.Int).Rsh(new(big.Int).Add(edP, big.NewInt(3)), 3), edP)
	if new(big.Int).Mod(new(big.Int).Mul(x, x), edP).Cmp(x2) != 0 {
		x.Mul(x, edSqrtM1).Mod(x, edP)
	}
	if new(big.Int).Mod(new(big.Int).Mul(x, x), edP).Cmp(x2) != 0 {
		return nil, false
	}
	if (x.Bit(0) == 1) != sign {
		x.Sub(edP, x).Mod(x, edP)
	}
	return x, true
}

// edAdd is the complete twisted Edwards addition for a = -1 in affine
// coordinates.
func edAdd(x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	t := new(big.Int).Mul(x1, x2)
	t.Mul(t, y1).Mul(t, y2).Mul(t, edD).Mod(t, edP) // d·x1·x2·y1·y2
	xn := new(big.Int).Add(new(big.Int).Mul(x1, y2), new(big.Int).Mul(y1, x2))
	yn := new(big.Int).Add(new(big.Int).Mul(y1, y2), new(big.Int).Mul(x1, x2))
	xd := new(big.Int).Add(big.NewInt(1), t)
	yd := new(big.Int).Sub(big.NewInt(1), t)
	x3 := xn.Mul(xn, xd.ModInverse(xd.Mod(xd, edP), edP)).Mod(xn, edP)
	y3 := yn.Mul(yn, yd.ModInverse(yd.Mod(yd, edP), edP)).Mod(yn, edP)
	return x3, y3
}
