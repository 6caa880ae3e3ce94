package pool_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
)

// TestDeathTakenAsItsRequestsIsReplacedOnlyAsScalingAsks: a worker of a
// lasted revision dies in a request (GET /crash), a death taken as the
// request's, in a pool of two. At minProcesses 2 a process is spawned in
// its place; with minProcesses lowered to 1 (both stay: idleTimeout has
// not passed) and nothing queued, none is: taking the death as the
// request's spares the pool a backoff, it asks for no spawn that the
// pool's scaling (decide) does not. The log line and the docs promise no
// replacement either. Which rule takes it is not chosen: the worker the
// request reaches may have lived the crash window or not yet (the
// revision lasted with the first that did), so the death is the
// request's for that (ofRequestLocked) or excused (excuseLocked); both
// log the same line and ask for no spawn.
func TestDeathTakenAsItsRequestsIsReplacedOnlyAsScalingAsks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		min     int32
		spawned int64 // in place of the dead worker
	}{
		{name: "at minProcesses: replaced", min: 2, spawned: 1},
		{name: "above minProcesses, nothing queued: not replaced", min: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, cfg := startDeath(t, "t/excused", 2, false)
			e.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
			cfg.Template.Pool.MinProcesses = tc.min
			e.Pool.Update(cfg)
			before := pids(e.Pool.Status())
			spawns, died := e.obs.spawns.Load(), e.obs.died.Load()
			if code, body, err := fetch(e.URL + "/crash"); code != http.StatusBadGateway || !strings.Contains(body, "exited while handling this request") {
				t.Fatalf("GET /crash = %d %q (%v), want 502 saying its worker exited while handling it", code, body, err)
			}
			if !e.obs.diedSince(died, 30*time.Second) {
				t.Fatal("GET /crash got 502, and the pool reported no death within 30 s")
			}
			line := e.book.WaitFor(t, "Worker exited while handling a request; taken as the request's, not counted as a crash of its app")
			v, _ := line.Value("pid")
			dead := fmt.Sprint(v)
			if !slices.ContainsFunc(before, func(pid int) bool { return fmt.Sprint(pid) == dead }) {
				t.Fatalf("the death taken as its request's is of pid %s, want one of the pool's %v", dead, before)
			}
			var s pool.Status
			if tc.spawned > 0 {
				s = e.WaitFor(t, 30*time.Second, "a process spawned in place of "+dead, func(s pool.Status) bool {
					return agenttest.Ready(2)(s) && !slices.ContainsFunc(pids(s), func(pid int) bool { return fmt.Sprint(pid) == dead })
				})
			} else {
				// A decision taken after the death, which every pass
				// since it agrees with: any spawn one asked for is
				// registered (Spawning) by the time it returns.
				pool.Reconcile(e.Pool)
				s = e.Pool.Status()
				if !agenttest.Ready(1)(s) || slices.ContainsFunc(pids(s), func(pid int) bool { return fmt.Sprint(pid) == dead }) {
					t.Errorf("after the death of %s: counts %+v, pids %v; want the other of %v alone, ready, nothing spawning",
						dead, s.Counts, pids(s), before)
				}
			}
			if got := e.obs.spawns.Load() - spawns; got != tc.spawned {
				t.Errorf("%d spawns started after the death, want %d", got, tc.spawned)
			}
			if s.ScalingError != nil || s.ScalingFailures != 0 || e.obs.failed.Load() != 0 {
				t.Errorf("scaling error %+v, failures %d, spawn failures counted %d; want none: the death was the request's",
					s.ScalingError, s.ScalingFailures, e.obs.failed.Load())
			}
			e.book.Check(t)
		})
	}
}
