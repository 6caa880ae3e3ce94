package pool_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// The log lines of a young death: any (logCrashed, a prefix of the
// others), one that holds the revision's spawns for the manager's return
// (logHeld), and a spawn in flight stopped by the hold (logStopped).
const (
	logCrashed = "Worker crashed soon after it was ready"
	logHeld    = "Worker crashed soon after it was ready; spawning none of its revision"
	logStopped = "Stopped a new worker of a revision whose processes die young"
)

// TestOneRoundOfYoungDeathsIsNotHeld: right after a rolling restart to a
// revision not proven, resistance on, in a cluster (ResistEarlyCrashes
// off), the two new workers die young together (killed at once, as an
// OOM sweep or a database blip would have them): one round, replaced at
// once as any first crash is, since the replacements may live; the pool
// does not hold the revision's spawns for the manager's return, which
// would cost the node its revision for a passing fault. Only once the
// replacements die young too (a second round) does it hold them, and
// report what the manager returns a node on (FailsTarget). Before, the
// hold began at the second death of the first round (failures, not
// rounds): the replacements were stopped before they served, and the
// status showed none of the revision running.
func TestOneRoundOfYoungDeathsIsNotHeld(t *testing.T) {
	e, book, cfg := startBootdie(t, "t/holdrounds", 2)
	cfg.Revision = "2"
	e.Pool.Update(cfg)

	var killed []int
	killTogether(t, book, readyUnkilled(t, e, killed), &killed)
	// Their replacements are spawned at once and serve: the kill asked for
	// nothing else (they are the next round).
	s := e.WaitFor(t, time.Minute, "2 replacements of revision 2 ready", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && !slices.ContainsFunc(pids(s), func(pid int) bool { return slices.Contains(killed, pid) })
	})
	if l := book.Find(logHeld); len(l) > 0 {
		t.Fatalf("one round of young deaths held the revision's spawns for the manager's return: %q %v", l[0].Msg, l[0].KVs)
	}
	if l := book.Find(logStopped); len(l) > 0 {
		t.Errorf("a replacement was stopped before it served: %q %v", l[0].Msg, l[0].KVs)
	}
	if s.Revision != "2" || s.SpawnFailures != 1 {
		t.Errorf("after one round: revision %q, spawnFailures %d; want 2 kept, 1 round", s.Revision, s.SpawnFailures)
	}

	killTogether(t, book, readyUnkilled(t, e, killed), &killed) // young too: the loop goes on
	book.WaitFor(t, logHeld)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if !reported(ctx, e, func(s pool.Status) bool { return failsTarget(s, "2") }) {
		t.Errorf("held after the second round, the pool did not report what the manager returns a node on (FailsTarget); status: %+v",
			e.Pool.Status())
	}
	// As long as the manager would take to return the node: a spawn the
	// hold let through would be ready by then, not only begun.
	if !pause(ctx, managerRoundTrip) {
		t.Fatal("the test ended before the manager's return would come")
	}
	if n := spawnedAfter(book, logHeld, "2"); n > 0 {
		t.Errorf("%d workers of revision 2 made ready once the pool held its spawns", n)
	}
}

// TestHoldOfASlowBootIsTimedFromItsSecondRound: as above, of an app whose
// processes take 5s to boot (BOOT_DELAY). The first round's replacements
// are ready 5s after it and die young (killed together) once the crash
// window of the first death is over: the second round comes after it, as
// it does for an app that boots slowly (why: scalingState.holdFrom). The
// hold starts at that round all the same, and runs the crash window from
// it: the pool reports what the manager returns a node on (FailsTarget),
// its next spawn of revision 2 is no sooner than the window from the
// second kill, and no worker of revision 2 is made ready before the
// (stand-in) manager's return. Timed from the first death
// (5854aa4), the hold was over before the second round: the pool
// respawned at once, and under load each replacement would take a
// waiting request and die in it.
func TestHoldOfASlowBootIsTimedFromItsSecondRound(t *testing.T) {
	e, book, good := startBootdie(t, "t/holdslowboot", 2)
	e.Pool.Update(pool.Config{Name: good.Name, Revision: "2", Template: bootdie(t, 2, env("BOOT_DELAY", "5"))})

	var killed []int
	killTogether(t, book, readyUnkilled(t, e, killed), &killed)
	// The pool recorded the first death before it logged it: its crash
	// window is over by then.
	firstOver := time.Now().Add(contract.CrashWindow)
	replacements := readyUnkilled(t, e, killed)
	if l := book.Find(logHeld); len(l) > 0 {
		t.Fatalf("one round of young deaths held the revision's spawns for the manager's return: %q %v", l[0].Msg, l[0].KVs)
	}
	// The fault comes back once the first death's window is over: the
	// moment is the test's setting, not a wait for the pool. The
	// replacements, ready at least 5s after the first death, are young
	// still (not 5s old, half the crash window).
	if !pause(t.Context(), time.Until(firstOver)) {
		t.Fatal("the test ended before the first death's crash window was over")
	}
	secondKill := time.Now()
	killTogether(t, book, replacements, &killed)
	if l := book.Find(logHeld); len(l) == 0 {
		t.Fatalf("a second round of young deaths, past the crash window of the first death, held nothing: the pool "+
			"backs off and respawns as for any crash loop (%d lines %q)", len(book.Find(logCrashed)), logCrashed)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	reportsHeld(ctx, t, e, secondKill, "the second round")
	if !pause(ctx, managerRoundTrip) {
		t.Fatal("the test ended before the stand-in manager's return")
	}
	e.Pool.Update(good) // the manager's return (NodeReturned)
	e.WaitFor(t, time.Minute, "2 ready workers of revision 1", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && s.Revision == "1"
	})
	if n := spawnedAfter(book, logHeld, "2"); n > 0 {
		t.Errorf("%d workers of revision 2 made ready while the pool held its spawns for the manager's return", n)
	}
}

