package amatino

import "github.com/sessiongate/sessiongate/caddyauth/sign"

// SetWorkHook makes every Verify report its MAC work to f until restore is
// called. Tests that use it must not run in parallel with other Verify
// calls.
func SetWorkHook(f func(sign.Work)) (restore func()) {
	old := testHookWork
	testHookWork = f
	return func() { testHookWork = old }
}
