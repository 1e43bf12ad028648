package plugin

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"
)

// TestLiteralSecretWarningSEC49 (SEC-49): a secret setting given literally warns,
// naming the setting and never the value; one from a placeholder, or unset,
// stays quiet.
func TestLiteralSecretWarningSEC49(t *testing.T) {
	cases := []struct {
		value string
		warn  bool
	}{
		{"", false},
		{"{env.REDIS_PASSWORD}", false},
		{"{file./run/secrets/redis}", false},
		{"prefix-{env.PART}", false},
		{"hunter2-literal", true},
		{"c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1sb25nLi4uLi4=", true},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			core, logs := zapobserver.New(zapcore.WarnLevel)
			warnLiteralSecret(zap.New(core), "store redis password", tc.value)
			if got := logs.Len() == 1; got != tc.warn {
				t.Fatalf("warned = %v, want %v (%d entries)", got, tc.warn, logs.Len())
			}
			for _, e := range logs.All() {
				if e.ContextMap()["setting"] != "store redis password" {
					t.Errorf("warning does not name the setting: %v", e.ContextMap())
				}
				if strings.Contains(e.Message, tc.value) || strings.Contains(strings.Join(fieldStrings(e), " "), tc.value) {
					t.Errorf("warning shows the secret: %q %v", e.Message, e.ContextMap())
				}
			}
		})
	}
}

func fieldStrings(e zapobserver.LoggedEntry) []string {
	var out []string
	for _, f := range e.Context {
		out = append(out, f.Key, f.String)
	}
	return out
}
