package plugin

import (
	"strings"

	"go.uber.org/zap"
)

// A secret written literally into the configuration travels wherever the
// configuration does: version control, backups, `caddy adapt` output and the
// admin API's GET /config/. Settings that hold one (the master key, the Redis
// password, the sxt join code) are meant to come from a placeholder such as
// {env.NAME} or {file./run/secrets/name}, which Caddy resolves at load time
// and never writes back. A literal still works, so existing configurations
// keep loading, but every load, `caddy validate` included, warns (SEC-49).

// isLiteralSecret reports whether v is a secret given literally: set, and
// without any placeholder in it.
func isLiteralSecret(v string) bool {
	return v != "" && !strings.Contains(v, "{")
}

// warnLiteralSecret logs a warning naming setting when v is literal. It never
// logs v.
func warnLiteralSecret(log *zap.Logger, setting, v string) {
	if log == nil || !isLiteralSecret(v) {
		return
	}
	log.Warn("a secret is written literally in the configuration; take it from a placeholder such as {env.NAME} or {file./path}",
		zap.String("setting", setting))
}
