package plugin

import (
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// observer turns the engine's observations into Prometheus metrics and zap
// audit logs. The audit log is the logger "sessiongate.audit": one event per
// login, failed login, logout, refusal and replay, with no secret and no raw
// session id in it (SEC-44, SEC-45). A refresh_reuse event is also counted in
// caddy_sessiongate_refresh_reuse_detected_total. Counters are taken from
// the children resolved in metrics.go, not looked up by label per call.
type observer struct {
	audit *zap.Logger
}

func (o *observer) Audit(e caddyauth.Event) {
	fields := []zap.Field{
		zap.String("event", e.Type),
		zap.String("dialect", string(e.Dialect)),
		zap.String("reason", e.Reason),
		zap.Time("at", e.Time.UTC()),
	}
	if e.UserID != 0 {
		fields = append(fields, zap.Int64("user_id", e.UserID))
	}
	if e.SessionHash != "" {
		fields = append(fields, zap.String("session", e.SessionHash))
	}
	if e.ClientIP != "" {
		fields = append(fields, zap.String("client_ip", e.ClientIP))
	}
	if e.KeyID != "" {
		fields = append(fields, zap.String("key_id", e.KeyID))
	}
	if e.Count != 0 {
		fields = append(fields, zap.Int("count", e.Count))
	}
	o.audit.Info("sessiongate "+e.Type, fields...)
	if e.Type == caddyauth.EventRefreshReuse {
		refreshReuseBy.one(string(e.Dialect)).Inc()
	}
}

func (o *observer) CacheLookup(hit bool) {
	if hit {
		cacheByResult.one("hit").Inc()
	} else {
		cacheByResult.one("miss").Inc()
	}
}

func (o *observer) SessionCreated(d caddyauth.Dialect) {
	createdByDialect.one(string(d)).Inc()
}

func (o *observer) SessionEnded(d caddyauth.Dialect, reason string) {
	endedByDialect.two(string(d), reason).Inc()
}

func (o *observer) StoreError(op string) { storeErrors.WithLabelValues(op).Inc() }

func (o *observer) Login(d caddyauth.Dialect, result string) {
	loginsByDialect.two(string(d), result).Inc()
}

func (o *observer) Replay(d caddyauth.Dialect, action string) {
	replaysByDialect.two(string(d), action).Inc()
}

var _ caddyauth.Observer = (*observer)(nil)
