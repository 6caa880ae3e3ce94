package proxy_test

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestUnavailableRetryAfter: a request to a pool whose processes cannot
// start is answered 503 with a Retry-After of the seconds until the pool
// tries again (its backoff, which grows to a minute), so a client that
// honours it does not come back before anything could have changed.
// Before, it was 5 whatever the backoff.
func TestUnavailableRetryAfter(t *testing.T) {
	e := agenttest.Start(t, pool.Config{Name: "t/broken", Revision: "1", Template: agenttest.WSGI("broken-wsgi", 1, 1)},
		agenttest.Options{Proxy: proxy.Options{}})
	// A backoff past the first few seconds, so that the answer differs
	// from the 5 it was.
	e.WaitFor(t, 2*time.Minute, "a backoff of 8 s or more", func(s pool.Status) bool {
		return s.ScalingRetryAt != nil && time.Until(s.ScalingRetryAt.Time) > 6*time.Second
	})
	for range 3 { // the backoff may move under the request: a new failure, a new end
		retryAt := e.Pool.Status().ScalingRetryAt
		before := time.Now()
		resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
		after := time.Now()
		if retryAt == nil || !retryAt.Equal(e.Pool.Status().ScalingRetryAt) {
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no running process") {
			t.Fatalf("got %d %q, want the 503 of a pool with no process", resp.StatusCode, body)
		}
		got, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		lo := int(math.Ceil(retryAt.Sub(after).Seconds()))
		hi := int(math.Ceil(retryAt.Sub(before).Seconds()))
		if err != nil || got < lo || got > hi {
			t.Errorf("Retry-After %q, want the seconds until the pool's next try at %s (%d to %d)",
				resp.Header.Get("Retry-After"), retryAt.Format(time.TimeOnly), lo, hi)
		}
		return
	}
	t.Fatal("the pool's backoff moved under every request")
}
