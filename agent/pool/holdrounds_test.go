package pool_test

import (
	"context"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
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
	book := agenttest.NewLogbook(t)
	log := book.Over(stampedLogger(t))
	root, _ := filepath.Abs("testdata/bootdie")
	cfg := pool.Config{Name: "t/holdrounds", Revision: "1", Template: agenttest.WSGIAt(root, 2, 2)}
	e := agenttest.Start(t, cfg, agenttest.Options{Tick: 50 * time.Millisecond, Log: &log})
	e.WaitFor(t, time.Minute, "2 ready workers of revision 1", agenttest.Ready(2))
	cfg.Revision = "2"
	e.Pool.Update(cfg)

	const (
		crashed = "Worker crashed soon after it was ready"
		held    = "Worker crashed soon after it was ready; spawning none of its revision"
		stopped = "Stopped a new worker of a revision whose processes die young"
	)
	killed := []int{}
	killAll := func(round int) {
		t.Helper()
		s := e.WaitFor(t, time.Minute, "2 ready workers of revision 2, none killed", func(s pool.Status) bool {
			return agenttest.Ready(2)(s) && s.Revision == "2" &&
				!slices.ContainsFunc(pids(s), func(pid int) bool { return slices.Contains(killed, pid) })
		})
		if s.LastRestart == nil || s.LastRestart.Revision != "2" || s.LastRestart.Outcome != pool.OutcomeCompleted {
			t.Fatalf("round %d: last restart %+v, want the rolling restart to 2 completed", round, s.LastRestart)
		}
		for _, pid := range pids(s) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = append(killed, pid)
		}
		book.WaitForN(t, crashed, 2*round)
	}

	killAll(1)
	// Their replacements are spawned at once and serve: the kill asked for
	// nothing else (they are the next round).
	s := e.WaitFor(t, time.Minute, "2 replacements of revision 2 ready", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && !slices.ContainsFunc(pids(s), func(pid int) bool { return slices.Contains(killed, pid) })
	})
	if l := book.Find(held); len(l) > 0 {
		t.Fatalf("one round of young deaths held the revision's spawns for the manager's return: %q %v", l[0].Msg, l[0].KVs)
	}
	if l := book.Find(stopped); len(l) > 0 {
		t.Errorf("a replacement was stopped before it served: %q %v", l[0].Msg, l[0].KVs)
	}
	if s.Revision != "2" || s.SpawnFailures != 1 {
		t.Errorf("after one round: revision %q, spawnFailures %d; want 2 kept, 1 round", s.Revision, s.SpawnFailures)
	}

	killAll(2) // within the crash window of the first death: the loop goes on
	book.WaitFor(t, held)
	if n := spawnedAfter(book, held, "2"); n > 0 {
		t.Errorf("%d workers of revision 2 made ready once the pool held its spawns", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if !reported(ctx, e, func(s pool.Status) bool { return failsTarget(s, "2") }) {
		t.Errorf("held after the second round, the pool did not report what the manager returns a node on (FailsTarget); status: %+v",
			e.Pool.Status())
	}
}
