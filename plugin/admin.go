package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessiongate/sessiongate/caddyauth"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin module `admin.api.sessiongate`: routes under
// `/sessiongate/` on Caddy's admin endpoint to manage users kept in the
// store and the sessions of any user, while the gateway runs. It answers
// JSON; errors are Caddy's `{"error": "…"}` with 400 (invalid input), 404
// (unknown user, key or session, or no sessiongate app running), 409
// (conflict: a taken id, email, username or key, or a static user, which is
// read-only here), 413 (body over 64 KiB), 415 (not application/json) and
// 503 (store unavailable or hashing pool full, with Retry-After). No answer
// ever holds a password, hash, key, token or raw session id: users show key
// ids, sessions show their keyed id hash.
//
// Caddy instantiates it on every config load with no configuration of its
// own; it serves whichever sessiongate app was started last and is still
// running.
type adminAPI struct {
	// find returns the live app, nil if none; tests replace it.
	find func() *App
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.sessiongate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// maxAdminBody bounds a request body: the largest legitimate one, a user
// with MaxPublicKeys keys and a hash, is a few KiB.
const maxAdminBody = 64 << 10

// Routes returns the sessiongate admin routes (Go 1.22 patterns).
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "GET /sessiongate/users", Handler: a.with(listUsers)},
		{Pattern: "POST /sessiongate/users", Handler: a.with(createUser)},
		{Pattern: "GET /sessiongate/users/{id}", Handler: a.with(showUser)},
		{Pattern: "POST /sessiongate/users/{id}/disable", Handler: a.with(disableUser)},
		{Pattern: "POST /sessiongate/users/{id}/enable", Handler: a.with(enableUser)},
		{Pattern: "PUT /sessiongate/users/{id}/password", Handler: a.with(changePassword)},
		{Pattern: "POST /sessiongate/users/{id}/keys", Handler: a.with(addKey)},
		{Pattern: "DELETE /sessiongate/users/{id}/keys/{keyid}", Handler: a.with(removeKey)},
		{Pattern: "GET /sessiongate/users/{id}/sessions", Handler: a.with(listSessions)},
		{Pattern: "DELETE /sessiongate/users/{id}/sessions", Handler: a.with(revokeAll)},
		{Pattern: "DELETE /sessiongate/users/{id}/sessions/{session}", Handler: a.with(revokeOne)},
		{Pattern: "GET /sessiongate/stats", Handler: a.with(stats)},
	}
}

type adminFunc func(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error

// with finds the running engine for each request, so a reload is picked up
// at once and a config without sessiongate gets a clear answer.
func (a *adminAPI) with(fn adminFunc) caddy.AdminHandler {
	return caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		find := a.find
		if find == nil {
			find = running.current
		}
		app := find()
		if app == nil || app.Manager() == nil {
			return caddy.APIError{HTTPStatus: http.StatusNotFound,
				Err: errors.New("no sessiongate app is running in the current config")}
		}
		return fn(app.Manager(), w, r)
	})
}

// appRegistry knows the started sessiongate apps. During a reload the new
// config starts before the old one stops, and a failed reload stops the new
// one again, so "the newest still running" is the one to serve.
type appRegistry struct {
	mu   sync.Mutex
	apps []*App
}

var running appRegistry

func (r *appRegistry) add(a *App) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apps = append(r.apps, a)
}

func (r *appRegistry) remove(a *App) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.apps {
		if x == a {
			r.apps = append(r.apps[:i], r.apps[i+1:]...)
			return
		}
	}
}

func (r *appRegistry) current() *App {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.apps) == 0 {
		return nil
	}
	return r.apps[len(r.apps)-1]
}

// ---------------------------------------------------------------------------
// Answers

