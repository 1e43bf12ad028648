package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessiongate/sessiongate/caddyauth/enginetest"
)

// sessiongateSeries returns the caddy_sessiongate_* series of a /metrics
// text (name and labels, without the value) and every label value seen.
func sessiongateSeries(text string) (series []string, values []string) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_sessiongate_") {
			continue
		}
		id := line
		if i := strings.LastIndexByte(line, ' '); i >= 0 {
			id = line[:i]
		}
		series = append(series, id)
		if open := strings.IndexByte(id, '{'); open >= 0 && strings.HasSuffix(id, "}") {
			for _, v := range labelSet(id[open+1 : len(id)-1]) {
				values = append(values, v)
			}
		}
	}
	sort.Strings(series)
	return series, values
}

// TestMetricLabelCardinalitySEC47 (SEC-47): after 10 000 failed logins with
// distinct emails and a few hundred distinct users' successful logins and
// signed requests, the gateway exports exactly the caddy_sessiongate_*
// series it exported after the first few logins, and no label value holds
// an email, a user id, an api key or a session id. The logins go through
// eight keep-alive workers, with the harness's default login_limits (all
// throttles and lockout off) and its cheap password hashing.
func TestMetricLabelCardinalitySEC47(t *testing.T) {
	t.Parallel()
	const (
		flood   = 10000
		users   = 200
		workers = 8
		firstID = 700001 // ids no other number on /metrics is likely to equal
	)
	var many []*testUser
	for i := range users {
		u := &testUser{Name: fmt.Sprintf("card%d", i), ID: int64(firstID + i),
			Email: fmt.Sprintf("card%d@cardinality.test", i), Secret: "canary-card-" + randHex(8)}
		u.PHC = enginetest.Hash(t, u.Secret)
		many = append(many, u)
	}
	up := newUpstream(t)
	g := newGateway(t, up, gwOpts{Global: usersBlock(many...)})
	c := newClient(t, g.URL(""))

	// Warm up: one of each outcome the flood will produce.
	s := c.login(t, alice)
	if resp, body, err := c.get(s, "/warm"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("warm-up request: %v %s", err, body)
	}
	if resp, _, err := c.post("/session", "application/json", loginJSON("nobody@warm.test", 0, "wrong-password")); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("warm-up failed login: %v %v", err, resp)
	}
	bogus := amSession{APIKey: "warm-up-key-not-issued", SessionID: 1234567}
	if resp, _, err := c.get(bogus, "/warm"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("warm-up unknown session: %v %v", err, resp)
	}
	before, _ := sessiongateSeries(g.Metrics(t))
	if len(before) == 0 {
		t.Fatal("no caddy_sessiongate_* series on /metrics")
	}
	failedBefore, _ := metricValue(g.Metrics(t), "caddy_sessiongate_logins_total", `dialect="amatino",result="bad_credentials"`)

	// The flood, then the real users; distinct identifiers everywhere.
	var (
		next     atomic.Int64
		mu       sync.Mutex
		problems []string
		seen     []string // emails, ids, keys and session ids used
	)
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				switch {
				case i < flood:
					email := fmt.Sprintf("flood-%d-%s@cardinality.test", i, randHex(3))
					resp, body, err := c.post("/session", "application/json", loginJSON(email, 0, "not-the-password"))
					if err != nil || resp.StatusCode != http.StatusUnauthorized {
						note("login %s: %v %v %s", email, err, resp, body)
					}
				case i < flood+users:
					u := many[i-flood]
					sess, err := c.tryLogin(u.Email, 0, u.Secret)
					if err != nil {
						note("login %s: %v", u.Email, err)
						continue
					}
					if resp, body, err := c.get(sess, "/u/"+strconv.FormatInt(u.ID, 10)); err != nil || resp.StatusCode != http.StatusOK {
						note("signed request of %s: %v %s", u.Email, err, body)
					}
					issued := sess.SessionID
					sess.SessionID ^= 1 // an id no session has (ids are random 63-bit)
					if resp, _, err := c.get(sess, "/u"); err != nil || resp.StatusCode != http.StatusUnauthorized {
						note("unknown session of %s: %v %v", u.Email, err, resp)
					}
					mu.Lock()
					seen = append(seen, u.Email, strconv.FormatInt(u.ID, 10), sess.APIKey,
						strconv.FormatInt(sess.SessionID, 10), strconv.FormatInt(issued, 10))
					mu.Unlock()
				default:
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d+ unexpected answers, first: %s", len(problems), strings.Join(problems, "\n"))
	}

	text := g.Metrics(t)
	after, values := sessiongateSeries(text)
	if failedAfter, _ := metricValue(text, "caddy_sessiongate_logins_total", `dialect="amatino",result="bad_credentials"`); failedAfter-failedBefore != flood {
		t.Errorf("bad_credentials logins rose by %v, want %d: the flood was not counted", failedAfter-failedBefore, flood)
	}
	if ok, _ := metricValue(text, "caddy_sessiongate_logins_total", `dialect="amatino",result="ok"`); ok < users+1 {
		t.Errorf("ok logins %v, want at least %d", ok, users+1)
	}
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("caddy_sessiongate_* series changed: %d before, %d after; new: %v", len(before), len(after),
			newSeries(before, after))
	}
	for _, v := range values {
		if strings.Contains(v, "@") {
			t.Errorf("label value %q holds an email", v)
		}
		for _, id := range seen {
			if strings.Contains(v, id) {
				t.Errorf("label value %q holds an identifier of a user or session", v)
			}
		}
	}
}

// newSeries lists (at most 5 of) the series of after not in before.
func newSeries(before, after []string) []string {
	had := map[string]bool{}
	for _, s := range before {
		had[s] = true
	}
	var out []string
	for _, s := range after {
		if !had[s] && len(out) < 5 {
			out = append(out, s)
		}
	}
	return out
}