// TestHoldRunsFromTheLastDeathInIt: the second round of young deaths
// starts the hold with one of its two workers still running (they die
// apart, as an app's processes do that each die a few seconds after
// ready); that survivor dies young in the hold, half the crash window
// after its spawn (a few seconds into the hold). The manager returns a
// node only once its report shows none of the revision running, so the
// hold's window must run from that death: the pool reports what the
// manager returns a node on (FailsTarget) with its next spawn of revision
// 2 no sooner than the crash window from the survivor's death, and
// begins no spawn of revision 2 before that window is over. Before, the
// hold ran from the round's first death only: the pool spawned revision
// 2 again a few seconds after the last of it died, before the return,
// and under load the new worker would take the held requests and die in
// them.
func TestHoldRunsFromTheLastDeathInIt(t *testing.T) {
	clock := &spawnClock{}
	e, book, good := startBootdieObserved(t, "t/holdlast", 2, clock)
	e.Pool.Update(pool.Config{Name: good.Name, Revision: "2", Template: bootdie(t, 2)})

	var killed []int
	killTogether(t, book, readyUnkilled(t, e, killed), &killed)
	round2 := readyUnkilled(t, e, killed)
	survivorSpawned := startedAt(t, e, round2[1])
	roundKill := time.Now()
	killTogether(t, book, round2[:1], &killed)
	book.WaitFor(t, logHeld)
	held := time.Now()
	// The survivor dies young in the hold: at half the crash window from
	// its spawn (its ready time is no sooner), and a second into the hold
	// at least, so that its death is apart from the hold's start. The
	// moment is the test's setting, not a wait for the pool.
	killAt := survivorSpawned.Add(contract.CrashWindow / 2)
	if soonest := held.Add(time.Second); killAt.Before(soonest) {
		killAt = soonest
	}
	if !pause(t.Context(), time.Until(killAt)) {
		t.Fatal("the test ended before the survivor's death")
	}
	lastKill := time.Now()
	if age := lastKill.Sub(survivorSpawned); age > contract.CrashWindow-youngMargin {
		t.Fatalf("this machine was too slow for the scenario: the survivor would be killed %s after its spawn, too "+
			"near the crash window (%s) for its death to count as young for sure (the hold was logged %s after its "+
			"spawn)", age.Round(time.Millisecond), contract.CrashWindow, held.Sub(survivorSpawned).Round(time.Millisecond))
	}
	killTogether(t, book, round2[1:], &killed)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	reportsHeld(ctx, t, e, lastKill, "the last death in the hold")
	// To the end of the window from the survivor's death: a spawn begun
	// before it is one the hold let through, whether or not it would be
	// ready before a manager's return (a slow boot would hide it from a
	// check of ready workers).
	holdEnd := lastKill.Add(contract.CrashWindow)
	if !pause(ctx, time.Until(holdEnd)) {
		t.Fatal("the test ended before the window from the survivor's death was over")
	}
	if early := clock.between(roundKill, holdEnd); len(early) > 0 {
		t.Errorf("%d spawns of revision 2 began in the hold, the first at %s: before the crash window from the last "+
			"death of it (killed at %s) was over (%s)", len(early), early[0].Format(stamp), lastKill.Format(stamp),
			holdEnd.Format(stamp))
	}
	e.Pool.Update(good) // the manager's return (NodeReturned)
	e.WaitFor(t, time.Minute, "2 ready workers of revision 1", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && s.Revision == "1"
	})
}

// youngMargin is how much sooner than the crash window from its spawn
// a test kills a worker whose death must count as young: the pool
// records the death a moment after the kill, and times it from the
// worker's ready time, which the status does not show (its spawn's
// does, and ready is no sooner).
const youngMargin = 2 * time.Second

// stamp is the layout of the times a failure names, as stampedLogger's.
const stamp = "15:04:05.000"

