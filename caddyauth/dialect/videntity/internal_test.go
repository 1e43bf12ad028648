package videntity

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// byteReader repeats a fixed sequence of "random" bytes.
type byteReader struct {
	seq []byte
	i   int
}

func (r *byteReader) Read(p []byte) (int, error) {
	for n := range p {
		p[n] = r.seq[r.i%len(r.seq)]
		r.i++
	}
	return len(p), nil
}

// SEC-08: bytes 248–255 are thrown away (else symbols 0–7 would be more
// likely than the others), and each kept byte b maps to symbol b mod 62.
func TestKeyRejectionSampling_SEC08(t *testing.T) {
	var seq []byte
	for b := 248; b < 256; b++ {
		seq = append(seq, byte(b)) // all rejected
	}
	seq = append(seq, 0, 61, 62, 123, 124, 247)
	want := string([]byte{keyAlphabet[0], keyAlphabet[61], keyAlphabet[0], keyAlphabet[61], keyAlphabet[0], keyAlphabet[61]})
	k := keyFrom(&byteReader{seq: seq})
	if len(k) != KeyLength {
		t.Fatalf("key %q has %d characters", k, len(k))
	}
	if !strings.HasPrefix(k, want) {
		t.Fatalf("key %q, want it to start with %q", k, want)
	}
	// Every symbol is reachable, each from exactly four byte values.
	hits := map[byte]int{}
	for b := 0; b < 256; b++ {
		k := keyFrom(&byteReader{seq: []byte{byte(b), 0}})
		hits[k[0]]++
	}
	if len(hits) != len(keyAlphabet) {
		t.Fatalf("%d distinct first symbols", len(hits))
	}
	for i := 1; i < len(keyAlphabet); i++ {
		if hits[keyAlphabet[i]] != 4 {
			t.Errorf("symbol %q from %d byte values, want 4", keyAlphabet[i], hits[keyAlphabet[i]])
		}
	}
	if hits['A'] != 4+8 {
		t.Errorf("'A' from %d byte values, want 4 + 8 rejected ones falling through to 0", hits['A'])
	}
	if k := newSessionKey(); !validKey(k) || len(k) != KeyLength {
		t.Fatalf("newSessionKey %q", k)
	}
}

func TestKeyFromFailingReader(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a failing random source")
		}
	}()
	keyFrom(io.LimitReader(&byteReader{seq: []byte{1}}, 10))
}

func TestValidKey_SEC36(t *testing.T) {
	for k, want := range map[string]bool{
		strings.Repeat("a", 31):       false,
		strings.Repeat("a", 32):       true,
		strings.Repeat("Z9", 64):      true,
		strings.Repeat("a", 129):      false,
		strings.Repeat("a", 42) + "-": false,
		strings.Repeat("a", 42) + "é": false,
		"":                            false,
	} {
		if validKey(k) != want {
			t.Errorf("validKey(%q) = %v", k, !want)
		}
	}
	if id := sessionID("abc"); id != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("sessionID(abc) = %s", id)
	}
}

// encoding/xml escapes everything that could change the document: texts
// and the attribute; characters XML cannot carry are replaced.
func TestRenderEscaping(t *testing.T) {
	const hostile = "<b>&amp;\"'</response><x a=\"1\">\x00\n"
	b, err := render(hostile, []field{{"status", "ERROR"}, {"error_detail", hostile}}, true,
		[]field{{"session_key", hostile}}, []field{{"timestamp", "t"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"<b>", "</response><x", `"'`, "&amp;\"", "\x00"} {
		if bytes.Contains(b, []byte(raw)) {
			t.Errorf("unescaped %q in %s", raw, b)
		}
	}
	var got struct {
		Method string `xml:"api_method,attr"`
		Detail string `xml:"error_detail"`
		Key    string `xml:"response_name_value>session_key"`
	}
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := strings.ReplaceAll(hostile, "\x00", "\uFFFD")
	if got.Detail != want || got.Key != want {
		t.Errorf("round trip: detail %q key %q, want %q", got.Detail, got.Key, want)
	}
	if got.Method != want {
		t.Errorf("round trip: api_method %q", got.Method)
	}
	if !bytes.HasPrefix(b, []byte(`<?xml version="1.0" encoding="utf-8"?>`+"\n<response api_method=")) {
		t.Errorf("prolog: %s", b)
	}
}
