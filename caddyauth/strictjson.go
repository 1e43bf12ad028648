package caddyauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// DecodeStrictObject parses body as one JSON object whose keys are all in
// allowed, and returns each member's raw value. It refuses what
// encoding/json would silently accept (SEC-33): invalid UTF-8 (which it
// would replace), duplicate keys (it keeps the last), keys differing only in
// case (it folds them), unknown keys, trailing data, and anything but an
// object at the top.
func DecodeStrictObject(body []byte, allowed ...string) (map[string]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return nil, errors.New("body is not valid JSON")
	}
	if jsonDepth(body) > MaxJSONDepth {
		return nil, fmt.Errorf("body nests deeper than %d levels", MaxJSONDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("read JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("body must be a JSON object")
	}
	out := make(map[string]json.RawMessage, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read JSON key: %w", err)
		}
		key, _ := tok.(string)
		if !contains(allowed, key) {
			return nil, fmt.Errorf("unexpected field %q", key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("duplicate field %q", key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("read field %q: %w", key, err)
		}
		out[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("read JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON object")
	}
	return out, nil
}

// MaxJSONDepth bounds nesting in the bodies the gateway parses: none of the
// wire formats nests at all, so anything deep is an attack or a mistake.
const MaxJSONDepth = 8

// jsonDepth returns the deepest nesting of objects and arrays in valid JSON.
func jsonDepth(b []byte) int {
	depth, max, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				max = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return max
}

func contains(set []string, s string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}

// IsJSONNull reports whether a raw value is absent or null.
func IsJSONNull(raw json.RawMessage) bool {
	return raw == nil || string(raw) == "null"
}

// JSONString decodes a raw value that must be a JSON string.
func JSONString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	// encoding/json turns an escaped lone surrogate ("\ud800") into U+FFFD,
	// so different inputs would decode to one secret; refuse them. A real
	// U+FFFD, sent as is or as \ufffd, is kept.
	if strings.ContainsRune(s, utf8.RuneError) && !bytes.ContainsRune(raw, utf8.RuneError) &&
		!bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) {
		return "", false
	}
	return s, true
}

// JSONPositiveInt decodes a raw value that must be a JSON integer literal in
// 1..MaxInt64, written canonically: no sign, no leading zero, no fraction or
// exponent (SEC-32: "12", 1e3, 1.0, -5, 0, 007 and 2^63 are refused; Go
// itself would decode several of them without complaint).
func JSONPositiveInt(raw json.RawMessage) (int64, bool) {
	return ParsePositiveDecimal(string(raw))
}

// ParsePositiveDecimal parses a canonical positive decimal int64.
func ParsePositiveDecimal(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
