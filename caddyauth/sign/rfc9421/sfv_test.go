package rfc9421_test

import (
	"testing"

	"github.com/dunglas/httpsfv"
)

// TestHTTPSFVStrictness pins the behaviour of the structured-field parser
// this package relies on: RFC 8941's last-wins rule for repeated keys, and
// refusal of invalid syntax. If an upgrade of httpsfv changes any of this,
// this test says so before a signature check silently does.
func TestHTTPSFVStrictness(t *testing.T) {
	d, err := httpsfv.UnmarshalDictionary([]string{"a=1, a=2", "b=3"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("a"); v.(httpsfv.Item).Value != int64(2) || len(d.Names()) != 2 {
		t.Fatalf("repeated dictionary key: got %v, names %v; want last value 2", v, d.Names())
	}
	d, err = httpsfv.UnmarshalDictionary([]string{`sig1=("x");created=1;created=2`})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := d.Get("sig1")
	if v, _ := m.(httpsfv.InnerList).Params.Get("created"); v != int64(2) {
		t.Fatalf("repeated parameter: got %v; want last value 2", v)
	}
	if s, err := httpsfv.Marshal(d); err != nil || s != `sig1=("x");created=2` {
		t.Fatalf("re-serialised: %q, %v", s, err)
	}

	invalid := []string{
		`a=1,`,               // trailing comma
		`a=1 b=2`,            // missing comma
		`A=1`,                // upper-case key
		`1a=1`,               // key starting with a digit
		`a=(`,                // unterminated inner list
		`a=("x"`,             // unterminated inner list
		`a=("x")"y"`,         // junk after an inner list
		`a="x`,               // unterminated string
		`a="\x"`,             // bad escape
		"a=\"\x01\"",         // control character in a string
		"a=\"\u00fc\"",       // non-ASCII in a string
		`a=:YQ:`,             // byte sequence without padding
		`a=:Y Q=:`,           // space in a byte sequence
		`a=:YQ==`,            // unterminated byte sequence
		`a=1;`,               // dangling parameter
		`a=1;B=2`,            // upper-case parameter key
		`a=1234567890123456`, // integer over 15 digits
		`a=1.2345`,           // decimal with 4 fractional digits
		`a=?2`,               // bad boolean
		"a=1,\tb=2,",         // trailing comma after OWS
	}
	for _, in := range invalid {
		if _, err := httpsfv.UnmarshalDictionary([]string{in}); err == nil {
			t.Errorf("%q parsed; want a syntax error", in)
		}
	}
	// RFC 8941 allows 15-digit integers. httpsfv v1.1.1 accepts one at the
	// end of a field but refuses one followed by anything (it checks the
	// length before looking at the next character). Stricter than the RFC
	// and harmless here: created has 10 digits until the year 2286.
	if _, err := httpsfv.UnmarshalDictionary([]string{`a=999999999999999`}); err != nil {
		t.Errorf("15-digit integer at the end refused: %v", err)
	}
	if _, err := httpsfv.UnmarshalDictionary([]string{`a=999999999999999;b`}); err == nil {
		t.Errorf("15-digit integer before a parameter accepted: httpsfv changed, update this note")
	}
	// A bare parameter key is a boolean true, valid syntax: the signature
	// parser refuses component parameters itself.
	if _, err := httpsfv.UnmarshalDictionary([]string{`a=("x";y)`}); err != nil {
		t.Errorf("bare parameter refused: %v", err)
	}
}
