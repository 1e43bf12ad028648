package redis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/caddyauth"
	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
	"github.com/sessiongate/sessiongate/caddyauth/store/redis/redistest"
	"github.com/sessiongate/sessiongate/caddyauth/store/storetest"
)

// TestConformance runs the suite every store passes against a real
// redis-server. Each subtest gets its own key prefix, hence an empty store.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, func(t *testing.T) caddyauth.Store {
		return openStore(t, srv, nil)
	})
}

// Session keys expire Retention after the session's deadline, or after now
// when the deadline is already past; token keys expire with their session,
// and a touch moves both.
func TestSessionKeysExpireAfterDeadlinePlusRetention(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const retention = 7 * time.Minute
	st := openStore(t, srv, func(o *Options) { o.Retention = retention })
	admin := srv.Client()
	ctx := t.Context()
	now := time.Now()

	mk := func(id string, idle, abs time.Duration) *caddyauth.Session {
		s := storetest.NewSession(id, 42, caddyauth.DialectSXT, now)
		s.IdleDeadline, s.AbsoluteDeadline = now.Add(idle), now.Add(abs)
		if idle == 0 {
			s.IdleDeadline = time.Time{}
		}
		s.Tokens = []caddyauth.Token{{Digest: storetest.Digest("tok-" + id), Kind: caddyauth.TokenAccess, Expires: s.AbsoluteDeadline}}
		return s
	}
	tests := []struct {
		name string
		s    *caddyauth.Session
		want time.Duration // expected PTTL, from now
	}{
		{"idle deadline first", mk("idle", 30*time.Minute, 24*time.Hour), 30*time.Minute + retention},
		{"absolute deadline first", mk("abs", 2*time.Hour, time.Hour), time.Hour + retention},
		{"no idle timeout", mk("noidle", 0, 3*time.Hour), 3*time.Hour + retention},
		{"deadline already past", mk("past", -time.Hour, -time.Minute), retention},
	}
	// The PTTL is read some time after now; a minute of slack on either
	// side tells a right expiry from a wrong one without timing the test.
	const slack = time.Minute
	check := func(t *testing.T, key string, want time.Duration) {
		t.Helper()
		got, err := admin.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %q: %v", key, err)
		}
		if got < want-slack || got > want+slack {
			t.Errorf("PTTL of %q = %v, want about %v", key, got, want)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.CreateSession(ctx, tc.s); err != nil {
				t.Fatal(err)
			}
			check(t, st.sessionKey(tc.s.ID), tc.want)
			check(t, st.tokenKey(tc.s.Tokens[0].Digest), tc.want)
		})
	}
	t.Run("touch moves the expiry", func(t *testing.T) {
		s := tests[0].s
		if err := st.TouchSession(ctx, s.ID, now, now.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		check(t, st.sessionKey(s.ID), 5*time.Hour+retention)
		check(t, st.tokenKey(s.Tokens[0].Digest), 5*time.Hour+retention)
	})
	t.Run("indexes do not expire", func(t *testing.T) {
		for _, key := range []string{st.userSessionsKey(42), st.deadlineKey(caddyauth.DialectSXT), st.dialectsKey()} {
			if got, err := admin.PTTL(ctx, key).Result(); err != nil || got != -1 {
				t.Errorf("PTTL of %q = %v, %v; want -1 (no expiry)", key, got, err)
			}
		}
	})
}

