package pool_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

// TestRequestOfDeathAtANewApp: a client sends a request that kills its
// process (GET /crash) in a loop at a new app of three processes, whose
// revision has not shown yet that it stays up, while users ask for /.
// The processes die faster than their replacements boot. Every death is
// the request's: the first of the run, then as the run's request of death
// (the app serves / meanwhile, from any of its processes). No backoff, no
// scaling error, / served throughout. Before, each death counted as a
// crash soon after ready: the backoff grew to a minute, the pool emptied,
// and four in five users' requests got 503.
func TestRequestOfDeathAtANewApp(t *testing.T) {
	e, _ := startDeath(t, "t/deathnew", 3, false)
	users := load(t, e.URL, 2)
	stopAttack := crashLoop(t, e)
	e.attackUntil(t, func() bool { return e.obs.died.Load() >= 20 })
	stopAttack()
	e.servedThrough(t, users)
	e.loggedOnce(t, "GET /crash")
}

// TestRequestOfDeathThroughARollout: a client starts sending the request
// of death of TestRequestOfDeathAtANewApp, in a loop, as a pool that
// resists deployment errors (standalone's) rolls to a new revision, and
// goes on after: the new revision's processes, young, die in it too. They
// are no deployment error: the rollout completes, nothing is resisted or
// counted, and revision 2 serves / throughout. Before, a death of a young
// process of revision 2 in the request, before the run was known as a
// request of death, put the pool in resistance, back on revision 1 (in a
// cluster: the node returned to the revision before, even after
// RolloutComplete).
func TestRequestOfDeathThroughARollout(t *testing.T) {
	e, cfg := startDeath(t, "t/deathroll", 3, true)
	e.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
	users := load(t, e.URL, 2)
	cfg.Revision = "2"
	e.Pool.Update(cfg)
	stopAttack := crashLoop(t, e)
	e.attackUntil(t, func() bool {
		s := e.Pool.Status()
		return s.Restart == nil && s.Counts.Updated == s.Counts.Total && s.Counts.Total == e.size
	})
	deaths := e.obs.died.Load()
	e.attackUntil(t, func() bool { return e.obs.died.Load() >= deaths+10 })
	stopAttack()
	for _, p := range e.servedThrough(t, users).Processes {
		if p.Revision != "2" {
			t.Errorf("process %d serves revision %s, want 2", p.PID, p.Revision)
		}
	}
	e.loggedOnce(t, "GET /crash")
}

// crashLoop starts a client that sends GET /crash to e in a loop, until
// stop is called (or the test ends). After each death, once the pool has
// judged it, it asks for / until one is answered: the pool excuses a
// young revision's deaths in one request only while the app is seen
// serving others, and on a loaded machine the users' requests alone may
// not be answered between two deaths the loop makes back to back.
func crashLoop(t *testing.T, e *deathEnv) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			before := e.obs.died.Load()
			if code, _, _ := fetch(e.URL + "/crash"); code != http.StatusBadGateway {
				time.Sleep(10 * time.Millisecond) // no process to kill: do not spin
				continue
			}
			e.obs.diedSince(before, 5*time.Second)
			for ctx.Err() == nil {
				if code, _, _ := fetch(e.URL + "/"); code == http.StatusOK {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// attackUntil waits, up to 90 s, for until while crashLoop runs,
// and fails the test at the first scaling error or resistance it sees.
func (d *deathEnv) attackUntil(t *testing.T, until func() bool) {
	t.Helper()
	for end := time.Now().Add(90 * time.Second); !until(); time.Sleep(5 * time.Millisecond) {
		s := d.Pool.Status()
		if s.ScalingError != nil || s.Resisting != nil || s.ScalingFailures != 0 {
			t.Fatalf("after %d deaths: scaling error %+v, resisting %+v, failures %d; want none: the app serves every other request",
				d.obs.died.Load(), s.ScalingError, s.Resisting, s.ScalingFailures)
		}
		if time.Now().After(end) {
			t.Fatalf("attacking for 90 s, %d deaths: %+v", d.obs.died.Load(), s)
		}
	}
}