// startedAt is when the pool's worker pid was spawned (ProcessInfo's
// StartedAt); the test fails if the pool runs no such worker.
func startedAt(t *testing.T, e *agenttest.Env, pid int) time.Time {
	t.Helper()
	for _, p := range e.Pool.Status().Processes {
		if int(p.PID) == pid {
			return p.StartedAt.Time
		}
	}
	t.Fatalf("no worker with pid %d", pid)
	return time.Time{}
}

// spawnClock is a pool.Observer that notes when each spawn began (the
// pool logs a spawn only once it is ready).
type spawnClock struct {
	mu     sync.Mutex
	starts []time.Time
}

func (c *spawnClock) SpawnStarted(string, pool.SpawnKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts = append(c.starts, time.Now())
}
func (c *spawnClock) SpawnSucceeded(string, time.Duration)           {}
func (c *spawnClock) SpawnFailed(string, pool.SpawnKind)             {}
func (c *spawnClock) RestartStarted(string, ferryv1.RestartStrategy) {}
func (c *spawnClock) RestartFinished(string, string)                 {}
func (c *spawnClock) WorkerExited(string, bool)                      {}
func (c *spawnClock) WorkerOverran(string)                           {}

// between returns the times of the spawns begun from from until to.
func (c *spawnClock) between(from, to time.Time) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, at := range c.starts {
		if !at.Before(from) && at.Before(to) {
			out = append(out, at)
		}
	}
	return out
}

// reportsHeld waits until the pool, holding revision 2's spawns, reports
// what the manager returns a node on (FailsTarget), and checks that it
// spawns revision 2 next no sooner than the crash window from the death
// at from (what, saying which).
func reportsHeld(ctx context.Context, t *testing.T, e *agenttest.Env, from time.Time, what string) {
	t.Helper()
	var s pool.Status
	if !reported(ctx, e, func(r pool.Status) bool { s = r; return failsTarget(r, "2") }) {
		t.Fatalf("held, the pool did not report what the manager returns a node on (FailsTarget); status: %+v", e.Pool.Status())
	}
	if holdEnd := from.Add(contract.CrashWindow); s.ScalingRetryAt == nil || s.ScalingRetryAt.Time.Before(holdEnd) {
		t.Errorf("held, the pool spawns revision 2 next at %v, want no sooner than the crash window from %s (%s)",
			s.ScalingRetryAt, what, holdEnd.Format(stamp))
	}
}

// startBootdie starts a pool named name, as in a cluster (no
// ResistEarlyCrashes), of n bootdie workers of revision 1 that live,
// logging to the test's log and to the logbook it returns, and waits
// until they are ready. It returns revision 1's config too.
func startBootdie(t *testing.T, name string, n int32) (*agenttest.Env, *agenttest.Logbook, pool.Config) {
	t.Helper()
	return startBootdieObserved(t, name, n, nil)
}

// startBootdieObserved is startBootdie with obs the pool's Observer (nil
// for none).
func startBootdieObserved(t *testing.T, name string, n int32, obs pool.Observer) (*agenttest.Env, *agenttest.Logbook, pool.Config) {
	t.Helper()
	book := agenttest.NewLogbook(t)
	log := book.Over(stampedLogger(t))
	cfg := pool.Config{Name: name, Revision: "1", Template: bootdie(t, n)}
	e := agenttest.Start(t, cfg, agenttest.Options{Tick: 50 * time.Millisecond, Log: &log, Observer: obs})
	e.WaitFor(t, time.Minute, fmt.Sprintf("%d ready workers of revision 1", n), agenttest.Ready(n))
	return e, book, cfg
}

// bootdie is the template of n workers of testdata/bootdie with env.
func bootdie(t *testing.T, n int32, env ...ferryv1.EnvVar) ferryv1.AppTemplate {
	t.Helper()
	root, err := filepath.Abs("testdata/bootdie")
	if err != nil {
		t.Fatal(err)
	}
	return agenttest.WSGIAt(root, n, n, env...)
}

// readyUnkilled waits until the pool runs 2 ready workers of revision 2,
// none of them in killed, its rolling restart to 2 completed, and returns
// their pids.
func readyUnkilled(t *testing.T, e *agenttest.Env, killed []int) []int {
	t.Helper()
	s := e.WaitFor(t, time.Minute, "2 ready workers of revision 2, none killed", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && s.Revision == "2" &&
			!slices.ContainsFunc(pids(s), func(pid int) bool { return slices.Contains(killed, pid) })
	})
	if s.LastRestart == nil || s.LastRestart.Revision != "2" || s.LastRestart.Outcome != pool.OutcomeCompleted {
		t.Fatalf("last restart %+v, want the rolling restart to 2 completed", s.LastRestart)
	}
	return pids(s)
}

// killTogether kills the workers pids at once (as an OOM sweep would:
// one round), adds them to killed, and waits for the pool to log a young
// death for each worker killed so far.
func killTogether(t *testing.T, book *agenttest.Logbook, pids []int, killed *[]int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		*killed = append(*killed, pid)
	}
	book.WaitForN(t, logCrashed, len(*killed))
}
