package caddyauth

import (
	"context"
	"time"
)

// observeSlots bounds the background observations in flight.
const observeSlots = 256

// observeTimeout bounds one background observation.
const observeTimeout = 2 * time.Second

// LocalReplay reports whether the replay guard answers in-process (memory),
// rather than over the network (a shared store).
func (m *Manager) LocalReplay() bool {
	switch m.replay.(type) {
	case *MemoryReplayGuard, *LocalEphemeral:
		return true
	}
	return false
}

// ObserveOnce records key like SeenOnce where a repeat is only counted, not
// refused (amatino `replay observe`), and calls observed if key was seen
// before. With a node-local guard it runs inline and returns whether key was
// new. With a shared guard it runs in the background, so an observing
// request costs no round trip to Redis and an outage of the shared guard
// does not refuse it: the answer did not depend on it. At most observeSlots
// run at once; beyond that an observation is skipped and counted as a store
// error (op seen_once_skipped), as is a failed one (op seen_once). It then
// returns true.
func (m *Manager) ObserveOnce(ctx context.Context, key string, ttl time.Duration, observed func()) bool {
	if m.LocalReplay() {
		first, err := m.replay.SeenOnce(ctx, key, ttl)
		if err == nil && !first {
			observed()
		}
		return err != nil || first
	}
	select {
	case m.observing <- struct{}{}:
	default:
		m.obs.StoreError("seen_once_skipped")
		return true
	}
	go func() {
		defer func() { <-m.observing }()
		// Detached from the request: it may end before the store answers.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), observeTimeout)
		defer cancel()
		first, err := m.replay.SeenOnce(bctx, key, ttl)
		switch {
		case err != nil:
			m.obs.StoreError("seen_once")
		case !first:
			observed()
		}
	}()
	return true
}
