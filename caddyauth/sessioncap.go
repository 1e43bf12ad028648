package caddyauth

import (
	"context"
	"slices"
)

// enforceSessionCap ends the oldest sessions of userID beyond the cap
// (Config.MaxSessionsPerUser), right after a login stored a new one, so a
// user holds at most that many sessions once the login is answered (SEC-13).
// The newest session, the one just created, is never the one ended. Best
// effort: a store that cannot list or delete leaves the extra sessions to
// the next login, counted as a store error; the login itself succeeded.
func (m *Manager) enforceSessionCap(ctx context.Context, userID int64, keep string) {
	if m.maxSessions <= 0 {
		return
	}
	all, err := m.store.ListUserSessions(ctx, userID)
	if err != nil {
		m.obs.StoreError("list_user_sessions")
		return
	}
	if len(all) <= m.maxSessions {
		return
	}
	// Oldest first; ties broken by id so the order is stable.
	slices.SortFunc(all, func(a, b *Session) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		switch {
		case a.ID == keep:
			return 1
		case b.ID == keep:
			return -1
		}
		return compareStrings(a.ID, b.ID)
	})
	for _, s := range all[:len(all)-m.maxSessions] {
		if s.ID == keep {
			continue
		}
		if _, err := m.EndSession(ctx, s.ID, "revoked"); err == nil {
			m.Audit(Event{Type: "session_evicted", Dialect: s.Dialect, Reason: "session_cap",
				UserID: userID, SessionHash: m.LogHash(s.ID)})
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
