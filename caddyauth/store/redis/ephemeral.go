package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/caddyauth"
)

// ephemeralKey maps an engine key ("replay:…", "code:…", "fail:…") to a
// Redis key: the purpose stays readable for operators, the rest is the
// SHA-256 of the whole key. The engine's keys may carry signatures or
// account names, which have no business in Redis in clear (SEC-16), and the
// digest bounds the key length whatever a client sends.
func (s *Store) ephemeralKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	purpose := "x"
	if p, _, ok := strings.Cut(key, ":"); ok && p != "" && len(p) <= 16 && isLowerAlnum(p) {
		purpose = p
	}
	return s.eph + purpose + ":" + hex.EncodeToString(sum[:])
}

func isLowerAlnum(s string) bool {
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// ttlMillis rounds a TTL up to whole milliseconds, at least one: PX takes
// milliseconds, and rounding down could end a window or a replay mark early.
func ttlMillis(ttl time.Duration) time.Duration {
	if ttl < time.Millisecond {
		return time.Millisecond
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

// PutOnce stores value under key for ttl (SET NX PX). ErrExists if a live
// value is there.
func (s *Store) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	const op = "put once"
	if err := s.begin(op); err != nil {
		return err
	}
	ok, err := s.client.SetArgs(ctx, s.ephemeralKey(key), value, goredis.SetArgs{Mode: "NX", TTL: ttlMillis(ttl)}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return s.fail(op, err)
	}
	if ok != "OK" {
		return fmt.Errorf("redis store: %s: %w", op, caddyauth.ErrExists)
	}
	return nil
}

// TakeOnce returns the value under key and deletes it in one command
// (GETDEL), so of several takers on any nodes exactly one gets it.
// ErrNotFound if absent or expired.
func (s *Store) TakeOnce(ctx context.Context, key string) ([]byte, error) {
	const op = "take once"
	if err := s.begin(op); err != nil {
		return nil, err
	}
	b, err := s.client.GetDel(ctx, s.ephemeralKey(key)).Bytes()
	if err != nil {
		return nil, s.fail(op, err) // goredis.Nil becomes ErrNotFound
	}
	return b, nil
}

// SeenOnce records key for ttl and reports whether it was new (SET NX PX):
// the replay guard shared by every node (SEC-24).
func (s *Store) SeenOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	const op = "seen once"
	if err := s.begin(op); err != nil {
		return false, err
	}
	ok, err := s.client.SetArgs(ctx, s.ephemeralKey(key), "1", goredis.SetArgs{Mode: "NX", TTL: ttlMillis(ttl)}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, s.fail(op, err)
	}
	return ok == "OK", nil
}

// addFailure counts one failure and starts the window on the first one. The
// PTTL check also repairs a counter that somehow lost its expiry, so a
// counter can never lock an account forever.
var addFailure = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)

// AddFailure counts one failure under key in a fixed window starting at the
// first failure, and returns the count and the time left in the window.
// One script, so the count and its expiry are set atomically on every node.
func (s *Store) AddFailure(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	const op = "add failure"
	if err := s.begin(op); err != nil {
		return 0, 0, err
	}
	res, err := addFailure.Run(ctx, s.client, []string{s.ephemeralKey(key)}, ttlMillis(window).Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, s.fail(op, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("redis store: %s: unexpected script reply", op)
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// Failures returns the count and time left of key's current window, (0, 0)
// when there is none.
func (s *Store) Failures(ctx context.Context, key string) (int64, time.Duration, error) {
	const op = "failures"
	if err := s.begin(op); err != nil {
		return 0, 0, err
	}
	k := s.ephemeralKey(key)
	var (
		get *goredis.StringCmd
		ttl *goredis.DurationCmd
	)
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, k)
		ttl = p.PTTL(ctx, k)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, 0, s.fail(op, err)
	}
	n, err := get.Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("redis store: %s: %w", op, errCorrupt)
	}
	left := ttl.Val()
	if left < 0 {
		left = 0
	}
	return n, left, nil
}

// ResetFailures forgets key's failures (a successful login).
func (s *Store) ResetFailures(ctx context.Context, key string) error {
	const op = "reset failures"
	if err := s.begin(op); err != nil {
		return err
	}
	return s.fail(op, s.client.Del(ctx, s.ephemeralKey(key)).Err())
}
