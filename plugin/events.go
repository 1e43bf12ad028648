package plugin

import (
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// Caddy events of user and session changes. The engine reports them as
// audit events (it must not import Caddy); eventObserver forwards the ones
// below to Caddy's events app under these names, so an `events` subscriber
// (exec, a webhook) can react to them. Their data holds ids and counts only:
// user_id, key_id, session (the keyed id hash), dialect, count, reason.
var caddyEventNames = map[string]string{
	caddyauth.EventUserCreated:     "sessiongate_user_created",
	caddyauth.EventUserDisabled:    "sessiongate_user_disabled",
	caddyauth.EventUserEnabled:     "sessiongate_user_enabled",
	caddyauth.EventPasswordChanged: "sessiongate_password_changed",
	caddyauth.EventKeyRegistered:   "sessiongate_key_added",
	caddyauth.EventKeyRemoved:      "sessiongate_key_removed",
	caddyauth.EventSessionRevoked:  "sessiongate_session_revoked",
	caddyauth.EventSessionsRevoked: "sessiongate_sessions_revoked",
}

// eventObserver is the Manager's observer: everything goes to the wrapped
// observer (metrics, audit log), and account events are also emitted as
// Caddy events.
type eventObserver struct {
	caddyauth.Observer
	emit func(name string, data map[string]any)
}

// Audit logs e and emits it as a Caddy event when it is one of
// caddyEventNames.
func (o eventObserver) Audit(e caddyauth.Event) {
	o.Observer.Audit(e)
	name, ok := caddyEventNames[e.Type]
	if !ok || o.emit == nil {
		return
	}
	o.emit(name, eventData(e))
}

// eventData is what a Caddy event carries: only fields that are set, and
// only ids, counts and codes (SEC-44).
func eventData(e caddyauth.Event) map[string]any {
	d := map[string]any{}
	if e.UserID != 0 {
		d["user_id"] = e.UserID
	}
	if e.KeyID != "" {
		d["key_id"] = e.KeyID
	}
	if e.SessionHash != "" {
		d["session"] = e.SessionHash
	}
	if e.Dialect != "" {
		d["dialect"] = string(e.Dialect)
	}
	if e.Reason != "" {
		d["reason"] = e.Reason
	}
	if e.Type == caddyauth.EventSessionsRevoked {
		d["count"] = e.Count
	}
	return d
}

// emit sends an event through Caddy's events app once the app has started
// (the events app is known only then); earlier events are only logged.
func (a *App) emit(name string, data map[string]any) {
	if a.events == nil {
		return
	}
	if ev := a.events.Load(); ev != nil {
		ev.Emit(a.ctx, name, data)
	}
}

// findEventsApp remembers the events app of this config, if one was loaded
// (Caddy's HTTP app always loads it). It runs in Start, after every app was
// provisioned; a bare test context has none.
func (a *App) findEventsApp() {
	if a.events == nil {
		return
	}
	v, err := a.ctx.AppIfConfigured("events")
	if err != nil {
		return
	}
	if ev, ok := v.(*caddyevents.App); ok {
		a.events.Store(ev)
	}
}

// Interface guards
var _ caddyauth.Observer = eventObserver{}
