package sxt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/dialect/sxt"
)

func TestOptions(t *testing.T) {
	e := newEnv(t, sxt.Options{})
	got := e.d.Options()
	want := sxt.Options{Prefix: "/v1", Registration: sxt.RegistrationClosed, CodeLifetime: 30 * time.Second,
		AccessLifetime: 25 * time.Minute, RefreshLifetime: 30 * time.Minute, SessionLifetime: 24 * time.Hour, Realm: "sessiongate"}
	if got != want {
		t.Errorf("defaults %+v\nwant %+v", got, want)
	}
	if p := newEnv(t, sxt.Options{Prefix: "/"}).d.Options().Prefix; p != "" {
		t.Errorf("prefix / became %q", p)
	}
	bad := []struct {
		name    string
		o       sxt.Options
		wantErr string
	}{
		{"access above session", sxt.Options{AccessLifetime: 2 * time.Hour, RefreshLifetime: 3 * time.Hour, SessionLifetime: time.Hour}, "access_lifetime"},
		{"refresh above session", sxt.Options{RefreshLifetime: 2 * time.Hour, SessionLifetime: time.Hour}, "refresh_lifetime"},
		{"access above refresh", sxt.Options{AccessLifetime: time.Hour}, "access_lifetime"},
		{"code above 5m", sxt.Options{CodeLifetime: 6 * time.Minute}, "code_lifetime"},
		{"code below 1s", sxt.Options{CodeLifetime: time.Millisecond}, "code_lifetime"},
		{"negative access", sxt.Options{AccessLifetime: -time.Minute}, "access_lifetime"},
		{"grace above 60s", sxt.Options{RefreshGrace: 61 * time.Second}, "refresh_grace"},
		{"negative grace", sxt.Options{RefreshGrace: -time.Second}, "refresh_grace"},
		{"unknown registration", sxt.Options{Registration: "sometimes"}, "registration"},
		{"join code without code", sxt.Options{Registration: sxt.RegistrationJoinCode}, "join_code"},
		{"code without join_code", sxt.Options{Registration: sxt.RegistrationOpen, JoinCode: "x"}, "join_code"},
		{"relative prefix", sxt.Options{Prefix: "v1"}, "prefix"},
		{"trailing slash", sxt.Options{Prefix: "/v1/"}, "prefix"},
		{"query in prefix", sxt.Options{Prefix: "/v1?x"}, "prefix"},
		{"quote in realm", sxt.Options{Realm: `a"b`}, "realm"},
	}
	for _, tt := range bad {
		_, err := sxt.New(e.m, tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want one naming %q", tt.name, err, tt.wantErr)
		}
	}
}
