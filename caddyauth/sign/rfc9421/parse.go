package rfc9421

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/dunglas/httpsfv"
)

// Header names (canonical form, as net/http stores them).
const (
	HeaderSignatureInput  = "Signature-Input"
	HeaderSignature       = "Signature"
	HeaderContentDigest   = "Content-Digest"
	HeaderAcceptSignature = "Accept-Signature"
)

// Signature parameters (RFC 9421 §2.3).
const (
	ParamCreated = "created"
	ParamExpires = "expires"
	ParamKeyID   = "keyid"
	ParamAlg     = "alg"
	ParamNonce   = "nonce"
	ParamTag     = "tag"
)

// Bounds on what a client may send, checked before any structured-field
// parsing so that a hostile header costs little. Real signatures are far
// below them.
const (
	// MaxFieldBytes bounds the combined size of all lines of one
	// Signature-Input, Signature or Content-Digest field.
	MaxFieldBytes = 8 << 10
	// MaxComponents bounds the number of covered components.
	MaxComponents = 32
	// MaxParamLen bounds the keyid, nonce, alg and tag strings.
	MaxParamLen = 256
)

// signatureInput is one parsed member of Signature-Input.
type signatureInput struct {
	label      string
	components []string
	// list is the parsed inner list; its canonical serialisation is the
	// @signature-params value (RFC 9421 §3.2: re-serialised, never copied
	// from the wire, so optional whitespace cannot change the base).
	list httpsfv.InnerList

	created, expires       int64
	hasCreated, hasExpires bool
	keyID, alg, nonce, tag string
	hasKeyID, hasAlg       bool
	hasNonce, hasTag       bool
}

// has reports whether the signature carries parameter name.
func (s *signatureInput) has(name string) bool {
	_, ok := s.list.Params.Get(name)
	return ok
}

// covers reports whether the signature covers component name.
func (s *signatureInput) covers(name string) bool {
	for _, c := range s.components {
		if c == name {
			return true
		}
	}
	return false
}

// paramsString is the @signature-params value.
func (s *signatureInput) paramsString() (string, error) {
	v, err := httpsfv.Marshal(s.list)
	if err != nil {
		return "", malformed("signature parameters cannot be serialised")
	}
	return v, nil
}

// fieldSize is the size of the field once its lines are joined.
func fieldSize(values []string) int {
	n := 0
	for _, v := range values {
		n += len(v) + 1
	}
	return n
}

// parseDictionary parses a dictionary-valued field strictly (RFC 8941 via
// httpsfv: invalid syntax is refused, a repeated key keeps its last value).
func parseDictionary(field string, values []string) (*httpsfv.Dictionary, error) {
	if fieldSize(values) > MaxFieldBytes {
		return nil, malformed(fmt.Sprintf("%s is longer than %d bytes", field, MaxFieldBytes))
	}
	d, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		var ue *httpsfv.UnmarshalError
		if errors.As(err, &ue) {
			return nil, malformed(field + " is not a valid structured-field dictionary (" + ue.Error() + ")")
		}
		return nil, malformed(field + " is not a valid structured-field dictionary")
	}
	return d, nil
}

// selectLabel picks the signature to verify: label when given, otherwise the
// only one. Several signatures without a configured label are refused rather
// than guessed at, so that the choice is never the client's.
func selectLabel(d *httpsfv.Dictionary, label string) (string, error) {
	if label != "" {
		if _, ok := d.Get(label); !ok {
			return "", malformed("no signature labelled " + quoteName(label))
		}
		return label, nil
	}
	names := d.Names()
	switch len(names) {
	case 0:
		return "", malformed("Signature-Input is empty")
	case 1:
		return names[0], nil
	}
	return "", malformed("several signatures sent; send exactly one")
}