// userView is a user as the API shows it: no hash, no key material.
type userView struct {
	ID            int64     `json:"id"`
	Email         string    `json:"email,omitempty"`
	Username      string    `json:"username,omitempty"`
	AccountNumber string    `json:"account_number,omitempty"`
	Source        string    `json:"source"`
	Disabled      bool      `json:"disabled"`
	HasPassword   bool      `json:"has_password"`
	PublicKeys    []keyView `json:"public_keys"`
	Created       time.Time `json:"created,omitzero"`
}

type keyView struct {
	ID    string    `json:"id"`
	Added time.Time `json:"added,omitzero"`
}

func viewUser(a caddyauth.Account) userView {
	u := a.User
	v := userView{ID: u.ID, Email: u.Email, Username: u.Username, AccountNumber: u.AccountNumber,
		Source: "store", Disabled: u.Disabled, HasPassword: u.PasswordHash != "",
		PublicKeys: make([]keyView, 0, len(u.PublicKeys)), Created: u.Created}
	if a.Static {
		v.Source = "static"
	}
	for _, k := range u.PublicKeys {
		id := k.ID
		if id == "" {
			id = caddyauth.PublicKeyID(k.Key)
		}
		v.PublicKeys = append(v.PublicKeys, keyView{ID: id, Added: k.Added})
	}
	return v
}

type sessionView struct {
	Session          string    `json:"session"`
	Dialect          string    `json:"dialect"`
	Kind             string    `json:"kind"`
	Created          time.Time `json:"created"`
	LastSeen         time.Time `json:"last_seen"`
	IdleDeadline     time.Time `json:"idle_deadline,omitzero"`
	AbsoluteDeadline time.Time `json:"absolute_deadline"`
	Expired          bool      `json:"expired"`
}

// ---------------------------------------------------------------------------
// Handlers

func listUsers(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	q, err := strictQuery(r, "after", "limit")
	if err != nil {
		return err
	}
	var after int64
	limit := caddyauth.DefaultListLimit
	if s, ok := q["after"]; ok {
		if after, err = parseDecimal(s); err != nil {
			return badRequest("after: must be a user id (0 or a positive integer)")
		}
	}
	if s, ok := q["limit"]; ok {
		n, err := parseDecimal(s)
		if err != nil || n < 1 || n > caddyauth.MaxListLimit {
			return badRequest(fmt.Sprintf("limit: must be an integer from 1 to %d", caddyauth.MaxListLimit))
		}
		limit = int(n)
	}
	accounts, err := m.ListAccounts(r.Context(), after, limit)
	if err != nil {
		return apiError(w, err)
	}
	out := struct {
		Users     []userView `json:"users"`
		NextAfter int64      `json:"next_after,omitempty"`
	}{Users: make([]userView, 0, len(accounts))}
	for _, a := range accounts {
		out.Users = append(out.Users, viewUser(a))
	}
	if len(accounts) == limit {
		out.NextAfter = accounts[len(accounts)-1].User.ID
	}
	caddyauth.WriteJSON(w, http.StatusOK, out)
	return nil
}

func createUser(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	f, err := readObject(w, r, "id", "email", "username", "account_number", "password", "password_hash", "public_keys")
	if err != nil {
		return err
	}
	var nu caddyauth.NewUser
	if raw, ok := f["id"]; ok {
		if string(raw) != "0" {
			id, ok := caddyauth.JSONPositiveInt(raw)
			if !ok {
				return badRequest("id: must be a positive integer, or 0 to assign one")
			}
			nu.ID = id
		}
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{{"email", &nu.Email}, {"username", &nu.Username}, {"account_number", &nu.AccountNumber},
		{"password", &nu.Password}, {"password_hash", &nu.PasswordHash}} {
		if *s.dst, err = stringField(f, s.name); err != nil {
			return err
		}
	}
	if raw, ok := f["public_keys"]; ok {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil || items == nil {
			return badRequest("public_keys: must be an array of strings")
		}
		for _, it := range items {
			s, ok := caddyauth.JSONString(it)
			if !ok {
				return badRequest("public_keys: must be an array of strings")
			}
			nu.PublicKeys = append(nu.PublicKeys, s)
		}
	}
	u, err := m.CreateUser(r.Context(), nu)
	if err != nil {
		return apiError(w, err)
	}
	w.Header().Set("Location", "/sessiongate/users/"+strconv.FormatInt(u.ID, 10))
	caddyauth.WriteJSON(w, http.StatusCreated, viewUser(caddyauth.Account{User: u}))
	return nil
}

func showUser(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	a, err := m.Account(r.Context(), id)
	if err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, viewUser(a))
	return nil
}

