package password

import (
	"encoding/base64"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// cheapParams keep tests fast; they are far below the floor and are only
// used through unexported helpers or AllowWeakParams.
var cheapParams = Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

// Vectors produced by the reference implementation's CLI (Debian package
// argon2 0~20171227), e.g.
//
//	echo -n password | argon2 somesalt -id -t 1 -m 6 -p 1 -l 24 -e
//
// The first also matches x/crypto's own test vector (argon2id, t=1, m=64,
// p=1: 655ad15e…), a second independent source.
var referenceVectors = []struct {
	name, phc, password string
	big                 bool // 64 MiB; skipped with -short
}{
	{"m64_t1_p1", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "password", false},
	{"m1024_t2_p2_key32", "$argon2id$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$B7Lg7r4dPLYXx4DapqyQk7Mm1CJqwWvQAok8GA1r6Tc", "correct horse battery staple", false},
	{"m256_t2_p1_utf8", "$argon2id$v=19$m=256,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$8tv+dfiWUktayqB9SrhR3bXUrkw/Isa+l8xExWJK248", "pässwörd🔑", false},
	// The argon2id counterpart of the PHC README's argon2i example.
	{"m65536_t3_p4", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$30qzyWwD2lSUUirCQ2HnpzpY0e/8M99L", "password", true},
}

// mustNewPHC hashes password with p (bounds only, no floor) for tests.
func mustNewPHC(t *testing.T, password string, p Params) *PHC {
	t.Helper()
	h, err := newPHC(idKey, password, p)
	if err != nil {
		t.Fatalf("newPHC: %v", err)
	}
	return h
}

// mustParse parses s or fails the test.
func mustParse(t *testing.T, s string) *PHC {
	t.Helper()
	h, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return h
}

// enc is the PHC base64 encoding, for building test strings.
func enc(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// bytesOf returns n bytes of filler.
func bytesOf(n int) []byte { return []byte(strings.Repeat("s", n)) }

// SEC-01: the shipped defaults are the OWASP/ASVS minimum and pass the floor.
func TestDefaultParams_SEC01(t *testing.T) {
	want := Params{Time: 2, MemoryKiB: 19456, Threads: 1, SaltLen: 16, KeyLen: 32}
	if DefaultParams != want {
		t.Fatalf("DefaultParams = %+v, want %+v", DefaultParams, want)
	}
	if err := DefaultParams.Validate(); err != nil {
		t.Fatalf("DefaultParams.Validate() = %v", err)
	}
}

// SEC-01: params below the floor (or outside what Parse reads back) cannot be
// used to create hashes.
func TestParamsValidate_SEC01(t *testing.T) {
	d := DefaultParams
	with := func(f func(*Params)) Params { p := d; f(&p); return p }
	tests := []struct {
		name    string
		p       Params
		wantErr string // substring; "" means valid
	}{
		{"default", d, ""},
		{"t1_m46MiB", with(func(p *Params) { p.Time, p.MemoryKiB = 1, 46*1024 }), ""},
		{"t3_m64MiB_p4", with(func(p *Params) { p.Time, p.MemoryKiB, p.Threads = 3, 64*1024, 4 }), ""},
		{"max_bounds", Params{Time: 64, MemoryKiB: 4 << 20, Threads: 255, SaltLen: 64, KeyLen: 128}, ""},
		{"zero", Params{}, "parallelism"},
		{"t1_m19MiB", with(func(p *Params) { p.Time = 1 }), "floor"},
		{"t2_m18MiB", with(func(p *Params) { p.MemoryKiB = 18 * 1024 }), "floor"},
		{"t2_m19MiB_minus1", with(func(p *Params) { p.MemoryKiB = 19*1024 - 1 }), "floor"},
		{"t1_m45MiB", with(func(p *Params) { p.Time, p.MemoryKiB = 1, 45*1024 }), "floor"},
		{"t0_m46MiB", with(func(p *Params) { p.Time, p.MemoryKiB = 0, 46*1024 }), "floor"},
		{"m8MiB", with(func(p *Params) { p.MemoryKiB = 8 * 1024 }), "floor"},
		{"p0", with(func(p *Params) { p.Threads = 0 }), "parallelism"},
		{"salt8", with(func(p *Params) { p.SaltLen = 8 }), "salt"},
		{"salt15", with(func(p *Params) { p.SaltLen = 15 }), "salt"},
		{"key8", with(func(p *Params) { p.KeyLen = 8 }), "key"},
		{"salt65", with(func(p *Params) { p.SaltLen = 65 }), "salt of 65"},
		{"key129", with(func(p *Params) { p.KeyLen = 129 }), "key of 129"},
		{"t65", with(func(p *Params) { p.Time = 65 }), "t=65"},
		{"m_over_4GiB", with(func(p *Params) { p.MemoryKiB = 4<<20 + 1 }), "m=4194305"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate(%+v) = %v, want nil", tt.p, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate(%+v) = nil, want error containing %q", tt.p, tt.wantErr)
			case err != nil && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate(%+v) = %q, want it to contain %q", tt.p, err, tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "password: "):
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if tt.wantErr == "floor" && !strings.Contains(err.Error(), "m>=19456 KiB") {
				t.Errorf("floor error %q does not state the floor", err)
			}
		})
	}
}

func TestParamsAtLeast(t *testing.T) {
	d := DefaultParams
	with := func(f func(*Params)) Params { p := d; f(&p); return p }
	tests := []struct {
		name string
		p, q Params
		want bool
	}{
		{"equal", d, d, true},
		{"more_time", with(func(p *Params) { p.Time = 3 }), d, true},
		{"more_memory", with(func(p *Params) { p.MemoryKiB = 64 * 1024 }), d, true},
		{"more_threads_ignored", with(func(p *Params) { p.Threads = 4 }), d, true},
		{"fewer_threads_ignored", d, with(func(p *Params) { p.Threads = 4 }), true},
		{"less_time", with(func(p *Params) { p.Time = 1 }), d, false},
		{"less_memory_m8MiB", with(func(p *Params) { p.MemoryKiB = 8 * 1024 }), d, false},
		{"trade_t_for_m", with(func(p *Params) { p.Time, p.MemoryKiB = 1, 46*1024 }), d, false},
		{"shorter_salt", with(func(p *Params) { p.SaltLen = 8 }), d, false},
		{"shorter_key", with(func(p *Params) { p.KeyLen = 16 }), d, false},
		{"longer_salt_and_key", with(func(p *Params) { p.SaltLen, p.KeyLen = 32, 64 }), d, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.AtLeast(tt.q); got != tt.want {
				t.Fatalf("%+v.AtLeast(%+v) = %v, want %v", tt.p, tt.q, got, tt.want)
			}
		})
	}
}

