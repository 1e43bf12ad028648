package native

import (
	"fmt"
	"slices"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/sign/rfc9421"
)

// Defaults and bounds.
const (
	// DefaultMaxBody bounds a body read to check its Content-Digest: the
	// same limit as amatino's.
	DefaultMaxBody = 10 << 20
	// MaxWindow bounds either time window: a signature accepted for longer
	// than an hour is a bearer credential, and the replay store must keep
	// each nonce that long.
	MaxWindow = time.Hour
)

// Options configure the dialect. The zero value of each field means its
// default, which is rfc9421.DefaultPolicy's for the policy fields.
type Options struct {
	// Components are the components every signature must cover. Empty:
	// @method, @authority, @path, @query.
	Components []string
	// BodyComponents must also be covered when the request has a body.
	// Empty: content-digest, content-type.
	BodyComponents []string
	// Params are the signature parameters every signature must carry; keyid
	// is always among them. Empty: created, keyid, nonce.
	Params []string
	// PastWindow is how old a signature's created time may be; whole
	// seconds, at most MaxWindow. Default: 300s.
	PastWindow time.Duration
	// FutureWindow is how far ahead of the gateway's clock created may be;
	// whole seconds, at most MaxWindow. Default: 5s.
	FutureWindow time.Duration
	// IgnoreExpires accepts signatures past their own expires parameter.
	// Default: false (expires is honoured).
	IgnoreExpires bool
	// Label selects the signature to check when a request carries several.
	// Empty: a request must carry exactly one.
	Label string
	// MaxBody bounds a body read to check its Content-Digest; a larger one
	// is refused with 413. Default: DefaultMaxBody.
	MaxBody int64
	// IdleResetOnUse resets an hmac-sha256 session's idle timer on each
	// verified request, coalesced to one store write per
	// caddyauth.TouchInterval. Sessions without an idle timeout, and
	// ed25519 requests (no session), are unaffected.
	IdleResetOnUse bool
}

// Policy is the rfc9421 policy the options describe.
func (o Options) Policy() rfc9421.Policy {
	nilIfEmpty := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return slices.Clone(s)
	}
	return rfc9421.Policy{Components: nilIfEmpty(o.Components), BodyComponents: nilIfEmpty(o.BodyComponents),
		Params: nilIfEmpty(o.Params), PastWindow: o.PastWindow, FutureWindow: o.FutureWindow,
		IgnoreExpires: o.IgnoreExpires, Label: o.Label}
}

// Validate reports options that cannot work, naming the option. It checks
// the options as given, so it also serves a config parser checking one
// option at a time.
func (o Options) Validate() error {
	for _, w := range []struct {
		name string
		d    time.Duration
	}{{"past_window", o.PastWindow}, {"future_window", o.FutureWindow}} {
		if w.d == 0 {
			continue
		}
		// created has whole-second resolution, so a fractional window
		// would be silently rounded down.
		if w.d < time.Second || w.d > MaxWindow || w.d%time.Second != 0 {
			return fmt.Errorf("native %s %s: must be whole seconds between 1s and %s", w.name, w.d, MaxWindow)
		}
	}
	if o.MaxBody < 0 {
		return fmt.Errorf("native max_body %d: must be positive", o.MaxBody)
	}
	if err := o.Policy().Validate(); err != nil {
		return fmt.Errorf("native: %w", err)
	}
	return nil
}

func (o *Options) setDefaults() error {
	if err := o.Validate(); err != nil {
		return err
	}
	p := o.Policy()
	def := rfc9421.DefaultPolicy()
	o.Components = orDefault(p.Components, def.Components)
	o.BodyComponents = orDefault(p.BodyComponents, def.BodyComponents)
	o.Params = orDefault(p.Params, def.Params)
	if o.PastWindow == 0 {
		o.PastWindow = def.PastWindow
	}
	if o.FutureWindow == 0 {
		o.FutureWindow = def.FutureWindow
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	return nil
}

func orDefault(v, def []string) []string {
	if v == nil {
		return slices.Clone(def)
	}
	return v
}