func disableUser(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	n, err := m.DisableUser(r.Context(), id)
	if err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "disabled": true, "sessions_revoked": n})
	return nil
}

func enableUser(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	if err := m.EnableUser(r.Context(), id); err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "disabled": false})
	return nil
}

func changePassword(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	f, err := readObject(w, r, "password", "password_hash")
	if err != nil {
		return err
	}
	pw, err := stringField(f, "password")
	if err != nil {
		return err
	}
	hash, err := stringField(f, "password_hash")
	if err != nil {
		return err
	}
	n, err := m.ChangePassword(r.Context(), id, pw, hash)
	if err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "sessions_revoked": n})
	return nil
}

func addKey(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	f, err := readObject(w, r, "public_key")
	if err != nil {
		return err
	}
	key, err := stringField(f, "public_key")
	if err != nil {
		return err
	}
	if key == "" {
		return badRequest("public_key: required")
	}
	pk, err := m.AddKey(r.Context(), id, key)
	if err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusCreated, keyView{ID: pk.ID, Added: pk.Added})
	return nil
}

func removeKey(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	keyID := r.PathValue("keyid")
	if err := m.RemoveKey(r.Context(), id, keyID); err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "key_removed": keyID})
	return nil
}

func listSessions(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	infos, err := m.UserSessions(r.Context(), id)
	if err != nil {
		return apiError(w, err)
	}
	out := struct {
		Sessions []sessionView `json:"sessions"`
	}{Sessions: make([]sessionView, 0, len(infos))}
	for _, s := range infos {
		out.Sessions = append(out.Sessions, sessionView{Session: s.IDHash, Dialect: string(s.Dialect), Kind: string(s.Kind),
			Created: s.Created, LastSeen: s.LastSeen, IdleDeadline: s.IdleDeadline,
			AbsoluteDeadline: s.AbsoluteDeadline, Expired: s.Expired})
	}
	caddyauth.WriteJSON(w, http.StatusOK, out)
	return nil
}

func revokeAll(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := m.Account(r.Context(), id); err != nil {
		return apiError(w, err)
	}
	n, err := m.RevokeUser(r.Context(), id, "admin")
	if err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "sessions_revoked": n})
	return nil
}

func revokeOne(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := m.Account(r.Context(), id); err != nil {
		return apiError(w, err)
	}
	hash := r.PathValue("session")
	if err := m.RevokeSession(r.Context(), id, hash); err != nil {
		return apiError(w, err)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "session_revoked": hash})
	return nil
}

func stats(m *caddyauth.Manager, w http.ResponseWriter, r *http.Request) error {
	if _, err := strictQuery(r); err != nil {
		return err
	}
	st, err := m.Stats(r.Context())
	if err != nil {
		return apiError(w, err)
	}
	total := 0
	sessions := map[string]int{}
	for d, n := range st.Sessions {
		sessions[string(d)] = n
		total += n
	}
	ratio := 0.0
	if lookups := st.CacheHits + st.CacheMisses; lookups > 0 {
		ratio = float64(st.CacheHits) / float64(lookups)
	}
	caddyauth.WriteJSON(w, http.StatusOK, map[string]any{
		"sessions":       sessions,
		"sessions_total": total,
		"static_users":   st.StaticUsers,
		"cache": map[string]any{"entries": st.CacheEntries, "hits": st.CacheHits, "misses": st.CacheMisses,
			"hit_ratio": ratio},
	})
	return nil
}