// phcRE is the stored format SEC-01 asks for.
var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

// SEC-01: the same passphrase hashed twice gives two different strings (per
// credential salt), both in the PHC format with params at the floor, and
// both verify.
func TestHashDefaultFormatAndSalt_SEC01(t *testing.T) {
	const pw = "the same passphrase for two users"
	a, err := Hash(pw, DefaultParams)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	b, err := Hash(pw, DefaultParams)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if a == b {
		t.Fatalf("two hashes of one passphrase are equal: %s", a)
	}
	for _, s := range []string{a, b} {
		m := phcRE.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("hash %q is not $argon2id$v=19$m=…,t=…,p=…$salt$hash", s)
		}
		if m[1] != "19456" || m[2] != "2" || m[3] != "1" {
			t.Errorf("hash %q: m,t,p = %s,%s,%s, want 19456,2,1", s, m[1], m[2], m[3])
		}
		if strings.Contains(s, pw) {
			t.Errorf("hash %q contains the passphrase", s)
		}
		h := mustParse(t, s)
		if len(h.Salt) != 16 || len(h.Key) != 32 {
			t.Errorf("salt %d bytes, key %d bytes; want 16, 32", len(h.Salt), len(h.Key))
		}
		if !h.Verify(pw) {
			t.Errorf("Verify(right passphrase) = false for %s", s)
		}
		if h.Verify(pw + "x") {
			t.Errorf("Verify(wrong passphrase) = true for %s", s)
		}
	}
	if pa, pb := mustParse(t, a), mustParse(t, b); string(pa.Salt) == string(pb.Salt) {
		t.Errorf("two hashes share a salt")
	}
}

// SEC-01: Hash refuses to create a hash below the floor.
func TestHashRefusesWeakParams_SEC01(t *testing.T) {
	for _, p := range []Params{cheapParams, {Time: 2, MemoryKiB: 8 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}, {}} {
		if s, err := Hash("pw", p); err == nil {
			t.Errorf("Hash with %+v = %q, want error", p, s)
		}
	}
}

