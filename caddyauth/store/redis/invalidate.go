package redis

import (
	"context"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Invalidation messages are binary, because keys are session ids, which may
// hold any byte:
//
//	byte     version (1)
//	repeated uvarint len, bytes   one key each
//
// A message that does not parse makes the receiver flush its whole cache:
// dropping too much costs a store read, dropping too little serves a
// revoked session.
const invalidationVersion = 1

func encodeKeys(keys []string) []byte {
	n := 1
	for _, k := range keys {
		n += binary.MaxVarintLen64 + len(k)
	}
	b := make([]byte, 1, n)
	b[0] = invalidationVersion
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeKeys(p string) ([]string, bool) {
	if len(p) == 0 || p[0] != invalidationVersion {
		return nil, false
	}
	b := []byte(p[1:])
	var keys []string
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) { // #nosec G115 -- 0 < w ≤ len(b), so len(b)-w ≥ 0
			return nil, false
		}
		b = b[w:]
		keys = append(keys, string(b[:n]))
		b = b[n:]
	}
	return keys, true
}

// PublishInvalidation asks every node sharing the store, this one
// included, to drop the cache entries with these keys.
func (s *Store) PublishInvalidation(ctx context.Context, keys []string) error {
	const op = "publish invalidation"
	if err := s.begin(op); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return s.fail(op, s.client.Publish(ctx, s.opts.Channel, encodeKeys(keys)).Err())
}

// Backoff between subscription attempts while Redis cannot be reached.
const (
	minResubscribe = 50 * time.Millisecond
	maxResubscribe = 2 * time.Second
)

// SubscribeInvalidations listens on the channel until ctx ends or the store
// is closed: drop for each message, flush on every successful subscription,
// the first included. Pub/sub delivers at most once and forgets what was
// published while a node was not subscribed, so a fresh subscription can
// only be trusted after the whole cache is dropped (REL-04). A connection
// that breaks, or stays silent for two ping intervals (a stalled Redis), is
// replaced, with a growing pause while Redis stays unreachable.
func (s *Store) SubscribeInvalidations(ctx context.Context, drop func(keys []string), flush func()) {
	wait := minResubscribe
	for ctx.Err() == nil && !s.closed.Load() {
		if s.listen(ctx, drop, flush) {
			wait = minResubscribe
		}
		if ctx.Err() != nil {
			return
		}
		s.resubscribes.Add(1)
		// Jitter keeps the nodes of a cluster from reconnecting in step.
		pause := wait/2 + time.Duration(mrand.Int64N(int64(wait)/2+1)) // #nosec G404 -- jitter, not a secret
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxResubscribe)
	}
}

// listen runs one subscription until it fails. It reports whether Redis
// confirmed the subscription.
func (s *Store) listen(ctx context.Context, drop func(keys []string), flush func()) (subscribed bool) {
	ps := s.client.Subscribe(ctx, s.opts.Channel)
	// Close unblocks a pending receive as soon as ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		stop()
		_ = ps.Close()
	}()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.pingEvery)
		if err != nil {
			if ctx.Err() != nil || s.closed.Load() || !isTimeout(err) || pinged {
				return subscribed
			}
			// Silence: ask for a sign of life, and give up on the
			// connection if none comes within the next interval.
			if ps.Ping(ctx) != nil {
				return subscribed
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			// go-redis also resubscribes by itself after some errors; every
			// confirmation is a new subscription, after which anything
			// published before it may have been missed.
			if m.Kind == "subscribe" {
				subscribed = true
				flush()
			}
		case *goredis.Message:
			if keys, ok := decodeKeys(m.Payload); ok {
				drop(keys)
			} else {
				flush()
			}
		case *goredis.Pong:
			s.pongs.Add(1)
		}
	}
}

// isTimeout reports a read that timed out without a broken connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
