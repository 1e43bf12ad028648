package amatino

import "github.com/sessiongate/sessiongate/caddyauth/sign"

// SetWorkHook makes every Verify of d report its MAC work to f.
func SetWorkHook(d *Dialect, f func(sign.Work)) { d.workHook = f }