// A record Redis expired leaves index entries behind: readers skip them,
// and PurgeExpired removes them without reporting a session it cannot read.
func TestIndexEntriesOfExpiredRecordsAreCleaned(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := openStore(t, srv, nil)
	admin := srv.Client()
	ctx := t.Context()

	gone := storetest.NewSession("gone", 42, caddyauth.DialectAmatino, storetest.Epoch)
	kept := storetest.NewSession("kept", 42, caddyauth.DialectAmatino, storetest.Epoch)
	for _, s := range []*caddyauth.Session{gone, kept} {
		if err := st.CreateSession(ctx, s.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	// What Redis does when the TTL runs out.
	if err := admin.Del(ctx, st.sessionKey(gone.ID)).Err(); err != nil {
		t.Fatal(err)
	}

	list, err := st.ListUserSessions(ctx, 42)
	if err != nil {
		t.Fatal(err)
	}
	if got := storetest.IDs(list); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("ListUserSessions = %q, want [kept]", got)
	}
	// Expired or not, a dangling entry is counted until purged.
	counts, err := st.CountSessions(ctx)
	if err != nil || counts[caddyauth.DialectAmatino] != 2 {
		t.Fatalf("CountSessions = %v, %v; want amatino 2 before the purge", counts, err)
	}
	purged, err := st.PurgeExpired(ctx, storetest.Epoch.Add(storetest.IdleTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if got := storetest.IDs(purged); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("PurgeExpired = %q, want [kept] (gone has no record to return)", got)
	}
	for _, key := range []string{st.userSessionsKey(42), st.deadlineKey(caddyauth.DialectAmatino)} {
		if n, err := admin.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("index %q still exists after the purge (%d, %v)", key, n, err)
		}
	}
	if counts, err := st.CountSessions(ctx); err != nil || len(counts) != 0 {
		t.Errorf("CountSessions after the purge = %v, %v; want empty", counts, err)
	}
}

// allStored returns every key of the store's database with everything it
// holds: the key name, its DUMP (the serialized value, as a copy of the
// database would hold it) and its members read as plain values (DUMP may
// compress strings, which would hide a clear secret from a byte search).
func allStored(t *testing.T, admin *goredis.Client) map[string][]byte {
	t.Helper()
	ctx := t.Context()
	keys, err := admin.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		var b bytes.Buffer
		b.WriteString(k)
		dump, err := admin.Dump(ctx, k).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			t.Fatalf("DUMP %q: %v", k, err)
		}
		b.WriteString(dump)
		typ, err := admin.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			v, err := admin.Get(ctx, k).Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				t.Fatal(err)
			}
			vals = []string{v}
		case "set":
			vals, err = admin.SMembers(ctx, k).Result()
		case "zset":
			vals, err = admin.ZRange(ctx, k, 0, -1).Result()
		case "none":
		default:
			t.Fatalf("key %q has unexpected type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			b.WriteString(v)
		}
		out[k] = b.Bytes()
	}
	return out
}

// encodings lists the forms a leaked secret could take in Redis.
func encodings(secret []byte) map[string][]byte {
	return map[string][]byte{
		"raw":       secret,
		"base64":    []byte(base64.StdEncoding.EncodeToString(secret)),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString(secret)),
		"hex":       []byte(hex.EncodeToString(secret)),
	}
}

