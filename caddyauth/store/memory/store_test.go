package memory

import (
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) caddyauth.Store {
		st := New()
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func TestGetsCountsEveryCall(t *testing.T) {
	st := New()
	defer st.Close()
	if n := st.Gets(); n != 0 {
		t.Fatalf("Gets() on a new store = %d, want 0", n)
	}
	if err := st.CreateSession(t.Context(), storetest.NewSession("a", 1, caddyauth.DialectNative, storetest.Epoch)); err != nil {
		t.Fatal(err)
	}
	st.GetSession(t.Context(), "a")
	st.GetSession(t.Context(), "missing")
	if _, err := st.ListUserSessions(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	// Only GetSession counts: the SEC-36 tests assert "no lookup", and other
	// methods are not lookups by credential.
	if n := st.Gets(); n != 2 {
		t.Fatalf("Gets() = %d, want 2", n)
	}
}