// ---------------------------------------------------------------------------
// Input

func badRequest(msg string) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New(msg)}
}

// apiError maps an engine error to its status. The message of a 4xx names
// the field or the conflict, never a value (which may be a password); a 5xx
// says only what failed, and the cause goes to Caddy's admin log.
func apiError(w http.ResponseWriter, err error) error {
	var (
		fe *caddyauth.FieldError
		ce *caddyauth.ConflictError
	)
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.As(err, &fe):
		status, msg = http.StatusBadRequest, fe.Error()
	case errors.As(err, &ce):
		status, msg = http.StatusConflict, ce.Error()
	case errors.Is(err, caddyauth.ErrStaticUser):
		status, msg = http.StatusConflict, "this user is defined in the configuration (a static user) and cannot be changed through the API"
	case errors.Is(err, caddyauth.ErrTooManyKeys):
		status, msg = http.StatusConflict, fmt.Sprintf("the user already has %d public keys", caddyauth.MaxPublicKeys)
	case errors.Is(err, caddyauth.ErrUnknownKey):
		status, msg = http.StatusNotFound, "the user has no public key with this id"
	case errors.Is(err, caddyauth.ErrUnknownSession):
		status, msg = http.StatusNotFound, "the user has no session with this hash"
	case errors.Is(err, caddyauth.ErrNotFound):
		status, msg = http.StatusNotFound, "unknown user"
	case errors.Is(err, caddyauth.ErrBusy):
		status, msg = http.StatusServiceUnavailable, "password hashing at capacity, retry shortly"
	case errors.Is(err, caddyauth.ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "session store temporarily unavailable, retry shortly"
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	return caddy.APIError{HTTPStatus: status, Err: err, Message: msg}
}

func pathID(r *http.Request) (int64, error) {
	id, ok := caddyauth.ParsePositiveDecimal(r.PathValue("id"))
	if !ok {
		return 0, badRequest("user id: must be a positive integer")
	}
	return id, nil
}

func parseDecimal(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	n, ok := caddyauth.ParsePositiveDecimal(s)
	if !ok {
		return 0, errors.New("not a decimal")
	}
	return n, nil
}

// strictQuery returns the query parameters, refusing unknown and repeated
// ones, so a typo is an error rather than silently ignored.
func strictQuery(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string")
	}
	out := map[string]string{}
	for k, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, badRequest(fmt.Sprintf("unknown query parameter %q", k))
		}
		if len(vs) != 1 {
			return nil, badRequest(fmt.Sprintf("query parameter %q given more than once", k))
		}
		out[k] = vs[0]
	}
	return out, nil
}

// readObject reads a bounded application/json body holding one object with
// only the allowed members, each at most once (caddyauth.DecodeStrictObject).
func readObject(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]json.RawMessage, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: errors.New("the body must be application/json")}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, caddy.APIError{HTTPStatus: http.StatusRequestEntityTooLarge,
				Err: fmt.Errorf("the body is larger than %d bytes", maxAdminBody)}
		}
		return nil, badRequest("reading the body failed")
	}
	f, err := caddyauth.DecodeStrictObject(body, allowed...)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	return f, nil
}

// noBody refuses a body on an action that takes none, so a client that
// meant to send something learns it was not read.
func noBody(r *http.Request) error {
	if r.ContentLength > 0 {
		return badRequest("this action takes no body")
	}
	if r.ContentLength < 0 {
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1))
		if n > 0 {
			return badRequest("this action takes no body")
		}
	}
	return nil
}

// stringField returns member name as a string ("" when absent); any other
// JSON type is refused with the field named.
func stringField(f map[string]json.RawMessage, name string) (string, error) {
	raw, ok := f[name]
	if !ok {
		return "", nil
	}
	s, ok := caddyauth.JSONString(raw)
	if !ok {
		return "", badRequest(name + ": must be a string")
	}
	return s, nil
}

// Interface guards
var (
	_ caddy.Module      = (*adminAPI)(nil)
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
