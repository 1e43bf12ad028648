package redistest

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestStartKillRestart(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		survives  bool // data written before a SIGKILL is there after Restart
		wantAOF   string
		wantNoPwd string // error without the password, "" when none is needed
	}{
		{name: "default", opts: Options{}, survives: false, wantAOF: "no"},
		{name: "append only", opts: Options{AppendOnly: true}, survives: true, wantAOF: "yes"},
		{name: "password", opts: Options{Password: "pw-for-redistest"}, wantAOF: "no", wantNoPwd: "NOAUTH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := Start(t, tc.opts)
			if srv.PID() == 0 || srv.Port() == 0 || srv.Dir() == "" {
				t.Fatalf("server not described: pid %d port %d dir %q", srv.PID(), srv.Port(), srv.Dir())
			}
			c := srv.Client()
			ctx := t.Context()
			cfg, err := c.ConfigGet(ctx, "appendonly").Result()
			if err != nil || cfg["appendonly"] != tc.wantAOF {
				t.Fatalf("appendonly = %v, %v; want %s", cfg, err, tc.wantAOF)
			}
			if tc.opts.AppendOnly {
				if cfg, err := c.ConfigGet(ctx, "appendfsync").Result(); err != nil || cfg["appendfsync"] != "always" {
					t.Fatalf("appendfsync = %v, %v; want always", cfg, err)
				}
			}
			err = ping(srv.Addr(), "")
			if tc.wantNoPwd == "" && err != nil {
				t.Fatalf("PING without password: %v", err)
			}
			if tc.wantNoPwd != "" && (err == nil || !strings.Contains(err.Error(), tc.wantNoPwd)) {
				t.Fatalf("PING without password = %v, want %s", err, tc.wantNoPwd)
			}

			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			pid := srv.PID()
			srv.Kill()
			if srv.PID() != 0 {
				t.Fatal("PID after Kill is not 0")
			}
			if err := ping(srv.Addr(), tc.opts.Password); err == nil {
				t.Fatal("a killed server answers PING")
			}
			srv.Restart()
			if srv.PID() == 0 || srv.PID() == pid {
				t.Fatalf("PID after Restart = %d (before: %d)", srv.PID(), pid)
			}
			n, err := c.Exists(ctx, "k").Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := n == 1; got != tc.survives {
				t.Errorf("key present after kill and restart: %v, want %v", got, tc.survives)
			}
		})
	}
}

func TestPauseResume(t *testing.T) {
	srv := Start(t, Options{})
	c := srv.Client()
	srv.Pause()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	err := c.Ping(ctx).Err()
	cancel()
	if err == nil {
		t.Fatal("a paused server answered PING")
	}
	srv.Resume()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}
