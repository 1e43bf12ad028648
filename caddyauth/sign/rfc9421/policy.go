package rfc9421

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dunglas/httpsfv"
)

// Default time windows.
const (
	// DefaultPastWindow is how old a signature's created time may be.
	DefaultPastWindow = 300 * time.Second
	// DefaultFutureWindow is how far ahead of the server's clock a
	// signature's created time may be: small, because a clock ahead of the
	// server's is a client fault worth telling, not hiding.
	DefaultFutureWindow = 5 * time.Second
)

// DefaultLabel is the signature label the client uses and Accept-Signature
// proposes.
const DefaultLabel = "sig1"

// Policy is what the server demands of a signature: what it must cover,
// which parameters it must carry, and how fresh it must be. The zero value
// of each field means its default (see DefaultPolicy), so a Policy literal
// only names what it changes.
type Policy struct {
	// Components are the components every signature must cover. nil means
	// @method, @authority, @path and @query; an empty non-nil slice
	// requires none.
	Components []string
	// BodyComponents must also be covered when the request has a body. nil
	// means content-digest and content-type; an empty non-nil slice
	// requires none.
	BodyComponents []string
	// Params are the signature parameters every signature must carry. nil
	// means created, keyid and nonce; an empty non-nil slice requires none.
	// Replay protection needs created and nonce (see Validate).
	Params []string
	// PastWindow is how old created may be. Default: 300s.
	PastWindow time.Duration
	// FutureWindow is how far ahead of the server created may be.
	// Default: 5s.
	FutureWindow time.Duration
	// IgnoreExpires disables the check of the expires parameter. Off by
	// default: a signature whose signer said it expires is refused after
	// that time (RFC 9421 §3.2).
	IgnoreExpires bool
	// Label selects the signature to verify when a request carries several.
	// Empty: the request must carry exactly one.
	Label string
}

// DefaultPolicy returns the gateway's default policy with every field
// spelled out.
func DefaultPolicy() Policy {
	var p Policy
	return p.withDefaults()
}

func (p Policy) withDefaults() Policy {
	if p.Components == nil {
		p.Components = []string{CompMethod, CompAuthority, CompPath, CompQuery}
	}
	if p.BodyComponents == nil {
		p.BodyComponents = []string{FieldContentDigest, FieldContentType}
	}
	if p.Params == nil {
		p.Params = []string{ParamCreated, ParamKeyID, ParamNonce}
	}
	if p.PastWindow == 0 {
		p.PastWindow = DefaultPastWindow
	}
	if p.FutureWindow == 0 {
		p.FutureWindow = DefaultFutureWindow
	}
	return p
}

// Validate reports a policy that cannot work: unknown or duplicated
// component names, unknown parameters, negative windows, or a nonce
// required without created (a nonce is only remembered for the window
// created bounds, so without created a replay after the window would
// pass).
func (p Policy) Validate() error {
	p = p.withDefaults()
	for _, set := range [][]string{p.Components, p.BodyComponents} {
		for i, c := range set {
			if err := checkComponentName(c); err != nil {
				return fmt.Errorf("signature policy: %w", err)
			}
			if slices.Contains(set[:i], c) {
				return fmt.Errorf("signature policy: component %q listed twice", c)
			}
		}
	}
	for _, name := range p.Params {
		switch name {
		case ParamCreated, ParamExpires, ParamKeyID, ParamAlg, ParamNonce, ParamTag:
		default:
			return fmt.Errorf("signature policy: unknown signature parameter %q", name)
		}
	}
	if p.Label != "" && !isKey(p.Label) {
		return fmt.Errorf("signature policy: label %q is not a structured-field key (lower case, digits, _-.*)", p.Label)
	}
	if p.PastWindow < 0 || p.FutureWindow < 0 {
		return errors.New("signature policy: time windows must not be negative")
	}
	if slices.Contains(p.Params, ParamNonce) && !slices.Contains(p.Params, ParamCreated) {
		return errors.New("signature policy: a required nonce needs a required created, or replays outlive the replay cache")
	}
	if !slices.Contains(p.Params, ParamKeyID) {
		return errors.New("signature policy: keyid must be required, it is how the key is found")
	}
	return nil
}

// Required returns the components a request must cover: the policy's
// components, and its body components when hasBody.
func (p Policy) Required(hasBody bool) []string {
	p = p.withDefaults()
	out := slices.Clone(p.Components)
	if hasBody {
		for _, c := range p.BodyComponents {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// ReplayTTL is how long a (keyid, nonce) pair must be remembered: the whole
// time a signature can be accepted, which is the past window plus the
// future window, plus one second because created has whole-second
// resolution while the server's clock does not.
func (p Policy) ReplayTTL() time.Duration {
	p = p.withDefaults()
	return p.PastWindow + p.FutureWindow + time.Second
}

// AcceptSignature returns the Accept-Signature field value (RFC 9421 §5.1)
// describing what a signature on a request with (hasBody) or without a body
// must cover: the label, the inner list of required components, and the
// parameters created, expires and nonce as bare names, which ask the signer
// to generate them. keyid is not named: its value is the client's to know
// (a session id, or the id the gateway returned when the key was
// registered).
func (p Policy) AcceptSignature(hasBody bool) string {
	p = p.withDefaults()
	label := p.Label
	if label == "" {
		label = DefaultLabel
	}
	items := make([]httpsfv.Item, 0, len(p.Components)+len(p.BodyComponents))
	for _, c := range p.Required(hasBody) {
		items = append(items, httpsfv.NewItem(c))
	}
	params := httpsfv.NewParams()
	for _, name := range []string{ParamCreated, ParamExpires, ParamNonce} {
		if slices.Contains(p.Params, name) {
			params.Add(name, true)
		}
	}
	d := httpsfv.NewDictionary()
	d.Add(label, httpsfv.InnerList{Items: items, Params: params})
	v, err := httpsfv.Marshal(d)
	if err != nil {
		// Only reachable with a policy Validate refuses (a component name
		// that is not serialisable); say nothing rather than something
		// wrong.
		return ""
	}
	return v
}

// missing returns the required components and parameters s lacks, in the
// policy's order.
func (p Policy) missing(s *signatureInput, hasBody bool) []string {
	var out []string
	for _, c := range p.Required(hasBody) {
		if !s.covers(c) {
			out = append(out, c)
		}
	}
	for _, name := range p.Params {
		if !s.has(name) {
			out = append(out, name)
		}
	}
	return out
}

// isKey reports whether s is an RFC 8941 key: a lower-case letter or "*",
// then lower-case letters, digits, "_", "-", "." or "*".
func isKey(s string) bool {
	if s == "" || !(('a' <= s[0] && s[0] <= 'z') || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z') && !('0' <= c && c <= '9') && c != '_' && c != '-' && c != '.' && c != '*' {
			return false
		}
	}
	return true
}
