package redis

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
)

// prefixSeq numbers the key prefixes of the stores tests open, so that many
// stores share one redis-server and each still starts empty.
var prefixSeq atomic.Int64

// openStore opens a store on srv under a fresh key prefix (and channel),
// closed when the test ends. edit, if not nil, changes the options first.
func openStore(t *testing.T, srv *redistest.Server, edit func(*Options)) *Store {
	t.Helper()
	o := Options{
		Addrs:     []string{srv.Addr()},
		Password:  srv.Password(),
		KeyPrefix: fmt.Sprintf("t%d:", prefixSeq.Add(1)),
	}
	if edit != nil {
		edit(&o)
	}
	st, err := Open(t.Context(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// eventually polls cond until it holds or a generous bound passes; it
// asserts an outcome, never a duration (the machine is noisy).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