// parseSignatureInput parses the Signature-Input field lines and returns
// the member labelled label (the only member when label is ""). Every check
// that needs no key is made here: component identifiers are strings without
// parameters, lower case, unique, known when derived; created and expires
// are integers; keyid, alg, nonce and tag are strings of bounded length.
// Other parameters are kept (they are signed) but have no effect.
func parseSignatureInput(values []string, label string) (*signatureInput, error) {
	d, err := parseDictionary(HeaderSignatureInput, values)
	if err != nil {
		return nil, err
	}
	if label, err = selectLabel(d, label); err != nil {
		return nil, err
	}
	m, _ := d.Get(label)
	list, ok := m.(httpsfv.InnerList)
	if !ok {
		return nil, malformed("Signature-Input member " + quoteName(label) + " is not an inner list")
	}
	s := &signatureInput{label: label, list: list}
	if len(list.Items) > MaxComponents {
		return nil, malformed(fmt.Sprintf("more than %d covered components", MaxComponents))
	}
	seen := make(map[string]bool, len(list.Items))
	for _, it := range list.Items {
		name, ok := it.Value.(string)
		if !ok {
			return nil, malformed("a component identifier is not a string")
		}
		if len(it.Params.Names()) > 0 {
			return nil, malformed("component parameters are not supported (on " + quoteName(name) + ")")
		}
		if err := checkComponentName(name); err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, malformed("component " + quoteName(name) + " is covered twice")
		}
		seen[name] = true
		s.components = append(s.components, name)
	}
	if err := s.readParams(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *signatureInput) readParams() error {
	p := s.list.Params
	var err error
	if s.created, s.hasCreated, err = intParam(p, ParamCreated); err != nil {
		return err
	}
	if s.expires, s.hasExpires, err = intParam(p, ParamExpires); err != nil {
		return err
	}
	if s.hasCreated && s.created < 0 {
		return malformed("created is negative")
	}
	if s.hasCreated && s.hasExpires && s.expires < s.created {
		return malformed("expires is before created")
	}
	for _, sp := range []struct {
		name string
		v    *string
		has  *bool
	}{
		{ParamKeyID, &s.keyID, &s.hasKeyID},
		{ParamAlg, &s.alg, &s.hasAlg},
		{ParamNonce, &s.nonce, &s.hasNonce},
		{ParamTag, &s.tag, &s.hasTag},
	} {
		if *sp.v, *sp.has, err = stringParam(p, sp.name); err != nil {
			return err
		}
	}
	return nil
}

func intParam(p *httpsfv.Params, name string) (int64, bool, error) {
	v, ok := p.Get(name)
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, false, malformed(name + " must be an integer")
	}
	return n, true, nil
}

func stringParam(p *httpsfv.Params, name string) (string, bool, error) {
	v, ok := p.Get(name)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, malformed(name + " must be a string")
	}
	if s == "" || len(s) > MaxParamLen {
		return "", false, malformed(fmt.Sprintf("%s must be 1 to %d characters", name, MaxParamLen))
	}
	return s, true, nil
}

// checkComponentName refuses names that cannot be covered: unknown derived
// components, @signature-params itself (RFC 9421 §2.3), and field names that
// are not lower-case tokens (RFC 9421 §2.1 requires lower case, and only a
// token can be a field name).
func checkComponentName(name string) error {
	if strings.HasPrefix(name, "@") {
		switch name {
		case CompMethod, CompAuthority, CompPath, CompQuery, CompTargetURI, CompScheme, CompRequestTarget:
			return nil
		case compSignatureParams:
			return malformed("@signature-params cannot be a covered component")
		}
		return malformed("unknown derived component " + quoteName(name))
	}
	if name == "" {
		return malformed("empty component identifier")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			return malformed("component " + quoteName(name) + " must be lower case")
		}
		if !isTchar(c) {
			return malformed("component " + quoteName(name) + " is not a field name")
		}
	}
	return nil
}

// isTchar reports whether c may appear in an HTTP token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseSignature returns the signature bytes labelled label from the
// Signature field lines.
func parseSignature(values []string, label string) ([]byte, error) {
	d, err := parseDictionary(HeaderSignature, values)
	if err != nil {
		return nil, err
	}
	m, ok := d.Get(label)
	if !ok {
		return nil, malformed("Signature has no member " + quoteName(label))
	}
	it, ok := m.(httpsfv.Item)
	if !ok {
		return nil, malformed("Signature member " + quoteName(label) + " is not a byte sequence")
	}
	b, ok := it.Value.([]byte)
	if !ok {
		return nil, malformed("Signature member " + quoteName(label) + " is not a byte sequence")
	}
	// httpsfv decodes with the lenient base64 decoder, which ignores the
	// unused bits of the last character, so one signature has several
	// spellings. Accept only the canonical one (SEC-35): its spelling must
	// appear in the field as sent.
	if !strings.Contains(strings.Join(values, ","), ":"+base64.StdEncoding.EncodeToString(b)+":") {
		return nil, malformed("Signature member " + quoteName(label) + " is not canonical base64")
	}
	return b, nil
}