// SEC-02: long and non-ASCII passphrases are hashed whole; a prefix (bcrypt's
// 72 bytes) does not verify.
func TestNoTruncation_SEC02(t *testing.T) {
	long := strings.Repeat("abcdefghij", 20) // 200 chars
	emoji := strings.Repeat("🔑😀🎉🦊", 16)      // 64 characters, 256 bytes
	if n := utf8.RuneCountInString(emoji); n != 64 {
		t.Fatalf("emoji passphrase has %d characters, want 64", n)
	}
	tests := []struct {
		name, set, try string
		want           bool
	}{
		{"200_chars", long, long, true},
		{"200_chars_first_72", long, long[:72], false},
		{"200_chars_first_199", long, long[:199], false},
		{"200_chars_last_changed", long, long[:199] + "X", false},
		{"64_emoji", emoji, emoji, true},
		{"64_emoji_first_72_bytes", emoji, emoji[:72], false},
		{"64_emoji_first_63", emoji, string([]rune(emoji)[:63]), false},
		{"64_emoji_last_changed", emoji, string([]rune(emoji)[:63]) + "🐙", false},
		{"empty_not_equal_nonempty", "x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustNewPHC(t, tt.set, cheapParams)
			// Round-trip through the stored form, as the engine does.
			h = mustParse(t, h.String())
			if got := h.Verify(tt.try); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

// Hashes written by the reference argon2 CLI parse and verify.
func TestReferenceVectors(t *testing.T) {
	for _, v := range referenceVectors {
		t.Run(v.name, func(t *testing.T) {
			if v.big && testing.Short() {
				t.Skip("64 MiB vector skipped in -short mode")
			}
			h := mustParse(t, v.phc)
			if got := h.String(); got != v.phc {
				t.Errorf("String() = %q, want %q", got, v.phc)
			}
			if !h.Verify(v.password) {
				t.Errorf("Verify(%q) = false", v.password)
			}
			if h.Verify(v.password + " ") {
				t.Errorf("Verify(wrong) = true")
			}
		})
	}
}

// The hash in the PHC README's example belongs to argon2i; relabelled as
// argon2id it parses (the syntax is fine) but must not verify, showing the
// variant is really used.
func TestArgon2iHashRelabelledDoesNotVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB hash skipped in -short mode")
	}
	h := mustParse(t, "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	if h.Verify("password") {
		t.Fatal("argon2i key verified as argon2id")
	}
}

func TestParseValid(t *testing.T) {
	salt8, salt64 := enc(bytesOf(8)), enc(bytesOf(64))
	key16, key128 := enc(bytesOf(16)), enc(bytesOf(128))
	tests := []struct {
		name string
		s    string
		want Params
	}{
		{"cli_m64", referenceVectors[0].phc, Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 8, KeyLen: 24}},
		{"cli_m1024_p2", referenceVectors[1].phc, Params{Time: 2, MemoryKiB: 1024, Threads: 2, SaltLen: 16, KeyLen: 32}},
		{"cli_m65536_p4", referenceVectors[3].phc, Params{Time: 3, MemoryKiB: 65536, Threads: 4, SaltLen: 8, KeyLen: 24}},
		{"weak_old_m8MiB", "$argon2id$v=19$m=8192,t=1,p=1$" + salt8 + "$" + key16, Params{Time: 1, MemoryKiB: 8192, Threads: 1, SaltLen: 8, KeyLen: 16}},
		{"lower_bounds", "$argon2id$v=19$m=8,t=1,p=1$" + salt8 + "$" + key16, Params{Time: 1, MemoryKiB: 8, Threads: 1, SaltLen: 8, KeyLen: 16}},
		{"upper_bounds", "$argon2id$v=19$m=4194304,t=64,p=255$" + salt64 + "$" + key128, Params{Time: 64, MemoryKiB: 4194304, Threads: 255, SaltLen: 64, KeyLen: 128}},
		{"m_exactly_8p", "$argon2id$v=19$m=2040,t=1,p=255$" + salt8 + "$" + key16, Params{Time: 1, MemoryKiB: 2040, Threads: 255, SaltLen: 8, KeyLen: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustParse(t, tt.s)
			if h.Params != tt.want {
				t.Errorf("Params = %+v, want %+v", h.Params, tt.want)
			}
			if h.Version != 19 {
				t.Errorf("Version = %d, want 19", h.Version)
			}
			if int(h.SaltLen) != len(h.Salt) || int(h.KeyLen) != len(h.Key) {
				t.Errorf("SaltLen/KeyLen %d/%d disagree with %d/%d", h.SaltLen, h.KeyLen, len(h.Salt), len(h.Key))
			}
			if got := h.String(); got != tt.s {
				t.Errorf("String() = %q, want %q", got, tt.s)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	const (
		pre  = "$argon2id$v=19$"
		prm  = "m=64,t=1,p=1"
		salt = "c29tZXNhbHQ"                      // "somesalt"
		key  = "ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7" // 24 bytes
		good = pre + prm + "$" + salt + "$" + key
	)
	// Sanity: the base string is valid, so each case below fails for the one
	// reason it names.
	mustParse(t, good)

	tests := []struct{ name, s string }{
		{"empty", ""},
		{"just_dollar", "$"},
		{"no_leading_dollar", good[1:]},
		{"leading_space", " " + good},
		{"argon2i", "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"},
		{"argon2d", "$argon2d$v=19$" + prm + "$" + salt + "$" + key},
		{"uppercase_id", "$Argon2id$v=19$" + prm + "$" + salt + "$" + key},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"v16", "$argon2id$v=16$" + prm + "$" + salt + "$" + key},
		{"v019", "$argon2id$v=019$" + prm + "$" + salt + "$" + key},
		{"v_empty", "$argon2id$v=$" + prm + "$" + salt + "$" + key},
		{"missing_version", "$argon2id$" + prm + "$" + salt + "$" + key},
		{"missing_params", pre + salt + "$" + key},
		{"missing_hash", pre + prm + "$" + salt},
		{"empty_salt", pre + prm + "$$" + key},
		{"empty_hash", pre + prm + "$" + salt + "$"},
		{"trailing_dollar", good + "$"},
		{"extra_field", good + "$c29tZXNhbHQ"},
		{"keyid_param", pre + prm + ",keyid=abc$" + salt + "$" + key},
		{"reordered_tmp", pre + "t=1,m=64,p=1$" + salt + "$" + key},
		{"reordered_ptm", pre + "p=1,t=1,m=64$" + salt + "$" + key},
		{"missing_p", pre + "m=64,t=1$" + salt + "$" + key},
		{"duplicate_m", pre + "m=64,m=64,t=1$" + salt + "$" + key},
		{"trailing_comma", pre + prm + ",$" + salt + "$" + key},
		{"space_in_params", pre + "m=64, t=1,p=1$" + salt + "$" + key},
		{"uppercase_key", pre + "M=64,t=1,p=1$" + salt + "$" + key},
		{"m_empty", pre + "m=,t=1,p=1$" + salt + "$" + key},
		{"m_leading_zero", pre + "m=064,t=1,p=1$" + salt + "$" + key},
		{"t_leading_zero", pre + "m=64,t=01,p=1$" + salt + "$" + key},
		{"p_leading_zeros", pre + "m=64,t=1,p=001$" + salt + "$" + key},
		{"m_plus_sign", pre + "m=+64,t=1,p=1$" + salt + "$" + key},
		{"t_negative", pre + "m=64,t=-1,p=1$" + salt + "$" + key},
		{"p_minus_zero", pre + "m=64,t=1,p=-0$" + salt + "$" + key},
		{"m_hex", pre + "m=0x40,t=1,p=1$" + salt + "$" + key},
		{"m_underscore", pre + "m=6_4,t=1,p=1$" + salt + "$" + key},
		{"m_fullwidth_digits", pre + "m=６４,t=1,p=1$" + salt + "$" + key},
		{"m_overflow_uint64", pre + "m=99999999999999999999999,t=1,p=1$" + salt + "$" + key},
		{"m_2pow32_wraps_uint32", pre + "m=4294967296,t=1,p=1$" + salt + "$" + key},
		{"m_0", pre + "m=0,t=1,p=1$" + salt + "$" + key},
		{"m_7", pre + "m=7,t=1,p=1$" + salt + "$" + key},
		{"m_huge", pre + "m=4194305,t=1,p=1$" + salt + "$" + key},
		{"t_0", pre + "m=64,t=0,p=1$" + salt + "$" + key},
		{"t_65", pre + "m=64,t=65,p=1$" + salt + "$" + key},
		{"p_0", pre + "m=64,t=1,p=0$" + salt + "$" + key},
		{"p_256", pre + "m=4096,t=1,p=256$" + salt + "$" + key},
		{"m_below_8p", pre + "m=64,t=1,p=9$" + salt + "$" + key},
		{"salt_padded", pre + prm + "$" + salt + "=$" + key},
		{"hash_padded", pre + prm + "$" + salt + "$" + enc(bytesOf(16)) + "=="},
		{"salt_newline", pre + prm + "$c29t\nZXNhbHQ$" + key},
		{"salt_cr", pre + prm + "$c29tZXNhbHQ\r$" + key},
		{"hash_trailing_newline", good + "\n"},
		{"hash_space", pre + prm + "$" + salt + "$ " + key},
		{"hash_urlsafe_alphabet", pre + prm + "$" + salt + "$" + strings.ReplaceAll(key, "/", "_")},
		{"salt_nonzero_trailing_bits", pre + prm + "$c29tZXNhbHR$" + key},
		{"salt_impossible_length", pre + prm + "$c29tZXNhbHQxA$" + key},
		{"salt_nul", pre + prm + "$c29tZXNh\x00bHQ$" + key},
		{"salt_non_ascii", pre + prm + "$c29tZXNhbHé$" + key},
		{"salt_7_bytes", pre + prm + "$" + enc(bytesOf(7)) + "$" + key},
		{"salt_65_bytes", pre + prm + "$" + enc(bytesOf(65)) + "$" + key},
		{"key_15_bytes", pre + prm + "$" + salt + "$" + enc(bytesOf(15))},
		{"key_129_bytes", pre + prm + "$" + salt + "$" + enc(bytesOf(129))},
		{"too_long", pre + prm + "$" + salt + "$" + key + strings.Repeat("A", 600)},
		{"megabyte", strings.Repeat("$", 1<<20)},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d invalid cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse(tt.s) // a panic here fails the test
			if err == nil {
				t.Fatalf("Parse accepted %q as %+v", tt.s, h)
			}
			if h != nil {
				t.Errorf("Parse returned %+v with error", h)
			}
			if !errors.Is(err, ErrInvalidHash) {
				t.Errorf("error %v does not wrap ErrInvalidHash", err)
			}
			if !strings.HasPrefix(err.Error(), "password: parse: ") {
				t.Errorf("error %q lacks context prefix", err)
			}
			if len(tt.s) > 12 && strings.Contains(err.Error(), tt.s) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

// PHC.Verify on hand-built values outside the bounds returns false instead of
// panicking inside argon2.
func TestPHCVerifyRefusesBadValues(t *testing.T) {
	good := mustNewPHC(t, "pw", cheapParams)
	with := func(f func(*PHC)) *PHC {
		h := *good
		f(&h)
		return &h
	}
	tests := []struct {
		name string
		h    *PHC
	}{
		{"nil", nil},
		{"zero", &PHC{}},
		{"threads_0", with(func(h *PHC) { h.Threads = 0 })},
		{"time_0", with(func(h *PHC) { h.Time = 0 })},
		{"memory_0", with(func(h *PHC) { h.MemoryKiB = 0 })},
		{"version_16", with(func(h *PHC) { h.Version = 16 })},
		{"empty_key", with(func(h *PHC) { h.Key = nil })},
		{"empty_salt", with(func(h *PHC) { h.Salt = nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.h.Verify("pw") {
				t.Fatal("Verify = true")
			}
		})
	}
	if !good.Verify("pw") {
		t.Fatal("control: Verify(good) = false")
	}
	if (*PHC)(nil).String() != "" {
		t.Fatal("nil PHC String() not empty")
	}
}

// Every PHC made by newPHC encodes to a string Parse reads back equal.
func TestStringRoundTrip(t *testing.T) {
	for _, p := range []Params{
		cheapParams,
		{Time: 1, MemoryKiB: 8, Threads: 1, SaltLen: 8, KeyLen: 16},
		{Time: 2, MemoryKiB: 64, Threads: 8, SaltLen: 17, KeyLen: 33},
		{Time: 1, MemoryKiB: 64, Threads: 2, SaltLen: 64, KeyLen: 128},
	} {
		t.Run(strconv.Itoa(int(p.SaltLen))+"_"+strconv.Itoa(int(p.KeyLen)), func(t *testing.T) {
			h := mustNewPHC(t, "round trip", p)
			back := mustParse(t, h.String())
			if !reflect.DeepEqual(h, back) {
				t.Fatalf("round trip: %+v != %+v", h, back)
			}
			if !back.Verify("round trip") {
				t.Fatal("round-tripped hash does not verify")
			}
		})
	}
}

// FuzzParse: Parse never panics, and whatever it accepts is canonical: it
// re-encodes to the same string and re-parses equal.
func FuzzParse(f *testing.F) {
	for _, v := range referenceVectors {
		f.Add(v.phc)
	}
	for _, s := range []string{
		"",
		"$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ=$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHR$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			if h != nil {
				t.Fatalf("Parse(%q) returned a value with error %v", s, err)
			}
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidHash", s, err)
			}
			return
		}
		out := h.String()
		if out != s {
			t.Fatalf("Parse accepted non-canonical %q (re-encodes as %q)", s, out)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !reflect.DeepEqual(h, back) {
			t.Fatalf("re-parse differs: %+v != %+v", h, back)
		}
	})
}