// SEC-16: after logins through the engine, nothing in Redis holds an HMAC
// key, a bearer token, a session key or a replay value in clear: only
// sealed secrets and SHA-256 digests.
func TestNoClearSecretsInRedis_SEC16(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := openStore(t, srv, nil)
	admin := srv.Client()
	ctx := t.Context()
	users, err := caddyauth.NewStaticUsers([]caddyauth.User{{ID: 42, Email: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := caddyauth.NewManager(caddyauth.Config{
		Store: st, Users: users, Hasher: enginetest.CheapHasher(t),
		Sealer: enginetest.NewSealer(t), Ephemeral: st,
	})
	if err != nil {
		t.Fatal(err)
	}
	u := &caddyauth.User{ID: 42}

	apiKey := []byte("Zq3V7mT0d9ZrW1bYkN2sPfH6xLcE8uJgA4iOyRtQnKvM")
	if _, err := m.StartSession(ctx, caddyauth.NewSession{User: u, Dialect: caddyauth.DialectAmatino,
		Kind: caddyauth.KindHMACKey, ID: "4200100", Secret: apiKey, Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	sessionKey := "Vb7Kq2Lm9Xc4Rt8Yz1Wd6Fh3Jn5Pg0Sa2Ue7Io4QwEr"
	skDigest := sha256.Sum256([]byte(sessionKey))
	if _, err := m.StartSession(ctx, caddyauth.NewSession{User: u, Dialect: caddyauth.DialectVidentity,
		Kind: caddyauth.KindSessionKey, ID: hex.EncodeToString(skDigest[:]), Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	token := "sxt-access-9f2Kd83LxQ0pZr7VmN4bT6yW1cH5jG8e"
	tokDigest := storetest.Digest(token)
	sxt := storetest.NewSession(storetest.Digest("sxt session"), 42, caddyauth.DialectSXT, time.Now())
	sxt.Tokens = []caddyauth.Token{{Digest: tokDigest, Kind: caddyauth.TokenAccess, Expires: sxt.AbsoluteDeadline}}
	if err := st.CreateSession(ctx, sxt); err != nil {
		t.Fatal(err)
	}
	// Ephemeral state keyed by values a client sent.
	signature := "c2lnbmF0dXJlLW9mLWEtcmVxdWVzdC13aXRoLWEtc2VjcmV0"
	if _, err := m.SeenOnce(ctx, "replay:"+signature, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.AddFailure(ctx, "fail:"+signature, time.Minute); err != nil {
		t.Fatal(err)
	}

	stored := allStored(t, admin)
	find := func(needle []byte) []string {
		var hits []string
		for k, b := range stored {
			if bytes.Contains(b, needle) {
				hits = append(hits, k)
			}
		}
		return hits
	}
	// The search works: what must be stored is found.
	for _, present := range []string{tokDigest, hex.EncodeToString(skDigest[:]), "4200100"} {
		if len(find([]byte(present))) == 0 {
			t.Fatalf("the byte search does not find %q, which must be stored", present)
		}
	}
	secrets := map[string][]byte{
		"api key":     apiKey,
		"session key": []byte(sessionKey),
		"token":       []byte(token),
		"signature":   []byte(signature),
	}
	for name, secret := range secrets {
		for enc, needle := range encodings(secret) {
			if hits := find(needle); len(hits) > 0 {
				t.Errorf("%s (%s) found in clear under %d key(s)", name, enc, len(hits))
			}
		}
	}
}

// Session and user keys share one hash tag, so the multi-key transactions
// stay valid in cluster mode; ephemeral keys have none, so they spread.
func TestKeyLayout(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := openStore(t, srv, func(o *Options) { o.KeyPrefix = "layout:" })
	admin := srv.Client()
	ctx := t.Context()

	s := storetest.NewSession("s1", 7, caddyauth.DialectSXT, time.Now())
	s.Tokens = []caddyauth.Token{{Digest: storetest.Digest("t1"), Kind: caddyauth.TokenAccess, Expires: s.AbsoluteDeadline}}
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, storetest.NewUser(0, "layout", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SeenOnce(ctx, "replay:abc", time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := admin.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var data, eph int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "{layout}:"):
			data++
		case strings.HasPrefix(k, "layout:e:replay:"):
			eph++
			if strings.ContainsAny(k, "{}") {
				t.Errorf("ephemeral key %q carries a hash tag", k)
			}
		default:
			t.Errorf("key %q is outside the store's layout", k)
		}
	}
	// Session, token, user set, deadline set, dialects; user, email,
	// username, key id, uids, umax.
	if data < 11 || eph != 1 {
		t.Errorf("got %d tagged and %d ephemeral keys, want at least 11 and 1: %q", data, eph, keys)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		wantErr string
		check   func(t *testing.T, o Options)
	}{
		{name: "defaults", in: Options{}, check: func(t *testing.T, o Options) {
			if len(o.Addrs) != 1 || o.Addrs[0] != DefaultAddr || o.KeyPrefix != DefaultKeyPrefix ||
				o.Channel != "sessiongate:invalidate" || o.DialTimeout != DefaultTimeout ||
				o.ReadTimeout != DefaultTimeout || o.WriteTimeout != DefaultTimeout || o.Retention != DefaultRetention {
				t.Errorf("defaults = %+v", o)
			}
		}},
		{name: "channel follows prefix", in: Options{KeyPrefix: "gw2:"}, check: func(t *testing.T, o Options) {
			if o.Channel != "gw2:invalidate" {
				t.Errorf("Channel = %q", o.Channel)
			}
		}},
		{name: "explicit values kept", in: Options{Addrs: []string{"r:1"}, ReadTimeout: time.Second, Channel: "c", PoolSize: 3},
			check: func(t *testing.T, o Options) {
				if o.Addrs[0] != "r:1" || o.ReadTimeout != time.Second || o.Channel != "c" || o.PoolSize != 3 {
					t.Errorf("options = %+v", o)
				}
			}},
		{name: "brace in prefix", in: Options{KeyPrefix: "a{b}:"}, wantErr: "must not contain"},
		{name: "only colons", in: Options{KeyPrefix: "::"}, wantErr: "other than ':'"},
		{name: "negative db", in: Options{DB: -1}, wantErr: "db -1"},
		{name: "negative pool", in: Options{PoolSize: -1}, wantErr: "pool size"},
		{name: "negative timeout", in: Options{ReadTimeout: -time.Second}, wantErr: "read timeout"},
		{name: "negative retention", in: Options{Retention: -time.Second}, wantErr: "retention"},
		{name: "empty address", in: Options{Addrs: []string{""}}, wantErr: "empty address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.in.normalized()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if _, err := Open(t.Context(), tc.in); err == nil || !strings.HasPrefix(err.Error(), "redis store") {
					t.Errorf("Open err = %v, want one naming the redis store", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

// REL-01: a store that cannot be used fails Open with an error that names
// the store and its address, wraps ErrUnavailable, and never shows a
// password.
func TestOpenFailsClearly_REL01(t *testing.T) {
	const password = "s3cret-Redis-pw-8812"
	srv := redistest.Start(t, redistest.Options{Password: password})
	closed := redistest.Start(t, redistest.Options{})
	deadAddr := closed.Addr()
	closed.Kill()

	tests := []struct {
		name     string
		addr     string
		password string
	}{
		{"wrong password", srv.Addr(), "wrong-Password-4471"},
		{"no password", srv.Addr(), ""},
		{"nothing listening", deadAddr, "wrong-Password-4471"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			st, err := Open(ctx, Options{Addrs: []string{tc.addr}, Password: tc.password})
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "redis store (") || !strings.Contains(msg, tc.addr) {
				t.Errorf("error %q does not name the store and its address", msg)
			}
			if !errors.Is(err, caddyauth.ErrUnavailable) || errors.Is(err, caddyauth.ErrNotFound) {
				t.Errorf("error %q is not ErrUnavailable", msg)
			}
			for _, pw := range []string{password, "wrong-Password-4471"} {
				if strings.Contains(msg, pw) {
					t.Errorf("error %q contains a password", msg)
				}
			}
		})
	}
	t.Run("right password", func(t *testing.T) {
		st := openStore(t, srv, nil)
		if err := st.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// New wraps a client the caller built (and hands it over: Close closes it).
func TestNewOnExistingClient(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil client) succeeded")
	}
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	if _, err := New(c, Options{KeyPrefix: "{bad}"}); err == nil {
		t.Error("New with a bad prefix succeeded")
	}
	st, err := New(c, Options{KeyPrefix: "wrapped:"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := st.CreateSession(t.Context(), storetest.NewSession("w", 1, caddyauth.DialectNative, storetest.Epoch)); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Client().Exists(t.Context(), "{wrapped}:s:w").Result(); err != nil || n != 1 {
		t.Errorf("session key under the given prefix: %d, %v", n, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()).Err(); !errors.Is(err, goredis.ErrClosed) {
		t.Errorf("client after Store.Close: %v, want closed", err)
	}
}
