package pool

import (
	"testing"
	"time"
)

// TestBackoffLine: a failure's line says "backing off" only when the pool
// waits before the next attempt; with no wait (a first round of young
// deaths, a failure of a round whose backoff is over) it says "not
// backing off", of the wait alone. Before, the first counted young death
// said "backing off" beside "backoff": "0s"; then "retrying at once" and
// "replacing it at once", an attempt a pool above minProcesses with no
// request queued does not make.
func TestBackoffLine(t *testing.T) {
	const (
		spawn = "Spawn failed"
		young = "Worker crashed soon after it was ready, as good as a failed spawn"
	)
	for _, tc := range []struct {
		name, failure string
		wait          time.Duration
		want          string
	}{
		{"a first spawn failure, 1s", spawn, time.Second, "Spawn failed; backing off"},
		{"a spawn failure of a round whose backoff is over", spawn, 0, "Spawn failed; not backing off"},
		{"a first round of young deaths", young, 0,
			"Worker crashed soon after it was ready, as good as a failed spawn; not backing off"},
		{"a second round of young deaths, 1s", young, time.Second,
			"Worker crashed soon after it was ready, as good as a failed spawn; backing off"},
		{"a millisecond is a wait", young, time.Millisecond,
			"Worker crashed soon after it was ready, as good as a failed spawn; backing off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := backoffLine(tc.failure, tc.wait); got != tc.want {
				t.Errorf("backoffLine(%q, %v) = %q, want %q", tc.failure, tc.wait, got, tc.want)
			}
		})
	}
}
