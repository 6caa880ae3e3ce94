package pool

import (
	"testing"
	"time"
)

// TestBackoffLine: a failure's line says "backing off" only when the pool
// waits before the next attempt; with no wait (a first round of young
// deaths, a failure of a round whose backoff is over) it says what
// follows at once. Before, the first counted young death said "backing
// off" beside "backoff": "0s".
func TestBackoffLine(t *testing.T) {
	const (
		spawn = "Spawn failed"
		young = "Worker crashed soon after it was ready, as good as a failed spawn"
	)
	for _, tc := range []struct {
		name, failure, atOnce string
		wait                  time.Duration
		want                  string
	}{
		{"a first spawn failure, 1s", spawn, "retrying at once", time.Second, "Spawn failed; backing off"},
		{"a spawn failure of a round whose backoff is over", spawn, "retrying at once", 0, "Spawn failed; retrying at once"},
		{"a first round of young deaths", young, "replacing it at once", 0,
			"Worker crashed soon after it was ready, as good as a failed spawn; replacing it at once"},
		{"a second round of young deaths, 1s", young, "replacing it at once", time.Second,
			"Worker crashed soon after it was ready, as good as a failed spawn; backing off"},
		{"a millisecond is a wait", young, "replacing it at once", time.Millisecond,
			"Worker crashed soon after it was ready, as good as a failed spawn; backing off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := backoffLine(tc.failure, tc.wait, tc.atOnce); got != tc.want {
				t.Errorf("backoffLine(%q, %v, %q) = %q, want %q", tc.failure, tc.wait, tc.atOnce, got, tc.want)
			}
		})
	}
}
