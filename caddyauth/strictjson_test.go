package caddyauth_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth"
)

var loginFields = []string{"secret", "account_email", "user_id"}

// SEC-33: what encoding/json would silently accept is refused.
func TestDecodeStrictObjectRefuses_SEC33(t *testing.T) {
	cases := []struct {
		name string
		body string
	}{
		{"duplicate key", `{"secret":"a","secret":"b"}`},
		{"duplicate key via escape", `{"secret":"a","secr\u0065t":"b"}`},
		{"duplicate null key", `{"user_id":null,"user_id":5,"secret":"x"}`},
		{"case-variant key", `{"SECRET":"a"}`},
		{"case-variant duplicate", `{"secret":"a","Secret":"b"}`},
		{"case-variant email", `{"account_email":"a@x","ACCOUNT_EMAIL":"b@x"}`},
		{"unknown field", `{"secret":"a","role":"admin"}`},
		{"empty key", `{"":"a"}`},
		{"trailing object", `{"secret":"a"}{"secret":"b"}`},
		{"trailing garbage", `{"secret":"a"} x`},
		{"trailing comma", `{"secret":"a",}`},
		{"invalid UTF-8 in value", "{\"secret\":\"a\xff\"}"},
		{"invalid UTF-8 in key", "{\"secr\xc3t\":\"a\"}"},
		{"overlong UTF-8", "{\"secret\":\"\xc0\xaf\"}"},
		{"10000 open brackets", strings.Repeat("[", 10000)},
		{"truncated", `{"secret":"a","user_id":`},
		{"truncated string", `{"secret":"a`},
		{"top-level array", `[{"secret":"a"}]`},
		{"top-level string", `"secret"`},
		{"top-level number", `12`},
		{"top-level null", `null`},
		{"empty body", ``},
		{"whitespace body", "  \n"},
		{"single quotes", `{'secret':'a'}`},
		{"NaN", `{"user_id":NaN}`},
		{"comment", `{"secret":"a" /* x */}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := caddyauth.DecodeStrictObject([]byte(tc.body), loginFields...)
			if err == nil {
				t.Fatalf("accepted %q as %v", tc.body, got)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestDecodeStrictObjectAccepts(t *testing.T) {
	cases := []struct {
		name string
		body string
		want map[string]string
	}{
		{"all three", `{"secret":"s","account_email":"a@x","user_id":null}`,
			map[string]string{"secret": `"s"`, "account_email": `"a@x"`, "user_id": `null`}},
		{"spaced and reordered", " {\n \"user_id\" : 12 ,\t\"secret\": \"s\" , \"account_email\" :null } \n",
			map[string]string{"secret": `"s"`, "account_email": `null`, "user_id": `12`}},
		{"empty object", `{}`, map[string]string{}},
		{"nested value kept raw", `{"secret":{"a":[1,2]}}`, map[string]string{"secret": `{"a":[1,2]}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := caddyauth.DecodeStrictObject([]byte(tc.body), loginFields...)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d members %v, want %v", len(got), got, tc.want)
			}
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// SEC-32: user_id must be a canonical positive int64 JSON number.
func TestJSONPositiveInt_SEC32(t *testing.T) {
	cases := []struct {
		raw  string
		want int64
		ok   bool
	}{
		{`1`, 1, true},
		{`12`, 12, true},
		{`4200100`, 4200100, true},
		{`9223372036854775807`, 9223372036854775807, true},
		{`"12"`, 0, false},
		{`1e3`, 0, false},
		{`1E3`, 0, false},
		{`1.0`, 0, false},
		{`12.5`, 0, false},
		{`-5`, 0, false},
		{`-0`, 0, false},
		{`0`, 0, false},
		{`9223372036854775808`, 0, false},
		{`18446744073709551615`, 0, false},
		{`99999999999999999999`, 0, false},
		{`007`, 0, false},
		{`+5`, 0, false},
		{` 5`, 0, false},
		{`5 `, 0, false},
		{`null`, 0, false},
		{`true`, 0, false},
		{``, 0, false},
		{`[5]`, 0, false},
		{`0x10`, 0, false},
		{"\u0661\u0662", 0, false}, // Arabic-Indic digits
		{`1_000`, 0, false},
	}
	for _, tc := range cases {
		got, ok := caddyauth.JSONPositiveInt(json.RawMessage(tc.raw))
		if ok != tc.ok || got != tc.want {
			t.Errorf("JSONPositiveInt(%q) = (%d, %v), want (%d, %v)", tc.raw, got, ok, tc.want, tc.ok)
		}
		got, ok = caddyauth.ParsePositiveDecimal(tc.raw)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParsePositiveDecimal(%q) = (%d, %v), want (%d, %v)", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
	// Every value from 9223372036854775800 to the maximum, and the first ten
	// above it.
	for i := 0; i <= 7; i++ {
		s := "922337203685477580" + string(rune('0'+i))
		if n, ok := caddyauth.ParsePositiveDecimal(s); !ok || n != 9223372036854775800+int64(i) {
			t.Errorf("ParsePositiveDecimal(%s) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"9223372036854775808", "9223372036854775809", "9223372036854775810", "9999999999999999999"} {
		if n, ok := caddyauth.ParsePositiveDecimal(s); ok {
			t.Errorf("ParsePositiveDecimal(%s) = %d, accepted past MaxInt64", s, n)
		}
	}
}

func TestJSONStringAndNull(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"\u00e9"`, "é", true},
		{`12`, "", false},
		{`null`, "", false},
		{``, "", false},
		{`["a"]`, "", false},
		{`"unterminated`, "", false},
	} {
		got, ok := caddyauth.JSONString(json.RawMessage(tc.raw))
		if got != tc.want || ok != tc.ok {
			t.Errorf("JSONString(%q) = (%q, %v), want (%q, %v)", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
	if !caddyauth.IsJSONNull(nil) || !caddyauth.IsJSONNull(json.RawMessage("null")) {
		t.Error("absent or null not null")
	}
	for _, raw := range []string{`0`, `""`, `"null"`, `false`} {
		if caddyauth.IsJSONNull(json.RawMessage(raw)) {
			t.Errorf("IsJSONNull(%s) = true", raw)
		}
	}
}

// SEC-33: nesting beyond MaxJSONDepth is refused even inside a value, and
// escaped lone surrogates never decode to a string.
func TestStrictJSONDepthAndSurrogates_SEC33(t *testing.T) {
	deep := `{"secret":` + strings.Repeat("[", caddyauth.MaxJSONDepth) + strings.Repeat("]", caddyauth.MaxJSONDepth) + `}`
	if _, err := caddyauth.DecodeStrictObject([]byte(deep), "secret"); err == nil {
		t.Fatal("nesting deeper than MaxJSONDepth accepted")
	}
	shallow := `{"secret":["[{\"x\":1}]"]}`
	if _, err := caddyauth.DecodeStrictObject([]byte(shallow), "secret"); err != nil {
		t.Fatalf("shallow body with brackets inside a string refused: %v", err)
	}
	for _, tt := range []struct {
		raw string
		ok  bool
	}{
		{`"\ud800x"`, false},
		{`"\udc00"`, false},
		{`"\ud83d\ude00"`, true},
		{`"\ufffd"`, true},
		{"\"\uFFFD\"", true},
		{`"plain"`, true},
	} {
		if _, ok := caddyauth.JSONString(json.RawMessage(tt.raw)); ok != tt.ok {
			t.Errorf("JSONString(%s) ok=%v, want %v", tt.raw, ok, tt.ok)
		}
	}
}
